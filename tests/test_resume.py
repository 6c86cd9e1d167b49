"""Resume is exact: a run saved half-way and loaded again trains to the same weights as a run
that never stopped (same optimizer moments, learning-rate position, normaliser statistics, RNG
streams, env episodes and recurrent memory)."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers.vector import RecordEpisodeStatistics

import envs  # noqa: F401
import train as train_script
from agent import RecurrentPPO
from agent.environment.env_state import STAT_FIELDS, get_env_state, set_env_state

SETTINGS = {
    "env_kwargs": {"length": 6},
    "n_envs": 8,
    "n_steps": 64,
    "batch_size": 128,
    "n_epochs": 2,
    "lr_schedule": "linear",
    "normalize_obs": True,
    "normalize_reward": True,
    "lstm_hidden_size": 16,
    "seed": 5,
}


def stop_at(steps: int):
    return lambda model: model.num_timesteps < steps


def assert_same_weights(a: RecurrentPPO, b: RecurrentPPO) -> None:
    for (name, pa), pb in zip(a.policy.named_parameters(), b.policy.parameters(), strict=True):
        assert torch.equal(pa, pb), f"{name} differs by {(pa - pb).abs().max().item():.3g}"


@pytest.mark.parametrize("rnn_type", ["lstm", "mingru", "ffm"])
def test_save_load_in_the_middle_trains_to_the_same_weights(tmp_path, rnn_type):
    settings = {**SETTINGS, "rnn_type": rnn_type}
    straight = RecurrentPPO("Memory/TMaze-v0", **settings).learn(4096)

    first = RecurrentPPO("Memory/TMaze-v0", **settings)
    first.learn(4096, callback=stop_at(2048))
    assert first.num_timesteps == 2048
    first.save(tmp_path / "half.pt")
    first.close()
    torch.manual_seed(123)  # anything that ran in between must not matter
    np.random.seed(123)

    resumed = RecurrentPPO.load(tmp_path / "half.pt", env="recorded")
    resumed.learn(4096 - resumed.num_timesteps, reset_num_timesteps=False)

    assert resumed.num_timesteps == straight.num_timesteps == 4096
    assert_same_weights(straight, resumed)
    resumed_stats, straight_stats = resumed.episode_statistics, straight.episode_statistics
    assert resumed_stats.episode_count == straight_stats.episode_count
    assert list(resumed_stats.return_queue) == list(straight_stats.return_queue)


def test_a_resume_without_the_env_state_would_differ(tmp_path):
    """The test above can fail: without the saved episodes, the resumed run diverges."""
    straight = RecurrentPPO("Memory/TMaze-v0", **SETTINGS).learn(4096)
    first = RecurrentPPO("Memory/TMaze-v0", **SETTINGS)
    first.learn(4096, callback=stop_at(2048))
    first.save(tmp_path / "half.pt")
    resumed = RecurrentPPO.load(tmp_path / "half.pt", env="Memory/TMaze-v0")
    resumed.learn(2048, reset_num_timesteps=False)
    with pytest.raises(AssertionError, match="differs"):
        assert_same_weights(straight, resumed)


def test_train_script_resume_matches_a_straight_run(tmp_path):
    """A finished 2k run resumed to 4k equals a 4k run. (With a linear learning-rate schedule it
    could not: the schedule anneals to the target, and raising the target changes it.)"""
    common = ["--env", "Memory/TMaze-v0", "--env-kwargs", "length=6", "--n-envs", "8"]
    common += ["--n-steps", "64", "--batch-size", "128", "--lstm-hidden-size", "16"]
    common += ["--normalize-obs", "true", "--seed", "5"]
    common += [
        "--normalize-reward",
        "true",
        "--checkpoint-freq",
        "1024",
        "--eval-freq",
        "0",
        "--no-progress",
    ]
    assert (
        train_script.main([*common, "--total-timesteps", "4096", "--run-dir", str(tmp_path / "a")])
        == 0
    )
    assert (
        train_script.main([*common, "--total-timesteps", "2048", "--run-dir", str(tmp_path / "b")])
        == 0
    )
    assert (
        train_script.main(
            ["--resume", str(tmp_path / "b"), "--total-timesteps", "4096", "--no-progress"]
        )
        == 0
    )
    a = RecurrentPPO.load(tmp_path / "a" / "model.pt")
    b = RecurrentPPO.load(tmp_path / "b" / "model.pt")
    assert b.num_timesteps == 4096
    assert_same_weights(a, b)


def test_native_vector_env_state_round_trips():
    env = gym.make_vec("Memory/RepeatFirst-v0", num_envs=3, vectorization_mode="vector_entry_point")
    env.reset(seed=1)
    for _ in range(4):
        env.step(env.action_space.sample())
    saved = env.get_state()
    expected = [env.step(np.array([0, 1, 2])) for _ in range(12)]
    other = gym.make_vec(
        "Memory/RepeatFirst-v0", num_envs=3, vectorization_mode="vector_entry_point"
    )
    other.reset(seed=99)
    other.set_state(saved)
    for want in expected:
        got = other.step(np.array([0, 1, 2]))
        for w, g in zip(want[:4], got[:4], strict=True):
            np.testing.assert_array_equal(w, g)
    with pytest.raises(ValueError, match="copies"):
        gym.make_vec(
            "Memory/RepeatFirst-v0", num_envs=2, vectorization_mode="vector_entry_point"
        ).set_state(saved)


def test_an_abandoned_iteration_leaves_no_trace():
    """A stop requested in the middle of a rollout (or of an update) puts the model back where
    the iteration began; training on from there equals a run that was never stopped."""
    straight = RecurrentPPO("Memory/TMaze-v0", **SETTINGS).learn(4096)
    # an iteration polls 64 times while collecting, then 8 times while updating (2 epochs of
    # 4 minibatches): stop in the rollout of the 2nd iteration, and in the update of the 1st
    for polls_before_stop in (72 + 28, 64 + 2):
        model = RecurrentPPO("Memory/TMaze-v0", **SETTINGS)
        model.learn(4096, callback=stop_at(1024))  # two iterations
        polls = iter(range(10**6))
        model.stop_check = lambda polls=polls, n=polls_before_stop: next(polls) >= n
        model.learn(4096 - 1024, reset_num_timesteps=False)
        assert model.num_timesteps == 1024 + 512 * (polls_before_stop // 72)
        model.stop_check = None
        model.learn(4096 - model.num_timesteps, reset_num_timesteps=False)
        assert_same_weights(straight, model)


@pytest.mark.parametrize("save_after", [20, 27])  # just after all episodes ended; mid-episode
def test_record_episode_statistics_keeps_what_env_state_saves(save_after):
    """`agent.environment.env_state` saves and restores the running sums of Gymnasium's
    `RecordEpisodeStatistics` through attributes that Gymnasium does not document
    (`STAT_FIELDS` and `episode_count`; checked on Gymnasium 1.4.0). This fails if a release
    renames them or changes their meaning: a resumed run would then log wrong episode returns."""

    def make():
        return RecordEpisodeStatistics(
            gym.make_vec(
                "Memory/RepeatFirst-v0", num_envs=3, vectorization_mode="vector_entry_point"
            )
        )

    def actions(t):
        return np.array([t % 2, (t // 2) % 3, 1]) % 4

    def logged_episodes(env):
        logged = []
        for t in range(save_after, save_after + 30):
            *_, info = env.step(actions(t))
            if "_episode" in info:
                episode = info["episode"]
                logged.append(
                    (info["_episode"].tolist(), episode["r"].tolist(), episode["l"].tolist())
                )
        return logged, env.episode_count

    env = make()
    missing = [name for name in (*STAT_FIELDS, "episode_count") if not hasattr(env, name)]
    assert not missing, f"Gymnasium {gym.__version__}'s RecordEpisodeStatistics has no {missing}"
    env.reset(seed=1)
    for t in range(save_after):
        env.step(actions(t))
    assert env.episode_returns.any() and env.episode_count == 3
    saved = copy.deepcopy(get_env_state(env))  # it shares memory with the env
    expected = logged_episodes(env)
    assert expected[0]

    other = make()
    other.reset(seed=99)
    set_env_state(other, saved)
    assert logged_episodes(other) == expected
