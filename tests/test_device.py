"""Devices (issue 26): `auto` trains on CUDA where there is one, a run resumes on the device it
trained on unless `--device` moves it, and the CUDA path is tried code.

The tests marked `needs_cuda` run every CUDA-only line (training, saving, loading, predicting, a
run moved from the CPU to CUDA and back, the rollout's synchronisations); they are skipped on a
machine without CUDA, where the others check what such a machine does with a CUDA run.
"""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import train
from agent import RecurrentPPO
from agent.algorithm.checkpoint import load_checkpoint
from agent.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
without_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="for a machine without CUDA")

TINY = dict(n_envs=2, n_steps=16, batch_size=16, n_epochs=2, lstm_hidden_size=8, net_arch=[8])
TINY_RUN = [
    "--env", "Memory/TMaze-v0", "--env-kwargs", "length=4",
    "--n-envs", "2", "--n-steps", "16", "--batch-size", "32", "--n-epochs", "1",
    "--lstm-hidden-size", "8", "--net-arch", "8",
    "--checkpoint-freq", "32", "--eval-freq", "0", "--no-progress",
]  # fmt: skip


def tmaze(device: str, **config) -> RecurrentPPO:
    return RecurrentPPO(
        "Memory/TMaze-v0", env_kwargs={"length": 4}, device=device, seed=2, **{**TINY, **config}
    )


def trained_run(run_dir: Path, *flags: str) -> Path:
    """A finished 64-step run of train.py in `run_dir`."""
    argv = [*TINY_RUN, "--total-timesteps", "64", "--run-dir", str(run_dir), *flags]
    assert train.main(argv) == 0
    return run_dir


def as_if_trained_on_cuda(checkpoint: Path) -> None:
    """Rewrite a checkpoint's record of the device it trained on."""
    payload = torch.load(checkpoint, weights_only=True)
    payload["device"] = "cuda"
    torch.save(payload, checkpoint)


# ------------------------------------------------------------- everywhere, and without CUDA ---


def test_resume_loads_on_the_recorded_device_unless_told(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = trained_run(tmp_path / "run")
    asked = []
    load = RecurrentPPO.load

    def spy(path, **kwargs):
        asked.append(kwargs["device"])
        return load(path, **kwargs)

    monkeypatch.setattr(train.RecurrentPPO, "load", staticmethod(spy))
    assert train.main(["--resume", str(run), "--total-timesteps", "96", "--no-progress"]) == 0
    resume = ["--resume", str(run), "--total-timesteps", "128", "--device", "cpu", "--no-progress"]
    assert train.main(resume) == 0
    # None: where the checkpoint says it trained (RecurrentPPO.load); --device overrides.
    assert asked == [None, "cpu"]
    assert "to 96 steps on cpu" in capsys.readouterr().out


@without_cuda
def test_a_cuda_checkpoint_without_cuda_is_a_one_line_config_error(tmp_path):
    path = tmaze("cpu").save(tmp_path / "model.pt")
    as_if_trained_on_cuda(path)
    with pytest.raises(ConfigError) as error:
        RecurrentPPO.load(path)
    message = str(error.value)
    assert "\n" not in message and "CUDA is not available" in message
    assert "--device cpu" in message
    assert RecurrentPPO.load(path, device="cpu").device.type == "cpu"


@without_cuda
def test_resuming_a_cuda_run_without_cuda_asks_for_device_cpu(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = trained_run(tmp_path / "run")
    as_if_trained_on_cuda(run / "checkpoints" / "last.pt")
    capsys.readouterr()
    resume = ["--resume", str(run), "--total-timesteps", "96", "--no-progress"]
    assert train.main(resume) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "--device cpu" in err
    assert train.main([*resume, "--device", "cpu"]) == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["device"] == "cpu"


@without_cuda
def test_the_device_benchmark_says_there_is_no_cuda_and_exits_0():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "device.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("no CUDA") and result.stdout.count("\n") == 1
    assert result.stderr == ""


# ------------------------------------------------------------------------------ on CUDA ---


@needs_cuda
def test_auto_trains_on_cuda_and_the_model_saves_loads_and_predicts(tmp_path):
    model = tmaze("auto")
    assert model.device.type == "cuda"
    model.learn(64)
    assert all(p.device.type == "cuda" for p in model.policy.parameters())
    path = model.save(tmp_path / "model.pt")
    assert load_checkpoint(path)["device"] == "cuda"
    obs = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], np.float32)
    actions, state = model.predict(obs, deterministic=True)
    loaded = RecurrentPPO.load(path)  # where it trained
    assert loaded.device.type == "cuda"
    again, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(actions, again)
    on_cpu = RecurrentPPO.load(path, device="cpu")
    _, cpu_state = on_cpu.predict(obs, deterministic=True)
    for a, b in zip(state, cpu_state, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    model.close()


@needs_cuda
def test_a_cpu_checkpoint_resumes_on_cuda_and_back(tmp_path):
    model = tmaze("cpu")
    model.learn(64)
    path = model.save(tmp_path / "cpu.pt")
    for device, steps in (("cuda", 128), ("cpu", 192)):
        saved = load_checkpoint(path)
        model = RecurrentPPO.load(path, env="recorded", device=device)
        assert model.device.type == device and model.continues_episodes
        for name, tensor in model.policy.state_dict().items():
            assert torch.equal(tensor.cpu(), saved["policy"][name]), name
        model.learn(64, reset_num_timesteps=False)
        assert model.num_timesteps == steps
        assert all(torch.isfinite(p).all() for p in model.policy.parameters())
        for state in model.optimizer.state.values():
            assert state["exp_avg"].device.type == device
        path = model.save(tmp_path / f"{device}.pt")
        assert load_checkpoint(path)["device"] == device
        model.close()


@needs_cuda
def test_a_cpu_run_resumes_on_the_cpu_of_a_gpu_machine(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = trained_run(tmp_path / "run", "--device", "cpu")
    last = run / "checkpoints" / "last.pt"
    assert train.main(["--resume", str(run), "--total-timesteps", "96", "--no-progress"]) == 0
    assert load_checkpoint(last)["device"] == "cpu"
    resume = ["--resume", str(run), "--total-timesteps", "128", "--device", "cuda"]
    assert train.main([*resume, "--no-progress"]) == 0
    assert load_checkpoint(last)["device"] == "cuda"


def count_syncs(run) -> int:
    """How many times `run()` makes the host wait for the GPU (torch's sync debug mode)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("called a synchronizing" in str(w.message) for w in caught)


@needs_cuda
def test_a_rollout_step_waits_for_the_gpu_only_for_the_env():
    """Per step: the observations' upload and the actions' download, nothing else (not the
    reset mask, not sampling, not the buffer). Two rollouts, of 8 and 16 steps, cost the same
    but for 8 steps: their difference counts what one step costs."""
    buffers, syncs = [], []
    for n_steps in (8, 16):
        model = tmaze("cuda", n_steps=n_steps)
        model._start_episodes()
        syncs.append(count_syncs(lambda m=model: buffers.append(m.collect_rollout())))
        model.close()
    assert buffers[1].episode_starts[8:].any()  # episodes started in the steps counted
    assert syncs[1] - syncs[0] == 2 * 8
