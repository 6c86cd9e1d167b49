"""What `train` learns from: the minibatches `RolloutBuffer.batch` builds and the loss over them.

Checked against a replay written out by hand: each env column run step by step through the
policy, from the rollout's first state, with the state zeroed where the script starts an
episode, and the PPO loss taken as a mean over the valid steps only (no reset steps, no padding),
with the advantages normalised over those steps.
"""

import copy

import numpy as np
import pytest
import torch

from agent import RecurrentPPO
from tests.toy_envs import SCRIPT, scripted_steps, scripted_vector

T, E = 8, len(SCRIPT)
CLIP = 0.2


def second_rollout(**overrides):
    """A model and its second rollout on the scripted env: it starts from a carried state."""
    config = dict(
        n_steps=T,
        batch_size=E * T,  # the whole rollout is one minibatch
        n_epochs=1,
        lstm_hidden_size=4,
        net_arch=[8],
        max_grad_norm=1e9,  # no clipping: the gradient is the loss's own
        clip_range=CLIP,
        ortho_init=False,  # larger logits, so the entropy and log-probs vary visibly
        device="cpu",
        seed=5,
    )
    model = RecurrentPPO(scripted_vector(), **(config | overrides))
    model._start_episodes()
    model.collect_rollout()
    buffer = model.collect_rollout()
    model.compute_advantages(buffer)
    return model, buffer


def train_once(model: RecurrentPPO, buffer) -> tuple[dict[str, float], torch.Tensor]:
    """The logs and the gradient of one `train` call of a single minibatch; the model is then
    put back as it was."""
    saved = copy.deepcopy(model.training_state())
    logs = model.train(buffer)
    grad = torch.cat([p.grad.reshape(-1) for p in model.policy.parameters()]).clone()
    model.load_training_state(saved)
    return logs, grad


def hand_loss(model: RecurrentPPO, buffer, first: int = T) -> dict[str, torch.Tensor]:
    """PPO's loss terms over the valid steps, from a step-by-step replay of every column."""
    cfg = model.config
    where = scripted_steps(SCRIPT, T, first=first)
    state = buffer.states[0].permute(1, 2, 0, 3)  # [S, layers, E, H]
    log_probs, entropies, values = [], [], []
    for t in range(T):
        keep = torch.as_tensor(~where["start"][t], dtype=torch.float32).view(1, 1, -1, 1)
        dist, value, state = model.policy(buffer.observations[t][None], state * keep)
        log_probs.append(dist.log_prob(buffer.actions[t][None])[0])
        entropies.append(dist.entropy()[0])
        values.append(value[0])
    valid = torch.as_tensor(~where["reset"])
    log_prob, entropy, value = (torch.stack(x)[valid] for x in (log_probs, entropies, values))
    adv = buffer.advantages[valid]
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    ratio = (log_prob - buffer.log_probs[valid]).exp()
    pg = -torch.min(ratio * adv, ratio.clamp(1 - CLIP, 1 + CLIP) * adv).mean()
    vf = (buffer.returns[valid] - value).pow(2).mean()
    ent = entropy.mean()
    return {"pg": pg, "vf": vf, "ent": ent, "loss": pg + cfg.vf_coef * vf - cfg.ent_coef * ent}


def grad_of(model: RecurrentPPO, loss: torch.Tensor) -> torch.Tensor:
    """d loss / d parameters, flat, in `policy.parameters()` order (0 where loss does not reach)."""
    params = list(model.policy.parameters())
    grads = torch.autograd.grad(loss, params, retain_graph=True, materialize_grads=True)
    return torch.cat([g.reshape(-1) for g in grads])


def assert_close_vectors(got: torch.Tensor, want: torch.Tensor, rel: float = 1e-4) -> None:
    err = (got - want).norm().item()
    assert err <= rel * want.norm().item(), f"|difference| {err:.3g}, |want| {want.norm():.3g}"


