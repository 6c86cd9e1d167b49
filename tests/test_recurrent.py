"""The recurrent core: independent actor/critic blocks, resets, gate initialisation."""

import pytest
import torch

from agent.recurrent import RecurrentCore, chrono_bias, reset_state


@pytest.mark.parametrize("rnn_type", ["lstm", "peephole", "gru"])
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
    core = RecurrentCore(2, 8, 1, "lstm", groups=2, chrono_max_len=50)
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


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
def test_single_step_cells_match_the_sequence_kernel(rnn_type):
    torch.manual_seed(0)
    core = RecurrentCore(3, 5, 2, rnn_type, groups=2)
    x = torch.randn(4, 6, 3)
    state = torch.randn(core.state_slots, 2, 6, 10)
    with torch.enable_grad():
        seq_out, seq_state = core(x, state)
    stepped = state
    with torch.no_grad():
        for t in range(4):
            out, stepped = core(x[t : t + 1], stepped)
            torch.testing.assert_close(out[0], seq_out[t].detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(stepped, seq_state.detach(), atol=1e-6, rtol=1e-5)


def test_peephole_lstm_with_closed_peepholes_is_a_plain_lstm():
    from agent.peephole import PeepholeLSTM

    torch.manual_seed(0)
    peephole = PeepholeLSTM(3, 5, num_layers=2)
    plain = torch.nn.LSTM(3, 5, num_layers=2)
    plain.load_state_dict({k: v for k, v in peephole.state_dict().items() if "peep" not in k})
    x = torch.randn(7, 4, 3)
    state = (torch.randn(2, 4, 5), torch.randn(2, 4, 5))
    out_p, (_, c_p) = peephole(x, state)
    out_l, (_, c_l) = plain(x, state)
    torch.testing.assert_close(out_p, out_l)
    torch.testing.assert_close(c_p, c_l)
    # open the peepholes: the gates now see the cell, and gradients reach the peephole weights
    with torch.no_grad():
        peephole.peep_l0.fill_(0.5)
    out_open, _ = peephole(x, state)
    assert not torch.allclose(out_open, out_l)
    out_open.sum().backward()
    assert peephole.peep_l0.grad.abs().sum() > 0


def test_peephole_matches_a_step_by_step_reference():
    """The scripted loop against the equations of Gers & Schmidhuber written out per step."""
    from agent.peephole import PeepholeLSTM

    torch.manual_seed(1)
    cell = PeepholeLSTM(2, 3)
    with torch.no_grad():
        cell.peep_l0.uniform_(-1, 1)
    w_ih, w_hh, b_ih, b_hh, p = cell.layer_weights(0)
    x = torch.randn(5, 2, 2)
    h, c = torch.zeros(2, 3), torch.zeros(2, 3)
    outs = []
    for t in range(5):
        z = x[t] @ w_ih.T + h @ w_hh.T + b_ih + b_hh
        i = torch.sigmoid(z[:, 0:3] + p[0] * c)
        f = torch.sigmoid(z[:, 3:6] + p[1] * c)
        c = f * c + i * torch.tanh(z[:, 6:9])
        o = torch.sigmoid(z[:, 9:12] + p[2] * c)
        h = o * torch.tanh(c)
        outs.append(h)
    out, _ = cell(x, (torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)))
    torch.testing.assert_close(out, torch.stack(outs))
