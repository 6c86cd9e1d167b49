"""Many runs through one door: seeds and sweeps of `train.py` runs as Ray Tune trials.

An experiment folder holds one ordinary run folder per trial (what `train.py` writes, so that
`evaluate.py TRIAL`, `train.py --resume TRIAL` and `tensorboard --logdir EXP` work on it), the
plan `tune.py --resume` continues from, the results, and Ray's own files out of the way:

    EXP/experiment.yaml     settings, metric, search space, resources: the whole plan
    EXP/seed0/ ...          one run folder per trial (`trial_<id>/` in a sweep)
    EXP/results.csv         one row per trial (and the seeds' mean, std and 95% CI)
    EXP/curves.png          learning curves (`--plot`)
    EXP/.ray/               Ray Tune's experiment state and trial checkpoints

A trial reports its metrics to Tune at each evaluation, with a checkpoint, so that a trial whose
env raises or whose worker dies restarts from there (`FailureConfig(max_failures)`), ASHA can
stop a sweep's bad trials at its rungs, and `Tuner.restore` continues an interrupted experiment.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import yaml
from ray import tune
from ray.tune.experiment import Trial

from agent.algorithm.ppo import RecurrentPPO
from agent.config import ConfigError, PPOConfig
from agent.run.callbacks import RunPaths, TrainingCallback
from agent.run.cli import UsageError, one_line, sanitize
from agent.run.run_folder import claim_new_folder, plain, write_config
from agent.tune.search_space import parse_search_space, sampled_config, tune_space
from agent.tune.trial_table import TrialRow

RAY_DIR = ".ray"
"""Ray Tune's experiment folder inside the experiment folder."""
PLAN_FILE = "experiment.yaml"
METRICS = (
    "eval/success_rate",
    "eval/mean_reward",
    "eval/mean_ep_length",
    "rollout/success_rate",
    "rollout/ep_rew_mean",
    "rollout/ep_len_mean",
)
"""What a trial reports, each under its TensorBoard tag: the names `--metric` accepts."""
REDUCTION_FACTOR = 3
"""ASHA keeps the best third of the trials at each rung."""
INFEASIBLE = "infeasible"
"""The result key of a trial whose sampled settings were invalid: the reason, one line."""
RUNTIME_EXCLUDES = [
    ".git/",
    "runs/",
    "results/",
    ".ci-venv*",
    ".venv*",
    "venv/",
    "*.egg-info/",
    "__pycache__/",
    ".pytest_cache/",
    ".ruff_cache/",
]
"""What the code shipped to Ray's workers (`runtime_env` working_dir) leaves out: Ray's own
default excludes (`.git`, `.venv`, `venv`, `__pycache__`) among them, so that `connect` can turn
those off and, with them, Ray's warning that it applies them."""
RAY_NOISE = (
    "Token authentication is enabled for this Ray cluster",  # a local instance's default
    "Experiment has been interrupted",  # Tuner.restore(...) advice: tune.py says --resume EXP
    "Experiment state snapshotting has been triggered",  # advice on num_to_keep: it is ours
)
"""The start of each Ray log message of the driver that tells a tune.py user nothing to act on
or the wrong thing to do; `connect` drops them (Ray's INFO messages go too: `logging_level`)."""
PROGRESS = (
    ("eval/mean_reward", "eval return"),
    ("eval/success_rate", "eval success"),
    ("rollout/ep_rew_mean", "ep_rew_mean"),
    ("rollout/success_rate", "success"),
)
"""What a progress line of `TrialProgress` shows of a result, under train.py's names."""


