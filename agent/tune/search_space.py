"""Hyperparameter search spaces written in YAML, checked, then handed to Ray Tune.

One entry per `PPOConfig` field that a sweep samples (`configs/search/*.yaml`):

    learning_rate: {loguniform: [1e-5, 1e-2]}       # log-uniform between the bounds
    gae_lambda: {uniform: [0.8, 1.0]}               # uniform between the bounds
    n_steps: {choice: [64, 128, 256]}               # one of the options
    n_epochs: {randint: [2, 11]}                    # an integer, 2 to 10 (Ray: upper excluded)
    batch_size: {quniform: [128, 1024, 128]}        # uniform, rounded to a multiple of 128
    ent_coef: 0.01                                  # a plain value: fixed for every trial

Every bound and option is checked against the experiment's own config before any trial starts,
so a space that can only produce invalid values fails with one line rather than in a trial.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.config import ConfigError, PPOConfig
from agent.run.cli import UsageError, build_config, read_yaml

ARITY = {"uniform": 2, "loguniform": 2, "quniform": 3, "randint": 2, "choice": None}
"""The distributions a space may use, with how many numbers each takes (choice: any)."""


@dataclass(frozen=True)
class Dimension:
    """One sampled hyperparameter: `kind` is a key of `ARITY` (or `fixed`), `args` its numbers
    (the options of a `choice`, the value of `fixed`)."""

    name: str
    kind: str
    args: tuple[Any, ...]

    def extremes(self) -> list[Any]:
        """The values that decide whether every sample is valid: the options of a choice, the
        bounds of a range (the largest integer below the excluded upper bound of `randint`)."""
        if self.kind in ("choice", "fixed"):
            return list(self.args)
        if self.kind == "randint":
            return [self.args[0], self.args[1] - 1]
        if self.kind == "quniform":
            low, high, q = self.args
            return [round(low / q) * q, round(high / q) * q]
        return [self.args[0], self.args[1]]

    def to_tune(self) -> Any:
        """The Ray Tune sampler (`tune.loguniform(low, high)`, ...), or the fixed value."""
        from ray import tune

        if self.kind == "fixed":
            return self.args[0]
        if self.kind == "choice":
            return tune.choice(list(self.args))
        return getattr(tune, self.kind)(*self.args)


def read_search_space(path: str | Path) -> dict[str, Any]:
    """The YAML mapping of a search-space file, read as presets are (`read_yaml`: `1e-5` is a
    number). Raises `UsageError` when it cannot be read."""
    path = Path(path)
    data = read_yaml(path, "search space")
    if not isinstance(data, dict) or not data:
        raise UsageError(f"search space {path} must be a mapping of hyperparameter: distribution")
    return data


def parse_search_space(data: dict[str, Any], base: PPOConfig, source: str) -> list[Dimension]:
    """Check a search space (as `read_search_space` returns it) against `base`, the config every
    trial starts from, and return its dimensions. Raises `UsageError` naming the first unknown
    hyperparameter, unknown distribution, malformed range, or value the config refuses."""
    fields = [f.name for f in dataclasses.fields(PPOConfig)]
    hints = typing.get_type_hints(PPOConfig)
    dimensions = []
    for name, entry in data.items():
        if name not in fields:
            close = difflib.get_close_matches(str(name), fields, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"search space {source}: unknown hyperparameter {name!r}{hint}")
        where = f"search space {source}: {name}"
        dimension = _dimension(str(name), entry, where)
        whole = all(isinstance(a, int) for a in dimension.args)
        fractional = dimension.kind in ("uniform", "loguniform") or (
            dimension.kind == "quniform" and not whole
        )
        if hints[name] is int and fractional:
            raise UsageError(
                f"{where} is an integer: sample it with randint, choice, or quniform with "
                "integer bounds and step"
            )
        for value in dimension.extremes():
            try:
                sampled_config(base, {name: value})
            except ConfigError as e:
                raise UsageError(f"search space {source}: {name} can be {value!r}: {e}") from None
        dimensions.append(dimension)
    return dimensions


def _dimension(name: str, entry: Any, where: str) -> Dimension:
    if not isinstance(entry, dict):
        if isinstance(entry, list):
            raise UsageError(f"{where}: write a list of options as {{choice: {entry}}}")
        return Dimension(name, "fixed", (entry,))
    if len(entry) != 1:
        raise UsageError(f"{where}: give one distribution, as {{loguniform: [low, high]}}")
    ((kind, args),) = entry.items()
    if kind not in ARITY:
        close = difflib.get_close_matches(str(kind), list(ARITY), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(
            f"{where}: unknown distribution {kind!r} ({hint}known: {', '.join(ARITY)})"
        )
    if not isinstance(args, list) or not args:
        raise UsageError(f"{where}: {kind} takes a list, got {args!r}")
    if kind == "choice":
        if any(not isinstance(a, bool | int | float | str) and a is not None for a in args):
            raise UsageError(f"{where}: choice options must be numbers, strings or booleans")
        return Dimension(name, kind, tuple(args))
    if len(args) != ARITY[kind] or not all(_is_number(a) for a in args):
        shape = "[low, high, step]" if kind == "quniform" else "[low, high]"
        raise UsageError(f"{where}: {kind} takes {shape} as numbers, got {args!r}")
    low, high = args[0], args[1]
    if not low < high:
        raise UsageError(f"{where}: {kind} needs low < high, got {args!r}")
    if kind == "loguniform" and low <= 0:
        raise UsageError(f"{where}: loguniform needs 0 < low, got {args!r}")
    if kind == "randint" and not all(isinstance(a, int) for a in args):
        raise UsageError(f"{where}: randint takes integer bounds, got {args!r}")
    if kind == "quniform" and args[2] <= 0:
        raise UsageError(f"{where}: quniform needs a positive step, got {args!r}")
    return Dimension(name, kind, tuple(args))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def tune_space(dimensions: list[Dimension]) -> dict[str, Any]:
    """The `param_space` of a Ray Tune sweep: each name and its sampler (or fixed value)."""
    return {d.name: d.to_tune() for d in dimensions}


def sampled_config(base: PPOConfig, sample: dict[str, Any]) -> PPOConfig:
    """`base` with the sampled values, validated. Whole floats become integers where the field
    is an integer (`quniform` samples 256.0 for `n_steps`). Raises `ConfigError`."""
    hints = typing.get_type_hints(PPOConfig)
    values = {}
    for name, value in sample.items():
        if isinstance(value, np.generic):  # a sampler's numpy scalar
            value = value.item()
        if hints.get(name) is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        values[name] = value
    return build_config(base.to_dict(), values)
