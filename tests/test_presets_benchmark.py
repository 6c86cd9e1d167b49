"""benchmarks/presets.py reads an experiment folder into the right row: final metric over seeds,
seeds at the goal, and the time to the goal from the first evaluation at or above it."""

import csv
import json
from pathlib import Path
from types import SimpleNamespace

from torch.utils.tensorboard import SummaryWriter

from benchmarks import jobs, presets


def fake_trial(run: Path, evaluations: list[tuple[int, float, float]]) -> None:
    """A run folder whose TensorBoard file logs eval/mean_reward (step, value, seconds after
    the file was opened)."""
    writer = SummaryWriter(str(run / "tb"))
    writer.flush()
    start = presets.run_start(run)
    for step, value, seconds in evaluations:
        writer.add_scalar("eval/mean_reward", value, step, walltime=start + seconds)
    writer.close()


def test_table_row_of_an_experiment(tmp_path):
    exp = tmp_path / "cartpole-novel"
    trials = {
        "seed0": ([(10_000, 100.0, 5.0), (20_000, 460.0, 9.0), (30_000, 500.0, 14.0)], 500.0),
        "seed1": ([(10_000, 200.0, 6.0), (20_000, 300.0, 11.0), (30_000, 470.0, 15.0)], 470.0),
        "seed2": ([(10_000, 50.0, 4.0), (20_000, 90.0, 8.0), (30_000, 120.0, 13.0)], 120.0),
    }
    exp.mkdir()
    with (exp / "results.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        # The experiment's metric may be another tag than the goal's (success where the env
        # reports it): the goal's final value comes from the run's last evaluation.
        writer.writerow(["trial", "status", "seed", "eval/success_rate", "wall_time_s", "path"])
        for seed, (name, (evaluations, final)) in enumerate(trials.items()):
            fake_trial(exp / name, evaluations)
            assert evaluations[-1][1] == final
            writer.writerow([name, "done", seed, 0.0, 20.0 + seed, exp / name])
        writer.writerow(["mean", "", "", 363.3, "", ""])  # the aggregate row is not a trial

    # seed2's final model, evaluated over 200 episodes, did better than its last evaluation
    (exp / "seed2" / presets.FINAL).write_text(json.dumps({"mean_return": 130.0}))
    seeds = presets.read_seeds(exp, "eval/mean_reward", 450.0)
    assert [s.goal_step for s in seeds] == [20_000, 30_000, None]
    assert [s.final for s in seeds] == [500.0, 470.0, 130.0]
    assert abs(seeds[0].goal_seconds - 9.0) < 0.01 and abs(seeds[1].goal_seconds - 15.0) < 0.01

    row = presets.table(tmp_path, ["cartpole-novel"]).splitlines()[-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "`cartpole-novel`"
    assert cells[1] == "mean_reward >= 450"
    assert cells[2].startswith("367 ± 206")  # mean and sample std (ddof 1) of 500, 470, 130
    assert cells[3] == "2 of 3"
    assert cells[4] == "12 s (25k), 2 of 3 seeds"  # median of 9 s and 15 s, of 20k and 30k
    assert cells[5] == "21 s"
    assert cells[6] == "not timed"


class FakeTune:
    """Stands in for `subprocess.Popen` of tune.py: records each command, exits with 0."""

    def __init__(self):
        self.calls = []

    def __call__(self, args, **kwargs):
        self.calls.append(args)
        return self

    def wait(self):
        return 0


def test_an_interrupted_experiment_is_resumed_not_taken_as_done(tmp_path, monkeypatch):
    """tune.py writes its results table when interrupted too; run_preset must resume such an
    experiment, and skip only one whose every trial finished."""
    tune = FakeTune()
    monkeypatch.setattr(jobs, "subprocess", SimpleNamespace(Popen=tune))
    monkeypatch.setattr(jobs, "resumable", lambda plan, ray: plan.parent.name == "tmaze-1000")
    exp = tmp_path / "tmaze-1000"
    exp.mkdir()
    header = "trial,status,seed,eval/success_rate,steps,wall_time_s,restarts,path\n"
    (exp / "results.csv").write_text(
        header + "seed0,unfinished,0,0.45,513024,187.0,0,x\nseed1,not started,,,0,0.0,0,y\n"
    )
    presets.run_preset("tmaze-1000", tmp_path, seeds=2)
    assert tune.calls and tune.calls[-1][-2:] == ["--resume", str(exp)]
    assert "tmaze-1000" in json.loads((tmp_path / presets.WALLS).read_text())

    (exp / "results.csv").write_text(
        header + "seed0,done,0,1.0,3000000,900.0,0,x\nseed1,done,1,1.0,3000000,910.0,0,y\n"
        "mean,,,1.0,,,,\n"
    )
    tune.calls.clear()
    presets.run_preset("tmaze-1000", tmp_path, seeds=2)
    assert tune.calls == []


def test_a_folder_tune_py_could_not_resume_is_moved_aside_and_started_again(tmp_path, monkeypatch):
    """Stopped before tune.py wrote its plan and Ray's state, a claimed folder cannot be resumed
    (tune.py --resume refuses it): it is kept under another name and the experiment starts anew."""
    tune = FakeTune()
    monkeypatch.setattr(jobs, "subprocess", SimpleNamespace(Popen=tune))
    exp = tmp_path / "tmaze-1000"
    (exp / "seed0").mkdir(parents=True)
    presets.run_preset("tmaze-1000", tmp_path, seeds=2)
    assert "--resume" not in tune.calls[-1] and tune.calls[-1][-2:] == ["--run-dir", str(exp)]
    (aside,) = tmp_path.glob("tmaze-1000.unstarted-*")
    assert (aside / "seed0").is_dir() and not exp.exists()


def test_a_preset_runs_with_another_core_when_asked(tmp_path, monkeypatch):
    tune = FakeTune()
    monkeypatch.setattr(jobs, "subprocess", SimpleNamespace(Popen=tune))
    presets.run_preset("tmaze-short", tmp_path, seeds=2, rnn_type="mingru")
    presets.run_preset("bandit", tmp_path, seeds=2)
    first, second = tune.calls
    assert first[first.index("--rnn-type") + 1] == "mingru" and "--rnn-type" not in second
