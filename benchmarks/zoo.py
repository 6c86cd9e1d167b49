"""rl-baselines3-zoo's recurrent PPO entries, trained with the zoo's settings by us and by
sb3-contrib (issue 29).

    python benchmarks/zoo.py --out runs/zoo                         # everything, resumable
    python benchmarks/zoo.py --out runs/zoo --entries CartPoleNoVel-v1 Acrobot-v1
    python benchmarks/zoo.py --out runs/zoo --only ours             # our side only
    python benchmarks/zoo.py --out runs/zoo --table --plot results/zoo/zoo.png
    python benchmarks/zoo.py --quick --out /tmp/zoo_quick           # the pipeline, in minutes

The entries are those of the zoo's `hyperparams/ppo_lstm.yml` (tests/data/ppo_lstm.yml) whose envs
install here. Ours trains each at the entry's own budget (`n_timesteps`), seeds 0-2, through the
path of `train.py --config tests/data/ppo_lstm.yml --env ID` (`resolve_settings`, then
`RecurrentPPO`). sb3-contrib trains the same entry as rl_zoo3 hands it over (`sb3_settings`:
`n_envs` copies, `VecNormalize(gamma=gamma)` for `normalize: true`, `lin_` values as SB3's linear
schedules, the rest as `RecurrentPPO`'s keyword arguments), one seed, at a comparison budget B:
its runs take hours at 1M steps here. B is the entry's own budget where the entry anneals its
learning rate or clip range over that budget (CartPoleNoVel-v1, 100k), else `--compare-at`
(200k). Our return at B is measured inside our full run, by an evaluation at the first update at
or past B: with a constant learning rate nothing in our training depends on the total budget, so
that model is the one a B-step run would end with (tests/test_zoo_benchmark.py checks it).

Each (entry, side, seed) job runs in a fresh subprocess with one torch thread and appends one
JSON line to OUT/results.jsonl: the training wall time (evaluations not in it), the learning
curve (mean return of the last 100 training episodes against steps and seconds), the return of
`--episodes` deterministic evaluation episodes of the final model and of the model at B. A job
whose line is there is skipped. `--table` only reports; `--jobs 1` (the default) runs one job at
a time, as the timings need on a 2-core machine.

The envs: `CartPoleNoVel-v1`, `MountainCarNoVel-v0` and `LunarLanderNoVel-v2` are the zoo's
velocity-masked envs, registered by benchmarks/zoo_envs.py with the zoo's semantics on both
sides: the velocity entries are zeroed, the observation keeps its shape (our own
`Memory/CartPoleNoVel-v0` removes them instead). `LunarLanderNoVel-v2` masks Gymnasium's
`LunarLander-v3` (the zoo's v2 is old gym's, which Gymnasium 1.x no longer makes) and needs
Box2D (`pip install -e ".[zoo]"`); without it the entry is skipped with a printed line.
`Acrobot-v1` is the plain env, full observation, as the zoo's entry is.

Left out: BipedalWalker-v3 (5M steps, out of this machine's budget) and BipedalWalkerHardcore-v3
(100M, and a critic without an LSTM that we do not offer); the MuJoCo entries (`Ant-v3`,
`HalfCheetah-v3`, ...), whose `-v3` ids need mujoco-py, which does not install here; the PyBullet
ones (pybullet_envs is gone from current PyBullet); PendulumNoVel-v1, MountainCarContinuousNoVel-v0
and CarRacing-v0 use gSDE, which we do not implement; LunarLanderContinuousNoVel-v2 is left out
to keep the budget (its env is registered). The Atari entry (10M steps) is out of budget.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import jobs, sb3_peer  # noqa: E402

if TYPE_CHECKING:
    from agent.run.cli import Settings

ZOO_FILE = ROOT / "tests" / "data" / "ppo_lstm.yml"
"""rl-baselines3-zoo's `hyperparams/ppo_lstm.yml`, unchanged below its first line."""
ENVS = "benchmarks.zoo_envs"
"""The module that registers the zoo's `NoVel` ids."""


@dataclass(frozen=True)
class Entry:
    """One entry of the zoo file, and how it is made here."""

    env_id: str
    """What both sides make: `module:id` where a module must be imported to register it."""
    requires: str | None = None
    """A module the env needs; without it the entry is skipped with a printed line."""


