"""Recomputing a rollout's log-probabilities and values from the minibatches the update uses."""

import torch

from agent import RecurrentPPO


def replay_errors(model: RecurrentPPO, buffer) -> tuple[float, float, int]:
    """Max |log-prob| and |value| differences over every minibatch of one epoch, as
    `buffer.minibatches` hands them to `train`, and the number of sequences that start inside
    the rollout at an episode start."""
    cfg = model.config
    worst_lp = worst_v = 0.0
    with torch.no_grad():
        for batch in buffer.minibatches(cfg.batch_size, model.generator, cfg.normalize_advantage):
            dist, values = model.policy.evaluate(
                batch.observations, batch.state, batch.rows, batch.masks
            )
            lp = dist.log_prob(batch.actions)
            worst_lp = max(worst_lp, (lp - batch.log_probs).abs().max().item())
            worst_v = max(worst_v, (values - batch.values).abs().max().item())
    episode_starts_inside = int(buffer.episode_starts[1:].sum())
    return worst_lp, worst_v, episode_starts_inside
