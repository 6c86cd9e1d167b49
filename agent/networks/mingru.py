"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gates see the input only,
so that training computes every step of a sequence at once by a parallel scan, where an LSTM or
a GRU must loop over time.

    k_t = sigmoid(W_k x_t + b_k)            (keep gate)
    c_t = W_c x_t + b_c                     (candidate)
    h_t = k_t * h_{t-1} + (1 - k_t) * c_t

The paper writes the gate the other way round (z = 1 - k, the share of the candidate); keeping
the share of the old state makes its bias play the LSTM's forget-gate role, so chrono
initialisation (`RecurrentCore`) opens it the same way. Layers stack as in `nn.GRU`.

The scan: h_t = a_t h_{t-1} + b_t (a = k, b = (1 - k) c) is a linear recurrence, and two of its
steps compose into one of the same form, (a1, b1) then (a2, b2) = (a1 a2, a2 b1 + b2), an
associative operation. Hillis and Steele's inclusive scan applies it at distances 1, 2, 4, ...:
ceil(log2 L) vectorised passes, each a multiply-add, instead of L small steps; `linear_scan`
runs it on short chunks and then on the chunks' ends. Only products of gates in (0, 1) are formed, so nothing overflows and a product
that underflows is the forgetting it stands for (the log-space scan of the paper instead needs a
positive candidate). The first step takes the start state in: b_0 <- a_0 h_0 + b_0.
"""

from __future__ import annotations

import math

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
            x = linear_scan(a, b)
            last.append(x[-1])
        return x, torch.stack(last)
