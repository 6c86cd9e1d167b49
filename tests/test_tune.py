"""tune.py end to end on a local Ray instance (2 CPUs): seeds, a sweep with early stopping, a
crashing trial, an interrupted experiment, bad input; a separate Ray head (slow)."""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import yaml
from gymnasium import spaces

import evaluate
import train
from agent import RecurrentPPO
from agent.tune.trial_table import aggregate, format_table
from tests.conftest import require

ray = require("ray")
require("optuna")

from agent.tune import cli as tune_cli  # noqa: E402  (needs ray)
from agent.tune.experiment import RUNTIME_EXCLUDES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = f"{__name__}:Test/MatchBit-v0"
TINY = [
    "--env", ENV, "--vec-env", "sync",
    "--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "2",
    "--lstm-hidden-size", "8", "--net-arch", "8",
    "--eval-freq", "128", "--eval-episodes", "10", "--checkpoint-freq", "256",
]  # fmt: skip


class MatchBitEnv(gym.Env):
    """Shows a random bit; reward 1 for answering it, else 0; 8 steps an episode. A sound
    learning rate learns it within a few hundred steps; a memoryless answer scores 4."""

    observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.bit = int(self.np_random.integers(2))
        return np.array([self.bit], np.float32), {}

    def step(self, action):
        reward = float(int(action) == self.bit)
        self.t += 1
        self.bit = int(self.np_random.integers(2))
        return np.array([self.bit], np.float32), reward, False, self.t >= 8, {}


if "Test/MatchBit-v0" not in gym.registry:
    gym.register("Test/MatchBit-v0", entry_point=MatchBitEnv)


def claim(marker: Path) -> bool:
    """Create the file `marker`; False when it exists. One check-and-create (O_EXCL), so that of
    copies in several trials getting there at once only one wins (with `exists()` then `touch()`
    two could: a CI run's stderr held more than the one failure line this file expects)."""
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


class RaiseOnce(gym.Wrapper):
    """`step` raises once in the whole experiment: at the `after`-th step of the first copy to
    get there, when the file `marker` does not exist yet (it is then created)."""

    def __init__(self, env: gym.Env, marker: str, after: int) -> None:
        super().__init__(env)
        self.marker, self.after, self.steps = Path(marker), after, 0

    def step(self, action):
        self.steps += 1
        if self.steps >= self.after and not self.marker.exists() and claim(self.marker):
            raise RuntimeError("simulator crashed")
        return self.env.step(action)


class InterruptOnce(gym.Wrapper):
    """Sends SIGINT (Ctrl-C) to the process `pid` once, at the `after`-th step of a copy, when
    some trial in `experiment` has finished (written `model.pt`) and `marker` does not exist."""

    def __init__(self, env: gym.Env, pid: int, experiment: str, marker: str, after: int) -> None:
        super().__init__(env)
        self.pid, self.experiment, self.marker = pid, Path(experiment), Path(marker)
        self.after, self.steps = after, 0

    def step(self, action):
        self.steps += 1
        if (
            self.steps >= self.after
            and not self.marker.exists()
            and any(self.experiment.glob("*/model.pt"))
            and claim(self.marker)
        ):
            os.kill(self.pid, signal.SIGINT)
        return self.env.step(action)


# ------------------------------------------------------------------------------ fixtures ---


@pytest.fixture(scope="module")
def local_ray():
    """One Ray instance for the module (starting one takes ~15 s here), shipped the project as
    tune.py ships it, so that the workers import this file's envs and wrappers."""
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"working_dir": str(ROOT), "excludes": RUNTIME_EXCLUDES},
    )
    yield
    ray.shutdown()


def read_results(exp: Path) -> dict[str, dict[str, str]]:
    with (exp / "results.csv").open() as f:
        return {row["trial"]: row for row in csv.DictReader(f)}


