"""Success on the passive T-maze as the gap grows, for several agents at equal step budgets.

Trains each agent on `Memory/TMaze-v0` (`length` = the gap between cue and junction) for the
same number of environment steps, then evaluates it deterministically. Agents:

- `lstm`, `gru`, `peephole`: ours, with that recurrent core (`peephole`: gates that also see the
  cell, Gers & Schmidhuber 2000; about 7x slower per step than `lstm` on the CPU).
- `mlp`: ours, `rnn_type="none"`: the memoryless baseline (success 0.5 at any gap).
- `mlp-stack4`: ours, memoryless, on the last 4 observations (`FrameStackObservation`): the cue
  is out of the window for any gap >= 4, so it should stay at 0.5 too.
- `sb3-contrib`: sb3-contrib's RecurrentPPO (`MlpLstmPolicy`), same hyperparameters where the
  names match. It is slow: skipped beyond `--max-sb3-gap`.

Every (agent, gap, seed) job runs in a fresh subprocess, one after the other, so that a crash is
recorded as that job's error and the sweep goes on. Results are merged into `--out` after each
job, so an interrupted sweep resumes where it stopped: finished (agent, gap, seed) triples are
skipped (failed ones are run again). Each result records the machine (platform, cores, Python,
torch version and threads), the hyperparameters, wall time, steps/s and the step at which the
training success rate first reached 0.99.

    python benchmarks/memory_length.py --quick --plot results/memory_length_quick.png
    python benchmarks/memory_length.py --plot results/memory_length.png     # full sweep: many hours
    python benchmarks/memory_length.py --gaps 100 300 --agents lstm gru --seeds 0 1 2 3 4
    python benchmarks/memory_length.py --plot-only --out results/memory_length.json --plot a.png

Machine note: the budgets are sized for a 2-core CPU with one torch thread per job (`--threads`),
which is also how the recorded steps/s are meant to be compared; run nothing else meanwhile if
the timings matter.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `benchmarks.sb3_peer`, when run as a script
    sys.path.insert(0, str(ROOT))

from benchmarks import sb3_peer  # noqa: E402

ENV_ID = "Memory/TMaze-v0"
STACK4 = "benchmarks.memory_length:stack4"
"""The frame-stacking wrapper, by the `module:callable` name `RecurrentPPO(wrappers=...)` takes.
It imports `benchmarks.memory_length`, so the repository root must be on `sys.path`: the
workers run as `python -m benchmarks.memory_length` from the root for that reason."""


RECIPE = ROOT / "configs" / "tmaze-1000.yaml"
"""The long-gap recipe, stated once: the preset's hyperparameters, rescaled to the gap."""


def recipe(length: int) -> dict[str, Any]:
    """Our hyperparameters at gap `length`: those of `configs/tmaze-1000.yaml` (see its comments),
    with the rollout and minibatch rescaled to the gap.

    `n_steps = length + 2` is one whole episode cycle per rollout under Gymnasium's NEXT_STEP
    autoreset (the episode's `length + 1` steps and the reset step), so backpropagation through
    time always spans cue to choice; a minibatch holds as many such columns as the preset's.
    """
    from agent.run.cli import load_preset

    preset = load_preset(RECIPE)
    config = {k: v for k, v in preset.items() if k not in ("env", "env_kwargs", "total_timesteps")}
    columns = config["batch_size"] // config["n_steps"]
    cycle = length + 2
    return {**config, "n_steps": cycle, "batch_size": columns * cycle}


EPISODES_PER_JOB = 3_000
"""The full-mode budget trains on about this many episode cycles per job (see `budget`)."""
MIN_BUDGET = 100_000
QUICK_BUDGET = 60_000

AGENTS = (
    "lstm", "gru", "mingru", "ffm", "ffm-eps1e-8", "peephole", "mlp", "mlp-stack4", "sb3-contrib",
)  # fmt: skip
OURS: dict[str, dict[str, Any]] = {
    "lstm": {"rnn_type": "lstm"},
    "gru": {"rnn_type": "gru"},
    "mingru": {"rnn_type": "mingru"},
    "ffm": {"rnn_type": "ffm"},
    "ffm-eps1e-8": {"rnn_type": "ffm", "adam_eps": 1e-8},  # the recipe's 1e-12 lost gaps 300+
    "peephole": {"rnn_type": "peephole"},
    "mlp": {"rnn_type": "none"},
    "mlp-stack4": {"rnn_type": "none", "wrappers": [STACK4]},
}
"""What each of our agents adds to `recipe`: the recurrent core, and per-env wrappers."""

