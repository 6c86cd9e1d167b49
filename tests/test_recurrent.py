"""The recurrent core: independent actor/critic blocks, resets, gate initialisation, the
peephole cell, and single steps (the reference's and the fast path's) against the sequence kernel."""

import pytest
import torch
from gymnasium import spaces

from agent.config import ConfigError, PPOConfig
from agent.networks.fast_path import core_step, core_step_weights, lstm_step
from agent.networks.policy import RecurrentActorCritic
from agent.networks.recurrent import RecurrentCore, chrono_bias, reset_state


@pytest.mark.parametrize("rnn_type", ["lstm", "peephole", "gru", "mingru", "ffm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_groups_are_independent_networks(rnn_type, layers):
    torch.manual_seed(0)
    core = RecurrentCore(3, 4, layers, rnn_type, groups=2)
    opt = torch.optim.Adam(core.parameters(), lr=0.1)
    for _ in range(3):
        out, _ = core(torch.randn(5, 2, 3), core.initial_state(2))
        out.pow(2).sum().backward()
        opt.step()
        opt.zero_grad()
    x = torch.randn(6, 2, 3)
    state = torch.randn(core.state_slots, layers, 2, 8)
    perturbed = state.clone()
    perturbed[..., 4:] += 1.0  # change only the second group's (the critic's) state
    out_a, _ = core(x, state)
    out_b, _ = core(x, perturbed)
    torch.testing.assert_close(out_a[..., :4], out_b[..., :4])
    assert not torch.allclose(out_a[..., 4:], out_b[..., 4:])


def test_reset_state_zeroes_only_started_entries():
    state = torch.ones(2, 1, 3, 4)
    out = reset_state(state, torch.tensor([False, True, False]))
    assert out[:, :, 1].abs().sum() == 0
    assert torch.equal(out[:, :, [0, 2]], state[:, :, [0, 2]])


def test_chrono_bias_range():
    b = chrono_bias(1000, max_len=100, generator=torch.Generator().manual_seed(0))
    assert b.min() >= 0.0 and b.max() <= torch.log(torch.tensor(99.0)) + 1e-6
    assert b.std() > 0.5  # spread over time scales, not one constant


def test_chrono_init_sets_forget_and_input_biases():
    core = RecurrentCore(2, 8, 1, "lstm", groups=2, forget_bias_init="chrono", chrono_max_len=50)
    b_ih, b_hh = core.rnns[1].bias_ih_l0.detach(), core.rnns[1].bias_hh_l0.detach()
    W = 8
    forget, inp = b_ih[W : 2 * W], b_ih[:W]
    assert torch.equal(inp, -forget) and forget.min() >= 0 and forget.max() > 1.0
    assert b_hh[: 2 * W].abs().sum() == 0


def test_chrono_forget_leaves_the_input_gate_at_pytorch_init():
    torch.manual_seed(0)
    core = RecurrentCore(2, 8, 1, "lstm", forget_bias_init="chrono-forget", chrono_max_len=1000)
    b_ih = core.rnns[0].bias_ih_l0.detach()
    W = 8
    forget, inp = b_ih[W : 2 * W], b_ih[:W]
    assert forget.min() >= 0 and forget.max() > 3.0
    # PyTorch draws biases from U(-1/sqrt(H), 1/sqrt(H)): the gate starts about half open.
    assert inp.abs().max() <= 8**-0.5 and inp.abs().sum() > 0


def test_half_chrono_prepares_half_the_units_and_leaves_the_rest_at_pytorch_init():
    torch.manual_seed(0)
    core = RecurrentCore(2, 8, 1, "lstm", forget_bias_init="half-chrono", chrono_max_len=1000)
    b_ih, b_hh = core.rnns[0].bias_ih_l0.detach(), core.rnns[0].bias_hh_l0.detach()
    W = 8
    forget, inp = b_ih[W : 2 * W], b_ih[:W]
    assert torch.equal(inp[:4], -forget[:4]) and forget[:4].min() >= 0 and forget[:4].max() > 3.0
    assert b_hh[W : W + 4].abs().sum() == 0 and b_hh[:4].abs().sum() == 0
    for gate in (b_ih[4:W], b_ih[W + 4 : 2 * W], b_hh[4:W], b_hh[W + 4 : 2 * W]):
        assert gate.abs().max() <= 8**-0.5 and gate.abs().sum() > 0


def test_a_number_shifts_only_the_forget_gate_bias_and_an_unknown_name_is_refused():
    torch.manual_seed(0)
    plain = RecurrentCore(2, 8, 1, "lstm", forget_bias_init="default").rnns[0].bias_ih_l0
    torch.manual_seed(0)
    shifted = RecurrentCore(2, 8, 1, "lstm", forget_bias_init="1.5").rnns[0].bias_ih_l0
    W = 8
    assert torch.allclose(shifted[W : 2 * W] - plain[W : 2 * W], torch.full((W,), 1.5))
    assert torch.equal(shifted[:W], plain[:W]) and torch.equal(shifted[2 * W :], plain[2 * W :])
    with pytest.raises(ConfigError, match="half-chrono, chrono-forget, default or a number"):
        PPOConfig(forget_bias_init="half").validate()


def test_the_default_config_prepares_half_the_units_for_long_gaps():
    # Issue 16: chrono on every unit slowed tasks that keep writing; PyTorch's init on every
    # unit lost long gaps. Half of each is the default.
    torch.manual_seed(0)
    policy = RecurrentActorCritic(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), PPOConfig())
    H = PPOConfig().lstm_hidden_size
    for rnn in policy.core.rnns:  # the actor's LSTM and the critic's
        b_ih = rnn.bias_ih_l0.detach()
        forget, inp = b_ih[H : 2 * H], b_ih[:H]
        assert torch.equal(inp[: H // 2], -forget[: H // 2]) and forget[: H // 2].max() > 3.0
        assert forget[H // 2 :].abs().max() <= H**-0.5 and inp[H // 2 :].abs().max() <= H**-0.5


@pytest.mark.parametrize("rnn_type", ["lstm", "gru", "peephole", "mingru", "ffm", "none"])
@pytest.mark.parametrize("groups", [1, 2])
def test_single_steps_match_the_sequence_kernel(rnn_type, groups):
    torch.manual_seed(0)
    H = 8 if rnn_type == "ffm" else 5  # an FFM's units come in fours: two memory channels
    core = RecurrentCore(3, H, 2, rnn_type, groups=groups)
    x = torch.randn(4, 6, 3)
    state = torch.randn(core.state_slots, 2, 6, H * groups)
    with torch.enable_grad():
        seq_out, seq_state = core(x, state)
    weights = core_step_weights(core)  # the fast path's (None for a GRU, a peephole, none)
    stepped, fused = state, state
    with torch.no_grad():
        for t in range(4):
            out, stepped = core.step(x[t], stepped)  # the reference step
            fused_out, fused = core_step(core, x[t], fused, weights)  # the fast path's
            torch.testing.assert_close(out, seq_out[t].detach(), atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(fused_out, seq_out[t].detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(stepped, seq_state.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fused, seq_state.detach(), atol=1e-6, rtol=1e-5)


def test_step_weights_are_a_copy_made_again_after_an_update():
    torch.manual_seed(0)
    core = RecurrentCore(3, 5, 1, "lstm", groups=2)
    x, state = torch.randn(4, 3), torch.randn(2, 1, 4, 10)
    weights = core_step_weights(core)
    before, _ = lstm_step(core, x, state, weights)
    with torch.no_grad():
        core.rnns[1].weight_hh_l0.mul_(2.0)  # as an optimizer step would
    stale, _ = lstm_step(core, x, state, weights)
    fresh, _ = lstm_step(core, x, state, core_step_weights(core))
    expected, _ = core(x.unsqueeze(0), state)
    torch.testing.assert_close(fresh, expected[0].detach(), atol=1e-6, rtol=1e-5)
    assert torch.equal(stale, before)
    assert torch.equal(fresh[:, :5], before[:, :5]) and not torch.equal(fresh[:, 5:], before[:, 5:])


def peephole_reference(core, x, h, c):
    """The module docstring's equations, one step at a time, for a one-layer peephole core."""
    rnn = core.rnns[0]
    w_ih, w_hh, b_ih, b_hh, peep = rnn.layer_weights(0)
    outs = []
    for x_t in x:
        i, f, g, o = (x_t @ w_ih.t() + h @ w_hh.t() + b_ih + b_hh).chunk(4, dim=1)
        i = torch.sigmoid(i + peep[0] * c)
        f = torch.sigmoid(f + peep[1] * c)
        c = f * c + i * torch.tanh(g)
        o = torch.sigmoid(o + peep[2] * c)
        h = o * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs), h, c


def test_peephole_cell_follows_its_equations_and_their_gradients():
    torch.manual_seed(0)
    core = RecurrentCore(3, 5, 1, "peephole")
    with torch.no_grad():
        core.rnns[0].peep_l0.uniform_(-1, 1)
    x, state = torch.randn(7, 4, 3), torch.randn(2, 1, 4, 5)
    out, new_state = core(x, state)
    expected, h, c = peephole_reference(core, x, state[0, 0], state[1, 0])
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(new_state, torch.stack((h, c)).unsqueeze(1))
    params = list(core.parameters())
    got = torch.autograd.grad((out.sin().sum() + new_state[1].sum()), params)
    want = torch.autograd.grad((expected.sin().sum() + c.sum()), params)
    for name, g, w in zip([n for n, _ in core.named_parameters()], got, want, strict=True):
        torch.testing.assert_close(g, w, msg=f"gradient of {name}")


@pytest.mark.parametrize("layers", [1, 2])
def test_peephole_cell_without_peepholes_is_nn_lstm(layers):
    torch.manual_seed(0)
    core = RecurrentCore(3, 5, layers, "peephole")
    lstm = torch.nn.LSTM(3, 5, layers)
    lstm.load_state_dict(
        {k: v for k, v in core.rnns[0].state_dict().items() if not k.startswith("peep")}
    )
    x, state = torch.randn(6, 4, 3), torch.randn(2, layers, 4, 5)
    out, new_state = core(x, state)
    want, (h, c) = lstm(x, (state[0], state[1]))
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(new_state, torch.stack((h, c)))
    out.pow(2).sum().backward()
    want.pow(2).sum().backward()
    for name, p in lstm.named_parameters():
        torch.testing.assert_close(getattr(core.rnns[0], name).grad, p.grad, msg=name)


@pytest.mark.parametrize("rnn_type", ["lstm", "gru", "peephole", "mingru", "ffm", "none"])
def test_outputs_are_the_forward_outputs(rnn_type):
    torch.manual_seed(0)
    H = 4 if rnn_type == "ffm" else 5  # an FFM's units come in fours
    core = RecurrentCore(3, H, 2, rnn_type, groups=2)
    x, state = torch.randn(6, 4, 3), torch.randn(core.state_slots, 2, 4, 2 * H)
    out, _ = core(x, state)
    torch.testing.assert_close(torch.cat(core.outputs(x, state), dim=-1), out)
