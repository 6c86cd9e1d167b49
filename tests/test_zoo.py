"""rl-baselines3-zoo files, read as `train.py --config` reads them: every entry of the zoo's own
`hyperparams/ppo_lstm.yml` (tests/data) either translates into a valid config or is refused
with its reason; entry selection by `--env`; the zoo's `policy_kwargs` and wrapper names.

No env is made here: `resolve_settings` only reads and translates (train.py then builds the model,
which makes the env), so the Atari and Bullet entries are checked without those packages.
Wrappers are imported by `load_wrappers`, called on its own where a test needs it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from agent import ConfigError, EnvError, PPOConfig, RecurrentPPO
from agent.environment.vec_env import make_vec_env
from agent.environment.wrappers import load_wrappers
from agent.run import zoo
from agent.run.cli import load_yaml, resolve_settings, train_parser

ZOO_FILE = Path(__file__).resolve().parent / "data" / "ppo_lstm.yml"
ENTRIES: dict[str, dict[str, Any]] = load_yaml(ZOO_FILE.read_text())
ENV_OF = {"atari": "ALE/Pong-v5"}
"""The `--env` each entry is tested with: its own id, or a game for the `atari` entry."""


class Loads(NamedTuple):
    """An entry that trains here: the net_arch it becomes and the notes it prints."""

    net_arch: list[int]
    notes: tuple[str, ...] = ()


GSDE = "use_sde: gSDE exploration is not implemented"
NO_CRITIC_LSTM = "enable_critic_lstm=False (a critic with no memory) is not offered"


PINNED: dict[str, Loads | str] = {
    "atari": Loads([64, 64], ("ALE/Pong-v5 trains with the settings of the atari entry",)),
    "PendulumNoVel-v1": GSDE,
    "CartPoleNoVel-v1": Loads([64, 64]),
    "MountainCarNoVel-v0": Loads([64, 64]),
    "MountainCarContinuousNoVel-v0": GSDE,
    "Acrobot-v1": Loads([64, 64]),
    "BipedalWalker-v3": Loads([64, 64]),
    "BipedalWalkerHardcore-v3": NO_CRITIC_LSTM,
    "LunarLanderNoVel-v2": Loads([64, 64]),
    "LunarLanderContinuousNoVel-v2": Loads([64, 64]),
    "HalfCheetahBulletEnv-v0": Loads([]),
    "AntBulletEnv-v0": Loads([]),
    "Walker2DBulletEnv-v0": Loads([]),
    "HopperBulletEnv-v0": Loads([]),
    "ReacherBulletEnv-v0": Loads([]),
    "MinitaurBulletEnv-v0": Loads([64, 64]),
    "MinitaurBulletDuckEnv-v0": Loads([64, 64]),
    "HumanoidBulletEnv-v0": Loads([64, 64]),
    "InvertedDoublePendulumBulletEnv-v0": Loads([64, 64]),
    "InvertedPendulumSwingupBulletEnv-v0": Loads([64, 64]),
    "CarRacing-v0": GSDE,
    "Ant-v3": Loads([64, 64]),
    "Swimmer-v3": Loads([64, 64]),
    "HalfCheetah-v3": Loads([256, 256]),
    "Hopper-v3": Loads([256, 256]),
    "HumanoidStandup-v3": Loads([256, 256]),
    "Humanoid-v3": Loads([256, 256]),
    "InvertedDoublePendulum-v3": Loads(
        [64, 64], ("batch_size 512: one minibatch of the whole rollout, 128 steps",)
    ),
    "InvertedPendulum-v3": Loads(
        [64, 64], ("batch_size 64: one minibatch of the whole rollout, 32 steps",)
    ),
    "Reacher-v3": Loads([64, 64]),
    "Walker2d-v3": Loads([64, 64]),
}
"""Each entry of the zoo file: what it loads as, or the reason it is refused."""


def settings_of(path: Path | str, env: str | None = None):
    argv = ["--config", str(path), *(["--env", env] if env else [])]
    return resolve_settings(train_parser().parse_args(argv))


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "zoo.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_zoo_file_is_the_zoos_and_every_entry_is_pinned():
    first = ZOO_FILE.read_text().splitlines()[0]
    assert "DLR-RM/rl-baselines3-zoo" in first and "MIT" in first
    assert list(PINNED) == list(ENTRIES)


def _number(value: Any) -> float:
    return float(value[4:]) if isinstance(value, str) and value.startswith("lin_") else value


@pytest.mark.parametrize("name", list(PINNED))
def test_each_zoo_entry_loads_or_says_why_not(name):
    env, expected = ENV_OF.get(name, name), PINNED[name]
    if isinstance(expected, str):
        with pytest.raises(ConfigError, match=re.escape(expected)):
            settings_of(ZOO_FILE, env)
        return
    entry = ENTRIES[name]
    settings = settings_of(ZOO_FILE, env)
    config = settings.config
    assert isinstance(config, PPOConfig) and settings.env_id == env
    assert config.net_arch == expected.net_arch
    assert len(settings.notes) == len(expected.notes)
    for note, start in zip(settings.notes, expected.notes, strict=True):
        assert note.startswith(start), note
    # The settings mean what they meant in the zoo.
    assert settings.total_timesteps == int(entry["n_timesteps"])
    for key in ("n_envs", "n_steps", "n_epochs", "gamma", "gae_lambda", "ent_coef", "vf_coef"):
        if key in entry:
            assert getattr(config, key) == entry[key], key
    for key in ("learning_rate", "clip_range", "max_grad_norm"):
        if key in entry:
            assert getattr(config, key) == _number(entry[key]), key
    for key, schedule in (("learning_rate", "lr_schedule"), ("clip_range", "clip_schedule")):
        linear = str(entry.get(key, "")).startswith("lin_")
        assert getattr(config, schedule) == ("linear" if linear else "constant"), key
    rollout = config.n_envs * config.n_steps
    assert config.batch_size == min(entry.get("batch_size", 128), rollout)
    # What the entry does not name is sb3-contrib's default, as the zoo trains it.
    named = set(entry)
    if "policy_kwargs" in entry:  # the network's settings, by the zoo's names
        named |= {"net_arch", "lstm_hidden_size"}
    for key, value in zoo.SB3_CONTRIB_DEFAULTS.items():
        if key not in named and key != "batch_size":
            assert getattr(config, key) == value, key
    normalize = entry.get("normalize", False)
    assert (config.normalize_obs, config.normalize_reward) == (normalize, normalize)
    assert config.rnn_type == "lstm"  # every entry's policy is an LSTM policy


def test_the_atari_entry_keeps_the_zoos_wrappers_and_imports_them():
    settings = settings_of(ZOO_FILE, "ALE/Pong-v5")
    atari_wrapper = "stable_baselines3.common.atari_wrappers.AtariWrapper"
    assert settings.wrappers == [
        {atari_wrapper: {"terminal_on_life_loss": False}},
        {"gymnasium.wrappers:FrameStackObservation": {"stack_size": 4}},
    ]
    assert len(load_wrappers(settings.wrappers)) == 2  # dotted: module.Callable


@pytest.mark.parametrize(
    ("spec", "missing"),
    [
        ({"utils.wrappers.FrameSkip": {"skip": 2}}, "No module named 'utils' (rl-baselines3-zoo"),
        ({"gym.wrappers.resize_observation.ResizeObservation": {"shape": 64}}, "'gym' (the old"),
    ],
)
def test_a_zoo_wrapper_from_a_module_not_here_is_named_in_one_line(spec, missing):
    assert spec in ENTRIES["CarRacing-v0"]["env_wrapper"]
    values, _ = zoo.from_zoo({"env_wrapper": [spec]})
    assert values["wrappers"] == [spec]  # kept as the zoo wrote it
    with pytest.raises(EnvError) as error:
        make_vec_env("CartPole-v1", 1, wrappers=values["wrappers"])
    message = str(error.value)
    assert "\n" not in message and missing in message


def test_carracing_is_refused_for_each_of_its_reasons_in_turn():
    entry = dict(ENTRIES["CarRacing-v0"])
    del entry["use_sde"], entry["sde_sample_freq"]
    with pytest.raises(ConfigError, match=re.escape(NO_CRITIC_LSTM)):
        zoo.from_zoo(entry)
    entry["policy_kwargs"] = entry["policy_kwargs"].replace("enable_critic_lstm=False,", "")
    with pytest.raises(
        ConfigError, match=r"nn\.GELU is not offered here: choose nn\.ReLU or nn\.Tanh"
    ):
        zoo.from_zoo(entry)


# ----------------------------------------------------------------------- entry selection ---


def test_the_entry_named_by_env_wins_over_one_of_the_same_name(tmp_path):
    """Issue 29: with both ids in the file, `--env Memory/CartPoleNoVel-v0` trained with the
    settings of `CartPoleNoVel-v1`."""
    path = write(
        tmp_path,
        {
            "CartPoleNoVel-v1": {"n_envs": 8, "n_steps": 32},
            "Memory/CartPoleNoVel-v0": {"n_envs": 8, "n_steps": 64},
        },
    )
    ours = settings_of(path, "Memory/CartPoleNoVel-v0")
    assert (ours.config.n_steps, ours.notes) == (64, [])
    theirs = settings_of(path, "CartPoleNoVel-v1")
    assert (theirs.config.n_steps, theirs.notes) == (32, [])
    with pytest.raises(ConfigError, match=r"no entry for Memory/CartPoleNoVel-v1 .*2 of the same"):
        settings_of(path, "Memory/CartPoleNoVel-v1")


def test_an_entry_of_the_same_name_is_taken_with_a_note(tmp_path):
    settings = settings_of(ZOO_FILE, "Memory/CartPoleNoVel-v0")
    assert settings.env_id == "Memory/CartPoleNoVel-v0" and settings.config.n_steps == 32
    assert settings.notes[0] == (
        f"Memory/CartPoleNoVel-v0 trains with the settings of CartPoleNoVel-v1 in {ZOO_FILE} "
        "(no entry for Memory/CartPoleNoVel-v0)"
    )


@pytest.mark.parametrize("env", ["ALE/Pong-v5", "PongNoFrameskip-v4", "ale_py:ALE/Breakout-v5"])
def test_an_atari_game_takes_the_atari_entry_with_a_note(env):
    settings = settings_of(ZOO_FILE, env)
    assert settings.env_id == env and settings.config.n_epochs == 4
    assert settings.notes[0] == f"{env} trains with the settings of the atari entry in {ZOO_FILE}"


def test_an_env_with_no_entry_is_refused_naming_the_entries(tmp_path):
    with pytest.raises(ConfigError) as error:
        settings_of(ZOO_FILE, "Memory/TMaze-v0")
    assert str(error.value).startswith(
        f"no entry for Memory/TMaze-v0 in {ZOO_FILE} (entries: atari, PendulumNoVel-v1, "
    )
    one = write(tmp_path, {"CartPoleNoVel-v1": {"n_steps": 32}})
    with pytest.raises(ConfigError, match=r"no entry for ALE/Pong-v5 in .*\(entries: CartPole"):
        settings_of(one, "ALE/Pong-v5")  # not the only entry, silently


def test_without_env_the_only_entry_is_taken(tmp_path):
    with pytest.raises(ConfigError, match=r"31 envs .*choose one with --env"):
        settings_of(ZOO_FILE)
    one = write(tmp_path, {"CartPoleNoVel-v1": {"n_steps": 32}})
    assert settings_of(one).env_id == "CartPoleNoVel-v1"
    atari = write(tmp_path, {"atari": ENTRIES["atari"]})
    with pytest.raises(ConfigError, match="atari entry is for every Atari game; name one"):
        settings_of(atari)


def test_the_default_entry_is_for_envs_the_file_does_not_name(tmp_path):
    """The zoo's files have one since 2026: `default: {n_timesteps: 1e6, policy: MlpPolicy}`."""
    default = {"n_timesteps": 1e6, "policy": "MlpPolicy"}
    path = write(tmp_path, {"default": default, "CartPoleNoVel-v1": {"n_steps": 32}})
    settings = settings_of(path, "Memory/TMaze-v0")
    assert settings.config.rnn_type == "none" and settings.total_timesteps == 1_000_000
    assert settings.notes == [
        f"Memory/TMaze-v0 trains with the settings of the default entry in {path}"
    ]
    assert settings_of(path, "Memory/CartPoleNoVel-v0").config.n_steps == 32
    with pytest.raises(ConfigError, match="default entry is for every env the file does not"):
        settings_of(write(tmp_path, {"default": default}))


