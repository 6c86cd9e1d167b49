"""Recomputing a rollout's log-probabilities and values the way the update does."""

import torch

from agent import RecurrentPPO
from agent.sequences import minibatches, split_sequences


def replay_errors(model: RecurrentPPO, buffer) -> tuple[float, float, int]:
    """Max |log-prob| and |value| differences over every minibatch of one epoch, and the number
    of sequences that start inside the rollout at an episode start."""
    seqs = split_sequences(buffer.episode_starts.cpu().numpy(), model.config.sequence_len)
    learn = buffer.valid.cpu().numpy()
    worst_lp = worst_v = 0.0
    batches = minibatches(
        seqs, model.config.n_envs, model.config.batch_size, model.generator, learn, model.device
    )
    with torch.no_grad():
        for mb in batches:
            data = buffer.gather(mb.steps)
            dist, values = model.policy.evaluate(
                buffer.observations_at(mb.index), buffer.initial_states(mb.first), mb.rows
            )
            lp = dist.log_prob(data["actions"])
            worst_lp = max(worst_lp, (lp - data["log_probs"]).abs().max().item())
            worst_v = max(worst_v, (values - data["values"]).abs().max().item())
    episode_starts_inside = int(buffer.episode_starts[1:].sum())
    return worst_lp, worst_v, episode_starts_inside
