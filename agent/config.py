"""The one typed configuration of a training run, with Stable-Baselines3's hyperparameter names."""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

RNN_TYPES = ("lstm", "peephole", "gru", "mingru", "ffm", "none")
SCHEDULES = ("constant", "linear", "adaptive")
CLIP_SCHEDULES = ("constant", "linear")
ACTIVATIONS = ("tanh", "relu")
VEC_ENVS = ("auto", "native", "sync", "async")
IMAGE_ENCODERS = ("auto", "cnn", "nature", "flatten", "embed", "onehot")
GATE_INITS = ("chrono", "half-chrono", "chrono-forget", "default")
"""The named `forget_bias_init` values; a number is the other kind."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the problem."""


# --------------------------------------------------------------------------- field rules ---


class Rule(Protocol):
    """What one field accepts: `convert` returns the value as the field's type (a numpy
    scalar becomes a Python one) or raises ValueError; `describe` says it in words."""

    def convert(self, value: Any) -> Any: ...

    def describe(self) -> str: ...


def _is_int(value: Any) -> bool:
    """An int or numpy integer; a bool is not a count."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """An int, float or numpy number; a bool is not a number."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Integer:
    """An integer of at least `at_least`, at most `at_most` when given."""

    at_least: int
    at_most: int | None = None

    def convert(self, value: Any) -> int:
        if not _is_int(value) or value < self.at_least:
            raise ValueError
        if self.at_most is not None and value > self.at_most:
            raise ValueError
        return int(value)

    def describe(self) -> str:
        if self.at_most is not None:
            return f"an integer in [{self.at_least}, {self.at_most}]"
        return "a positive integer" if self.at_least == 1 else f"an integer >= {self.at_least}"


@dataclass(frozen=True)
class Number:
    """A finite number (ints too), optionally above or at least a bound, at most another;
    None as well when `optional`."""

    above: float | None = None
    at_least: float | None = None
    at_most: float | None = None
    optional: bool = False

    def convert(self, value: Any) -> float | None:
        if value is None and self.optional:
            return None
        if not _is_number(value) or not math.isfinite(value):
            raise ValueError
        in_range = (
            (self.above is None or value > self.above)
            and (self.at_least is None or value >= self.at_least)
            and (self.at_most is None or value <= self.at_most)
        )
        if not in_range:
            raise ValueError
        return float(value)

    def describe(self) -> str:
        if self.at_least is not None and self.at_most is not None:
            text = f"a number in [{self.at_least:g}, {self.at_most:g}]"
        elif self.above is not None:
            text = f"a number > {self.above:g}"
        elif self.at_least is not None:
            text = f"a number >= {self.at_least:g}"
        else:
            text = "a number"
        return f"{text} or None" if self.optional else text


@dataclass(frozen=True)
class Flag:
    """True or False (numpy's bool too); 0 and 1 are refused, a typo should not pass as one."""

    def convert(self, value: Any) -> bool:
        if not isinstance(value, bool | np.bool_):
            raise ValueError
        return bool(value)

    def describe(self) -> str:
        return "True or False"


@dataclass(frozen=True)
class Choice:
    """One of `options`, or a string that fully matches the pattern of `also` = (words,
    pattern); a number is taken as its text when the pattern accepts it."""

    options: tuple[str, ...]
    also: tuple[str, str] | None = None

    def convert(self, value: Any) -> str:
        if self.also is not None and _is_number(value):
            value = str(value)  # forget_bias_init=1.0 from the Python API, as from a preset
        if not isinstance(value, str):
            raise ValueError
        if value in self.options or (self.also and re.fullmatch(self.also[1], value)):
            return value
        raise ValueError

    def describe(self) -> str:
        text = f"one of {', '.join(self.options)}"
        return f"{text} or {self.also[0]}" if self.also else text


@dataclass(frozen=True)
class Sizes:
    """A list (or tuple) of positive integers, stored as a list."""

    def convert(self, value: Any) -> list[int]:
        if not isinstance(value, list | tuple):
            raise ValueError
        return [Integer(1).convert(size) for size in value]

    def describe(self) -> str:
        return "a list of positive integers"


