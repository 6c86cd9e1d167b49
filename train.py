"""Train recurrent PPO: `python train.py` (a short T-maze), or `--env ID`, `--config FILE.yaml`,
any hyperparameter as a flag, `--resume RUN_DIR`. See `python train.py --help`.

Exit codes: 0 done, 1 training failed (env error, NaN), 2 bad input (nothing was trained),
130/143 stopped by SIGINT/SIGTERM after saving a checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import shlex
import sys
import traceback
from pathlib import Path

from agent import CheckpointError, NumericalError, RecurrentPPO
from agent.run.callbacks import GracefulInterrupt, RunPaths, TrainingCallback
from agent.run.cli import (
    UsageError,
    default_run_dir,
    one_line,
    refuse_settings_on_resume,
    resolve_schedule,
    resolve_settings,
    run_script,
    train_parser,
)
from agent.run.run_folder import (
    cannot_make,
    check_folder_can_be_made,
    claim_new_folder,
    write_config,
)


@dataclasses.dataclass
class Run:
    """A model ready to train, where it writes, and how far it trains."""

    model: RecurrentPPO
    paths: RunPaths
    total_timesteps: int
    resumed: bool


def main(argv: list[str] | None = None) -> int:
    """Parse, build (every input error surfaces here, before training), train, report."""
    args = train_parser().parse_args(argv)
    try:
        run = resume_run(args) if args.resume else new_run(args)
    except ValueError as e:  # ConfigError, EnvError, CheckpointError, UnsupportedSpaceError...
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    return train(run, args)


# ---------------------------------------------------------------------------- building ---


def new_run(args: argparse.Namespace) -> Run:
    """Resolve defaults < preset < flags, build the model (validating everything), then create
    the run folder and write `config.yaml`."""
    _check_run_options(args)
    settings = resolve_settings(args)
    env_id, config = settings.env_id, settings.config
    for note in settings.notes:
        print(f"note: {note}", flush=True)
    # Early, before the env is built: a folder that cannot be written fails with nothing made.
    if args.run_dir:
        check_folder_can_be_made(Path(args.run_dir))
        _refuse_a_used_folder(RunPaths(Path(args.run_dir)))
    else:
        check_folder_can_be_made(default_run_dir(env_id, config.seed).parent)
    model = RecurrentPPO(env_id, config, env_kwargs=settings.env_kwargs, wrappers=settings.wrappers)
    try:
        paths = claim_run_dir(Path(args.run_dir) if args.run_dir else None, env_id, config.seed)
    except UsageError:
        model.close()
        raise
    model.tensorboard_log = paths.tensorboard
    write_config(paths, model, settings.total_timesteps)
    return Run(model, paths, settings.total_timesteps, resumed=False)


def claim_run_dir(run_dir: Path | None, env_id: str, seed: int) -> RunPaths:
    """Make the run's folder its own, atomically, so that two runs never share one.

    `--run-dir` is claimed by creating its `config.yaml` exclusively (the folder may exist, but
    not hold a run). The default `runs/<env>__<seed>__<time>` is claimed by creating the folder
    itself; when another run took that name in the same second, `-2`, `-3`, ... are tried.
    Raises `UsageError` when `run_dir` already holds a run, or cannot be created or written.
    """
    if run_dir is not None:
        paths = RunPaths(run_dir)
        check_folder_can_be_made(paths.root)
        _refuse_a_used_folder(paths)
        try:
            paths.root.mkdir(parents=True, exist_ok=True)
            paths.config.open("x").close()
        except FileExistsError:
            _refuse_a_used_folder(paths, taken=True)
        except OSError as e:
            raise cannot_make(paths.root, e) from None
        return paths
    return RunPaths(claim_new_folder(default_run_dir(env_id, seed)))


def _refuse_a_used_folder(paths: RunPaths, taken: bool = False) -> None:
    if taken or paths.config.exists() or paths.last.exists():
        raise UsageError(
            f"{paths.root} already holds a run; continue it with --resume {paths.root} "
            "or choose another --run-dir"
        )


RESUME_OPTIONS = {
    "resume", "total_timesteps", "device", "checkpoint_freq", "eval_freq", "eval_episodes",
    "log_memory", "progress",
}  # fmt: skip
"""What `--resume` may be given besides the run: everything else is the run's own setting."""


def resume_run(args: argparse.Namespace) -> Run:
    """Load `checkpoints/last.pt` of a run folder (or the given checkpoint) with the env it
    records; `--total-timesteps` may raise the target."""
    _check_run_options(args)
    refuse_settings_on_resume(args, train_parser(), RESUME_OPTIONS, "the run's checkpoint")
    path = Path(args.resume)
    checkpoint = RunPaths(path).last if path.is_dir() else path
    if path.is_dir() and not checkpoint.exists() and RunPaths(path).model.exists():
        checkpoint = RunPaths(path).model
    paths = RunPaths.of_checkpoint(checkpoint) if checkpoint.exists() else RunPaths(path)
    if not checkpoint.exists():
        raise CheckpointError(f"checkpoint not found: {checkpoint}")
    # The run stays on the device it trained on (exact resume) unless --device moves it: a run
    # trained on CUDA asks for --device cpu on a machine without (a one-line ConfigError).
    device = getattr(args, "device", None)
    try:
        model = RecurrentPPO.load(
            checkpoint,
            env="recorded",
            device=device if isinstance(device, str) else None,
            tensorboard_log=paths.tensorboard,
        )
    except CheckpointError as e:
        intact = paths.newest_readable_step() if checkpoint == paths.last else None
        if intact is None:
            raise
        raise CheckpointError(
            f"{one_line(e)}; {intact} is intact: resume from it with python "
            f"{shlex.quote(_script('train.py'))} --resume {shlex.quote(str(intact))}"
        ) from None
    total = args.total_timesteps or model.total_timesteps
    if total <= model.num_timesteps:
        model.close()
        raise UsageError(
            f"{checkpoint} has trained {model.num_timesteps} of its {model.total_timesteps} "
            f"steps; pass --total-timesteps above {model.num_timesteps} to train on"
        )
    write_config(paths, model, total)
    print(f"resuming {checkpoint} at step {model.num_timesteps}")
    if not model.continues_episodes:
        print(
            f"note: {model.env_spec['id']} cannot save its state as data, so training goes on "
            "with fresh episodes (seeded from the step count); the episodes in progress when "
            "the run stopped are not continued",
            flush=True,
        )
    return Run(model, paths, total, resumed=True)


