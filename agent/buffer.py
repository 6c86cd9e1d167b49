"""Rollout storage on the training device, time-major [T, E]."""

from __future__ import annotations

import torch
from gymnasium import spaces

from agent.observations import Obs, allocate, tree_map, tree_map2


class RolloutBuffer:
    """One rollout of `n_steps` x `n_envs` steps, with the recurrent state before every step.

    Fields (all [T, E, ...]): observations, actions, log_probs, values, rewards, terminated,
    truncated, valid (False on the reset steps of NEXT_STEP autoreset), episode_starts (the state
    was reset before this step), and the recurrent state fed into each step.
    """

    def __init__(
        self,
        n_steps: int,
        n_envs: int,
        observation_space: spaces.Space,
        action_shape: tuple[int, ...],
        action_dtype: torch.dtype,
        initial_state: torch.Tensor,
        device: torch.device,
    ) -> None:
        T, E = n_steps, n_envs
        self.n_steps, self.n_envs, self.device = T, E, device
        self.observations = allocate(observation_space, (T, E), device)
        self.actions = torch.zeros(T, E, *action_shape, dtype=action_dtype, device=device)
        f32 = {"dtype": torch.float32, "device": device}
        self.log_probs = torch.zeros(T, E, **f32)
        self.values = torch.zeros(T, E, **f32)
        self.rewards = torch.zeros(T, E, **f32)
        flags = {"dtype": torch.bool, "device": device}
        self.terminated = torch.zeros(T, E, **flags)
        self.truncated = torch.zeros(T, E, **flags)
        self.valid = torch.zeros(T, E, **flags)
        self.episode_starts = torch.zeros(T, E, **flags)
        # States are stored batch-second ([T, E, S, layers, H]) so that one flat index t * E + e
        # picks the state of a sequence's first step.
        self.states = torch.zeros(T, *initial_state.permute(2, 0, 1, 3).shape, **f32)
        self.advantages = torch.zeros(T, E, **f32)
        self.returns = torch.zeros(T, E, **f32)

    def add(
        self,
        t: int,
        obs: Obs,
        state: torch.Tensor,
        episode_start: torch.Tensor,
        valid: torch.Tensor,
        actions: torch.Tensor,
        log_probs: torch.Tensor,
        values: torch.Tensor,
    ) -> None:
        """Store what the agent saw and did at step t (the state after the episode-start reset)."""

        def put(dst: torch.Tensor, src: torch.Tensor) -> None:
            dst[t] = src

        tree_map2(put, self.observations, obs)
        self.states[t] = state.permute(2, 0, 1, 3)
        self.episode_starts[t] = episode_start
        self.valid[t] = valid
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = values

    def add_outcome(
        self, t: int, rewards: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor
    ) -> None:
        """Store what the environment returned for step t."""
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        self.truncated[t] = truncated

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
