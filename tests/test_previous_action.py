"""envs.wrappers.PreviousAction: the action just taken is part of the next observation, the
null action after every reset (the vector env's autoresets included)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import train
from agent import RecurrentPPO
from agent.environment.vec_env import make_vec_env
from agent.environment.wrappers import EnvError
from agent.run.evaluation import evaluate_recorded_env
from envs.wrappers import PreviousAction, null_action
from tests.toy_envs import AnySpaceEnv

SPEC = "envs.wrappers:PreviousAction"

if "Test/PrevActionAnySpace-v0" not in gym.registry:
    gym.register(
        "Test/PrevActionAnySpace-v0",
        entry_point=AnySpaceEnv,
        kwargs={"observation_space": spaces.Discrete(3), "action_space": spaces.Discrete(4)},
    )


def test_the_observation_carries_the_action_just_taken():
    env = PreviousAction(AnySpaceEnv(spaces.Discrete(3), spaces.Discrete(4)))
    bare = AnySpaceEnv(spaces.Discrete(3), spaces.Discrete(4))
    assert env.observation_space == spaces.Dict(
        {"obs": spaces.Discrete(3), "prev_action": spaces.Discrete(4)}
    )
    obs, _ = env.reset(seed=5)
    expected, _ = bare.reset(seed=5)
    assert obs == {"obs": expected, "prev_action": 0}
    for action in (3, 1, 1, 2):
        obs, *_ = env.step(np.int64(action))
        assert obs["prev_action"] == action
        assert obs["obs"] == bare.step(action)[0]  # the env's own observation, untouched
        assert env.observation_space.contains(obs)


def test_a_dict_observation_keeps_its_keys_and_a_clash_is_refused():
    inner = spaces.Dict({"image": spaces.Box(0, 1, (2,)), "mission": spaces.Discrete(2)})
    env = PreviousAction(AnySpaceEnv(inner, spaces.Discrete(3)))
    assert list(env.observation_space.spaces) == ["image", "mission", "prev_action"]
    obs, *_ = env.step(2)
    assert set(obs) == {"image", "mission", "prev_action"} and obs["prev_action"] == 2
    clash = spaces.Dict({"prev_action": spaces.Discrete(2)})
    with pytest.raises(ValueError, match="already has a 'prev_action' key"):
        PreviousAction(AnySpaceEnv(clash, spaces.Discrete(3)))


@pytest.mark.parametrize(
    ("space", "null"),
    [
        (spaces.Discrete(5, start=-2), -2),
        (spaces.MultiDiscrete([8, 8], start=[1, 0]), [1, 0]),
        (spaces.MultiBinary(3), [0, 0, 0]),
        (spaces.Box(1.0, 2.0, (2,)), [1.0, 1.0]),  # zero is outside: its nearest action
        (spaces.Box(-1.0, 1.0, (2,)), [0.0, 0.0]),
    ],
)
def test_the_null_action_is_an_action_of_the_space(space, null):
    action = null_action(space)
    np.testing.assert_array_equal(action, null)
    assert space.contains(action)


def test_array_actions_are_copied_and_an_unsupported_space_is_refused():
    env = PreviousAction(AnySpaceEnv(spaces.Discrete(2), spaces.MultiDiscrete([8, 8])))
    action = np.array([3, 5])
    obs, *_ = env.step(action)
    action[0] = 7  # the caller's array changes after the step; the observation must not
    np.testing.assert_array_equal(obs["prev_action"], [3, 5])
    tuple_actions = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2)))
    with pytest.raises(ValueError, match="not Tuple"):
        PreviousAction(AnySpaceEnv(spaces.Discrete(2), tuple_actions))


def test_the_vector_env_shows_the_null_action_at_every_episode_start():
    """After an autoreset (a step whose previous step ended the episode) the previous action is
    the null one, not the action that was ignored by the reset."""
    vec = make_vec_env("Test/PrevActionAnySpace-v0", 3, wrappers=[SPEC], vec_env="sync")
    obs, _ = vec.reset(seed=0)
    assert (obs["prev_action"] == 0).all()
    done = np.zeros(3, bool)
    starts = 0
    for t in range(60):
        actions = np.full(3, 1 + t % 3)
        obs, _, terminated, truncated, _ = vec.step(actions)
        expected = np.where(done, 0, actions)
        np.testing.assert_array_equal(obs["prev_action"], expected)
        starts += int(done.sum())
        done = terminated | truncated
    assert starts >= 3  # episodes end every 12 steps at the latest


def test_an_unsupported_action_space_is_a_one_line_env_error():
    gym.register(
        "Test/PrevActionTupleActions-v0",
        entry_point=AnySpaceEnv,
        kwargs={
            "observation_space": spaces.Discrete(2),
            "action_space": spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2))),
        },
    )
    try:
        with pytest.raises(EnvError, match=r"wrapper envs.wrappers:PreviousAction failed"):
            make_vec_env("Test/PrevActionTupleActions-v0", 2, wrappers=[SPEC], vec_env="sync")
    finally:
        gym.registry.pop("Test/PrevActionTupleActions-v0")


def test_train_and_evaluate_with_the_wrapper_named_on_the_command_line(tmp_path, monkeypatch):
    """The Dict observation trains, and the saved model's evaluation wraps its env again."""
    monkeypatch.chdir(tmp_path)
    argv = [
        "--env", "CartPole-v1", "--wrapper", SPEC, "--n-envs", "2", "--n-steps", "32",
        "--batch-size", "32", "--n-epochs", "1", "--lstm-hidden-size", "8", "--net-arch", "8",
        "--total-timesteps", "128", "--no-progress", "--run-dir", "run",
    ]  # fmt: skip
    assert train.main(argv) == 0
    model = RecurrentPPO.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert set(model.observation_space.spaces) == {"obs", "prev_action"}
    assert model.env_spec["wrappers"] == [SPEC]
    results = evaluate_recorded_env(model, n_episodes=2, seed=0)  # what evaluate.py runs
    assert results["episodes"] == 2
