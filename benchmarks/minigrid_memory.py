"""MiniGrid's Memory tasks (issue 27): which encoding of the 7x7x3 object codes learns.

    python benchmarks/minigrid_memory.py --out runs/minigrid                   # all, resumable
    python benchmarks/minigrid_memory.py --out runs/minigrid --experiment encoders
    python benchmarks/minigrid_memory.py --out results/minigrid --table --plot FILE.png
    python benchmarks/minigrid_memory.py --out results/minigrid --experiment random-lengths --table
    python benchmarks/minigrid_memory.py --quick --out /tmp/minigrid_quick      # the pipeline

Needs the `minigrid` extra (`pip install -e ".[minigrid]"`). Each run is `train.py --env ID
--wrapper minigrid.wrappers:ImgObsWrapper` (the 7x7x3 uint8 codes, as MiniGrid's users give
them) at the defaults, with its variant's flags:

- `encoders`: MemoryS7 with each encoding of the codes (`--image-encoder flatten`: each channel
  divided by its largest value, the codes as intensities; `onehot`; `embed`), 2 seeds;
- `encoders-pixels`: `flatten` and `embed` on our VisualMatch (8x8 RGB frames: a small grid
  of pixels, which `auto` reads as codes too), 3 seeds;
- `pixels-s9`: MemoryS9 as MarcoMeter/recurrent-ppo-truncated-bptt trains it (a 3x3 view drawn
  as 84x84 RGB, three actions) at the defaults, 3 seeds, each run stopped 300k steps after it
  first reaches the goal, or at their 2.05M steps;
- `random-lengths`: MemoryS13Random and MemoryS17Random at the defaults, 3 seeds, each run
  stopped 300k steps after it first reaches the goal, or at 3M steps;
- `random-lengths-long`: MemoryS17Random's seed 1 again, stopped as above or at 8M steps.

The goals at the defaults (5 seeds each, on Ray Tune) are presets: `python benchmarks/presets.py
--presets minigrid-memory-s7 minigrid-memory-s9`.

Each (task, variant, seed) job runs in a fresh one-thread subprocess and appends one line to
OUT/results.jsonl (benchmarks/jobs.py; a job whose line is there is skipped; a job stopped
midway goes on from its checkpoint in OUT/checkpoints, saved every 10 minutes): the learning curve
(mean return of the last 100 training episodes after each update, once 100 have ended, against
steps and training seconds), the return at the end and the steps and seconds at which the curve
first reaches the goal. MiniGrid's reward is 1 - 0.9 * steps / max_steps on success, 0
otherwise: a policy that guesses between the two objects scores about 0.45, one that remembers
about 0.95.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import jobs  # noqa: E402

CODES = "minigrid.wrappers:ImgObsWrapper"
"""The wrapper that leaves MiniGrid's 7x7x3 codes, the image part of its Dict observation."""
QUICK_BUDGET = 4096


@dataclass(frozen=True)
class Task:
    env_id: str
    goal: float
    """The mean training return (last 100 episodes) that counts as solved."""
    wrappers: tuple[str, ...] = (CODES,)
    """`--wrapper` values, each `module:Callable [K=V ...]`."""
    env_kwargs: tuple[str, ...] = ()
    """`--env-kwargs` values, `K=V`."""


