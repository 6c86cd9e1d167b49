"""The results of an experiment's trials as one table: a row per trial (its sampled settings,
final metric, steps, wall time), and for repetitions of one config over seeds, the mean, the
standard deviation and the 95% t-interval of the mean (`agent.report.stats`). Printed, and written
as CSV. Plain data in, plain text out: nothing here knows about Ray."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.report.stats import t_interval

RESULTS_CSV = "results.csv"
"""The name of `write_csv`'s table in an experiment folder."""
INTERRUPTED = ("unfinished", "not started")
"""The statuses of trials an interrupted experiment has still to run (`tune.py --resume`)."""


@dataclass(frozen=True)
class TrialRow:
    """One trial as the table shows it."""

    name: str
    status: str
    """`done`, `stopped early` (by the scheduler), `infeasible` (its sampled settings were not a
    valid config: not trained), `error`, `unfinished` or `not started`."""
    params: dict[str, Any]
    """The seed, or the sampled hyperparameters."""
    metric: float | None
    """The last value reported (at the end of training for a finished trial)."""
    steps: int
    wall_time: float
    """Seconds of training, summed over restarts."""
    restarts: int
    path: Path


@dataclass(frozen=True)
class Aggregate:
    """Summary of the final metric over `n` seeds: `low`, `high` are the 95% Student-t
    interval of the mean (std and the interval are NaN for a single seed)."""

    n: int
    mean: float
    std: float
    low: float
    high: float


def aggregate(values: Sequence[float]) -> Aggregate:
    """Mean, sample standard deviation (ddof=1) and the 95% t-interval of the mean of
    `values` (`agent.report.stats.t_interval`)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values to aggregate")
    if x.size == 1:
        return Aggregate(1, float(x[0]), math.nan, math.nan, math.nan)
    low, high = t_interval(x, confidence=0.95)
    return Aggregate(int(x.size), float(x.mean()), float(x.std(ddof=1)), float(low), float(high))


def seed_aggregate(rows: Sequence[TrialRow]) -> Aggregate | None:
    """`aggregate` of the finished trials' metrics; None when none finished with one."""
    values = [r.metric for r in rows if r.status == "done" and _known(r.metric)]
    return aggregate(values) if values else None


def sorted_rows(rows: Sequence[TrialRow], mode: str) -> list[TrialRow]:
    """Best metric first (`mode` max or min); trials without a metric last."""

    def key(row: TrialRow) -> tuple[bool, float]:
        if not _known(row.metric):
            return (True, 0.0)
        return (False, -row.metric if mode == "max" else row.metric)

    return sorted(rows, key=key)


def write_csv(
    rows: Sequence[TrialRow], metric: str, path: Path, summary: Aggregate | None = None
) -> Path:
    """`trial, status, <params...>, <metric>, steps, wall_time_s, restarts, path`; with a
    `summary`, a last row `mean` with the mean in the metric column and n, std, t95_low,
    t95_high (the 95% t-interval) in columns of their own. Tables written before the t-interval
    named a percentile bootstrap interval ci95_low, ci95_high: the names tell the two apart."""
    params = list(dict.fromkeys(k for row in rows for k in row.params))
    header = ["trial", "status", *params, metric, "steps", "wall_time_s", "restarts", "path"]
    if summary is not None:
        header += ["n", "std", "t95_low", "t95_high"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, header, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    "trial": row.name,
                    "status": row.status,
                    **row.params,
                    metric: row.metric if _known(row.metric) else "",
                    "steps": row.steps,
                    "wall_time_s": f"{row.wall_time:.1f}",
                    "restarts": row.restarts,
                    "path": row.path,
                }
            )
        if summary is not None:
            writer.writerow(
                {
                    "trial": "mean",
                    metric: summary.mean,
                    "n": summary.n,
                    "std": summary.std,
                    "t95_low": summary.low,
                    "t95_high": summary.high,
                }
            )
    return path


def trial_records(experiment: Path) -> list[dict[str, str]]:
    """The trial rows of `experiment`'s `RESULTS_CSV` as `write_csv` wrote them (all values
    strings); the summary row is not a trial."""
    with (experiment / RESULTS_CSV).open() as f:
        return [row for row in csv.DictReader(f) if row["status"]]


def finished_trials(experiment: Path) -> list[dict[str, str]]:
    """The rows of `experiment`'s `RESULTS_CSV` whose trial finished (`done`)."""
    return [row for row in trial_records(experiment) if row["status"] == "done"]


def experiment_complete(experiment: Path) -> bool:
    """Whether `experiment` wrote its results table with no trial left to run: an interrupted
    experiment writes the table too, with its remaining trials `INTERRUPTED`."""
    if not (experiment / RESULTS_CSV).is_file():
        return False
    return not any(row["status"] in INTERRUPTED for row in trial_records(experiment))


def format_table(rows: Sequence[TrialRow], metric: str, summary: Aggregate | None = None) -> str:
    """The rows as aligned text, and the summary as one sentence under them."""
    params = list(dict.fromkeys(k for row in rows for k in row.params))
    header = ["trial", "status", *params, metric, "steps", "time", "restarts"]
    body = [
        [
            row.name,
            row.status,
            *(_cell(row.params.get(k, "")) for k in params),
            _cell(row.metric),
            str(row.steps),
            f"{row.wall_time:.0f}s",
            str(row.restarts),
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in [header, *body]
    ]
    if summary is not None:
        spread = (
            f", std {summary.std:.3g}, 95% t-interval [{summary.low:.3g}, {summary.high:.3g}]"
            if summary.n > 1
            else ""
        )
        lines.append(f"{metric} over {summary.n} seeds: mean {summary.mean:.3g}{spread}")
    return "\n".join(lines)


def _known(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
