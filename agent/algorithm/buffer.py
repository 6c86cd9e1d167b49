"""Rollout storage on the training device, time-major [T, E], and the minibatches of whole
sequences that the update learns from."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from gymnasium import spaces

from agent.algorithm.sequences import Sequences, make_minibatch, pack, split_sequences
from agent.networks.encoders import DEDUPLICATE_BELOW, distinct
from agent.networks.observations import Frames, Obs, allocate, tree_map, tree_map2


class TrainingBatch(NamedTuple):
    """One minibatch, ready for a gradient step: padded observations [L, N, ...] (a leaf the
    encoder takes as `Frames`: an index [L, N] into the rollout's distinct frames) and the state
    before each sequence, the `rows` of the flattened [L * N] grid to learn from, and the
    rollout's data at those steps, flat [n] (advantages normalised when asked), and the action
    masks the rollout acted under there, [n, sum(nvec)] (None when the env gives none)."""

    observations: Obs
    state: torch.Tensor
    rows: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    masks: torch.Tensor | None = None


class RolloutBuffer:
    """One rollout of `n_steps` x `n_envs` steps, with the recurrent state before every step.

    Fields (all [T, E, ...]): observations, actions, log_probs, values, rewards, terminated,
    truncated, valid (False on the reset steps of NEXT_STEP autoreset), episode_starts (the state
    was reset before this step), the recurrent state fed into each step, and the action masks
    the actions were sampled under ([T, E, sum(nvec)] bool; None when the env has none);
    `last_values` [E];
    and, once `RecurrentPPO.compute_advantages` has run, advantages and returns.

    While the rollout is collected, what the env returns is kept in numpy and the policy's
    outputs in lists (a copy per field and step costs more than the step's math at small batch
    sizes); `finish` turns them into tensors on the device. `minibatches` then hands out each
    epoch's `TrainingBatch`es of whole sequences of at most `sequence_len` steps.
    """

    def __init__(
        self,
        n_steps: int,
        n_envs: int,
        observation_space: spaces.Space,
        initial_state: torch.Tensor,
        device: torch.device,
        sequence_len: int,
        frame_leaves: object = False,
    ) -> None:
        """`frame_leaves`: which observation leaves minibatches give as `Frames` of the rollout's
        distinct frames, when grouping pays (the policy encoder's `frame_leaves()`)."""
        T, E = n_steps, n_envs
        self.n_steps, self.n_envs, self.device = T, E, device
        self.sequence_len = sequence_len
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
        self._masks: list[np.ndarray] = []
        self.masks: torch.Tensor | None = None
        self.frame_leaves = frame_leaves
        self._sequences: Sequences | None = None
        self._grouped: Obs | None = None
        self._whole: TrainingBatch | None = None

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
        masks: np.ndarray | None = None,
    ) -> None:
        """Store what the agent saw and did at step t (the state after the episode-start reset),
        and the action masks [E, sum(nvec)] it acted under (None: no masks, at every step)."""

        def put(dst: torch.Tensor, src: torch.Tensor) -> None:
            dst[t] = src

        tree_map2(put, self.observations, obs)
        self.states[t] = state.permute(2, 0, 1, 3)
        self._np["episode_starts"][t] = episode_start
        self._np["valid"][t] = valid
        for name, value in (("actions", actions), ("log_probs", log_probs), ("values", values)):
            self._steps[name].append(value)
        if masks is not None:
            self._masks.append(masks)

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
        if self._masks:
            self.masks = torch.as_tensor(np.stack(self._masks), device=self.device)

    def minibatches(
        self, batch_size: int, generator: torch.Generator, normalize_advantage: bool
    ) -> list[TrainingBatch]:
        """One epoch's minibatches: the rollout's sequences (cut at episode starts and every
        `sequence_len` steps), shuffled with `generator` and packed into groups of about
        `batch_size` steps. Call once `advantages` and `returns` are set.

        When the whole rollout fits in one minibatch, every epoch gets the same one, built once.
        """
        groups = pack(self.sequences.length, batch_size, generator)
        if len(groups) == 1:
            if self._whole is None:
                self._whole = self.batch(groups[0], normalize_advantage)
            return [self._whole]
        return [self.batch(g, normalize_advantage) for g in groups]

    @property
    def sequences(self) -> Sequences:
        """The rollout's sequences: each env column cut at episode starts and every
        `sequence_len` steps (`split_sequences`), computed once."""
        if self._sequences is None:
            self._sequences = split_sequences(self.episode_starts.cpu().numpy(), self.sequence_len)
        return self._sequences

    @property
    def grouped_observations(self) -> Obs:
        """The observations [T * E, ...] flat, those of `frame_leaves` as `Frames` of their
        distinct frames when these are at most `DEDUPLICATE_BELOW` of them, computed once."""

        def group(x: torch.Tensor, takes_frames: bool) -> torch.Tensor | Frames:
            flat = x.reshape(-1, *x.shape[2:])
            if not takes_frames:
                return flat
            first, index = distinct(flat)
            if len(first) > DEDUPLICATE_BELOW * len(flat):
                return flat
            return Frames(flat[first.to(flat.device)], index.to(flat.device))

        if self._grouped is None:
            leaves = self.frame_leaves
            if isinstance(leaves, bool):  # one answer for every leaf
                leaves = tree_map(lambda _: self.frame_leaves, self.observations)
            self._grouped = tree_map2(group, self.observations, leaves)
        return self._grouped

    def batch(self, chosen: np.ndarray, normalize_advantage: bool) -> TrainingBatch:
        """The minibatch of `sequences` numbered `chosen`: padded observations, the state stored
        at each sequence's first step, and the training fields of its learnable steps (neither
        padding nor autoreset steps)."""
        learn = self.valid.cpu().numpy().reshape(-1)
        mb = make_minibatch(self.sequences, chosen, self.n_envs, learn, self.device)
        flat = self.n_steps * self.n_envs

        def at(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            return x.reshape(flat, *x.shape[2:])[index]

        advantages = at(self.advantages, mb.steps)
        if normalize_advantage and advantages.numel() > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        return TrainingBatch(
            observations=tree_map(
                lambda x: x.select(mb.index) if isinstance(x, Frames) else x[mb.index],
                self.grouped_observations,
            ),
            # States are stored [T, E, S, layers, H]; the core takes [S, layers, N, H].
            state=at(self.states, mb.first).permute(1, 2, 0, 3),
            rows=mb.rows,
            actions=at(self.actions, mb.steps),
            log_probs=at(self.log_probs, mb.steps),
            values=at(self.values, mb.steps),
            advantages=advantages,
            returns=at(self.returns, mb.steps),
            masks=None if self.masks is None else at(self.masks, mb.steps),
        )
