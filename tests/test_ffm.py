"""FFM: the whole-sequence recurrence against one step at a time (values and gradients), the
time scales it starts with, and a model that learns a memory task with it."""

import math

import pytest
import torch

from agent import RecurrentPPO
from agent.networks.ffm import FFM, FFMLayer


def one_step_at_a_time(layer, x, state):
    outs = []
    for t in range(x.shape[0]):
        out, state = layer(x[t : t + 1], state)
        outs.append(out[0])
    return torch.stack(outs), state


@pytest.mark.parametrize("length", [1, 5, 8, 9, 103])
def test_sequences_are_the_recurrence_in_values_and_gradients(length):
    torch.manual_seed(length)
    layer = FFMLayer(3, 8, max_len=64).double()
    x = torch.randn(length, 2, 3, dtype=torch.float64)
    state = (torch.randn(2, 8, dtype=torch.float64), torch.randn(2, 8, dtype=torch.float64))
    out, last = layer(x, state)
    looped, looped_last = one_step_at_a_time(layer, x, state)
    torch.testing.assert_close(out, looped)
    torch.testing.assert_close(torch.stack(last), torch.stack(looped_last))
    weights = list(layer.parameters())
    target = torch.randn_like(out)
    chunked = torch.autograd.grad(((out - target) ** 2).sum() + last[1].sum(), weights)
    stepped = torch.autograd.grad(((looped - target) ** 2).sum() + looped_last[1].sum(), weights)
    for a, b in zip(chunked, stepped, strict=True):
        torch.testing.assert_close(a, b)


def test_the_memory_fades_at_its_rates_and_turns_at_its_frequencies():
    layer = FFMLayer(2, 8, max_len=100)
    gamma = layer.log_gamma().exp().detach()  # [m, c]
    time_constants = -1.0 / gamma.abs().log()[:, 0]
    torch.testing.assert_close(time_constants[[0, -1]], torch.tensor([1.0, 100.0]))
    periods = 2 * math.pi / gamma.angle()[0].abs()
    assert periods[0] == pytest.approx(2.0, rel=1e-4) and periods[-1] > 90  # angle wraps at pi
    # With no input the state only turns and fades: one step multiplies it by gamma.
    with torch.no_grad():
        layer.pre.weight.zero_()
        layer.pre.bias.zero_()
    s = torch.complex(torch.randn(1, 8), torch.randn(1, 8))
    _, (real, imag) = layer(torch.zeros(1, 1, 2), (s.real, s.imag))
    torch.testing.assert_close(torch.complex(real, imag).view(2, 4), s.view(2, 4) * gamma)


def test_layers_stack():
    torch.manual_seed(0)
    stack = FFM(3, 8, num_layers=2, max_len=16)
    state = (torch.zeros(2, 5, 8), torch.zeros(2, 5, 8))
    out, (real, imag) = stack(torch.randn(7, 5, 3), state)
    assert out.shape == (7, 5, 8) and real.shape == imag.shape == (2, 5, 8)
    assert not torch.equal(real[0], real[1])  # each layer its own memory


def test_ffm_learns_the_short_t_maze():
    """The cue at step 0 decides the turn at the end: memoryless success is 0.5 (test_mingru)."""
    from agent.run.evaluation import evaluate

    model = RecurrentPPO("Memory/TMaze-v0", rnn_type="ffm", seed=0, device="cpu")
    model.learn(30_000)
    result = evaluate(model, "Memory/TMaze-v0", n_episodes=100)
    assert result["success_rate"] >= 0.95
