"""What `train.py` does between updates: checkpoints, periodic evaluation, stopping on a signal.

A run folder holds:

    config.yaml                the resolved config, env id/kwargs/wrappers, total_timesteps
    model.pt                   the final model
    best_model.pt              the best evaluated model (when evaluation is on)
    checkpoints/step_<N>.pt    periodic checkpoints
    checkpoints/last.pt        the newest checkpoint: what `--resume` continues from
    tb/                        TensorBoard event files
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from agent.algorithm.checkpoint import CheckpointError, load_checkpoint
from agent.algorithm.ppo import RecurrentPPO
from agent.report.introspection import figure_rgb, has_memory_trace, memory_figure, trace_episode
from agent.run.evaluation import evaluate_recorded_env


@dataclass(frozen=True)
class RunPaths:
    """Where everything of a run lives, relative to its folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def model(self) -> Path:
        return self.root / "model.pt"

    @property
    def best(self) -> Path:
        return self.root / "best_model.pt"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"

    def step(self, num_timesteps: int) -> Path:
        return self.checkpoints / f"step_{num_timesteps}.pt"

    def steps(self) -> list[Path]:
        """The periodic checkpoints `checkpoints/step_<N>.pt`, newest (largest N) first."""
        found = [
            (int(match.group(1)), path)
            for path in self.checkpoints.glob("step_*.pt")
            if (match := re.fullmatch(r"step_(\d+)\.pt", path.name))
        ]
        return [path for _, path in sorted(found, reverse=True)]

    def newest_readable_step(self) -> Path | None:
        """The newest `checkpoints/step_<N>.pt` that reads as a checkpoint, if any: where a
        run whose `last.pt` was damaged (a full disk, a copy cut short) can go on from."""
        for path in self.steps():
            try:
                load_checkpoint(path)
            except CheckpointError:
                continue
            return path
        return None

    @classmethod
    def of_checkpoint(cls, path: Path) -> RunPaths:
        """The run a checkpoint file belongs to (`run/checkpoints/last.pt` -> `run`)."""
        parent = path.parent
        return cls(parent.parent if parent.name == "checkpoints" else parent)


class GracefulInterrupt:
    """SIGINT/SIGTERM handling for training: the first signal asks training to stop (the
    iteration in progress is abandoned, the model goes back to where it began, and a checkpoint
    is written); a second one raises KeyboardInterrupt at once. Use as a context manager; the previous handlers are restored on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal number (130 for SIGINT, 143 for SIGTERM), the shell's convention."""
        return 128 + (self.signum or signal.SIGINT)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        # os.write, not print: a handler that prints while the main thread prints can raise
        # "reentrant call" inside the buffered stream.
        os.write(
            sys.stderr.fileno(),
            b"\nstopping: the update in progress is abandoned and a checkpoint saved "
            b"(interrupt again to quit at once)\n",
        )

    def __enter__(self) -> GracefulInterrupt:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


