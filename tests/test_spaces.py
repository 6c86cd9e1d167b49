"""Every supported observation and action space trains and replays; unsupported ones are refused."""

import numpy as np
import pytest
from gymnasium import spaces

from agent import RecurrentPPO, UnsupportedSpaceError
from tests.replay_check import replay_errors
from tests.toy_envs import AnySpaceEnv, vector

BOX = spaces.Box(-1.0, 1.0, (3,), np.float32)
DISCRETE = spaces.Discrete(3)

OBS_SPACES = {
    "box": BOX,
    "box2d": spaces.Box(-1.0, 1.0, (2, 3), np.float32),
    "image_last": spaces.Box(0, 255, (12, 12, 3), np.uint8),
    "image_first": spaces.Box(0, 255, (3, 12, 12), np.uint8),
    "discrete": spaces.Discrete(4, start=1),
    "multidiscrete": spaces.MultiDiscrete([2, 3]),
    "multibinary": spaces.MultiBinary(4),
    "dict": spaces.Dict({"pos": BOX, "id": spaces.Discrete(2)}),
    "tuple": spaces.Tuple((BOX, spaces.Discrete(2))),
}
ACTION_SPACES = {
    "discrete": spaces.Discrete(2),
    "discrete_start": spaces.Discrete(3, start=-1),
    "box": spaces.Box(-2.0, 2.0, (2,), np.float32),
    "multidiscrete": spaces.MultiDiscrete([2, 3]),
    "multibinary": spaces.MultiBinary(3),
}


def make(obs_space, act_space, **kw):
    env = vector(lambda: AnySpaceEnv(obs_space, act_space))
    return RecurrentPPO(env, n_steps=24, batch_size=16, n_epochs=2, lstm_hidden_size=8, **kw)


@pytest.mark.parametrize("name", OBS_SPACES)
def test_observation_spaces(name):
    model = make(OBS_SPACES[name], DISCRETE)
    model.learn(96)
    buffer = model.collect_rollout()
    model.compute_advantages(buffer)
    lp_err, v_err, _ = replay_errors(model, buffer)
    assert lp_err < 1e-5 and v_err < 1e-5
    obs = OBS_SPACES[name].sample()
    action, _ = model.predict(obs)
    assert DISCRETE.contains(action)


@pytest.mark.parametrize("name", ACTION_SPACES)
def test_action_spaces(name):
    space = ACTION_SPACES[name]
    model = make(BOX, space)
    model.learn(96)  # AnySpaceEnv asserts every action it receives is in the space
    buffer = model.collect_rollout()
    model.compute_advantages(buffer)
    lp_err, _, _ = replay_errors(model, buffer)
    assert lp_err < 1e-5
    actions, _ = model.predict(np.stack([BOX.sample() for _ in range(5)]))
    assert len(actions) == 5
    assert all(space.contains(np.asarray(a, dtype=space.dtype)) for a in actions)


def test_box_actions_are_clipped_for_the_env_only():
    model = make(BOX, ACTION_SPACES["box"], log_std_init=2.0)
    model._start_episodes()
    buffer = model.collect_rollout()
    model.compute_advantages(buffer)
    assert buffer.actions.abs().max() > 2.0  # the stored samples are not clipped ...
    lp_err, _, _ = replay_errors(model, buffer)  # ... and their log-probs replay exactly
    assert lp_err < 1e-5


@pytest.mark.parametrize(
    "obs_space, act_space",
    [
        (spaces.Text(5), DISCRETE),
        (BOX, spaces.Text(5)),
        (BOX, spaces.Box(-1, 1, (2, 2), np.float32)),
    ],
)
def test_unsupported_spaces_are_refused(obs_space, act_space):
    with pytest.raises(UnsupportedSpaceError, match=r"unsupported|one-dimensional"):
        RecurrentPPO(None, observation_space=obs_space, action_space=act_space)
