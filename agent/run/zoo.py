"""rl-baselines3-zoo hyperparameter files, read as presets.

Users of the zoo paste its YAML (`hyperparams/ppo_lstm.yml`): an env id mapping to settings
such as `n_timesteps`, `policy`, `policy_kwargs` (a Python expression in a string), `normalize`
and `learning_rate: lin_1e-3`. `from_zoo` turns the names that mean the same thing here into
ours, returns a note for each setting it reads approximately, and raises `ConfigError` with the
reason for each one that does not apply. Keys that are already ours pass through unchanged.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from agent.algorithm import sb3_names
from agent.config import ConfigError, PPOConfig

DEFAULTS = PPOConfig()
"""What an entry leaves out trains with."""

NOT_APPLICABLE = {
    "callback": "callbacks are code; train.py has --eval-freq and --checkpoint-freq",
    "vec_env_wrapper": "vector-env wrappers are code; use per-env --wrapper",
    "monitor_kwargs": "episode statistics are always recorded",
    "normalize_kwargs": "set normalize_obs and normalize_reward instead",
    "sde_sample_freq": "gSDE is not implemented",
    "replay_buffer_kwargs": "PPO has no replay buffer",
}
"""Zoo keys with no counterpart here, and why."""


SB3_CONTRIB_DEFAULTS: dict[str, Any] = {
    "n_envs": 1,
    "n_steps": 128,
    "batch_size": 128,
    "n_epochs": 10,
    "learning_rate": 3e-4,
    "ent_coef": 0.0,
    "lstm_hidden_size": 256,
    "net_arch": [64, 64],
    "forget_bias_init": "default",
}
"""What a zoo entry trains with where it names nothing: the zoo's one env and sb3-contrib's
`RecurrentPPO` and `MlpLstmPolicy` defaults, where they differ from ours (PyTorch's gate init is
our `default`). Every other field has the same default in both. An entry was tuned on these."""


def is_zoo_file(data: dict[str, Any], known: set[str]) -> bool:
    """A zoo file maps env ids to settings: every top-level key is unknown to us and maps to a
    mapping (our presets are flat, with `env_kwargs` the only mapping)."""
    return bool(data) and all(k not in known and isinstance(v, dict) for k, v in data.items())


ATARI = "atari"
"""The zoo's entry for every Atari game."""
DEFAULT = "default"
"""The zoo's entry (since 2026) for every env that its file does not name."""


def select_env(
    data: dict[str, Any], source: str, env: str | None
) -> tuple[dict[str, Any], list[str]]:
    """The settings of one entry of a zoo file, with `env` set, and a note when `env` did not
    name the entry exactly. With `env`: the entry named `env`; else the one entry with its name
    up to namespace and version (`Memory/CartPoleNoVel-v0` takes `CartPoleNoVel-v1`); else, for
    an Atari id (`ALE/Pong-v5`, `PongNoFrameskip-v4`), the `atari` entry; else the `default`
    entry, as the zoo does. Without `env`: the file's only entry. Raises `ConfigError` saying
    which entries there are when none (or several) fit."""
    names = list(data)
    listing = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    if env is None:
        if len(names) > 1:
            raise ConfigError(
                f"{source} holds zoo settings for {len(names)} envs ({listing}); "
                "choose one with --env"
            )
        (name,) = names
        if name in (ATARI, DEFAULT):
            games = "every Atari game" if name == ATARI else "every env the file does not name"
            raise ConfigError(f"{source}: the {name} entry is for {games}; name one with --env")
        return {"env": name, **data[name]}, []
    exact = [n for n in names if n in (env, env.rpartition(":")[2])]  # `module:Id` too
    if exact:
        return {**data[exact[0]], "env": env}, []
    loose = [n for n in names if _base_name(n) == _base_name(env)]
    if len(loose) > 1:
        raise ConfigError(
            f"no entry for {env} in {source}, and {len(loose)} of the same name "
            f"({', '.join(loose)}): rename the one to use to {env}"
        )
    if loose:
        return {**data[loose[0]], "env": env}, [
            f"{env} trains with the settings of {loose[0]} in {source} (no entry for {env})"
        ]
    for name, fits in ((ATARI, _is_atari(env)), (DEFAULT, True)):
        if name in data and fits:
            return {**data[name], "env": env}, [
                f"{env} trains with the settings of the {name} entry in {source}"
            ]
    raise ConfigError(f"no entry for {env} in {source} (entries: {listing})")


def _base_name(env_id: str) -> str:
    """`Memory/CartPoleNoVel-v0` -> `CartPoleNoVel`: the id without module, namespace, version."""
    name = env_id.rpartition(":")[2].rpartition("/")[2]
    return re.sub(r"-v\d+$", "", name)


def _is_atari(env_id: str) -> bool:
    """An Atari game's id, as the zoo's files name them (`PongNoFrameskip-v4`, `ALE/Pong-v5`)."""
    return "NoFrameskip" in env_id or env_id.rpartition(":")[2].startswith("ALE/")


