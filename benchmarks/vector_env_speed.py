"""Native batched vector envs against Gymnasium's SyncVectorEnv of single envs, then
SyncVectorEnv against AsyncVectorEnv (one process per copy) on an env slow to step, side by side.

python benchmarks/vector_env_speed.py                 # 64 T-maze copies; 8 CartPoles at 1 ms/step
python benchmarks/vector_env_speed.py --env Memory/VisualMatch-v0 --num-envs 16
python benchmarks/vector_env_speed.py --slow-env Acrobot-v1 --step-cost-ms 0   # a real cheap env
python benchmarks/vector_env_speed.py --step-cost-ms 0 --slow-num-envs 16  # async's round trip
python benchmarks/vector_env_speed.py --slow-env minigrid:MiniGrid-MemoryS9-v0 \
    --slow-env-kwargs agent_view_size=3 --slow-wrapper minigrid.wrappers:RGBImgPartialObsWrapper \
    tile_size=28 --slow-wrapper minigrid.wrappers:ImgObsWrapper --step-cost-ms 0  # 84x84 RGB

The slow env is a Gymnasium env (CartPole-v1 by default) wrapped in `FixedStepCost`, which spends
a fixed CPU time in every step. It stands in for a third-party env written in Python: none of
Gymnasium's slow envs (Box2D, MuJoCo) is installed with this project, and its pure-Python ones
step in 10-50 us, too cheap for worker processes to pay. The cost is CPU time (busy work), not a
sleep: a sleeping env would let async win even on one CPU, which slow Python code never does.
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import gymnasium as gym
import numpy as np

import envs  # noqa: F401
from agent.environment.vec_env import async_threshold, seconds_per_step, usable_cpus
from agent.environment.wrappers import load_wrappers
from agent.run.cli import parse_env_kwargs, parse_wrappers


class FixedStepCost(gym.Wrapper):
    """Spends `cost_s` seconds of this thread's CPU time in every `step`, like a slow env."""

    def __init__(self, env: gym.Env, cost_s: float) -> None:
        super().__init__(env)
        self.cost_s = cost_s

    def step(self, action):
        end = time.thread_time() + self.cost_s
        while time.thread_time() < end:
            pass
        return self.env.step(action)


def steps_per_second(env: gym.vector.VectorEnv, steps: int, seed: int) -> float:
    """Env steps (all copies counted) per second under uniform random actions."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    return steps * env.num_envs / (time.perf_counter() - start)


def median_rates(
    env_id: str, num_envs: int, modes: dict[str, str], steps: int, repeats: int, **make_kwargs
) -> dict[str, float]:
    """Median steps/s of each `{label: vectorization_mode}`, the modes interleaved so that all
    see the same machine load."""
    rates: dict[str, list[float]] = {label: [] for label in modes}
    for r in range(repeats):
        for label, mode in modes.items():
            env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **make_kwargs)
            env.reset(seed=r)  # workers started and warm before the clock
            env.step(env.action_space.sample())
            rates[label].append(steps_per_second(env, steps, seed=r))
            env.close()
    return {label: float(np.median(values)) for label, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Memory/TMaze-v0")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slow-env", default="CartPole-v1")
    parser.add_argument("--slow-env-kwargs", nargs="*", default=[], metavar="K=V",
                        help="keyword arguments of the slow env, as train.py's --env-kwargs")  # fmt: skip
    parser.add_argument("--slow-wrapper", nargs="+", action="append", default=[],
                        metavar=("MODULE:CALLABLE", "K=V"),
                        help="wrap the slow env (under the step cost), as train.py's --wrapper "
                        "(innermost first): to time envs with large observations, images")  # fmt: skip
    parser.add_argument("--slow-num-envs", type=int, default=8)
    parser.add_argument("--slow-steps", type=int, default=300)
    parser.add_argument("--step-cost-ms", type=float, default=1.0, help="CPU time per step")
    args = parser.parse_args()

    modes = {"native vector env": "vector_entry_point", "SyncVectorEnv": "sync"}
    rates = median_rates(args.env, args.num_envs, modes, args.steps, args.repeats)
    print(f"{args.env}, {args.num_envs} copies, {args.steps} steps x {args.repeats} repeats")
    for label, rate in rates.items():
        print(f"{label:18}: {rate:12,.0f} steps/s")
    print(f"{'ratio':18}: {rates['native vector env'] / rates['SyncVectorEnv']:12.1f}x")

    cost_s = args.step_cost_ms / 1000
    wrappers = load_wrappers(parse_wrappers(args.slow_wrapper, "--slow-wrapper"))
    if cost_s > 0:
        wrappers.append(functools.partial(FixedStepCost, cost_s=cost_s))
    env_kwargs = parse_env_kwargs(args.slow_env_kwargs, "--slow-env-kwargs")
    modes = {"SyncVectorEnv": "sync", "AsyncVectorEnv": "async"}
    rates = median_rates(
        args.slow_env, args.slow_num_envs, modes, args.slow_steps, args.repeats,
        wrappers=wrappers, **env_kwargs,
    )  # fmt: skip
    with gym.make(args.slow_env, **env_kwargs) as env:
        for wrapper in wrappers:
            env = wrapper(env)
        step_s = seconds_per_step(env)
    cpus = usable_cpus()
    print(
        f"\n{args.slow_env} {' '.join(args.slow_env_kwargs)} "
        f"{' '.join(' '.join(w) for w in args.slow_wrapper)} "
        f"+ {args.step_cost_ms:g} ms CPU per step, {args.slow_num_envs} copies, "
        f"{args.slow_steps} steps x {args.repeats} repeats, {cpus} CPUs "
        f"(load average {os.getloadavg()[0]:.1f}: other work leaves async fewer CPUs)"
    )
    for label, rate in rates.items():
        print(f"{label:18}: {rate:12,.0f} steps/s")
    print(f"{'ratio async/sync':18}: {rates['AsyncVectorEnv'] / rates['SyncVectorEnv']:12.2f}x")
    if cost_s == 0:  # what async adds to each copy's step: the round trip to its worker
        round_trip = 1 / rates["AsyncVectorEnv"] - 1 / rates["SyncVectorEnv"]
        print(f"{'round trip':18}: {round_trip * 1e6:12.0f} us per copy and step")
    choice = "async" if step_s > async_threshold(cpus) else "sync"
    print(
        f"--vec-env auto    : {choice} (one step {step_s * 1e6:,.0f} us, "
        f"async above {async_threshold(cpus) * 1e6:,.0f} us on {cpus} CPUs)"
    )


if __name__ == "__main__":
    main()
