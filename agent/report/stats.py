"""Intervals that mean what they say: the statistics printed beside a number measured over seeds.

Over the seeds of one config (`tune.py --seeds N`, `benchmarks/presets.py`), a mean is printed
with its **95% t-interval**: mean ± t(0.975, n - 1) * s / sqrt(n), the Student-t confidence
interval of the mean. For normally distributed results it covers the true mean 95% of the time at
every n >= 2 (tests/test_stats.py measures it). It is wide at 2-3 seeds (at 2 seeds the quantile
is 12.7), and that width is honest: the percentile bootstrap interval printed before covered the
mean 51% of the time at 2 seeds, 74% at 3 and 84% at 5, because resampling few values cannot
produce a mean outside them. The policy: for n >= 2 the t-interval is printed, always named
("95% t-interval", columns `t95_low`, `t95_high`), so a reader knows what it assumes; for n = 1
there is no interval (NaN), only the value. Results far from normal (success rates stuck at 0 or
1, one collapsed seed) make any interval of a handful of seeds rough; the t-interval of a rate may
also reach past [0, 1], which says the same thing.

Across several tasks, `iqm` and `stratified_bootstrap_ci` follow rliable (Agarwal et al., "Deep
Reinforcement Learning at the Edge of the Statistical Precipice", 2021): the interquartile mean of
all runs x tasks, with a percentile interval from resampling runs within each task.

NumPy only: SciPy is not a dependency, and torch's `StudentT.icdf` is not implemented, so the
Student-t quantile is computed here exactly from the t distribution's closed-form CDF for integer
degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

FloatOrArray = float | np.ndarray
"""A number for a 1-D input (a NumPy float, which is a `float`), an array for a batch."""


def t_cdf_two_sided(t: float, df: int) -> float:
    """P(|T| <= t) for T Student-t distributed with `df` (>= 1, integer) degrees of freedom.

    The finite sums of Abramowitz and Stegun 26.7.3-26.7.4 in theta = atan(t / sqrt(df)): for
    odd df, (2 / pi) * (theta + sin(theta) * (c + 2/3 c^3 + 2*4/(3*5) c^5 + ... up to c^(df-2)));
    for even df, sin(theta) * (1 + 1/2 c^2 + 1*3/(2*4) c^4 + ... up to c^(df-2)), c = cos(theta).
    Exact up to rounding: no series is cut short."""
    if df < 1 or df != int(df):
        raise ValueError(f"df must be a positive integer, got {df}")
    theta = math.atan(abs(t) / math.sqrt(df))
    sin, cos = math.sin(theta), math.cos(theta)
    odd = df % 2 == 1
    # Powers of c run 1, 3, ..., df - 2 (odd df) or 0, 2, ..., df - 2 (even df); each term is the
    # previous one times c^2 (k + 1) / (k + 2), k the previous power.
    powers = np.arange(1 if odd else 0, df - 2, 2, dtype=np.float64)
    first = cos if odd else 1.0
    terms = first * np.cumprod(np.concatenate(([1.0], cos**2 * (powers + 1) / (powers + 2))))
    if odd:
        if df == 1:
            return 2 * theta / math.pi
        return 2 / math.pi * (theta + sin * float(terms.sum()))
    return sin * float(terms.sum())


@lru_cache(maxsize=256)
def t_quantile(confidence: float, df: int) -> float:
    """The t with P(|T| <= t) = `confidence` for `df` degrees of freedom: the half-width, in
    standard errors, of the two-sided `confidence` interval (12.706 at df 1 and 95%, 1.960 in
    the limit). Bisection on theta = atan(t / sqrt(df)), on which the CDF is monotone and
    bounded, to the last bit of a float."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    low, high = 0.0, math.pi / 2
    for _ in range(200):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if t_cdf_two_sided(math.sqrt(df) * math.tan(middle), df) < confidence:
            low = middle
        else:
            high = middle
    return math.sqrt(df) * math.tan((low + high) / 2)


