"""Learning tests: small budgets, real thresholds, so they fail when learning breaks.

The fast ones run in the default suite; the `slow` ones in CI after it (`pytest -m slow`).
"""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.evaluation import evaluate_policy

import envs  # noqa: F401
from agent import RecurrentPPO
from agent.config import PPOConfig
from agent.run.cli import load_preset
from benchmarks.throughput import ZOO_CARTPOLE
from tests.toy_envs import RecallValueEnv


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


# configs/cartpole-novel.yaml, and rl-baselines3-zoo's ppo_lstm settings for CartPoleNoVel
CARTPOLE = load_preset("cartpole-novel")
# The rollout and update of the zoo's settings, which the memoryless agent gets
CARTPOLE_ZOO = {
    k: ZOO_CARTPOLE[k]
    for k in ("n_envs", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda")
}
HYPERPARAMETERS = {f.name for f in dataclasses.fields(PPOConfig)}


@pytest.mark.slow
def test_lstm_solves_cartpole_without_velocities():
    """The preset, as `train.py --config cartpole-novel` trains it."""
    model = RecurrentPPO(
        CARTPOLE["env"], **{k: v for k, v in CARTPOLE.items() if k in HYPERPARAMETERS}
    )
    model.learn(CARTPOLE["total_timesteps"])
    assert mean_return(model, CARTPOLE["env"], 10) >= 450


@pytest.mark.slow
def test_memoryless_agent_fails_cartpole_without_velocities():
    model = RecurrentPPO(
        CARTPOLE["env"],
        **CARTPOLE_ZOO,
        rnn_type="none",
        normalize_obs=True,
        normalize_reward=True,
        seed=0,
    )
    model.learn(100_000)
    assert mean_return(model, CARTPOLE["env"], 10) < 200


@pytest.mark.parametrize(("rnn_type", "bound"), [("lstm", -0.06), ("none", None)])
def test_continuous_actions_learn_a_value_to_recall(rnn_type, bound):
    """Gaussian actions with memory: the LSTM answers a value it saw 7 steps ago nearly
    exactly (optimum 0); without memory the best is to answer 0, -1/3 in expectation."""
    env = gym.vector.SyncVectorEnv([RecallValueEnv for _ in range(16)])
    model = RecurrentPPO(
        env,
        n_steps=64,
        batch_size=256,
        learning_rate=1e-3,
        lstm_hidden_size=32,
        rnn_type=rnn_type,
        log_std_init=-0.5,
        gamma=0.9,
        seed=0,
    )
    model.learn(40_000)
    mean, _ = evaluate_policy(model, RecallValueEnv(), n_eval_episodes=100, warn=False)
    if bound is not None:
        assert mean > bound
    else:
        assert mean < -0.2


@pytest.mark.slow
def test_the_defaults_learn_minigrid_memory_s7():
    """MiniGrid's own Dict observation at the defaults (the minigrid extra, and the encoder of
    its object codes): the return of the stochastic policy over the last 100 training episodes
    passes 0.9 within 200k steps (guessing scores about 0.45). Stops once it does."""
    model = RecurrentPPO("MiniGrid-MemoryS7-v0", seed=0)

    def until_solved(m: RecurrentPPO) -> bool:
        returns = m.episode_statistics.return_queue
        return not (len(returns) >= 100 and np.mean(returns) >= 0.9)

    model.learn(200_000, callback=until_solved)
    assert np.mean(model.episode_statistics.return_queue) >= 0.9, model.num_timesteps
