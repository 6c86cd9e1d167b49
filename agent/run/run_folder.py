"""What a run folder's `config.yaml` holds, written the same way by `train.py` and by every trial
of `tune.py`, so that a trial's folder is an ordinary run folder (see `agent.run.callbacks`)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import yaml

from agent.algorithm.ppo import RecurrentPPO
from agent.config import PPOConfig
from agent.run.callbacks import RunPaths
from agent.run.cli import UsageError


def write_config(paths: RunPaths, model: RecurrentPPO, total_timesteps: int) -> None:
    """`config.yaml`: env, env_kwargs, wrappers, total_timesteps, then every hyperparameter.
    It is itself a preset: `train.py --config RUN/config.yaml` repeats the run."""
    spec = model.env_spec
    config: PPOConfig = model.config
    record: dict[str, Any] = {
        "env": spec["id"],
        "env_kwargs": plain(spec["kwargs"]),
        "wrappers": list(spec["wrappers"]),
        "total_timesteps": int(total_timesteps),
        **config.to_dict(),
    }
    paths.root.mkdir(parents=True, exist_ok=True)
    # A temporary file, then a rename: an interrupted write never leaves half a config.
    tmp = paths.config.with_name(f".{paths.config.name}.tmp")
    tmp.write_text(yaml.safe_dump(record, sort_keys=False))
    os.replace(tmp, paths.config)


def claim_new_folder(base: Path) -> Path:
    """Create `base` (and its parents) and return it; when another run took that name (one
    started in the same second), `base-2`, `base-3`, ... `mkdir` either creates a folder or
    fails, so two runs never share one."""
    check_folder_can_be_made(base.parent)
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise cannot_make(base.parent, e) from None
    for n in itertools.count(1):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            raise cannot_make(path, e) from None
        return path
    raise AssertionError("unreachable")


def check_folder_can_be_made(path: Path) -> None:
    """Raise `UsageError` unless `path` is a folder this process may write in, or could be
    created as one: checked before anything is built, so that a path naming a file, or lying
    under a file or a folder without write permission, fails in one line with nothing written."""
    try:
        if path.exists() and not path.is_dir():
            raise UsageError(f"cannot write in {path}: it is a file, not a folder")
        ancestor = path
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
    except PermissionError as e:  # a folder on the way that this user may not enter
        raise cannot_make(path, e) from None
    if ancestor != path and not ancestor.is_dir():
        raise UsageError(f"cannot create the folder {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in {path}: no write permission in {ancestor}")


def cannot_make(path: Path, error: OSError) -> UsageError:
    """The one-line error of a folder that `mkdir` could not create (e.g. a full or read-only
    disk, which `check_folder_can_be_made` cannot foresee)."""
    return UsageError(f"cannot create the folder {path}: {error.strerror or error}")


def plain(value: Any) -> Any:
    """Tuples as lists, so that `yaml.safe_dump` can write `--env-kwargs size=(3,3)`."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
