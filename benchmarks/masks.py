"""Action masks with memory, side by side (issue 30): ours with masks and without, against
sb3-contrib's `MaskablePPO` (masks, no memory) and `RecurrentPPO` (memory, no masks).

    python benchmarks/masks.py --out runs/masks                  # everything, resumable
    python benchmarks/masks.py --out runs/masks --tasks cards    # one task
    python benchmarks/masks.py --out results/masks --table --plot results/masks/masks.png
    python benchmarks/masks.py --quick --out /tmp/masks_quick    # the pipeline, in a minute

The tasks: `Memory/CardMatch-v0` (ours, envs/cards.py: masks from its `action_masks()`) at its
preset `configs/card-match.yaml`, and `TaxiDestination-v0`, Gymnasium's Taxi with its own masks
(`info["action_mask"]`) and the destination shown at the first step only (benchmarks/mask_envs.py),
at `configs/taxi-destination.yaml`. The agents, each at the task's preset, 3 seeds:

- `ours`: the preset as `train.py --config PRESET` trains it (masks found with no flag);
- `ours-unmasked`: the same with `--wrapper benchmarks.mask_envs:HideMasks`, which hides them;
- `maskable-ppo`: sb3-contrib's `MaskablePPO` (`MlpPolicy`: no memory) with the masks (the env's
  `action_masks()`, Taxi's through sb3-contrib's `ActionMasker`);
- `recurrent-ppo`: sb3-contrib's `RecurrentPPO` (`MlpLstmPolicy`), which has no masks.

sb3-contrib's agents take the preset's settings through `sb3_peer.sb3_settings`, with our
network's sizes (an LSTM of 128 units, heads of 64, where sb3-contrib's defaults are 256 and
64 x 64); what has no counterpart there (`forget_bias_init`) keeps sb3-contrib's default, and the
table says so. Without masks an illegal action is the env's to punish: CardMatch ends the episode,
Taxi costs 10.

Each (task, agent, seed) job runs in a fresh one-thread subprocess and appends one line to
OUT/results.jsonl (benchmarks/jobs.py; a job whose line is there is skipped): the learning curve
(mean return of the last 100 training episodes after each update, once 100 have ended, against
steps and training seconds), the return at the budget (that mean at the last update: the stochastic policy each
agent trains, scored the same way on every side) and the steps and seconds at which the curve
first reaches the task's goal.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import jobs, sb3_peer  # noqa: E402

HIDE = "benchmarks.mask_envs:HideMasks"
"""The wrapper of `ours-unmasked`."""
OUR_NETWORK = {"lstm_hidden_size": 128, "net_arch": [64]}
"""Our default network's sizes, given to sb3-contrib's agents where its defaults differ."""
NO_COUNTERPART = ("forget_bias_init",)
"""Preset settings sb3-contrib has no counterpart for: its agents keep their default."""
QUICK_BUDGET = 2048


@dataclass(frozen=True)
class Task:
    env_id: str
    preset: str
    """A name in configs/: the settings and budget of every agent."""
    goal: float
    """The mean training return that counts as solved."""
    optimal: float
    memoryless: str
    """The best return without memory, as the env's docs give it."""
    masks_fn: str | None = None
    """`module:function` giving an env's masks for sb3-contrib's `ActionMasker`; None: the env's
    `action_masks()` method, which `MaskablePPO` finds itself."""


TASKS = {
    "cards": Task("Memory/CardMatch-v0", "card-match", goal=0.95, optimal=1.0, memoryless="0.4"),
    "taxi": Task(
        "benchmarks.mask_envs:TaxiDestination-v0", "taxi-destination", goal=4.0, optimal=7.93,
        memoryless="not known", masks_fn="benchmarks.mask_envs:taxi_masks",
    ),
}  # fmt: skip
AGENTS = ("ours", "ours-unmasked", "maskable-ppo", "recurrent-ppo")


class Job(NamedTuple):
    task: str
    agent: str
    seed: int
    budget: int
    """Steps of training."""


def job_key(line: dict[str, Any]) -> tuple[str, str, int, int]:
    """What makes a job the same job: a results line or a `Job._asdict()`."""
    return (line["task"], line["agent"], line["seed"], line["budget"])


def preset_budget(task: Task) -> int:
    from agent.run.cli import load_preset, preset_path

    return int(load_preset(preset_path(task.preset))["total_timesteps"])


