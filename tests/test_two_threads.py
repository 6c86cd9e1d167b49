"""With two torch threads, `learn` runs the actor's and the critic's halves of each gradient
step on two threads (agent/algorithm/gradient_step.py): the same training as one pass."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agent import RecurrentPPO
from tests.toy_envs import AnySpaceEnv, vector

BOX = spaces.Box(-1.0, 1.0, (3,), np.float32)
TWO = spaces.Discrete(2)
CODES = spaces.Box(0, 255, (3, 12, 12), np.uint8)  # embedded: an encoder with parameters
PICTURES = spaces.Box(0, 255, (3, 36, 36), np.uint8)  # a CNN


@pytest.fixture
def threads():
    """Set torch's thread count for a test; restored after."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def trained(n_threads, set_threads, obs=BOX, action=TWO, **config):
    """Parameters after two updates, the thread count after `learn`, whether the halves ran."""
    set_threads(n_threads)
    env = vector(lambda: AnySpaceEnv(obs, action))
    model = RecurrentPPO(
        env, n_steps=24, batch_size=16, n_epochs=2, lstm_hidden_size=8, **{"seed": 3, **config}
    )
    model.learn(96)
    used = model._two_threads._pool is not None
    params = torch.cat([p.detach().reshape(-1) for p in model.policy.parameters()])
    model.close()
    return params, torch.get_num_threads(), used


@pytest.mark.parametrize(
    "case",
    [
        {},
        {"rnn_type": "gru"},
        {"rnn_type": "mingru"},
        {"rnn_type": "ffm"},
        {"obs": CODES},
        {"action": spaces.Box(-2.0, 2.0, (2,), np.float32), "ent_coef": 0.01},
        {"clip_range_vf": 0.1, "vf_coef": 0.7},
    ],
    ids=["lstm", "gru", "mingru", "ffm", "shared-encoder", "box-entropy", "clipped-value"],
)
def test_halves_on_two_threads_train_as_one_pass(case, threads):
    one, threads_after, used_one = trained(1, threads, **case)
    two, threads_after_two, used_two = trained(2, threads, **case)
    assert not used_one and used_two
    assert (threads_after, threads_after_two) == (1, 2)  # learn gives the threads back
    assert torch.allclose(one, two, rtol=0, atol=1e-6), (one - two).abs().max()
    assert not torch.equal(one, trained(1, threads, **{**case, "seed": 4})[0])  # it can differ


@pytest.mark.parametrize(
    "config",
    [{"shared_lstm": True}, {"target_kl": 0.01}, {"fast_path": False}, {"obs": PICTURES}],
    ids=["shared-lstm", "target-kl", "reference-path", "cnn"],
)
def test_halves_only_where_they_apply(config, threads):
    assert not trained(2, threads, **config)[2]
