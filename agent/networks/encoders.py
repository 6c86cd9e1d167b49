"""Observation encoders: one per Gymnasium space, each mapping a batch of observations to features.

Observations arrive as tensors with any number of leading batch dimensions ([B, ...] in rollouts,
[L, N, ...] in training); Dict and Tuple observations arrive as dicts and tuples of such tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn


class UnsupportedSpaceError(ValueError):
    """The agent has no encoder or action head for this Gymnasium space."""


class Encoder(nn.Module):
    """An observation encoder: `forward` maps observations to features of `output_size`."""

    output_size: int

    def update_range(self, obs: Any) -> None:
        """Record the values of a batch of observations before a rollout (see ImageEncoder)."""


def is_image_space(space: spaces.Space) -> bool:
    """A uint8 Box of rank 3 whose smallest axis (first or last) has 1, 3 or 4 channels."""
    return (
        isinstance(space, spaces.Box)
        and space.dtype == np.uint8
        and len(space.shape) == 3
        and (space.shape[0] in (1, 3, 4) or space.shape[-1] in (1, 3, 4))
    )


class FlattenEncoder(Encoder):
    """Vector (or any non-image Box, or MultiBinary) observations, flattened to floats."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.event_dims = len(shape)
        self.output_size = int(np.prod(shape)) if shape else 1

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = obs.float()
        if self.event_dims == 0:
            return obs.unsqueeze(-1)
        return obs.flatten(start_dim=obs.dim() - self.event_dims)