class TurnsAndForward(gym.ActionWrapper):
    """MiniGrid with its first three actions only (turn left, turn right, forward), all a Memory
    task needs, as MarcoMeter/recurrent-ppo-truncated-bptt trains it."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.action_space = gym.spaces.Discrete(3)

    def action(self, action: Any) -> Any:
        return action  # MiniGrid's 0, 1, 2: left, right, forward


TASKS = {
    "MemoryS7": Task("minigrid:MiniGrid-MemoryS7-v0", goal=0.9),
    # Our 8x8 RGB frames of a colour to remember (envs/visual_match.py): a small uint8 grid of
    # pixels, not codes, which `image_encoder: auto` encodes as it encodes MiniGrid's.
    "VisualMatch": Task("Memory/VisualMatch-v0", goal=0.95, wrappers=()),
    # MarcoMeter's harder observation of MemoryS9: a 3x3 view as 84x84 RGB, three actions (their
    # runs also drew each episode's layout from 99 seeds; ours are unrestricted).
    "MemoryS9-rgb3x3": Task(
        "minigrid:MiniGrid-MemoryS9-v0",
        goal=0.9,
        env_kwargs=("agent_view_size=3",),
        wrappers=(
            "minigrid.wrappers:RGBImgPartialObsWrapper tile_size=28",
            CODES,
            "benchmarks.minigrid_memory:TurnsAndForward",
        ),
    ),
    # Corridors of random length (MemoryS13Random: episodes of at most 845 steps, S17Random
    # 1,445), on the 7x7 codes: no recurrent PPO result is published for them on this view.
    "MemoryS13Random": Task("minigrid:MiniGrid-MemoryS13Random-v0", goal=0.9),
    "MemoryS17Random": Task("minigrid:MiniGrid-MemoryS17Random-v0", goal=0.9),
}
MARCOMETER_S9 = (0.39, 0.47, 0.50, 0.63, 0.68, 0.69, 0.83, 0.94, 1.23, 1.98)
REFERENCES = {
    "MemoryS9-rgb3x3": (
        "MarcoMeter's LSTM PPO: 0.9 first at (10 runs; median dashed)",
        tuple(round(m * 1e6) for m in MARCOMETER_S9),
    ),
}
"""Steps at which others' runs of a task first reached its goal: MarcoMeter/recurrent-ppo-
truncated-bptt's 10 logged MemoryS9 runs (millions of steps; the mean return in its
`results/minigrid_summaries` TensorBoard logs, as ../shared/notes/field-benchmarks.md reads
them)."""
VARIANTS: dict[str, list[str]] = {
    "defaults": [],
    "flatten": ["--image-encoder", "flatten"],
    "onehot": ["--image-encoder", "onehot"],
    "embed": ["--image-encoder", "embed"],
}
"""A variant's flags over the defaults."""


@dataclass(frozen=True)
class Experiment:
    tasks: tuple[str, ...]
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    budget: int
    hold: int = 0
    """Steps a run goes on after its curve first reaches the goal before it stops (0: it trains
    the budget out)."""


EXPERIMENTS = {
    "encoders": Experiment(("MemoryS7",), ("flatten", "onehot", "embed"), (0, 1), 400_000),
    "encoders-pixels": Experiment(("VisualMatch",), ("flatten", "embed"), (0, 1, 2), 150_000),
    "pixels-s9": Experiment(("MemoryS9-rgb3x3",), ("defaults",), (0, 1, 2), 2_050_000, 300_000),
    "random-lengths": Experiment(
        ("MemoryS13Random", "MemoryS17Random"), ("defaults",), (0, 1, 2), 3_000_000, 300_000
    ),
    # The seed of `random-lengths` that had not reached the goal at 3M steps, trained again
    # further (hours on one thread: its checkpoint carries it across interruptions).
    "random-lengths-long": Experiment(
        ("MemoryS17Random",), ("defaults",), (1,), 8_000_000, 300_000
    ),
}


class Job(NamedTuple):
    task: str
    variant: str
    seed: int
    budget: int
    hold: int = 0


def job_key(line: dict[str, Any]) -> tuple[str, str, int, int, int]:
    """What makes a job the same job: a results line or a `Job._asdict()`."""
    return (line["task"], line["variant"], line["seed"], line["budget"], line.get("hold", 0))


def flags(job: Job) -> list[str]:
    """The `train.py` flags of a job."""
    task = TASKS[job.task]
    out = ["--env", task.env_id, "--seed", str(job.seed), "--device", "cpu"]
    if task.env_kwargs:
        out += ["--env-kwargs", *task.env_kwargs]
    for wrapper in task.wrappers:
        out += ["--wrapper", *wrapper.split()]
    return [*out, "--total-timesteps", str(job.budget), *VARIANTS[job.variant]]


def worker(job: Job, out: Path) -> dict[str, Any]:
    """Train one job in this process, going on from its checkpoint in OUT/checkpoints if an
    earlier run of it was stopped; its results line."""
    import torch

    torch.set_num_threads(1)
    goal = TASKS[job.task].goal
    stop = jobs.held_for(goal, job.hold) if job.hold else lambda curve: False
    steps, wall, curve = jobs.train_flags(
        flags(job), job.budget, jobs.full_window, stop, jobs.checkpoint_path(out, job)
    )
    return jobs.goal_line(job, steps, wall, curve, goal)


def describe(job: Job, line: dict[str, Any]) -> str:
    """The line printed as a job ends."""
    return jobs.describe_goal_run(f"{job.task} {job.variant} seed {job.seed}", line)