def run_tune(*argv: str, timeout: float = 240, env: dict | None = None) -> tuple[int, str, str]:
    """`python tune.py ARGV` in its own process group: on a timeout it is interrupted (so that
    it shuts its Ray down), then killed with everything it started."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tune.py"), *argv],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        raise
    return proc.returncode, out, err


def event_files(run: Path) -> list[Path]:
    return sorted((run / "tb").glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime)


def logged_scalars(event_file: Path, tag: str) -> list[Any]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(event_file))
    events.Reload()
    return events.Scalars(tag)


def logged_steps(event_file: Path, tag: str = "rollout/ep_rew_mean") -> list[int]:
    return [e.step for e in logged_scalars(event_file, tag)]


def logged_values(event_file: Path, tag: str) -> list[float]:
    return [e.value for e in logged_scalars(event_file, tag)]


# --------------------------------------------------------------------------------- seeds ---


@pytest.fixture(scope="module")
def seeds(local_ray, tmp_path_factory):
    exp = tmp_path_factory.mktemp("tune") / "seeds"
    argv = [*TINY, "--total-timesteps", "512", "--seeds", "2", "--run-dir", str(exp), "--plot"]
    return exp, tune_cli.main(argv)


def test_seeds_are_ordinary_run_folders(seeds, tmp_path, monkeypatch):
    exp, code = seeds
    assert code == 0
    for seed in (0, 1):
        run = exp / f"seed{seed}"
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["seed"] == seed and config["env"] == ENV
        assert RecurrentPPO.load(run / "model.pt").num_timesteps == 512
        assert evaluate.main([str(run), "--episodes", "2"]) == 0
        assert len(event_files(run)) == 1
    # train.py continues a trial like any run (on a copy: the other tests read the original).
    monkeypatch.chdir(tmp_path)
    shutil.copytree(exp / "seed0", tmp_path / "seed0")
    assert train.main(["--resume", "seed0", "--total-timesteps", "640", "--no-progress"]) == 0
    assert RecurrentPPO.load(tmp_path / "seed0" / "model.pt").num_timesteps == 640
    # Ray's files stay in .ray/ and write no TensorBoard events of their own.
    assert (exp / ".ray").is_dir()
    assert not list((exp / ".ray").rglob("events.out.tfevents*"))
    assert (exp / "curves.png").stat().st_size > 0


def test_results_table_has_both_seeds_and_their_aggregate(seeds):
    exp, _ = seeds
    rows = read_results(exp)
    assert set(rows) == {"seed0", "seed1", "mean"}
    values = [float(rows[f"seed{s}"]["eval/mean_reward"]) for s in (0, 1)]
    for s in (0, 1):
        assert rows[f"seed{s}"]["status"] == "done" and rows[f"seed{s}"]["steps"] == "512"
        assert float(rows[f"seed{s}"]["wall_time_s"]) > 0
    mean = rows["mean"]
    assert int(mean["n"]) == 2
    assert float(mean["eval/mean_reward"]) == pytest.approx(np.mean(values))
    assert float(mean["std"]) == pytest.approx(np.std(values, ddof=1))
    # The 95% t-interval at 2 seeds: mean -/+ t(0.975, df 1) * std / sqrt(2), t = tan(0.475 pi)
    # = 12.71, far wider than [min, max] (the percentile bootstrap's, which covered 51%).
    half = math.tan(0.475 * math.pi) * np.std(values, ddof=1) / math.sqrt(2)
    assert float(mean["t95_low"]) == pytest.approx(np.mean(values) - half)
    assert float(mean["t95_high"]) == pytest.approx(np.mean(values) + half)


def test_seed_interval_is_the_t_interval_of_the_mean():
    values = [0.0, 1.0, 2.0, 3.0, 10.0]
    result = aggregate(values)
    assert result.n == 5 and result.mean == pytest.approx(3.2)
    assert result.std == pytest.approx(np.std(values, ddof=1))
    # t(0.975, df 4) = 2.776445 (tables); std 3.962, standard error 1.772: 3.2 -/+ 4.92. The
    # exact percentile bootstrap distribution of the mean put it at (0.8, 6.8), narrower.
    half = 2.776445 * np.std(values, ddof=1) / math.sqrt(5)
    assert result.low == pytest.approx(3.2 - half, abs=1e-5)
    assert result.high == pytest.approx(3.2 + half, abs=1e-5)
    summary = format_table([], "eval/mean_reward", result).splitlines()[-1]
    assert summary.endswith("std 3.96, 95% t-interval [-1.72, 8.12]"), summary
    single = aggregate([4.0])
    assert single.mean == 4.0 and np.isnan(single.std) and np.isnan(single.low)


def test_masks_reach_each_trial(local_ray, tmp_path):
    """CardMatch ends an episode early when a card is played twice, which its masks forbid: each
    trial's episodes are all five steps long, and with the masks hidden they are not."""
    cards = [
        "--env", "Memory/CardMatch-v0", "--n-envs", "4", "--n-steps", "16", "--batch-size", "32",
        "--lstm-hidden-size", "8", "--net-arch", "8", "--total-timesteps", "128",
        "--eval-freq", "0", "--seeds", "1",
    ]  # fmt: skip
    assert tune_cli.main([*cards, "--run-dir", str(tmp_path / "masked")]) == 0
    (events,) = event_files(tmp_path / "masked" / "seed0")
    assert set(logged_values(events, "rollout/ep_len_mean")) == {5.0}
    hidden = ["--wrapper", "benchmarks.mask_envs:HideMasks", "--run-dir", str(tmp_path / "hidden")]
    assert tune_cli.main([*cards, *hidden]) == 0
    (events,) = event_files(tmp_path / "hidden" / "seed0")
    assert max(logged_values(events, "rollout/ep_len_mean")) < 5.0


