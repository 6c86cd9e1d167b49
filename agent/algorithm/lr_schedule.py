"""Schedules: where the step size (and, linear, the clip range) of the next update comes from."""

from __future__ import annotations

ADAPT_FACTOR = 1.5
"""How much an `adaptive` rate shrinks or grows after one update."""
LEAST_FRACTION = 0.01
"""An `adaptive` rate never goes below this fraction of `learning_rate`."""


def linear_rate(learning_rate: float, num_timesteps: int, total_timesteps: int) -> float:
    """`learning_rate` (or a clip range) annealed linearly to 0 at `total_timesteps` (constant when
    it is 0)."""
    if total_timesteps <= 0:
        return learning_rate
    return learning_rate * max(1.0 - num_timesteps / total_timesteps, 0.0)


def adapt_rate(rate: float, kl: float, desired_kl: float, learning_rate: float) -> float:
    """The step size of the next update, after one whose mean approximate KL was `kl`.

    Divided by `ADAPT_FACTOR` when the KL was above twice `desired_kl`, multiplied by it when
    below half, left alone in between; kept within [LEAST_FRACTION, 1] x `learning_rate`, so
    `learning_rate` is the largest step taken and the schedule only ever slows updates that
    move the policy too far. The rule is rl_games' `AdaptiveScheduler` (threshold 0.008, rate
    within [1e-6, 1e-2]) and rsl_rl's `schedule="adaptive"` (`desired_kl` 0.01 in Isaac Lab's
    configs); they let the rate rise above the configured one, which here is the ceiling.
    """
    if kl > 2.0 * desired_kl:
        rate /= ADAPT_FACTOR
    elif kl < 0.5 * desired_kl:
        rate *= ADAPT_FACTOR
    return min(max(rate, LEAST_FRACTION * learning_rate), learning_rate)