def _check_run_options(args: argparse.Namespace) -> None:
    resolve_schedule(args, {})
    if args.total_timesteps is not None and args.total_timesteps <= 0:
        raise UsageError(f"--total-timesteps must be positive, got {args.total_timesteps}")
    if args.log_memory and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--log-memory draws figures with matplotlib: pip install matplotlib")


# ---------------------------------------------------------------------------- training ---


def train(run: Run, args: argparse.Namespace) -> int:
    """Train to `run.total_timesteps`, checkpointing and evaluating on the way; stop cleanly on
    SIGINT/SIGTERM, an env that raises, or a non-finite loss. Returns the exit code."""
    model, paths = run.model, run.paths
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    log = _tqdm_write if progress else _print
    recorded = getattr(model, "checkpoint_extra", None) or {}
    callback = TrainingCallback(
        paths,
        **resolve_schedule(args, recorded),
        eval_seed=model.config.seed + 10_000,
        log_memory=args.log_memory,
        log=log,
    )
    callback.restore(recorded)
    callback.start(model)
    env_name = model.env_spec["id"]
    kwargs = f" {model.env_spec['kwargs']}" if model.env_spec["kwargs"] else ""
    print(
        f"training {env_name}{kwargs} to {run.total_timesteps} steps "
        f"on {model.device}, writing to {paths.root}",
        flush=True,
    )
    resume_cmd = (
        f"python {shlex.quote(_script('train.py'))} --resume {shlex.quote(str(paths.root))}"
    )
    interrupt = GracefulInterrupt()
    try:
        with interrupt:
            callback.interrupt = interrupt
            model.stop_check = lambda: interrupt.requested
            model.learn(
                run.total_timesteps - model.num_timesteps if run.resumed else run.total_timesteps,
                callback=callback,
                progress_bar=progress,
                reset_num_timesteps=not run.resumed,
            )
            if interrupt.requested and model.num_timesteps < model.total_timesteps:
                path = callback.checkpoint(model)
                model.close()
                print(
                    f"interrupted at step {model.num_timesteps}; saved {path}\n"
                    f"resume with: {resume_cmd}",
                    flush=True,
                )
                return interrupt.exit_code
    except KeyboardInterrupt:
        last = f" (last checkpoint: {paths.last})" if paths.last.exists() else ""
        print(f"error: interrupted again, quit without saving{last}", file=sys.stderr)
        if model._writer is not None:
            model._writer.close()
        return interrupt.exit_code
    except NumericalError as e:
        model.close()
        last = (
            f"; the last good checkpoint is {paths.last} (resume: {resume_cmd})"
            if paths.last.exists()
            else "; no checkpoint was written"
        )
        print(f"error: {one_line(e)}{last}", file=sys.stderr)
        return 1
    except Exception as e:
        # What was trained so far is kept: `learn` leaves the model between two iterations (it
        # undoes a failed one), so weights, optimizer, step count and rollout position agree.
        path = callback.checkpoint(model)
        where = "environment" if _raised_in_env(e) else "training"
        print(
            f"error: {where} {env_name!r} failed at step {model.num_timesteps}: "
            f"{type(e).__name__}: {one_line(e)} (saved {path})",
            file=sys.stderr,
        )
        if where == "training":
            traceback.print_exc()
        _close_quietly(model)
        return 1

    model.save(paths.model, extra=callback.extra())
    callback.checkpoint(model)
    model.close()
    evaluate_cmd = f"python {shlex.quote(_script('evaluate.py'))} {shlex.quote(str(paths.root))}"
    print(
        f"done: {model.num_timesteps} steps\n"
        f"  model:       {paths.model}\n"
        + (f"  best model:  {paths.best}\n" if paths.best.exists() else "")
        + f"  config:      {paths.config}\n"
        f"  tensorboard: tensorboard --logdir {shlex.quote(str(paths.tensorboard))}\n"
        f"  evaluate:    {evaluate_cmd}"
    )
    return 0


def _raised_in_env(error: BaseException) -> bool:
    """Did the exception come out of an env's `step`/`reset` (code outside this package)?"""
    agent_dir = str(Path(__file__).resolve().parent / "agent")  # sub-packages included
    frames = traceback.extract_tb(error.__traceback__)
    return any(
        f.name in ("step", "reset") and not str(Path(f.filename).resolve()).startswith(agent_dir)
        for f in frames
    )


def _close_quietly(model: RecurrentPPO) -> None:
    try:
        model.close()
    except Exception:  # a broken env may fail to close too; the checkpoint is already safe
        if model._writer is not None:
            model._writer.close()


def _script(name: str) -> str:
    """The path of `name` next to this script, as the user invoked it (`python train.py`)."""
    return str(Path(sys.argv[0]).with_name(name)) if sys.argv and sys.argv[0] else name


def _print(message: str) -> None:
    print(message, flush=True)


def _tqdm_write(message: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(message)


if __name__ == "__main__":
    run_script(main)
