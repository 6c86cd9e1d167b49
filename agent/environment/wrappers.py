"""Per-env wrappers named in a config: `module:Callable`, with keyword arguments.

A wrapper spec is written the way rl-baselines3-zoo writes `env_wrapper` entries:

    wrappers:
      - gymnasium.wrappers:FlattenObservation                   # no arguments
      - gymnasium.wrappers:FrameStackObservation: {stack_size: 4}   # with keyword arguments

On the command line: `--wrapper gymnasium.wrappers:FrameStackObservation stack_size=4`.
Specs are plain data (strings and dicts), so checkpoints and `config.yaml` hold them as they are.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym


class EnvError(ValueError):
    """The environment cannot be made or used: unknown id, bad kwargs, wrong autoreset mode."""


def load_callable(target: str) -> Callable[..., Any]:
    """Import `module:attribute` (e.g. a wrapper class) and return the attribute. The zoo's
    dotted form, `module.attribute` (`stable_baselines3.common.atari_wrappers.AtariWrapper`),
    is read as `module:attribute`, split at the last dot."""
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, sep, attr = target.rpartition(".")
    if not sep or not module_name or not attr:
        raise EnvError(f"expected 'module:Callable' or 'module.Callable', got {target!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        missing = e.name if isinstance(e, ModuleNotFoundError) else None
        hint = {  # the two a pasted rl-zoo file names that cannot be here
            "gym": " (the old Gym; this agent uses Gymnasium, its wrappers are gymnasium.wrappers)",
            "utils": " (rl-baselines3-zoo's own package, now rl_zoo3: pip install rl_zoo3)",
        }.get(missing or "", "")
        raise EnvError(f"cannot import module {module_name!r} for {target!r}: {e}{hint}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise EnvError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise EnvError(f"{target!r} is not callable")
    return obj


WrapperSpec = str | dict[str, dict[str, Any]]
"""`"module:Callable"` or `{"module:Callable": {kwarg: value, ...}}`."""


def wrapper_parts(spec: Any) -> tuple[str, dict[str, Any]]:
    """(target, kwargs) of a spec; raises `EnvError` for anything else."""
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict) and len(spec) == 1:
        ((target, kwargs),) = spec.items()
        if isinstance(target, str) and isinstance(kwargs or {}, dict):
            return target, dict(kwargs or {})
    raise EnvError(
        f"a wrapper is 'module:Callable' or {{'module:Callable': {{kwarg: value}}}}, got {spec!r}"
    )


def wrapper_spec(target: str, kwargs: dict[str, Any]) -> WrapperSpec:
    """The plain spec of `target` with `kwargs` (a bare string when there are none)."""
    return {target: dict(kwargs)} if kwargs else target


def describe(spec: WrapperSpec) -> str:
    """`module:Callable(key=value, ...)`, for messages."""
    target, kwargs = wrapper_parts(spec)
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"{target}({args})" if kwargs else target


def load_wrappers(specs: Sequence[WrapperSpec]) -> list[Callable[[gym.Env], gym.Env]]:
    """One function per spec that wraps a single env; importing happens here, so an unknown
    module or name fails before any env is made. A wrapper that fails when applied (a missing or
    unknown keyword argument, say) raises `EnvError` naming the wrapper and its arguments."""
    functions = []
    for spec in specs:
        target, kwargs = wrapper_parts(spec)
        wrapper = load_callable(target)

        def wrap(env: gym.Env, wrapper: Any = wrapper, kwargs: dict = kwargs, spec: Any = spec):
            try:
                return wrapper(env, **kwargs)
            except (TypeError, ValueError, gym.error.Error) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise EnvError(f"wrapper {describe(spec)} failed: {first}") from None

        functions.append(wrap)
    return functions
