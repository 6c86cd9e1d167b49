"""Defaults that learn on tasks nobody tuned for (issue 16): our PPOConfig defaults, candidate
defaults and sb3-contrib's RecurrentPPO defaults, on every task of our suite and on memory tasks
we did not write, each configuration at the same step budget per task.

    python benchmarks/defaults.py --out runs/defaults                 # everything, resumable
    python benchmarks/defaults.py --out runs/defaults --only ours     # our configurations only
    python benchmarks/defaults.py --out runs/defaults --tasks bandit --configs ours-defaults
    python benchmarks/defaults.py --out runs/defaults --set n_epochs=10 --set batch_size=256
    python benchmarks/defaults.py --out runs/defaults --table --plot results/defaults.png
    python benchmarks/defaults.py --quick --out /tmp/defaults_quick   # the pipeline in minutes

Each (task, configuration, seed) job runs in a fresh subprocess with one torch thread, one after
another, and appends one JSON line to OUT/results.jsonl: the final score (deterministic
evaluation episodes of the final model), the training wall time, and the learning curve (mean
return and success rate of the last 100 training episodes, after every update), with the steps
and seconds to the task's goal read from that curve. A job whose line is there (same task,
configuration, seed and budget) is skipped, so the table fills across sessions. Our
configurations run seeds 0-2, sb3-contrib (25-50x slower) seed 0: each budget keeps one
sb3-contrib run near 15 minutes on a 2-core machine. `--set` defines an ad hoc configuration of
ours, named by its settings. `--table` only reports. Unlike benchmarks/presets.py this needs no
Ray: half its jobs are sb3-contrib's, not runs of `train.py`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import operator
import statistics
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FilterObservation, TransformObservation

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import jobs, sb3_peer  # noqa: E402
from benchmarks.presets import GOALS  # noqa: E402

HERE = "benchmarks.defaults"
"""This module's import name: wrappers are named `module:function`, as our configs name them."""


# --------------------------------------------------------------------------- third-party envs ---
class SuccessOnReward(gym.Wrapper):
    """Adds `info["success"]` when an episode ends: 1.0 when its last reward was positive (the
    goal reached), else 0.0 (a wrong choice, a hole, the time limit)."""

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = {**info, "success": float(reward > 0)}
        return obs, reward, terminated, truncated, info


def minigrid_memory(env: gym.Env) -> gym.Env:
    """MiniGrid without the mission text (neither library encodes text), its 7x7x3 codes as
    floats in [0, 1]. As uint8 both libraries take them for a picture, and sb3-contrib's
    NatureCNN refuses 7x7 ("Kernel size can't be greater than actual input size"): as floats
    both flatten them."""
    env = FilterObservation(env, ["image", "direction"])
    image = gym.spaces.Box(0.0, 1.0, (7, 7, 3), np.float32)
    space = gym.spaces.Dict({"image": image, "direction": env.observation_space["direction"]})
    return SuccessOnReward(TransformObservation(env, _scaled_codes, space))


def minigrid_codes(env: gym.Env) -> gym.Env:
    """MiniGrid without the mission text, its 7x7x3 object codes left as the env gives them:
    uint8 in a Box(0, 255), with values of at most 10. This is what a user passes on, and what
    our encoders must get right without a flag (issue 16); sb3-contrib's NatureCNN refuses it."""
    return SuccessOnReward(FilterObservation(env, ["image", "direction"]))


def _scaled_codes(obs: dict[str, Any]) -> dict[str, Any]:
    return {"image": obs["image"].astype(np.float32) / 10.0, "direction": obs["direction"]}


def acrobot_angles(env: gym.Env) -> gym.Env:
    """Acrobot-v1 without its two angular velocities: cos and sin of both joint angles."""
    space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    return TransformObservation(env, operator.itemgetter(slice(0, 4)), space)


def blind(env: gym.Env) -> gym.Env:
    """Every observation replaced by a constant 0, and success on reaching the goal."""
    space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    return SuccessOnReward(TransformObservation(env, _nothing, space))


