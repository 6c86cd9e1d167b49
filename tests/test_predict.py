"""predict() follows sb3-contrib's contract, so SB3's evaluate_policy works on our model."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.evaluation import evaluate_policy

from agent import RecurrentPPO


@pytest.fixture(scope="module")
def model():
    return RecurrentPPO("CartPole-v1", n_envs=2, n_steps=16, batch_size=32, lstm_hidden_size=8)


def test_state_shape_and_carry(model):
    obs = np.zeros((3, 4), np.float32)
    actions, state = model.predict(obs)
    assert actions.shape == (3,)
    h, c = state
    assert h.shape == c.shape == (1, 3, 16)  # actor and critic units
    _, state2 = model.predict(obs, state=state, episode_start=np.zeros(3, bool))
    assert not np.allclose(state2[1], c)  # the memory moved on


def test_episode_start_resets_the_state(model):
    obs = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    _, fresh = model.predict(obs, episode_start=np.ones(2, bool))
    _, carried = model.predict(obs, state=fresh, episode_start=np.zeros(2, bool))
    _, reset = model.predict(obs, state=carried, episode_start=np.array([True, False]))
    np.testing.assert_allclose(reset[0][:, 0], fresh[0][:, 0], atol=1e-6)
    assert not np.allclose(reset[0][:, 1], fresh[0][:, 1])


def test_single_observation(model):
    action, state = model.predict(np.zeros(4, np.float32), deterministic=True)
    assert np.ndim(action) == 0 and action in (0, 1)
    assert state[0].shape == (1, 1, 16)


def test_deterministic_is_repeatable(model):
    obs = np.random.default_rng(1).normal(size=(4, 4)).astype(np.float32)
    a1, _ = model.predict(obs, deterministic=True)
    a2, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a1, a2)


def test_sb3_evaluate_policy_runs_on_our_model(model):
    mean, std = evaluate_policy(model, gym.make("CartPole-v1"), n_eval_episodes=3)
    assert 5 <= mean <= 500 and std >= 0
