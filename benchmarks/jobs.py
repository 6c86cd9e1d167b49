"""Resumable benchmark runs: each job in a fresh one-thread subprocess, one JSON line each in
OUT/results.jsonl, a job whose line is there skipped (benchmarks/zoo.py, benchmarks/masks.py); a
long job can keep a checkpoint to go on from when stopped (`train_flags`).

A benchmark script calls `run_jobs` with its jobs (NamedTuples of JSON-able fields); each job
runs as `python SCRIPT --worker JSON --out OUT`, which must print one line `RESULT {...}`
(`print_result`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
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


WINDOW = 100
"""A curve point's return is the mean of the last `WINDOW` training episodes, and has none until
that many have ended: before, the episodes that ended are the short ones (on Taxi, within a
first rollout of 128 steps a copy, only deliveries end; on MiniGrid, the quick successes), and
their mean flatters."""


def full_window(returns: Any) -> Any:
    """`returns` when they are `WINDOW` episodes, else none."""
    return returns if len(returns) >= WINDOW else []


SAVE_EVERY = 600.0
"""Training seconds between the checkpoints of a job that keeps one (`train_flags`)."""


def checkpoint_path(out: Path, job: NamedTuple) -> Path:
    """Where a job of a benchmark writing to OUT keeps its checkpoint: OUT/checkpoints, named by
    its fields (their first characters and a hash, when they are long or not plain words).
    `run_jobs` removes it once the job's line is written."""
    name = "-".join(map(str, job))
    if not re.fullmatch(r"[\w.=-]{1,120}", name):
        digest = hashlib.sha1(json.dumps(job._asdict(), sort_keys=True).encode()).hexdigest()
        name = re.sub(r"[^\w.=-]+", "_", name)[:80] + "-" + digest[:12]
    return out / "checkpoints" / f"{name}.zip"


def train_flags(
    flags: list[str],
    budget: int,
    window: Callable[[Any], Any] = lambda r: r,
    stop: Callable[[Curve], bool] = lambda curve: False,
    checkpoint: Path | None = None,
) -> tuple[int, float, Curve]:
    """Train as `train.py FLAGS` would, for `budget` steps (here, with a record after every
    update of `window(the last 100 training returns)`, and sooner if `stop(the curve so far)`
    says so): (steps, training seconds, curve).

    With a `checkpoint` file, the run saves itself there every `SAVE_EVERY` training seconds
    (at the end of an update: the model, its flags, curve, seconds and last 100 returns) and,
    when one of the same flags and settings is there at the start, goes on from it: a job
    stopped midway (a session's end, a kill) loses at most `SAVE_EVERY` seconds and an update.
    Episodes in progress continue only on envs that can save their state
    (`agent.environment.env_state`); on others, fresh ones start. A checkpoint that cannot be
    read or was saved by other flags or settings is moved aside (`.stale`) and the run starts
    afresh. The caller removes the file once the result is safe (`run_jobs` does)."""
    from agent import RecurrentPPO
    from agent.algorithm.checkpoint import CheckpointError
    from agent.run.cli import resolve_settings, train_parser

    settings = resolve_settings(train_parser().parse_args(flags))
    curve = CurveRecorder(budget)
    elapsed = 0.0
    model = None
    if checkpoint is not None and checkpoint.is_file():
        try:
            model = RecurrentPPO.load(checkpoint, env="recorded")
            saved = model.checkpoint_extra
            if saved.get("flags") != flags or model.config != settings.config:
                raise CheckpointError("saved by other flags or settings")
        except CheckpointError as e:
            if model is not None:
                model.close()
            model = None
            aside = checkpoint.with_name(checkpoint.name + ".stale")
            checkpoint.replace(aside)
            print(f"{checkpoint}: {e}; moved to {aside}, starting afresh", flush=True)
    resumed = model is not None
    if model is not None:
        curve.points = [tuple(point) for point in saved["curve"]]
        elapsed = float(saved["seconds"])
        model.episode_statistics.return_queue.clear()
        model.episode_statistics.return_queue.extend(saved["returns"])
    else:
        model = RecurrentPPO(
            settings.env_id, config=settings.config, env_kwargs=settings.env_kwargs,
            wrappers=settings.wrappers,
        )  # fmt: skip
    start = time.perf_counter() - elapsed
    last_save = time.perf_counter()

    def record(m: Any) -> bool:
        nonlocal last_save
        returns = m.episode_statistics.return_queue
        curve.add(m.num_timesteps, time.perf_counter() - start, window(returns))
        if checkpoint is not None and time.perf_counter() - last_save >= SAVE_EVERY:
            progress = {"flags": flags, "curve": curve.points,
                        "seconds": time.perf_counter() - start, "returns": list(returns)}  # fmt: skip
            m.save(checkpoint, extra=progress)
            last_save = time.perf_counter()
        return not stop(curve.points)

    try:
        # A run saved at its end (its budget trained, or its stop said so) trains no more.
        if model.num_timesteps < budget and not (resumed and stop(curve.points)):
            remaining = budget - model.num_timesteps
            model.learn(remaining, callback=record, reset_num_timesteps=not resumed)
    finally:
        model.close()
    return model.num_timesteps, time.perf_counter() - start, curve.points


