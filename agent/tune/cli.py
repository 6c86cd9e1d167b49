"""The command line of `tune.py`: its flags (train.py's, and the experiment's own), the checks
that turn them into an `Experiment` before any trial starts, connecting to Ray, and the report
at the end. Every bad input is one `error: ...` line and exit code 2, before anything runs."""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import socket
import sys
from pathlib import Path

from agent.algorithm.ppo import RecurrentPPO
from agent.run.cli import (
    Parser,
    UsageError,
    one_line,
    refuse_settings_on_resume,
    resolve_schedule,
    resolve_settings,
    train_parser,
)
from agent.run.evaluation import evaluate
from agent.run.run_folder import cannot_make, check_folder_can_be_made
from agent.tune.experiment import (
    INFEASIBLE,
    METRICS,
    PLAN_FILE,
    RAY_DIR,
    Experiment,
    connect,
    experiment_folder,
    run_experiment,
    trial_rows,
    tune,
)
from agent.tune.search_space import parse_search_space, read_search_space
from agent.tune.trial_table import (
    INTERRUPTED,
    RESULTS_CSV,
    TrialRow,
    format_table,
    seed_aggregate,
    sorted_rows,
    write_csv,
)

DEFAULT_STORAGE = Path("runs")


def tune_parser() -> Parser:
    """`train.py`'s flags (env, preset, budget, schedule, every hyperparameter) for all trials,
    then the experiment's own."""
    parser = Parser(
        prog="tune.py",
        description="Run seeds or a hyperparameter sweep of train.py as Ray Tune trials, each "
        "an ordinary run folder in one experiment folder. train.py's flags apply to every trial.",
        parents=[train_parser(resumable=False)],
        conflict_handler="resolve",  # --run-dir and --resume mean the experiment's here
    )
    # Trials print their evaluations, not progress bars.
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, help=argparse.SUPPRESS)
    runs = parser.add_argument_group("experiment")
    runs.add_argument("--seeds", type=int, metavar="N", help="run the config with N seeds")
    runs.add_argument(
        "--search",
        metavar="SPACE.yaml",
        help="sweep: sample hyperparameters from this search space (configs/search/)",
    )
    runs.add_argument(
        "--num-samples", type=int, metavar="N", help="trials of a sweep (default: 10)"
    )
    runs.add_argument(
        "--metric",
        choices=METRICS,
        metavar="TAG",
        help="what trials are compared on: " + ", ".join(METRICS) + " (default: "
        "eval/success_rate where the env reports success, else eval/mean_reward)",
    )
    runs.add_argument("--mode", choices=("max", "min"), default="max", help="(default: max)")
    runs.add_argument(
        "--grace-period",
        type=int,
        metavar="STEPS",
        help="steps a sweep's trial trains before ASHA may stop it (default: a quarter of "
        "--total-timesteps)",
    )
    runs.add_argument(
        "--max-failures",
        type=int,
        default=3,
        metavar="N",
        help="restarts of a trial from its last checkpoint after a crash (default: 3)",
    )
    runs.add_argument(
        "--run-dir",
        metavar="EXP",
        help="experiment folder (default: <storage>/<env>__<seedsN|sweep>__<time>)",
    )
    runs.add_argument(
        "--resume",
        metavar="EXP",
        help="continue an interrupted experiment: unfinished and failed trials from their "
        "checkpoints; finished ones are kept",
    )
    runs.add_argument(
        "--plot", action="store_true", help="draw the trials' learning curves to EXP/curves.png"
    )
    ray = parser.add_argument_group("Ray")
    ray.add_argument(
        "--address",
        metavar="auto|HOST:PORT",
        help="join a running Ray cluster (default: start Ray in this process)",
    )
    ray.add_argument(
        "--storage",
        type=Path,
        metavar="PATH",
        help="folder for experiments that every node sees at the same path, e.g. an NFS mount "
        f"(default: {DEFAULT_STORAGE}/)",
    )
    ray.add_argument(
        "--cpus-per-trial",
        type=float,
        default=1.0,
        metavar="X",
        help="CPUs of each trial, also its torch threads (default: 1)",
    )
    ray.add_argument(
        "--gpus-per-trial",
        type=float,
        default=0.0,
        metavar="X",
        help="GPUs of each trial, fractions allowed (default: 0)",
    )
    ray.add_argument(
        "--max-concurrent",
        type=int,
        metavar="N",
        help="trials at a time (default: as many as the resources hold)",
    )
    return parser


