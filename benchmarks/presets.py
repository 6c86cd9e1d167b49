"""Every preset in configs/ over several seeds, run as Ray Tune trials by `tune.py`, and one table.

    python benchmarks/presets.py --out runs/presets            # every preset, 5 seeds each
    python benchmarks/presets.py --out runs/presets --presets tmaze-short bandit --seeds 3
    python benchmarks/presets.py --out runs/presets --table-only --plot results/presets.png
    python benchmarks/presets.py --out runs/presets-mingru --rnn-type mingru --presets tmaze-short

Each preset is one experiment, `tune.py --config NAME --seeds N --run-dir OUT/NAME`, run one
after another (the trials of one experiment share the machine's cores, one CPU each). It is
resumable: a preset whose experiment wrote its results table is skipped, and one that was
interrupted continues with `tune.py --resume`.

The table gives, per preset: the final metric (200 deterministic episodes of each seed's final
model with `evaluate.py`, as the README's table was measured) as mean, standard deviation and
95% t-interval of the mean over the seeds (`agent.report.stats.t_interval`: wide at few seeds,
and it may reach past a rate's [0, 1]); how many seeds end at the goal; the time to the goal (the
first periodic evaluation, 20 episodes every 20k steps by default, at or above it: steps, and
wall-clock seconds since the run opened its TensorBoard file, evaluations
included), as a median over the seeds that reached it; each trial's training time; and the
experiment's wall time, Ray's start-up included. `--plot` draws one panel per preset: the
evaluation metric's mean over seeds, its min-max band, and the goal.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.tune.trial_table import RESULTS_CSV, aggregate, finished_trials  # noqa: E402
from benchmarks.jobs import run_tune_experiment  # noqa: E402

# The goal each preset's header states: (the evaluation tag it is judged on, the least value).
GOALS: dict[str, tuple[str, float]] = {
    "tmaze-short": ("eval/success_rate", 0.99),
    "tmaze-100": ("eval/success_rate", 0.99),
    "tmaze-1000": ("eval/success_rate", 0.99),
    "repeat-first": ("eval/success_rate", 0.99),
    "repeat-previous": ("eval/mean_reward", 0.95),
    "visual-match": ("eval/success_rate", 0.95),
    "cartpole-novel": ("eval/mean_reward", 450.0),
    "bandit": ("eval/mean_reward", 0.62),
    "pendulum-novel": ("eval/mean_reward", -300.0),
    "card-match": ("eval/mean_reward", 0.95),
    "taxi-destination": ("eval/mean_reward", 4.0),
    "minigrid-memory-s7": ("eval/mean_reward", 0.9),
    "minigrid-memory-s9": ("eval/mean_reward", 0.9),
}
FINAL_EPISODES = 200
"""Episodes of the final evaluation of each seed's model (`evaluate.py`, deterministic), as the
README's preset table was measured; tune.py's own last evaluation has `--eval-episodes` (20)."""
FINAL = f"final_{FINAL_EPISODES}.json"
"""The final evaluation's results, in each run folder."""
JSON_FIELDS = {"eval/success_rate": "success_rate", "eval/mean_reward": "mean_return"}
"""evaluate.py --json's name for each evaluation tag a goal is judged on."""
WALLS = "walls.json"
"""Per preset, the wall-clock seconds of its `tune.py` call(s), in the output folder."""


@dataclass(frozen=True)
class SeedResult:
    """One trial of a preset's experiment."""

    final: float
    """The goal's metric of the final model over `FINAL_EPISODES` episodes (`FINAL`), else at
    its last periodic evaluation, which `tune.py` runs on the final model."""
    train_seconds: float
    goal_step: int | None
    """Steps at the first evaluation at the goal; None when no evaluation reached it."""
    goal_seconds: float | None


def run_preset(name: str, out: Path, seeds: int, rnn_type: str | None = None) -> None:
    """Run (or resume) the experiment of preset `name` (with its recurrent core replaced by
    `rnn_type` if given); add its wall time to `WALLS`."""
    args = ["--config", name, "--seeds", str(seeds), "--plot"]
    if rnn_type is not None:
        args += ["--rnn-type", rnn_type]
    run_tune_experiment(out / name, args, out / WALLS)


