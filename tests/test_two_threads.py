"""With two torch threads, `learn` runs the actor's and the critic's halves of each gradient
step on two threads (agent/algorithm/gradient_step.py): the same training as one pass."""

import copy

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
    used = model._two_threads.steps > 0
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
        {"obs": spaces.Dict({"pos": BOX, "codes": CODES, "id": spaces.Discrete(3)})},
        {"rnn_type": "gru", "n_lstm_layers": 2},
        {"rnn_type": "none"},
    ],
    ids=[
        "lstm",
        "gru",
        "mingru",
        "ffm",
        "shared-encoder",
        "box-entropy",
        "clipped-value",
        "dict",
        "two-layers",
        "none",
    ],
)
def test_halves_on_two_threads_train_as_one_pass(case, threads):
    one, threads_after, used_one = trained(1, threads, **case)
    two, threads_after_two, used_two = trained(2, threads, **case)
    assert not used_one and used_two
    assert (threads_after, threads_after_two) == (1, 2)  # learn gives the threads back
    assert torch.equal(one, two), (one - two).abs().max()
    assert not torch.equal(one, trained(1, threads, **{**case, "seed": 4})[0])  # it can differ


@pytest.mark.parametrize(
    "config",
    [{"shared_lstm": True}, {"target_kl": 0.01}, {"fast_path": False}, {"obs": PICTURES}],
    ids=["shared-lstm", "target-kl", "reference-path", "cnn"],
)
def test_halves_only_where_they_apply(config, threads):
    assert not trained(2, threads, **config)[2]


def test_a_half_that_raises_stops_learn_and_gives_the_threads_back(threads, monkeypatch):
    from agent.networks.policy import RecurrentActorCritic

    def broken(*args, **kwargs):
        raise RuntimeError("the critic's half broke")

    monkeypatch.setattr(RecurrentActorCritic, "critic_values", broken)
    threads(2)
    model = RecurrentPPO(vector(lambda: AnySpaceEnv(BOX, TWO)), n_steps=24, batch_size=16)
    before = [p.detach().clone() for p in model.policy.parameters()]
    with pytest.raises(RuntimeError, match="critic's half broke"):
        model.learn(96)
    assert torch.get_num_threads() == 2 and not model._two_threads.active
    assert all(torch.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True))
    copy.deepcopy(model)  # a model between two learns holds no thread


def test_the_critic_half_is_over_before_an_error_in_the_actor_half_leaves(threads, monkeypatch):
    import time

    from agent.networks.policy import RecurrentActorCritic

    critic_values, finished = RecurrentActorCritic.critic_values, []

    def slow_critic(*args, **kwargs):
        time.sleep(0.3)
        values = critic_values(*args, **kwargs)
        finished.append(True)
        return values

    def broken_actor(*args, **kwargs):
        raise KeyboardInterrupt

    threads(2)
    model = RecurrentPPO(vector(lambda: AnySpaceEnv(BOX, TWO)), n_steps=24, batch_size=16)
    model._start_episodes()
    buffer = model.collect_rollout()
    model.compute_advantages(buffer)
    batch = next(iter(buffer.minibatches(16, model.generator, True)))
    monkeypatch.setattr(RecurrentActorCritic, "critic_values", slow_critic)
    monkeypatch.setattr(RecurrentActorCritic, "actor_distribution", broken_actor)
    halves = model._two_threads
    with halves.during_learn(model.policy, model.config, model.device):
        with pytest.raises(KeyboardInterrupt):
            halves.gradient(model.policy, batch, model.config, 0.2)
        assert finished  # not still running behind the interruption
