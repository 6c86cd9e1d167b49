"""Ours against sb3-contrib's RecurrentPPO, side by side in one run, same task and hyperparameters.

Each run happens in a fresh subprocess (so peak RSS is per run), one after the other, never in
parallel. Prints wall time, steps/s, final score, peak memory and the ratios.

    python benchmarks/throughput.py                       # CartPoleNoVel, 100k steps each
    python benchmarks/throughput.py --task tmaze --steps 200000
    python benchmarks/throughput.py --only ours --task tmaze   # skip sb3-contrib
    python benchmarks/throughput.py --sweep n_envs        # our cost as n_envs grows
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# rl-baselines3-zoo's ppo_lstm hyperparameters for CartPoleNoVel-v1 (hyperparams/ppo_lstm.yml):
# 8 envs, n_steps 32, batch 256, 20 epochs, gamma 0.98, lambda 0.8, lr 1e-3 (linear), clip 0.2,
# no entropy bonus, LSTM of 64 units for actor and for critic, MLP heads [64], ortho_init off,
# VecNormalize on observations and rewards. Both sides use Tanh MLPs and a constant clip range
# (the zoo anneals it linearly and uses ReLU) so that the two configurations are identical.
TASKS: dict[str, dict[str, Any]] = {
    "cartpole": {
        "env": "Memory/CartPoleNoVel-v0",
        "env_kwargs": {},
        "steps": 100_000,
        "hp": {
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
        },
        "normalize": True,
        "eval_episodes": 20,
    },
    # A long-gap T-maze with 64 envs: the cost of long sequences (whole-episode BPTT).
    "tmaze": {
        "env": "Memory/TMaze-v0",
        "env_kwargs": {"length": 300},
        "steps": 200_000,
        "hp": {
            "n_envs": 64,
            "n_steps": 301,
            "batch_size": 4816,
            "n_epochs": 4,
            "gamma": 0.99,
            "gae_lambda": 0.95,
            "learning_rate": 1e-3,
            "clip_range": 0.2,
            "ent_coef": 0.0,
            "lstm_hidden_size": 64,
        },
        "normalize": False,
        "eval_episodes": 50,
    },
}


def run_ours(task: dict[str, Any], steps: int, seed: int, overrides: dict[str, Any]) -> dict:
    import envs  # noqa: F401
    from agent import RecurrentPPO
    from agent.evaluation import evaluate

    hp = {**task["hp"], **overrides}
    model = RecurrentPPO(
        task["env"],
        env_kwargs=task["env_kwargs"],
        lr_schedule="linear",
        normalize_obs=task["normalize"],
        normalize_reward=task["normalize"],
        ortho_init=False,
        net_arch=[64],
        device="cpu",
        seed=seed,
        **hp,
    )
    start = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - start
    result = evaluate(
        model,
        task["env"],
        task["env_kwargs"],
        n_episodes=task["eval_episodes"],
        seed=seed + 1000,
        deterministic=True,
    )
    return {"wall": wall, "steps": model.num_timesteps, "score": result["mean_return"]}


def run_sb3(task: dict[str, Any], steps: int, seed: int, overrides: dict[str, Any]) -> dict:
    import numpy as np
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    import envs  # noqa: F401

    hp = {**task["hp"], **overrides}
    n_envs = hp.pop("n_envs")
    hidden = hp.pop("lstm_hidden_size")
    lr = hp.pop("learning_rate")
    env = make_vec_env(task["env"], n_envs=n_envs, seed=seed, env_kwargs=task["env_kwargs"])
    if task["normalize"]:
        env = VecNormalize(env, gamma=hp["gamma"])
    model = RecurrentPPO(
        "MlpLstmPolicy",
        env,
        learning_rate=lambda progress: lr * progress,
        policy_kwargs={
            "ortho_init": False,
            "lstm_hidden_size": hidden,
            "enable_critic_lstm": True,
            "net_arch": {"pi": [64], "vf": [64]},
        },
        device="cpu",
        seed=seed,
        **hp,
    )
    start = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - start
    if task["normalize"]:
        env.training, env.norm_reward = False, False
    eval_env = make_vec_env(task["env"], n_envs=1, seed=seed + 1000, env_kwargs=task["env_kwargs"])
    if task["normalize"]:
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False)
        eval_env.obs_rms = env.obs_rms
    mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=task["eval_episodes"])
    return {"wall": wall, "steps": model.num_timesteps, "score": float(np.asarray(mean))}


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    task = TASKS[args.task]
    steps = args.steps or task["steps"]
    overrides = json.loads(args.overrides)
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
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both sides")
    parser.add_argument("--only", choices=["ours", "sb3"], default=None)
    parser.add_argument("--sweep", choices=["n_envs", "bptt_len"], default=None)
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
    results = {}
    for who in ("ours", "sb3"):
        if args.only and who != args.only:
            continue
        r = spawn(who, args, {})
        r["sps"] = r["steps"] / r["wall"]
        results[who] = r
        print(
            f"{who:5s} wall {r['wall']:8.1f} s  {r['sps']:8.0f} steps/s  score {r['score']:8.2f}  "
            f"peak RSS {r['peak_rss_mb']:7.0f} MB",
            flush=True,
        )
    if len(results) == 2:
        print(
            f"speed-up (sb3-contrib wall / ours): {results['sb3']['wall'] / results['ours']['wall']:.1f}x"
        )


def sweep(args: argparse.Namespace) -> None:
    steps = args.steps or 20_000
    args.steps = steps
    values = [1, 4, 16, 64, 256] if args.sweep == "n_envs" else [16, 64, 256, 1024]
    for v in values:
        overrides: dict[str, Any] = {args.sweep: v}
        if args.sweep == "n_envs":
            n_steps = TASKS[args.task]["hp"]["n_steps"]
            overrides["batch_size"] = min(TASKS[args.task]["hp"]["batch_size"], v * n_steps)
        else:
            overrides.update({"n_steps": max(v, 64), "batch_size": 8 * max(v, 64)})
        r = spawn("ours", args, overrides)
        print(
            f"{args.sweep}={v:5d}  {r['steps'] / r['wall']:8.0f} steps/s  "
            f"peak RSS {r['peak_rss_mb']:6.0f} MB",
            flush=True,
        )


args_threads = 1

if __name__ == "__main__":
    main()
