"""Learning-rate schedules: the rules by hand, and a model that follows the adaptive one and
keeps its rate in checkpoints."""

import pytest

from agent import RecurrentPPO
from agent.algorithm.lr_schedule import adapt_rate, linear_rate


def test_adapt_rate_by_hand():
    assert adapt_rate(1e-3, 0.05, 0.02, 1e-3) == pytest.approx(1e-3 / 1.5)  # above 2x: slower
    assert adapt_rate(4e-4, 0.005, 0.02, 1e-3) == pytest.approx(6e-4)  # below half: faster
    assert adapt_rate(4e-4, 0.03, 0.02, 1e-3) == 4e-4  # within the band: kept
    assert adapt_rate(8e-4, 0.001, 0.02, 1e-3) == 1e-3  # never above the configured rate
    assert adapt_rate(1.2e-5, 1.0, 0.02, 1e-3) == pytest.approx(1e-5)  # never below 1% of it


def test_linear_rate_by_hand():
    assert linear_rate(1e-3, 250, 1000) == pytest.approx(7.5e-4)
    assert linear_rate(1e-3, 2000, 1000) == 0.0
    assert linear_rate(1e-3, 5, 0) == 1e-3  # no budget known: constant


def small_model(**config):
    settings = dict(n_envs=2, n_steps=16, batch_size=32, lstm_hidden_size=8, device="cpu")
    return RecurrentPPO("CartPole-v1", **(settings | config))


def test_an_adaptive_rate_slows_updates_that_move_too_far_and_is_kept_in_checkpoints(tmp_path):
    # A desired KL no update can stay under: every update divides the rate by 1.5.
    model = small_model(lr_schedule="adaptive", desired_kl=1e-9)
    model.learn(64)  # two updates
    assert model.logs["train/learning_rate"] == pytest.approx(1e-3 / 1.5)  # the second's rate
    assert model.adaptive_lr == pytest.approx(1e-3 / 1.5**2)  # the next update's
    loaded = RecurrentPPO.load(model.save(tmp_path / "model.pt"), env="recorded")
    assert loaded.adaptive_lr == model.adaptive_lr

    constant = small_model(desired_kl=1e-9)
    constant.learn(64)
    assert constant.logs["train/learning_rate"] == 1e-3


def test_a_linear_clip_schedule_reaches_the_update():
    # Two updates of a 64-step run: the second is at the budget's end, where a linear clip range
    # is 0, so every sample whose ratio moved counts as clipped; at a constant 0.2 next to none.
    annealed = small_model(clip_schedule="linear", batch_size=8, n_epochs=4)
    annealed.learn(64)
    assert annealed.logs["train/clip_range"] == 0.0
    assert annealed.logs["train/clip_fraction"] > 0.5
    constant = small_model(batch_size=8, n_epochs=4)
    constant.learn(64)
    assert constant.logs["train/clip_range"] == 0.2
    assert constant.logs["train/clip_fraction"] < 0.2