def plan(args: argparse.Namespace) -> list[Job]:
    """The jobs of the experiments asked for, seed by seed."""
    todo = []
    for name in args.experiment:
        exp = EXPERIMENTS[name]
        seeds = (0,) if args.quick else exp.seeds
        seeds = tuple(x for x in seeds if args.seeds is None or x in args.seeds)
        budget = QUICK_BUDGET if args.quick else exp.budget
        hold = min(exp.hold, budget // 2) if args.quick else exp.hold
        todo += [Job(t, v, s, budget, hold) for t in exp.tasks for v in exp.variants for s in seeds]
    return sorted(dict.fromkeys(todo), key=lambda job: job.seed)


# ---------------------------------------------------------------------------------- report ---
def table(results: list[dict[str, Any]]) -> str:
    """Per task, variant and budget: the return at the end per seed and their mean, the
    seeds at the goal, the steps to it per seed and their median, how well it was held after
    (`held`), the median seconds to it, and the speed."""
    rows = [
        "| task (budget, goal) | variant | return at the end: seeds (mean) | seeds at the goal "
        "| steps to the goal: seeds (median) | held after: updates at the goal (lowest return) "
        "| seconds to it, median | steps/s, median |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups = sorted({(x["task"], x["budget"], x["variant"]) for x in results})
    for task, budget, variant in groups:
        runs = [
            x for x in results if (x["task"], x["budget"], x["variant"]) == (task, budget, variant)
        ]
        runs.sort(key=lambda x: x["seed"])
        returns = [x["final_return"] for x in runs if x["final_return"] is not None]
        cell = " / ".join(f"{r:.3g}" for r in returns) + (
            f" ({np.mean(returns):.3g})" if returns else ""
        )
        reached = [x for x in runs if x["goal_steps"] is not None]
        steps = "-"
        if reached:
            each = " / ".join(
                "-" if x["goal_steps"] is None else jobs.kilo(x["goal_steps"]) for x in runs
            )
            steps = f"{each} ({jobs.kilo(statistics.median(x['goal_steps'] for x in reached))})"
        wall = f"{statistics.median(x['goal_wall'] for x in reached):.0f}" if reached else "-"
        sps = statistics.median(x["steps"] / x["wall"] for x in runs)
        kept = [held(x) for x in reached]
        after = "-"
        if kept:
            after = f"{np.mean([k[0] for k in kept]):.0%} ({min(k[1] for k in kept):.2f})"
        rows.append(
            f"| {task} ({until(budget, runs[0].get('hold', 0))}, {runs[0]['goal']:g}) "
            f"| {variant} | {cell} | "
            f"{len(reached)}/{len(runs)} | {steps} | {after} | {wall} | {sps:,.0f} |"
        )
    return "\n".join(rows)


def until(budget: int, hold: int) -> str:
    """A job's length as the table names it: its budget, and its stop past the goal if any."""
    if not hold:
        return jobs.kilo(budget)
    return f"{jobs.kilo(hold)} past the goal, at most {jobs.kilo(budget)}"


def held(line: dict[str, Any]) -> tuple[float, float]:
    """Of a run that reached its goal, the curve from there on: the share of its updates at the
    goal, and its lowest return (a run that keeps what it learnt: 100%, and the goal)."""
    after = [p[2] for p in line["curve"] if p[2] is not None and p[0] >= line["goal_steps"]]
    return sum(r >= line["goal"] for r in after) / len(after), min(after)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Per task, each variant's training return against steps and against training seconds
    (one line per seed), the goal dotted, and where others' runs reached it (`REFERENCES`)."""
    goals = {name: task.goal for name, task in TASKS.items()}
    jobs.plot_goal_curves(results, path, goals, "variant", list(VARIANTS), REFERENCES)


# ------------------------------------------------------------------------------------ main ---
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "minigrid",
                        help="folder of results.jsonl (the committed copy: results/minigrid)")  # fmt: skip
    parser.add_argument("--experiment", nargs="+", choices=list(EXPERIMENTS),
                        default=list(EXPERIMENTS))  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="only these of the experiments' seeds (default: all)")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1,
                        help="jobs at a time (more than 1 slows each: timings under load)")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_BUDGET} steps a job, seed 0: a smoke test")  # fmt: skip
    jobs.add_report_flags(parser)
    args = parser.parse_args(argv)
    if args.worker:
        jobs.print_result(worker(Job(**json.loads(args.worker)), args.out))
        return 0
    tasks = {task for name in args.experiment for task in EXPERIMENTS[name].tasks}
    return jobs.run_and_report(
        Path(__file__), args, lambda: plan(args), job_key, describe, table, plot,
        keep=lambda line: line["task"] in tasks,
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
