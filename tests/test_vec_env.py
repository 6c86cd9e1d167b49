"""`vec_env`: native, sync and async vector envs, and what `auto` picks."""

import time

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

import agent.environment.vec_env as vec_env_module
import train as train_script
from agent import ConfigError, EnvError, PPOConfig, RecurrentPPO
from agent.environment.env_state import get_env_state
from agent.environment.vec_env import async_threshold, make_vec_env, seconds_per_step
from envs.tmaze import TMazeVectorEnv

TINY = {
    "n_envs": 2,
    "n_steps": 16,
    "batch_size": 32,
    "n_epochs": 1,
    "lstm_hidden_size": 8,
    "device": "cpu",
}


class StepCostEnv(gym.Env):
    """Random observations drawn from the env's own generator, reward = action, episodes of 5
    steps (time limit). Each step sleeps `delay` seconds; from the `fail_at`-th step on (counted
    over episodes), steps raise RuntimeError."""

    observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.delay = delay
        self.fail_at = fail_at
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.np_random.random(2, dtype=np.float32), {}

    def step(self, action):
        self.steps += 1
        if self.fail_at is not None and self.steps >= self.fail_at:
            raise RuntimeError(f"env copy broke at step {self.steps}")
        if self.delay:
            time.sleep(self.delay)
        return self.np_random.random(2, dtype=np.float32), float(action), False, False, {}


class DoubleReward(gym.RewardWrapper):
    """A per-env wrapper whose effect shows in every step."""

    def reward(self, reward):
        return 2 * reward


if "Test/StepCost-v0" not in gym.registry:
    gym.register("Test/StepCost-v0", entry_point=StepCostEnv, max_episode_steps=5)

SLOW = {"delay": 10 * async_threshold(2)}
"""Ten times the step cost above which `auto` goes async on 2 CPUs."""


def processes_of(model: RecurrentPPO) -> list:
    env = model.env
    while not isinstance(env, AsyncVectorEnv):
        env = env.env
    return list(env.processes)


@pytest.mark.parametrize(
    ("env_id", "vec_env", "cls"),
    [
        ("Memory/TMaze-v0", "native", TMazeVectorEnv),
        ("Memory/TMaze-v0", "sync", SyncVectorEnv),
        ("Memory/TMaze-v0", "async", AsyncVectorEnv),
        ("Acrobot-v1", "sync", SyncVectorEnv),
        ("Acrobot-v1", "async", AsyncVectorEnv),
    ],
)
def test_each_mode_builds_its_gymnasium_class(env_id, vec_env, cls):
    env = make_vec_env(env_id, 2, vec_env=vec_env)
    try:
        assert type(env.env) is cls
        assert env.num_envs == 2
    finally:
        env.close()


def test_async_steps_the_same_episodes_as_sync_wrappers_included():
    """Same seed, same actions: the same observations, rewards and autoresets (NEXT_STEP)."""
    wrappers = ["tests.test_vec_env:DoubleReward"]
    sync = make_vec_env("Test/StepCost-v0", 3, wrappers=wrappers, vec_env="sync")
    asyn = make_vec_env("Test/StepCost-v0", 3, wrappers=wrappers, vec_env="async")
    try:
        obs_s, _ = sync.reset(seed=7)
        obs_a, _ = asyn.reset(seed=7)
        np.testing.assert_array_equal(obs_s, obs_a)
        actions = np.random.default_rng(0).integers(0, 2, size=(17, 3))
        resetting = np.zeros(3, dtype=bool)  # NEXT_STEP: the step after an episode's end resets
        for action in actions:  # episodes of 5 steps, reset at steps 6 and 12
            out_s, out_a = sync.step(action), asyn.step(action)
            for got_s, got_a in zip(out_s[:4], out_a[:4], strict=True):
                np.testing.assert_array_equal(got_s, got_a)
            np.testing.assert_array_equal(out_a[1], np.where(resetting, 0.0, 2.0 * action))
            resetting = out_a[2] | out_a[3]
        assert resetting.all()  # step 17 ended the third episodes
    finally:
        sync.close()
        asyn.close()


def test_native_without_a_native_env_is_a_clear_error():
    with pytest.raises(EnvError, match="'Acrobot-v1' has no native vector env"):
        make_vec_env("Acrobot-v1", 2, vec_env="native")


def test_native_with_wrappers_is_a_clear_error():
    wrappers = ["gymnasium.wrappers:FlattenObservation"]
    with pytest.raises(EnvError, match="native vector env cannot apply per-env wrappers"):
        make_vec_env("Memory/TMaze-v0", 2, wrappers=wrappers, vec_env="native")


def test_an_unknown_vec_env_is_a_config_error():
    with pytest.raises(ConfigError, match="vec_env must be one of auto, native, sync, async"):
        PPOConfig(vec_env="processes").validate()