@dataclasses.dataclass
class Experiment:
    """Everything `tune.py` resolved before the first trial; saved as `EXP/experiment.yaml` so
    that `tune.py --resume EXP` builds the same trials."""

    path: Path
    """The experiment folder (absolute: trials may run on other machines)."""
    env: str
    env_kwargs: dict[str, Any]
    wrappers: list[Any]
    total_timesteps: int
    config: dict[str, Any]
    """The resolved `PPOConfig` every trial starts from (a seed or the sampled values differ)."""
    schedule: dict[str, int]
    """checkpoint_freq, eval_freq, eval_episodes of each trial."""
    metric: str
    mode: str = "max"
    seeds: list[int] | None = None
    """One trial per seed; None in a sweep."""
    search: dict[str, Any] | None = None
    """The search space as written in its YAML file; None for seeds."""
    num_samples: int = 1
    grace_period: int = 1
    """Steps a sweep's trial trains before ASHA may stop it."""
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    max_failures: int = 3
    log_memory: bool = False

    @property
    def base_config(self) -> PPOConfig:
        return PPOConfig.from_dict(self.config)

    @property
    def ray_path(self) -> Path:
        return self.path / RAY_DIR

    @property
    def report_freq(self) -> int:
        """Steps between reports to Tune: at every evaluation, else at every checkpoint."""
        return self.schedule["eval_freq"] or self.schedule["checkpoint_freq"]

    def save(self) -> None:
        record = {k: plain(v) for k, v in dataclasses.asdict(self).items()}
        record["path"] = str(self.path)
        (self.path / PLAN_FILE).write_text(yaml.safe_dump(record, sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> Experiment:
        """Read `path/experiment.yaml`; the folder may have moved since it was written."""
        record = yaml.safe_load((path / PLAN_FILE).read_text())
        record["path"] = path.resolve()
        return cls(**record)


def experiment_folder(storage: Path, env_id: str, kind: str, now: datetime | None = None) -> Path:
    """Claim a new `storage/<env>__<kind>__<YYYYmmdd-HHMMSS>` (`-2`, `-3`, ... when taken)."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return claim_new_folder(storage / f"{sanitize(env_id)}__{kind}__{stamp}")


# ------------------------------------------------------------------------------- trials ---


@dataclasses.dataclass
class TrialCallback(TrainingCallback):
    """`TrainingCallback` (the run folder's checkpoints and evaluations), plus a report to Tune
    every `report_freq` steps: the metrics, with a checkpoint to restart from."""

    report_freq: int = 0
    total_timesteps: int = 0
    metric: str = "eval/mean_reward"
    """Reported in every result (NaN until known, as the return before an episode ended):
    Tune's scheduler and searcher need it in each one."""
    restarts: int = 0
    """How many times this trial was restarted from a checkpoint (after a crash or a resume)."""
    last_eval: dict[str, float] = dataclasses.field(default_factory=dict, init=False)
    evaluated_step: int = dataclasses.field(default=-1, init=False)
    reported_step: int = dataclasses.field(default=-1, init=False)

    def evaluate(self, model: RecurrentPPO) -> dict[str, Any]:
        results = super().evaluate(model)
        self.evaluated_step = model.num_timesteps
        self.last_eval = {
            "eval/mean_reward": results["mean_return"],
            "eval/mean_ep_length": results["mean_length"],
        }
        if results["success_rate"] is not None:
            self.last_eval["eval/success_rate"] = results["success_rate"]
        return results

    def __call__(self, model: RecurrentPPO) -> bool:
        previous = self.last_good_step
        keep_going = super().__call__(model)
        if model.num_timesteps // self.report_freq > previous // self.report_freq:
            self.report(model)
        return keep_going

    def report(self, model: RecurrentPPO) -> None:
        """Report the metrics at this step to Tune with a checkpoint of the model (and write the
        run folder's `checkpoints/last.pt`, so that both restart from the same step)."""
        extra = {**self.extra(), "restarts": self.restarts}
        metrics: dict[str, Any] = {
            "num_timesteps": model.num_timesteps,
            "total_timesteps": self.total_timesteps,
            "restarts": self.restarts,
            **{k: v for k, v in model.logs.items() if k in METRICS},
            **self.last_eval,
        }
        metrics.setdefault(self.metric, math.nan)
        model.save(self.paths.last, extra=extra)
        with tempfile.TemporaryDirectory() as folder:
            model.save(Path(folder) / "last.pt", extra=extra)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        self.reported_step = model.num_timesteps


def run_trial(sample: dict[str, Any], experiment: Experiment) -> None:
    """The Tune trainable: train one run folder, `EXP/<trial name>`, with `sample` (a seed, or
    the sampled hyperparameters) over the experiment's config; from Tune's checkpoint when the
    trial restarts. Exceptions propagate: Tune restarts the trial up to `max_failures` times."""
    torch.set_num_threads(max(1, int(experiment.cpus_per_trial)))
    name = tune.get_context().get_trial_name()
    paths = RunPaths(experiment.path / name)
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        try:
            config = sampled_config(experiment.base_config, sample)
        except ConfigError as e:  # e.g. a batch_size larger than the sampled rollout
            report_infeasible(experiment, name, str(e))
            return
        model = RecurrentPPO(
            experiment.env, config, env_kwargs=experiment.env_kwargs, wrappers=experiment.wrappers
        )
        if paths.root.exists():  # an attempt that ended before its first checkpoint
            shutil.rmtree(paths.root)
        model.tensorboard_log = paths.tensorboard
        write_config(paths, model, experiment.total_timesteps)
        extra: dict[str, Any] = {}
    else:
        with checkpoint.as_directory() as folder:
            model = RecurrentPPO.load(
                Path(folder) / "last.pt", env="recorded", tensorboard_log=paths.tensorboard
            )
        extra = model.checkpoint_extra
    callback = TrialCallback(
        paths,
        **experiment.schedule,
        log_memory=experiment.log_memory,
        eval_seed=model.config.seed + 10_000,
        log=lambda message: print(f"{name}: {message}", flush=True),
        report_freq=experiment.report_freq,
        total_timesteps=experiment.total_timesteps,
        metric=experiment.metric,
        restarts=int(extra.get("restarts", -1)) + 1,
    )
    callback.restore(extra)
    callback.start(model)
    try:
        resumed = checkpoint is not None
        left = experiment.total_timesteps - model.num_timesteps
        model.learn(left, callback=callback, reset_num_timesteps=not resumed)
        model.save(paths.model, extra=callback.extra())
        # The final metric is measured on the final model.
        if experiment.schedule["eval_freq"] and callback.evaluated_step != model.num_timesteps:
            callback.evaluate(model)
        if callback.reported_step != model.num_timesteps:
            callback.report(model)
    finally:
        model.close()


def report_infeasible(experiment: Experiment, name: str, reason: str) -> None:
    """End a trial whose sampled settings do not make a valid config, without training and
    without a retry (a restart would sample nothing new): report the worst metric, so that
    Optuna's TPE learns to avoid the region, and the reason, for the results table."""
    print(f"{name}: infeasible sample: {reason}", flush=True)
    worst = -math.inf if experiment.mode == "max" else math.inf
    tune.report(
        {
            experiment.metric: worst,
            "num_timesteps": 0,
            "total_timesteps": experiment.total_timesteps,
            "restarts": 0,
            INFEASIBLE: reason,
        }
    )


class TrialProgress(tune.Callback):
    """Prints, in the process that runs the experiment, a line for each result a trial reports
    (`seed0: step 2048: ep_rew_mean 0.3, success 0.6`) and, on stderr, one for each failure,
    with the exception and whether the trial restarts.

    A trial's own lines stay in Ray's worker logs (`connect` does not forward them): forwarded,
    they lagged behind this process's, a trial's last line coming after the results table or
    lost as Ray shut down, and Ray folded the lines of trials that differ only in their numbers
    into one."""

    def __init__(self, max_failures: int) -> None:
        self.max_failures = max_failures

    def on_trial_result(self, iteration: int, trials: list, trial: Trial, result: dict, **info):
        print(f"{trial_name(trial)}: {progress_line(result)}", flush=True)

    def on_trial_recover(self, iteration: int, trials: list, trial: Trial, **info):
        restarts = f"{trial.num_failures} of {self.max_failures} restarts"
        self._failed(trial, f"restarting from its last checkpoint ({restarts})")

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info):
        self._failed(trial, "no restarts left")

    @staticmethod
    def _failed(trial: Trial, then: str) -> None:
        # Tune has just appended the failure to the trial's error file, in this process's
        # staging folder (the experiment folder gets it later).
        path = Path(trial.error_file) if trial.error_file else None
        text = path.read_text(errors="replace") if path and path.is_file() else ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        error = lines[-1] if lines else "an error"  # the exception the trial raised
        print(f"{trial_name(trial)}: failed: {error}; {then}", file=sys.stderr, flush=True)


def progress_line(result: dict[str, Any]) -> str:
    """`step 2048: eval return 0.52, eval success 0.7, ep_rew_mean 0.3, success 0.6`: what a
    trial's result says (`PROGRESS`), or why its sample was infeasible."""
    if result.get(INFEASIBLE):
        return f"infeasible sample: {result[INFEASIBLE]}"
    parts = [
        f"{name} {result[key]:.3g}"
        for key, name in PROGRESS
        if isinstance(result.get(key), int | float) and math.isfinite(result[key])
    ]
    return f"step {result.get('num_timesteps', 0)}: " + (", ".join(parts) or "no episode yet")


def trial_name(trial: Trial) -> str:
    """`seed3` for a trial of a seed experiment, `trial_<id>` for one of a sweep: the name of
    its run folder and of its folder in Ray's state."""
    if set(trial.config) == {"seed"}:
        return f"seed{trial.config['seed']}"
    return f"trial_{trial.trial_id}"


# ------------------------------------------------------------------------------ running ---


def make_tuner(experiment: Experiment, restore: bool = False) -> tune.Tuner:
    """The Tuner of `experiment`: one trial per seed (all run to the end), or `num_samples`
    trials sampled by Optuna's TPE and stopped early by ASHA. With `restore`, the Tuner of the
    interrupted experiment, continuing its unfinished and failed trials from their checkpoints
    (finished ones are not run again)."""
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, experiment=experiment),
        {"cpu": experiment.cpus_per_trial, "gpu": experiment.gpus_per_trial},
    )
    if restore:
        return tune.Tuner.restore(
            str(experiment.ray_path), trainable, resume_unfinished=True, resume_errored=True
        )
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    names = {"trial_name_creator": trial_name, "trial_dirname_creator": trial_name}
    common = {"metric": experiment.metric, "mode": experiment.mode, **names}
    if experiment.seeds is not None:
        param_space = {"seed": tune.grid_search(experiment.seeds)}
        tune_config = tune.TuneConfig(max_concurrent_trials=experiment.max_concurrent, **common)
    else:
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.optuna import OptunaSearch

        dimensions = parse_search_space(experiment.search or {}, experiment.base_config, "")
        param_space = tune_space(dimensions)
        tune_config = tune.TuneConfig(
            search_alg=OptunaSearch(seed=experiment.base_config.seed),
            scheduler=ASHAScheduler(
                time_attr="num_timesteps",
                max_t=experiment.total_timesteps,
                grace_period=experiment.grace_period,
                reduction_factor=REDUCTION_FACTOR,
            ),
            num_samples=experiment.num_samples,
            max_concurrent_trials=experiment.max_concurrent,
            **common,
        )
    run_config = tune.RunConfig(
        name=RAY_DIR,
        storage_path=str(experiment.path),
        failure_config=tune.FailureConfig(max_failures=experiment.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        # Tune's own TensorBoard files would show every curve twice under EXP.
        callbacks=[
            JsonLoggerCallback(),
            CSVLoggerCallback(),
            TrialProgress(experiment.max_failures),
        ],
        # Tune's tables of trial configs and results: tune.py prints its own table at the end.
        verbose=0,
    )
    return tune.Tuner(
        trainable, param_space=param_space, tune_config=tune_config, run_config=run_config
    )


def connect(address: str | None, experiment: Experiment) -> bool:
    """Join the cluster at `address`, else start Ray in this process, unless this process is
    connected already (returns whether it connected). The project's code travels to the
    workers as Ray's `runtime_env` working_dir. Raises `UsageError` when Ray cannot start or
    join, or when a trial's resources exceed the cluster's."""
    import ray

    if ray.is_initialized():
        return False
    # What the user sees of the trials is what `TrialProgress` prints, here; of Ray's own
    # messages, warnings and errors, less those of `RAY_NOISE`.
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    for handler in logging.getLogger("ray").handlers:
        if not any(isinstance(f, _RayNoiseFilter) for f in handler.filters):
            handler.addFilter(_RayNoiseFilter())
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "train.py").is_file():
        excludes = list(RUNTIME_EXCLUDES)
        if experiment.path.is_relative_to(root):
            excludes.append(f"{experiment.path.relative_to(root).as_posix()}/")
        kwargs["runtime_env"] = {"working_dir": str(root), "excludes": excludes}
        os.environ.setdefault("RAY_OVERRIDE_RUNTIME_ENV_DEFAULT_EXCLUDES", "")  # ours hold them
    if address is None:
        kwargs["include_dashboard"] = False
    try:
        # "local": a new instance even when `ray start` left a cluster on this machine.
        ray.init(address=address or "local", **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        if _refused_for_token(e):
            raise UsageError(
                f"the Ray cluster at {address} wants its token: export RAY_AUTH_MODE=token, "
                "with the head's ~/.ray/auth_token copied here (or RAY_AUTH_TOKEN set)"
            ) from None
        raise UsageError(
            f"cannot start or join Ray at {address or 'this machine'}: {one_line(e)}"
        ) from None
    resources = ray.cluster_resources()
    for name, need in (("CPU", experiment.cpus_per_trial), ("GPU", experiment.gpus_per_trial)):
        if need > resources.get(name, 0) and address is None:
            ray.shutdown()
            raise UsageError(
                f"a trial needs {need:g} {name}s; this machine has {resources.get(name, 0):g}"
            )
    return True


class _RayNoiseFilter(logging.Filter):
    """Drops the Ray log records that `RAY_NOISE` names."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(RAY_NOISE)


def _refused_for_token(error: BaseException | None) -> bool:
    """Did `ray.init` fail on token authentication? Ray raises a ConnectionError whose chain
    holds the `AuthenticationError`, or only its traceback as text."""
    import ray

    while error is not None:
        said = "InvalidAuthToken" in str(error)
        if said or isinstance(error, ray.exceptions.AuthenticationError):
            return True
        error = error.__cause__ or error.__context__
    return False


def run_experiment(experiment: Experiment, restore: bool = False) -> tune.ResultGrid:
    """Run (or with `restore`, continue) the experiment on the Ray instance this process is
    connected to; returns Tune's results of every trial."""
    # Set here rather than on import: Tune reads them when a run starts, in this process.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    # Tune's default output engine prints a table of the experiment even at `verbose=0`; the
    # older one is silent there.
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    # A failure is one line of `TrialProgress`, not a traceback through Ray's internals (the
    # whole traceback is in the trial's error.txt, which the results name).
    os.environ["TUNE_PRINT_ALL_TRIAL_ERRORS"] = "0"
    return make_tuner(experiment, restore).fit()


def trial_rows(results: tune.ResultGrid, experiment: Experiment) -> list[TrialRow]:
    """One `TrialRow` per trial of `results`."""
    rows = []
    for result in results:
        metrics = result.metrics or {}
        steps = int(metrics.get("num_timesteps", 0))
        if result.error is not None:
            status = "error"
        elif metrics.get(INFEASIBLE):
            status = "infeasible"
        elif not metrics:
            status = "not started"
        elif steps >= experiment.total_timesteps:
            status = "done"
        elif metrics.get("done"):
            status = "stopped early"  # Tune marks the last result of a stopped trial done
        else:
            status = "unfinished"
        name = Path(result.path).name
        value = None if status == "infeasible" else metrics.get(experiment.metric)
        rows.append(
            TrialRow(
                name=name,
                status=status,
                params=dict(result.config or {}),
                metric=None if value is None else float(value),
                steps=steps,
                wall_time=float(metrics.get("time_total_s", 0.0)),
                restarts=int(metrics.get("restarts", 0)),
                path=experiment.path / name,
            )
        )
    return rows
