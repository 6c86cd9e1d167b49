"""Building the training vector env from a Gymnasium id, with clear errors for bad input."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

import envs as _memory_envs  # noqa: F401  (registers the Memory/ suite)


class EnvError(ValueError):
    """The environment cannot be made or used: unknown id, bad kwargs, wrong autoreset mode."""


def load_callable(target: str) -> Callable[..., Any]:
    """Import `module:attribute` (e.g. a wrapper class) and return the attribute."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise EnvError(f"expected 'module:Callable', got {target!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise EnvError(f"cannot import module {module_name!r} for {target!r}: {e}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise EnvError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise EnvError(f"{target!r} is not callable")
    return obj


def check_env_id(env_id: str) -> None:
    """Raise `EnvError` (suggesting close registered ids) when `env_id` is not registered."""
    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise EnvError(f"cannot import module {module!r} of env {env_id!r}: {e}") from None
    if name in gym.registry:
        return
    close = difflib.get_close_matches(name, list(gym.registry), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise EnvError(f"unknown environment id {name!r}{hint}")


def make_vec_env(
    env_id: str,
    n_envs: int,
    env_kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[str] = (),
) -> VectorEnv:
    """A vector env of `n_envs` copies of `env_id` that records episode statistics.

    Uses the env's native batched implementation (`vector_entry_point`) when it has one and no
    per-env wrappers are asked for; otherwise a `SyncVectorEnv` of single envs with `wrappers`
    (each a `module:Callable` applied to every single env, innermost first).
    """
    check_env_id(env_id)
    kwargs = dict(env_kwargs or {})
    wrapper_fns = [load_callable(w) for w in wrappers]
    spec = gym.spec(env_id.rpartition(":")[2])
    mode = "vector_entry_point" if spec.vector_entry_point and not wrapper_fns else "sync"
    try:
        if mode == "sync":
            env = gym.make_vec(
                env_id, num_envs=n_envs, vectorization_mode=mode, wrappers=wrapper_fns, **kwargs
            )
        else:
            env = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode=mode, **kwargs)
    except (TypeError, ValueError, gym.error.Error) as e:
        raise EnvError(f"cannot make {env_id!r} with kwargs {kwargs}: {e}") from None
    check_autoreset(env)
    return RecordEpisodeStatistics(env, buffer_length=100)


def check_autoreset(env: VectorEnv) -> None:
    """The agent handles Gymnasium's default NEXT_STEP autoreset; refuse any other mode."""
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode != AutoresetMode.NEXT_STEP:
        raise EnvError(
            f"the vector env uses autoreset mode {mode}; this agent needs AutoresetMode.NEXT_STEP "
            "(Gymnasium's default)"
        )
