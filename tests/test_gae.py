"""GAE against values computed by hand, with terminations, truncations and reset steps."""

import pytest
import torch

from agent.algorithm.gae import compute_gae

GAMMA, LAM = 0.9, 0.8
REWARDS = [1.0, 2.0, 0.0, 3.0]
VALUES = [0.5, 1.0, 2.0, 0.3]
LAST = 4.0


def run(terminated, truncated, valid):
    col = lambda xs, dtype=torch.float32: torch.tensor(xs, dtype=dtype).unsqueeze(1)  # noqa: E731
    adv, ret = compute_gae(
        col(REWARDS),
        col(VALUES),
        torch.tensor([LAST]),
        col(terminated, torch.bool),
        col(truncated, torch.bool),
        col(valid, torch.bool),
        GAMMA,
        LAM,
    )
    return adv[:, 0].tolist(), ret[:, 0].tolist()


def test_no_episode_end():
    # deltas: 1.4, 2.8, -1.73, 6.3 ; gae_t = delta_t + 0.72 gae_{t+1}
    adv, ret = run([0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1])
    assert adv == pytest.approx([4.8706304, 4.82032, 2.806, 6.3])
    assert ret == pytest.approx([a + v for a, v in zip(adv, VALUES, strict=True)])


def test_termination_does_not_bootstrap():
    # step 1 terminates; step 2 is the reset step (ignored); step 3 starts a new episode
    adv, ret = run([0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 0, 1])
    assert adv == pytest.approx([1.4 + 0.72 * 1.0, 2.0 - 1.0, 0.0, 6.3])
    assert ret[2] == 0.0


def test_truncation_bootstraps_from_the_final_observation_value():
    # step 1 is truncated: its target is r + gamma * V(final obs) = 2 + 0.9 * 2.0 (value at t=2)
    adv, _ = run([0, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 1])
    assert adv == pytest.approx([1.4 + 0.72 * 2.8, 2.8, 0.0, 6.3])


def test_an_episode_end_stops_the_chain_even_before_a_valid_step():
    # all steps valid: the advantage at the end (step 1) is its own delta, not the next
    # episode's advantages discounted into it
    adv, _ = run([0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1])
    assert adv == pytest.approx([1.4 + 0.72 * 1.0, 2.0 - 1.0, 2.806, 6.3])
    adv, _ = run([0, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 1])
    assert adv == pytest.approx([1.4 + 0.72 * 2.8, 2.8, 2.806, 6.3])


def test_truncation_at_the_last_step_uses_last_value():
    adv, _ = run([0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1])
    assert adv[3] == pytest.approx(3.0 + 0.9 * LAST - 0.3)


def test_columns_are_independent():
    T, E = 5, 3
    g = torch.Generator().manual_seed(0)
    rewards, values = torch.rand(T, E, generator=g), torch.rand(T, E, generator=g)
    last = torch.rand(E, generator=g)
    term = torch.zeros(T, E, dtype=torch.bool)
    term[2, 1] = True
    valid = torch.ones(T, E, dtype=torch.bool)
    valid[3, 1] = False
    adv, _ = compute_gae(rewards, values, last, term, torch.zeros_like(term), valid, GAMMA, LAM)
    for e in range(E):
        single, _ = compute_gae(
            rewards[:, e : e + 1], values[:, e : e + 1], last[e : e + 1], term[:, e : e + 1],
            torch.zeros(T, 1, dtype=torch.bool), valid[:, e : e + 1], GAMMA, LAM,
        )  # fmt: skip
        assert torch.allclose(adv[:, e], single[:, 0])
