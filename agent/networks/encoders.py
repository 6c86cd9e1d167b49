"""Observation encoders: one per Gymnasium space, each mapping a batch of observations to features.

Observations arrive as tensors with any number of leading batch dimensions ([B, ...] in rollouts,
[L, N, ...] in training); Dict and Tuple observations arrive as dicts and tuples of such tensors.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from agent.networks.observations import Frames


class UnsupportedSpaceError(ValueError):
    """The agent has no encoder or action head for this Gymnasium space."""


class Encoder(nn.Module):
    """An observation encoder: `forward` maps observations to features of `output_size`."""

    output_size: int
    takes_frames = False
    """`forward` takes `Frames` (distinct observations and an index) for this leaf."""

    def frame_leaves(self) -> Any:
        """Which leaves of an observation `forward` takes as `Frames`: a bool, or a dict / tuple
        of them shaped as the observation (`RolloutBuffer` groups those leaves' frames)."""
        return self.takes_frames

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


def conv_stack(kind: str, channels: int) -> nn.Sequential:
    """The convolutions of `image_encoder: cnn` (3x3 kernels at strides 1, 2, 2: for small
    grids, every cell seen at full resolution) or `nature` (Mnih et al. 2015's 8x8, 4x4 and 3x3
    at strides 4, 2, 1, as SB3's NatureCNN and CleanRL's Atari agents: for pictures of 36x36 and
    more; on 84x84 about 7x fewer multiply-adds than `cnn`)."""
    if kind == "cnn":
        layers = [(channels, 32, 3, 1, 1), (32, 64, 3, 2, 1), (64, 64, 3, 2, 1)]
    else:
        layers = [(channels, 32, 8, 4, 0), (32, 64, 4, 2, 0), (64, 64, 3, 1, 0)]
    modules: list[nn.Module] = []
    for c_in, c_out, kernel, stride, padding in layers:
        modules += [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding), nn.ReLU()]
    return nn.Sequential(*modules, nn.Flatten())


DEDUPLICATE_FROM = 64
"""Batches of at least this many images go through the CNN once per distinct image (training's
minibatches, not a rollout's single steps)..."""
DEDUPLICATE_BELOW = 0.5
"""... when distinct images are at most this share of the batch (or of the rollout, when
`RolloutBuffer` groups a rollout's frames once for all its minibatches: `Frames`)."""