def _nothing(obs: Any) -> np.ndarray:
    return np.zeros(1, np.float32)


def pixels_as_floats(env: gym.Env) -> gym.Env:
    """A uint8 image as floats in [0, 1] (divided by 255): our encoders flatten it into the
    LSTM instead of passing it through the CNN, as sb3-contrib's MlpLstmPolicy does."""
    space = gym.spaces.Box(0.0, 1.0, env.observation_space.shape, np.float32)
    return TransformObservation(env, _over_255, space)


def _over_255(obs: np.ndarray) -> np.ndarray:
    return obs.astype(np.float32) / 255.0


# The encoder question for integer observations (issue 16): the symbol stream of RepeatPrevious
# (one-hot floats as our env gives it) handed over as a Discrete, as a plain number, and as one
# part of a Dict beside a part that carries nothing.
def symbol_discrete(env: gym.Env) -> gym.Env:
    """The one-hot symbol as its index, a `Discrete(num_symbols)`: our encoder one-hots it."""
    space = gym.spaces.Discrete(env.observation_space.shape[0])
    return TransformObservation(env, _symbol, space)


def symbol_index(env: gym.Env) -> gym.Env:
    """The symbol's index as one float in a `Box(0, num_symbols - 1)`: what an encoder that
    passes a Discrete through as its integer would feed the network."""
    space = gym.spaces.Box(0.0, env.observation_space.shape[0] - 1.0, (1,), np.float32)
    return TransformObservation(env, _symbol_as_float, space)


def symbol_dict(env: gym.Env) -> gym.Env:
    """`Dict(symbol=Discrete(num_symbols), noise=Box(0, 1, (4,)))`: the symbol, and four
    uniform random floats drawn anew each step that the policy must learn to ignore."""
    return NoisyDict(symbol_discrete(env))


class NoisyDict(gym.ObservationWrapper):
    """A Discrete observation as the `symbol` part of a Dict whose `noise` part is four uniform
    random floats from the env's own generator (so seeding the env seeds them)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        noise = gym.spaces.Box(0.0, 1.0, (4,), np.float32)
        self.observation_space = gym.spaces.Dict({"symbol": env.observation_space, "noise": noise})

    def observation(self, observation: Any) -> dict[str, Any]:
        noise = self.np_random.random(4, dtype=np.float32)
        return {"symbol": observation, "noise": noise}


def _symbol(obs: np.ndarray) -> int:
    return int(np.argmax(obs))


def _symbol_as_float(obs: np.ndarray) -> np.ndarray:
    return np.array([np.argmax(obs)], np.float32)


# ----------------------------------------------------------------------------------- tasks ---
@dataclass(frozen=True)
class Task:
    """One task, built the same way for both libraries."""

    env_id: str
    """A Gymnasium id; `module:id` when a module must be imported to register it."""
    budget: int
    """Environment steps of every job on this task."""
    goal: tuple[str, float]
    """(`success` or `return`, least value): solved, on the training curve and the score.
    `success` is the `success` info on an episode's last step; an env without it has None."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    wrappers: tuple[str, ...] = ()
    """`module:function` wrappers of each single env (our `wrappers`; sb3-contrib's `make_env`)."""
    requires: str | None = None
    """A module the task needs; without it the task is skipped with a printed line."""
    sb3: bool = True
    """Whether sb3-contrib can run it (its CNN refuses images smaller than 36x36)."""


def preset_goal(name: str) -> tuple[str, float]:
    """The goal of preset `name` in benchmarks/presets.py, as (metric, least value)."""
    tag, least = GOALS[name]
    return ("success" if tag.endswith("success_rate") else "return", least)