# ---------------------------------------------------------------------------------- sweep ---


def test_asha_stops_trials_that_cannot_learn(local_ray, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {choice: [0.03, 1.0e-12]}\n")
    exp = tmp_path / "sweep"
    argv = [
        *TINY, "--n-epochs", "8", "--total-timesteps", "384", "--grace-period", "128",
        "--search", str(space), "--num-samples", "4", "--max-concurrent", "1",
        "--run-dir", str(exp),
    ]  # fmt: skip
    assert tune_cli.main(argv) == 0
    rows = read_results(exp).values()
    stopped = [row for row in rows if row["status"] == "stopped early"]
    assert stopped, [(row["learning_rate"], row["status"]) for row in rows]
    for row in stopped:
        assert float(row["learning_rate"]) == 1e-12 and int(row["steps"]) < 384
        assert not (Path(row["path"]) / "model.pt").exists()
    learnt = [row for row in rows if float(row["learning_rate"]) == 0.03]
    assert learnt and all(row["status"] == "done" for row in learnt)


def test_an_infeasible_sample_ends_its_trial_without_training_or_retry(local_ray, tmp_path):
    # With TINY's 2 envs, n_steps 16 makes a rollout of 32 samples: too few for a batch_size of
    # 48. Each value is valid with the other's base value (n_steps 32, batch_size 16), so only
    # the sample, in its trial, can find that out.
    space = tmp_path / "space.yaml"
    space.write_text("n_steps: {choice: [8, 16, 32]}\nbatch_size: {choice: [16, 48, 64]}\n")
    exp = tmp_path / "sweep"
    argv = [
        *TINY, "--batch-size", "16", "--total-timesteps", "64", "--grace-period", "64",
        "--search", str(space), "--num-samples", "4", "--max-concurrent", "2",
        "--run-dir", str(exp),
    ]  # fmt: skip
    assert tune_cli.main(argv) == 0
    rows = read_results(exp).values()
    metric = yaml.safe_load((exp / "experiment.yaml").read_text())["metric"]
    seen = set()
    for row in rows:
        feasible = 2 * int(row["n_steps"]) >= int(row["batch_size"])
        seen.add(feasible)
        assert (row["status"], row["restarts"]) == ("done" if feasible else "infeasible", "0")
        if not feasible:
            assert row[metric] == "" and row["steps"] == "0"
            assert not Path(row["path"]).exists()
    assert seen == {True, False}, "the sampler drew only one kind: change the seed"


# --------------------------------------------------------------------------------- faults ---


def test_a_crashed_trial_restarts_from_its_checkpoint(local_ray, tmp_path):
    marker = tmp_path / "crashed"
    exp = tmp_path / "exp"
    argv = [
        *TINY, "--total-timesteps", "512", "--seeds", "1", "--run-dir", str(exp),
        "--wrapper", f"{__name__}:RaiseOnce", f"marker={str(marker)!r}", "after=150",
    ]  # fmt: skip
    assert tune_cli.main(argv) == 0
    assert marker.exists()  # it did crash
    row = read_results(exp)["seed0"]
    assert (row["status"], row["steps"], row["restarts"]) == ("done", "512", "1")
    run = exp / "seed0"
    assert RecurrentPPO.load(run / "model.pt").num_timesteps == 512
    # Copies crash on their 150th step, in the rollout to step 320: Tune's last checkpoint is
    # the report at 256, so the restarted trial logs again from 320, not from 64.
    first, second = event_files(run)
    assert logged_steps(first)[0] == 64
    assert logged_steps(second)[0] == 320


def test_an_interrupted_experiment_resumes_only_its_unfinished_trial(local_ray, tmp_path):
    exp = tmp_path / "exp"
    argv = [
        *TINY, "--total-timesteps", "512", "--seeds", "2", "--max-concurrent", "1",
        "--run-dir", str(exp), "--wrapper", f"{__name__}:InterruptOnce", f"pid={os.getpid()}",
        f"experiment={str(exp)!r}", f"marker={str(tmp_path / 'interrupted')!r}", "after=100",
    ]  # fmt: skip
    assert tune_cli.main(argv) == 130
    finished = [run for run in (exp / "seed0", exp / "seed1") if (run / "model.pt").exists()]
    assert len(finished) == 1, "one trial finished, the other was interrupted"
    (done,) = finished
    other = exp / ("seed1" if done.name == "seed0" else "seed0")
    mtime = (done / "model.pt").stat().st_mtime_ns
    assert read_results(exp)[other.name]["status"] == "unfinished"

    # A new process resumes, as after Ctrl-C on `python tune.py`.
    code, _, err = run_tune("--resume", str(exp))
    assert code == 0, err[-3000:]
    assert (done / "model.pt").stat().st_mtime_ns == mtime  # not run again
    assert len(event_files(done)) == 1
    assert RecurrentPPO.load(other / "model.pt").num_timesteps == 512
    rows = read_results(exp)
    assert rows[done.name]["status"] == rows[other.name]["status"] == "done"
    assert rows[other.name]["restarts"] == "1"  # continued from its checkpoint


# ------------------------------------------------------------------------------ bad input ---


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("space", "argv", "match"),
    [
        (None, ["--seeds", "0"], "--seeds must be positive"),
        ("learnin_rate: {loguniform: [1.0e-5, 1.0e-2]}", [], "did you mean learning_rate"),
        ("learning_rate: {logunifrom: [1.0e-5, 1.0e-2]}", [], "unknown distribution"),
        ("learning_rate: {loguniform: [1.0e-2, 1.0e-5]}", [], "low < high"),
        ("learning_rate: {loguniform: [0, 1.0e-2]}", [], "0 < low"),
        ("gae_lambda: {uniform: [0.8]}", [], "[low, high]"),
        ("learning_rate: 1.0e-3\n  n_steps: [64", [], "not valid YAML: line 2, column 10"),
        ("n_steps: {choice: [0, 64]}", [], "n_steps must be a positive integer"),
        ("n_steps: {uniform: [16, 64]}", [], "n_steps is an integer"),
        ("learning_rate: 1.0e-3\nn_epochs: {randint: [1.5, 4]}", [], "integer bounds"),
        (None, ["--seeds", "2", "--address", "127.0.0.1:{port}"], "cannot reach a Ray cluster"),
        (None, ["--seeds", "2", "--address", "nowhere"], "HOST:PORT"),
        (None, ["--resume", "no/such/exp"], "not an experiment folder"),
        ("n_steps: {choice: [64]}", ["--seeds", "2"], "cannot be combined"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    space, argv, match, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    if space is not None:
        Path("space.yaml").write_text(space)
        argv = [*argv, "--search", "space.yaml"]
    if argv[0] != "--resume":
        argv = [*TINY, "--total-timesteps", "512", *argv]
    argv = [a.replace("{port}", str(free_port())) for a in argv]
    assert tune_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1, err
    assert match in err
    assert sorted(p.name for p in tmp_path.iterdir()) == (["space.yaml"] if space else [])


def test_help_says_nothing_of_what_train_py_resume_does():
    """tune.py --resume takes no settings, so the run flags' help must not promise train.py's."""
    help_text = " ".join(tune_cli.tune_parser().format_help().split())
    assert "environment steps to train" in help_text
    assert "on --resume: the" not in help_text


def test_resume_takes_no_new_settings(seeds, capsys):
    exp, _ = seeds
    assert tune_cli.main(["--resume", str(exp), "--learning-rate", "0.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --learning-rate cannot be changed on --resume")


@pytest.mark.parametrize("space", sorted((ROOT / "configs" / "search").glob("*.yaml")))
def test_example_search_spaces_fit_the_presets(space):
    from agent.run.cli import resolve_settings, train_parser
    from agent.tune.search_space import parse_search_space, read_search_space, sampled_config

    for preset in ("tmaze-short", "repeat-previous"):
        base = resolve_settings(train_parser().parse_args(["--config", preset])).config
        dimensions = parse_search_space(read_search_space(space), base, space.name)
        assert dimensions
        # quniform samples floats; an integer field gets an integer.
        for d in dimensions:
            if d.kind == "quniform":
                assert (
                    type(getattr(sampled_config(base, {d.name: float(d.args[1])}), d.name)) is int
                )


# -------------------------------------------------------------------------------- cluster ---


@pytest.mark.slow
def test_joins_a_ray_cluster_started_apart(tmp_path):
    port = free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths
    head = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
            "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
            "--include-dashboard", "false", "--temp-dir", str(temp_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the Ray head did not start"
                assert head.poll() is None, "ray start exited"
                time.sleep(1)
        exp = tmp_path / "exp"
        argv = [*TINY, "--total-timesteps", "256", "--seeds", "2", "--run-dir", str(exp)]
        address = ["--address", f"127.0.0.1:{port}"]
        # Without the cluster's token (Ray 2.60 starts heads with token authentication).
        code, _, err = run_tune(*argv, *address, timeout=600, env={"RAY_AUTH_MODE": "disabled"})
        assert code == 2 and "RAY_AUTH_MODE=token" in err.splitlines()[-1], err[-3000:]
        code, _, err = run_tune(*argv, *address, timeout=600, env={"RAY_AUTH_MODE": "token"})
        assert code == 0, err[-3000:]
        rows = read_results(exp)
        assert rows["seed0"]["status"] == rows["seed1"]["status"] == "done"
        # The trials ran in the head's workers: their output is in the head's logs.
        logs = "".join(p.read_text(errors="replace") for p in temp_dir.rglob("worker-*.out"))
        assert "seed0: step 256" in logs and "seed1: step 256" in logs
    finally:
        # `ray stop` would stop every Ray on this machine: end only the head started here
        # (`--block` takes the processes it started down with it).
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
        shutil.rmtree(temp_dir, ignore_errors=True)


# ----------------------------------------------------------------------------- issue 29 ---


@pytest.mark.parametrize("where", ["file", "file/exp"])
def test_a_run_dir_that_cannot_be_a_folder_is_one_line_exit_2(where, tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    argv = [*TINY, "--total-timesteps", "512", "--seeds", "2", "--run-dir", str(tmp_path / where)]
    assert tune_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1, err
    assert "is a file, not a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert (tmp_path / "file").read_text() == "mine"


def test_the_output_is_our_lines_and_errors_only(tmp_path, monkeypatch):
    """`tune.py --seeds 3` printed 125 lines on a tiny budget: Ray's token warning and packaging
    notes, Tune's tables, worker lines (some after the summary, some folded into one "[repeated
    3x across cluster]"), Ray's Tuner.restore advice. A trial that fails is still told, once
    per failure, and in the results."""
    for name in (
        "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS",
        "RAY_AIR_NEW_OUTPUT",
        "TUNE_PRINT_ALL_TRIAL_ERRORS",
    ):
        monkeypatch.delenv(name, raising=False)  # as a user's shell has them: unset
    exp = tmp_path / "exp"
    marker = tmp_path / "crashed"
    crash_once = ["--wrapper", f"{__name__}:RaiseOnce", f"marker={str(marker)!r}", "after=100"]
    argv = [*TINY, "--total-timesteps", "256", "--seeds", "3", "--run-dir", str(exp), *crash_once]
    code, out, err = run_tune(*argv)
    assert code == 0, err[-3000:]
    assert marker.exists()  # a trial did crash, and was restarted
    # stderr: the failure, in one line.
    assert len(err.splitlines()) == 1, err
    (failure,) = err.splitlines()
    assert re.fullmatch(
        r"seed[012]: failed: RuntimeError: simulator crashed; restarting from its last "
        r"checkpoint \(1 of 3 restarts\)",
        failure,
    ), err
    # stdout: what we print, in order: the plan, 2 reports of each of 3 trials (every 128 steps),
    # the table (a header, 3 rows, the seeds' mean), the results file and TensorBoard.
    lines = out.splitlines()
    assert len(lines) == 1 + 6 + 5 + 2, out
    assert lines[0].startswith("running 3 seeds of")
    reports = sorted(line.partition(": eval return ")[0] for line in lines[1:7])
    assert reports == sorted(f"seed{s}: step {n}" for s in range(3) for n in (128, 256)), out
    assert lines[7].startswith("trial ") and lines[11].startswith("eval/mean_reward over 3 seeds")
    assert lines[12] == f"results: {exp / 'results.csv'}"
    assert lines[13] == f"tensorboard: tensorboard --logdir {exp}"
