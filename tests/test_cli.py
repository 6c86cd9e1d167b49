"""Command-line parsing: one flag per config field, defaults < preset < flags, typed values."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from agent import ConfigError, EnvError, PPOConfig
from agent.environment.vec_env import make_vec_env
from agent.run import cli
from agent.run.cli import (
    CONFIGS,
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


def test_train_help_stays_about_80_lines(monkeypatch):
    """`train.py --help` is a manual, not a lab notebook: about 80 lines at 80 columns (85 leaves
    room for a flag or two), each flag what it does and when to change it; the measurements
    behind the defaults live in RESULTS.md."""
    monkeypatch.setenv("COLUMNS", "80")
    lines = train_parser().format_help().splitlines()
    assert len(lines) <= 85, f"train.py --help has {len(lines)} lines"
    assert max(map(len, lines)) <= 80


def test_help_shows_each_hyperparameter_with_its_default(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    help_text = train_parser().format_help()
    assert help_text.startswith("usage: train.py [options]\n")
    for shown in ("--gamma 0.99", "--target-kl none", "--net-arch 64 ...", "--shared-lstm false"):
        assert shown in help_text
    assert "(default:" not in help_text.split("hyperparameters:")[1]


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


def test_abbreviated_flags_are_refused(capsys):
    for argv in (["--n-env", "4"], ["--total-timestep", "100"]):
        with pytest.raises(SystemExit) as exit_info:
            parse(*argv)
        assert exit_info.value.code == 2
        assert "unrecognized arguments" in capsys.readouterr().err


def test_a_bad_number_on_the_command_line_says_what_it_expects(capsys):
    with pytest.raises(SystemExit):
        parse("--n-steps", "lots")
    assert "invalid integer value: 'lots'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("--gamma", "high")
    assert "invalid number value: 'high'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"n_steps": "lots"}, "n_steps must be a positive integer, got 'lots'"),
        ({"gamma": "high"}, "gamma must be a number in [0, 1], got 'high'"),
        ({"target_kl": "x"}, "target_kl must be a number > 0 or None"),
        ({"net_arch": "64"}, "net_arch must be a list of positive integers"),
        ({"shared_lstm": "yes"}, "shared_lstm must be True or False"),
    ],
)
def test_preset_type_errors_are_in_words(tmp_path, values, words):
    with pytest.raises(ConfigError) as error:
        resolve_settings(parse("--config", write_preset(tmp_path, **values)))
    assert words in str(error.value)


def test_invalid_yaml_gives_its_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("n_steps: 32\ngamma: 0.99\nnet_arch: [64, 64\n")
    with pytest.raises(UsageError, match=r"bad\.yaml is not valid YAML: line 4, column 1"):
        resolve_settings(parse("--config", str(path)))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e-5", 1e-5),
        ("3e-4", 3e-4),
        ("-2e-3", -2e-3),
        ("1E5", 1e5),
        ("+1e3", 1e3),
        ("1.0e5", 1e5),
        (".5e2", 50.0),
        ("1.0e-5", 1e-5),  # YAML 1.1's own float, still one
        ("12", 12),
        ("lin_1e-3", "lin_1e-3"),
        ("'1e-5'", "1e-5"),  # quoted: a string
        ("1e", "1e"),
        ("e5", "e5"),
        ("1e-5x", "1e-5x"),
    ],
)
def test_yaml_numbers_are_read_as_people_write_them(text, value):
    """YAML 1.1 (PyYAML's) reads `1e-5` as a string; the project's loader reads it as 1.2 does."""
    read = cli.load_yaml(f"x: {text}")["x"]
    assert read == value and type(read) is type(value)
    assert yaml.safe_load("x: 1e-5")["x"] == "1e-5"  # PyYAML's own loader is left alone


def test_presets_and_search_spaces_take_numbers_as_people_write_them(tmp_path):
    from agent.tune.search_space import parse_search_space, read_search_space

    preset = tmp_path / "preset.yaml"
    preset.write_text("learning_rate: 3e-4\nadam_eps: 1e-8\n")
    config = resolve_settings(parse("--config", str(preset))).config
    assert (config.learning_rate, config.adam_eps) == (3e-4, 1e-8)
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {loguniform: [1e-5, 1e-2]}\n")  # the README's example
    (dimension,) = parse_search_space(read_search_space(space), PPOConfig(), "space.yaml")
    assert dimension.args == (1e-5, 1e-2)


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "null\n", "{}\n"])
def test_an_empty_preset_is_an_error(tmp_path, text, capsys):
    import train

    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=r"^preset .*empty\.yaml is empty$"):
        resolve_settings(parse("--config", str(path)))
    assert train.main(["--config", str(path)]) == 2
    assert capsys.readouterr().err == f"error: preset {path} is empty\n"


def test_a_search_space_given_as_preset_says_where_it_goes():
    from agent.tune.search_space import ARITY

    space = CONFIGS / "search" / "ppo.yaml"
    with pytest.raises(UsageError) as error:
        resolve_settings(parse("--config", str(space)))
    assert str(error.value) == (
        f"{space} is a search space (learning_rate: {{'loguniform': [0.0001, 0.003]}}), not a "
        f"preset: use tune.py --search {space}"
    )
    assert set(cli.SEARCH_DISTRIBUTIONS) == set(ARITY)


def test_presets_are_found_by_name():
    by_name = resolve_settings(parse("--config", "tmaze-100"))
    by_file = resolve_settings(parse("--config", str(CONFIGS / "tmaze-100.yaml")))
    assert by_name.env_kwargs == by_file.env_kwargs == {"length": 100}
    assert by_name.config == by_file.config
    assert resolve_settings(parse("--config", "tmaze-100.yaml")).config == by_file.config


def test_an_unknown_preset_name_lists_the_presets():
    with pytest.raises(UsageError) as error:
        resolve_settings(parse("--config", "tmaze-shrt"))
    message = str(error.value)
    assert "did you mean tmaze-short?" in message
    assert all(p.stem in message for p in CONFIGS.glob("*.yaml"))


def test_wrappers_take_keyword_arguments_on_the_command_line():
    settings = resolve_settings(
        parse(
            "--env", "CartPole-v1",
            "--wrapper", "gymnasium.wrappers:FrameStackObservation", "stack_size=4",
            "--wrapper", "gymnasium.wrappers:FlattenObservation",
        )
    )  # fmt: skip
    assert settings.wrappers == [
        {"gymnasium.wrappers:FrameStackObservation": {"stack_size": 4}},
        "gymnasium.wrappers:FlattenObservation",
    ]
    env = make_vec_env("CartPole-v1", 2, wrappers=settings.wrappers)
    assert env.single_observation_space.shape == (16,)
    env.close()


def test_a_wrapper_that_fails_is_named_in_the_error():
    with pytest.raises(EnvError) as error:
        make_vec_env("CartPole-v1", 1, wrappers=["gymnasium.wrappers:FrameStackObservation"])
    message = str(error.value)
    assert message.startswith("wrapper gymnasium.wrappers:FrameStackObservation failed")
    assert "stack_size" in message and "kwargs" not in message


def test_preset_wrappers_use_the_zoo_format(tmp_path):
    spec = {"gymnasium.wrappers:FrameStackObservation": {"stack_size": 2}}
    preset = write_preset(tmp_path, env="CartPole-v1", wrappers=[spec])
    assert resolve_settings(parse("--config", preset)).wrappers == [spec]
    bad = write_preset(tmp_path, env="CartPole-v1", wrappers=[{"a:B": 3}])
    with pytest.raises(EnvError, match="module:Callable"):
        resolve_settings(parse("--config", bad))


ZOO_CARTPOLE = """
CartPoleNoVel-v1:
  normalize: "{'norm_obs': True, 'norm_reward': False}"
  n_envs: 8
  n_timesteps: !!float 1e5
  policy: 'MlpLstmPolicy'
  n_steps: 32
  batch_size: 256
  gae_lambda: 0.8
  gamma: 0.98
  n_epochs: 20
  ent_coef: 0.0
  learning_rate: lin_0.001
  clip_range: lin_0.2
  policy_kwargs: "dict(
                    ortho_init=False,
                    activation_fn=nn.ReLU,
                    lstm_hidden_size=64,
                    enable_critic_lstm=True,
                    net_arch=dict(pi=[64], vf=[64])
                  )"