ENTRIES: dict[str, Entry] = {
    "CartPoleNoVel-v1": Entry(f"{ENVS}:CartPoleNoVel-v1"),
    "MountainCarNoVel-v0": Entry(f"{ENVS}:MountainCarNoVel-v0"),
    "Acrobot-v1": Entry("Acrobot-v1"),
    "LunarLanderNoVel-v2": Entry(f"{ENVS}:LunarLanderNoVel-v2", requires="Box2D"),
}
"""The zoo's entries in scope, by their name in the zoo file."""

COMPARE_AT = 200_000
"""B, `--compare-at`: the budget of sb3-contrib's runs for entries that train longer."""
SB3_EVAL_ENVS = 10
"""Copies sb3-contrib's evaluation steps together (`evaluate_policy` deals the episodes out)."""
QUICK_BUDGET = 1024
"""`--quick`: the steps of every job; B is half of it where the entry allows."""


def zoo_entry(name: str) -> dict[str, Any]:
    """The settings of entry `name` in the zoo file, as written there."""
    from agent.run.cli import read_yaml

    return read_yaml(ZOO_FILE, "zoo file")[name]


def anneals(entry: dict[str, Any]) -> bool:
    """Whether the entry anneals its learning rate or clip range over its budget (`lin_`): then
    a shorter run is not the beginning of a longer one, and the sides compare at full budget."""
    return any(
        str(entry.get(key, "")).startswith("lin_") for key in ("learning_rate", "clip_range")
    )


# ----------------------------------------------------------------------------- settings ---
def ours_settings(name: str, seed: int, budget: int) -> Settings:
    """What `train.py --config ZOO_FILE --env ENV --seed SEED --total-timesteps BUDGET --device
    cpu` trains: its env, config and budget, and notes on what is read approximately."""
    from agent.run.cli import resolve_settings, train_parser

    flags = ["--config", str(ZOO_FILE), "--env", ENTRIES[name].env_id, "--seed", str(seed)]
    flags += ["--total-timesteps", str(budget), "--device", "cpu"]
    return resolve_settings(train_parser().parse_args(flags))


class Sb3Settings(NamedTuple):
    """A zoo entry as rl_zoo3's `ExperimentManager` hands it to sb3-contrib."""

    n_envs: int
    normalize: dict[str, Any] | None
    """`VecNormalize`'s keyword arguments; None: no `VecNormalize`."""
    policy: str
    model: dict[str, Any]
    """`RecurrentPPO`'s keyword arguments (schedules as SB3's callables)."""


def linear_schedule(start: float) -> Callable[[float], float]:
    """SB3's schedule from `start` to 0 (SB3 calls it with the fraction of training left, 1 -> 0),
    as rl_zoo3 writes it; SB3 2.6, our floor, has no `LinearSchedule` class."""
    return lambda progress_remaining: start * progress_remaining


def sb3_settings(entry: dict[str, Any]) -> Sb3Settings:
    """The zoo's reading of an entry: `n_envs` (1 if absent), `normalize: true` as a
    `VecNormalize` of observations and rewards with the entry's `gamma` (a dict: its keyword
    arguments), `lin_X` as a linear schedule from X to 0 over the run (`linear_schedule`, as
    rl_zoo3 reads it), and every other setting
    passed to `RecurrentPPO` as it is (what an entry leaves out keeps sb3-contrib's default).
    Raises ValueError for what the in-scope entries never use (`policy_kwargs` strings, wrappers)."""
    values = dict(entry)
    values.pop("n_timesteps", None)
    n_envs = values.pop("n_envs", 1)
    policy = values.pop("policy")
    normalize = values.pop("normalize", False)
    if isinstance(normalize, dict):
        kwargs: dict[str, Any] | None = dict(normalize)
    elif normalize is True:
        kwargs = {}
    elif normalize is False:
        kwargs = None
    else:
        raise ValueError(f"normalize {normalize!r}: only true, false or a mapping are read here")
    if kwargs is not None and "gamma" in values:
        kwargs["gamma"] = values["gamma"]  # the zoo discounts the returns it scales by with it
    unread = sorted(set(values) & {"policy_kwargs", "env_wrapper", "frame_stack", "callback"})
    if unread:
        raise ValueError(f"not read here: {', '.join(unread)} (no entry in scope has them)")
    for key in ("learning_rate", "clip_range", "clip_range_vf"):
        value = values.get(key)
        if isinstance(value, str):
            schedule, _, start = value.partition("_")
            if schedule != "lin":
                raise ValueError(f"{key} {value!r}: only lin_ schedules are read")
            values[key] = linear_schedule(float(start))
    return Sb3Settings(n_envs, kwargs, policy, values)


