"""Evaluate a trained model on the env its checkpoint records:
`python evaluate.py RUN_DIR_or_CHECKPOINT --episodes 100 --json result.json`.

Exit codes: 0 done, 1 the env failed while running, 2 bad input (missing, corrupt or unsafe
checkpoint, bad env kwargs, missing video dependency).
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from agent import CheckpointError, EnvError, RecurrentPPO
from agent.report.figures import check_figure_path
from agent.report.introspection import has_memory_trace, plot_memory, trace_episode
from agent.run.callbacks import RunPaths
from agent.run.cli import UsageError, evaluate_parser, one_line, parse_env_kwargs, run_script
from agent.run.evaluation import check_spaces, evaluate_recorded_env, make_eval_env


def find_checkpoint(path: Path) -> tuple[Path, str]:
    """A run folder -> its `model.pt`, else `checkpoints/last.pt`; a file -> itself. Returns the
    checkpoint and a note saying which was taken."""
    if not path.is_dir():
        return path, "as given"
    paths = RunPaths(path)
    if paths.model.is_file():
        return paths.model, "the final model"
    if paths.last.is_file():
        return paths.last, "the last checkpoint: the run has not finished"
    raise CheckpointError(f"{path} holds neither model.pt nor checkpoints/last.pt")


def load_or_point_at_a_step(
    checkpoint: Path, device: str, overrides: dict[str, Any]
) -> RecurrentPPO:
    """Load `checkpoint`; when it is a run's unreadable `checkpoints/last.pt`, the one-line
    `CheckpointError` names the newest intact `checkpoints/step_<N>.pt` and what to do with it."""
    try:
        return RecurrentPPO.load(checkpoint, env=None, device=device, env_overrides=overrides)
    except CheckpointError as e:
        paths = RunPaths.of_checkpoint(checkpoint)
        intact = paths.newest_readable_step() if checkpoint == paths.last else None
        if intact is None:
            raise
        step = shlex.quote(str(intact))
        raise CheckpointError(
            f"{one_line(e)}; {intact} is intact: evaluate it with python evaluate.py {step}, "
            f"or resume training from it with python train.py --resume {step}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    """Load, rebuild the recorded env (with `--env-kwargs` overrides), run, report. The model
    loads on `--device`, `auto` as SB3's `load`, not where it trained: evaluating resumes no
    training, so a model trained on CUDA evaluates on a machine without it."""
    args = evaluate_parser().parse_args(argv)
    try:
        if args.episodes <= 0:
            raise UsageError(f"--episodes must be positive, got {args.episodes}")
        if args.n_envs <= 0:
            raise UsageError(f"--n-envs must be positive, got {args.n_envs}")
        if args.video is not None and importlib.util.find_spec("moviepy") is None:
            raise UsageError("--video needs moviepy: pip install moviepy")
        if args.plot_memory is not None:
            if importlib.util.find_spec("matplotlib") is None:
                raise UsageError("--plot-memory needs matplotlib: pip install matplotlib")
            if args.plot_episodes <= 0:
                raise UsageError(f"--plot-episodes must be positive, got {args.plot_episodes}")
            check_figure_path(args.plot_memory)  # before the evaluation, not after it
        overrides = parse_env_kwargs(args.env_kwargs)
        checkpoint, note = find_checkpoint(Path(args.path))
        model = load_or_point_at_a_step(checkpoint, args.device, overrides)
        spec = model.env_spec
        if not spec.get("id"):
            raise CheckpointError(f"{checkpoint} does not record which env it was trained on")
        # Build the env once now, so bad kwargs fail here (exit code 2), before any output.
        env = make_eval_env(spec["id"], spec["kwargs"], spec["wrappers"], 1)
        try:
            check_spaces(model, env, spec["id"], spec["kwargs"])
        finally:
            env.close()
        if args.plot_memory is not None and not has_memory_trace(model):
            raise UsageError(
                f"--plot-memory draws a recurrent core's gates; this model's core is "
                f"{model.config.rnn_type!r}"
            )
    except ValueError as e:  # CheckpointError, EnvError, ConfigError, UsageError
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2

    kwargs = f" {spec['kwargs']}" if spec["kwargs"] else ""
    print(
        f"evaluating {checkpoint} ({note}, step {model.num_timesteps}) on {spec['id']}{kwargs}: "
        f"{args.episodes} episodes, {'stochastic' if args.stochastic else 'deterministic'}, "
        f"seed {args.seed}",
        flush=True,
    )
    try:
        results = evaluate_recorded_env(
            model,
            n_episodes=args.episodes,
            seed=args.seed,
            deterministic=not args.stochastic,
            n_envs=args.n_envs,
            video_dir=args.video,
        )
    except EnvError as e:  # e.g. an env that cannot render for --video
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        print(
            f"error: environment {spec['id']!r} failed: {type(e).__name__}: {one_line(e)}",
            file=sys.stderr,
        )
        return 1
    print(_report(results))
    if args.plot_memory is not None:
        traces = [
            trace_episode(
                model, spec["id"], spec["kwargs"], seed=args.seed + k, wrappers=spec["wrappers"]
            )
            for k in range(args.plot_episodes)
        ]
        print(f"memory plot: {plot_memory(traces, args.plot_memory)}")
    if args.video is not None:
        print(f"videos: {args.video}")
    if args.json is not None:
        record: dict[str, Any] = {
            **results,
            "checkpoint": str(checkpoint),
            "num_timesteps": model.num_timesteps,
            "env": spec["id"],
            "env_kwargs": spec["kwargs"],
            "deterministic": not args.stochastic,
            "seed": args.seed,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        print(f"results: {args.json}")
    return 0


def _report(results: dict[str, Any]) -> str:
    success = results["success_rate"]
    return (
        f"return {results['mean_return']:.4g} ± {results['std_return']:.3g}, "
        f"length {results['mean_length']:.4g}, "
        f"success {'n/a (the env reports none)' if success is None else f'{success:.3f}'} "
        f"over {results['episodes']} episodes"
    )


if __name__ == "__main__":
    run_script(main)
