"""Command-line parsing: one flag per config field, defaults < preset < flags, typed values."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from agent import ConfigError, PPOConfig
from agent.cli import (
    DEFAULT_ENV,
    UsageError,
    config_overrides,
    field_docs,
    flag_name,
    parse_env_kwargs,
    resolve_settings,
    sanitize,
    train_parser,
)

FIELDS = [f.name for f in dataclasses.fields(PPOConfig)]


def parse(*argv: str):
    return train_parser().parse_args(list(argv))


def write_preset(tmp_path, **values) -> str:
    path = tmp_path / "preset.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


@pytest.mark.parametrize("name", FIELDS)
def test_every_config_field_has_a_documented_flag(name):
    actions = train_parser()._option_string_actions
    assert flag_name(name) in actions
    doc = field_docs(PPOConfig)[name]
    assert doc and doc in actions[flag_name(name)].help


def test_docs_are_read_from_the_source():
    docs = field_docs(PPOConfig)
    assert set(docs) == set(FIELDS)
    assert docs["gamma"] == "Discount factor."


def test_no_flags_means_no_overrides():
    assert config_overrides(parse()) == {}


def test_flags_are_typed():
    got = config_overrides(
        parse(
            "--n-steps", "32",
            "--learning-rate", "3e-4",
            "--rnn-type", "gru",
            "--net-arch", "64", "64",
            "--target-kl", "none",
            "--clip-range-vf", "0.2",
        )
    )  # fmt: skip
    assert got == {
        "n_steps": 32,
        "learning_rate": 3e-4,
        "rnn_type": "gru",
        "net_arch": [64, 64],
        "target_kl": None,
        "clip_range_vf": 0.2,
    }


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--shared-lstm"], True),
        (["--no-shared-lstm"], False),
        (["--shared-lstm", "false"], False),
        (["--shared-lstm", "TRUE"], True),
        (["--shared-lstm", "0"], False),
    ],
)
def test_bool_flags(argv, expected):
    assert config_overrides(parse(*argv)) == {"shared_lstm": expected}


@pytest.mark.parametrize(
    "argv", [["--n-steps", "abc"], ["--shared-lstm", "maybe"], ["--net-arch"], ["--nope", "1"]]
)
def test_malformed_flags_are_one_line_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1


def test_precedence_defaults_then_preset_then_flags(tmp_path):
    preset = write_preset(
        tmp_path, env="CartPole-v1", n_steps=64, lstm_hidden_size=32, total_timesteps=5000
    )
    settings = resolve_settings(parse("--config", preset, "--n-steps", "32", "--batch-size", "64"))
    cfg = settings.config
    assert cfg.n_steps == 32  # flag beats preset
    assert cfg.lstm_hidden_size == 32  # preset beats default
    assert cfg.gamma == PPOConfig().gamma  # default
    assert cfg.batch_size == 64
    assert settings.env_id == "CartPole-v1"
    assert settings.total_timesteps == 5000
    assert (
        resolve_settings(parse("--config", preset, "--total-timesteps", "7")).total_timesteps == 7
    )


def test_env_kwargs_merge_over_the_preset_and_are_dropped_for_another_env(tmp_path):
    preset = write_preset(
        tmp_path, env="Memory/TMaze-v0", env_kwargs={"length": 5, "noise": True}, wrappers=["a:B"]
    )
    same = resolve_settings(parse("--config", preset, "--env-kwargs", "length=100"))
    assert same.env_kwargs == {"length": 100, "noise": True}
    assert same.wrappers == ["a:B"]
    other = resolve_settings(parse("--config", preset, "--env", "CartPole-v1"))
    assert other.env_kwargs == {} and other.wrappers == []


def test_no_arguments_is_the_default_task():
    settings = resolve_settings(parse())
    assert settings.env_id == DEFAULT_ENV
    assert 0 < settings.env_kwargs["length"] <= 20
    assert settings.total_timesteps > 0


def test_env_kwargs_are_literals_else_strings():
    got = parse_env_kwargs(["length=100", "noise=True", "p=0.5", "name=abc", "size=(3, 3)", "s="])
    assert got == {
        "length": 100,
        "noise": True,
        "p": 0.5,
        "name": "abc",
        "size": (3, 3),
        "s": "",
    }


@pytest.mark.parametrize("item", ["length", "=3", "two words=1"])
def test_malformed_env_kwargs(item):
    with pytest.raises(UsageError, match="key=value"):
        parse_env_kwargs([item])


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"n_stepz": 3}, "n_stepz"),
        ({"n_steps": "32"}, "n_steps"),
        ({"shared_lstm": "yes"}, "shared_lstm"),
        ({"n_steps": 0}, "n_steps"),
        ({"n_envs": 2, "n_steps": 4, "batch_size": 64}, "batch_size"),
    ],
)
def test_bad_preset_values_name_the_field(tmp_path, values, match):
    with pytest.raises(ConfigError, match=match):
        resolve_settings(parse("--config", write_preset(tmp_path, **values)))


def test_preset_numbers_are_coerced_where_harmless(tmp_path):
    preset = write_preset(tmp_path, learning_rate=1, forget_bias_init=1.0, total_timesteps=1.0e4)
    settings = resolve_settings(parse("--config", preset))
    assert settings.config.learning_rate == 1.0 and isinstance(settings.config.learning_rate, float)
    assert settings.config.forget_bias_init == "1.0"
    assert settings.total_timesteps == 10_000


@pytest.mark.parametrize("text", ["[1, 2", "- a\n- b\n"])
def test_malformed_preset_files(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=r"bad\.yaml"):
        resolve_settings(parse("--config", str(path)))


def test_missing_preset():
    with pytest.raises(UsageError, match="cannot read preset"):
        resolve_settings(parse("--config", "/no/such/preset.yaml"))


def test_example_preset_is_valid():
    preset = Path(__file__).resolve().parents[1] / "configs" / "tmaze-short.yaml"
    settings = resolve_settings(parse("--config", str(preset)))
    assert settings.env_id == "Memory/TMaze-v0"


def test_env_ids_become_folder_names():
    assert sanitize("Memory/TMaze-v0") == "Memory-TMaze-v0"
    assert sanitize("my_pkg.envs:Foo-v1") == "my_pkg.envs-Foo-v1"
