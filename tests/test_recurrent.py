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


@pytest.mark.parametrize("rnn_type", ["lstm", "gru", "peephole", "none"])
@pytest.mark.parametrize("groups", [1, 2])
def test_single_steps_match_the_sequence_kernel(rnn_type, groups):
    torch.manual_seed(0)
    core = RecurrentCore(3, 5, 2, rnn_type, groups=groups)
    x = torch.randn(4, 6, 3)
    state = torch.randn(core.state_slots, 2, 6, 5 * groups)
    with torch.enable_grad():
        seq_out, seq_state = core(x, state)
    stepped = state
    with torch.no_grad():
        for t in range(4):
            out, stepped = core.step(x[t], stepped)
            torch.testing.assert_close(out, seq_out[t].detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(stepped, seq_state.detach(), atol=1e-6, rtol=1e-5)


def test_step_weights_are_a_copy_made_again_after_an_update():
    torch.manual_seed(0)
    core = RecurrentCore(3, 5, 1, "lstm", groups=2)
    x, state = torch.randn(4, 3), torch.randn(2, 1, 4, 10)
    weights = core.step_weights()
    before, _ = core.step(x, state, weights)
    with torch.no_grad():
        core.rnns[1].weight_hh_l0.mul_(2.0)  # as an optimizer step would
    stale, _ = core.step(x, state, weights)
    fresh, _ = core.step(x, state)
    expected, _ = core(x.unsqueeze(0), state)
    torch.testing.assert_close(fresh, expected[0].detach(), atol=1e-6, rtol=1e-5)
    assert torch.equal(stale, before)
    assert torch.equal(fresh[:, :5], before[:, :5]) and not torch.equal(fresh[:, 5:], before[:, 5:])
