"""Cutting rollouts into sequences and packing them into padded minibatches."""

import numpy as np
import pytest
import torch

from agent.sequences import minibatches, split_sequences


def starts_fixture() -> np.ndarray:
    starts = np.zeros((10, 2), dtype=bool)
    starts[4, 0] = True
    starts[7, 1] = True
    return starts


def test_cuts_at_episode_starts_and_every_max_len():
    seqs = split_sequences(starts_fixture(), max_len=3)
    got = list(zip(seqs.env.tolist(), seqs.start.tolist(), seqs.length.tolist(), strict=True))
    assert got == [
        (0, 0, 3), (0, 3, 1), (0, 4, 3), (0, 7, 3),
        (1, 0, 3), (1, 3, 3), (1, 6, 1), (1, 7, 3),
    ]  # fmt: skip


def test_whole_rollout_sequences_when_max_len_is_long():
    seqs = split_sequences(starts_fixture(), max_len=100)
    assert seqs.length.tolist() == [4, 6, 7, 3]


@pytest.mark.parametrize("batch_size", [1, 4, 7, 20])
def test_minibatches_cover_every_step_once(batch_size):
    T, E = 10, 2
    seqs = split_sequences(starts_fixture(), max_len=3)
    batches = minibatches(seqs, E, batch_size, torch.Generator().manual_seed(0))
    covered = np.concatenate([b.index[b.mask].numpy() for b in batches])
    assert sorted(covered.tolist()) == list(range(T * E))
    sizes = [int(b.mask.sum()) for b in batches]
    assert all(s >= batch_size for s in sizes[:-1])
    assert all(s < batch_size + 3 for s in sizes[:-1]) or len(sizes) == 1
    assert sizes[-1] >= batch_size / 2 or len(sizes) == 1
    for b in batches:
        # a sequence's steps are consecutive in time within one env
        idx, mask = b.index.numpy(), b.mask.numpy()
        for n in range(idx.shape[1]):
            real = idx[mask[:, n], n]
            assert np.all(np.diff(real) == E)
            assert b.first[n].item() == real[0]


def test_rejects_non_positive_length():
    with pytest.raises(ValueError, match="max_len"):
        split_sequences(starts_fixture(), max_len=0)
