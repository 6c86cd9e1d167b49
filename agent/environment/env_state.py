"""The state of a training vector env as checkpoint data, so that a resumed run continues the
very episodes it was in.

An env can be resumed exactly when its innermost vector env offers `get_state()`/`set_state()`
returning plain data (arrays, ints, strings, nested dicts), as the native vector envs of `envs/`
do. Gymnasium's own envs have no such interface (their state is Python objects, and a checkpoint
never holds code), so a run on them resumes with fresh episodes seeded from the step count.
`RecordEpisodeStatistics`' running sums are kept too, so the returns logged after a resume count
the whole episode. Gymnasium does not document those attributes (`STAT_FIELDS` and
`episode_count`): tests/test_resume.py pins their meaning (checked on Gymnasium 1.4.0) and fails
if a release changes them.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from gymnasium.vector import VectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from agent.environment.vec_env import find_layer, layers

STAT_FIELDS = ("episode_returns", "episode_lengths", "prev_dones")


def get_env_state(env: VectorEnv) -> dict[str, Any] | None:
    """Checkpoint data for `env` (tensors and a JSON string), or None if it cannot be saved."""
    chain = layers(env)
    inner = chain[-1]
    if not callable(getattr(inner, "get_state", None)):
        return None
    state = inner.get_state()
    arrays = {f"env.{k}": torch.as_tensor(np.asarray(v)) for k, v in state["arrays"].items()}
    meta: dict[str, Any] = {"rng": state["rng"]}
    stats = find_layer(env, RecordEpisodeStatistics)
    if stats is not None:
        for name in STAT_FIELDS:
            arrays[f"stats.{name}"] = torch.as_tensor(np.asarray(getattr(stats, name)))
        meta["episode_count"] = int(stats.episode_count)
    # The generator state holds 128-bit integers: JSON keeps them exact.
    return {"arrays": arrays, "meta": json.dumps(meta)}


def set_env_state(env: VectorEnv, data: dict[str, Any]) -> None:
    """Restore what `get_env_state` saved; ValueError when it does not fit this env."""
    chain = layers(env)
    inner = chain[-1]
    if not callable(getattr(inner, "set_state", None)):
        raise ValueError(f"{type(inner).__name__} cannot restore a saved env state")
    meta = json.loads(data["meta"])
    arrays = {k: v.numpy() for k, v in data["arrays"].items()}
    env_arrays = {k[4:]: v for k, v in arrays.items() if k.startswith("env.")}
    inner.set_state({"arrays": env_arrays, "rng": meta["rng"]})
    stats = find_layer(env, RecordEpisodeStatistics)
    if stats is not None and "episode_count" in meta:
        for name in STAT_FIELDS:
            setattr(stats, name, arrays[f"stats.{name}"].copy())
        stats.episode_count = meta["episode_count"]
