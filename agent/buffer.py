"""Rollout storage on the training device, time-major [T, E]."""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from agent.observations import Obs, allocate, tree_map, tree_map2


class RolloutBuffer:
    """One rollout of `n_steps` x `n_envs` steps, with the recurrent state before every step.

    Fields (all [T, E, ...]): observations, actions, log_probs, values, rewards, terminated,
    truncated, valid (False on the reset steps of NEXT_STEP autoreset), episode_starts (the state
    was reset before this step), and the recurrent state fed into each step; `last_values` [E];
    and, once `RecurrentPPO.compute_advantages` has run, advantages and returns.

    While the rollout is collected, what the env returns is kept in numpy and the policy's
    outputs in lists (a copy per field and step costs more than the step's math at small batch
    sizes); `finish` turns them into tensors on the device.
    """

    def __init__(
        self,
        n_steps: int,
        n_envs: int,
        observation_space: spaces.Space,
        initial_state: torch.Tensor,
        device: torch.device,
    ) -> None:
        T, E = n_steps, n_envs
        self.n_steps, self.n_envs, self.device = T, E, device
        self.observations = allocate(observation_space, (T, E), device)
        # States are stored batch-second ([T, E, S, layers, H]) so that one flat index t * E + e
        # picks the state of a sequence's first step.
        self.states = torch.zeros(
            T, *initial_state.permute(2, 0, 1, 3).shape, dtype=torch.float32, device=device
        )
        self._np = {
            name: np.zeros((T, E), dtype=np.float32 if name == "rewards" else bool)
            for name in ("rewards", "terminated", "truncated", "valid", "episode_starts")
        }
        self._steps: dict[str, list[torch.Tensor]] = {"actions": [], "log_probs": [], "values": []}

    def add(
        self,
        t: int,
        obs: Obs,
        state: torch.Tensor,
        episode_start: np.ndarray,
        valid: np.ndarray,
        actions: torch.Tensor,
        log_probs: torch.Tensor,
        values: torch.Tensor,
    ) -> None:
        """Store what the agent saw and did at step t (the state after the episode-start reset)."""

        def put(dst: torch.Tensor, src: torch.Tensor) -> None:
            dst[t] = src

        tree_map2(put, self.observations, obs)
        self.states[t] = state.permute(2, 0, 1, 3)
        self._np["episode_starts"][t] = episode_start
        self._np["valid"][t] = valid
        for name, value in (("actions", actions), ("log_probs", log_probs), ("values", values)):
            self._steps[name].append(value)

    def add_outcome(
        self, t: int, rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray
    ) -> None:
        """Store what the environment returned for step t."""
        self._np["rewards"][t] = rewards
        self._np["terminated"][t] = terminated
        self._np["truncated"][t] = truncated

    def finish(self, last_values: torch.Tensor) -> None:
        """Make every field a tensor on the device, once all `n_steps` steps are stored.
        `last_values` [E] are the values of the observations that follow the last step (what
        a rollout that ends mid-episode bootstraps from)."""
        self.last_values = last_values
        for name, values in self._steps.items():
            setattr(self, name, torch.stack(values))
        for name, array in self._np.items():
            setattr(self, name, torch.as_tensor(array, device=self.device))

    def _flat(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return x.reshape(self.n_steps * self.n_envs, *x.shape[2:])[index]

    def gather(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The per-step training fields at flat time-major indices `index` (t * E + e, any shape)."""
        fields = ("actions", "log_probs", "values", "advantages", "returns")
        return {name: self._flat(getattr(self, name), index) for name in fields}

    def observations_at(self, index: torch.Tensor) -> Obs:
        """The observations at flat time-major indices `index` (any shape, e.g. padded [L, N])."""
        return tree_map(lambda x: self._flat(x, index), self.observations)

    def initial_states(self, first: torch.Tensor) -> torch.Tensor:
        """The stored states at the flat indices `first` [N], as a state of batch N."""
        states = self.states.reshape(self.n_steps * self.n_envs, *self.states.shape[2:])
        return states[first].permute(1, 2, 0, 3)