class OneHotEncoder(Encoder):
    """Discrete and MultiDiscrete observations as concatenated one-hot vectors."""

    def __init__(self, nvec: np.ndarray, start: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("offsets", torch.as_tensor(np.cumsum(nvec) - nvec, dtype=torch.long))
        self.register_buffer("start", torch.as_tensor(start, dtype=torch.long))
        self.output_size = int(np.sum(nvec))
        self.scalar = False

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = obs.long()
        if self.scalar:
            obs = obs.unsqueeze(-1)
        idx = obs - self.start + self.offsets
        out = torch.zeros(*obs.shape[:-1], self.output_size, device=obs.device)
        return out.scatter_(-1, idx, 1.0)


def grid_layout(shape: tuple[int, ...]) -> tuple[bool, tuple[int, int, int]]:
    """Whether an image space of `shape` is channels-last, and its (channels, height, width).

    Channels-last (Gymnasium's and MiniGrid's layout) when the last axis could hold the channels
    and is no longer than the first: (4, 4, 3) and MiniGrid's 3x3 view (3, 3, 3) are grids of
    3 channels; (3, 84, 84) and (1, 4, 4) are channels-first. (SB3 takes the smallest axis, which
    reads (3, 3, 3) channels-first.)"""
    channels_last = shape[-1] in (1, 3, 4) and (shape[0] not in (1, 3, 4) or shape[-1] <= shape[0])
    c, h, w = (shape[2], shape[0], shape[1]) if channels_last else shape
    return channels_last, (int(c), int(h), int(w))


class ImageEncoder(Encoder):
    """uint8 grids (channels first or last), each channel divided by its range, then a small CNN
    (`cnn=True`) or flattened as they are (`cnn=False`, for small grids: see `make_encoder`).

    A uint8 grid is not always pixels: MiniGrid's 7x7x3 view holds object, colour and state
    codes of at most 10 in a Box(0, 255), and dividing those by 255 would leave the network's
    inputs near zero. So each channel is divided by the largest value it has shown
    (`update_range`, called by `RecurrentPPO` on the first observations and after every update,
    so a rollout and its update see one scale): pixels end in [0, 1] as with the usual / 255,
    codes too. Until anything is observed the divisor is 255.
    """

    def __init__(self, shape: tuple[int, ...], features: int = 256, cnn: bool = True) -> None:
        super().__init__()
        self.channels_last, (c, h, w) = grid_layout(shape)
        if cnn:
            self.cnn = nn.Sequential(
                nn.Conv2d(c, 32, 3, stride=1, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, 64, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(64, 64, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Flatten(),
            )
            with torch.no_grad():
                n_flat = self.cnn(torch.zeros(1, c, h, w)).shape[1]
            self.linear = nn.Sequential(nn.Linear(n_flat, features), nn.ReLU())
            self.output_size = features
        else:  # the scaled values themselves, channel by channel
            self.cnn = nn.Flatten()
            self.linear = nn.Identity()
            self.output_size = c * h * w
        self.register_buffer("peak", torch.full((c,), 255.0))
        """Per channel, the largest value observed (255 until `observed`)."""
        self.register_buffer("observed", torch.tensor(False))

    @torch.no_grad()
    def update_range(self, obs: torch.Tensor) -> None:
        x = obs.reshape(-1, *obs.shape[-3:])
        peak = x.amax(dim=(0, 1, 2) if self.channels_last else (0, 2, 3)).float()
        self.peak.copy_(torch.maximum(self.peak, peak) if self.observed else peak)
        self.observed.fill_(True)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        batch_shape = obs.shape[:-3]
        x = obs.reshape(-1, *obs.shape[-3:]).float()
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        x = x / self.peak.clamp(min=1.0)[:, None, None]
        return self.linear(self.cnn(x)).reshape(*batch_shape, self.output_size)


class DictEncoder(Encoder):
    """Dict and Tuple observations: each part encoded on its own, then concatenated."""

    def __init__(self, parts: dict[str, Encoder], is_tuple: bool) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(parts)
        self.is_tuple = is_tuple
        self.output_size = sum(p.output_size for p in parts.values())

    def forward(self, obs: Any) -> torch.Tensor:
        return torch.cat([enc(self.part(obs, k)) for k, enc in self.parts.items()], dim=-1)

    def update_range(self, obs: Any) -> None:
        for k, enc in self.parts.items():
            enc.update_range(self.part(obs, k))

    def part(self, obs: Any, key: str) -> Any:
        """The observation of part `key` (a position, for a Tuple)."""
        return obs[int(key)] if self.is_tuple else obs[key]


SMALL_IMAGE_CELLS = 16 * 16
"""`image_encoder: auto` flattens uint8 grids of at most this many cells (height x width)."""


def image_encoder_uses_cnn(shape: tuple[int, ...], choice: str) -> bool:
    """Whether a uint8 grid of `shape` goes through the CNN under `image_encoder: choice`."""
    if choice != "auto":
        return choice == "cnn"
    _, (_, height, width) = grid_layout(shape)
    return height * width > SMALL_IMAGE_CELLS


def make_encoder(space: spaces.Space, image_encoder: str = "auto") -> Encoder:
    """The encoder for `space`, uint8 grids encoded as `image_encoder` says (see `PPOConfig`);
    raises `UnsupportedSpaceError` for spaces it cannot encode."""
    if isinstance(space, spaces.Discrete):
        enc = OneHotEncoder(np.array([space.n]), np.array([space.start]))
        enc.scalar = True
        return enc
    if isinstance(space, spaces.MultiDiscrete):
        if space.nvec.ndim != 1:
            raise UnsupportedSpaceError("MultiDiscrete observations must be one-dimensional")
        return OneHotEncoder(space.nvec, space.start)
    if is_image_space(space):
        return ImageEncoder(space.shape, cnn=image_encoder_uses_cnn(space.shape, image_encoder))
    if isinstance(space, spaces.Box | spaces.MultiBinary):
        return FlattenEncoder(tuple(space.shape))
    if isinstance(space, spaces.Dict):
        parts = {k: make_encoder(s, image_encoder) for k, s in space.spaces.items()}
        return DictEncoder(parts, is_tuple=False)
    if isinstance(space, spaces.Tuple):
        parts = {str(i): make_encoder(s, image_encoder) for i, s in enumerate(space.spaces)}
        return DictEncoder(parts, is_tuple=True)
    raise UnsupportedSpaceError(f"unsupported observation space: {space}")
