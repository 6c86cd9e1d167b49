"""Cutting rollouts into sequences and packing them into padded minibatches."""

import numpy as np
import pytest
import torch

from agent.algorithm.sequences import make_minibatch, pack, split_sequences


def minibatches(seqs, n_envs, batch_size, generator, learn=None):
    """One epoch's padded minibatches, as `RolloutBuffer.minibatches` builds them."""
    flat_learn = np.ones(int(seqs.length.sum()), dtype=bool) if learn is None else learn.reshape(-1)
    groups = pack(seqs.length, batch_size, generator)
    return [make_minibatch(seqs, g, n_envs, flat_learn) for g in groups]


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
    covered = np.concatenate([b.steps.numpy() for b in batches])
    assert sorted(covered.tolist()) == list(range(T * E))
    sizes = [len(b.steps) for b in batches]
    assert all(s >= batch_size for s in sizes[:-1])
    assert all(s < batch_size + 3 for s in sizes[:-1]) or len(sizes) == 1
    assert sizes[-1] >= batch_size / 2 or len(sizes) == 1
    for b in batches:
        idx = b.index.numpy()
        real = np.zeros(idx.size, dtype=bool)
        real[b.rows.numpy()] = True
        real = real.reshape(idx.shape)
        assert np.array_equal(idx.reshape(-1)[b.rows.numpy()], b.steps.numpy())
        for n in range(idx.shape[1]):
            # a sequence's steps are consecutive in time within one env, real steps first
            steps = idx[real[:, n], n]
            assert np.all(np.diff(steps) == E)
            assert b.first[n].item() == steps[0]
            assert real[: len(steps), n].all()


def rule(order: list[int], lengths: np.ndarray, batch_size: int) -> list[list[int]]:
    """The packing rule, by hand: close a group once it holds >= batch_size steps; a last group
    of fewer than half a batch joins the one before."""
    groups, group, filled = [], [], 0
    for k in order:
        group.append(k)
        filled += int(lengths[k])
        if filled >= batch_size:
            groups.append(group)
            group, filled = [], 0
    if group:
        if groups and filled < batch_size / 2:
            groups[-1] += group
        else:
            groups.append(group)
    return groups


def test_packing_matches_the_rule_and_is_seeded():
    lengths = np.array([3, 1, 3, 3, 3, 3, 1, 3])
    a = pack(lengths, 5, torch.Generator().manual_seed(1))
    b = pack(lengths, 5, torch.Generator().manual_seed(1))
    assert [g.tolist() for g in a] == [g.tolist() for g in b]
    assert sorted(np.concatenate(a).tolist()) == list(range(len(lengths)))
    assert [g.tolist() for g in a] == rule(np.concatenate(a).tolist(), lengths, 5)


def test_under_one_and_a_half_batches_the_rule_always_makes_one_group():
    rng = np.random.default_rng(0)
    for _ in range(200):
        lengths = rng.integers(1, 33, size=rng.integers(1, 20))
        batch_size = int(rng.integers(1, 400))
        if lengths.sum() < 1.5 * batch_size:
            assert len(rule(rng.permutation(len(lengths)).tolist(), lengths, batch_size)) == 1
            assert len(pack(lengths, batch_size, torch.Generator().manual_seed(0))) == 1


def test_one_group_keeps_rollout_order():
    lengths = np.array([4, 6, 7, 3])
    for batch_size in (20, 25, 14):  # 14: 20 steps, a remainder of 6 or less joins
        assert 1.5 * batch_size > 20
        groups = pack(lengths, batch_size, torch.Generator().manual_seed(0))
        assert [g.tolist() for g in groups] == [[0, 1, 2, 3]]


def test_unlearned_steps_are_left_out_of_rows():
    seqs = split_sequences(starts_fixture(), max_len=100)
    learn = np.ones((10, 2), dtype=bool)
    learn[3, 0] = False  # an autoreset step, last of its sequence
    (mb,) = minibatches(seqs, 2, 20, None, learn)
    assert 3 * 2 + 0 not in mb.steps.tolist()
    assert len(mb.steps) == 19


def test_rejects_non_positive_length():
    with pytest.raises(ValueError, match="max_len"):
        split_sequences(starts_fixture(), max_len=0)