def distinct(grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(first, index): the positions of one copy of each distinct grid in `grids` [N, ...], and
    for each grid the position in `first` of its copy, so that `grids[first][index]` is `grids`.
    On the CPU each grid's bytes are hashed to one 64-bit number (`grid_hashes`), the numbers
    sorted, and the grouping checked against the bytes, falling back on comparing whole byte
    strings (`np.unique` of each grid as one value) if two grids ever share a hash: 84x84 RGB
    minibatches group about 5x faster than by their bytes alone, and those a few times faster
    than `torch.unique(dim=0)`, which compares column by column (used on other devices)."""
    if grids.device.type != "cpu":
        unique, index = torch.unique(grids.flatten(start_dim=1), dim=0, return_inverse=True)
        first = torch.empty(len(unique), dtype=torch.long, device=grids.device)
        first.scatter_(0, index, torch.arange(len(index), device=grids.device))
        return first, index
    rows = np.ascontiguousarray(grids.numpy().reshape(len(grids), -1))
    _, first, index = np.unique(grid_hashes(rows), return_index=True, return_inverse=True)
    index = index.reshape(-1)
    if not np.array_equal(rows[first][index], rows):  # two grids with one hash
        keys = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()
        _, first, index = np.unique(keys, return_index=True, return_inverse=True)
        index = index.reshape(-1)
    return torch.from_numpy(first), torch.from_numpy(index)


HASH_SEED = 0x5EED
"""Seeds the multipliers of `grid_hashes` (any fixed odd numbers do)."""


def grid_hashes(rows: np.ndarray) -> np.ndarray:
    """One uint64 per row of `rows` [N, B] (any dtype, B bytes a row): the row's bytes read as
    uint64 words (zero-padded), each times a fixed random odd multiplier, summed with wraparound.
    Equal rows hash equal; unequal ones rarely do, which `distinct` checks."""
    raw = rows.view(np.uint8).reshape(len(rows), -1)
    if raw.shape[1] % 8:
        raw = np.pad(raw, ((0, 0), (0, 8 - raw.shape[1] % 8)))
    words = np.ascontiguousarray(raw).view(np.uint64)
    return (words * hash_multipliers(words.shape[1])).sum(axis=1, dtype=np.uint64)


@functools.lru_cache(maxsize=8)
def hash_multipliers(n: int) -> np.ndarray:
    """`n` fixed random odd uint64 numbers (`HASH_SEED`)."""
    rng = np.random.default_rng(HASH_SEED)
    return rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


class ImageEncoder(Encoder):
    """uint8 grids (channels first or last), each channel divided by its range, then a CNN
    (`arch` `cnn` or `nature`, see `conv_stack`) and a linear layer to `features`, or flattened
    as they are (`arch="flatten"`).

    A uint8 grid is not always pixels: MiniGrid's 7x7x3 view holds object, colour and state
    codes of at most 10 in a Box(0, 255), and dividing those by 255 would leave the network's
    inputs near zero. So each channel is divided by the largest value it has shown
    (`update_range`, called by `RecurrentPPO` on the first observations and after every update,
    so a rollout and its update see one scale): pixels end in [0, 1] as with the usual / 255,
    codes too. Until anything is observed the divisor is 255.
    """

    def __init__(self, shape: tuple[int, ...], features: int = 256, arch: str = "cnn") -> None:
        super().__init__()
        self.channels_last, (c, h, w) = grid_layout(shape)
        if arch in ("cnn", "nature"):
            self.cnn = conv_stack(arch, c)
            with torch.no_grad():
                n_flat = self.cnn(torch.zeros(1, c, h, w)).shape[1]
            self.linear = nn.Sequential(nn.Linear(n_flat, features), nn.ReLU())
            self.output_size = features
        elif arch == "flatten":  # the scaled values themselves, channel by channel
            self.cnn = nn.Flatten()
            self.linear = nn.Identity()
            self.output_size = c * h * w
        else:
            raise ValueError(f"unknown image encoder {arch!r}")
        self.takes_frames = arch in ("cnn", "nature")
        self.register_buffer("peak", torch.full((c,), 255.0))
        """Per channel, the largest value observed (255 until `observed`)."""
        self.register_buffer("observed", torch.tensor(False))

    @torch.no_grad()
    def update_range(self, obs: torch.Tensor) -> None:
        x = obs.reshape(-1, *obs.shape[-3:])
        peak = x.amax(dim=(0, 1, 2) if self.channels_last else (0, 2, 3)).float()
        self.peak.copy_(torch.maximum(self.peak, peak) if self.observed else peak)
        self.observed.fill_(True)

    def forward(self, obs: torch.Tensor | Frames) -> torch.Tensor:
        if isinstance(obs, Frames):  # each distinct frame through the CNN once (see below)
            rows, index = torch.unique(obs.index, return_inverse=True)
            features = self.encode(obs.table[rows])[index]
            return features.reshape(*obs.index.shape, self.output_size)
        batch_shape = obs.shape[:-3]
        grids = obs.reshape(-1, *obs.shape[-3:])
        if isinstance(self.cnn, nn.Sequential) and len(grids) >= DEDUPLICATE_FROM:
            # A grid world shows few distinct views: each goes through the CNN once, and the
            # batch takes its features by index (whose gradient sums over the copies: the same
            # gradient as one pass per copy). Nothing is lost where every view differs.
            first, index = distinct(grids)
            if len(first) <= DEDUPLICATE_BELOW * len(grids):
                features = self.encode(grids[first])[index]
                return features.reshape(*batch_shape, self.output_size)
        return self.encode(grids).reshape(*batch_shape, self.output_size)

    def encode(self, grids: torch.Tensor) -> torch.Tensor:
        """Features [N, output_size] of grids [N, ...]."""
        x = grids.float()
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        x = x / self.peak.clamp(min=1.0)[:, None, None]
        return self.linear(self.cnn(x))


class CodeGridEncoder(Encoder):
    """uint8 grids read as codes (categories), not intensities, each value of each channel its
    own category: MiniGrid's 7x7x3 view holds an object, a colour and a state code per cell, and
    a key (5) is no closer to a ball (6) than to a wall (2).

    `embed` (BabyAI 1.1's bag of embeddings): each channel has a learned table of `dims`-vectors,
    one row per value; a cell is the sum of its channels' rows, and the cells are flattened.
    `onehot`: every (cell, channel, value) is one input, the one-hot vector of the whole grid
    (cells x channels x 256 wide) times a learned matrix to `features`, computed as a sum of
    rows. Both cover every uint8 value, so nothing needs the values' range in advance.
    """

    VALUES = 256

    def __init__(
        self, shape: tuple[int, ...], kind: str = "embed", dims: int = 8, features: int = 128
    ) -> None:
        super().__init__()
        self.channels_last, (c, h, w) = grid_layout(shape)
        self.kind = kind
        if kind == "embed":
            self.table = nn.Embedding(c * self.VALUES, dims)
            nn.init.normal_(self.table.weight, std=1.0 / np.sqrt(c))  # a cell's sum: unit variance
            self.output_size = h * w * dims
        elif kind == "onehot":
            self.table = nn.EmbeddingBag(h * w * c * self.VALUES, features, mode="sum")
            # As a Linear layer on the one-hot vector would start (PyTorch's default, fan-in).
            nn.init.uniform_(self.table.weight, -1 / np.sqrt(h * w * c), 1 / np.sqrt(h * w * c))
            self.output_size = features
        else:
            raise ValueError(f"unknown code grid encoding {kind!r}")
        # Each (cell, channel)'s first row (`onehot`) or each channel's (`embed`), in the
        # channels-last order the grid is read in.
        slots = h * w * c if kind == "onehot" else c
        first = torch.arange(slots) * self.VALUES
        self.register_buffer("offsets", first if kind == "onehot" else first.view(c))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        batch_shape = obs.shape[:-3]
        x = obs.reshape(-1, *obs.shape[-3:]).long()
        if not self.channels_last:
            x = x.permute(0, 2, 3, 1)  # [N, h, w, c]
        if self.kind == "embed":
            rows = (x + self.offsets).flatten(end_dim=-2)  # [N * h * w, c]: a cell's rows
        else:
            rows = x.flatten(start_dim=1) + self.offsets  # [N, h * w * c]: a grid's rows
        out = RowSums.apply(self.table.weight, rows)
        return out.reshape(*batch_shape, self.output_size)


class RowSums(torch.autograd.Function):
    """table [R, D], rows [M, K] -> the sums of each K rows of the table, [M, D] (PyTorch's
    `embedding_bag` with `mode="sum"`), whose backward pass adds each output's gradient to its
    rows in one `index_add_`: on a CPU a few times faster than `embedding_bag`'s and
    `embedding`'s own backward passes, which sort the rows first (`tests/test_code_grids.py`
    checks it against `embedding`). Rows of at most `NARROW` numbers (`embed`'s 8) are added along
    the transposed table, [D, R]: a row of a few numbers at a time is mostly overhead (about 7x
    slower on 2 CPU threads for MiniGrid's minibatches); wider rows (`onehot`'s 128) as rows."""

    NARROW = 16
    """Rows of at most this many numbers are added along the transposed table."""

    @staticmethod
    def forward(ctx: Any, table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(rows)
        ctx.table_rows = table.shape[0]
        return nn.functional.embedding_bag(rows, table, mode="sum")

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (rows,) = ctx.saved_tensors
        (m, k), d = rows.shape, grad.shape[-1]
        if d <= RowSums.NARROW:
            per_row = grad.t().unsqueeze(2).expand(d, m, k).reshape(d, m * k)
            table_grad = grad.new_zeros(d, ctx.table_rows).index_add_(1, rows.reshape(-1), per_row)
            return table_grad.t().contiguous(), None
        per_row = grad.unsqueeze(1).expand(m, k, d).reshape(m * k, d)
        table_grad = grad.new_zeros(ctx.table_rows, d)
        return table_grad.index_add_(0, rows.reshape(-1), per_row), None


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

    def frame_leaves(self) -> Any:
        leaves = [enc.frame_leaves() for enc in self.parts.values()]
        return tuple(leaves) if self.is_tuple else dict(zip(self.parts, leaves, strict=True))


SMALL_IMAGE_CELLS = 16 * 16
"""`image_encoder: auto` reads uint8 grids of at most this many cells (height x width) as codes."""
PICTURE_SIDE = 36
"""`image_encoder: auto` sends grids whose sides are both at least this long through `nature`
(the least NatureCNN takes), others of more than `SMALL_IMAGE_CELLS` through `cnn`."""
AUTO_SMALL_GRIDS = "embed"
"""What `image_encoder: auto` does with a small grid."""
AUTO_VERSION = 2
"""What `auto` means, recorded in checkpoints (`agent.algorithm.checkpoint`): 1 flattened small
grids and sent every other through `cnn`; 2 is `image_encoding`'s rule."""


def image_encoding(shape: tuple[int, ...], choice: str) -> str:
    """How a uint8 grid of `shape` is encoded under `image_encoder: choice`: `cnn`, `nature`,
    `flatten`, `embed` or `onehot`. `auto`: `AUTO_SMALL_GRIDS` up to `SMALL_IMAGE_CELLS` cells,
    `nature` from `PICTURE_SIDE` on, `cnn` between."""
    if choice != "auto":
        return choice
    _, (_, height, width) = grid_layout(shape)
    if height * width <= SMALL_IMAGE_CELLS:
        return AUTO_SMALL_GRIDS
    return "nature" if min(height, width) >= PICTURE_SIDE else "cnn"


def image_grid_encoder(shape: tuple[int, ...], choice: str) -> Encoder:
    """The encoder of a uint8 grid of `shape` under `image_encoder: choice`."""
    encoding = image_encoding(shape, choice)
    if encoding in ("embed", "onehot"):
        return CodeGridEncoder(shape, encoding)
    return ImageEncoder(shape, arch=encoding)


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
        return image_grid_encoder(space.shape, image_encoder)
    if isinstance(space, spaces.Box | spaces.MultiBinary):
        return FlattenEncoder(tuple(space.shape))
    if isinstance(space, spaces.Dict):
        parts = {k: make_encoder(s, image_encoder) for k, s in space.spaces.items()}
        return DictEncoder(parts, is_tuple=False)
    if isinstance(space, spaces.Tuple):
        parts = {str(i): make_encoder(s, image_encoder) for i, s in enumerate(space.spaces)}
        return DictEncoder(parts, is_tuple=True)
    raise UnsupportedSpaceError(f"unsupported observation space: {space}")