def evaluate_finals(folder: Path) -> None:
    """Evaluate each finished trial's final model over `FINAL_EPISODES` deterministic episodes
    into its run folder's `FINAL` (skipped where it exists)."""
    for run in (Path(row["path"]) for row in finished_trials(folder)):
        if (run / FINAL).is_file():
            continue
        command = [sys.executable, "evaluate.py", str(run), "--episodes", str(FINAL_EPISODES)]
        result = subprocess.run(
            [*command, "--json", str(run / FINAL)], cwd=ROOT, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(f"evaluate.py {run} failed: {result.stderr.strip()[-500:]}")


def run_start(run: Path) -> float:
    """The wall-clock time the run opened its first TensorBoard event file."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    first = min((run / "tb").glob("events.out.tfevents*"))
    return next(iter(EventFileLoader(str(first)).Load())).wall_time


def read_seeds(folder: Path, tag: str, least: float) -> list[SeedResult]:
    """The finished trials of the experiment in `folder`, judged against `tag >= least`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    results = []
    for row in finished_trials(folder):
        run = Path(row["path"])
        events = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
        events.Reload()
        evaluations = events.Scalars(tag)
        reached = [e for e in evaluations if e.value >= least]
        start = run_start(run)
        final = evaluations[-1].value  # tune.py evaluates the final model last
        if (run / FINAL).is_file():
            final = json.loads((run / FINAL).read_text())[JSON_FIELDS[tag]]
        results.append(
            SeedResult(
                final=final,
                train_seconds=float(row["wall_time_s"]),
                goal_step=reached[0].step if reached else None,
                goal_seconds=reached[0].wall_time - start if reached else None,
            )
        )
    return results


def table(out: Path, names: list[str]) -> str:
    """The Markdown table of the presets in `names` that have results in `out`."""
    walls = json.loads((out / WALLS).read_text()) if (out / WALLS).is_file() else {}
    lines = [
        "| preset | goal | final: mean ± std (95% t-interval) | seeds at goal at the end | "
        "time to goal, median (steps) | training per seed, median | experiment wall |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        if not (out / name / RESULTS_CSV).is_file():
            continue
        tag, least = GOALS[name]
        seeds = read_seeds(out / name, tag, least)
        summary = aggregate([s.final for s in seeds])
        reached = [s for s in seeds if s.goal_seconds is not None]
        to_goal = (
            f"{statistics.median(s.goal_seconds for s in reached):.0f} s "
            f"({statistics.median(s.goal_step for s in reached) / 1000:.0f}k), "
            f"{len(reached)} of {len(seeds)} seeds"
            if reached
            else f"never, 0 of {len(seeds)} seeds"
        )
        spread = "" if math.isnan(summary.std) else f" ± {summary.std:.3g}"
        interval = "" if math.isnan(summary.low) else f" ({summary.low:.3g}, {summary.high:.3g})"
        wall = f"{walls[name] / 60:.1f} min" if name in walls else "not timed"
        lines.append(
            f"| `{name}` | {tag.split('/')[1]} >= {least:g} | {summary.mean:.3g}{spread}"
            f"{interval} | {sum(s.final >= least for s in seeds)} of {len(seeds)} | {to_goal} | "
            f"{statistics.median(s.train_seconds for s in seeds):.0f} s | {wall} |"
        )
    return "\n".join(lines)


def plot(out: Path, names: list[str], path: Path) -> None:
    """One panel per preset: the evaluation metric over steps, mean and min-max band of the
    seeds, and the goal as a dashed line."""
    from agent.report.curves import read_run, seed_band
    from agent.report.figures import check_figure_path, panel_grid, save_figure, style_panel

    check_figure_path(path)
    names = [n for n in names if (out / n / RESULTS_CSV).is_file()]
    title = "Presets: mean over seeds, band min-max, dashed line the goal"
    figure, axes = panel_grid(len(names), title)
    for ax, name in zip(axes, names, strict=True):
        tag, least = GOALS[name]
        runs = [read_run(row["path"]) for row in finished_trials(out / name)]
        band = seed_band([run.scalars[tag] for run in runs])
        ax.plot(band.steps, band.mean, color="C0", marker="o", markersize=2, linewidth=1.2)
        ax.fill_between(band.steps, band.low, band.high, color="C0", alpha=0.25)
        ax.axhline(least, color="k", linestyle="--", linewidth=0.8)
        style_panel(ax, f"{name} ({len(runs)} seeds)", "environment steps", tag)
    save_figure(figure, path)
    print(f"figure: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the experiments")
    parser.add_argument("--presets", nargs="+", default=list(GOALS), choices=list(GOALS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rnn-type", choices=["lstm", "peephole", "gru", "mingru", "ffm"],
                        help="every preset with this recurrent core instead of its own (give "
                        "each core its own --out)")  # fmt: skip
    parser.add_argument("--table-only", action="store_true", help="run nothing, only report")
    parser.add_argument("--plot", type=Path, help="write the figure of curves here")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for name in args.presets:
            run_preset(name, args.out, args.seeds, args.rnn_type)
            evaluate_finals(args.out / name)
    print(table(args.out, args.presets))
    if args.plot:
        plot(args.out, args.presets, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