FINITE_NUMBER = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
"""A number written out (`1`, `-0.5`, `2e-3`), as `forget_bias_init` takes one."""

FIELD_RULES: dict[str, Rule] = {
    "n_envs": Integer(at_least=1),
    "n_steps": Integer(at_least=1),
    "vec_env": Choice(VEC_ENVS),
    "batch_size": Integer(at_least=1),  # and at most a rollout: `PPOConfig.validate`
    "n_epochs": Integer(at_least=1),
    "learning_rate": Number(above=0),
    "lr_schedule": Choice(SCHEDULES),
    "desired_kl": Number(above=0),
    "gamma": Number(at_least=0, at_most=1),
    "gae_lambda": Number(at_least=0, at_most=1),
    "clip_range": Number(above=0),
    "clip_schedule": Choice(CLIP_SCHEDULES),
    "clip_range_vf": Number(above=0, optional=True),
    "ent_coef": Number(at_least=0),
    "vf_coef": Number(at_least=0),
    "max_grad_norm": Number(above=0),
    "target_kl": Number(above=0, optional=True),
    "normalize_advantage": Flag(),
    "adam_eps": Number(above=0),
    "image_encoder": Choice(IMAGE_ENCODERS),
    "rnn_type": Choice(RNN_TYPES),
    "lstm_hidden_size": Integer(at_least=1),
    "n_lstm_layers": Integer(at_least=1),
    "shared_lstm": Flag(),
    "bptt_len": Integer(at_least=0),
    "net_arch": Sizes(),
    "activation_fn": Choice(ACTIVATIONS),
    "forget_bias_init": Choice(GATE_INITS, also=("a number", FINITE_NUMBER)),
    "chrono_max_len": Integer(at_least=0),
    "log_std_init": Number(),
    "ortho_init": Flag(),
    "observe_action_mask": Flag(),
    "normalize_obs": Flag(),
    "normalize_reward": Flag(),
    # Optuna's sampler, seeded with it by tune.py, takes no seed of 2**32 or more.
    "seed": Integer(at_least=0, at_most=2**32 - 1),
    "device": Choice(("auto", "cpu", "cuda"), also=("cuda:N", r"cuda:\d+")),
    "fast_path": Flag(),
}
"""The values each `PPOConfig` field accepts, checked by `PPOConfig.validate`; a new field
needs a rule here (tests/test_config_validation.py fails without one)."""