# Budgets: sb3-contrib steps at 100-400 steps/s here, so about 200k steps keep one of its runs
# near 15 minutes (the longest episodes and the image tasks run slowest). The presets' own
# budgets of 1M-2M (pendulum-novel, bandit) are out of reach: those cells compare returns.
# The third-party tasks, each a different kind of memory:
# - minigrid-memory: remember the object seen in the start room down a corridor, then walk to
#   its match (cue retention with navigation, 7 actions, sparse reward; guessing: success 0.5).
# - acrobot-novel: swing up from joint angles only, velocities inferred from consecutive frames
#   (like cartpole-novel, but 500-step episodes of -1 per step and energy pumping to learn).
# - frozenlake-blind: FrozenLake 4x4 without slipping and with a constant observation: the way
#   to the goal (RRDDDR) is an open-loop sequence, so the policy must count its own steps in
#   memory; a memoryless one plays one action distribution and almost always falls in.
# Rejected: MountainCar (hard with full observations), Pendulum-v1 (ours is PendulumNoVel; PPO
# without gSDE needs ~1M steps), DelayObservation (the agent does not see its past actions, so
# a delay tests prediction more than memory), LunarLander (needs Box2D, and ~1M steps).
# fmt: off
TASKS: dict[str, Task] = {
    "tmaze-short": Task("Memory/TMaze-v0", 200_000, preset_goal("tmaze-short"), {"length": 10}),
    # Gap 50: an episode (51 steps) fits in one 128-step rollout column, which both libraries'
    # defaults collect; gap 100 needs the whole-episode recipe of configs/tmaze-100.yaml.
    "tmaze-medium": Task("Memory/TMaze-v0", 300_000, preset_goal("tmaze-100"), {"length": 50}),
    "repeat-first": Task("Memory/RepeatFirst-v0", 200_000, preset_goal("repeat-first"),
                         {"num_symbols": 4, "length": 20}),
    "repeat-previous": Task("Memory/RepeatPrevious-v0", 250_000, preset_goal("repeat-previous"),
                            {"num_symbols": 4, "delay": 4, "length": 32}),
    "cartpole-novel": Task("Memory/CartPoleNoVel-v0", 150_000, preset_goal("cartpole-novel")),
    "pendulum-novel": Task("Memory/PendulumNoVel-v0", 200_000, preset_goal("pendulum-novel")),
    "visual-match": Task("Memory/VisualMatch-v0", 150_000, preset_goal("visual-match"),
                         {"delay": 10, "num_colors": 4}),
    "bandit": Task("Memory/Bandit-v0", 200_000, preset_goal("bandit"),
                   {"num_arms": 2, "length": 100}),
    "minigrid-memory": Task("minigrid:MiniGrid-MemoryS7-v0", 200_000, ("success", 0.95),
                            wrappers=(f"{HERE}:minigrid_memory",), requires="minigrid"),
    # The same task with MiniGrid's uint8 codes as they come (ours only): the encoder question.
    "minigrid-codes": Task("minigrid:MiniGrid-MemoryS7-v0", 200_000, ("success", 0.95),
                           wrappers=(f"{HERE}:minigrid_codes",), requires="minigrid", sb3=False),
    # No memory needed, so that 100k steps show whether an encoder learns from uint8 codes.
    "minigrid-empty-codes": Task("minigrid:MiniGrid-Empty-5x5-v0", 100_000, ("return", 0.9),
                                 wrappers=(f"{HERE}:minigrid_codes",), requires="minigrid",
                                 sb3=False),
    "acrobot-novel": Task("Acrobot-v1", 200_000, ("return", -100.0),
                          wrappers=(f"{HERE}:acrobot_angles",)),
    "frozenlake-blind": Task("FrozenLake-v1", 100_000, ("success", 0.99), {"is_slippery": False},
                             wrappers=(f"{HERE}:blind",)),
}
# fmt: on
# The encoder question (issue 16), each a task above with its observations handed over
# otherwise. Each runs its single envs in a SyncVectorEnv, not our batched env: compare steps,
# not time. VisualMatch's pixels flattened (floats), not through our CNN: which encoder learns
# an 8x8 image. RepeatPrevious's symbols as a Discrete (one-hot by our encoder), as a plain
# number, and in a Dict beside noise: which encoding of integer observations learns.
TASKS["visual-match-flat"] = dataclasses.replace(
    TASKS["visual-match"], wrappers=(f"{HERE}:pixels_as_floats",)
)
for _kind in ("discrete", "index", "dict"):
    TASKS[f"repeat-previous-{_kind}"] = dataclasses.replace(
        TASKS["repeat-previous"], wrappers=(f"{HERE}:symbol_{_kind}",)
    )
