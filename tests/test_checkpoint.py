"""Checkpoints are data: round trip, atomic writes, refusal of pickled code and of corrupt files."""

import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

from agent import CheckpointError, RecurrentPPO
from agent.algorithm.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model = RecurrentPPO(
        "CartPole-v1", n_envs=2, n_steps=16, batch_size=32, lstm_hidden_size=8, normalize_obs=True
    )
    model.learn(128)
    path = model.save(tmp_path_factory.mktemp("ckpt") / "model.pt")
    return model, path


def test_round_trip_gives_the_same_policy(trained):
    model, path = trained
    loaded = RecurrentPPO.load(path)
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    a1, s1 = model.predict(obs, deterministic=True)
    a2, s2 = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_allclose(s1[0], s2[0], atol=1e-6)
    assert loaded.num_timesteps == model.num_timesteps
    # Loaded without a device, a model goes where it was trained: the config says which.
    assert loaded.device == model.device
    assert loaded.config == model.config.__class__(
        **{**model.config.to_dict(), "device": model.device.type}
    )
    assert loaded.env_spec["id"] == "CartPole-v1"
    np.testing.assert_allclose(loaded.obs_normalizer.rms.mean, model.obs_normalizer.rms.mean)


def test_recorded_env_is_rebuilt(trained):
    _, path = trained
    loaded = RecurrentPPO.load(path, env="recorded")
    assert loaded.env.num_envs == 2
    loaded.learn(32, reset_num_timesteps=False)
    assert loaded.num_timesteps == 128 + 32


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "memory-ppo", "format_version": 1, "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused") as error:
        load_checkpoint(path)
    assert not marker.exists()
    # One clean line naming the object: none of PyTorch's advice, escape codes or line breaks.
    message = str(error.value)
    assert "\n" not in message and "\x1b" not in message and "weights_only" not in message
    assert message.endswith(
        "it holds a Python object (posix.system) besides tensors and plain "
        "data, and loading it could run code"
    )
    with open(path, "wb") as f:  # a plain pickle, not a torch zip file
        pickle.dump(Payload(), f)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()


def test_truncated_and_garbage_files(tmp_path, trained):
    _, good = trained
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    for name in ("cut.pt", "junk.pt"):
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            load_checkpoint(tmp_path / name)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_other_format_and_version(tmp_path):
    torch.save({"format": "memory-ppo", "format_version": 99}, tmp_path / "v99.pt")
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "v99.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a memory-ppo checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"step": 1}, path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 2}, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left


def test_a_stable_baselines3_zip_is_named_as_such(tmp_path):
    from sb3_contrib import RecurrentPPO as Sb3RecurrentPPO

    Sb3RecurrentPPO("MlpLstmPolicy", "CartPole-v1", n_steps=8, batch_size=8).save(
        tmp_path / "sb3.zip"
    )
    # A zip with SB3's entries alone is recognised too: its table of contents is all that is read.
    with zipfile.ZipFile(tmp_path / "hand.zip", "w") as archive:
        archive.writestr("data", "{}")
        archive.writestr("policy.pth", b"")
    for name in ("sb3.zip", "hand.zip"):
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(tmp_path / name)
        assert str(error.value) == (
            f"{tmp_path / name} is a Stable-Baselines3 / sb3-contrib model, "
            "not a memory-ppo checkpoint"
        )
