"""Parallel efficiency of seeds on Ray Tune, and Ray's own cost per experiment (issue 15).

Three cases, each a fresh subprocess timed from outside, run one after another (never two at
once) in the order A, B, C, A, B, C, ... so that a slow spell of a shared machine falls on all:

    A  one seed alone, no Ray:  train.py --config CFG --eval-freq 0
    B  one seed through Ray:    tune.py --config CFG --seeds 1 --cpus-per-trial 1 --eval-freq 0
    C  two seeds through Ray:   tune.py --config CFG --seeds 2 --cpus-per-trial 1 --eval-freq 0

Every process has OMP_NUM_THREADS=MKL_NUM_THREADS=1 (train.py leaves torch's threads to them;
a trial sets one thread per CPU). Besides the outside wall, each run's own times are read back:
the trial's time in Ray (results.csv `wall_time_s`) and its training time (the sum over updates
of steps / `time/fps` in its TensorBoard events: collection and updates only). Prints C/A (the
issue's criterion: at most 1.3), C/B, Ray's cost per experiment (B - A, and B's wall minus its
trial's time) and the training time of C's trials against A's (does sharing the machine slow
training itself?). Medians over --repeats.

    python benchmarks/parallel.py                              # tmaze-100, 300k steps each
    python benchmarks/parallel.py --repeats 3 --json parallel.json
    python benchmarks/parallel.py --total-timesteps 4096 --keep   # a quick check, keep runs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean, median
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `agent`, when run as a script from elsewhere
    sys.path.insert(0, str(ROOT))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CASES = {"A": "one seed, train.py", "B": "one seed, tune.py", "C": "two seeds, tune.py"}


class RunFailed(RuntimeError):
    """A measured subprocess exited non-zero."""


def command(case: str, args: argparse.Namespace, folder: Path) -> list[str]:
    """The command line of `case` writing to `folder`."""
    common = ["--config", args.config, "--run-dir", str(folder), "--eval-freq", "0"]
    if args.total_timesteps is not None:
        common += ["--total-timesteps", str(args.total_timesteps)]
    if case == "A":
        return [sys.executable, "train.py", *common, "--no-progress"]
    seeds = "1" if case == "B" else "2"
    return [sys.executable, "tune.py", *common, "--seeds", seeds, "--cpus-per-trial", "1"]


def training_time(run: Path) -> float:
    """Seconds a run spent collecting and updating: over its updates, steps / `time/fps`."""
    import numpy as np

    from agent.report.curves import read_scalars

    fps = read_scalars(run / "tb")["time/fps"]
    return float(np.sum(np.diff(fps.steps, prepend=0) / fps.values))


def trial_times(experiment: Path) -> dict[str, float]:
    """Each finished trial's time in Ray (its `time_total_s`), from results.csv, by name."""
    from agent.tune.trial_table import finished_trials

    return {row["trial"]: float(row["wall_time_s"]) for row in finished_trials(experiment)}


def measure(case: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Run `case` into `folder`: its outside wall, its trials' times in Ray, training times."""
    cmd = command(case, args, folder)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RunFailed(
            f"{case} ({CASES[case]}) exited with {proc.returncode}: {' '.join(cmd[1:])}\n{tail}"
        )
    if case == "A":
        return {"wall": wall, "trial": [], "train": [training_time(folder)]}
    trials = trial_times(folder)
    if len(trials) != (1 if case == "B" else 2):
        raise RunFailed(f"{case} ({CASES[case]}): results.csv lists {len(trials)} done trials")
    names = sorted(trials)
    train = [training_time(folder / name) for name in names]
    return {"wall": wall, "trial": [trials[name] for name in names], "train": train}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per case, medians over repeats of the wall and of the mean trial and training times
    (None where a case has none); then the ratios the issue asks for."""
    out: dict[str, Any] = {}
    for case in CASES:
        mine = [r for r in runs if r["case"] == case]
        out[case] = {"wall": median(r["wall"] for r in mine)}
        for key in ("trial", "train"):
            out[case][key] = median(mean(r[key]) for r in mine) if mine[0][key] else None
    a, b, c = out["A"], out["B"], out["C"]
    slowest_c = median(max(r["trial"]) for r in runs if r["case"] == "C")
    out["ratios"] = {
        "C/A": c["wall"] / a["wall"],
        "C/B": c["wall"] / b["wall"],
        "B-A_s": b["wall"] - a["wall"],
        "B-trial_s": b["wall"] - b["trial"],
        "C-trial_s": c["wall"] - slowest_c,
        "train_C/A": c["train"] / a["train"],
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tmaze-100", help="preset or YAML (%(default)s)")
    parser.add_argument("--total-timesteps", type=int, help="of each seed (default: preset's)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of A, B, C (default: 1)")
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the numbers here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be positive, got {args.repeats}")
    import ray
    import torch

    info = {"cores": os.cpu_count(), "torch": torch.__version__, "ray": ray.__version__}
    info["load_start"] = os.getloadavg()[0]
    print(
        f"machine: {info['cores']} cores, torch {info['torch']}, ray {info['ray']}, one torch "
        f"thread per process, load average {info['load_start']:.2f}; {args.config}, "
        f"{args.total_timesteps or 'preset'} steps per seed",
        flush=True,
    )
    folder = Path(tempfile.mkdtemp(prefix="parallel-benchmark-"))
    runs: list[dict[str, Any]] = []
    try:
        for repeat in range(args.repeats):
            for case, what in CASES.items():
                run = measure(case, args, folder / f"{case}{repeat}")
                runs.append({"case": case, "repeat": repeat, **run})
                trial = ", ".join(f"{t:.1f}" for t in run["trial"]) or "-"
                train = ", ".join(f"{t:.1f}" for t in run["train"])
                print(
                    f"{case} {what:18s}  wall {run['wall']:7.1f} s  trial in Ray {trial:>11s} s  "
                    f"training {train:>11s} s",
                    flush=True,
                )
    except RunFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"run folders kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    result = summarize(runs)
    info["load_end"] = os.getloadavg()[0]
    q = result["ratios"]
    print(
        f"C/A {q['C/A']:.2f} (issue 15: at most 1.3)   C/B {q['C/B']:.2f}\n"
        f"Ray's cost per experiment: B - A {q['B-A_s']:.1f} s; B outside its trial "
        f"{q['B-trial_s']:.1f} s, C outside its slower trial {q['C-trial_s']:.1f} s\n"
        f"training time, C's trials / A: {q['train_C/A']:.2f}   "
        f"(load average at the end {info['load_end']:.2f})"
    )
    if args.json:
        settings = {k: getattr(args, k) for k in ("config", "total_timesteps", "repeats")}
        record = {"machine": info, **settings, "runs": runs, **result}
        args.json.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