QUICK_TASKS = {"tmaze-short": 4096, "frozenlake-blind": 4096}
"""`--quick`: two small tasks (one of ours, one wrapped third-party) and their budgets."""


# --------------------------------------------------------------------------- configurations ---
class Config(NamedTuple):
    library: str
    """`ours` (settings: PPOConfig fields) or `sb3` (settings: sb3-contrib RecurrentPPO keyword
    arguments, and `n_envs` and `normalize_obs` for its VecEnv)."""
    settings: dict[str, Any]


BEFORE = {
    "batch_size": 512, "n_epochs": 4, "forget_bias_init": "chrono", "image_encoder": "cnn",
    "ent_coef": 0.0,
}  # fmt: skip
"""Our defaults until this benchmark chose new ones: 16 Adam steps per 2,048 samples, chrono,
every image through the CNN, no entropy bonus."""

CONFIGS: dict[str, Config] = {
    "ours-defaults": Config("ours", {}),
    # The defaults before the entropy bonus (ent_coef 0, sb3-contrib's; now 0.01).
    "ours-no-entropy": Config("ours", {"ent_coef": 0.0}),
    "ours-before": Config("ours", BEFORE),
    # Chrono's forget-gate prior with the input gates left at PyTorch's init (about half open).
    "ours-before-open-gates": Config("ours", {**BEFORE, "forget_bias_init": "chrono-forget"}),
    # Today's update schedule with the gate prior of the long-gap presets (and, as measured, no
    # entropy bonus).
    "ours-chrono": Config("ours", {"forget_bias_init": "chrono", "ent_coef": 0.0}),
    "ours-no-chrono": Config("ours", {"forget_bias_init": "1.0", "ent_coef": 0.0}),
    # sb3-contrib's defaults in our implementation: its update schedule and networks (LSTMs of
    # 256 units, heads of 64 x 64, PyTorch's gate init), with 8 envs as sb3-defaults below.
    "ours-sb3like": Config(
        "ours",
        {
            "n_envs": 8,
            "batch_size": 128,
            "learning_rate": 3e-4,
            "lstm_hidden_size": 256,
            "net_arch": [64, 64],
            "forget_bias_init": "default",
            "ent_coef": 0.0,
        },
    ),
    # All of sb3-contrib's defaults, with 8 envs (make_vec_env's own default is 1).
    "sb3-defaults": Config("sb3", {"n_envs": 8}),
}


def adhoc_config(assignments: list[str]) -> tuple[str, Config]:
    """`["n_epochs=10", "net_arch=64 64"]` as a configuration of ours named by them, the values
    read as `train.py` reads its flags; an unknown key or a bad value exits with argparse's
    message."""
    from agent.config import ConfigError, PPOConfig
    from agent.run.cli import add_config_flags, config_overrides, flag_name

    parser = argparse.ArgumentParser(prog="--set")
    add_config_flags(parser)
    flags = []
    for item in assignments:
        key, _, value = item.partition("=")
        flags += [flag_name(key), *value.split()]
    settings = config_overrides(parser.parse_args(flags))
    try:
        dataclasses.replace(PPOConfig(), **settings).validate()
    except ConfigError as e:
        raise SystemExit(f"--set: {e}") from None
    return f"ours[{','.join(assignments)}]", Config("ours", settings)


# ------------------------------------------------------------------------------------- jobs ---
class Job(NamedTuple):
    task: str
    config: str
    library: str
    settings: dict[str, Any]
    seed: int
    budget: int
    episodes: int
    """Deterministic evaluation episodes of the final model."""


def job_key(line: dict[str, Any]) -> tuple[str, str, int, int]:
    """What makes a job the same job: a results line or a `Job._asdict()`."""
    return (line["task"], line["config"], line["seed"], line["budget"])