def test_sequence_start_states_are_the_stored_states_at_their_first_steps():
    _, buffer = second_rollout(bptt_len=3)
    seqs = buffer.sequences
    chosen = np.arange(len(seqs.length))[::-1].copy()  # any order: each keeps its own state
    batch = buffer.batch(chosen, normalize_advantage=True)
    starts = buffer.episode_starts.numpy()
    cut_mid_episode = 0
    for n, k in enumerate(chosen):
        t, e = seqs.start[k], seqs.env[k]
        expected = buffer.states[t, e]  # [S, layers, H]: the state fed at step t
        assert torch.equal(batch.state[:, :, n], expected), f"sequence at step {t}, env {e}"
        assert torch.equal(batch.observations[0, n], buffer.observations[t, e])
        if starts[t, e]:
            assert torch.count_nonzero(expected) == 0
        else:  # the rollout's first step, or a cut by bptt_len inside an episode
            assert torch.count_nonzero(expected) > 0
            cut_mid_episode += t > 0
    assert cut_mid_episode >= 2


def test_rows_are_the_real_valid_steps_and_nothing_else():
    _, buffer = second_rollout()
    seqs = buffer.sequences
    chosen = np.arange(len(seqs.length))
    batch = buffer.batch(chosen, normalize_advantage=True)
    L, N = batch.observations.shape[:2]
    assert seqs.length.min() < L  # some sequences are padded
    rows = batch.rows.numpy()
    offset, n = rows // N, rows % N
    assert (offset < seqs.length[chosen][n]).all(), "a padded step is learned from"
    t, e = seqs.start[chosen][n] + offset, seqs.env[chosen][n]
    valid = ~scripted_steps(SCRIPT, T, first=T)["reset"]
    learned = sorted(zip(t.tolist(), e.tolist(), strict=True))
    assert learned == sorted(map(tuple, np.argwhere(valid).tolist()))
    assert torch.equal(batch.returns, buffer.returns[t, e])
    assert torch.equal(batch.actions, buffer.actions[t, e])


@pytest.mark.parametrize(
    ("ent_coef", "vf_coef", "bptt_len"), [(0.0, 0.5, 0), (0.1, 2.0, 0), (0.1, 0.5, 3)]
)
def test_loss_and_gradient_of_train_match_the_hand_computation(ent_coef, vf_coef, bptt_len):
    model, buffer = second_rollout(ent_coef=ent_coef, vf_coef=vf_coef, bptt_len=bptt_len)
    logs, grad = train_once(model, buffer)
    want = hand_loss(model, buffer)
    assert logs["train/loss"] == pytest.approx(want["loss"].item(), rel=1e-4, abs=1e-6)
    assert logs["train/value_loss"] == pytest.approx(want["vf"].item(), rel=1e-4)
    assert logs["train/entropy_loss"] == pytest.approx(-want["ent"].item(), rel=1e-4)
    if bptt_len == 0:  # the hand replay backpropagates through whole episodes, as train does
        assert_close_vectors(grad, grad_of(model, want["loss"]))


def test_each_coefficient_scales_its_own_term_of_the_gradient():
    """d(gradient) / d(coefficient) is the gradient of the term: -entropy, +value loss."""
    model, buffer = second_rollout()
    grads = {}
    for ent_coef, vf_coef in [(0.0, 0.0), (0.3, 0.0), (0.0, 0.7)]:
        model.config.ent_coef, model.config.vf_coef = ent_coef, vf_coef
        grads[ent_coef, vf_coef] = train_once(model, buffer)[1]
    terms = hand_loss(model, buffer)
    base = grads[0.0, 0.0]
    assert_close_vectors((grads[0.3, 0.0] - base) / 0.3, grad_of(model, -terms["ent"]), 1e-3)
    assert_close_vectors((grads[0.0, 0.7] - base) / 0.7, grad_of(model, terms["vf"]), 1e-3)


def test_what_is_stored_at_reset_steps_changes_nothing_learned():
    model, buffer = second_rollout(ent_coef=0.1)
    logs, grad = train_once(model, buffer)
    reset = torch.as_tensor(scripted_steps(SCRIPT, T, first=T)["reset"])
    assert reset.any()
    garbled = copy.copy(buffer)
    for name, junk in [
        ("advantages", 100.0), ("returns", -50.0), ("values", 7.0), ("log_probs", -3.0),
    ]:  # fmt: skip
        setattr(garbled, name, getattr(buffer, name).masked_fill(reset, junk))
    garbled.actions = torch.where(reset, 1 - buffer.actions, buffer.actions)
    logs2, grad2 = train_once(model, garbled)
    assert logs2["train/loss"] == logs["train/loss"]
    assert torch.equal(grad2, grad)
