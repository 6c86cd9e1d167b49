"""Stable-Baselines3's names for what this agent calls otherwise, translated into `PPOConfig` fields.

Three kinds of names: sb3-contrib's policy names (`MlpLstmPolicy`, ...), the keys of its
`policy_kwargs`, and the constructor arguments of SB3's `RecurrentPPO` that are not ours
(`use_sde`, `stats_window_size`, `seed=None`, ...). Values may be the real objects (`torch.nn.ReLU`,
`torch.optim.Adam`) or the rl-zoo's text for them (`"nn.ReLU"`, `"th.optim.Adam"`), so that
both the Python API and the zoo's hyperparameter files read through here. Whatever has no
counterpart raises `ConfigError`, one line saying why and what to write instead.
"""

from __future__ import annotations

import difflib
import secrets
from collections.abc import Iterable
from typing import Any, NamedTuple

from gymnasium import spaces

from agent.config import ConfigError, PPOConfig
from agent.networks.encoders import is_image_space

POLICIES = {
    "MlpLstmPolicy": None,
    "CnnLstmPolicy": None,
    "MultiInputLstmPolicy": None,
    "MlpPolicy": "none",
    "CnnPolicy": "none",
    "MultiInputPolicy": "none",
}
"""Policy names -> our `rnn_type` (None: keep ours). The encoder (MLP, CNN or one per Dict key)
is chosen from the observation space, so a name only says whether there is a recurrent core, and
has to fit the space (`check_policy`)."""

POLICY_CLASSES = {
    "RecurrentActorCriticPolicy": "MlpLstmPolicy",
    "RecurrentActorCriticCnnPolicy": "CnnLstmPolicy",
    "RecurrentMultiInputActorCriticPolicy": "MultiInputLstmPolicy",
    "ActorCriticPolicy": "MlpPolicy",
    "ActorCriticCnnPolicy": "CnnPolicy",
    "MultiInputActorCriticPolicy": "MultiInputPolicy",
}
"""The classes that sb3-contrib's and SB3's policy names stand for (`MlpLstmPolicy` is
`RecurrentActorCriticPolicy`), by class name: a subclass of one (a custom policy) is not one."""

ACTIVATIONS = {"ReLU": "relu", "Tanh": "tanh"}
"""`torch.nn` activations this agent has, by class name, as our `activation_fn` takes them."""

SAME_POLICY_KWARGS = ("lstm_hidden_size", "n_lstm_layers", "ortho_init", "log_std_init")
"""`policy_kwargs` keys that are our field of the same name and meaning."""

NETWORK_FIELDS = (
    "lstm_hidden_size, n_lstm_layers, shared_lstm, net_arch, activation_fn, ortho_init, "
    "log_std_init"
)

NOT_OFFERED = {
    "features_extractor_class": "the encoder is chosen from the observation space "
    "(an MLP, a CNN for images, one per Dict key); image_encoder chooses flatten or cnn",
    "features_extractor_kwargs": "the encoder is chosen from the observation space",
    "share_features_extractor": "actor and critic always share the encoder",
    "lstm_kwargs": "the recurrent core is set by rnn_type, lstm_hidden_size, n_lstm_layers "
    "and forget_bias_init",
    "use_sde": "gSDE exploration is not implemented (actions are Gaussian with a learned log std)",
    "full_std": "gSDE exploration is not implemented",
    "use_expln": "gSDE exploration is not implemented",
    "squash_output": "gSDE exploration is not implemented (Box actions are clipped to the "
    "space, as SB3 does without gSDE)",
    "normalize_images": "uint8 images are always scaled by the range they take",
}
"""`policy_kwargs` keys with no counterpart here, and why (each key's SB3 default is accepted
by `DEFAULTS_ACCEPTED`)."""

DEFAULTS_ACCEPTED = {
    "share_features_extractor": True,
    "use_sde": False,
    "squash_output": False,
    "normalize_images": True,
}
"""`policy_kwargs` that are refused unless they say what this agent does anyway."""

ADAM_EPS = 1e-8
"""PyTorch's Adam epsilon: what SB3 trains with when `optimizer_kwargs` is given without `eps`
(it sets 1e-5 only when `optimizer_kwargs` is None)."""


def describe(value: Any) -> str:
    """A class as people write it (`nn.ReLU`, `torch.optim.SGD`); text as it is."""
    if isinstance(value, type):
        module = value.__module__
        if module.startswith("torch.nn"):
            return f"nn.{value.__name__}"
        if module.startswith("torch.optim"):
            return f"torch.optim.{value.__name__}"
        return f"{module}.{value.__qualname__}"
    return str(value)