QUICK = {"gaps": [10, 30], "agents": ["lstm", "mlp", "mlp-stack4", "sb3-contrib"], "seeds": [0]}
QUICK_MAX_SB3_GAP = 10
EVAL_ENVS = 8


def budget(length: int, scale: float = 1.0) -> int:
    """Environment steps per job at gap `length`: `EPISODES_PER_JOB` episode cycles of
    `length + 2` steps (the same number of PPO updates at every gap), at least `MIN_BUDGET`,
    times `scale`. That is 100k steps up to gap 31, 306k at 100, 906k at 300 and 3.006M at 1000. `learn` finishes its last rollout, so slightly more steps are trained: the
    result's `steps` is what was."""
    return max(1, round(max(MIN_BUDGET, EPISODES_PER_JOB * (length + 2)) * scale))


def stack4(env: Any) -> Any:
    """The single env with its last 4 observations stacked (shape (4, obs_dim))."""
    from gymnasium.wrappers import FrameStackObservation

    return FrameStackObservation(env, 4)


# ------------------------------------------------------------------------------- one job ---


def run_job(agent: str, gap: int, seed: int, steps: int, eval_episodes: int) -> dict[str, Any]:
    """Train `agent` at gap `gap` for `steps` environment steps, then evaluate it.

    Returns {"steps", "wall", "sps", "success", "eval_return", "eval_wall", "solved_at",
    "final_train_success", "curve", "config"}: `success` is the deterministic success rate over
    `eval_episodes` episodes; `solved_at` the first step at which the training success over the
    last 100 episodes reached 0.99 (None if never; training goes on to the full budget
    regardless); `curve` pairs (steps, training success) along the run.
    """
    if agent == "sb3-contrib":
        return _run_sb3(gap, seed, steps, eval_episodes)
    if agent not in OURS:
        raise ValueError(f"unknown agent {agent!r}; choose from {', '.join(AGENTS)}")
    return _run_ours(agent, gap, seed, steps, eval_episodes)


class SuccessWatch:
    """Follows the training success rate (last 100 episodes) after every update: the first step
    where it reached 0.99, and a curve of it."""

    def __init__(self) -> None:
        self.solved_at: int | None = None
        self.curve: list[tuple[int, float]] = []

    def update(self, steps: int, success: float | None, episodes: int) -> None:
        if success is None:
            return
        self.curve.append((steps, round(success, 4)))
        if self.solved_at is None and episodes >= 100 and success >= 0.99:
            self.solved_at = steps

    def summary(self) -> dict[str, Any]:
        """What a job's result takes from the watch: `solved_at`, `final_train_success`, and
        `curve` (thinned)."""
        return {
            "solved_at": self.solved_at,
            "final_train_success": self.curve[-1][1] if self.curve else None,
            "curve": self.thinned_curve(),
        }

    def thinned_curve(self, points: int = 100) -> list[tuple[int, float]]:
        """At most about `points` of the curve, evenly spaced, always with the last one."""
        every = max(1, math.ceil(len(self.curve) / points))
        kept = self.curve[::every]
        if self.curve and kept[-1] != self.curve[-1]:
            kept.append(self.curve[-1])
        return kept


def _run_ours(agent: str, gap: int, seed: int, steps: int, eval_episodes: int) -> dict[str, Any]:
    import envs  # noqa: F401
    from agent import RecurrentPPO
    from agent.run.evaluation import evaluate

    options = dict(OURS[agent])
    wrappers = options.pop("wrappers", [])
    config = {**recipe(gap), **options}
    model = RecurrentPPO(
        ENV_ID, env_kwargs={"length": gap}, wrappers=wrappers, seed=seed, device="cpu", **config
    )
    watch = SuccessWatch()

    def follow(m: RecurrentPPO) -> bool:
        watch.update(m.num_timesteps, m.logs.get("rollout/success_rate"), len(m.successes))
        return True  # never stop early: every agent gets the whole budget

    start = time.perf_counter()
    model.learn(steps, callback=follow)
    wall = time.perf_counter() - start
    start = time.perf_counter()
    # evaluate() does not read the model's env_spec: the wrappers must be passed again.
    result = evaluate(
        model,
        ENV_ID,
        {"length": gap},
        wrappers=model.env_spec["wrappers"],
        n_episodes=eval_episodes,
        seed=seed + 1000,
        deterministic=True,
        n_envs=EVAL_ENVS,
    )
    eval_wall = time.perf_counter() - start
    model.close()
    return {
        "steps": model.num_timesteps,
        "wall": wall,
        "sps": model.num_timesteps / wall,
        "success": result["success_rate"],
        "eval_return": result["mean_return"],
        "eval_wall": eval_wall,
        **watch.summary(),
        "config": {**config, "wrappers": wrappers},
    }