"""


def test_a_pasted_zoo_file_is_read_with_our_names(tmp_path):
    path = tmp_path / "ppo_lstm.yml"
    path.write_text(ZOO_CARTPOLE)
    settings = resolve_settings(parse("--config", str(path), "--env", "Memory/CartPoleNoVel-v0"))
    assert settings.env_id == "Memory/CartPoleNoVel-v0"  # the zoo's entry, our id
    assert settings.notes[0].startswith("Memory/CartPoleNoVel-v0 trains with the settings of ")
    cfg = settings.config
    assert settings.total_timesteps == 100_000
    assert (cfg.n_envs, cfg.n_steps, cfg.batch_size, cfg.n_epochs) == (8, 32, 256, 20)
    assert (cfg.learning_rate, cfg.lr_schedule) == (0.001, "linear")
    assert (cfg.clip_range, cfg.clip_schedule) == (0.2, "linear")
    assert (cfg.normalize_obs, cfg.normalize_reward) == (True, False)
    assert (cfg.ortho_init, cfg.activation_fn, cfg.lstm_hidden_size) == (False, "relu", 64)
    assert cfg.net_arch == [64] and cfg.shared_lstm is False and cfg.rnn_type == "lstm"
    # Without --env, the file's own id is the env (unknown here: the error says so later).
    assert resolve_settings(parse("--config", str(path))).env_id == "CartPoleNoVel-v1"


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"callback": "x"}, "callback .* does not apply here: callbacks are code"),
        ({"use_sde": True}, "gSDE"),
        ({"policy_kwargs": "dict(net_arch=dict(pi=[64], vf=[32]))"}, "share one net_arch"),
        ({"policy_kwargs": "dict(features_extractor_class=X)"}, "features_extractor_class"),
        ({"policy_kwargs": "dict(enable_critic_lstm=False)"}, "enable_critic_lstm"),
        ({"policy_kwargs": "__import__('os').system('true')"}, "not plain data"),
        ({"normalize": "{'gamma': 0.9}"}, "only norm_obs and norm_reward"),
        ({"policy": "QRDQN"}, "not a zoo policy"),
    ],
)
def test_zoo_settings_that_do_not_apply_are_explained(tmp_path, values, match):
    with pytest.raises(ConfigError, match=match):
        resolve_settings(parse("--config", write_preset(tmp_path, **values)))


def test_a_zoo_file_with_several_envs_needs_env(tmp_path):
    path = write_preset(tmp_path, **{"A-v1": {"n_steps": 32}, "B-v1": {"n_steps": 64}})
    with pytest.raises(ConfigError, match=r"2 envs .*A-v1, B-v1.*--env"):
        resolve_settings(parse("--config", path))
    chosen = resolve_settings(parse("--config", path, "--env", "B-v1"))
    assert chosen.config.n_steps == 64


@pytest.mark.parametrize(("outcome", "code"), [(0, 0), (3, 3), (KeyboardInterrupt, 130)])
def test_scripts_exit_with_main_s_code_and_the_heap_frozen(outcome, code, monkeypatch, capsys):
    """`run_script` exits with `main()`'s code (130 on Ctrl-C, with one line) and freezes the
    garbage collector first, which spares the scripts' exit its slow final collections."""
    frozen = []
    monkeypatch.setattr(cli.gc, "freeze", lambda: frozen.append(True))

    def main() -> int:
        if outcome is KeyboardInterrupt:
            raise KeyboardInterrupt
        return outcome

    with pytest.raises(SystemExit) as exit_info:
        cli.run_script(main)
    assert exit_info.value.code == code
    assert frozen == [True]
    assert ("interrupted" in capsys.readouterr().err) == (code == 130)


def test_scripts_print_a_warning_as_one_line(monkeypatch):
    """`run_script` shows warnings as `warning: MESSAGE`, without the file and source line
    Python's default adds (MiniGrid's dropped mission text would print three lines a copy)."""
    monkeypatch.setattr(cli.gc, "freeze", lambda: None)
    monkeypatch.setattr(cli.warnings, "formatwarning", cli.warnings.formatwarning)
    with pytest.raises(SystemExit):
        cli.run_script(lambda: 0)
    shown = cli.warnings.formatwarning("text left out", UserWarning, "/x/vec_env.py", 99)
    assert shown == "warning: text left out\n"