def time_to_goal(curve: list[Any], index: int, goal: float) -> tuple[int | None, float | None]:
    """Steps and seconds (entries 0 and 1) of the first point of `curve` whose entry `index` is at
    or above `goal`; (None, None) if none is."""
    for point in curve:
        if point[index] is not None and point[index] >= goal:
            return point[0], point[1]
    return None, None


def held_for(goal: float, steps: int) -> Callable[[Curve], bool]:
    """A `train_flags` stop: true once the curve has been `steps` past the point where its return
    first reached `goal` (the run is judged solved; what it does after that is not awaited)."""

    def stop(curve: Curve) -> bool:
        reached, _ = time_to_goal(curve, 2, goal)
        return reached is not None and curve[-1][0] >= reached + steps

    return stop


def load_results(out: Path) -> list[dict[str, Any]]:
    """The lines of OUT/results.jsonl (none when it is not there)."""
    path = out / "results.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def print_result(line: dict[str, Any]) -> None:
    """What a worker prints for `run_job` to read."""
    print("RESULT " + json.dumps(line), flush=True)


def run_job(script: Path, job: NamedTuple, out: Path) -> dict[str, Any] | None:
    """Run `job` through `script --worker JOB --out OUT` in a fresh subprocess with one thread;
    its results line, or None (with the worker's error printed)."""
    worker = ["--worker", json.dumps(job._asdict()), "--out", str(out.resolve())]
    command = [sys.executable, str(script), *worker]
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
    """Run `jobs`, `parallel` at a time, appending each line to OUT/results.jsonl as it comes
    (and then removing the job's checkpoint, if it kept one) and printing `describe(job, line)`;
    the number that failed."""
    failed = 0
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {pool.submit(run_job, script, job, out): job for job in jobs}
        for i, future in enumerate(as_completed(futures), 1):  # each line as soon as it is done
            job, line = futures[future], future.result()
            if line is None:
                failed += 1
                continue
            with (out / "results.jsonl").open("a") as f:
                f.write(json.dumps(line) + "\n")
            checkpoint_path(out, job).unlink(missing_ok=True)
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


def run_tune_experiment(
    folder: Path, args: list[str], walls: Path, ray_args: Sequence[str] = ()
) -> None:
    """Run `tune.py ARGS --run-dir FOLDER`, or resume it (`--resume FOLDER`) where it was
    interrupted, unless it is complete; `ray_args` (`--address auto`, say) go to either call.
    Its output goes to `FOLDER.log`, its wall-clock seconds (an interrupted call's too) are
    added to the JSON file `walls` under the folder's name. A folder that tune.py claimed but
    was stopped in before it could be resumed (no `experiment.yaml` and Ray state yet) is moved
    aside to `FOLDER.unstarted-<time>` and the experiment starts again. Exits if tune.py
    fails."""
    from agent.tune.experiment import PLAN_FILE, RAY_DIR
    from agent.tune.trial_table import experiment_complete

    folder = folder.resolve()  # tune.py runs in ROOT
    name = folder.name
    if experiment_complete(folder):
        print(f"{name}: done already ({folder})")
        return
    if folder.is_dir() and not resumable(folder / PLAN_FILE, folder / RAY_DIR):
        aside = folder.with_name(f"{name}.unstarted-{time.strftime('%Y%m%d-%H%M%S')}")
        folder.rename(aside)
        print(f"{name}: {folder} could not be resumed; moved to {aside}", flush=True)
    args = [
        *ray_args,
        *(["--resume", str(folder)] if folder.is_dir() else [*args, "--run-dir", str(folder)]),
    ]
    print(f"{name}: python tune.py {' '.join(args)}", flush=True)
    start = time.perf_counter()
    log_path = folder.with_name(f"{name}.log")
    with log_path.open("a") as log:
        child = subprocess.Popen(
            [sys.executable, "tune.py", *args], cwd=ROOT, stdout=log, stderr=log
        )
        try:
            code = child.wait()
        except KeyboardInterrupt:  # tune.py has the Ctrl-C too: let it save its state
            child.wait()
            raise
        finally:
            with locked(walls):
                seconds = json.loads(walls.read_text()) if walls.is_file() else {}
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
                walls.write_text(json.dumps(seconds, indent=1))
    if code != 0:
        raise SystemExit(f"{name}: tune.py exited with {code}; see {log_path}")


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (on a `.lock` file beside it) for the block, so that
    copies of a script sharing an output folder update its files one at a time. On a system
    without `fcntl` (Windows) nothing is locked: run one copy there."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def resumable(plan: Path, ray_state: Path) -> bool:
    """Whether `tune.py --resume` can continue the experiment of `plan` (its experiment.yaml)."""
    from ray import tune

    return plan.is_file() and tune.Tuner.can_restore(str(ray_state))


