"""Steps until recurrent PPO solves the passive T-maze at a given gap.

Trains on `Memory/TMaze-v0` with `n_steps = length + 2` (one whole episode cycle per rollout,
so backpropagation through time spans cue to choice) and stops once the training success rate
over the last 100 episodes reaches 0.99, or at `--max-steps`. Prints progress and a RESULT line.

The defaults are the recipe of `configs/tmaze-1000.yaml`; the flags take it apart:

    python benchmarks/tmaze_gap.py --length 1000 --max-steps 10000000
    python benchmarks/tmaze_gap.py --length 300 --adam-eps 1e-5          # SB3's Adam eps
    python benchmarks/tmaze_gap.py --length 300 --episodes-per-batch 8   # 4x fewer Adam steps
    python benchmarks/tmaze_gap.py --length 300 --gae-lambda 0.95
    python benchmarks/tmaze_gap.py --length 300 --set forget_bias_init=chrono-forget
    python benchmarks/tmaze_gap.py --length 100 --set normalize_advantage=True --keep-going
"""

from __future__ import annotations

import argparse
import time

import torch
from memory_length import recipe  # benchmarks/, on sys.path when run as a script

import envs  # noqa: F401
from agent import RecurrentPPO
from agent.run.cli import parse_env_kwargs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=100, help="corridor length (the gap)")
    parser.add_argument("--adam-eps", type=float, help="default: the recipe's, 1e-12")
    parser.add_argument("--gae-lambda", type=float, help="default: the recipe's, 0.5")
    parser.add_argument("--n-envs", type=int, help="default: the recipe's, 32")
    parser.add_argument(
        "--episodes-per-batch", type=int, help="episode columns per minibatch (recipe: 2)"
    )
    parser.add_argument("--max-steps", type=float, default=2e6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="train to --max-steps even once solved (does the solution last?)",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="other hyperparameters, e.g. --set gae_lambda=0.5 forget_bias_init=chrono-forget",
    )
    args = parser.parse_args()
    overrides = parse_env_kwargs(args.set)
    torch.set_num_threads(args.threads)

    config = recipe(args.length)  # n_steps = one whole episode cycle, length + 2
    flags = {"adam_eps": args.adam_eps, "gae_lambda": args.gae_lambda, "n_envs": args.n_envs}
    config.update({k: v for k, v in flags.items() if v is not None}, seed=args.seed)
    if args.episodes_per_batch is not None:
        config["batch_size"] = config["n_steps"] * args.episodes_per_batch
    config.update(overrides)
    model = RecurrentPPO("Memory/TMaze-v0", env_kwargs={"length": args.length}, **config)
    start = time.perf_counter()

    first_solved: list[int | None] = [None]

    def report(m: RecurrentPPO) -> bool:
        success = m.logs.get("rollout/success_rate", 0.0)
        if m.n_updates % 10 == 0:
            elapsed = time.perf_counter() - start
            print(f"step {m.num_timesteps}: success {success:.2f}, {elapsed:.0f} s", flush=True)
        solved = success >= 0.99 and len(m.successes) >= 100
        if solved and first_solved[0] is None:
            first_solved[0] = m.num_timesteps
        return args.keep_going or not solved

    model.learn(int(args.max_steps), callback=report)
    success = model.logs.get("rollout/success_rate", 0.0)
    solved = f"first solved at {first_solved[0]} steps" if first_solved[0] else "not solved"
    print(
        f"RESULT length {args.length}, adam_eps {config['adam_eps']:g}, "
        f"gae_lambda {config['gae_lambda']:g}, "
        f"{config['batch_size'] // config['n_steps']} episodes per batch, seed {args.seed} "
        f"{' '.join(args.set)}: "
        f"{solved}; final success {success:.2f} at {model.num_timesteps} steps, "
        f"{time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
