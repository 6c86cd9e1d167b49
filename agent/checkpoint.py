"""Checkpoints as data: tensors and JSON, written atomically, read with `weights_only=True`.

A checkpoint is a `torch.save` file of a dict holding only tensors, numbers and strings, so
`torch.load(weights_only=True)` can read it and refuses anything that would run code.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

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
