"""Learning tests: small budgets, real thresholds, so they fail when learning breaks.

The fast ones run in the default suite; the `slow` ones in CI after it (`pytest -m slow`).
"""

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from agent import RecurrentPPO


def success_rate(model: RecurrentPPO, env_id: str, episodes: int, **kwargs) -> float:
    """Deterministic rollouts of `model` on single envs; the share of episodes with success."""
    env = gym.make(env_id, **kwargs)
    wins = 0
    for ep in range(episodes):
        obs, _ = env.reset(seed=10_000 + ep)
        state, start, done = None, np.ones(1, bool), False
        while not done:
            action, state = model.predict(obs, state, start, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            start, done = np.zeros(1, bool), terminated or truncated
        wins += int(info.get("success", 0))
    return wins / episodes


def mean_return(model: RecurrentPPO, env_id: str, episodes: int, **kwargs) -> float:
    from stable_baselines3.common.evaluation import evaluate_policy

    mean, _ = evaluate_policy(model, gym.make(env_id, **kwargs), n_eval_episodes=episodes)
    return float(mean)


def test_lstm_solves_tmaze_gap_20():
    model = RecurrentPPO(
        "Memory/TMaze-v0", env_kwargs={"length": 20}, n_envs=16, n_steps=64, batch_size=256, seed=0
    )
    model.learn(60_000)
    assert success_rate(model, "Memory/TMaze-v0", 50, length=20) >= 0.95


def test_memoryless_agent_stays_at_chance_on_tmaze():
    model = RecurrentPPO(
        "Memory/TMaze-v0",
        env_kwargs={"length": 20},
        n_envs=16,
        n_steps=64,
        batch_size=256,
        rnn_type="none",
        seed=0,
    )
    model.learn(40_000)
    assert success_rate(model, "Memory/TMaze-v0", 100, length=20) <= 0.7


@pytest.mark.slow
def test_lstm_solves_cartpole_without_velocities():
    model = RecurrentPPO(
        "Memory/CartPoleNoVel-v0",
        n_envs=8,
        n_steps=32,
        batch_size=256,
        n_epochs=20,
        gamma=0.98,
        gae_lambda=0.8,
        learning_rate=1e-3,
        lr_schedule="linear",
        lstm_hidden_size=64,
        ortho_init=False,
        normalize_obs=True,
        normalize_reward=True,
        seed=0,
    )
    model.learn(150_000)
    assert mean_return(model, "Memory/CartPoleNoVel-v0", 10) >= 450


@pytest.mark.slow
def test_memoryless_agent_fails_cartpole_without_velocities():
    model = RecurrentPPO(
        "Memory/CartPoleNoVel-v0",
        n_envs=8,
        n_steps=32,
        batch_size=256,
        n_epochs=20,
        gamma=0.98,
        gae_lambda=0.8,
        rnn_type="none",
        normalize_obs=True,
        normalize_reward=True,
        seed=0,
    )
    model.learn(100_000)
    assert mean_return(model, "Memory/CartPoleNoVel-v0", 10) < 200


@pytest.mark.slow
def test_continuous_actions_learn_on_pendulum_without_velocity():
    model = RecurrentPPO(
        "Memory/PendulumNoVel-v0",
        n_envs=8,
        n_steps=256,
        batch_size=512,
        n_epochs=10,
        gamma=0.9,
        gae_lambda=0.95,
        learning_rate=1e-3,
        lstm_hidden_size=64,
        normalize_obs=True,
        normalize_reward=True,
        log_std_init=-0.5,
        seed=0,
    )
    model.learn(150_000)
    # random play scores about -1200; swinging up and balancing scores above -300
    assert mean_return(model, "Memory/PendulumNoVel-v0", 10) > -500