SB3_RECIPE = (
    "n_envs", "n_epochs", "learning_rate", "gamma", "gae_lambda", "normalize_advantage",
    "lstm_hidden_size", "adam_eps",
)  # fmt: skip
"""What sb3-contrib takes from `recipe` as it is (the rollout and minibatch are rescaled)."""


def sb3_config(gap: int) -> dict[str, Any]:
    """sb3-contrib's hyperparameters at gap `gap`: `recipe`'s where the names match.

    One deliberate difference: SB3's vector env resets in the same step, so an episode cycle is
    `gap + 1` steps there, not `gap + 2`. With `n_steps = gap + 2` the cycle would drift against
    the rollout and most rollouts would cut backpropagation between cue and choice (sb3-contrib
    carries the state across rollouts but not the gradient), so `n_steps` is the cycle here too.
    No chrono init: sb3-contrib has none.
    """
    ours = recipe(gap)
    cycle = gap + 1
    return sb3_peer.sb3_settings(
        {
            **{k: ours[k] for k in SB3_RECIPE},
            "n_steps": cycle,
            "batch_size": ours["batch_size"] // ours["n_steps"] * cycle,
            "net_arch": [64],  # our default heads
        }
    )


def _run_sb3(gap: int, seed: int, steps: int, eval_episodes: int) -> dict[str, Any]:
    import numpy as np

    config = sb3_config(gap)
    watch = SuccessWatch()

    def follow(update: sb3_peer.Update) -> None:
        # Success read from the episode returns, +1 or -1, as these results were measured.
        if update.returns:
            rate = float(np.mean(np.asarray(update.returns) > 0))
            watch.update(update.steps, rate, len(update.returns))

    env_kwargs = {"length": gap}
    trained = sb3_peer.train(
        ENV_ID, config, seed=seed, steps=steps, env_kwargs=env_kwargs, after_update=follow
    )
    result = sb3_peer.evaluate(
        trained, ENV_ID, episodes=eval_episodes, n_envs=EVAL_ENVS, seed=seed + 1000,
        env_kwargs=env_kwargs,
    )  # fmt: skip
    trained.env.close()
    returns = np.asarray(result.returns)
    return {
        "steps": trained.model.num_timesteps,
        "wall": trained.wall,
        "sps": trained.model.num_timesteps / trained.wall,
        "success": float(np.mean(returns > 0)),
        "eval_return": float(np.mean(returns)),
        "eval_wall": result.wall,
        **watch.summary(),
        "config": config,
    }


def machine(threads: int) -> dict[str, Any]:
    """Where a result was measured."""
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": threads,
    }


def worker(job: dict[str, Any]) -> None:
    """The subprocess side: run one job and print it as a `RESULT {json}` line."""
    import torch

    torch.set_num_threads(job["threads"])
    out = run_job(job["agent"], job["gap"], job["seed"], job["budget"], job["eval_episodes"])
    out["machine"] = machine(job["threads"])
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out), flush=True)


def spawn(job: dict[str, Any]) -> dict[str, Any]:
    """Run `job` in a fresh interpreter; returns the job with its results, or with an `error`
    (the last lines of the worker's stderr) when it failed."""
    cmd = [sys.executable, "-m", "benchmarks.memory_length", "--worker", json.dumps(job)]
    env = {**os.environ, "OMP_NUM_THREADS": str(job["threads"])}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**job, **json.loads(line[len("RESULT ") :])}
    tail = proc.stderr.strip().splitlines()[-5:] or [f"exit code {proc.returncode}, no output"]
    return {**job, "error": "\n".join(tail)}


# ------------------------------------------------------------------------- results file ---

Key = tuple[str, int, int]


def key(result: dict[str, Any]) -> Key:
    return (result["agent"], int(result["gap"]), int(result["seed"]))


def load_results(path: Path) -> list[dict[str, Any]]:
    """The results stored in `path` (an empty list when it does not exist)."""
    if not path.exists():
        return []
    return list(json.loads(path.read_text())["results"])


