"""Native batched vector envs against Gymnasium's SyncVectorEnv of single envs, side by side.

python benchmarks/vector_env_speed.py                 # 64 T-maze copies
python benchmarks/vector_env_speed.py --env Memory/VisualMatch-v0 --num-envs 16
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import envs  # noqa: F401


def steps_per_second(env: gym.vector.VectorEnv, steps: int, seed: int) -> float:
    """Env steps (all copies counted) per second under uniform random actions."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    return steps * env.num_envs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Memory/TMaze-v0")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"vector_entry_point": [], "sync": []}
    for r in range(args.repeats):  # interleaved, so both see the same machine load
        for mode in rates:
            env = gym.make_vec(args.env, num_envs=args.num_envs, vectorization_mode=mode)
            rates[mode].append(steps_per_second(env, args.steps, seed=r))
            env.close()
    native, sync = (float(np.median(rates[m])) for m in ("vector_entry_point", "sync"))
    print(f"{args.env}, {args.num_envs} copies, {args.steps} steps x {args.repeats} repeats")
    print(f"native vector env: {native:12,.0f} steps/s")
    print(f"SyncVectorEnv     : {sync:12,.0f} steps/s")
    print(f"ratio             : {native / sync:12.1f}x")


if __name__ == "__main__":
    main()
