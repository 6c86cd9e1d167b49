"""envs.previous_action.PreviousAction: the action just taken is part of the next observation,
the null action after every reset (the vector env's autoresets included)."""

from __future__ import annotations

from collections import OrderedDict

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

import train
from agent import RecurrentPPO
from agent.environment.vec_env import make_vec_env
from agent.environment.wrappers import EnvError
from agent.run.evaluation import evaluate_recorded_env
from envs.previous_action import PreviousAction, null_action
from tests.toy_envs import AnySpaceEnv

SPEC = "envs.previous_action:PreviousAction"

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


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")  # it is a wrapper
def test_gymnasium_s_checker_accepts_the_wrapped_env():
    env = PreviousAction(AnySpaceEnv(spaces.Discrete(3), spaces.Discrete(4)))
    check_env(env, skip_render_check=True)


def test_gym_make_rebuilds_the_wrapped_env_from_its_spec():
    env = PreviousAction(gym.make("Test/PrevActionAnySpace-v0"))
    again = gym.make(env.spec)
    assert isinstance(again, PreviousAction) and again.observation_space == env.observation_space


def test_a_dict_observation_keeps_its_keys_in_order():
    inner = spaces.Dict(OrderedDict([("z", spaces.Box(0, 1, (2,))), ("a", spaces.Discrete(2))]))
    env = PreviousAction(AnySpaceEnv(inner, spaces.Discrete(3)))
    assert list(env.observation_space.spaces) == ["z", "a", "prev_action"]
    obs, *_ = env.step(2)
    assert list(obs) == ["z", "a", "prev_action"] and obs["prev_action"] == 2


def test_a_dict_observation_with_the_key_already_is_refused():
    clash = spaces.Dict({"prev_action": spaces.Discrete(2)})
    with pytest.raises(ValueError, match="already has a 'prev_action' key"):
        PreviousAction(AnySpaceEnv(clash, spaces.Discrete(3)))


@pytest.mark.parametrize(
    ("space", "null"),
    [
        (spaces.Discrete(5, start=-2), 0),  # zero is an action
        (spaces.Discrete(3, start=1), 1),  # it is not: the lowest
        (spaces.MultiDiscrete([8, 8], start=[1, 0]), [1, 0]),
        (spaces.MultiBinary(3), [0, 0, 0]),
        (spaces.Box(1.0, 2.0, (2,)), [1.0, 1.0]),
        (spaces.Box(-1.0, 1.0, (2,)), [0.0, 0.0]),
    ],
)
def test_the_null_action_is_zero_where_allowed_else_the_lowest(space, null):
    action = null_action(space)
    np.testing.assert_array_equal(action, null)
    assert space.contains(action)


@pytest.mark.parametrize(
    ("actions", "taken", "shown"),
    [
        (spaces.MultiDiscrete([8, 8]), [3, 5], [3, 5]),
        (spaces.MultiBinary(3), [1, 0, 1], [1, 0, 1]),
        (spaces.Box(-1.0, 1.0, (2,)), [0.5, 3.0], [0.5, 1.0]),  # clipped, as the env applies it
    ],
)
def test_array_actions_are_shown_as_actions_of_the_space_and_copied(actions, taken, shown):
    env = PreviousAction(AnySpaceEnv(spaces.Discrete(2), actions))
    action = np.array(taken, dtype=actions.dtype)
    obs = env.observe(1, action)  # what `step` returns after `action`
    action[0] = 0  # the caller's array changes after the step; the observation must not
    np.testing.assert_allclose(obs["prev_action"], shown)
    assert env.observation_space.contains(obs)


def test_an_unsupported_action_space_is_refused():
    tuple_actions = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2)))
    with pytest.raises(ValueError, match="not Tuple"):
        PreviousAction(AnySpaceEnv(spaces.Discrete(2), tuple_actions))


@pytest.mark.parametrize("vec_env", ["sync", "async"])
def test_the_vector_env_shows_the_null_action_at_every_episode_start(vec_env):
    """After an autoreset (a step whose previous step ended the episode) the previous action is
    the null one, not the action that was ignored by the reset."""
    vec = make_vec_env("Test/PrevActionAnySpace-v0", 3, wrappers=[SPEC], vec_env=vec_env)
    try:
        obs, _ = vec.reset(seed=0)
        assert (obs["prev_action"] == 0).all()
        done = np.zeros(3, bool)
        starts = 0
        for t in range(40):
            actions = np.full(3, 1 + t % 3)
            obs, _, terminated, truncated, _ = vec.step(actions)
            np.testing.assert_array_equal(obs["prev_action"], np.where(done, 0, actions))
            starts += int(done.sum())
            done = terminated | truncated
        assert starts >= 3  # episodes end every 12 steps at the latest
    finally:
        vec.close()


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
        with pytest.raises(EnvError, match=rf"wrapper {SPEC} failed: .*not Tuple"):
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