@dataclass
class TrainingCallback:
    """Called by `RecurrentPPO.learn` after every update: evaluates every `eval_freq` steps
    (keeping `best_model.pt`), checkpoints every `checkpoint_freq` steps, and returns False once
    an interrupt was requested.

    A period is due when the step count crosses a multiple of it, so a resumed run keeps the
    same schedule.
    """

    paths: RunPaths
    checkpoint_freq: int
    eval_freq: int = 0
    eval_episodes: int = 20
    log_memory: bool = False
    """At each evaluation, also log the actor's gates and cell state over one episode (LSTM)."""
    eval_seed: int = 10_000
    interrupt: GracefulInterrupt | None = None
    best_mean_reward: float = -math.inf
    log: Callable[[str], None] = print
    last_good_step: int = field(default=0, init=False)
    """Steps trained into the current parameters (as of the last completed update)."""

    def start(self, model: RecurrentPPO) -> None:
        """Note where training starts (call before `learn`)."""
        self.last_good_step = model.num_timesteps

    def __call__(self, model: RecurrentPPO) -> bool:
        previous, self.last_good_step = self.last_good_step, model.num_timesteps
        if _crossed(previous, model.num_timesteps, self.eval_freq):
            self.evaluate(model)
        if _crossed(previous, model.num_timesteps, self.checkpoint_freq):
            self.checkpoint(model, keep=True)
            self.log(f"step {model.num_timesteps}: {_summary(model.logs)}")
        return not (self.interrupt is not None and self.interrupt.requested)

    def extra(self) -> dict[str, Any]:
        """What a checkpoint records for the callback to resume with."""
        best = None if math.isinf(self.best_mean_reward) else self.best_mean_reward
        return {
            "best_mean_reward": best,
            "checkpoint_freq": self.checkpoint_freq,
            "eval_freq": self.eval_freq,
            "eval_episodes": self.eval_episodes,
        }

    def restore(self, extra: dict[str, Any]) -> None:
        """Take back the best evaluation `extra` recorded (on `--resume`)."""
        if extra.get("best_mean_reward") is not None:
            self.best_mean_reward = float(extra["best_mean_reward"])

    def checkpoint(self, model: RecurrentPPO, keep: bool = False) -> Path:
        """Write `checkpoints/last.pt` (and `checkpoints/step_<N>.pt` when `keep`)."""
        if keep:
            model.save(self.paths.step(model.num_timesteps), extra=self.extra())
        return model.save(self.paths.last, extra=self.extra())

    def evaluate(self, model: RecurrentPPO) -> dict[str, Any]:
        """Run `eval_episodes` deterministic episodes on the training env's spec; log
        `eval/mean_reward`, `eval/mean_ep_length`, `eval/success_rate`; keep the best model."""
        results = evaluate_recorded_env(
            model,
            n_episodes=self.eval_episodes,
            seed=self.eval_seed,
            deterministic=True,
        )
        scalars = {
            "eval/mean_reward": results["mean_return"],
            "eval/mean_ep_length": results["mean_length"],
        }
        if results["success_rate"] is not None:
            scalars["eval/success_rate"] = results["success_rate"]
        model.log_scalars(scalars)
        if self.log_memory:
            self.log_memory_trace(model)
        best = results["mean_return"] > self.best_mean_reward
        if best:
            self.best_mean_reward = results["mean_return"]
            model.save(self.paths.best, extra=self.extra())
        success = (
            f", success {results['success_rate']:.2f}"
            if results["success_rate"] is not None
            else ""
        )
        self.log(
            f"step {model.num_timesteps}: eval return {results['mean_return']:.3g} "
            f"± {results['std_return']:.2g}{success}" + (" (new best)" if best else "")
        )
        return results

    def log_memory_trace(self, model: RecurrentPPO) -> None:
        """Histograms of the gate activations and the memory (an LSTM's cell state: `memory/cell`)
        over one evaluation episode, and the figure `evaluate.py --plot-memory` draws of it (as an
        RGB image), under `memory/` in TensorBoard. The figure needs matplotlib; without it only
        the histograms are logged."""
        writer = model.tensorboard_writer()
        if writer is None or not has_memory_trace(model):
            return
        spec = model.env_spec
        trace = trace_episode(
            model, spec["id"], spec["kwargs"], seed=self.eval_seed, wrappers=spec["wrappers"]
        )
        step = model.num_timesteps
        for name, values in [*trace.gates.items(), (trace.memory[0], trace.cell)]:
            writer.add_histogram(f"memory/{name.replace(' ', '_')}", values, step)
        if importlib.util.find_spec("matplotlib") is not None:
            image = figure_rgb(memory_figure([trace]))
            writer.add_image("memory/gates_and_cell", image, step, dataformats="HWC")


def _crossed(previous: int, current: int, period: int) -> bool:
    """Did the step count pass a multiple of `period` (0 = never) between the two counts?"""
    return period > 0 and current // period > previous // period


def _summary(logs: dict[str, float]) -> str:
    parts = []
    for key, name in (
        ("rollout/ep_rew_mean", "ep_rew_mean"),
        ("rollout/success_rate", "success"),
        ("time/fps", "fps"),
    ):
        if key in logs:
            parts.append(f"{name} {logs[key]:.3g}")
    return ", ".join(parts) or "checkpoint saved"
