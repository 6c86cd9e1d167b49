"""Nothing lost on Ctrl-C: the first signal stops after the update and checkpoints, a second one
quits at once, and the printed command resumes the run."""

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
import torch

import envs  # noqa: F401  (registers Memory/TMaze-v0)
import train
from agent import RecurrentPPO
from agent.algorithm.checkpoint import load_checkpoint
from agent.run.callbacks import GracefulInterrupt, RunPaths, TrainingCallback

ROOT = Path(__file__).resolve().parents[1]
LONG_RUN = [
    "--env", "CartPole-v1", "--total-timesteps", "10000000",
    "--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1",
    "--lstm-hidden-size", "8", "--net-arch", "8",
    "--checkpoint-freq", "1000000", "--eval-freq", "0", "--no-progress",
]  # fmt: skip


class FakeModel:
    """What the callback touches: the step count, the logs, and `save`."""

    def __init__(self) -> None:
        self.num_timesteps = 0
        self.logs: dict[str, float] = {}
        self.saved: list[tuple[str, int]] = []

    def save(self, path, extra=None):
        self.saved.append((Path(path).name, self.num_timesteps))
        return Path(path)


def test_callback_checkpoints_when_the_count_crosses_a_multiple(tmp_path):
    model = FakeModel()
    model.num_timesteps = 96  # a resumed run: the schedule stays on multiples of 100
    callback = TrainingCallback(RunPaths(tmp_path), checkpoint_freq=100, log=lambda _: None)
    callback.start(model)
    for _ in range(5):
        model.num_timesteps += 64
        assert callback(model) is True
    assert model.saved == [
        ("step_160.pt", 160), ("last.pt", 160),
        ("step_224.pt", 224), ("last.pt", 224),
        ("step_352.pt", 352), ("last.pt", 352),
        ("step_416.pt", 416), ("last.pt", 416),
    ]  # fmt: skip
    assert callback.last_good_step == 416


def test_callback_stops_training_once_interrupted(tmp_path):
    interrupt = GracefulInterrupt()
    callback = TrainingCallback(RunPaths(tmp_path), checkpoint_freq=10**9, interrupt=interrupt)
    model = FakeModel()
    assert callback(model) is True
    interrupt.signum = signal.SIGINT
    assert callback(model) is False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_sets_a_flag_second_raises(signum):
    previous = signal.getsignal(signum)
    with GracefulInterrupt() as interrupt:
        os.kill(os.getpid(), signum)
        assert interrupt.requested and interrupt.exit_code == 128 + signum
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signum)
    assert signal.getsignal(signum) == previous