def build_sb3(env_id: str, settings: Sb3Settings, seed: int) -> tuple[Any, Any]:
    """sb3-contrib's `RecurrentPPO` on `settings.n_envs` copies of `env_id` seeded from `seed`,
    on the CPU, as rl_zoo3 builds it. Returns (model, its vector env)."""
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    vec_env = make_vec_env(env_id, n_envs=settings.n_envs, seed=seed)
    if settings.normalize is not None:
        vec_env = VecNormalize(vec_env, **settings.normalize)
    model = RecurrentPPO(settings.policy, vec_env, device="cpu", seed=seed, **settings.model)
    return model, vec_env


# ---------------------------------------------------------------------------------- jobs ---
class Job(NamedTuple):
    entry: str
    library: str
    """`ours` or `sb3`."""
    seed: int
    budget: int
    """Steps of training."""
    compare_at: int
    """B: the steps at which both sides are compared (`budget` for sb3-contrib's jobs)."""
    episodes: int
    """Deterministic evaluation episodes, of the final model and of the model at B."""


def job_key(line: dict[str, Any]) -> tuple[str, str, int, int, int]:
    """What makes a job the same job: a results line or a `Job._asdict()`."""
    return (line["entry"], line["library"], line["seed"], line["budget"], line["compare_at"])


def worker(job: Job) -> dict[str, Any]:
    """Train and evaluate one job in this process; its results line."""
    import torch

    torch.set_num_threads(1)
    train = train_ours if job.library == "ours" else train_sb3
    return {**job._asdict(), "env_id": ENTRIES[job.entry].env_id, **train(job)}


def train_ours(job: Job) -> dict[str, Any]:
    """Our side: the entry through `train.py`'s settings, evaluated at B and at the end."""
    from agent import RecurrentPPO
    from agent.run.evaluation import evaluate

    settings = ours_settings(job.entry, job.seed, job.budget)
    for note in settings.notes:
        print(f"note: {note}", file=sys.stderr)
    model = RecurrentPPO(
        settings.env_id, settings.config, env_kwargs=settings.env_kwargs,
        wrappers=settings.wrappers,
    )  # fmt: skip

    def score() -> tuple[float, float]:
        result = evaluate(
            model, settings.env_id, settings.env_kwargs, settings.wrappers,
            n_episodes=job.episodes, seed=job.seed + 1000, deterministic=True,
        )  # fmt: skip
        return result["mean_return"], result["std_return"]

    curve = jobs.CurveRecorder(job.budget)
    at_compare: dict[str, Any] = {}
    evaluating = 0.0  # seconds of evaluation inside `learn`, not training time
    start = time.perf_counter()

    def after_update(m: RecurrentPPO) -> None:
        nonlocal evaluating
        seconds = time.perf_counter() - start - evaluating
        curve.add(m.num_timesteps, seconds, m.episode_statistics.return_queue)
        if not at_compare and m.num_timesteps >= job.compare_at:
            began = time.perf_counter()
            at_compare.update(compare_steps=m.num_timesteps, compare_return=score()[0])
            evaluating += time.perf_counter() - began

    model.learn(settings.total_timesteps, callback=after_update)
    wall = time.perf_counter() - start - evaluating
    final, spread = score()
    model.close()
    return {
        "steps": model.num_timesteps, "wall": wall, "final_return": final, "final_std": spread,
        **at_compare, "curve": curve.points, "zoo": zoo_entry(job.entry), "notes": settings.notes,
        "settings": dataclasses.asdict(settings.config),
    }  # fmt: skip


def train_sb3(job: Job) -> dict[str, Any]:
    """sb3-contrib's side: the zoo's reading of the entry, trained to B and evaluated there with
    the training env's observation statistics frozen (`sb3_peer.evaluate`).

    Not `sb3_peer.train`: that runner normalises observations only, and the zoo's
    `normalize: true` normalises rewards too (`build_sb3`)."""
    env_id = ENTRIES[job.entry].env_id
    model, vec_env = build_sb3(env_id, sb3_settings(zoo_entry(job.entry)), job.seed)
    curve = jobs.CurveRecorder(job.budget)

    def record(update: sb3_peer.Update) -> None:
        curve.add(update.steps, update.seconds, update.returns)

    start = time.perf_counter()
    model.learn(job.budget, callback=sb3_peer.each_update(record))
    trained = sb3_peer.Trained(model, vec_env, time.perf_counter() - start)
    result = sb3_peer.evaluate(
        trained, env_id, episodes=job.episodes, n_envs=SB3_EVAL_ENVS, seed=job.seed + 1000
    )
    final = float(np.mean(result.returns))
    return {
        "steps": model.num_timesteps, "wall": trained.wall, "final_return": final,
        "final_std": float(np.std(result.returns)), "compare_steps": model.num_timesteps,
        "compare_return": final, "curve": curve.points, "zoo": zoo_entry(job.entry), "notes": [],
    }  # fmt: skip