def t_interval(values: ArrayLike, confidence: float = 0.95) -> tuple[FloatOrArray, FloatOrArray]:
    """The Student-t `confidence` interval of the mean of `values`: [..., n] (the last axis holds
    one sample; leading axes are independent samples, so many experiments go in one call).
    Returns (low, high), each of shape [...] (a number for 1-D `values`): mean -/+
    t_quantile(confidence, n - 1) * std(ddof=1) / sqrt(n). NaN for n < 2, where the spread of the
    sample, and so any interval, is unknown."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError("values must have at least one axis (the sample)")
    n = x.shape[-1]
    if n < 2:
        nan = np.full(x.shape[:-1], np.nan)[()]
        return nan, nan
    mean = x.mean(axis=-1)
    half = t_quantile(confidence, n - 1) * x.std(axis=-1, ddof=1) / math.sqrt(n)
    return mean - half, mean + half


def iqm(scores: ArrayLike, axis: int | tuple[int, ...] | None = None) -> FloatOrArray:
    """The interquartile mean of `scores` (e.g. [runs, tasks]) pooled over `axis` (all of them
    by default): the mean of the sorted scores without the floor(k / 4) lowest and floor(k / 4)
    highest of the k pooled, as rliable's `aggregate_iqm` (`scipy.stats.trim_mean(scores, 0.25,
    axis=None)`). Below 4 scores nothing is cut and it is the plain mean. With `axis=(-2, -1)` a
    stack [reps, runs, tasks] gives [reps] IQMs at once (`stratified_bootstrap_ci`'s `batched`)."""
    x = np.asarray(scores, dtype=np.float64)
    if axis is None:
        pooled = x.reshape(-1)
    else:
        axes = tuple(a % x.ndim for a in np.atleast_1d(axis))
        kept = [a for a in range(x.ndim) if a not in axes]
        pooled = x.transpose(*kept, *axes).reshape(*(x.shape[a] for a in kept), -1)
    k = pooled.shape[-1]
    if k == 0:
        raise ValueError("no scores")
    cut = k // 4
    return np.sort(pooled, axis=-1)[..., cut : k - cut].mean(axis=-1)[()]


def stratified_bootstrap_ci(
    scores: ArrayLike,
    statistic: Callable[[np.ndarray], FloatOrArray],
    reps: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
    batched: bool = False,
) -> tuple[float, float]:
    """The percentile `confidence` interval of `statistic` (a function of a [runs, tasks] array,
    e.g. `iqm`) by rliable's stratified bootstrap over `scores`: [runs, tasks], run i's score on
    task j. Each of `reps` resamples draws, for every task on its own, `runs` of that task's runs
    with replacement, so a task's scores never stand in for another's and every task keeps its
    weight; the interval runs from the (1 - confidence) / 2 to the (1 + confidence) / 2 quantile
    of the statistic over the resamples. `rng`: a Generator or a seed (same seed, same interval).
    `batched`: `statistic` takes the whole stack [reps, runs, tasks] and returns [reps] values in
    one call (`lambda s: iqm(s, axis=(-2, -1))`), the same interval without a Python loop.

    What it covers: the statistic's value on these same tasks if the runs (seeds) were repeated;
    tasks are fixed, not a sample. It needs enough runs per task: a resample only recombines the
    runs it has, so with few of them the interval is too narrow (on one task with 2 runs it is
    [min, max], which covers a normal mean half of the time). On normal scores, 5 tasks, the IQM's
    95% interval covered its true value about 92-93% of the time at 10 runs per task and about
    85% at 3 (tests/test_stats.py): a little under 95% even with enough runs, as percentile
    intervals of small samples are."""
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"scores must be [runs, tasks] and not empty, got shape {x.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    runs, tasks = x.shape
    generator = np.random.default_rng(rng)
    # resamples[r, i, j] = x[rows[r, i, j], j]: the row is drawn, the task (column) is kept.
    rows = generator.integers(0, runs, size=(reps, runs, tasks))
    resamples = x[rows, np.arange(tasks)]
    if batched:
        values = np.asarray(statistic(resamples), dtype=np.float64)
    else:
        values = np.array([statistic(resample) for resample in resamples], dtype=np.float64)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
