"""Recomputing a rollout's log-probabilities and values the way the update does."""

import torch

from agent import RecurrentPPO
from agent.sequences import minibatches, split_sequences


def replay_errors(model: RecurrentPPO, buffer) -> tuple[float, float, int]:
    """Max |log-prob| and |value| differences over every minibatch of one epoch, and the number
    of sequences that start inside the rollout at an episode start."""
    seqs = split_sequences(buffer.episode_starts.cpu().numpy(), model.config.sequence_len)
    worst_lp = worst_v = 0.0
    with torch.no_grad():
        for mb in minibatches(seqs, model.config.n_envs, model.config.batch_size, model.generator):
            mask = mb.mask & buffer.valid.reshape(-1)[mb.index]
            data = buffer.gather(mb.index[mask])
            dist, values = model.policy.evaluate(
                data["observations"], buffer.initial_states(mb.first), mask
            )
            lp = dist.log_prob(data["actions"])
            worst_lp = max(worst_lp, (lp - data["log_probs"]).abs().max().item())
            worst_v = max(worst_v, (values - data["values"]).abs().max().item())
    episode_starts_inside = int(buffer.episode_starts[1:].sum())
    return worst_lp, worst_v, episode_starts_inside
