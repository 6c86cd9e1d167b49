"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gates see the input only,
so that training computes every step of a sequence at once by a parallel scan, where an LSTM or
a GRU must loop over time.

    k_t = sigmoid(W_k x_t + b_k)            (keep gate)
    c_t = W_c x_t + b_c                     (candidate)
    h_t = k_t * h_{t-1} + (1 - k_t) * c_t

The paper writes the gate the other way round (z = 1 - k, the share of the candidate); keeping
the share of the old state makes its bias play the LSTM's forget-gate role, so chrono
initialisation (`RecurrentCore`) opens it the same way. Layers stack as in `nn.GRU`.

The update h_t = a_t h_{t-1} + b_t (a = k, b = (1 - k) c) is a linear recurrence, so training
computes it for a whole sequence at once (`agent.networks.scan`; the paper's log-space scan
instead needs a positive candidate). The first step takes the start state in:
b_0 <- a_0 h_0 + b_0.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from agent.networks.scan import LinearRecurrence


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