def _class_name(value: Any) -> str | None:
    """The last part of a class's name, or of the zoo's text for one (`th.nn.ReLU` -> `ReLU`)."""
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, str):
        return value.rpartition(".")[2]
    return None


# ------------------------------------------------------------------------------ policies ---


def policy_name(policy: Any) -> str | None:
    """The policy name `policy` gives (a name, or an sb3-contrib policy class), or None when
    `policy` is not one (an env id, an env, None). Raises `ConfigError` for what can only be
    meant as a policy but is not one of `POLICIES` (a class, or a string ending in `Policy`)."""
    name = policy.__name__ if isinstance(policy, type) else policy
    if not isinstance(name, str):
        return None
    if isinstance(policy, type) and name in POLICY_CLASSES:
        return POLICY_CLASSES[name]
    if name in POLICIES:
        return name
    if isinstance(policy, type) or (name.endswith("Policy") and "/" not in name):
        close = difflib.get_close_matches(name, list(POLICIES), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(
            f"policy {describe(policy)} is not one this agent reads: {hint}the policies are "
            f"{', '.join(POLICIES)} (by name or class); the network is set by policy_kwargs"
        )
    return None


def check_policy(name: str, observation_space: spaces.Space) -> None:
    """Refuse (`ConfigError`) a policy name that does not fit the observation space, as
    sb3-contrib would: Cnn* needs images, MultiInput* a Dict, Mlp* anything but a Dict."""
    kind = name.removesuffix("Policy").removesuffix("Lstm")
    is_dict = isinstance(observation_space, spaces.Dict)
    image = is_image_space(observation_space)
    if kind == "Cnn" and not image:
        fits = "MultiInputLstmPolicy" if is_dict else "MlpLstmPolicy"
        raise ConfigError(
            f"{name} reads images (a uint8 Box of shape HxWxC or CxHxW), and this env's "
            f"observations are {observation_space}: use {fits}"
        )
    if kind == "MultiInput" and not is_dict:
        fits = "CnnLstmPolicy" if image else "MlpLstmPolicy"
        raise ConfigError(
            f"{name} reads Dict observations, and this env's are {observation_space}: use {fits}"
        )
    if kind == "Mlp" and is_dict:
        raise ConfigError(
            f"{name} cannot read Dict observations (nor can sb3-contrib's): use "
            "MultiInputLstmPolicy"
        )


def policy_settings(name: str) -> dict[str, Any]:
    """Our fields for a policy name (`rnn_type="none"` for the names without an LSTM)."""
    rnn_type = POLICIES[name]
    return {} if rnn_type is None else {"rnn_type": rnn_type}


# ------------------------------------------------------------------------- policy_kwargs ---


def policy_kwargs_settings(kwargs: Any) -> dict[str, Any]:
    """SB3's `policy_kwargs` (classes, or the zoo's text of them) as our fields; raises
    `ConfigError` naming the first key that does not apply here, and why."""
    if not isinstance(kwargs, dict):
        raise ConfigError(f"policy_kwargs must be a dict, got {kwargs!r}")
    out: dict[str, Any] = {}
    for key, item in kwargs.items():
        if key in SAME_POLICY_KWARGS:
            out[key] = item
        elif key == "activation_fn":
            if _class_name(item) not in ACTIVATIONS:
                raise ConfigError(
                    f"policy_kwargs activation_fn {describe(item)} is not offered here: choose "
                    "nn.ReLU or nn.Tanh"
                )
            out["activation_fn"] = ACTIVATIONS[_class_name(item)]
        elif key == "net_arch":
            out["net_arch"] = net_arch(item)
        elif key == "shared_lstm":
            out["shared_lstm"] = bool(item)
        elif key == "enable_critic_lstm":
            if not item and not kwargs.get("shared_lstm"):
                raise ConfigError(
                    "policy_kwargs enable_critic_lstm=False (a critic with no memory) is not "
                    "offered: remove it (the critic gets an LSTM of its own) or write "
                    "shared_lstm=True (the critic shares the actor's)"
                )
        elif key == "optimizer_class":
            if _class_name(item) != "Adam":
                raise ConfigError(
                    f"policy_kwargs optimizer_class {describe(item)} is not offered here: the "
                    "optimizer is Adam (remove optimizer_class)"
                )
        elif key == "optimizer_kwargs":
            out.update(_optimizer_kwargs(item))
        elif key in DEFAULTS_ACCEPTED and item == DEFAULTS_ACCEPTED[key]:
            continue
        elif key in NOT_OFFERED:
            raise ConfigError(f"policy_kwargs {key} does not apply here: {NOT_OFFERED[key]}")
        else:
            raise ConfigError(
                f"policy_kwargs {key} does not apply here; the network's fields are "
                f"{NETWORK_FIELDS}"
            )
    return out


def _optimizer_kwargs(value: Any) -> dict[str, Any]:
    """Adam's keyword arguments: `eps` is our `adam_eps`; without it SB3 trains with PyTorch's
    default, not its usual 1e-5, and so does this translation."""
    if not isinstance(value, dict):
        raise ConfigError(f"policy_kwargs optimizer_kwargs must be a dict, got {value!r}")
    other = sorted(set(value) - {"eps"})
    if other:
        raise ConfigError(
            f"policy_kwargs optimizer_kwargs {', '.join(other)}: only eps applies here "
            "(as adam_eps; the learning rate is learning_rate)"
        )
    return {"adam_eps": value.get("eps", ADAM_EPS)}


def net_arch(value: Any) -> list[int]:
    """`[64, 64]`; or SB3's `dict(pi=[64], vf=[64])`, or its older `[dict(pi=[64], vf=[64])]`,
    when both heads are the same (`pi=[], vf=[]`: no hidden layers, `[]`)."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0]
    if isinstance(value, dict):
        pi, vf = value.get("pi", []), value.get("vf", [])  # SB3's defaults
        written = f"dict({', '.join(f'{k}={v}' for k, v in value.items())})"
        if set(value) - {"pi", "vf"}:
            raise ConfigError(f"policy_kwargs net_arch {written}: only pi and vf apply")
        if pi != vf:
            raise ConfigError(
                f"policy_kwargs net_arch {written}: actor and critic share one net_arch here "
                f"(each has its own copy of it); write net_arch={pi} or net_arch={vf}"
            )
        value = pi
    if not isinstance(value, list) or any(isinstance(v, dict) for v in value):
        raise ConfigError(
            f"policy_kwargs net_arch must be a list of sizes or dict(pi=..., vf=...), got {value!r}"
            " (layers shared by actor and critic before their own are not offered)"
        )
    return value


# ------------------------------------------------------------------ constructor arguments ---

CONSTRUCTOR = (
    "use_sde",
    "sde_sample_freq",
    "stats_window_size",
    "_init_setup_model",
)
"""SB3 `RecurrentPPO` arguments that are not `PPOConfig` fields (besides `policy_kwargs`,
`verbose` and `tensorboard_log`, which `RecurrentPPO` takes by name)."""


def constructor_settings(values: dict[str, Any]) -> dict[str, Any]:
    """SB3's constructor arguments among `values`, as our fields; everything else passes through.

    `seed=None` (SB3: unseeded) draws a seed from the OS, kept in the config so that the run can
    be repeated; `batch_size=None` (SB3: the whole rollout) and a `torch.device` are read as SB3
    means them; schedules given as functions, gSDE and another episode window are refused.
    """
    out = dict(values)
    if out.pop("use_sde", False):
        raise ConfigError(
            "use_sde: gSDE exploration is not implemented (actions are Gaussian with a learned "
            "log std); remove use_sde to train without it"
        )
    if out.pop("sde_sample_freq", -1) != -1:
        raise ConfigError("sde_sample_freq: gSDE exploration is not implemented; remove it")
    window = out.pop("stats_window_size", 100)
    if window != 100:
        raise ConfigError(
            f"stats_window_size={window}: rollout/ep_rew_mean and the other rollout/ means are "
            "always over the last 100 episodes; remove it"
        )
    if out.pop("_init_setup_model", True) is not True:
        raise ConfigError("_init_setup_model=False: the model is always built at once")
    if "seed" in out and out["seed"] is None:
        out["seed"] = secrets.randbits(32)
    if "device" in out and not isinstance(out["device"], str):
        out["device"] = str(out["device"])  # torch.device("cpu") -> "cpu"
    for key in ("learning_rate", "clip_range", "clip_range_vf"):
        if callable(out.get(key)):
            schedule = {"learning_rate": "lr_schedule", "clip_range": "clip_schedule"}.get(key)
            instead = (
                f"a number, with {schedule}='linear' for SB3's linear schedule"
                if schedule
                else "a number"
            )
            raise ConfigError(f"{key} as a function of the progress is not offered: give {instead}")
    return out


PICKLED_SCHEDULES = ("learning_rate", "lr_schedule", "clip_range", "clip_range_vf")
"""What SB3's `load(custom_objects=...)` usually replaces: the schedule functions it pickles
(rl_zoo3's `enjoy.py` passes `{"learning_rate": 0.0, "lr_schedule": lambda _: 0.0,
"clip_range": lambda _: 0.0}` so that a model saved by another Python loads)."""


class LoadArguments(NamedTuple):
    """SB3's `load(path, custom_objects=..., **kwargs)` arguments, as `RecurrentPPO.load` uses
    them."""

    settings: dict[str, Any]
    """`PPOConfig` fields to change (SB3's names translated; empty: the checkpoint's config)."""
    verbose: int
    force_reset: bool
    """Start new episodes instead of continuing the saved ones (SB3's `force_reset=True`)."""


def load_overrides(custom_objects: dict[str, Any] | None, kwargs: dict[str, Any]) -> LoadArguments:
    """What SB3's `load(path, custom_objects=..., **kwargs)` asks for. Settings go through the
    constructor's translation (`constructor_settings`, `policy_kwargs_settings`); the caller
    checks their names and values. Our checkpoints hold no Python objects, so a schedule
    function, and `learning_rate` 0.0 given beside one, replaces nothing here: it is dropped with
    a `UserWarning`, and the model keeps its own values."""
    import warnings

    values = {**(custom_objects or {}), **kwargs}
    pickled = [k for k in PICKLED_SCHEDULES if k in values and callable(values[k])]
    if pickled and values.get("learning_rate") == 0:
        pickled.append("learning_rate")
    if pickled:
        warnings.warn(
            f"load: {', '.join(sorted(set(pickled)))} ignored: this model's checkpoints hold no "
            "functions to replace, and it keeps its own schedule",
            UserWarning,
            stacklevel=3,
        )
    settings = {k: v for k, v in values.items() if k not in pickled}
    verbose = int(settings.pop("verbose", 0))
    force_reset = bool(settings.pop("force_reset", False))
    if "policy_kwargs" in settings:
        settings.update(policy_kwargs_settings(settings.pop("policy_kwargs")))
    return LoadArguments(constructor_settings(settings), verbose, force_reset)


def unknown_argument_error(unknown: Iterable[str], known: Iterable[str]) -> ConfigError:
    """One line naming the arguments `RecurrentPPO` does not take, with the closest known name."""
    names = sorted(unknown)
    known = sorted(set(known))
    hints = []
    for name in names:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]}?)" if close else ""))
    return ConfigError(
        f"RecurrentPPO got unknown argument{'s' if len(names) > 1 else ''} {', '.join(hints)}; "
        "the hyperparameters are PPOConfig's fields"
    )


def whole_rollout_batch(batch_size: int | None, rollout_size: int) -> int:
    """SB3's meaning of a `batch_size` larger than the rollout (or None): one minibatch of the
    whole rollout."""
    if batch_size is None or (isinstance(batch_size, int) and batch_size > rollout_size):
        return rollout_size
    return batch_size


def call_form(policy: Any, env: Any, config: Any) -> tuple[str | None, Any, Any]:
    """(policy name or None, env, config) of a `RecurrentPPO(policy, env, config)` call: SB3's
    `RecurrentPPO("MlpLstmPolicy", env)` when the first argument is a policy name, else ours,
    `RecurrentPPO(env, config)` (or `RecurrentPPO(env=..., config=...)`)."""
    name = policy_name(policy)
    if name is not None:
        if isinstance(env, PPOConfig):
            raise ConfigError(
                f"RecurrentPPO({name!r}, config): the env comes after the policy name "
                "(RecurrentPPO(policy, env, config=config))"
            )
        return name, env, config
    if env is None or isinstance(env, PPOConfig):
        if isinstance(env, PPOConfig):
            if config is not None:
                raise ConfigError("RecurrentPPO got two configs: give one")
            config = env
        return None, policy, config
    if policy is not None:
        close = difflib.get_close_matches(str(policy), list(POLICIES), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(
            f"RecurrentPPO got two envs ({policy!r} and {env!r}): the first argument is a "
            f"policy name{hint} followed by the env, or the env followed by a PPOConfig"
        )
    return None, env, config