# ------------------------------------------------------------------------- policy_kwargs ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dict(log_std_init=-2, ortho_init=False)", {"log_std_init": -2, "ortho_init": False}),
        ("dict(log_std_init=-3.29)", {"log_std_init": -3.29}),
        ("dict(log_std_init=+0.5)", {"log_std_init": 0.5}),
        ("dict(activation_fn=nn.ReLU)", {"activation_fn": "relu"}),
        ("dict(activation_fn=th.nn.Tanh)", {"activation_fn": "tanh"}),
        ("dict(activation_fn=torch.nn.ReLU)", {"activation_fn": "relu"}),
        ("dict(net_arch=[dict(pi=[], vf=[])])", {"net_arch": []}),
        ("dict(net_arch=dict(pi=[], vf=[]))", {"net_arch": []}),
        ("dict(net_arch=[dict(pi=[256, 256], vf=[256, 256])])", {"net_arch": [256, 256]}),
        ("dict(net_arch=dict(pi=[64], vf=[64]))", {"net_arch": [64]}),
        ("dict(net_arch=[64, 64])", {"net_arch": [64, 64]}),
        ("dict(enable_critic_lstm=False, shared_lstm=True)", {"shared_lstm": True}),
        (
            ENTRIES["HalfCheetahBulletEnv-v0"]["policy_kwargs"],
            {"ortho_init": False, "activation_fn": "relu", "net_arch": [], "lstm_hidden_size": 128},
        ),  # several lines, a trailing comma
    ],
)
def test_policy_kwargs_are_read_as_data(text, expected):
    assert zoo._policy_kwargs(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("dict(activation_fn=nn.GELU)", r"nn.GELU is not offered here: choose nn.ReLU or nn.Tanh"),
        (
            "dict(net_arch=dict(pi=[64], vf=[32]))",
            r"dict\(pi=\[64\], vf=\[32\]\): actor and critic share one net_arch here .*"
            r"write net_arch=\[64\] or net_arch=\[32\]",
        ),
        ("dict(net_arch=dict(pi=[64]))", r"write net_arch=\[64\] or net_arch=\[\]"),
        ("dict(net_arch=[64, dict(pi=[32], vf=[32])])", "shared by actor and critic"),
        ("dict(net_arch=dict(pi=[64], vf=[64], qf=[1]))", "only pi and vf apply"),
        ("dict(enable_critic_lstm=False)", r"remove it .* or write shared_lstm=True"),
        ("dict(log_std_init=-x)", r"-x is not plain data"),
        ("dict(log_std_init=-True)", r"-True is not plain data"),
        ("dict(log_std_init=2 - 4)", r"2 - 4 is not plain data"),
        ("__import__('os').system('true')", "not plain data"),
    ],
)
def test_policy_kwargs_that_do_not_apply_say_why(text, match):
    with pytest.raises(ConfigError, match=match):
        zoo._policy_kwargs(text)


