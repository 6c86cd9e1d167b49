"""uint8 grids are divided by each channel's observed range, not always by 255 (issue 16)."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from agent import RecurrentPPO
from agent.algorithm.checkpoint import load_checkpoint, save_checkpoint, with_image_ranges
from agent.networks.encoders import (
    CodeGridEncoder,
    ImageEncoder,
    grid_layout,
    image_encoding,
    make_encoder,
)
from tests.replay_check import replay_errors


def codes(shape, maxima, channels_last=True, seed=0):
    """A uint8 batch whose channel c holds values 0..maxima[c], each maximum present."""
    rng = np.random.default_rng(seed)
    axis = -1 if channels_last else 1
    out = np.zeros(shape, np.uint8)
    for c, m in enumerate(maxima):
        index = [slice(None)] * len(shape)
        index[axis] = c
        part = rng.integers(0, m + 1, out[tuple(index)].shape)
        part.reshape(-1)[0] = m
        out[tuple(index)] = part
    return torch.as_tensor(out)


@pytest.mark.parametrize("channels_last", [True, False])
def test_channels_are_divided_by_their_largest_value(channels_last):
    shape = (7, 7, 3) if channels_last else (3, 7, 7)
    enc = ImageEncoder(shape)
    batch = codes((5, *shape), [10, 5, 0], channels_last)
    raw = batch.float() if not channels_last else batch.float().permute(0, 3, 1, 2)
    # Before anything is observed: the pixel convention, / 255.
    assert torch.allclose(enc(batch), enc.linear(enc.cnn(raw / 255.0)))
    enc.update_range(batch)
    assert enc.peak.tolist() == [10.0, 5.0, 0.0]
    scale = torch.tensor([10.0, 5.0, 1.0])[:, None, None]  # an all-zero channel stays / 1
    assert torch.allclose(enc(batch), enc.linear(enc.cnn(raw / scale)))
    # The range only grows: a later batch with a larger value widens its channel alone.
    enc.update_range(codes((2, *shape), [3, 9, 2], channels_last, seed=1))
    assert enc.peak.tolist() == [10.0, 9.0, 2.0]


class GrowingCodesEnv(gym.Env):
    """uint8 grids whose largest code grows with every step taken, so that each rollout shows
    values the previous one did not: any change of scale inside a rollout would show."""

    observation_space = spaces.Box(0, 255, (4, 4, 3), np.uint8)
    action_space = spaces.Discrete(2)

    def __init__(self) -> None:
        self.steps = self.t = 0

    def _obs(self):
        high = min(2 + self.steps // 8, 255)
        return self.np_random.integers(0, high + 1, (4, 4, 3)).astype(np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.steps += 1
        self.t += 1
        return self._obs(), float(action), False, self.t >= 6, {}


def test_a_rollout_and_its_update_see_one_scale():
    env = gym.vector.SyncVectorEnv([GrowingCodesEnv for _ in range(2)])
    model = RecurrentPPO(env, n_steps=16, batch_size=16, n_epochs=2, lstm_hidden_size=8,
                         image_encoder="flatten")  # fmt: skip
    replays, peaks = [], []
    train = model.train

    def checked_train(buffer):
        replays.append(replay_errors(model, buffer)[:2])
        peaks.append(model.policy.encoder.peak.clone())
        return train(buffer)

    model.train = checked_train
    model.learn(96)
    assert len(replays) == 3
    # The update replays its rollout exactly: the scale did not move between them.
    assert max(max(r) for r in replays) < 1e-5
    # ... and it did move between updates, following the growing codes (first reset: <= 2).
    assert peaks[0].max() <= 2 < peaks[1].min() < peaks[2].min()
    assert model.policy.encoder.peak.min() > peaks[2].max()


def test_checkpoints_from_before_the_range_keep_dividing_by_255():
    enc = ImageEncoder((7, 7, 3))
    saved = {k: v for k, v in enc.state_dict().items() if k not in ("peak", "observed")}
    enc.load_state_dict(with_image_ranges(enc.state_dict(), saved))
    assert enc.peak.tolist() == [255.0] * 3 and bool(enc.observed)
    enc.update_range(codes((2, 7, 7, 3), [10, 5, 0]))
    assert enc.peak.tolist() == [255.0] * 3


@pytest.mark.parametrize(
    ("shape", "choice", "encoding"),
    [
        ((8, 8, 3), "auto", "embed"),  # VisualMatch's frames
        ((3, 16, 16), "auto", "embed"),  # at the limit, channels first
        ((17, 16, 1), "auto", "cnn"),
        ((35, 64, 3), "auto", "cnn"),  # a side too short for NatureCNN's kernels
        ((36, 36, 3), "auto", "nature"),
        ((64, 64, 3), "auto", "nature"),
        ((8, 8, 3), "cnn", "cnn"),
        ((64, 64, 3), "flatten", "flatten"),
        ((64, 64, 3), "onehot", "onehot"),
    ],
)
def test_image_encoder_auto_reads_small_grids_as_codes_and_larger_ones_as_pictures(
    shape, choice, encoding
):
    """`auto`: grids of at most 16x16 cells are codes (embedded), larger ones go through a CNN:
    `nature`'s strided kernels from 36x36 on, the 3x3 `cnn` between."""
    assert image_encoding(shape, choice) == encoding
    enc = make_encoder(spaces.Box(0, 255, shape, np.uint8), choice)
    if encoding in ("embed", "onehot"):
        assert isinstance(enc, CodeGridEncoder) and enc.kind == encoding
        return
    assert isinstance(enc, ImageEncoder)
    kernels = [m.kernel_size for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert (
        kernels
        == {"cnn": [(3, 3)] * 3, "nature": [(8, 8), (4, 4), (3, 3)], "flatten": []}[encoding]
    )


def test_a_flattened_grid_is_its_values_over_each_channels_range():
    """Nothing learned in between: one feature per value, channel by channel."""
    for shape, channels_last in (((8, 8, 3), True), ((3, 16, 16), False)):
        enc = make_encoder(spaces.Box(0, 255, shape, np.uint8), "flatten")
        batch = codes((5, *shape), [10, 5, 0], channels_last)
        enc.update_range(batch)
        assert enc.output_size == int(np.prod(shape))
        raw = batch.float().permute(0, 3, 1, 2) if channels_last else batch.float()
        expected = (raw / enc.peak.clamp(min=1.0)[:, None, None]).flatten(1)
        assert torch.equal(enc(batch), expected)


def test_a_dict_passes_the_image_encoder_choice_to_its_parts():
    space = spaces.Dict(
        {"image": spaces.Box(0, 255, (7, 7, 3), np.uint8), "direction": spaces.Discrete(4)}
    )
    assert make_encoder(space, "auto").output_size == 7 * 7 * 8 + 4
    assert make_encoder(space, "flatten").output_size == 7 * 7 * 3 + 4
    assert make_encoder(space, "cnn").output_size == 256 + 4


def test_checkpoints_from_before_the_choice_load_with_their_cnn(tmp_path):
    """A checkpoint whose config has no `image_encoder` (saved before it existed, when every
    image went through the CNN) loads with the CNN, where `auto` would embed VisualMatch."""
    model = RecurrentPPO("Memory/VisualMatch-v0", n_envs=2, n_steps=8, batch_size=16,
                         image_encoder="cnn", device="cpu")  # fmt: skip
    model.save(tmp_path / "model.pt")
    payload = load_checkpoint(tmp_path / "model.pt")
    config = json.loads(payload["config"])
    del config["image_encoder"]
    payload["config"] = json.dumps(config)
    save_checkpoint(payload, tmp_path / "old.pt")
    old = RecurrentPPO.load(tmp_path / "old.pt", env="Memory/VisualMatch-v0", device="cpu")
    assert old.config.image_encoder == "cnn"
    for key, value in model.policy.state_dict().items():
        assert torch.equal(old.policy.state_dict()[key], value)
    assert isinstance(
        RecurrentPPO("Memory/VisualMatch-v0", n_envs=2, device="cpu").policy.encoder,
        CodeGridEncoder,
    )


@pytest.mark.parametrize(
    ("shape", "layout"),
    [
        ((7, 7, 3), (True, (3, 7, 7))),
        ((4, 4, 3), (True, (3, 4, 4))),  # once read as 4 channels of 4 x 3
        ((3, 3, 3), (True, (3, 3, 3))),  # MiniGrid's agent_view_size=3
        ((84, 84, 3), (True, (3, 84, 84))),
        ((3, 84, 84), (False, (3, 84, 84))),
        ((4, 84, 84), (False, (4, 84, 84))),  # stacked frames, channels first
        ((1, 4, 4), (False, (1, 4, 4))),
        ((3, 4, 4), (False, (3, 4, 4))),
    ],
)
def test_grid_layout_reads_the_channels_where_they_are(shape, layout):
    assert grid_layout(shape) == layout