@pytest.mark.parametrize(
    ("env_id", "wrappers", "cls"),
    [
        ("Memory/TMaze-v0", [], TMazeVectorEnv),
        ("Memory/TMaze-v0", ["gymnasium.wrappers:FlattenObservation"], SyncVectorEnv),
        ("Acrobot-v1", [], SyncVectorEnv),  # a pure-Python step of about 50 us
        ("Test/StepCost-v0", [], SyncVectorEnv),
    ],
)
def test_auto_picks_native_else_sync_for_cheap_envs(monkeypatch, env_id, wrappers, cls):
    monkeypatch.setattr(vec_env_module, "usable_cpus", lambda: 2)
    env = make_vec_env(env_id, 4, wrappers=wrappers)
    try:
        assert type(env.env) is cls
    finally:
        env.close()


def test_auto_picks_async_when_a_step_is_slow(monkeypatch):
    monkeypatch.setattr(vec_env_module, "usable_cpus", lambda: 2)
    env = make_vec_env("Test/StepCost-v0", 2, SLOW)
    try:
        assert type(env.env) is AsyncVectorEnv
    finally:
        env.close()


@pytest.mark.parametrize(("cpus", "n_envs"), [(1, 4), (2, 1)])
def test_auto_stays_sync_without_a_second_cpu_or_copy(monkeypatch, cpus, n_envs):
    monkeypatch.setattr(vec_env_module, "usable_cpus", lambda: cpus)
    env = make_vec_env("Test/StepCost-v0", n_envs, SLOW)
    try:
        assert type(env.env) is SyncVectorEnv
    finally:
        env.close()


def test_async_threshold_shares_the_step_among_the_cpus():
    """Async's `r + t / cpus` per copy beats sync's `t` once `t > r * cpus / (cpus - 1)`."""
    r = vec_env_module.ASYNC_ROUND_TRIP_S
    assert async_threshold(2) == pytest.approx(2 * r)
    assert async_threshold(4) == pytest.approx(4 / 3 * r)
    assert async_threshold(1) == float("inf")


def test_seconds_per_step_times_the_step():
    with gym.make("Test/StepCost-v0", delay=0.005) as env:
        assert 0.005 <= seconds_per_step(env) < 0.05
    with gym.make("Test/StepCost-v0") as env:
        assert seconds_per_step(env) < 0.001


def test_learn_on_async_matches_sync_and_closes_its_workers(tmp_path):
    """Async is a drop-in for sync: same episodes, so the same weights. It has no saved env
    state (no exact resume), saves all the same, and `close` ends its worker processes."""
    sync = RecurrentPPO("Acrobot-v1", vec_env="sync", **TINY).learn(64)
    asyn = RecurrentPPO("Acrobot-v1", vec_env="async", **TINY).learn(64)
    workers = processes_of(asyn)
    assert len(workers) == 2 and all(p.is_alive() for p in workers)
    assert asyn.num_timesteps == sync.num_timesteps == 64
    for a, b in zip(sync.policy.parameters(), asyn.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    assert get_env_state(asyn.env) is None
    asyn.save(tmp_path / "model.pt")
    asyn.close()
    sync.close()
    assert all(p.exitcode == 0 for p in workers)


@pytest.mark.filterwarnings("ignore:.*ERROR:")  # Gymnasium logs the worker's traceback
def test_an_error_in_an_async_env_copy_surfaces_and_closing_works():
    model = RecurrentPPO("Test/StepCost-v0", vec_env="async", env_kwargs={"fail_at": 20}, **TINY)
    workers = processes_of(model)
    with pytest.raises(RuntimeError, match="env copy broke at step 20"):
        model.learn(64)
    model.close()
    assert all(not p.is_alive() for p in workers)


@pytest.mark.filterwarnings("ignore:.*ERROR:")  # Gymnasium logs the worker's traceback
def test_train_script_reports_an_async_env_error_of_a_module_id(tmp_path, capsys):
    """`module:Id` is made in the workers too, and its failure is an environment error. Each
    copy fails at its 40th step, in the third rollout of 2 x 16 steps: 64 steps were trained."""
    argv = ["--env", "tests.test_vec_env:Test/StepCost-v0", "--env-kwargs", "fail_at=40"]
    argv += ["--vec-env", "async", "--n-envs", "2", "--n-steps", "16", "--batch-size", "32"]
    argv += ["--lstm-hidden-size", "8", "--total-timesteps", "256", "--eval-freq", "0"]
    argv += ["--run-dir", str(tmp_path / "run"), "--device", "cpu"]
    assert train_script.main(argv) == 1
    err = capsys.readouterr().err
    assert "error: environment 'tests.test_vec_env:Test/StepCost-v0' failed at step 64" in err
    assert "env copy broke at step 40" in err
