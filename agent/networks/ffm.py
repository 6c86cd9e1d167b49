"""Fast and Forgetful Memory (FFM; Morad et al., NeurIPS 2023): a memory whose update does not
read the memory through any gate, so that training computes a whole sequence of states at once
instead of a step-by-step loop.

Per layer, from the input x_t (F numbers) and with H = m * c output units:

    u_t, thru_t, g_in_t, g_out_t = W x_t + b        (m, H, m and H numbers)
    S_t = gamma * S_{t-1} + sigmoid(g_in_t) * u_t   (S: m x c complex, u broadcast over c)
    y_t = LayerNorm(W_mix S_t) * sigmoid(g_out_t) + thru_t * (1 - sigmoid(g_out_t))

(W_mix reads S_t's 2H real numbers, each entry's real and imaginary part side by side.)
gamma[j, k] = exp(-rate_j + i * omega_k): each of the m memory channels fades at its own rate
and is seen through c oscillators of different periods, so that the state records when things
happened as well as what. Rates start log-spaced so that the channels' time constants 1 / rate
run from 1 to `max_len` steps, periods linearly from 2 to `max_len` (the paper's FFA spaces its
decay exponents linearly; log-spacing gives the short and the long time scales as many channels
each). The rates are kept positive by learning their logarithm, so no clamping is needed.

Training: S_t = gamma S_{t-1} + v_t (v = the gated input) is a linear recurrence with complex
coefficients, computed for the whole sequence at once (`agent.networks.scan`, one autograd node).
A closed form per chunk (the sums gamma^(t-k) v_k as one batched matrix product, as the paper's
FFA computes them) was tried first: 2.9x the LSTM's update time on the gap-300 T-maze, against
1.4x for the recurrence (one thread, the second core busy). The recurrent state, S, is m * c
complex numbers: our state's two slots of H = m * c real numbers, its real and imaginary parts,
so checkpoints and resets treat it like an LSTM's (h, c).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from agent.networks.scan import LinearRecurrence

CONTEXT = 4
"""c: oscillators per memory channel (so `hidden_size` must be a multiple of it)."""


class FFMLayer(nn.Module):
    """One FFM layer mapping [L, N, F] inputs to [L, N, H] outputs (H = `memory * CONTEXT`)."""

    def __init__(self, input_size: int, hidden_size: int, max_len: int) -> None:
        super().__init__()
        if hidden_size % CONTEXT:
            raise ValueError(
                f"an FFM core needs lstm_hidden_size divisible by {CONTEXT}, got {hidden_size}"
            )
        self.hidden_size, self.memory = hidden_size, hidden_size // CONTEXT
        m, H = self.memory, hidden_size
        self.pre = nn.Linear(input_size, 2 * m + 2 * H)
        self.mix = nn.Linear(2 * H, H)
        self.norm = nn.LayerNorm(H, elementwise_affine=False)
        longest = max(float(max_len), 2.0)
        time_constants = torch.logspace(0.0, math.log10(longest), m)
        self.log_rate = nn.Parameter(-time_constants.log())
        self.omega = nn.Parameter(2 * math.pi / torch.linspace(2.0, longest, CONTEXT))

    def log_gamma(self) -> torch.Tensor:
        """log(gamma) [m, c], complex: -rate_j + i * omega_k."""
        return torch.complex(
            -self.log_rate.exp()[:, None].expand(-1, CONTEXT),
            self.omega[None, :].expand(self.memory, -1),
        )

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x [L, N, F], state (Re S, Im S) each [N, H] -> outputs [L, N, H], the last state."""
        m, H = self.memory, self.hidden_size
        length, n = x.shape[:2]
        u, thru, g_in, g_out = self.pre(x).split((m, H, m, H), dim=-1)
        v = u * g_in.sigmoid()
        s = torch.complex(*state).view(n, m, CONTEXT)
        log_gamma = self.log_gamma()
        if length == 1:  # a rollout's step: the recurrence itself
            full = (log_gamma.exp() * s + v[0, :, :, None])[None]
        else:
            full = self.sequence(v, s, log_gamma)
        mixed = self.mix(torch.view_as_real(full).reshape(length, n, 2 * H))
        gate = g_out.sigmoid()
        out = self.norm(mixed) * gate + thru * (1.0 - gate)
        last = full[-1].reshape(n, H)
        return out, (last.real.contiguous(), last.imag.contiguous())

    def sequence(self, v: torch.Tensor, s: torch.Tensor, log_gamma: torch.Tensor) -> torch.Tensor:
        """The states [L, N, m, c] after each of the gated inputs `v` [L, N, m], from `s`: the
        linear recurrence S_t = gamma S_{t-1} + v_t over the whole sequence at once."""
        gamma = log_gamma.exp().expand(v.shape[0], *s.shape)
        inputs = v[..., None].to(gamma.dtype).expand_as(gamma)
        inputs = torch.cat((inputs[:1] + gamma[:1] * s, inputs[1:]))
        return LinearRecurrence.apply(gamma, inputs)


class FFM(nn.Module):
    """A stack of FFM layers with `nn.LSTM`'s call convention (time-major, state a pair):
    `forward(x [L, N, F], (real, imag) each [layers, N, H])` returns the outputs [L, N, H] and
    the last state, a pair of [layers, N, H]."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, max_len: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            FFMLayer(input_size if k == 0 else hidden_size, hidden_size, max_len)
            for k in range(num_layers)
        )

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        real, imag = state
        reals, imags = [], []
        for k, layer in enumerate(self.layers):
            x, (r, i) = layer(x, (real[k], imag[k]))
            reals.append(r)
            imags.append(i)
        return x, (torch.stack(reals), torch.stack(imags))