# ----------------------------------------------------------------------------------- ours ---
def train_ours(task: Task, job: Job) -> tuple[int, float, jobs.Curve, dict[str, Any]]:
    """`train.py --config PRESET --seed SEED --total-timesteps BUDGET --device cpu` (with
    `--wrapper HIDE` for `ours-unmasked`), trained here with a record after every update."""
    flags = ["--config", task.preset, "--seed", str(job.seed), "--device", "cpu"]
    flags += ["--total-timesteps", str(job.budget)]
    if job.agent == "ours-unmasked":
        flags += ["--wrapper", HIDE]
    return (*jobs.train_flags(flags, job.budget, jobs.full_window), {})


# ---------------------------------------------------------------------------- sb3-contrib ---
def sb3_model_settings(task: Task, agent: str) -> tuple[dict[str, Any], list[str]]:
    """The preset's settings over our defaults (every one sb3-contrib shares, so that nothing the
    preset leaves out falls to sb3-contrib's other defaults), by sb3-contrib's names
    (`sb3_peer.sb3_settings`), with our network's sizes; for `MaskablePPO` without the LSTM's; `normalize_obs` and `normalize_reward` as
    `VecNormalize`'s keyword arguments (under `normalize`). Returns (settings, the preset's settings left at
    sb3-contrib's default)."""
    from agent.config import PPOConfig
    from agent.run.cli import load_preset, preset_path

    preset = load_preset(preset_path(task.preset))
    ours = {k: v for k, v in preset.items() if k not in ("env", "env_kwargs", "total_timesteps")}
    left = sorted(k for k in ours if k in NO_COUNTERPART)
    shared = {k: getattr(PPOConfig(), k) for k in (*sb3_peer.SAME_NAMES, "learning_rate")}
    shared.pop("normalize_obs")  # below, with normalize_reward
    ours = {
        **shared, **OUR_NETWORK, "adam_eps": PPOConfig().adam_eps,
        **{k: v for k, v in ours.items() if k not in NO_COUNTERPART},
    }  # fmt: skip
    normalize = {
        "norm_obs": ours.pop("normalize_obs", False),
        "norm_reward": ours.pop("normalize_reward", False),
    }
    settings = sb3_peer.sb3_settings(ours)
    if any(normalize.values()):
        settings["normalize"] = {**normalize, "gamma": ours.get("gamma", 0.99)}
    if agent == "maskable-ppo":
        policy = settings["policy_kwargs"]
        for key in ("enable_critic_lstm", "lstm_hidden_size"):
            policy.pop(key, None)
    return settings, left


def train_sb3(task: Task, job: Job) -> tuple[int, float, jobs.Curve, dict[str, Any]]:
    """sb3-contrib's agent on the preset's `n_envs` copies of the task's env, with a record after
    every update."""
    from sb3_contrib import MaskablePPO, RecurrentPPO
    from sb3_contrib.common.wrappers import ActionMasker
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from agent.environment.wrappers import load_callable

    settings, left = sb3_model_settings(task, job.agent)
    n_envs, normalize = settings.pop("n_envs", 8), settings.pop("normalize", None)
    wrapper: dict[str, Any] = {}
    if job.agent == "maskable-ppo" and task.masks_fn:
        wrapper = {
            "wrapper_class": ActionMasker,
            "wrapper_kwargs": {"action_mask_fn": load_callable(task.masks_fn)},
        }
    vec_env = make_vec_env(task.env_id, n_envs=n_envs, seed=job.seed, **wrapper)
    if normalize:  # as ours: observations and rewards by running statistics
        vec_env = VecNormalize(vec_env, **normalize)
    if job.agent == "maskable-ppo":
        model = MaskablePPO("MlpPolicy", vec_env, device="cpu", seed=job.seed, **settings)
    else:
        model = RecurrentPPO("MlpLstmPolicy", vec_env, device="cpu", seed=job.seed, **settings)
    curve = jobs.CurveRecorder(job.budget)

    def record(update: sb3_peer.Update) -> None:
        curve.add(update.steps, update.seconds, jobs.full_window(update.returns))

    start = time.perf_counter()
    model.learn(job.budget, callback=sb3_peer.each_update(record))
    wall = time.perf_counter() - start
    vec_env.close()
    return model.num_timesteps, wall, curve.points, {"left_at_sb3_default": left}