def describe(job: Job, line: dict[str, Any]) -> str:
    """The line printed as a job ends."""
    goal = f"at {line['goal_steps']} steps" if line["goal_steps"] is not None else "not reached"
    sps = line["steps"] / line["wall"]
    return (
        f"{job.task} {job.config} seed {job.seed}: score {line['score']:.3g}, "
        f"{line['wall']:.0f} s ({sps:.0f} steps/s), goal {goal}"
    )


def worker(job: Job) -> dict[str, Any]:
    """Train and evaluate one job in this process; the results line."""
    import torch

    torch.set_num_threads(1)
    task = TASKS[job.task]
    train = train_ours if job.library == "ours" else train_sb3
    steps, wall, curve, scores = train(task, job)
    index = 3 if task.goal[0] == "success" else 2  # the curve's success rate, or its return
    goal_steps, goal_wall = jobs.time_to_goal(curve, index, task.goal[1])
    score = scores["success" if task.goal[0] == "success" else "return"]
    return {
        **job._asdict(), "steps": steps, "wall": wall, "score": score,
        "eval_return": scores["return"], "eval_success": scores["success"], "goal": task.goal,
        "goal_steps": goal_steps, "goal_wall": goal_wall, "curve": curve,
    }  # fmt: skip


Curve = list[tuple[int, float, float | None, float | None]]
"""(steps, training seconds, mean return, success rate of the last 100 training episodes)."""


def curve_point(steps: int, wall: float, returns: Any, successes: Any) -> tuple:
    """A point of a `Curve` from the last 100 training episodes' returns and successes."""
    return (int(steps), wall, mean_or_none(returns), mean_or_none(successes))


def mean_or_none(values: Any) -> float | None:
    return float(np.mean(values)) if len(values) else None


def train_ours(task: Task, job: Job) -> tuple[int, float, Curve, dict[str, Any]]:
    from agent import RecurrentPPO
    from agent.run.evaluation import evaluate

    model = RecurrentPPO(
        task.env_id, env_kwargs=task.env_kwargs, wrappers=task.wrappers,
        device="cpu", seed=job.seed, **job.settings,
    )  # fmt: skip
    curve: Curve = []
    start = time.perf_counter()

    def record(m: RecurrentPPO) -> None:
        returns = m.episode_statistics.return_queue
        curve.append(
            curve_point(m.num_timesteps, time.perf_counter() - start, returns, m.successes)
        )

    model.learn(job.budget, callback=record)
    wall = time.perf_counter() - start
    result = evaluate(
        model, task.env_id, task.env_kwargs, task.wrappers, n_episodes=job.episodes,
        seed=job.seed + 1000, deterministic=True,
    )  # fmt: skip
    scores = {"return": result["mean_return"], "success": result["success_rate"]}
    return model.num_timesteps, wall, curve, scores


def make_env(task: Task) -> gym.Env:
    """One single env of `task`, wrapped as each copy of our vector env is (for sb3-contrib)."""
    from agent.environment.vec_env import make_single_env
    from agent.environment.wrappers import load_wrappers

    return make_single_env(task.env_id, task.env_kwargs, load_wrappers(task.wrappers))


def train_sb3(task: Task, job: Job) -> tuple[int, float, Curve, dict[str, Any]]:
    """As `train_ours`, for sb3-contrib: `job.settings` are its own (see `Config`)."""
    env = partial(make_env, task)
    curve: Curve = []

    def record(update: sb3_peer.Update) -> None:
        curve.append(curve_point(update.steps, update.seconds, update.returns, update.successes))

    trained = sb3_peer.train(
        env, job.settings, seed=job.seed, steps=job.budget, after_update=record
    )
    result = sb3_peer.evaluate(trained, env, episodes=job.episodes, n_envs=4, seed=job.seed + 1000)
    success = float(np.mean(result.successes)) if result.successes else None
    scores = {"return": float(np.mean(result.returns)), "success": success}
    return trained.model.num_timesteps, trained.wall, curve, scores