# ------------------------------------------------------------------------------ planning ---


def plan_experiment(args: argparse.Namespace) -> Experiment:
    """Check every input and resolve the experiment, building the model once (as `train.py`
    does: an unknown env, bad kwargs or an invalid config fail here), then claim the
    experiment folder. Raises `UsageError` (or another ValueError) on bad input."""
    if args.seeds is None and args.search is None:
        raise UsageError(
            "give --seeds N (the config over N seeds) or --search SPACE.yaml (a sweep)"
        )
    if args.seeds is not None and args.search is not None:
        raise UsageError("--seeds and --search cannot be combined: each sweep trial is one seed")
    if args.seeds is not None and args.seeds <= 0:
        raise UsageError(f"--seeds must be positive, got {args.seeds}")
    if args.num_samples is not None and args.search is None:
        raise UsageError("--num-samples counts the trials of a sweep: give --search SPACE.yaml")
    num_samples = 10 if args.num_samples is None else args.num_samples
    _check_positive(
        ("--num-samples", num_samples),
        ("--cpus-per-trial", args.cpus_per_trial),
        ("--max-concurrent", args.max_concurrent),
    )
    if args.gpus_per_trial < 0:
        raise UsageError(f"--gpus-per-trial must be 0 or more, got {args.gpus_per_trial:g}")
    if args.max_failures < 0:
        raise UsageError(f"--max-failures must be 0 or more, got {args.max_failures}")
    for flag, wanted in (("--log-memory", args.log_memory), ("--plot", args.plot)):
        if wanted and importlib.util.find_spec("matplotlib") is None:
            raise UsageError(f"{flag} draws with matplotlib: pip install matplotlib")
    check_address(args.address)
    if args.address is not None and args.storage is None and args.run_dir is None:
        print(
            "note: each trial writes its run folder on the node that runs it; on a cluster of "
            "several machines give --storage a folder that every node sees at the same path",
            flush=True,
        )
    schedule = resolve_schedule(args, {})
    settings = resolve_settings(args)
    for note in settings.notes:
        print(f"note: {note}", flush=True)
    total = settings.total_timesteps
    search = None
    if args.search is not None:
        search = read_search_space(args.search)
        parse_search_space(search, settings.config, args.search)
    grace = args.grace_period if args.grace_period is not None else max(1, total // 4)
    if not 0 < grace <= total:
        raise UsageError(f"--grace-period must be between 1 and {total} steps, got {grace}")
    model = RecurrentPPO(
        settings.env_id, settings.config, env_kwargs=settings.env_kwargs, wrappers=settings.wrappers
    )
    try:
        metric = choose_metric(args.metric, model, schedule["eval_freq"])
    finally:
        model.close()
    path = claim_folder(args, settings.env_id, f"seeds{args.seeds}" if args.seeds else "sweep")
    base_seed = settings.config.seed
    return Experiment(
        path=path,
        env=settings.env_id,
        env_kwargs=settings.env_kwargs,
        wrappers=list(settings.wrappers),
        total_timesteps=total,
        config=settings.config.to_dict(),
        schedule=schedule,
        metric=metric,
        mode=args.mode,
        seeds=[base_seed + i for i in range(args.seeds)] if args.seeds else None,
        search=search,
        num_samples=num_samples if search is not None else args.seeds,
        grace_period=grace,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_concurrent=args.max_concurrent,
        max_failures=args.max_failures,
        log_memory=args.log_memory,
    )


def _check_positive(*values: tuple[str, float | None]) -> None:
    for flag, value in values:
        if value is not None and value <= 0:
            raise UsageError(f"{flag} must be positive, got {value:g}")


def choose_metric(metric: str | None, model: RecurrentPPO, eval_freq: int) -> str:
    """`metric`, checked against what the trials will report; by default the evaluation
    success rate where one evaluation episode of `model` shows the env reporting success, else
    the mean evaluation return (the training curves' counterparts when evaluation is off)."""
    reports_success = None
    if eval_freq > 0 or (metric or "").endswith("success_rate"):
        spec = model.env_spec
        episode = evaluate(model, spec["id"], spec["kwargs"], spec["wrappers"], n_episodes=1)
        reports_success = episode["success_rate"] is not None
    if metric is None:
        family = "eval" if eval_freq > 0 else "rollout"
        if family == "eval":
            return "eval/success_rate" if reports_success else "eval/mean_reward"
        return "rollout/success_rate" if reports_success else "rollout/ep_rew_mean"
    if metric.startswith("eval/") and eval_freq == 0:
        raise UsageError(f"--metric {metric} needs evaluations: --eval-freq must be positive")
    if metric.endswith("success_rate") and not reports_success:
        raise UsageError(
            f"--metric {metric}: {model.env_spec['id']} reports no success in its infos; "
            "compare on eval/mean_reward"
        )
    return metric


def check_address(address: str | None) -> None:
    """Raise `UsageError` unless `address` is None, `auto`, or a HOST:PORT that accepts a
    connection (`ray.init` would retry an unreachable one for minutes)."""
    if address is None or address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(f"--address must be auto or HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise UsageError(
            f"cannot reach a Ray cluster at {address}: {e.strerror or e} "
            f"(start one there with: ray start --head --port {port})"
        ) from None


def claim_folder(args: argparse.Namespace, env_id: str, kind: str) -> Path:
    """The experiment folder, absolute: `--run-dir` (under `--storage` when relative and given),
    which must not hold an experiment yet, else a new one in `--storage` (default runs/).
    Raises `UsageError` when the folder cannot be created or written."""
    storage = args.storage or DEFAULT_STORAGE
    if args.run_dir is None:
        return experiment_folder(storage, env_id, kind).resolve()
    path = (storage / args.run_dir if args.storage else Path(args.run_dir)).resolve()
    check_folder_can_be_made(path)
    if (path / PLAN_FILE).exists() or (path / RAY_DIR).exists():
        raise UsageError(
            f"{path} already holds an experiment; continue it with --resume {path} "
            "or choose another --run-dir"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise cannot_make(path, e) from None
    return path


def plan_resume(args: argparse.Namespace) -> Experiment:
    """The experiment `--resume EXP` continues, as its `experiment.yaml` records it. Only
    `--address` and `--plot` may be given besides: the trials' settings cannot change."""
    allowed = {"resume", "address", "plot", "progress"}
    refuse_settings_on_resume(args, tune_parser(), allowed, f"its {PLAN_FILE}")
    check_address(args.address)
    path = Path(args.resume).resolve()
    if not (path / PLAN_FILE).is_file() or not tune.Tuner.can_restore(str(path / RAY_DIR)):
        raise UsageError(
            f"{path} is not an experiment folder of tune.py (no {PLAN_FILE} and {RAY_DIR}/ state)"
        )
    return Experiment.load(path)


# ------------------------------------------------------------------------------- running ---


def report(results: tune.ResultGrid, experiment: Experiment, plot: bool) -> int:
    """Print and write the results table (and the curves with `plot`); return the exit code:
    0 all trials finished (or were stopped early), 1 some failed, 130 some are unfinished
    (the experiment was interrupted)."""
    rows = trial_rows(results, experiment)
    if experiment.seeds is not None:
        rows.sort(key=lambda row: row.params.get("seed", 0))
        summary = seed_aggregate(rows)
    else:
        rows = sorted_rows(rows, experiment.mode)
        summary = None
    csv_path = write_csv(rows, experiment.metric, experiment.path / RESULTS_CSV, summary)
    print(format_table(rows, experiment.metric, summary))
    print(f"results: {csv_path}")
    finished = [row for row in rows if row.status == "done" and row.metric is not None]
    if experiment.search is not None and finished:
        best = sorted_rows(finished, experiment.mode)[0]
        print(
            f"best: {best.name} ({experiment.metric} {best.metric:.4g}); repeat it with: "
            f"python train.py --config {shlex.quote(str(best.path / 'config.yaml'))}"
        )
    if plot:
        figure = plot_trials(rows, experiment)
        print(f"plot: {figure}" if figure else "plot: no trial logged any curves yet")
    print(f"tensorboard: tensorboard --logdir {shlex.quote(str(experiment.path))}")
    for result in results:
        reason = (result.metrics or {}).get(INFEASIBLE)
        if reason:
            print(f"infeasible: trial {Path(result.path).name} was not trained: {reason}")
        if result.error is not None:
            print(
                f"error: trial {Path(result.path).name} failed after "
                f"{experiment.max_failures} restarts: {last_line(result.error)} (Ray's log: "
                f"{result.path}/error.txt; retry with --resume {experiment.path})",
                file=sys.stderr,
            )
    if any(row.status == "error" for row in rows):
        return 1
    unsampled = experiment.search is not None and len(rows) < experiment.num_samples
    if unsampled or any(row.status in INTERRUPTED for row in rows):
        print(
            f"interrupted; continue with: python tune.py --resume {shlex.quote(str(experiment.path))}",
            file=sys.stderr,
        )
        return 130
    return 0


def last_line(error: BaseException) -> str:
    """The last line of a trial's error: the exception the trial raised (Ray's own first line
    names only the worker)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def plot_trials(rows: list[TrialRow], experiment: Experiment) -> Path | None:
    """`EXP/curves.png`: every trial's curves, grouped by config (a seed experiment is one
    group: its mean with the band over seeds), drawn by `agent.report.curves`."""
    from agent.report import curves

    runs = []
    for row in rows:
        try:
            runs.append(curves.read_run(row.path))
        except curves.RunFolderError:
            continue  # a trial that never finished an update
    if not runs:
        return None
    tags = curves.default_tags(runs)
    return curves.plot_curves(curves.group_runs(runs), tags, experiment.path / "curves.png")


def main(argv: list[str] | None = None) -> int:
    """Parse and check (exit 2 on bad input), connect to Ray, run or resume, report."""
    args = tune_parser().parse_args(argv)
    try:
        experiment = plan_resume(args) if args.resume else plan_experiment(args)
    except ValueError as e:  # UsageError, ConfigError, EnvError, ...
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    try:
        started = connect(args.address, experiment)
    except UsageError as e:
        if not args.resume:
            _remove_if_empty(experiment.path)
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    try:
        if not args.resume:
            experiment.save()
        kind = (
            f"{len(experiment.seeds)} seeds"
            if experiment.seeds is not None
            else f"a sweep of {experiment.num_samples} trials"
        )
        print(
            f"{'continuing' if args.resume else 'running'} {kind} of {experiment.env} to "
            f"{experiment.total_timesteps} steps, on {experiment.metric} ({experiment.mode}), "
            f"in {experiment.path}, on "
            + (f"the Ray cluster at {args.address}" if args.address else "a local Ray instance"),
            flush=True,
        )
        results = run_experiment(experiment, restore=bool(args.resume))
        return report(results, experiment, args.plot)
    finally:
        if started:
            import ray

            ray.shutdown()


def _remove_if_empty(path: Path) -> None:
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