# ----------------------------------------------------------------------------------- jobs ---
def worker(job: Job) -> dict[str, Any]:
    """Train one job in this process; its results line."""
    import torch

    torch.set_num_threads(1)
    import envs  # noqa: F401  (registers Memory/*)
    from benchmarks import mask_envs  # noqa: F401  (registers TaxiDestination-v0)

    task = TASKS[job.task]
    train = train_ours if job.agent.startswith("ours") else train_sb3
    steps, wall, curve, extra = train(task, job)
    return {**jobs.goal_line(job, steps, wall, curve, task.goal), **extra}


def describe(job: Job, line: dict[str, Any]) -> str:
    """The line printed as a job ends."""
    return jobs.describe_goal_run(f"{job.task} {job.agent} seed {job.seed}", line)


def plan(args: argparse.Namespace) -> list[Job]:
    """The jobs asked for, seed by seed (every task and agent gets its first seed first)."""
    todo = []
    for name in args.tasks:
        budget = QUICK_BUDGET if args.quick else preset_budget(TASKS[name])
        todo += [Job(name, a, s, budget) for a in args.agents for s in args.seeds]
    return sorted(todo, key=lambda job: job.seed)


# ---------------------------------------------------------------------------------- report ---
def table(results: list[dict[str, Any]]) -> str:
    """Per task and agent: the return at the budget over seeds (mean ± std, 95% t-interval),
    the seeds that reached the goal, the median steps and seconds to it over those, and the
    median training time and speed."""
    from agent.report.stats import t_interval

    rows = [
        "| task (budget, goal) | agent | return at the budget, mean ± std (95% t-interval) | "
        "seeds at the goal | steps to the goal, median | seconds to the goal, median | "
        "training per run, median (steps/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, task in TASKS.items():
        lines = [x for x in results if x["task"] == name]
        for agent in AGENTS:
            runs = sorted((x for x in lines if x["agent"] == agent), key=lambda x: x["seed"])
            if not runs:
                continue
            returns = [x["final_return"] for x in runs if x["final_return"] is not None]
            cell = "no episode ended"
            if returns:
                cell = f"{np.mean(returns):.3g} ± {np.std(returns, ddof=1) if len(returns) > 1 else 0:.2g}"
                low, high = t_interval(returns)
                if len(returns) > 1:
                    cell += f" ({low:.3g} to {high:.3g})"
                cell += f", {len(returns)} seed{'s' if len(returns) > 1 else ''}"
            reached = [x for x in runs if x["goal_steps"] is not None]
            steps = (
                jobs.kilo(statistics.median(x["goal_steps"] for x in reached)) if reached else "-"
            )
            wall = f"{statistics.median(x['goal_wall'] for x in reached):.0f}" if reached else "-"
            took = statistics.median(x["wall"] for x in runs)
            sps = statistics.median(x["steps"] / x["wall"] for x in runs)
            label = agent + (" *" if any(x.get("left_at_sb3_default") for x in runs) else "")
            head = f"{name} ({jobs.kilo(runs[0]['budget'])}, {task.goal:g})"
            rows.append(
                f"| {head} | {label} | {cell} | {len(reached)}/{len(runs)} | {steps} | {wall} | "
                f"{took:.0f} s ({sps:,.0f}) |"
            )
    left = sorted({k for x in results for k in x.get("left_at_sb3_default", [])})
    if left:
        rows.append(f"\n* at sb3-contrib's default, no counterpart: {', '.join(left)}")
    return "\n".join(rows)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Per task, each agent's training return against steps and against training seconds (one
    line per seed), the goal dotted."""
    goals = {name: task.goal for name, task in TASKS.items()}
    jobs.plot_goal_curves(results, path, goals, "agent", list(AGENTS))


# ------------------------------------------------------------------------------------ main ---
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "masks",
                        help="folder of results.jsonl (the committed copy: results/masks)")  # fmt: skip
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--agents", nargs="+", choices=AGENTS, default=list(AGENTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1,
                        help="jobs at a time (more than 1 slows each: timings under load)")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_BUDGET} steps a job, seed 0: a smoke test")  # fmt: skip
    jobs.add_report_flags(parser)
    args = parser.parse_args(argv)
    if args.worker:
        jobs.print_result(worker(Job(**json.loads(args.worker))))
        return 0
    if args.quick:
        args.seeds = [0]
    return jobs.run_and_report(
        Path(__file__), args, lambda: plan(args), job_key, describe, table, plot,
        keep=lambda line: line["task"] in args.tasks,
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