def tmp_cwd(run_dir: Path) -> Path:
    """A working folder of the test's own (the run folder's parent), never the checkout."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    return run_dir.parent


def start_training(run_dir: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "train.py"),
            *LONG_RUN,
            "--checkpoint-freq",
            "64",
            "--run-dir",
            str(run_dir),
        ],
        cwd=tmp_cwd(run_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stdout.readline()
    assert first.startswith("training"), first + proc.stderr.read()
    # Signal once an update has been trained (its checkpoint shows it), however loaded the
    # machine is: a fixed sleep would sometimes signal before the first update.
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints" / "step_64.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_and_prints_the_resume_command(tmp_path, signum):
    run_dir = tmp_path / "run"
    proc = start_training(run_dir)
    sent = time.monotonic()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 10
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    last = run_dir / "checkpoints" / "last.pt"
    model = RecurrentPPO.load(last)
    # The interrupt's own checkpoint: the step it reports is the one saved.
    assert f"interrupted at step {model.num_timesteps}; saved {last}" in out
    assert 64 <= model.num_timesteps < 10_000_000
    assert not list(run_dir.rglob("*.tmp"))

    # The printed command resumes the same run from that step.
    (line,) = [ln for ln in out.splitlines() if "--resume" in ln]
    command = shlex.split(line.split("resume with:", 1)[1])
    assert command[:2] == ["python", str(ROOT / "train.py")]
    target = str(model.num_timesteps + 64)
    assert train.main([*command[2:], "--total-timesteps", target, "--no-progress"]) == 0
    assert RecurrentPPO.load(last).num_timesteps == model.num_timesteps + 64
    assert (run_dir / "model.pt").is_file()


def test_second_interrupt_quits_at_once_without_partial_files(tmp_path):
    run_dir = tmp_path / "run"
    proc = start_training(run_dir)
    proc.send_signal(signal.SIGINT)
    for line in proc.stderr:
        if "stopping after the current update" in line:
            break
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert proc.returncode == 130
    # The second signal lands during the update (quit at once) or, rarely, once the first
    # one's checkpoint is already written; either way no traceback and no partial file.
    assert "Traceback" not in err
    assert "interrupted again" in err or "resume with" in out
    assert not list(run_dir.rglob("*.tmp"))
    if (run_dir / "checkpoints" / "last.pt").exists():
        RecurrentPPO.load(run_dir / "checkpoints" / "last.pt")


def test_a_signal_during_a_long_rollout_stops_within_seconds(tmp_path):
    """One iteration here takes far longer than the test allows (400k env steps): the stop must
    abandon it, not wait for it, and checkpoint the state from before it."""
    long_rollout = [
        "--env", "Memory/TMaze-v0", "--total-timesteps", "10000000", "--n-envs", "2",
        "--n-steps", "200000", "--batch-size", "512", "--lstm-hidden-size", "8",
        "--checkpoint-freq", "1000000", "--eval-freq", "0", "--no-progress",
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *long_rollout, "--run-dir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().startswith("training")
        time.sleep(2.0)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # never leave a 10M-step run behind when the test fails
            proc.kill()
            proc.communicate()
    assert time.monotonic() - sent < 5, err
    assert proc.returncode == 130, err
    assert "abandoned" in err and "resume with" in out
    assert RecurrentPPO.load(tmp_path / "checkpoints" / "last.pt").num_timesteps == 0


class StepRaises(gym.vector.VectorWrapper):
    """A vector env whose `step` raises at its `at`-th call."""

    def __init__(self, env: gym.vector.VectorEnv, at: int) -> None:
        super().__init__(env)
        self.at, self.calls = at, 0

    def step(self, actions):
        self.calls += 1
        if self.calls == self.at:
            raise RuntimeError("simulator crashed")
        return self.env.step(actions)


def same(a, b) -> bool:
    """Equal checkpoint payloads: tensors element for element, everything else with ==."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("failure", ["env", "update"])
def test_a_failure_checkpoints_the_state_its_iteration_began_from(tmp_path, failure, capsys):
    """The checkpoint written after an unexpected exception is the state at the start of the
    failed iteration (here the one saved at step 64): weights, optimizer, step count, random
    streams and rollout position alike, whether the env failed mid-rollout or the update
    failed with one minibatch applied."""
    vec = gym.make_vec(
        "Memory/TMaze-v0", num_envs=2, vectorization_mode="vector_entry_point", length=4
    )
    # 2 envs x 16 steps a rollout: the env's 40th step is in the third rollout (steps 64-96).
    env = StepRaises(vec, at=40 if failure == "env" else 10**9)
    model = RecurrentPPO(
        env, n_steps=16, batch_size=16, n_epochs=2, lstm_hidden_size=8, net_arch=[8],
        device="cpu", seed=3,
    )  # fmt: skip
    if failure == "update":
        apply = model.optimizer.step

        def step_then_raise(*args, **kwargs):
            result = apply(*args, **kwargs)
            if model.num_timesteps == 96:  # the third update, once its first minibatch is in
                raise RuntimeError("update crashed")
            return result

        model.optimizer.step = step_then_raise
    run_dir = tmp_path / "run"
    args = train.train_parser().parse_args(
        ["--checkpoint-freq", "32", "--eval-freq", "0", "--no-progress"]
    )
    assert train.train(train.Run(model, RunPaths(run_dir), 10_000, resumed=False), args) == 1
    err = capsys.readouterr().err
    crash = "update crashed" if failure == "update" else "simulator crashed"
    assert "failed at step 64:" in err and crash in err

    began = load_checkpoint(run_dir / "checkpoints" / "step_64.pt")
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert "rollout" in began  # the envs' state is data: the comparison covers it
    assert same(saved, began), [k for k in began if not same(saved.get(k), began[k])]
