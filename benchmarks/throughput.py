"""Ours against sb3-contrib's RecurrentPPO, side by side in one run, same task and hyperparameters.

Each run happens in a fresh subprocess (so peak RSS is per run), one after the other, never in
parallel. Prints wall time, steps/s, final score, peak memory and the ratios.

    python benchmarks/throughput.py                       # CartPoleNoVel, 100k steps each
    python benchmarks/throughput.py --seeds 3             # ... seeds 0, 1, 2 for each side
    python benchmarks/throughput.py --task tmaze          # gap 300, 64 envs, 100k steps each
    python benchmarks/throughput.py --only ours --task tmaze   # skip sb3-contrib
    python benchmarks/throughput.py --sweep n_envs        # our cost as n_envs grows (1 to 256)
    python benchmarks/throughput.py --task tmaze --sweep bptt_len   # ... and as BPTT grows
    python benchmarks/throughput.py --cells lstm gru mingru ffm   # our cores, side by side
    python benchmarks/throughput.py --cells lstm none   # the bound: a core that costs nothing
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from statistics import mean
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `benchmarks.sb3_peer`, when run as a script
    sys.path.insert(0, str(ROOT))

from benchmarks import sb3_peer  # noqa: E402

# rl-baselines3-zoo's ppo_lstm hyperparameters for CartPoleNoVel-v1 (hyperparams/ppo_lstm.yml, as
# listed in the model card of sb3/ppo_lstm-CartPoleNoVel-v1 on the Hugging Face Hub): 8 envs,
# n_steps 32, batch 256, 20 epochs, gamma 0.98, lambda 0.8, lr 1e-3 (linear), clip 0.2 (linear),
# no entropy bonus, ReLU, ortho_init off, an LSTM of 64 units for the actor and one for the
# critic, MLP heads [64]. Measured here with VecNormalize on observations only. Both sides keep
# the clip range constant (ours has no clip schedule). configs/cartpole-novel.yaml is faster
# (a sweep's result, RESULTS.md section 5); this is the zoo's, the same for both libraries.
ZOO_CARTPOLE: dict[str, Any] = {
    "n_envs": 8,
    "n_steps": 32,
    "batch_size": 256,
    "n_epochs": 20,
    "gamma": 0.98,
    "gae_lambda": 0.8,
    "learning_rate": 1e-3,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "lstm_hidden_size": 64,
    "activation_fn": "relu",
}
BOTH = {"lr_schedule": "linear", "ortho_init": False, "net_arch": [64]}
"""Set on both sides of every task, in our names (`sb3_peer.sb3_settings` writes them in
sb3-contrib's)."""
TMAZE_RECIPE = (
    "n_epochs", "gamma", "gae_lambda", "learning_rate", "lstm_hidden_size", "adam_eps",
    "normalize_advantage",
)  # fmt: skip
"""What the T-maze task takes from configs/tmaze-1000.yaml, for both sides."""


def from_preset(name: str, keys: tuple[str, ...], **changes: Any) -> dict[str, Any]:
    """The hyperparameters `keys` that `configs/<name>.yaml` sets, with `changes`."""
    from agent.run.cli import load_preset

    preset = load_preset(name)
    return {**{k: preset[k] for k in keys if k in preset}, **changes}


TASKS: dict[str, dict[str, Any]] = {
    "cartpole": {
        "env": "Memory/CartPoleNoVel-v0",
        "env_kwargs": {},
        "steps": 100_000,
        "hp": ZOO_CARTPOLE,
        # sb3-contrib's side has run with Adam's epsilon at 1e-8 (PyTorch's; it was given an
        # empty optimizer_kwargs, which drops SB3's 1e-5), ours at 1e-5: kept as measured.
        "sb3_hp": {"adam_eps": 1e-8},
        "normalize_obs": True,
        "eval_episodes": 20,
    },
    # A long-gap T-maze with 64 envs: the cost of long sequences (whole-episode BPTT), with the
    # recipe of configs/tmaze-1000.yaml. One rollout holds one whole episode cycle: 302 steps for
    # us (301 steps and Gymnasium's autoreset step), 301 for SB3, which resets within the step.
    "tmaze": {
        "env": "Memory/TMaze-v0",
        "env_kwargs": {"length": 300},
        "steps": 100_000,
        "hp": from_preset(
            "tmaze-1000",
            TMAZE_RECIPE,
            n_envs=64,
            n_steps=302,
            batch_size=604,
            clip_range=0.2,
            ent_coef=0.0,
        ),
        "sb3_hp": {"n_steps": 301, "batch_size": 602},
        "normalize_obs": False,
        "eval_episodes": 50,
    },
    # The tmaze-1000 preset itself (issue 28: can a core trained by a scan beat the LSTM's step
    # loop on sequences of 1,002 steps, two to a minibatch?): ten of its rollouts by default.
    "tmaze-1000": {
        "env": "Memory/TMaze-v0",
        "env_kwargs": {"length": 1000},
        "steps": 10 * 32 * 1002,
        "hp": from_preset("tmaze-1000", (*TMAZE_RECIPE, "n_envs", "n_steps", "batch_size")),
        "sb3_hp": {"n_steps": 1001, "batch_size": 2002},
        "normalize_obs": False,
        "eval_episodes": 20,
    },
    # Images (issue 27), at our defaults on both sides. MiniGrid-MemoryS7's 7x7x3 object codes:
    # ours encodes them as `image_encoder: auto` does; sb3-contrib's NatureCNN cannot take 7x7
    # (CnnLstmPolicy fails), so its MlpLstmPolicy reads them flattened, divided by 255.
    "minigrid-codes": {
        "env": "minigrid:MiniGrid-MemoryS7-v0",
        "env_kwargs": {},
        "wrappers": ["minigrid.wrappers:ImgObsWrapper"],
        "steps": 50_000,
        "hp": "defaults",
        "normalize_obs": False,
        "eval_episodes": 20,
    },
    # Pixels: MemoryS9 as MarcoMeter/recurrent-ppo-truncated-bptt trains it (a 3x3 view drawn as
    # 84x84 RGB, three actions): ours through its CNN, sb3-contrib's through CnnLstmPolicy.
    "minigrid-rgb": {
        "env": "minigrid:MiniGrid-MemoryS9-v0",
        "env_kwargs": {"agent_view_size": 3},
        "wrappers": [
            {"minigrid.wrappers:RGBImgPartialObsWrapper": {"tile_size": 28}},
            "minigrid.wrappers:ImgObsWrapper",
            "benchmarks.minigrid_memory:TurnsAndForward",
        ],
        "steps": 20_000,
        "hp": "defaults",
        "normalize_obs": False,
        "eval_episodes": 20,
    },
}


def our_defaults() -> dict[str, Any]:
    """Our defaults of every setting sb3-contrib shares, so that neither side falls back to its
    own (sb3-contrib's n_steps, network sizes and Adam epsilon differ from ours)."""
    from agent.config import PPOConfig

    config = PPOConfig()
    names = (*sb3_peer.SAME_NAMES, "learning_rate", "lstm_hidden_size", "adam_eps", "net_arch")
    return {k: getattr(config, k) for k in names if k != "normalize_obs"}


def hyperparameters(task: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Our settings of `task` with `overrides`, as our RecurrentPPO takes them."""
    hp = our_defaults() if task["hp"] == "defaults" else task["hp"]
    return {**BOTH, "normalize_obs": task["normalize_obs"], **hp, **overrides}


def run_ours(task: dict[str, Any], steps: int, seed: int, overrides: dict[str, Any]) -> dict:
    import envs  # noqa: F401
    from agent import RecurrentPPO
    from agent.run.evaluation import evaluate

    model = RecurrentPPO(
        task["env"],
        env_kwargs=task["env_kwargs"],
        wrappers=task.get("wrappers", ()),
        device="cpu",
        seed=seed,
        **hyperparameters(task, overrides),
    )
    shares: list[float] = []  # of each iteration's time, the rollout's
    start = time.perf_counter()
    model.learn(steps, callback=lambda m: shares.append(m.logs["time/collect_fraction"]))
    wall = time.perf_counter() - start
    result = evaluate(
        model,
        task["env"],
        task["env_kwargs"],
        wrappers=task.get("wrappers", ()),
        n_episodes=task["eval_episodes"],
        seed=seed + 1000,
        deterministic=True,
    )
    return {
        "wall": wall, "steps": model.num_timesteps, "score": result["mean_return"],
        "rollout_share": mean(shares),
    }  # fmt: skip


def run_sb3(task: dict[str, Any], steps: int, seed: int, overrides: dict[str, Any]) -> dict:
    import numpy as np

    ours = hyperparameters(task, {**task.get("sb3_hp", {}), **overrides})
    env, env_kwargs = task["env"], task["env_kwargs"]
    if task.get("wrappers"):  # one copy as ours makes it, for SB3's make_vec_env to call
        from functools import partial

        from agent.environment.vec_env import check_env_id, copy_wrappers, make_single_env

        check_env_id(env)
        wrappers = copy_wrappers(task["wrappers"])
        env, env_kwargs = partial(make_single_env, env, env_kwargs, wrappers), None
    settings = sb3_peer.sb3_settings(ours)
    trained = sb3_peer.train(env, settings, seed=seed, steps=steps, env_kwargs=env_kwargs)
    result = sb3_peer.evaluate(
        trained, env, episodes=task["eval_episodes"], n_envs=1, seed=seed + 1000,
        env_kwargs=env_kwargs,
    )  # fmt: skip
    score = float(np.mean(result.returns))
    return {"wall": trained.wall, "steps": trained.model.num_timesteps, "score": score}


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    task = TASKS[args.task]
    steps = args.steps or task["steps"]
    overrides = json.loads(args.overrides)
    if "env_kwargs" in overrides:
        task = {**task, "env_kwargs": overrides.pop("env_kwargs")}
    run = run_ours if args.worker == "ours" else run_sb3
    out = run(task, steps, args.seed, overrides)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def spawn(who: str, args: argparse.Namespace, overrides: dict[str, Any]) -> dict:
    cmd = [
        sys.executable, __file__, "--worker", who, "--task", args.task,
        "--steps", str(args.steps), "--seed", str(args.seed),
        "--threads", str(args.threads), "--overrides", json.dumps(overrides),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise SystemExit(f"{who} run failed:\n{proc.stderr[-3000:]}")


def describe_machine() -> str:
    import os

    import torch

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"{args_threads} torch thread(s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="cartpole")
    parser.add_argument("--steps", type=int, default=0, help="0: the task's default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="seeds from --seed on, each side")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both sides")
    parser.add_argument("--only", choices=["ours", "sb3"], default=None)
    parser.add_argument("--sweep", choices=["n_envs", "bptt_len"], default=None)
    parser.add_argument("--plot", help="with --sweep: write a PNG of steps/s and RSS")
    parser.add_argument("--cells", nargs="+",
                        choices=["lstm", "peephole", "gru", "mingru", "ffm", "none"],
                        help="ours only, once per rnn_type, against the first (none: no memory, "
                        "an MLP: the most any cell's speed could give)")  # fmt: skip
    parser.add_argument("--worker", choices=["ours", "sb3"], help=argparse.SUPPRESS)
    parser.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    global args_threads
    args_threads = args.threads
    print(f"machine: {describe_machine()}")
    if args.sweep:
        sweep(args)
        return
    if args.cells:
        compare_cells(args)
        return
    sides = [who for who in ("ours", "sb3") if args.only in (None, who)]
    results: dict[str, list[dict]] = {who: [] for who in sides}
    first_seed = args.seed
    for seed in range(first_seed, first_seed + args.seeds):
        # Seed by seed, the two sides run back to back, so that a slow spell of a shared
        # machine falls on both rather than on one.
        args.seed = seed
        for who in sides:
            r = spawn(who, args, {})
            r["sps"] = r["steps"] / r["wall"]
            results[who].append(r)
            print(
                f"{who:5s} seed {seed}  wall {r['wall']:7.1f} s  {r['sps']:7.0f} steps/s  "
                f"score {r['score']:7.2f}  peak RSS {r['peak_rss_mb']:5.0f} MB",
                flush=True,
            )
    if args.seeds > 1:
        for who in sides:
            runs = results[who]
            print(
                f"{who:5s} mean over {len(runs)} seeds: wall {mean(r['wall'] for r in runs):7.1f} s  "
                f"score {mean(r['score'] for r in runs):7.2f}"
            )
    if len(sides) == 2:
        ours = sum(r["wall"] for r in results["ours"])
        sb3 = sum(r["wall"] for r in results["sb3"])
        print(f"speed-up (sb3-contrib wall / ours): {sb3 / ours:.1f}x")


def compare_cells(args: argparse.Namespace) -> None:
    """Ours with each of `args.cells` as its recurrent core, the task's settings otherwise; seed
    by seed, the cells back to back. Prints each run and each cell's steps/s over the first's."""
    walls: dict[str, list[float]] = {cell: [] for cell in args.cells}
    first_seed = args.seed
    for seed in range(first_seed, first_seed + args.seeds):
        args.seed = seed
        for cell in args.cells:
            r = spawn("ours", args, {"rnn_type": cell})
            walls[cell].append(r["wall"] / r["steps"])
            print(
                f"{cell:8s} seed {seed}  wall {r['wall']:7.1f} s  "
                f"{r['steps'] / r['wall']:7.0f} steps/s  score {r['score']:7.2f}  "
                f"rollout {r['rollout_share']:.0%} of the time  peak RSS {r['peak_rss_mb']:5.0f} MB",
                flush=True,
            )
    base = args.cells[0]
    for cell in args.cells[1:]:
        ratio = sum(walls[base]) / sum(walls[cell])
        print(f"{cell} steps/s over {base}'s: {ratio:.2f}x ({len(walls[cell])} seed(s))")


def sweep(args: argparse.Namespace) -> None:
    steps = args.steps or 20_000
    args.steps = steps
    values = [1, 4, 16, 64, 256] if args.sweep == "n_envs" else [16, 64, 256, 1024]
    rows: list[tuple[int, float, float]] = []
    if args.sweep == "bptt_len" and args.task != "tmaze":
        raise SystemExit("--sweep bptt_len runs on --task tmaze (episodes long enough to cut)")
    for v in values:
        overrides: dict[str, Any] = {args.sweep: v}
        if args.sweep == "n_envs":
            n_steps = TASKS[args.task]["hp"]["n_steps"]
            overrides["batch_size"] = min(TASKS[args.task]["hp"]["batch_size"], v * n_steps)
        else:
            # Fixed data (T-maze episodes of 1025 steps, one per rollout column, two columns per
            # minibatch); only the truncation of backpropagation through time changes.
            overrides.update(
                {"n_steps": 1026, "batch_size": 2 * 1026, "env_kwargs": {"length": 1024}}
            )
        r = spawn("ours", args, overrides)
        rows.append((v, r["steps"] / r["wall"], r["peak_rss_mb"]))
        print(
            f"{args.sweep}={v:5d}  {rows[-1][1]:8.0f} steps/s  peak RSS {r['peak_rss_mb']:6.0f} MB",
            flush=True,
        )
    if args.plot:
        plot_sweep(args.sweep, args.task, rows, args.plot)
        print(f"plot: {args.plot}")


def plot_sweep(name: str, task: str, rows: list[tuple[int, float, float]], path: str) -> None:
    """Steps/s (left axis) and peak RSS (right axis) against the swept value, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values, sps, rss = zip(*rows, strict=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(values, sps, marker="o", label="steps/s")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(values, [str(v) for v in values])
    ax.set_xlabel(name)
    ax.set_ylabel("environment steps per second (training included)")
    right = ax.twinx()
    right.plot(values, rss, marker="s", color="tab:orange", label="peak RSS (MB)")
    right.set_ylabel("peak RSS (MB)")
    ax.set_title(f"Our cost as {name} grows ({task}, {args_threads} torch thread(s))", fontsize=9)
    fig.legend(loc="upper left", bbox_to_anchor=(0.12, 0.88))
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


args_threads = 1

if __name__ == "__main__":
    main()
