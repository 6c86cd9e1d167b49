"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gates see the input only,
so that training computes every step of a sequence at once by a parallel scan, where an LSTM or
a GRU must loop over time.

    k_t = sigmoid(W_k x_t + b_k)            (keep gate)
    c_t = W_c x_t + b_c                     (candidate)
    h_t = k_t * h_{t-1} + (1 - k_t) * c_t

The paper writes the gate the other way round (z = 1 - k, the share of the candidate); keeping
the share of the old state makes its bias play the LSTM's forget-gate role, so chrono
initialisation (`RecurrentCore`) opens it the same way. Layers stack as in `nn.GRU`.

The recurrence h_t = a_t h_{t-1} + b_t (a = k, b = (1 - k) c) is linear, and two of its steps
compose into one of the same form, (a1, b1) then (a2, b2) = (a1 a2, a2 b1 + b2), an associative
operation. Hillis and Steele's inclusive scan applies it at distances 1, 2, 4, ...: ceil(log2 L)
vectorised passes instead of L small steps; `linear_scan` runs it on chunks of 8 steps and then
on the chunks' ends. Only products of gates in (0, 1) are formed, so nothing overflows, and a
product that underflows is the forgetting it stands for (the paper's log-space scan instead
needs a positive candidate). On a CPU a plain loop of fused multiply-adds is as fast or faster
for large steps (`recurrence` picks). Either way autograd sees one node, `LinearRecurrence`,
whose backward pass is the same recurrence run backwards in time. The first step takes the start
state in: b_0 <- a_0 h_0 + b_0.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

CHUNK = 8
"""`linear_scan` scans chunks of this many steps, then the chunks' ends (measured on a 2-core
CPU, forward and backward of [1024, 2, 256]: 18 ms in chunks of 8, 24 ms of 32, 44 ms for one
scan of the whole sequence, which does log2(L) passes over all of it)."""