def describe(job: Job, line: dict[str, Any]) -> str:
    """The line printed as a job ends."""
    sps = line["steps"] / line["wall"]
    return (
        f"{job.entry} {job.library} seed {job.seed}: final {line['final_return']:.1f}, at "
        f"{line['compare_steps']} steps {line['compare_return']:.1f}, {line['wall']:.0f} s "
        f"({sps:.0f} steps/s)"
    )


def plan(args: argparse.Namespace) -> list[Job]:
    """The jobs asked for, seed by seed (every entry gets its first seed first)."""
    jobs = []
    for name in args.entries:
        if not available(name):
            continue
        entry = zoo_entry(name)
        budget = QUICK_BUDGET if args.quick else int(entry["n_timesteps"])
        compare_at = budget if anneals(entry) else min(budget, args.compare_at)
        for library, seeds in (("ours", args.seeds), ("sb3", args.sb3_seeds)):
            if args.only in (None, library):
                steps = budget if library == "ours" else compare_at
                jobs += [Job(name, library, s, steps, compare_at, args.episodes) for s in seeds]
    return sorted(jobs, key=lambda job: job.seed)


def available(name: str) -> bool:
    """False, with a printed line, when entry `name` needs a module that cannot be imported."""
    needed = ENTRIES[name].requires
    if needed and importlib.util.find_spec(needed) is None:
        print(f"{name}: skipped, {needed} cannot be imported (pip install -e '.[zoo]')")
        return False
    return True


