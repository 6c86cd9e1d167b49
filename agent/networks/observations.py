"""Observations as (nested) tensors: conversion, storage and indexing for any supported space."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

Obs = Any  # a tensor, or a dict / tuple of tensors for Dict / Tuple spaces


def tree_map(fn: Callable[[Any], Any], obs: Obs) -> Obs:
    """Apply `fn` to every leaf of a (nested) dict / tuple observation."""
    if isinstance(obs, dict):
        return {k: tree_map(fn, v) for k, v in obs.items()}
    if isinstance(obs, tuple | list):
        return tuple(tree_map(fn, v) for v in obs)
    return fn(obs)


def tree_map2(fn: Callable[[Any, Any], Any], a: Obs, b: Obs) -> None:
    """Apply `fn(leaf_a, leaf_b)` pairwise over two observations of the same structure."""
    if isinstance(a, dict):
        for k in a:
            tree_map2(fn, a[k], b[k])
    elif isinstance(a, tuple | list):
        for x, y in zip(a, b, strict=True):
            tree_map2(fn, x, y)
    else:
        fn(a, b)


def to_tensor(obs: Any, device: torch.device) -> Obs:
    """Numpy observations (or nested ones) as tensors on `device`, keeping integer dtypes."""
    return tree_map(lambda x: torch.as_tensor(np.asarray(x), device=device), obs)


def _storage_dtype(space: spaces.Space) -> torch.dtype:
    if isinstance(space, spaces.Discrete | spaces.MultiDiscrete):
        return torch.long
    if isinstance(space, spaces.Box) and space.dtype == np.uint8:
        return torch.uint8
    return torch.float32


def allocate(space: spaces.Space, leading: tuple[int, ...], device: torch.device) -> Obs:
    """Zeroed storage for observations of `space` with leading dimensions `leading`."""
    if isinstance(space, spaces.Dict):
        return {k: allocate(s, leading, device) for k, s in space.spaces.items()}
    if isinstance(space, spaces.Tuple):
        return tuple(allocate(s, leading, device) for s in space.spaces)
    shape = () if space.shape is None else tuple(space.shape)
    return torch.zeros(*leading, *shape, dtype=_storage_dtype(space), device=device)


def batch_size_of(obs: Any, space: spaces.Space) -> int | None:
    """The batch size of `obs`, or None when it is a single unbatched observation of `space`."""
    if isinstance(space, spaces.Dict):
        key = next(iter(space.spaces))
        return batch_size_of(obs[key], space.spaces[key])
    if isinstance(space, spaces.Tuple):
        return batch_size_of(obs[0], space.spaces[0])
    shape = np.shape(obs)
    event = tuple(space.shape or ())
    if shape == event:
        return None
    return int(shape[0])
