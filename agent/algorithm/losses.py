"""The PPO losses as pure functions of flat tensors of the valid steps of a minibatch."""

from __future__ import annotations

from typing import NamedTuple

import torch


class PolicyLoss(NamedTuple):
    """Clipped surrogate loss and its diagnostics."""

    loss: torch.Tensor
    approx_kl: torch.Tensor
    clip_fraction: torch.Tensor


def policy_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    clip_range: float,
) -> PolicyLoss:
    """PPO's clipped surrogate objective, negated to be minimised.

    Args:
        log_prob: [N] log-probabilities of the taken actions under the current policy.
        old_log_prob: [N] the same under the rollout policy.
        advantages: [N] advantage estimates (already normalised if wanted).
        clip_range: epsilon of the ratio clip.

    Returns:
        loss = -mean(min(r A, clip(r, 1 - eps, 1 + eps) A)); approx_kl = mean((r - 1) - log r),
        the low-variance estimator of KL(old || new); clip_fraction = share of |r - 1| > eps.
    """
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip_range, 1.0 + clip_range) * advantages
    loss = -torch.min(unclipped, clipped).mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = ((ratio - 1.0).abs() > clip_range).float().mean()
    return PolicyLoss(loss, approx_kl, clip_fraction)


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    clip_range_vf: float | None,
) -> torch.Tensor:
    """Mean squared error of the values against the returns.

    With `clip_range_vf`, the new values are first clipped to old_values +- clip_range_vf (as SB3
    does: the clipped prediction alone, not the max of clipped and unclipped losses).
    """
    if clip_range_vf is not None:
        values = old_values + (values - old_values).clamp(-clip_range_vf, clip_range_vf)
    return (returns - values).pow(2).mean()


def explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """1 - Var[target - predicted] / Var[target]; nan when the target has no variance."""
    var_target = target.var()
    if var_target.item() == 0:
        return float("nan")
    return float(1.0 - (target - predicted).var() / var_target)
