"""Cutting rollout columns into training sequences and packing them into padded minibatches.

A rollout is time-major, [T, E]. Each environment column is cut at every episode start and every
`max_len` steps after the last cut, so a sequence never crosses an episode boundary and the
recurrent core can replay it in one call from the state stored at its first step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Sequences(NamedTuple):
    """Sequences of a rollout: sequence k covers steps start[k] .. start[k] + length[k] - 1 of env[k]."""

    env: np.ndarray
    start: np.ndarray
    length: np.ndarray


class Minibatch(NamedTuple):
    """A minibatch of whole sequences, side by side and padded at the end to the longest one.

    `index` [L, N]: the flat time-major rollout index (t * E + e) of every step of the N
    sequences; padding repeats a sequence's last step. `first` [N]: the flat index of each
    sequence's first step, where its stored state is read. `rows` [n]: the positions, in the
    flattened [L * N] grid, of the steps to learn from (real, and not an autoreset step);
    `steps` [n]: their flat rollout indices.
    """

    index: torch.Tensor
    first: torch.Tensor
    rows: torch.Tensor
    steps: torch.Tensor


def split_sequences(episode_starts: np.ndarray, max_len: int) -> Sequences:
    """Cut each column of `episode_starts` [T, E] (bool) at episode starts and every `max_len` steps.

    Step 0 always starts a sequence. Returns the sequences in env-major order.
    """
    T, E = episode_starts.shape
    if max_len <= 0:
        raise ValueError(f"max_len must be positive, got {max_len}")
    starts = episode_starts.astype(bool).copy()
    starts[0] = True
    steps = np.arange(T)[:, None]
    segment_start = np.maximum.accumulate(np.where(starts, steps, 0), axis=0)
    cut = starts | ((steps - segment_start) % max_len == 0)
    flat = np.flatnonzero(cut.T)  # env-major: k = e * T + t
    length = np.diff(flat, append=E * T)
    return Sequences(env=flat // T, start=flat % T, length=length)


def pack(
    lengths: np.ndarray, batch_size: int, generator: torch.Generator | None
) -> list[np.ndarray]:
    """Shuffle sequences of `lengths` and pack them into groups of about `batch_size` steps each.

    Sequences are added to a group until it holds at least `batch_size` steps, so each holds
    fewer than `batch_size` + the longest sequence; a remainder under half a batch joins the last
    full group instead of making a small, noisy one of its own. When everything lands in one
    group, it lists the sequences in rollout order (the order within a minibatch changes nothing
    that is learned), so that the same minibatch can be reused from one epoch to the next.
    """
    n = len(lengths)
    if int(lengths.sum()) < 1.5 * batch_size:
        # One group whatever the order: the first group closes with at least `batch_size`
        # steps, leaving less than half a batch, which joins it.
        return [np.arange(n)]
    order = (
        torch.randperm(n, generator=generator).numpy() if generator is not None else np.arange(n)
    )
    filled = np.cumsum(lengths[order])
    # Group g ends at the first sequence that brings the running total to (g + 1) full batches.
    ends, total = [], 0
    while True:
        k = int(np.searchsorted(filled, total + batch_size))
        if k >= n:
            break
        ends.append(k + 1)
        total = int(filled[k])
    if not ends or ends[-1] != n:
        if ends and filled[-1] - total < batch_size / 2:
            ends[-1] = n
        else:
            ends.append(n)
    if len(ends) == 1:
        return [np.arange(n)]
    return np.split(order, ends[:-1])


def make_minibatch(
    seqs: Sequences,
    chosen: np.ndarray,
    n_envs: int,
    learn: np.ndarray,
    device: torch.device | str = "cpu",
) -> Minibatch:
    """The padded minibatch of sequences `chosen`; `learn` [T * E] marks the steps learned from."""
    lengths = seqs.length[chosen]
    offsets = np.arange(int(lengths.max()))[:, None]
    t = seqs.start[chosen][None, :] + np.minimum(offsets, lengths[None, :] - 1)
    index = t * n_envs + seqs.env[chosen][None, :]
    rows = np.flatnonzero((offsets < lengths[None, :]) & learn[index])
    return Minibatch(
        index=torch.as_tensor(index, device=device),
        first=torch.as_tensor(index[0], device=device),
        rows=torch.as_tensor(rows, device=device),
        steps=torch.as_tensor(index.reshape(-1)[rows], device=device),
    )
