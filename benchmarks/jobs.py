"""Resumable benchmark runs: each job in a fresh one-thread subprocess, one JSON line each in
OUT/results.jsonl, a job whose line is there skipped (benchmarks/zoo.py, benchmarks/masks.py).

A benchmark script calls `run_jobs` with its jobs (NamedTuples of JSON-able fields); each job
runs as `python SCRIPT --worker JSON`, which must print one line `RESULT {...}` (`print_result`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CURVE_POINTS = 500
"""About how many points of a learning curve a results line keeps."""

Curve = list[tuple[int, float, float | None]]
"""(steps, training seconds, mean return of the last 100 training episodes)."""


class CurveRecorder:
    """Keeps about `CURVE_POINTS` points of a run of `budget` steps, and always the last."""

    def __init__(self, budget: int) -> None:
        self.every = max(1, budget // CURVE_POINTS)
        self.points: Curve = []

    def add(self, steps: int, seconds: float, returns: Any) -> None:
        point = (int(steps), seconds, float(np.mean(returns)) if len(returns) else None)
        if self.points and steps // self.every == self.points[-1][0] // self.every:
            self.points[-1] = point  # the same stretch: the later point stands for it
        else:
            self.points.append(point)


def time_to_goal(curve: list[Any], index: int, goal: float) -> tuple[int | None, float | None]:
    """Steps and seconds (entries 0 and 1) of the first point of `curve` whose entry `index` is at
    or above `goal`; (None, None) if none is."""
    for point in curve:
        if point[index] is not None and point[index] >= goal:
            return point[0], point[1]
    return None, None


def load_results(out: Path) -> list[dict[str, Any]]:
    """The lines of OUT/results.jsonl (none when it is not there)."""
    path = out / "results.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def print_result(line: dict[str, Any]) -> None:
    """What a worker prints for `run_job` to read."""
    print("RESULT " + json.dumps(line), flush=True)


def run_job(script: Path, job: NamedTuple) -> dict[str, Any] | None:
    """Run `job` through `script --worker` in a fresh subprocess with one thread; its results
    line, or None (with the worker's error printed)."""
    command = [sys.executable, str(script), "--worker", json.dumps(job._asdict())]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(f"  {' '.join(map(str, job))} failed ({proc.returncode}):")
        print(proc.stderr[-2000:], flush=True)
        return None
    return json.loads(lines[-1][len("RESULT ") :])


def run_jobs(
    script: Path,
    jobs: list[Any],
    out: Path,
    parallel: int,
    describe: Callable[[Any, dict[str, Any]], str],
) -> int:
    """Run `jobs`, `parallel` at a time, appending each line to OUT/results.jsonl as it comes and
    printing `describe(job, line)`; the number that failed."""
    failed = 0
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {pool.submit(run_job, script, job): job for job in jobs}
        for i, future in enumerate(as_completed(futures), 1):  # each line as soon as it is done
            job, line = futures[future], future.result()
            if line is None:
                failed += 1
                continue
            with (out / "results.jsonl").open("a") as f:
                f.write(json.dumps(line) + "\n")
            print(f"[{i}/{len(jobs)}] {describe(job, line)}", flush=True)
    return failed


def run_missing(
    script: Path,
    planned: list[Any],
    out: Path,
    key: Callable[[dict[str, Any]], Any],
    describe: Callable[[Any, dict[str, Any]], str],
    parallel: int = 1,
) -> int:
    """Run the `planned` jobs that have no line in OUT/results.jsonl yet (`key` of a line or of
    a job's `_asdict()` says which job it is), as `run_jobs` does; the number that failed."""
    done = {key(line) for line in load_results(out)}
    todo = [job for job in planned if key(job._asdict()) not in done]
    print(f"{len(todo)} jobs to run, results in {out / 'results.jsonl'}", flush=True)
    return run_jobs(script, todo, out, parallel, describe)


def add_report_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every resumable benchmark takes: `--table`, `--plot FILE`, and the hidden
    `--worker JSON` that `run_job` runs a job with."""
    parser.add_argument("--table", action="store_true", help="run nothing, only report")
    parser.add_argument("--plot", type=Path, help="draw the learning curves to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
