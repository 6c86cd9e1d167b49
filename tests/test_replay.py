"""The replay test: the minibatches of the update recompute exactly what the rollout recorded.

A second rollout (it starts from a carried, non-zero state) is cut into the minibatches
`RolloutBuffer.minibatches` hands to `train`. If a minibatch's sequences started from another
state than the one stored at their first step (a zero one, say), if the stored states were not
those fed while acting, or if sequences were cut or padded wrongly, the log-probabilities and
values recomputed in training would differ from those recorded while acting.

A state fed and stored wrongly in the same way replays without error; so the test also checks,
for every recurrent core, that the state stored at each episode's first step is zero and every
other stored state is not (tests/test_rollout_contract.py checks each step's state exactly).
"""

import gymnasium as gym
import pytest

from agent import RecurrentPPO
from tests.replay_check import replay_errors


def second_rollout(**config):
    """A CartPole model and its second rollout (which starts from a carried, non-zero state),
    ready to replay."""
    model = RecurrentPPO(
        "CartPole-v1", n_envs=4, n_steps=96, batch_size=64, lstm_hidden_size=16, seed=1, **config
    )
    model._start_episodes()
    model.collect_rollout()
    buffer = model.collect_rollout()
    model.compute_advantages(buffer)
    return model, buffer


@pytest.mark.parametrize("rnn_type", ["lstm", "peephole", "gru", "mingru", "ffm"])
@pytest.mark.parametrize("shared_lstm", [False, True])
@pytest.mark.parametrize("bptt_len", [0, 7])
def test_recomputed_log_probs_and_values_match_rollout(rnn_type, shared_lstm, bptt_len):
    model, buffer = second_rollout(rnn_type=rnn_type, shared_lstm=shared_lstm, bptt_len=bptt_len)
    lp_err, v_err, starts_inside = replay_errors(model, buffer)
    assert starts_inside >= 8, "the rollout should contain many episode ends"
    assert lp_err < 1e-5
    assert v_err < 1e-5
    # [T, E] entries of the stored state: none at an episode start, all others non-zero
    nonzero = buffer.states.flatten(2).count_nonzero(dim=2)
    starts = buffer.episode_starts
    assert (nonzero[starts] == 0).all(), "a state stored at an episode start is not zero"
    assert (nonzero[~starts] > 0).all(), "a state stored mid-episode is zero"


@pytest.mark.parametrize("rnn_type", ["lstm", "mingru", "ffm"])
def test_two_layers_replay_too(rnn_type):
    """A second layer's start state is stored and replayed like the first's."""
    model, buffer = second_rollout(rnn_type=rnn_type, n_lstm_layers=2, bptt_len=7)
    lp_err, v_err, starts_inside = replay_errors(model, buffer)
    assert starts_inside >= 8 and lp_err < 1e-5 and v_err < 1e-5


def test_replay_detects_a_state_that_is_not_carried():
    """The check itself can fail: replaying mid-episode sequences from a zero state is caught."""
    model = RecurrentPPO(
        "CartPole-v1",
        n_envs=4,
        n_steps=96,
        batch_size=64,
        bptt_len=7,
        lstm_hidden_size=16,
        ortho_init=False,  # larger initial logits, so the log-probs depend visibly on the state
    )
    model._start_episodes()
    buffer = model.collect_rollout()
    model.compute_advantages(buffer)
    buffer.states.zero_()
    lp_err, v_err, _ = replay_errors(model, buffer)
    assert lp_err > 1e-4 and v_err > 1e-4


def test_first_update_replays_inside_train(monkeypatch):
    """train() itself sees ratio 1 on its first minibatch: approx_kl and clip_fraction are 0."""
    model = RecurrentPPO(
        gym.make_vec("CartPole-v1", num_envs=4),
        n_steps=64,
        batch_size=256,
        n_epochs=1,
        lstm_hidden_size=16,
    )
    model._start_episodes()
    buffer = model.collect_rollout()
    model.compute_advantages(buffer)
    logs = model.train(buffer)
    assert logs["train/approx_kl"] == pytest.approx(0.0, abs=1e-7)
    assert logs["train/clip_fraction"] == 0.0