# ---------------------------------------------------------------------------------- report ---
class Cell(NamedTuple):
    """One configuration on one task, over its seeds."""

    score: float
    seeds: int
    wall: float
    """Median training seconds."""
    reached: int
    """Seeds whose training curve reached the goal."""
    goal_steps: float | None
    """Median steps to the goal over the seeds that reached it."""
    goal_wall: float | None


def cells(results: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Cell]]:
    """Per (task, budget), per configuration, the summary of its seeds."""
    groups: dict[tuple[str, int], dict[str, list[dict[str, Any]]]] = {}
    for line in results:
        groups.setdefault((line["task"], line["budget"]), {}).setdefault(line["config"], [])
        groups[line["task"], line["budget"]][line["config"]].append(line)
    out: dict[tuple[str, int], dict[str, Cell]] = {}
    for row, configs in groups.items():
        out[row] = {}
        for config, lines in configs.items():
            reached = [x for x in lines if x["goal_steps"] is not None]
            out[row][config] = Cell(
                score=statistics.mean(x["score"] for x in lines),
                seeds=len(lines),
                wall=statistics.median(x["wall"] for x in lines),
                reached=len(reached),
                goal_steps=statistics.median(x["goal_steps"] for x in reached) if reached else None,
                goal_wall=statistics.median(x["goal_wall"] for x in reached) if reached else None,
            )
    return out


def row_order(row: tuple[str, int]) -> tuple[int, str, int]:
    """Tasks in the order of `TASKS`, then any others by name, each by budget."""
    names = list(TASKS)
    return (names.index(row[0]) if row[0] in names else len(names), row[0], row[1])


def column_order(results: list[dict[str, Any]]) -> list[str]:
    found = {line["config"]: line["library"] for line in results}
    return [c for c in CONFIGS if c in found] + sorted(set(found) - set(CONFIGS))


