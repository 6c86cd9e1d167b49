"""predict() follows sb3-contrib's contract, so SB3's evaluate_policy works on our model."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

from agent import RecurrentPPO


@pytest.fixture(scope="module")
def model():
    return RecurrentPPO("CartPole-v1", n_envs=2, n_steps=16, batch_size=32, lstm_hidden_size=8)


def test_state_shape_and_carry(model):
    obs = np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32)
    actions, state = model.predict(obs)
    assert actions.shape == (3,)
    h, c = state
    assert h.shape == c.shape == (1, 3, 16)  # actor and critic units
    _, carried = model.predict(obs, state=state, episode_start=np.zeros(3, bool))
    # the next state is the policy's step from the state given, not from a fresh one
    step = model.policy.step(torch.as_tensor(obs), torch.as_tensor(np.stack(state)))
    np.testing.assert_allclose(np.stack(carried), step.state.numpy(), atol=1e-6)
    assert not np.allclose(carried[1], c)


def test_episode_start_resets_the_state(model):
    obs = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    _, fresh = model.predict(obs, episode_start=np.ones(2, bool))
    _, carried = model.predict(obs, state=fresh, episode_start=np.zeros(2, bool))
    _, reset = model.predict(obs, state=carried, episode_start=np.array([True, False]))
    _, kept = model.predict(obs, state=carried, episode_start=np.zeros(2, bool))
    # entry 0 starts again from zeros, as `fresh` did; entry 1 carries on as without a reset
    np.testing.assert_allclose(np.stack(reset)[:, :, 0], np.stack(fresh)[:, :, 0], atol=1e-6)
    np.testing.assert_allclose(np.stack(reset)[:, :, 1], np.stack(kept)[:, :, 1], atol=1e-6)
    assert not np.allclose(np.stack(reset)[:, :, 1], np.stack(fresh)[:, :, 1])


def test_single_observation(model):
    obs = np.random.default_rng(3).normal(size=4).astype(np.float32)
    action, state = model.predict(obs, deterministic=True)
    assert np.ndim(action) == 0 and action in (0, 1)
    assert state[0].shape == (1, 1, 16)
    # the same as a batch of one
    actions, batch_state = model.predict(obs[None], deterministic=True)
    assert action == actions[0]
    np.testing.assert_allclose(np.stack(state), np.stack(batch_state), atol=1e-6)


def test_deterministic_is_repeatable(model):
    obs = np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32)
    a1, _ = model.predict(obs, deterministic=True)
    a2, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a1, a2)
    # the most likely action of the policy, where sampling is not repeatable
    with torch.no_grad():
        dist, _, _ = model.policy(torch.as_tensor(obs)[None], model.policy.initial_state(64))
        log_p = torch.stack([dist.log_prob(torch.full((1, 64), a)) for a in (0, 1)])[:, 0]
    np.testing.assert_array_equal(a1, log_p.argmax(0).numpy())
    sampled = [model.predict(obs)[0] for _ in range(3)]
    assert any(not np.array_equal(s, a1) for s in sampled)


def test_sb3_evaluate_policy_plays_the_episodes_our_own_loop_plays(model):
    """SB3's loop (the state handed back, episode_start set on dones) and ours (a fresh state
    for each episode) take the same steps with the same memory: predict follows sb3-contrib's
    contract."""
    env = DummyVecEnv([lambda: gym.make("CartPole-v1")])
    env.seed(0)
    theirs = []
    returns, lengths = evaluate_policy(
        model,
        env,
        n_eval_episodes=3,
        deterministic=True,
        return_episode_rewards=True,
        warn=False,
        callback=lambda local, _: theirs.append(np.stack(local["states"])[:, :, 0]),
    )
    ours, our_returns = [], []
    single = gym.make("CartPole-v1")
    for episode in range(3):
        obs, _ = single.reset(seed=0 if episode == 0 else None)
        state, total, done = None, 0.0, False
        while not done:
            action, state = model.predict(obs, state=state, deterministic=True)
            ours.append(np.stack(state)[:, :, 0])
            obs, reward, terminated, truncated, _ = single.step(action)
            total += reward
            done = terminated or truncated
        our_returns.append(total)
    assert returns == our_returns
    assert sum(lengths) == len(ours) == len(theirs)
    np.testing.assert_allclose(np.stack(theirs), np.stack(ours), atol=1e-6)