def test_no_hidden_layers_build_a_model():
    """`dict(pi=[], vf=[])` becomes `net_arch: []`: heads straight on the recurrent core."""
    config = PPOConfig(net_arch=[], n_envs=1, n_steps=8, batch_size=8, lstm_hidden_size=8)
    model = RecurrentPPO("CartPole-v1", config)
    model.close()


# ------------------------------------------------------------------------------- numbers ---


def test_zoo_numbers_are_read_as_written(tmp_path):
    path = tmp_path / "zoo.yml"
    path.write_text(
        "CartPole-v1:\n  learning_rate: 3e-4\n  ent_coef: 1E-3\n  clip_range: lin_1e-1\n"
        "  n_timesteps: 1e5\n"
    )
    settings = settings_of(path)
    assert (settings.config.learning_rate, settings.config.ent_coef) == (3e-4, 1e-3)
    assert settings.config.clip_range == 0.1 and settings.total_timesteps == 100_000
    assert settings.config.clip_schedule == "linear"


def test_a_value_clip_schedule_is_read_as_its_start_with_a_note(tmp_path):
    path = tmp_path / "zoo.yml"
    path.write_text("CartPole-v1:\n  clip_range_vf: lin_0.3\n")
    settings = settings_of(path)
    assert settings.config.clip_range_vf == 0.3
    assert "clip_range_vf lin_0.3: read as a constant 0.3" in settings.notes


def test_a_preset_that_is_not_a_zoo_file_is_not_clamped(tmp_path):
    """Our own presets keep refusing a minibatch larger than the rollout; only a zoo entry
    follows SB3 there."""
    path = write(tmp_path, {"n_envs": 1, "n_steps": 32, "batch_size": 64})
    with pytest.raises(ConfigError, match=r"batch_size \(64\) is larger than a rollout"):
        settings_of(path)