def hillis_steele(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The inclusive scan of the steps (a_t, b_t) along the first axis: at each t, (the product
    of a up to t, h_t from h_{-1} = 0), in ceil(log2 L) vectorised passes."""
    length = a.shape[0]
    offset = 1
    while offset < length:
        # Each position composes with the one `offset` before it (positions before `offset`
        # already hold their whole prefix).
        b = torch.cat((b[:offset], torch.addcmul(b[offset:], a[offset:], b[:-offset])))
        a = torch.cat((a[:offset], a[offset:] * a[:-offset]))
        offset *= 2
    return a, b


def linear_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t from h_{-1} = 0, for [L, ...] gates `a` and inputs `b` along the
    first axis. Returns h [L, ...].

    In two levels: every chunk of `CHUNK` steps is scanned on its own (all chunks at once), the
    chunks' ends are scanned in turn (recursively), and each chunk's states take in the state it
    starts from: h = B + A * h_before. That is about L * log2(CHUNK) work where one scan of the
    whole sequence does L * log2(L)."""
    length = a.shape[0]
    if length <= CHUNK:
        return hillis_steele(a, b)[1]
    pad = -length % CHUNK  # steps that keep the state as it is: a = 1, b = 0
    if pad:
        a = torch.cat((a, a.new_ones(pad, *a.shape[1:])))
        b = torch.cat((b, b.new_zeros(pad, *b.shape[1:])))
    chunks = a.shape[0] // CHUNK
    # [CHUNK, chunks, ...]: step t of chunk c at [t % CHUNK, t // CHUNK]
    a, b = (x.reshape(chunks, CHUNK, *x.shape[1:]).transpose(0, 1) for x in (a, b))
    a, b = hillis_steele(a, b)
    ends = linear_scan(a[-1], b[-1])  # the state at each chunk's end
    before = torch.cat((torch.zeros_like(ends[:1]), ends[:-1]))
    h = torch.addcmul(b, a, before.unsqueeze(0))
    return h.transpose(0, 1).reshape(-1, *h.shape[2:])[:length]


def step_by_step(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`linear_scan` as a loop over time, one fused multiply-add a step, written into the output
    in place (so not for autograd: `LinearRecurrence` calls it). One pass over memory where the
    scan makes several (forward only, 2 cores, one thread: 0.6 ms against 3.4 ms for [128, 16,
    256]), but a kernel call per step."""
    h = torch.empty_like(b)
    before = torch.zeros_like(b[0])
    for a_t, b_t, h_t in zip(a.unbind(0), b.unbind(0), h.unbind(0), strict=True):
        torch.addcmul(b_t, a_t, before, out=h_t)
        before = h_t
    return h


LOOP_FROM = 4096
"""On a CPU, `recurrence` loops over time when a step holds at least this many numbers."""


def recurrence(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t from h_{-1} = 0 by the faster way: on a CPU, the loop for steps of
    `LOOP_FROM` numbers or more (measured on 2 cores, one thread, forward and backward: [128, 16,
    256] 8.5 ms looped, 11.8 ms scanned) and the scan for smaller ones ([1024, 2, 256] 12.5 ms
    scanned, 21.9 ms looped: the loop's cost is per step there); on a GPU always the scan, where
    each step of a loop would be a kernel launch of its own."""
    if a.device.type == "cpu" and b[0].numel() >= LOOP_FROM:
        return step_by_step(a, b)
    return linear_scan(a, b)


class LinearRecurrence(torch.autograd.Function):
    """h_t = a_t h_{t-1} + b_t (`recurrence`) with its gradient written out, so that autograd
    records one node instead of every step (or, for the scan, every slice, whose backward pass
    fills a zero tensor of the whole sequence).

    With g_t = dL/dh_t in full (through later steps too), g_t = dL/dh_t (direct) + a_{t+1}
    g_{t+1}: a linear recurrence backwards in time, so another scan. Then dL/db_t = g_t and
    dL/da_t = g_t h_{t-1} (h_{-1} = 0). tests/test_mingru.py checks it against autograd through
    the step-by-step loop."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h = recurrence(a, b)
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, h = ctx.saved_tensors
        a_next = torch.cat((a[1:], torch.zeros_like(a[:1])))
        g = recurrence(a_next.flip(0), grad.flip(0).contiguous()).flip(0)
        h_before = torch.cat((torch.zeros_like(h[:1]), h[:-1]))
        return g * h_before, g


class MinGRU(nn.Module):
    """A stack of minGRU layers with `nn.GRU`'s call convention (time-major): `forward(x [L, N,
    F], h0 [layers, N, H])` returns the outputs [L, N, H] and the last state [layers, N, H].

    Parameters per layer: `weight_ih_l{k}` [2H, F] and `bias_ih_l{k}` [2H], the keep gate's rows
    first, then the candidate's (initialised as `nn.GRU`'s, uniform in +-1/sqrt(H)).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        bound = 1.0 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            size = input_size if layer == 0 else hidden_size
            weight = nn.Parameter(torch.empty(2 * hidden_size, size).uniform_(-bound, bound))
            bias = nn.Parameter(torch.empty(2 * hidden_size).uniform_(-bound, bound))
            self.register_parameter(f"weight_ih_l{layer}", weight)
            self.register_parameter(f"bias_ih_l{layer}", bias)

    def gates(self, x: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b) of the recurrence h = a h_prev + b for inputs `x` [..., F] of `layer`."""
        weight, bias = getattr(self, f"weight_ih_l{layer}"), getattr(self, f"bias_ih_l{layer}")
        keep, candidate = nn.functional.linear(x, weight, bias).chunk(2, dim=-1)
        keep = keep.sigmoid()
        return keep, (1.0 - keep) * candidate

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        last = []
        for layer in range(self.num_layers):
            a, b = self.gates(x, layer)
            b = torch.cat((torch.addcmul(b[:1], a[:1], h0[layer]), b[1:]))
            x = LinearRecurrence.apply(a, b)
            last.append(x[-1])
        return x, torch.stack(last)
