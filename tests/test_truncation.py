"""Truncation is bootstrapped: on an endless task cut by a time limit, V -> r / (1 - gamma)."""

import gymnasium as gym

from agent import RecurrentPPO
from tests.toy_envs import ConstantRewardEnv, vector

GAMMA = 0.8  # r / (1 - gamma) = 5; the discounted sum to a cut 6 steps away averages about 3.4


def test_value_of_an_endless_task_is_not_cut_by_the_time_limit():
    env = vector(lambda: gym.wrappers.TimeLimit(ConstantRewardEnv(), max_episode_steps=6), n=8)
    model = RecurrentPPO(
        env, n_steps=32, batch_size=128, n_epochs=4, gamma=GAMMA, lstm_hidden_size=8, seed=0
    )
    model.learn(16_000)
    buffer = model.collect_rollout()
    model.compute_advantages(buffer)
    values = buffer.values[buffer.valid]
    assert values.mean().item() > 4.6, values.mean().item()
    assert values.min().item() > 4.0, values.min().item()
    # and the return targets themselves are r + gamma V(final obs), not r, at the cut
    cut = buffer.truncated & buffer.valid
    assert buffer.returns[cut].min().item() > 4.0
