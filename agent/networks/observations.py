"""Observations as (nested) tensors: conversion, storage and indexing for any supported space."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

Obs = Any  # a tensor, or a dict / tuple of tensors for Dict / Tuple spaces


@dataclass(frozen=True)
class Frames:
    """A leaf of observations [*batch, ...] given as the distinct ones, `table` [U, ...], and
    each one's row in that table, `index` [*batch] (long): it stands for `table[index]`.

    `RolloutBuffer` hands out a rollout's pictures this way when an encoder asks for them
    (`Encoder.takes_frames`): it groups the rollout's frames once, and each minibatch then
    costs an index instead of a copy of its frames and a grouping of its own."""

    table: torch.Tensor
    index: torch.Tensor

    def select(self, index: torch.Tensor) -> Frames:
        """The frames at positions `index` of this leaf's batch (one dimension, as a rollout's
        flat [T * E] steps)."""
        return Frames(self.table, self.index[index])

    def dense(self) -> torch.Tensor:
        """The observations themselves, `table[index]`."""
        return self.table[self.index]


def tree_map(fn: Callable[[Any], Any], obs: Obs) -> Obs:
    """Apply `fn` to every leaf of a (nested) dict / tuple observation."""
    if isinstance(obs, dict):
        return {k: tree_map(fn, v) for k, v in obs.items()}
    if isinstance(obs, tuple | list):
        return tuple(tree_map(fn, v) for v in obs)
    return fn(obs)


def tree_map2(fn: Callable[[Any, Any], Any], a: Obs, b: Any) -> Obs:
    """Apply `fn(leaf_a, leaf_b)` pairwise over two trees of the same structure (`b` may be any
    tree shaped as the observation `a`); the results, shaped as `a`."""
    if isinstance(a, dict):
        return {k: tree_map2(fn, a[k], b[k]) for k in a}
    if isinstance(a, tuple | list):
        return tuple(tree_map2(fn, x, y) for x, y in zip(a, b, strict=True))
    return fn(a, b)


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