def save_results(path: Path, results: list[dict[str, Any]]) -> None:
    """Write `results` atomically, so an interrupted sweep never leaves a broken file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    ordered = sorted(results, key=lambda r: (AGENTS.index(r["agent"]), r["gap"], r["seed"]))
    tmp.write_text(json.dumps({"env": ENV_ID, "results": ordered}, indent=1) + "\n")
    tmp.replace(path)


def merge(results: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    """`results` with `new` in place of any earlier result of the same (agent, gap, seed)."""
    return [r for r in results if key(r) != key(new)] + [new]


def pending(jobs: Iterable[dict[str, Any]], done: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The jobs whose (agent, gap, seed) has no successful result in `done`."""
    finished = {key(r) for r in done if "error" not in r}
    return [job for job in jobs if key(job) not in finished]


# ------------------------------------------------------------------------------ reporting ---


def summarise(results: list[dict[str, Any]]) -> dict[str, dict[int, list[float]]]:
    """{agent: {gap: [success of each seed]}} over the successful results."""
    table: dict[str, dict[int, list[float]]] = {}
    for r in results:
        if "error" not in r and r.get("success") is not None:
            table.setdefault(r["agent"], {}).setdefault(int(r["gap"]), []).append(r["success"])
    return table


def format_table(results: list[dict[str, Any]]) -> str:
    """Rows agents, columns gaps, cells "mean success (n seeds)", with failed jobs counted."""
    table = summarise(results)
    errors: dict[tuple[str, int], int] = {}
    for r in results:
        if "error" in r:
            errors[(r["agent"], int(r["gap"]))] = errors.get((r["agent"], int(r["gap"])), 0) + 1
    agents = [a for a in AGENTS if a in table or any(k[0] == a for k in errors)]
    gaps = sorted({int(r["gap"]) for r in results})
    header = f"{'agent':12s}" + "".join(f"{'gap ' + str(g):>18s}" for g in gaps)
    lines = [header]
    for a in agents:
        cells = []
        for g in gaps:
            values = table.get(a, {}).get(g, [])
            cell = f"{sum(values) / len(values):.2f} ({len(values)})" if values else "-"
            if errors.get((a, g)):
                cell += f" {errors[(a, g)]} err"
            cells.append(f"{cell:>18s}")
        lines.append(f"{a:12s}" + "".join(cells))
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Success against gap (log x), one line per agent: the mean over seeds, with the min-max
    range as a band; chance (0.5) dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    table = summarise(results)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for agent in (a for a in AGENTS if a in table):
        gaps = sorted(table[agent])
        values = [table[agent][g] for g in gaps]
        mean = [sum(v) / len(v) for v in values]
        (line,) = ax.plot(gaps, mean, marker="o", label=agent)
        ax.fill_between(
            gaps,
            [min(v) for v in values],
            [max(v) for v in values],
            color=line.get_color(),
            alpha=0.2,
        )
    ax.set_xscale("log")
    all_gaps = sorted({g for gaps in table.values() for g in gaps})
    ax.set_xticks(all_gaps, [str(g) for g in all_gaps])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("gap (T-maze corridor length)")
    ax.set_ylabel("evaluation success rate")
    _finish(
        fig, ax, "Passive T-maze: success at equal step budgets (band: min-max over seeds)", path
    )