def table(results: list[dict[str, Any]]) -> str:
    """Rows tasks, columns configurations: `mean score (seeds) · median wall · median steps to
    goal (seeds reached)`, and for ours the ratio of its median seconds to the goal to
    sb3-contrib's, when both reached it."""
    columns = column_order(results)
    library = {line["config"]: line["library"] for line in results}
    lines = [
        "| task (budget, goal) | " + " | ".join(f"`{c}`" for c in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for (task, budget), row in sorted(cells(results).items(), key=lambda x: row_order(x[0])):
        metric, least = next(x["goal"] for x in results if x["task"] == task)
        sb3 = [row[c] for c in columns if library[c] == "sb3" and c in row]
        texts = []
        for config in columns:
            cell = row.get(config)
            if cell is None:
                texts.append("")
                continue
            goal = (
                f"{cell.goal_steps / 1000:.0f}k ({cell.reached}/{cell.seeds})"
                if cell.goal_steps is not None
                else "never"
            )
            text = f"{cell.score:.3g} ({cell.seeds}) · {cell.wall:.0f} s · {goal}"
            if library[config] == "ours" and sb3 and cell.goal_wall and sb3[0].goal_wall:
                text += f" · {cell.goal_wall / sb3[0].goal_wall:.2f}x sb3"
            texts.append(text)
        lines.append(
            f"| {task} ({budget / 1000:.0f}k, {metric} >= {least:g}) | " + " | ".join(texts) + " |"
        )
    legend = (
        "Cells: mean final score (seeds) · median training wall · median steps to the goal on "
        "the training curve (seeds that reached it) · ours: median seconds to the goal / "
        "sb3-contrib's."
    )
    return "\n".join([*lines, "", legend])


def mean_curve(curves: list[Curve], index: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean over seeds of column `index`, at the steps where every seed has a value."""
    grid = np.array(sorted({p[0] for c in curves for p in c}), dtype=float)
    values = []
    for curve in curves:
        points = np.array([(p[0], p[index]) for p in curve if p[index] is not None], dtype=float)
        if len(points) == 0:
            return np.empty(0), np.empty(0)
        values.append(np.interp(grid, points[:, 0], points[:, 1], left=np.nan, right=np.nan))
    stack = np.array(values)
    keep = ~np.isnan(stack).any(axis=0)
    return grid[keep], stack[:, keep].mean(axis=0)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """One panel per task: each configuration's training curve (mean over seeds) against
    steps, sb3-contrib dashed, the goal dotted."""
    from agent.report.figures import check_figure_path, panel_grid, save_figure, style_panel

    check_figure_path(path)
    rows = sorted(cells(results), key=row_order)
    columns = column_order(results)
    title = "Defaults per task: mean over seeds (count in the legend)"
    figure, axes = panel_grid(len(rows), title, size=(4.2, 3.0))
    for ax, (task, budget) in zip(axes, rows, strict=True):
        lines = [x for x in results if x["task"] == task and x["budget"] == budget]
        metric, least = lines[0]["goal"]
        for i, config in enumerate(columns):
            runs = [x for x in lines if x["config"] == config]
            if not runs:
                continue
            steps, mean = mean_curve([x["curve"] for x in runs], 3 if metric == "success" else 2)
            style = "--" if runs[0]["library"] == "sb3" else "-"
            ax.plot(steps, mean, style, color=f"C{i}", label=f"{config} ({len(runs)})")
        ax.axhline(least, color="k", linestyle=":", linewidth=0.8)
        ylabel = f"training {metric} (last 100 episodes)"
        style_panel(ax, f"{task} ({budget / 1000:.0f}k steps)", "environment steps", ylabel)
        ax.legend(fontsize=6)
    save_figure(figure, path)
    print(f"figure: {path}")


# ------------------------------------------------------------------------------------- main ---
def plan(args: argparse.Namespace, configs: dict[str, Config]) -> list[Job]:
    """The jobs asked for, seed by seed (so that every task gets its first seed first)."""
    budgets = QUICK_TASKS if args.quick else {name: TASKS[name].budget for name in args.tasks}
    budgets = {name: budget for name, budget in budgets.items() if available(name)}
    jobs = []
    for seed in sorted(set(args.seeds) | set(args.sb3_seeds)):
        for name, budget in budgets.items():
            for config, (library, settings) in configs.items():
                seeds = args.seeds if library == "ours" else args.sb3_seeds
                runnable = library == "ours" or TASKS[name].sb3
                if seed in seeds and args.only in (None, library) and runnable:
                    scaled = max(1, round(budget * args.budget_scale))
                    jobs.append(Job(name, config, library, settings, seed, scaled, args.episodes))
    return jobs


def available(name: str) -> bool:
    """False, with a printed line, when task `name` needs a module that cannot be imported."""
    needed = TASKS[name].requires
    if needed and importlib.util.find_spec(needed) is None:
        print(f"{name}: skipped, {needed} cannot be imported (pip install --no-deps {needed})")
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "defaults")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS),
                        help="tasks (default: all); given, the table and plot show only these")  # fmt: skip
    parser.add_argument("--configs", nargs="*", choices=list(CONFIGS),
                        help="named configurations (default: all; none: only the --set one); "
                        "given, the table and plot show only these and the --set one")  # fmt: skip
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an ad hoc configuration of ours (repeat the flag)")  # fmt: skip
    parser.add_argument("--only", choices=["ours", "sb3"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sb3-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiplies every budget")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes")
    parser.add_argument("--quick", action="store_true", help="two tasks, tiny budgets, seed 0")
    jobs.add_report_flags(parser)
    args = parser.parse_args(argv)
    if args.worker:
        jobs.print_result(worker(Job(**json.loads(args.worker))))
        return 0
    if args.quick:
        args.seeds, args.sb3_seeds, args.episodes = [0], [0], 10
    shown = args.configs is not None
    tasks_shown = args.tasks is not None
    args.tasks = args.tasks or list(TASKS)
    configs = {name: CONFIGS[name] for name in (CONFIGS if args.configs is None else args.configs)}
    if args.set:
        configs.update([adhoc_config(args.set)])
    return jobs.run_and_report(
        Path(__file__), args, lambda: plan(args, configs), job_key, describe, table, plot,
        keep=lambda line: (not shown or line["config"] in configs)
        and (not tasks_shown or line["task"] in args.tasks),
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
