"""The rollout's fast step (fused weights made once per rollout) acts like the plain modules.

Every parameter is drawn at random, biases included: at initialisation the heads' biases are
zero, and a fused step that dropped one would still match there.
"""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agent.config import PPOConfig
from agent.networks.distributions import CategoricalDist
from agent.networks.fast_path import FusedPolicy
from agent.networks.policy import RecurrentActorCritic

OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)


@pytest.mark.parametrize(
    "action_space",
    [spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,), np.float32), spaces.MultiDiscrete([2, 4])],
    ids=["discrete", "box", "multidiscrete"],
)
@pytest.mark.parametrize("shared_lstm", [False, True])
@pytest.mark.parametrize("net_arch", [[], [16, 8]], ids=["no-hidden", "two-hidden"])
@pytest.mark.parametrize("rnn_type", ["lstm", "gru", "mingru", "ffm"])
def test_fused_step_matches_the_modules(action_space, shared_lstm, net_arch, rnn_type):
    torch.manual_seed(0)
    config = PPOConfig(
        lstm_hidden_size=8,
        n_lstm_layers=2,
        shared_lstm=shared_lstm,
        net_arch=net_arch,
        rnn_type=rnn_type,
        activation_fn="relu",
    )
    policy = RecurrentActorCritic(OBS, action_space, config)
    with torch.no_grad():
        for p in policy.parameters():
            torch.nn.init.normal_(p, std=0.5)
    obs = torch.rand(5, 3) * 2 - 1
    state = torch.randn_like(policy.initial_state(5))
    fast = FusedPolicy(policy)
    plain = policy.step(obs, state, deterministic=True)
    fused = fast.step(obs, state, deterministic=True)
    for a, b in ((plain.actions, fused.actions), (plain.log_prob, fused.log_prob),
                 (plain.values, fused.values), (plain.state, fused.state)):  # fmt: skip
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(
        policy.value(obs, state), fast.value(obs, state), atol=1e-6, rtol=1e-5
    )


def test_categorical_samples_follow_the_probabilities():
    probs = torch.tensor([[0.1, 0.6, 0.3], [0.0, 0.0, 1.0]])
    dist = CategoricalDist(probs.log(), [3], scalar=True)
    torch.manual_seed(0)
    draws = torch.stack([dist.sample() for _ in range(20000)])
    freq = torch.stack([(draws[:, 0] == k).float().mean() for k in range(3)])
    torch.testing.assert_close(freq, probs[0], atol=0.01, rtol=0)
    assert (draws[:, 1] == 2).all()  # never a zero-probability action