def kilo(steps: float) -> str:
    """Steps as a table writes them: `119k`, or `512` under a thousand."""
    return f"{steps / 1000:.0f}k" if steps >= 1000 else f"{steps:.0f}"


def goal_line(
    job: NamedTuple, steps: int, wall: float, curve: Curve, goal: float
) -> dict[str, Any]:
    """A results line of a run judged by its curve against `goal`: the job's fields, the steps
    and seconds trained, the curve, its last return (`final_return`) and the steps and seconds
    at which it first reached the goal (None if never)."""
    final = next((p[2] for p in reversed(curve) if p[2] is not None), None)
    goal_steps, goal_wall = time_to_goal(curve, 2, goal)
    return {
        **job._asdict(), "steps": steps, "wall": wall, "final_return": final, "goal": goal,
        "goal_steps": goal_steps, "goal_wall": goal_wall, "curve": curve,
    }  # fmt: skip


def describe_goal_run(label: str, line: dict[str, Any]) -> str:
    """What prints as a `goal_line` job ends: `LABEL: return R, S s (N steps/s), goal ...`."""
    goal = f"at {line['goal_steps']} steps" if line["goal_steps"] is not None else "not reached"
    final = "none" if line["final_return"] is None else f"{line['final_return']:.3g}"
    return (
        f"{label}: return {final}, {line['wall']:.0f} s "
        f"({line['steps'] / line['wall']:.0f} steps/s), goal {goal}"
    )


def run_and_report(
    script: Path,
    args: argparse.Namespace,
    planned: Callable[[], list[Any]],
    key: Callable[[dict[str, Any]], Any],
    describe: Callable[[Any, dict[str, Any]], str],
    table: Callable[[list[dict[str, Any]]], str],
    plot: Callable[[list[dict[str, Any]], Path], None],
    keep: Callable[[dict[str, Any]], bool] = lambda line: True,
) -> int:
    """A benchmark's `main` after its flags: run the `planned()` jobs missing from
    `args.out` (`run_missing`, `args.jobs` at a time) unless `args.table`, then print `table`
    of the results that `keep` keeps and draw them to `args.plot` if given. The exit code: 1 if
    any job failed."""
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    if not args.table:
        failed = run_missing(script, planned(), args.out, key, describe, getattr(args, "jobs", 1))
    results = [line for line in load_results(args.out) if keep(line)]
    print(table(results) if results else "no results yet")
    if args.plot and results:
        plot(results, args.plot)
    return 1 if failed else 0


def plot_goal_curves(
    results: list[dict[str, Any]],
    path: Path,
    goals: dict[str, float],
    field: str,
    groups: list[str],
    references: dict[str, tuple[str, tuple[int, ...]]] | None = None,
) -> None:
    """Per task of `goals` with results (a row each), each group's (the lines' `field`: agent,
    variant) training return against steps and against training seconds, one line per seed,
    the task's goal dotted. `references[task]`: (a label, the steps at which other runs first
    reached the goal), drawn on the steps panel as their range shaded and their median dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agent.report.figures import save_figure, style_panel

    names = [n for n in goals if any(x["task"] == n for x in results)]
    shown = [g for g in groups if any(x[field] == g for x in results)]
    figure, axes = plt.subplots(
        len(names), 2, figsize=(10, 3.6 * len(names)), squeeze=False, layout="constrained"
    )
    for (by_steps, by_time), name in zip(axes, names, strict=True):
        for i, group in enumerate(shown):
            runs = [x for x in results if x["task"] == name and x[field] == group]
            for j, run in enumerate(runs):
                points = [p for p in run["curve"] if p[2] is not None]
                if not points:
                    continue
                steps, seconds, returns = zip(*points, strict=True)
                label = group if j == 0 else None
                by_steps.plot(steps, returns, color=f"C{i}", linewidth=0.9, label=label)
                by_time.plot(seconds, returns, color=f"C{i}", linewidth=0.9)
        if references and name in references:
            label, steps = references[name]
            by_steps.axvspan(min(steps), max(steps), color="0.85", zorder=0, label=label)
            by_steps.axvline(float(np.median(steps)), color="0.4", linestyle="--", linewidth=0.9)
        for panel in (by_steps, by_time):
            panel.axhline(goals[name], color="k", linestyle=":", linewidth=0.8)
        style_panel(by_steps, name, "environment steps", "training return (last 100)")
        style_panel(by_time, name, "training seconds", "training return (last 100)")
        by_steps.legend(fontsize=7)
    save_figure(figure, path)
    print(f"figure: {path}")


def add_report_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every resumable benchmark takes: `--table`, `--plot FILE`, and the hidden
    `--worker JSON` that `run_job` runs a job with."""
    parser.add_argument("--table", action="store_true", help="run nothing, only report")
    parser.add_argument("--plot", type=Path, help="draw the learning curves to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
