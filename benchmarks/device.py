"""Training on CUDA beside the CPU, and a run that moves from one to the other and back.

    python benchmarks/device.py                  # tmaze-short on each device, then the moves
    python benchmarks/device.py --seed 1 --episodes 200
    python benchmarks/device.py --rnn-type mingru   # the minGRU, whose training scans on CUDA

On a machine with CUDA: trains the `tmaze-short` preset (configs/tmaze-short.yaml, its own step
budget) once on the CPU and once on CUDA, evaluates each final model (deterministic episodes; the
goal is a success rate of at least 0.99) and prints both speeds in steps per second. Then a run
moves: a few updates on the CPU, saved; loaded on CUDA, trained on with
`learn(reset_num_timesteps=False)`, saved; loaded on the CPU, trained on again. Each move must
keep the weights, the step count and the episodes in progress. Exits 0 when every check passes,
1 otherwise.

On a machine without CUDA it prints one line saying so and exits 0 (CI runs it there).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PRESET = "tmaze-short"
GOAL = 0.99
"""The least success rate of each device's final model (the preset's header says it solves)."""
NO_CUDA = "no CUDA on this machine: nothing to compare (benchmarks/device.py needs a GPU)"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/device.py",
        description="Train tmaze-short on the CPU and on CUDA: check the goal (success >= "
        f"{GOAL}) on both, print both speeds in steps/s, and check that a run resumes from the "
        "CPU on CUDA and back. Without CUDA: says so in one line and exits 0.",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N", help="training seed (default: 0)"
    )
    parser.add_argument(
        "--rnn-type",
        default="lstm",
        choices=["lstm", "peephole", "gru", "mingru", "ffm"],
        help="the preset's recurrent core (default: lstm, the preset's)",
    )
    parser.add_argument(
        "--episodes",
        type=int,
        default=100,
        metavar="N",
        help="deterministic evaluation episodes of each final model (default: 100)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import torch  # after the parsing, so that --help is instant

    if not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    sys.path.insert(0, str(ROOT))
    from agent.run.cli import load_preset

    preset = {**load_preset(PRESET), "rnn_type": args.rnn_type}
    print(
        f"{PRESET} ({args.rnn_type}, {preset['total_timesteps']} steps, seed {args.seed}) on "
        "the CPU and on "
        f"{torch.cuda.get_device_name()}; success over {args.episodes} deterministic episodes "
        f"(goal >= {GOAL}):",
        flush=True,
    )
    ok = True
    speeds: dict[str, float] = {}
    for device in ("cpu", "cuda"):
        success, steps, seconds = train_and_evaluate(preset, device, args.seed, args.episodes)
        speeds[device] = steps / seconds
        reached = success >= GOAL
        ok &= reached
        ratio = f", {speeds['cuda'] / speeds['cpu']:.2f}x the CPU's" if device == "cuda" else ""
        print(
            f"  {device + ':':5} success {success:.3f}{'' if reached else ' (below the goal)'}, "
            f"{speeds[device]:.0f} steps/s ({seconds:.1f} s){ratio}",
            flush=True,
        )
    moved, message = moves_between_devices(preset, args.seed)
    ok &= moved
    print(f"  resume cpu -> cuda -> cpu: {message}")
    return 0 if ok else 1


def build(preset: dict[str, Any], device: str, seed: int) -> Any:
    """A model of the preset, on `device`."""
    from agent import RecurrentPPO
    from agent.run.cli import build_config

    config = build_config(preset, {"device": device, "seed": seed})
    return RecurrentPPO(
        preset["env"],
        config,
        env_kwargs=preset.get("env_kwargs") or {},
        wrappers=preset.get("wrappers") or [],
    )


def train_and_evaluate(
    preset: dict[str, Any], device: str, seed: int, episodes: int
) -> tuple[float, int, float]:
    """Train the preset on `device`; return the final model's success rate, the steps trained
    and the seconds they took."""
    from agent.run.evaluation import evaluate

    model = build(preset, device, seed)
    start = time.perf_counter()
    model.learn(preset["total_timesteps"])
    seconds = time.perf_counter() - start
    results = evaluate(
        model,
        preset["env"],
        preset.get("env_kwargs") or {},
        preset.get("wrappers") or [],
        n_episodes=episodes,
        seed=seed + 10_000,
    )
    model.close()
    return float(results["success_rate"]), model.num_timesteps, seconds


def moves_between_devices(preset: dict[str, Any], seed: int) -> tuple[bool, str]:
    """Three updates on the CPU, two on CUDA, two on the CPU, saving and loading between them.
    Returns whether every move kept the weights, the step count and the episodes in progress,
    and a line that says so."""
    import torch

    from agent import RecurrentPPO
    from agent.algorithm.checkpoint import load_checkpoint

    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        model = build(preset, "cpu", seed)
        rollout = model.config.rollout_size
        model.learn(3 * rollout)
        path = model.save(Path(tmp) / "cpu.pt")
        model.close()
        steps = [model.num_timesteps]
        for device in ("cuda", "cpu"):
            model = RecurrentPPO.load(path, env="recorded", device=device)
            saved = load_checkpoint(path)["policy"]
            loaded = model.policy.state_dict()
            if model.device.type != device:
                problems.append(f"loaded on {model.device}, not {device}")
            if any(not torch.equal(saved[k], loaded[k].cpu()) for k in saved):
                problems.append(f"the weights changed on the way to {device}")
            if not model.continues_episodes:
                problems.append(f"the episodes in progress were not continued on {device}")
            model.learn(2 * rollout, reset_num_timesteps=False)
            if not all(torch.isfinite(p).all() for p in model.policy.parameters()):
                problems.append(f"non-finite weights after training on {device}")
            steps.append(model.num_timesteps)
            path = model.save(Path(tmp) / f"{device}.pt")
            model.close()
        if steps != [3 * rollout, 5 * rollout, 7 * rollout]:
            problems.append(f"step counts {steps}, expected {[3, 5, 7]} rollouts")
        recorded = load_checkpoint(path).get("device")
        if recorded != "cpu":
            problems.append(f"the last checkpoint records device {recorded!r}, not 'cpu'")
    counts = " -> ".join(str(s) for s in steps)
    if problems:
        return False, f"FAILED: {'; '.join(problems)} (steps {counts})"
    return True, f"ok (steps {counts})"


if __name__ == "__main__":
    sys.exit(main())
