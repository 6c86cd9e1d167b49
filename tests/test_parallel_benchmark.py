"""benchmarks/parallel.py: how it reads a run's training time and a trial's time in Ray, and
sums up repeats; a failing case stops it with one error line; and end to end on a tiny budget
(slow: two Ray start-ups), the three cases are measured and read back."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from benchmarks import parallel


def test_training_time_sums_each_updates_steps_over_its_fps(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "tb"))
    for step, fps in ((100, 50.0), (300, 100.0), (600, 30.0)):
        writer.add_scalar("time/fps", fps, step)
    writer.close()
    assert parallel.training_time(tmp_path) == pytest.approx(100 / 50 + 200 / 100 + 300 / 30)


def test_trial_times_are_the_finished_trials_of_results_csv(tmp_path: Path) -> None:
    (tmp_path / "results.csv").write_text(
        "trial,status,seed,rollout/ep_rew_mean,steps,wall_time_s,restarts,path,n,std\n"
        "seed0,done,0,0.5,6528,6.6,0,/x/seed0,,\n"
        "seed1,error,1,,0,0.0,0,/x/seed1,,\n"
        "seed2,done,2,0.25,6528,7.1,0,/x/seed2,,\n"
        "mean,,,0.375,,,,,2,0.17\n"
    )
    assert parallel.trial_times(tmp_path) == {"seed0": 6.6, "seed2": 7.1}


def test_summary_takes_medians_over_repeats_and_the_issues_ratios() -> None:
    runs = []
    for repeat, (a, b, c) in enumerate(
        [(10.0, 30.0, 40.0), (12.0, 33.0, 44.0), (50.0, 31.0, 99.0)]
    ):
        runs += [
            {"case": "A", "repeat": repeat, "wall": a, "trial": [], "train": [a - 2]},
            {"case": "B", "repeat": repeat, "wall": b, "trial": [b - 20], "train": [b - 22]},
            {"case": "C", "repeat": repeat, "wall": c, "trial": [c - 24, c - 20], "train": [8, 12]},
        ]
    out = parallel.summarize(runs)
    assert out["A"] == {"wall": 12.0, "trial": None, "train": 10.0}
    assert out["B"] == {"wall": 31.0, "trial": 11.0, "train": 9.0}
    assert out["C"] == {"wall": 44.0, "trial": 22.0, "train": 10.0}  # trials averaged per run
    assert out["ratios"] == pytest.approx(
        {
            "C/A": 44 / 12,
            "C/B": 44 / 31,
            "B-A_s": 31 - 12,
            "B-trial_s": 31 - 11,
            "C-trial_s": 44 - 24,  # the median of each run's slower trial
            "train_C/A": 10 / 10,
        }
    )


# About 85 s on the 2-core machine under a load of 5; Ray's two start-ups are most of it.
@pytest.mark.slow
def test_the_three_cases_are_measured_and_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = tmp_path / "parallel.json"
    assert parallel.main(["--total-timesteps", "2048", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [run["case"] for run in data["runs"]] == ["A", "B", "C"]
    trials = {run["case"]: run["trial"] for run in data["runs"]}
    assert len(trials["A"]) == 0 and len(trials["B"]) == 1 and len(trials["C"]) == 2
    for case in ("A", "B", "C"):
        wall, train = data[case]["wall"], data[case]["train"]
        assert 0 < train < wall, case  # training happens inside the measured process
    for case in ("B", "C"):
        # A trial's time in Ray holds its training, and the experiment holds the trial.
        assert 0 < data[case]["train"] <= data[case]["trial"] < data[case]["wall"], case
    assert data["A"]["trial"] is None
    ratios = data["ratios"]
    assert ratios["C/A"] == pytest.approx(data["C"]["wall"] / data["A"]["wall"])
    assert ratios["B-A_s"] == pytest.approx(data["B"]["wall"] - data["A"]["wall"])
    assert ratios["B-trial_s"] > 0 and ratios["C-trial_s"] > 0
    assert not list(tmp_path.glob("parallel-benchmark-*")), "the run folders were not removed"


def test_a_failing_case_ends_the_benchmark_with_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert parallel.main(["--config", "no-such-preset", "--json", str(tmp_path / "x.json")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: A (one seed, train.py) exited with 2: train.py --config")
    assert any("no-such-preset" in line for line in err[1:])  # train.py's own message
    assert not (tmp_path / "x.json").exists()
    assert not list(tmp_path.glob("parallel-benchmark-*"))