@dataclass
class PPOConfig:
    """Hyperparameters of recurrent PPO. Every field is a `train.py` flag (`--n-steps 32`)."""

    # --- rollout -------------------------------------------------------------------------------
    n_envs: int = 16
    """Environment copies stepped in parallel."""
    n_steps: int = 128
    """Steps per copy in each rollout."""
    vec_env: str = "auto"
    """How the copies are stepped: `native` (the env's batched version), `sync`, `async` (a
    process per copy, for slow envs; no exact resume) or `auto`, which picks (README, Training)."""

    # --- optimisation ----------------------------------------------------------------------------
    batch_size: int = 256
    """Steps per minibatch, packed from whole sequences."""
    n_epochs: int = 10
    """Passes over each rollout: more learn more from each sample, and take longer (RESULTS.md
    6)."""
    learning_rate: float = 1e-3
    """Adam step size (a schedule's start or ceiling)."""
    lr_schedule: str = "constant"
    """`constant`, `linear` (to 0) or `adaptive`: steers each update's KL to `desired_kl`
    (RESULTS.md 6)."""
    desired_kl: float = 0.02
    """The update KL that `adaptive` steers towards."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE bias/variance trade-off."""
    clip_range: float = 0.2
    """PPO policy clipping parameter."""
    clip_schedule: str = "constant"
    """`constant`, or `linear` to 0 (rl-zoo's `lin_`)."""
    clip_range_vf: float | None = None
    """Value clipping around the rollout's; None: off."""
    ent_coef: float = 0.01
    """Entropy bonus; at 0 (sb3-contrib's default) runs lost tasks they had solved (RESULTS.md
    6)."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    target_kl: float | None = None
    """Stop an update's epochs at a KL of 1.5 * target_kl."""
    normalize_advantage: bool = True
    """Normalise advantages per minibatch."""
    adam_eps: float = 1e-5
    """Adam epsilon."""

    # --- networks ------------------------------------------------------------------------------
    image_encoder: str = "auto"
    """`auto`: uint8 grids up to 16x16 cells as codes, larger through a CNN (README, How it
    works)."""
    rnn_type: str = "lstm"
    """Recurrent core: `lstm`, `peephole`, `gru`, `mingru`, `ffm` or `none` (README)."""
    lstm_hidden_size: int = 128
    """Units of the recurrent core."""
    n_lstm_layers: int = 1
    """Stacked recurrent layers."""
    shared_lstm: bool = False
    """One recurrent core for actor and critic."""
    bptt_len: int = 0
    """Backpropagate at most this many steps (0: the whole rollout); shorter is faster, but may
    lose longer gaps (RESULTS.md 5, 6)."""
    net_arch: list[int] = field(default_factory=lambda: [64])
    """Hidden sizes of the MLP heads after the core."""
    activation_fn: str = "tanh"
    """Activation of the MLP heads: `tanh` or `relu`."""
    forget_bias_init: str = "half-chrono"
    """LSTM gate biases: `chrono` (for long gaps), `default` (PyTorch's), `half-chrono` (each on
    half the units), `chrono-forget`, or a number added to the forget gate's (README, How it
    works)."""
    chrono_max_len: int = 0
    """Longest gap chrono prepares for; 0: the BPTT length."""
    log_std_init: float = 0.0
    """Initial log std of Gaussian (Box) actions."""
    ortho_init: bool = True
    """Orthogonal init of linear layers (SB3's default)."""
    observe_action_mask: bool = False
    """Also feed a Dict observation's `action_mask` entry to the network (it masks either way)."""

    # --- normalisation ---------------------------------------------------------------------------
    normalize_obs: bool = False
    """Normalise vector observations by a running mean/std."""
    normalize_reward: bool = False
    """Scale rewards by a running std of the return."""

    # --- run -------------------------------------------------------------------------------------
    seed: int = 0
    """Seed of torch, numpy and the environments."""
    device: str = "auto"
    """`auto` (CUDA if present), `cpu`, `cuda`, `cuda:N`."""
    fast_path: bool = True
    """CPU speed-ups for small networks; false: the plain PyTorch reference (README, How it
    works)."""

    @property
    def rollout_size(self) -> int:
        """Environment steps per rollout."""
        return self.n_envs * self.n_steps

    @property
    def sequence_len(self) -> int:
        """Longest training sequence: the BPTT truncation length, at most the rollout length."""
        return self.n_steps if self.bptt_len <= 0 else min(self.bptt_len, self.n_steps)

    def validate(self) -> PPOConfig:
        """Check every field against its rule in `FIELD_RULES`, and the minibatch against the
        rollout; raise `ConfigError`, one line naming the first invalid field, its value and
        what the field accepts. Valid values are stored as their field's type (a numpy scalar as
        a Python number, an int given for a float as a float, a tuple of sizes as a list), so
        that the config saves as YAML. Returns self."""
        for f in dataclasses.fields(self):
            rule, value = FIELD_RULES[f.name], getattr(self, f.name)
            try:
                setattr(self, f.name, rule.convert(value))
            except ValueError:
                raise ConfigError(f"{f.name} must be {rule.describe()}, got {value!r}") from None
        if self.rnn_type == "ffm" and self.lstm_hidden_size % 4:
            raise ConfigError(
                f"rnn_type ffm needs lstm_hidden_size divisible by 4 (4 oscillators per memory "
                f"channel), got {self.lstm_hidden_size}"
            )
        if self.batch_size > self.rollout_size:
            raise ConfigError(
                f"batch_size ({self.batch_size}) is larger than a rollout "
                f"(n_envs * n_steps = {self.rollout_size})"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the fields (YAML/JSON serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PPOConfig:
        """Build from a dict; unknown keys raise `ConfigError` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown hyperparameter(s): {', '.join(unknown)}")
        return cls(**values)
