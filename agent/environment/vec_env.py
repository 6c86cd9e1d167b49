"""Building the training vector env from a Gymnasium id, with clear errors for bad input.

Three ways to step the copies: the env's own batched implementation (`native`, one numpy call for
all copies), Gymnasium's `SyncVectorEnv` (one copy after another in this process) and its
`AsyncVectorEnv` (one process per copy). `auto` picks native when it can, and otherwise times a
few steps of one copy to decide whether worker processes would pay for their round trips.
"""

from __future__ import annotations

import difflib
import importlib
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.wrappers import FilterObservation
from gymnasium.wrappers.vector import RecordEpisodeStatistics

import envs as _memory_envs  # noqa: F401  (registers the Memory/ suite)
from agent.config import VEC_ENVS
from agent.environment.wrappers import EnvError, load_wrappers

T = TypeVar("T")

ASYNC_ROUND_TRIP_S = 100e-6
"""Extra wall time per copy and step that `AsyncVectorEnv` costs over `SyncVectorEnv`: sending
the action down a pipe, waking the worker, its reply and the shared-memory copy of the
observation. Measured on CartPole-v1 (a 10 us step) on a 2-CPU Linux VM (Python 3.11, Gymnasium
1.4, fork): 70-115 us per copy for 2 to 16 copies, the best of 40 short interleaved runs (the
machine was shared; `benchmarks/vector_env_speed.py --step-cost-ms 0` gave 214 us at load 6)."""

_MODES = {"native": "vector_entry_point", "sync": "sync", "async": "async"}
"""`vec_env` values and Gymnasium's names for them."""


ID_PACKAGES = {
    "MiniGrid-": ("minigrid", "minigrid"),
    "BabyAI-": ("minigrid", "minigrid"),
    "popgym-": ("popgym", "popgym"),
}
"""Env id prefixes whose package registers them on import: (module, our extra that installs it).
Such an id works without the `module:` prefix Gymnasium otherwise needs."""


def qualified_env_id(env_id: str) -> str:
    """`env_id` with the `module:` prefix of `ID_PACKAGES` when it has none and is such an id
    (`MiniGrid-MemoryS7-v0` -> `minigrid:MiniGrid-MemoryS7-v0`): worker processes that start
    afresh import the package too."""
    if ":" in env_id or env_id in gym.registry:
        return env_id
    for prefix, (module, _) in ID_PACKAGES.items():
        if env_id.startswith(prefix):
            return f"{module}:{env_id}"
    return env_id


def check_env_id(env_id: str) -> None:
    """Raise `EnvError` (suggesting close registered ids) when `env_id` is not registered."""
    module, _, name = qualified_env_id(env_id).rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as e:
            extra = next((x for m, x in ID_PACKAGES.values() if m == module), None)
            hint = f' (pip install -e ".[{extra}]")' if extra and e.name == module else ""
            raise EnvError(
                f"cannot import module {module!r} of env {env_id!r}: {e}{hint}"
            ) from None
    if name in gym.registry:
        return
    close = difflib.get_close_matches(name, list(gym.registry), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise EnvError(f"unknown environment id {name!r}{hint}")


READABLE_SPACES = (
    spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Dict,
    spaces.Tuple,
)  # fmt: skip
"""Observation spaces the agent has an encoder for (agent.networks.encoders)."""


_DROPPED: set[str] = set()


def drop_unreadable_parts(env: gym.Env) -> gym.Env:
    """`env`, with the parts of a Dict observation that the agent cannot encode (a `Text` space,
    MiniGrid's mission string) filtered out by Gymnasium's `FilterObservation`, with a warning;
    unchanged when there are none, or nothing else."""
    space = env.observation_space
    if not isinstance(space, spaces.Dict):
        return env
    kept = [k for k, s in space.spaces.items() if isinstance(s, READABLE_SPACES)]
    if not kept or len(kept) == len(space.spaces):
        return env
    dropped = ", ".join(
        f"{k!r} ({type(s).__name__})" for k, s in space.spaces.items() if k not in kept
    )
    if dropped not in _DROPPED:  # said once per process, not once per copy
        _DROPPED.add(dropped)
        warnings.warn(
            f"observation part(s) {dropped} left out: the agent has no encoder for text "
            "(a memory task's text is its fixed mission; wrap the env to encode it as numbers)",
            stacklevel=2,
        )
    return FilterObservation(env, kept)


def copy_wrappers(wrappers: Sequence[Any]) -> list[Callable[..., Any]]:
    """What wraps each copy of an env (innermost first): the wrapper specs `wrappers`, loaded
    (`load_wrappers`), then `drop_unreadable_parts`."""
    return [*load_wrappers(wrappers), drop_unreadable_parts]


def make_vec_env(
    env_id: str,
    n_envs: int,
    env_kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[Any] = (),
    vec_env: str = "auto",
) -> VectorEnv:
    """A vector env of `n_envs` copies of `env_id` that records episode statistics.

    `vec_env` is `native` (the env's batched `vector_entry_point`; no per-env wrappers), `sync`
    (`SyncVectorEnv`), `async` (`AsyncVectorEnv`, one process per copy) or `auto` (see
    `auto_vec_env`). `wrappers` are applied to every single env, innermost first. Raises
    `EnvError` when the env cannot be made that way.
    """
    if vec_env not in VEC_ENVS:
        raise EnvError(f"vec_env must be one of {', '.join(VEC_ENVS)}, got {vec_env!r}")
    check_env_id(env_id)
    env_id = qualified_env_id(env_id)
    kwargs = dict(env_kwargs or {})
    per_env = copy_wrappers(wrappers)
    spec = gym.spec(env_id.rpartition(":")[2])
    if vec_env == "native" and not spec.vector_entry_point:
        raise EnvError(
            f"{env_id!r} has no native vector env (vector_entry_point); use vec_env sync or async"
        )
    if vec_env == "native" and wrappers:
        raise EnvError(
            "a native vector env cannot apply per-env wrappers; use vec_env sync or async"
        )
    try:
        mode = vec_env
        if mode == "auto":
            mode = auto_vec_env(
                spec, n_envs, wrappers, lambda: make_single_env(env_id, kwargs, per_env)
            )
        if mode == "native":
            env = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode=_MODES[mode], **kwargs)
        else:
            # Both keep Gymnasium's default NEXT_STEP autoreset, as `check_autoreset` requires;
            # AsyncVectorEnv pickles the env factory (closures included) to its workers.
            env = gym.make_vec(
                env_id,
                num_envs=n_envs,
                vectorization_mode=_MODES[mode],
                wrappers=per_env,
                **kwargs,
            )
    except EnvError:  # a wrapper that failed, named by `load_wrappers`
        raise
    except (TypeError, ValueError, gym.error.Error) as e:
        raise EnvError(f"cannot make {env_id!r} with kwargs {kwargs}: {e}") from None
    check_autoreset(env)
    return RecordEpisodeStatistics(env, buffer_length=100)


