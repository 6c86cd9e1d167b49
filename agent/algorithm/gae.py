"""Generalised advantage estimation for rollouts collected under Gymnasium's NEXT_STEP autoreset."""

from __future__ import annotations

import torch


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    last_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    valid: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns of a rollout, time-major.

    Args:
        rewards: [T, E] reward of step t.
        values: [T, E] value estimate of the observation at step t.
        last_values: [E] value of the observation after the last step.
        terminated: [T, E] bool, step t ended its episode in a terminal state (no bootstrap).
        truncated: [T, E] bool, step t ended its episode by a time limit (bootstrap).
        valid: [T, E] bool, False for the reset steps of NEXT_STEP autoreset: the step after an
            episode end, whose action the env ignores. Their advantage and return are 0.
        gamma: discount factor.
        gae_lambda: GAE lambda.

    Under NEXT_STEP autoreset, the observation after a terminated or truncated step is the final
    observation itself, and its value (stored at t + 1, a reset step) is the bootstrap target of
    the truncation. The reset step after the end starts no new chain.

    Returns:
        (advantages, returns), each [T, E]; returns = advantages + values.
    """
    T = rewards.shape[0]
    next_values = torch.cat([values[1:], last_values.unsqueeze(0)], dim=0)
    not_terminated = (~terminated).to(values.dtype)
    continues = (~(terminated | truncated)).to(values.dtype)
    deltas = rewards + gamma * next_values * not_terminated - values
    valid_f = valid.to(values.dtype)
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(last_values)
    for t in reversed(range(T)):
        running = (deltas[t] + gamma * gae_lambda * continues[t] * running) * valid_f[t]
        advantages[t] = running
    return advantages, (advantages + values) * valid_f
