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


class PaddedBatch(NamedTuple):
    """Indices of a minibatch of sequences, padded to the longest one.

    `index` [L, N] holds flat time-major rollout indices (t * E + e); padding repeats the last step.
    `mask` [L, N] is True on real steps. `first` [N] is the flat index of each sequence's first step.
    """

    index: torch.Tensor
    mask: torch.Tensor
    first: torch.Tensor


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


def minibatches(
    seqs: Sequences,
    n_envs: int,
    batch_size: int,
    generator: torch.Generator | None,
    device: torch.device | str = "cpu",
) -> list[PaddedBatch]:
    """Shuffle the sequences and pack them into minibatches of about `batch_size` steps each.

    Sequences are added to a minibatch until it holds at least `batch_size` steps, so each holds
    fewer than `batch_size` + the longest sequence; a remainder under half a batch joins the last
    full minibatch instead of making a small, noisy one of its own.
    """
    n = len(seqs.length)
    order = (
        torch.randperm(n, generator=generator).numpy() if generator is not None else np.arange(n)
    )
    groups: list[list[int]] = [[]]
    filled = 0
    for k in order.tolist():
        groups[-1].append(k)
        filled += int(seqs.length[k])
        if filled >= batch_size:
            groups.append([])
            filled = 0
    if not groups[-1]:
        groups.pop()
    elif len(groups) > 1 and filled < batch_size / 2:
        groups[-2].extend(groups.pop())
    batches = []
    for group in groups:
        chosen = np.asarray(group)
        lengths = seqs.length[chosen]
        max_len = int(lengths.max())
        offsets = np.arange(max_len)[:, None]
        t = seqs.start[chosen][None, :] + np.minimum(offsets, lengths[None, :] - 1)
        index = t * n_envs + seqs.env[chosen][None, :]
        batches.append(
            PaddedBatch(
                index=torch.as_tensor(index, device=device),
                mask=torch.as_tensor(offsets < lengths[None, :], device=device),
                first=torch.as_tensor(index[0], device=device),
            )
        )
    return batches