def make_single_env(
    env_id: str, env_kwargs: dict[str, Any], wrapper_fns: Sequence[Callable[..., Any]]
) -> gym.Env:
    """One copy of `env_id`, wrapped as each copy of a sync or async vector env is."""
    env = gym.make(env_id, **env_kwargs)
    for wrapper in wrapper_fns:
        env = wrapper(env)
    return env


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def async_threshold(cpus: int) -> float:
    """Seconds per step of one copy above which `AsyncVectorEnv` beats `SyncVectorEnv`.

    Per copy and vector step, sync costs the step `t`; async costs the round trip `r` plus `t`
    shared among the CPUs, `r + t / cpus` at best. Async wins when `t * (1 - 1/cpus) > r`: on 2
    CPUs once a step costs twice the round trip, and never on one CPU.
    """
    if cpus < 2:
        return math.inf
    return ASYNC_ROUND_TRIP_S * cpus / (cpus - 1)


def seconds_per_step(env: gym.Env, max_steps: int = 50, budget_s: float = 0.1) -> float:
    """Median wall time of `env.step` under seeded random actions: up to `max_steps` steps,
    fewer (at least 3) once `budget_s` seconds have gone, so that a slow env is timed quickly.
    The median ignores a first step that warms caches up and steps slowed by other processes."""
    env.reset(seed=0)
    env.action_space.seed(0)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_steps and (len(times) < 3 or time.perf_counter() - start < budget_s):
        action = env.action_space.sample()
        before = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        times.append(time.perf_counter() - before)
        if terminated or truncated:
            env.reset()
    return float(np.median(times))


def auto_vec_env(
    spec: gym.envs.registration.EnvSpec,
    n_envs: int,
    wrappers: Sequence[Any],
    make_env: Callable[[], gym.Env],
) -> str:
    """What `vec_env="auto"` means for this env: `native` when it has a native vector env and no
    wrappers are given (one numpy call for all copies beats both others); otherwise `async` when
    there is more than one copy and one copy made by `make_env` steps slower than
    `async_threshold` on this process's CPUs, else `sync`."""
    if spec.vector_entry_point and not wrappers:
        return "native"
    cpus = usable_cpus()
    if n_envs < 2 or cpus < 2:
        return "sync"
    with make_env() as env:
        step_s = seconds_per_step(env)
    return "async" if step_s > async_threshold(cpus) else "sync"


def layers(env: Any) -> list[Any]:
    """`env` and every env it wraps, outermost first (each wrapper's `env` attribute)."""
    chain = [env]
    while hasattr(chain[-1], "env"):
        chain.append(chain[-1].env)
    return chain


def find_layer(env: Any, cls: type[T]) -> T | None:
    """The outermost layer of `env` that is a `cls`, or None."""
    return next((layer for layer in layers(env) if isinstance(layer, cls)), None)


def check_autoreset(env: VectorEnv) -> None:
    """The agent handles Gymnasium's default NEXT_STEP autoreset; refuse any other mode."""
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode != AutoresetMode.NEXT_STEP:
        raise EnvError(
            f"the vector env uses autoreset mode {mode}; this agent needs AutoresetMode.NEXT_STEP "
            "(Gymnasium's default)"
        )
