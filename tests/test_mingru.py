"""minGRU: the parallel scan against the step-by-step recurrence (values and gradients), its
gate initialisation, and a model that learns a memory task with it."""

import pytest
import torch

from agent import RecurrentPPO
from agent.networks import scan
from agent.networks.mingru import MinGRU
from agent.networks.recurrent import RecurrentCore
from agent.networks.scan import linear_scan, step_by_step


def loop(a: torch.Tensor, b: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t, one step at a time."""
    out = []
    for t in range(a.shape[0]):
        h = a[t] * h + b[t]
        out.append(h)
    return torch.stack(out)


@pytest.mark.parametrize("length", [1, 2, 3, 8, 9, 37, 128, 1000])
def test_scan_is_the_recurrence(length):
    torch.manual_seed(length)
    a = torch.rand(length, 3, 5, dtype=torch.float64)
    b = torch.randn(length, 3, 5, dtype=torch.float64)
    torch.testing.assert_close(linear_scan(a, b), loop(a, b, torch.zeros(3, 5, dtype=a.dtype)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_scan_on_cuda_is_the_cpus():
    a, b = torch.rand(300, 4, 16), torch.randn(300, 4, 16)
    torch.testing.assert_close(linear_scan(a.cuda(), b.cuda()).cpu(), step_by_step(a, b))


def test_a_zero_gate_forgets_everything_before_it():
    a, b = torch.rand(10, 4), torch.randn(10, 4)
    a[6] = 0.0
    torch.testing.assert_close(linear_scan(a, b)[6:], linear_scan(a[6:], b[6:]))


@pytest.mark.parametrize("length", [1, 9, 300])
def test_step_by_step_is_the_scan(length):
    a, b = torch.rand(length, 2, 3), torch.randn(length, 2, 3)
    torch.testing.assert_close(step_by_step(a, b), linear_scan(a, b))


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("loop_from", [0, 10**9], ids=["looped", "scanned"])
def test_module_matches_the_loop_in_values_and_gradients(layers, loop_from, monkeypatch):
    # LinearRecurrence's written-out gradient, on either way of computing the recurrence
    monkeypatch.setattr(scan, "LOOP_FROM", loop_from)
    torch.manual_seed(0)
    module = MinGRU(4, 6, layers).double()
    x = torch.randn(23, 3, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(layers, 3, 6, dtype=torch.float64)
    out, last = module(x, h0)

    inputs, lasts = x, []
    for layer in range(layers):
        a, b = module.gates(inputs, layer)
        inputs = loop(a, b, h0[layer])
        lasts.append(inputs[-1])
    torch.testing.assert_close(out, inputs)
    torch.testing.assert_close(last, torch.stack(lasts))

    weights = [x, *module.parameters()]
    scanned = torch.autograd.grad(out.pow(2).sum(), weights, retain_graph=True)
    looped = torch.autograd.grad(inputs.pow(2).sum(), weights)
    for g_scan, g_loop in zip(scanned, looped, strict=True):
        torch.testing.assert_close(g_scan, g_loop)


def test_chrono_opens_the_keep_gate():
    torch.manual_seed(0)
    core = RecurrentCore(2, 8, 1, "mingru", forget_bias_init="chrono", chrono_max_len=100)
    keep = core.rnns[0].bias_ih_l0.detach()[:8]
    assert keep.min() >= 0.0 and keep.max() > 2.0  # log(U(1, 99)): memories of up to ~100 steps
    half = RecurrentCore(2, 8, 1, "mingru", forget_bias_init="half-chrono", chrono_max_len=100)
    keep = half.rnns[0].bias_ih_l0.detach()[:8]
    assert keep[:4].max() > 2.0 and keep[4:].abs().max() <= 8**-0.5  # the rest at nn.GRU's init


def test_mingru_learns_the_short_t_maze():
    """The cue at step 0 decides the turn at the end, 10 steps later: memoryless success is 0.5
    (`rnn_type="none"` at these settings, seed 0: 0.6)."""
    from agent.run.evaluation import evaluate

    model = RecurrentPPO("Memory/TMaze-v0", rnn_type="mingru", seed=0, device="cpu")
    model.learn(30_000)
    result = evaluate(model, "Memory/TMaze-v0", n_episodes=100)
    assert result["success_rate"] >= 0.95
