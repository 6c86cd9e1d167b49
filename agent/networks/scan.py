"""Linear recurrences h_t = a_t h_{t-1} + b_t (real or complex), computed for a whole sequence:
the state update of the cells whose gates do not read their own state (minGRU, FFM).

Two of its steps compose into one of the same form, (a1, b1) then (a2, b2) = (a1 a2, a2 b1 + b2),
an associative operation. Hillis and Steele's inclusive scan applies it at distances 1, 2, 4,
...: ceil(log2 L) vectorised passes instead of L small steps; `linear_scan` runs it on chunks of
8 steps and then on the chunks' ends. Only products of the a (in the unit disc for these cells)
are formed, so nothing overflows, and a product that underflows is the forgetting it stands
for. On a CPU a plain loop of fused multiply-adds is as fast or faster for large steps
(`recurrence` picks). Either way autograd sees one node, `LinearRecurrence`, whose backward pass
is the same recurrence run backwards in time.
"""

from __future__ import annotations

from typing import Any

import torch

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
        # conj: PyTorch's gradient of a complex tensor is conjugated (a no-op for real ones)
        a_next = torch.cat((a[1:], torch.zeros_like(a[:1]))).conj()
        g = recurrence(a_next.flip(0), grad.flip(0).contiguous()).flip(0)
        h_before = torch.cat((torch.zeros_like(h[:1]), h[:-1]))
        return g * h_before.conj(), g