# ---------------------------------------------------------------------------------- report ---
def by_entry(results: list[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per entry (in `ENTRIES`' order, then others by name), per side, its lines."""
    order = {name: i for i, name in enumerate(ENTRIES)}
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for line in sorted(results, key=lambda x: (order.get(x["entry"], len(order)), x["entry"])):
        groups.setdefault(line["entry"], {}).setdefault(line["library"], []).append(line)
    return groups


def _timing(lines: list[dict[str, Any]]) -> str:
    wall = statistics.median(x["wall"] for x in lines)
    sps = statistics.median(x["steps"] / x["wall"] for x in lines)
    took = f"{wall / 60:.1f} min" if wall >= 120 else f"{wall:.0f} s"
    return f"{took} ({sps:,.0f} steps/s)"


def table(results: list[dict[str, Any]]) -> str:
    """One row per entry: our final return over seeds (mean ± std, 95% t-interval, seeds), our
    mean at B, sb3-contrib's at B, and each side's training time per run (median) and speed."""
    from agent.report.stats import t_interval

    lines = [
        "| entry (budget; B) | ours: final return, mean ± std (95% t-interval), seeds | "
        "ours at B, mean of seeds | sb3-contrib at B (1 seed) | ours: training per run, "
        "median (steps/s) | sb3-contrib: training to B (steps/s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, sides in by_entry(results).items():
        ours, sb3 = sides.get("ours", []), sides.get("sb3", [])
        budget = jobs.kilo(ours[0]["budget"]) if ours else "?"  # sb3-contrib's runs stop at B
        head = f"`{name}` ({budget}; {jobs.kilo((ours or sb3)[0]['compare_at'])})"
        cells = ["", "", "", "", ""]
        if ours:
            finals = [x["final_return"] for x in ours]
            mean = statistics.mean(finals)
            low, high = t_interval(finals)
            spread = f" ± {statistics.stdev(finals):.1f}" if len(finals) > 1 else ""
            interval = "" if math.isnan(low) else f" ({low:.1f}, {high:.1f})"
            cells[0] = f"{mean:.1f}{spread}{interval}, {len(finals)}"
            at_b = [x["compare_return"] for x in ours if "compare_return" in x]
            cells[1] = f"{statistics.mean(at_b):.1f}" if at_b else ""
            cells[3] = _timing(ours)
        if sb3:
            value = statistics.mean(x["compare_return"] for x in sb3)
            cells[2] = f"{value:.1f}" + (f" ({len(sb3)} seeds)" if len(sb3) > 1 else "")
            cells[4] = _timing(sb3)
        lines.append(f"| {head} | " + " | ".join(cells) + " |")
    legend = (
        "Returns: deterministic evaluation episodes (each run's `episodes`) of the final model "
        "and of the model at B, the first update at or past B steps. Our runs train the "
        "entry's full budget; sb3-contrib's train to B. Times: training only, evaluations not "
        "in them."
    )
    return "\n".join([*lines, "", legend])


def seed_mean(curves: list[jobs.Curve]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps, and the mean, min and max over the seeds of the mean training return, at the
    steps where every seed has one."""
    grid = np.array(sorted({p[0] for c in curves for p in c}), dtype=float)
    values = []
    for curve in curves:
        points = np.array([(p[0], p[2]) for p in curve if p[2] is not None], dtype=float)
        if len(points) == 0:
            return (np.empty(0),) * 4
        values.append(np.interp(grid, points[:, 0], points[:, 1], left=np.nan, right=np.nan))
    stack = np.array(values)
    keep = ~np.isnan(stack).any(axis=0)
    kept = stack[:, keep]
    return grid[keep], kept.mean(axis=0), kept.min(axis=0), kept.max(axis=0)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Two panels per entry: the training return (last 100 episodes) against steps (ours: the
    mean over seeds and their min-max band; sb3-contrib dashed) and against training seconds
    (every run its own line); B dotted."""
    from agent.report.figures import check_figure_path, panel_grid, save_figure, style_panel

    check_figure_path(path)
    groups = by_entry(results)
    title = "rl-zoo entries at the zoo's settings: ours (solid) and sb3-contrib (dashed)"
    figure, axes = panel_grid(2 * len(groups), title, columns=2, size=(4.6, 3.0))
    for i, (name, sides) in enumerate(groups.items()):
        by_steps, by_time = axes[2 * i], axes[2 * i + 1]
        for library, color, style in (("ours", "C0", "-"), ("sb3", "C1", "--")):
            runs = sides.get(library, [])
            if not runs:
                continue
            label = f"{'ours' if library == 'ours' else 'sb3-contrib'} ({len(runs)})"
            steps, mean, low, high = seed_mean([x["curve"] for x in runs])
            marker = "o" if len(steps) < 3 else None  # a curve of one point shows as a dot
            by_steps.plot(steps, mean, style, color=color, label=label, marker=marker)
            if len(runs) > 1:
                by_steps.fill_between(steps, low, high, color=color, alpha=0.2)
            for run in runs:
                points = [(p[1], p[2]) for p in run["curve"] if p[2] is not None]
                if points:
                    by_time.plot(*zip(*points, strict=True), style, color=color, marker=marker)
        compare_at = next(iter(sides.values()))[0]["compare_at"]
        by_steps.axvline(compare_at, color="k", linestyle=":", linewidth=0.8)
        style_panel(by_steps, name, "environment steps", "training return (last 100)")
        style_panel(by_time, name, "training seconds", "training return (last 100)")
        by_steps.legend(fontsize=6)
    save_figure(figure, path)
    print(f"figure: {path}")


# ------------------------------------------------------------------------------------ main ---
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "zoo",
                        help="folder of results.jsonl (the committed copy: results/zoo)")  # fmt: skip
    parser.add_argument("--entries", nargs="+", choices=list(ENTRIES), default=list(ENTRIES),
                        help="entries to run and report (default: all)")  # fmt: skip
    parser.add_argument("--only", choices=["ours", "sb3"], help="run one side only")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="our seeds")
    parser.add_argument("--sb3-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--compare-at", type=int, default=COMPARE_AT,
                        help="B for entries with a constant learning rate and a longer budget: "
                        "sb3-contrib trains this far, and ours is evaluated here")  # fmt: skip
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes")
    parser.add_argument("--jobs", type=int, default=1,
                        help="jobs at a time (more than 1 spoils the timings)")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_BUDGET} steps a job, seed 0, 5 episodes: a smoke test")  # fmt: skip
    jobs.add_report_flags(parser)
    args = parser.parse_args(argv)
    if args.worker:
        jobs.print_result(worker(Job(**json.loads(args.worker))))
        return 0
    if args.quick:
        args.seeds, args.sb3_seeds, args.episodes = [0], [0], 5
        args.compare_at = QUICK_BUDGET // 2
    return jobs.run_and_report(
        Path(__file__), args, lambda: plan(args), job_key, describe, table, plot,
        keep=lambda line: line["entry"] in args.entries,
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
