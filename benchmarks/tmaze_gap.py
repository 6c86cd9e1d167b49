"""Steps until recurrent PPO solves the passive T-maze at a given gap.

Trains on `Memory/TMaze-v0` with `n_steps = length + 2` (one whole episode cycle per rollout,
so backpropagation through time spans cue to choice) and stops once the training success rate
over the last 100 episodes reaches 0.99, or at `--max-steps`. Prints progress and a RESULT line.

    python benchmarks/tmaze_gap.py --length 100 --adam-eps 1e-8
    python benchmarks/tmaze_gap.py --length 100                      # SB3's Adam eps, 1e-5
    python benchmarks/tmaze_gap.py --length 300 --adam-eps 1e-8 --max-steps 8000000
"""

from __future__ import annotations

import argparse
import time

import torch

import envs  # noqa: F401
from agent import RecurrentPPO


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=100, help="corridor length (the gap)")
    parser.add_argument("--adam-eps", type=float, default=1e-5)
    parser.add_argument("--n-envs", type=int, default=32)
    parser.add_argument("--episodes-per-batch", type=int, default=8)
    parser.add_argument("--max-steps", type=float, default=2e6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cycle = args.length + 2  # the episode's length + 1 steps, and the autoreset step
    model = RecurrentPPO(
        "Memory/TMaze-v0",
        env_kwargs={"length": args.length},
        n_envs=args.n_envs,
        n_steps=cycle,
        batch_size=cycle * args.episodes_per_batch,
        n_epochs=4,
        learning_rate=1e-3,
        adam_eps=args.adam_eps,
        gamma=1.0,
        gae_lambda=0.95,
        lstm_hidden_size=64,
        seed=args.seed,
    )
    start = time.perf_counter()

    def report(m: RecurrentPPO) -> bool:
        success = m.logs.get("rollout/success_rate", 0.0)
        if m.n_updates % 10 == 0:
            elapsed = time.perf_counter() - start
            print(f"step {m.num_timesteps}: success {success:.2f}, {elapsed:.0f} s", flush=True)
        return not (success >= 0.99 and len(m.episode_stats.successes) >= 100)

    model.learn(int(args.max_steps), callback=report)
    success = model.logs.get("rollout/success_rate", 0.0)
    print(
        f"RESULT length {args.length}, adam_eps {args.adam_eps:g}: "
        f"{'solved' if success >= 0.99 else 'not solved'} at {model.num_timesteps} steps "
        f"(success {success:.2f}), {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