def plot_curves(results: list[dict[str, Any]], gap: int, path: Path) -> None:
    """Training success (last 100 episodes) against steps at one gap, one line per agent: the
    mean over seeds on a common grid, with the min-max range as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for agent in AGENTS:
        curves = [
            np.asarray(r["curve"], dtype=float)
            for r in results
            if r["agent"] == agent and r["gap"] == gap and "error" not in r and r["curve"]
        ]
        if not curves:
            continue
        grid = np.linspace(0.0, min(c[-1, 0] for c in curves), 200)
        ys = np.stack([np.interp(grid, c[:, 0], c[:, 1]) for c in curves])
        (line,) = ax.plot(grid, ys.mean(0), label=f"{agent} ({len(curves)} seeds)")
        ax.fill_between(grid, ys.min(0), ys.max(0), color=line.get_color(), alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("training success rate (last 100 episodes)")
    _finish(fig, ax, f"Passive T-maze, gap {gap}: learning curves (band: min-max over seeds)", path)


def _finish(fig: Any, ax: Any, title: str, path: Path) -> None:
    """The parts both plots share: a success axis with chance (0.5) dashed, title, legend, file."""
    import matplotlib.pyplot as plt

    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_ylim(0.0, 1.05)
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -------------------------------------------------------------------------------- the CLI ---


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaps", type=int, nargs="+", help="default: 10 30 100 300 1000")
    parser.add_argument("--agents", nargs="+", choices=AGENTS, help="default: all")
    parser.add_argument("--seeds", type=int, nargs="+", help="default: 0 1 2")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiplies every budget")
    parser.add_argument("--eval-episodes", type=int, default=200)
    parser.add_argument(
        "--max-sb3-gap", type=int, help="skip sb3-contrib above this gap (default 100; 10 quick)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="results JSON, merged and resumed (default results/memory_length.json, "
        "results/memory_length_quick.json with --quick)",
    )
    parser.add_argument("--plot", type=Path, help="write the success-vs-gap plot here")
    parser.add_argument(
        "--plot-curves",
        nargs=2,
        metavar=("GAP", "PNG"),
        help="also write the learning curves at GAP (e.g. 1000 curves.png)",
    )
    parser.add_argument("--plot-only", action="store_true", help="table and plot from --out")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"gaps 10 30, agents lstm mlp mlp-stack4 (sb3-contrib at 10), seed 0, "
        f"{QUICK_BUDGET // 1000}k steps: a few minutes",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else {"gaps": [10, 30, 100, 300, 1000], "agents": list(AGENTS)}
    args.gaps = args.gaps or preset["gaps"]
    args.agents = args.agents or preset["agents"]
    args.seeds = args.seeds if args.seeds is not None else preset.get("seeds", [0, 1, 2])
    if args.max_sb3_gap is None:
        args.max_sb3_gap = QUICK_MAX_SB3_GAP if args.quick else 100
    if args.out is None:
        name = "memory_length_quick.json" if args.quick else "memory_length.json"
        args.out = ROOT / "results" / name
    if min(args.gaps) < 1 or args.eval_episodes < 1 or args.budget_scale <= 0:
        parser.error("gaps and --eval-episodes must be positive, --budget-scale > 0")
    return args


def make_jobs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The (agent, gap, seed) jobs the arguments ask for, sb3-contrib's above
    `--max-sb3-gap` left out with a note."""
    jobs = []
    skipped = [g for g in args.gaps if g > args.max_sb3_gap]
    if "sb3-contrib" in args.agents and skipped:
        print(
            f"note: sb3-contrib skipped at gap {', '.join(map(str, skipped))} "
            f"(> --max-sb3-gap {args.max_sb3_gap}: too slow there)"
        )
    for gap in args.gaps:
        steps = QUICK_BUDGET * args.budget_scale if args.quick else budget(gap, args.budget_scale)
        for agent in args.agents:
            if agent == "sb3-contrib" and gap > args.max_sb3_gap:
                continue
            for seed in args.seeds:
                jobs.append(
                    {
                        "agent": agent,
                        "gap": gap,
                        "seed": seed,
                        "budget": max(1, round(steps)),
                        "eval_episodes": args.eval_episodes,
                        "threads": args.threads,
                    }
                )
    return jobs


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return
    results = load_results(args.out)
    if not args.plot_only:
        jobs = make_jobs(args)
        todo = pending(jobs, results)
        print(f"{len(jobs) - len(todo)} of {len(jobs)} jobs already in {args.out}")
        for old in results:
            want = next((j["budget"] for j in jobs if key(j) == key(old)), None)
            if want is not None and "error" not in old and old["budget"] != want:
                print(f"note: kept {key(old)} trained for {old['budget']} steps, not {want}")
        start = time.perf_counter()
        for i, job in enumerate(todo, 1):
            print(
                f"[{i}/{len(todo)}] {job['agent']} gap {job['gap']} seed {job['seed']}: "
                f"{job['budget']} steps ...",
                end=" ",
                flush=True,
            )
            result = spawn(job)
            results = merge(results, result)
            save_results(args.out, results)
            if "error" in result:
                print(f"FAILED: {result['error'].splitlines()[-1]}", flush=True)
                continue
            solved = result["solved_at"]
            print(
                f"success {result['success']:.2f}, {result['wall']:.0f} s, "
                f"{result['sps']:.0f} steps/s, "
                + (f"train success 0.99 at step {solved}" if solved else "train success < 0.99"),
                flush=True,
            )
        if todo:
            print(f"sweep: {time.perf_counter() - start:.0f} s")
    print(format_table(results))
    if args.plot:
        plot(results, args.plot)
        print(f"plot: {args.plot}")
    if args.plot_curves:
        gap, png = int(args.plot_curves[0]), Path(args.plot_curves[1])
        plot_curves(results, gap, png)
        print(f"learning curves: {png}")


if __name__ == "__main__":
    main()