def from_zoo(values: dict[str, Any], entry: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Translate zoo names into ours; `entry`: `values` is an entry of a zoo file (as
    `select_env` returns it), whose minibatches are SB3's. Returns (settings, notes); raises
    `ConfigError` naming the first zoo setting that does not apply here, and why."""
    out = dict(values)
    notes: list[str] = []
    if out.pop("use_sde", False):
        raise ConfigError(
            "use_sde: gSDE exploration is not implemented (actions are Gaussian with a learned "
            "log std); remove use_sde and sde_sample_freq to train without it"
        )
    for key, why in NOT_APPLICABLE.items():
        if key in out:
            raise ConfigError(f"{key} (rl-zoo) does not apply here: {why}")
    if "n_timesteps" in out:
        out["total_timesteps"] = _integer(out.pop("n_timesteps"), "n_timesteps")
    if "policy" in out:
        policy = out.pop("policy")
        if policy not in sb3_names.POLICIES:
            raise ConfigError(
                f"policy {policy!r} is not a zoo policy this agent knows "
                f"({', '.join(sb3_names.POLICIES)}); the network is set by rnn_type, net_arch, ..."
            )
        for key, value in sb3_names.policy_settings(policy).items():
            out.setdefault(key, value)
    if "policy_kwargs" in out:
        out.update(_policy_kwargs(out.pop("policy_kwargs")))
    if "normalize" in out:
        out.update(_normalize(out.pop("normalize")))
    if "env_wrapper" in out:
        wrappers = out.pop("env_wrapper")
        out["wrappers"] = wrappers if isinstance(wrappers, list) else [wrappers]
    if "frame_stack" in out:
        stack = _integer(out.pop("frame_stack"), "frame_stack")
        frame_stack = {"gymnasium.wrappers:FrameStackObservation": {"stack_size": stack}}
        out["wrappers"] = [*(out.get("wrappers") or []), frame_stack]
    for key in ("learning_rate", "clip_range", "clip_range_vf"):
        value = out.get(key)
        if isinstance(value, str) and value.startswith("lin_"):
            number = _number(value[4:], key)
            out[key] = number
            if key == "clip_range_vf":  # no schedule of its own here
                notes.append(f"clip_range_vf {value}: read as a constant {number}")
            else:
                out["lr_schedule" if key == "learning_rate" else "clip_schedule"] = "linear"
    if entry:
        out = {**SB3_CONTRIB_DEFAULTS, **out}
        notes += _whole_rollout_batch(out)
    return out, notes


def _whole_rollout_batch(values: dict[str, Any]) -> list[str]:
    """SB3 trains a `batch_size` larger than the rollout as one minibatch of the whole rollout
    (the zoo's InvertedPendulum entries do); here that size is refused, so it becomes the
    rollout's, with a note. Changes `values` in place."""
    n_envs = values.get("n_envs", DEFAULTS.n_envs)
    n_steps = values.get("n_steps", DEFAULTS.n_steps)
    batch_size = values.get("batch_size", DEFAULTS.batch_size)
    if not all(type(v) is int for v in (n_envs, n_steps, batch_size)):
        return []  # the config names the wrong type
    values["batch_size"] = sb3_names.whole_rollout_batch(batch_size, n_envs * n_steps)
    if values["batch_size"] == batch_size:
        return []
    return [
        f"batch_size {batch_size}: one minibatch of the whole rollout, {n_envs * n_steps} steps "
        f"(n_envs * n_steps), as in SB3"
    ]


def _policy_kwargs(value: Any) -> dict[str, Any]:
    """The zoo's `policy_kwargs` (a dict, or a string like "dict(ortho_init=False,
    activation_fn=nn.ReLU, net_arch=dict(pi=[64], vf=[64]))", read as data) as our fields, by the
    rules the Python API follows (`agent.algorithm.sb3_names`)."""
    kwargs = _parse_expression(value) if isinstance(value, str) else value
    return sb3_names.policy_kwargs_settings(kwargs)


def _normalize(value: Any) -> dict[str, bool]:
    """The zoo's `normalize` (VecNormalize): true (observations and rewards), false, or a dict
    (or its string) with norm_obs / norm_reward."""
    if isinstance(value, str):
        value = _parse_expression(value)
    if isinstance(value, bool):
        return {"normalize_obs": value, "normalize_reward": value}
    if isinstance(value, dict):
        extra = set(value) - {"norm_obs", "norm_reward"}
        if extra:
            raise ConfigError(
                f"normalize {', '.join(sorted(extra))}: only norm_obs and norm_reward apply here"
            )
        return {
            "normalize_obs": bool(value.get("norm_obs", True)),
            "normalize_reward": bool(value.get("norm_reward", True)),
        }
    raise ConfigError(f"normalize must be true, false or a dict, got {value!r}")


def _parse_expression(text: str) -> Any:
    """A zoo expression read as data, never run: literals (signed numbers too), `dict(k=v)`,
    and names such as `nn.ReLU` (as their text)."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ConfigError(f"cannot read {text!r} as a zoo expression") from None
    return _value(tree, text)


def _value(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        if node.args:
            raise ConfigError(f"cannot read {text!r}: dict() with positional arguments")
        return {k.arg: _value(k.value, text) for k in node.keywords}
    if isinstance(node, ast.Dict):
        return {
            _value(k, text): _value(v, text) for k, v in zip(node.keys, node.values, strict=True)
        }
    if isinstance(node, ast.List | ast.Tuple):
        return [_value(v, text) for v in node.elts]
    if isinstance(node, ast.Attribute | ast.Name):
        return ast.unparse(node)  # nn.ReLU, or a name such as True handled by Constant
    if isinstance(node, ast.Constant):
        return node.value
    if (  # -2, -3.29: a signed number
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub | ast.UAdd)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
        and not isinstance(node.operand.value, bool)
    ):
        number = node.operand.value
        return -number if isinstance(node.op, ast.USub) else number
    raise ConfigError(f"cannot read {text!r}: {ast.unparse(node)} is not plain data")


def _number(text: str, key: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{key}: cannot read {text!r} as a number") from None


def _integer(value: Any, key: str) -> int:
    number = _number(str(value), key) if isinstance(value, str) else value
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    return number
