"""`PPOConfig.validate`: every field refuses a bad value in one line that names the field, the
value and what it takes, and accepts its default and other good values. The cases iterate the
dataclass's own fields, so a field added without a rule (`agent.config.FIELD_RULES`) or without
cases here fails."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import yaml
from gymnasium import spaces

import agent.algorithm.ppo as ppo_module
from agent import RecurrentPPO
from agent.config import FIELD_RULES, ConfigError, PPOConfig

FIELDS = [f.name for f in dataclasses.fields(PPOConfig)]

BAD = {
    "n_envs": [0, -1, 2.0, True, "16"],
    "n_steps": [0, 1.5, None],
    "vec_env": ["processes", None, 1],
    "batch_size": [0, 256.0],
    "n_epochs": [0, False],
    "learning_rate": [0, -1e-3, float("nan"), float("inf"), "1e-3", True],
    "lr_schedule": ["cosine", None],
    "desired_kl": [0, -0.01],
    "gamma": [-0.1, 1.01, float("nan")],
    "gae_lambda": [-0.1, 1.5],
    "clip_range": [0, -0.2],
    "clip_schedule": ["adaptive", None],
    "clip_range_vf": [0, -1, "none"],
    "ent_coef": [-1, float("-inf")],
    "vf_coef": [-5],
    "max_grad_norm": [0, -0.5],
    "target_kl": [0, -0.01],
    "normalize_advantage": [1, "true", None],
    "adam_eps": [-1, 0],
    "image_encoder": ["resnet"],
    "rnn_type": ["transformer", "LSTM"],
    "lstm_hidden_size": [0, 64.0],
    "n_lstm_layers": [0, 1.5],
    "shared_lstm": [0, "yes"],
    "bptt_len": [-1, 16.0],
    "net_arch": [64, [64, 0], [64.0], [True], "64", None],
    "activation_fn": ["gelu"],
    "forget_bias_init": ["half", "1.0.0", "inf", float("nan"), True],
    "chrono_max_len": [-3, 1.5],
    "log_std_init": [float("nan"), "0", None],
    "ortho_init": [1, None],
    "observe_action_mask": [1, "yes"],
    "normalize_obs": [0],
    "normalize_reward": ["false"],
    "seed": [-1, 2**32, 1.0],
    "device": ["tpu", "cuda:x", "gpu:0", None],
    "fast_path": [1],
}
"""Values each field must refuse: out of range, of the wrong type, a bool for a count."""

GOOD = {
    "n_envs": [2, np.int64(4)],  # 2 x 128 steps hold the default batch of 256
    "n_steps": [32],
    "vec_env": ["sync", "async", "native"],
    "batch_size": [2048],  # the whole rollout of 16 x 128
    "n_epochs": [1],
    "learning_rate": [3e-4, 1, np.float32(1e-3)],
    "lr_schedule": ["linear", "adaptive"],
    "desired_kl": [0.01],
    "gamma": [0, 1, 0.9],
    "gae_lambda": [0, 1.0],
    "clip_range": [0.1],
    "clip_schedule": ["linear"],
    "clip_range_vf": [0.2],
    "ent_coef": [0, 0.0],
    "vf_coef": [0, 1.0],
    "max_grad_norm": [10],
    "target_kl": [0.02],
    "normalize_advantage": [False, np.bool_(False)],
    "adam_eps": [1e-8],
    "image_encoder": ["cnn", "flatten"],
    "rnn_type": ["gru", "peephole", "mingru", "ffm", "none"],
    "lstm_hidden_size": [32],
    "n_lstm_layers": [2],
    "shared_lstm": [True],
    "bptt_len": [16],
    "net_arch": [[], [64, 64], (32, np.int64(16))],
    "activation_fn": ["relu"],
    "forget_bias_init": ["chrono", "default", "chrono-forget", "1.5", "-2", "1e-3", 1.0],
    "chrono_max_len": [1000],
    "log_std_init": [-0.5, 1],
    "ortho_init": [False],
    "observe_action_mask": [True],
    "normalize_obs": [True],
    "normalize_reward": [True],
    "seed": [2**32 - 1, np.int64(7)],
    "device": ["cpu", "cuda", "cuda:1"],
    "fast_path": [False],
}
"""Values besides the default that each field must accept."""


def test_every_field_has_a_rule():
    assert set(FIELD_RULES) == set(FIELDS)


@pytest.mark.parametrize("name", FIELDS)
def test_bad_values_are_refused_in_one_line_naming_field_and_value(name):
    assert BAD.get(name), f"give {name} a rule in FIELD_RULES and bad values in BAD"
    for value in BAD[name]:
        with pytest.raises(ConfigError) as error:
            PPOConfig(**{name: value}).validate()
        message = str(error.value)
        assert message.startswith(f"{name} must be "), message
        assert message.endswith(f", got {value!r}"), message
        assert len(message.splitlines()) == 1, message


@pytest.mark.parametrize("name", FIELDS)
def test_the_default_and_other_good_values_are_accepted(name):
    assert GOOD.get(name), f"give {name} good values besides its default in GOOD"
    for value in [getattr(PPOConfig(), name), *GOOD[name]]:
        config = PPOConfig(**{name: value}).validate()
        # stored as the field's own type, so that a run folder can save it and read it back
        saved = yaml.safe_load(yaml.safe_dump(config.to_dict()))
        assert PPOConfig.from_dict(saved).validate() == config


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ent_coef": -1}, "ent_coef must be a number >= 0, got -1"),
        ({"vf_coef": -5}, "vf_coef must be a number >= 0, got -5"),
        ({"adam_eps": -1}, "adam_eps must be a number > 0, got -1"),
        ({"n_lstm_layers": 1.5}, "n_lstm_layers must be a positive integer, got 1.5"),
        ({"chrono_max_len": -3}, "chrono_max_len must be an integer >= 0, got -3"),
        ({"gamma": 2}, "gamma must be a number in [0, 1], got 2"),
        ({"target_kl": 0}, "target_kl must be a number > 0 or None, got 0"),
        ({"n_envs": True}, "n_envs must be a positive integer, got True"),
        ({"shared_lstm": 1}, "shared_lstm must be True or False, got 1"),
        ({"seed": -1}, "seed must be an integer in [0, 4294967295], got -1"),
        ({"net_arch": [64, 0]}, "net_arch must be a list of positive integers, got [64, 0]"),
        (
            {"device": "gpu"},
            "device must be one of auto, cpu, cuda or cuda:N, got 'gpu'",
        ),
        (
            {"n_envs": 2, "n_steps": 4, "batch_size": 16},
            "batch_size (16) is larger than a rollout (n_envs * n_steps = 8)",
        ),
        (
            {"rnn_type": "ffm", "lstm_hidden_size": 30},
            "rnn_type ffm needs lstm_hidden_size divisible by 4 (4 oscillators per memory "
            "channel), got 30",
        ),
    ],
)
def test_messages_say_what_the_field_takes(values, message):
    with pytest.raises(ConfigError) as error:
        PPOConfig(**values).validate()
    assert str(error.value) == message


def test_valid_values_are_stored_as_the_field_s_type():
    config = PPOConfig(
        n_envs=np.int64(4),
        learning_rate=1,
        gamma=np.float32(0.5),
        shared_lstm=np.bool_(True),
        net_arch=(32, np.int64(16)),
        forget_bias_init=1.5,
    ).validate()
    assert type(config.n_envs) is int and config.n_envs == 4
    assert type(config.learning_rate) is float and config.learning_rate == 1.0
    assert type(config.gamma) is float and config.gamma == 0.5
    assert config.shared_lstm is True
    assert config.net_arch == [32, 16] and all(type(size) is int for size in config.net_arch)
    assert config.forget_bias_init == "1.5"


def test_the_python_api_validates_before_building_anything(monkeypatch):
    """`RecurrentPPO(env, **hyperparameters)` refuses a bad value before it makes the env or
    the networks, whichever way the env is given."""

    def must_not_run(*args, **kwargs):
        raise AssertionError("built before the config was validated")

    monkeypatch.setattr(ppo_module, "make_vec_env", must_not_run)
    monkeypatch.setattr(ppo_module, "RecurrentActorCritic", must_not_run)
    with pytest.raises(ConfigError, match="ent_coef must be a number >= 0, got -1"):
        RecurrentPPO("CartPole-v1", ent_coef=-1)
    with pytest.raises(ConfigError, match="n_lstm_layers"):
        RecurrentPPO(
            None,
            observation_space=spaces.Box(-1, 1, (3,)),
            action_space=spaces.Discrete(2),
            n_lstm_layers=1.5,
        )
    env = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")
    try:
        with pytest.raises(ConfigError, match="adam_eps"):
            RecurrentPPO(env, adam_eps=-1, batch_size=64)
    finally:
        env.close()
