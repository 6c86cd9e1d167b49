"""Checkpoints as data: what a model's checkpoint holds, and the file that holds it.

A checkpoint is a `torch.save` file of a dict holding only tensors, numbers and strings, so
`torch.load(weights_only=True)` can read it and refuses anything that would run code. It holds
the config, env spec and spaces (JSON, written by `metadata`), and the training state that
`RecurrentPPO.training_state` returns: weights, optimizer, counters, random streams, normalisers
and, when the env can save its state, where the rollout stands (the envs, the recurrent memory,
the episode statistics), so that a resumed run continues the same episodes and trains to the
same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import torch
from gymnasium import spaces

from agent.config import PPOConfig
from agent.environment.spaces_json import space_from_dict, space_to_dict
from agent.networks.encoders import (
    AUTO_VERSION,
    SMALL_IMAGE_CELLS,
    grid_layout,
    is_image_space,
)

FORMAT = "memory-ppo"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, unsafe, or of another format or version."""


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write `payload` to `path` atomically: a temporary file in the same folder, then a rename.

    A crash at any moment leaves either the previous file or the new one, never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; raise `CheckpointError` with one line on
    any problem (missing, truncated, corrupt, carrying code, other format or version)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"cannot read checkpoint {path}: corrupt or truncated (not a zip archive)"
        )
    if is_sb3_model(path):
        raise CheckpointError(
            f"{path} is a Stable-Baselines3 / sb3-contrib model, not a {FORMAT} checkpoint"
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # PyTorch's message is several lines with terminal escapes and advice to load unsafely;
        # the name of the offending object is the part worth one line.
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"refused to load {path}: it holds a Python object{what} besides tensors and plain "
            "data, and loading it could run code"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"cannot read checkpoint {path}: corrupt or truncated ({first[:200]})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}; this version reads {FORMAT_VERSION}"
        )
    return payload


def is_sb3_model(path: str | Path) -> bool:
    """Is `path` a Stable-Baselines3 (or sb3-contrib) `model.save` zip? It holds the entries
    `data` (the JSON of the model's attributes) and `policy.pth`, where a `torch.save` zip holds
    `<name>/data.pkl`. Only the zip's table of contents is read: nothing is unpickled."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return {"data", "policy.pth"} <= names


# ------------------------------------------------------------------------ a model's metadata ---


class Metadata(NamedTuple):
    """What a checkpoint says about the model besides its training state."""

    config: PPOConfig
    env_spec: dict[str, Any]
    observation_space: spaces.Space
    action_space: spaces.Space
    extra: dict[str, Any]


def metadata(
    config: PPOConfig,
    env_spec: dict[str, Any],
    observation_space: spaces.Space,
    action_space: spaces.Space,
    extra: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The checkpoint entries that describe a model, as JSON strings (`read_metadata` reads them)."""
    return {
        "config": json.dumps(config.to_dict()),
        "env_spec": json.dumps(env_spec),
        "observation_space": json.dumps(space_to_dict(observation_space)),
        "action_space": json.dumps(space_to_dict(action_space)),
        "extra": json.dumps(extra or {}),
        "image_encoder_auto": str(AUTO_VERSION),
    }


def read_metadata(payload: dict[str, Any], path: str | Path) -> Metadata:
    """The model a checkpoint payload describes; `CheckpointError` when it is malformed."""
    try:
        saved = json.loads(payload["config"])
        # Checkpoints from before `image_encoder` existed ran every image through the CNN.
        saved.setdefault("image_encoder", "cnn")
        observation_space = space_from_dict(json.loads(payload["observation_space"]))
        # Before `image_encoder_auto` was recorded, `auto` meant its version 1.
        was = int(payload.get("image_encoder_auto", "1"))
        if saved["image_encoder"] == "auto" and was != AUTO_VERSION:
            saved["image_encoder"] = auto_as_it_was(observation_space, path)
        return Metadata(
            config=PPOConfig.from_dict(saved),
            env_spec=json.loads(payload["env_spec"]),
            observation_space=observation_space,
            action_space=space_from_dict(json.loads(payload["action_space"])),
            extra=json.loads(payload.get("extra", "{}")),
        )
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: malformed checkpoint metadata ({e})") from None


def auto_as_it_was(space: spaces.Space, path: str | Path) -> str:
    """The `image_encoder` that builds what `auto` built in its version 1, which flattened
    grids of at most `SMALL_IMAGE_CELLS` cells and sent the others through `cnn`: the one of
    those `space` holds (`auto` if none). `CheckpointError` if it holds both, which no single
    value builds now."""
    cells = [
        h * w
        for s in flat_spaces(space)
        if is_image_space(s)
        for _, (_, h, w) in [grid_layout(s.shape)]
    ]
    kinds = {"flatten" if n <= SMALL_IMAGE_CELLS else "cnn" for n in cells}
    if len(kinds) > 1:
        raise CheckpointError(
            f"{path}: written when image_encoder auto flattened small grids and sent the others "
            "through its CNN; with both sizes it cannot be rebuilt now"
        )
    return kinds.pop() if kinds else "auto"


def flat_spaces(space: spaces.Space) -> list[spaces.Space]:
    """`space`'s leaves: the parts of Dict and Tuple spaces, recursively."""
    if isinstance(space, spaces.Dict | spaces.Tuple):
        parts = space.spaces.values() if isinstance(space, spaces.Dict) else space.spaces
        return [leaf for part in parts for leaf in flat_spaces(part)]
    return [space]


def with_image_ranges(
    current: dict[str, torch.Tensor], saved: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """`saved`, with the image encoder's range as checkpoints before it had one worked: divided
    by 255 (`peak`), kept so (`observed`)."""
    legacy = {"peak": lambda x: torch.full_like(x, 255.0), "observed": torch.ones_like}
    filled = dict(saved)
    for key in current.keys() - saved.keys():
        name = key.rsplit(".", 1)[-1]
        if name in legacy:
            filled[key] = legacy[name](current[key])
    return filled
