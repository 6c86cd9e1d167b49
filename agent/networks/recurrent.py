"""The recurrent core: LSTM, GRU, minGRU, FFM or a memoryless stand-in, with explicit state.

State is one tensor [S, layers, B, G * H]: S = 2 for an LSTM or a peephole LSTM (h and c) and
for an FFM (its complex memory's real and imaginary parts), 1 for a GRU or a minGRU (h), 0 for
`none`. Resetting at episode starts is data (a multiplication by a mask), not control flow.

G independent recurrent networks of H units (the actor's and the critic's, G = 2) keep their
states side by side in the last dimension, so the state stays one tensor. (One block-diagonal
network of G * H units would make one kernel call instead of G, but measured on a 2-core CPU it
was no faster: the wasted off-diagonal work cancels the saved call.)
"""

from __future__ import annotations

import torch
from torch import nn

from agent.networks.ffm import FFM
from agent.networks.mingru import MinGRU
from agent.networks.peephole import PeepholeLSTM


def reset_state(state: torch.Tensor, episode_start: torch.Tensor) -> torch.Tensor:
    """Zero the state of the batch entries where `episode_start` [B] is True."""
    keep = (~episode_start).to(state.dtype).view(1, 1, -1, 1)
    return state * keep


def chrono_bias(
    hidden_size: int, max_len: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Chrono forget-gate biases log(U(1, max_len - 1)) (Tallec & Ollivier 2018), shape [H].

    A forget bias b keeps a unit's memory for about e^b steps, so the units' time scales spread
    from 1 to `max_len` steps.
    """
    upper = max(float(max_len) - 1.0, 2.0)
    u = torch.rand(hidden_size, generator=generator) * (upper - 1.0) + 1.0
    return torch.log(u)


class RecurrentCore(nn.Module):
    """G independent stacks of recurrent layers mapping [L, N, F] inputs to [L, N, G * H]."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        rnn_type: str = "lstm",
        groups: int = 1,
        forget_bias_init: str = "half-chrono",
        chrono_max_len: int = 128,
    ) -> None:
        super().__init__()
        self.rnn_type = rnn_type
        self.hidden_size = hidden_size
        self.groups = groups
        self.num_layers = num_layers
        self.output_size = groups * hidden_size
        if rnn_type == "lstm":
            make = lambda: nn.LSTM(input_size, hidden_size, num_layers)  # noqa: E731
            self.state_slots = 2
        elif rnn_type == "peephole":
            make = lambda: PeepholeLSTM(input_size, hidden_size, num_layers)  # noqa: E731
            self.state_slots = 2
        elif rnn_type == "gru":
            make = lambda: nn.GRU(input_size, hidden_size, num_layers)  # noqa: E731
            self.state_slots = 1
        elif rnn_type == "ffm":
            make = lambda: FFM(input_size, hidden_size, num_layers, chrono_max_len)  # noqa: E731
            self.state_slots = 2
        elif rnn_type == "mingru":
            make = lambda: MinGRU(input_size, hidden_size, num_layers)  # noqa: E731
            self.state_slots = 1
        elif rnn_type == "none":
            make = lambda: nn.Sequential(nn.Linear(input_size, hidden_size), nn.Tanh())  # noqa: E731
            self.state_slots = 0
        else:
            raise ValueError(f"unknown rnn_type {rnn_type!r}")
        self.rnns = nn.ModuleList(make() for _ in range(groups))
        if rnn_type not in ("none", "ffm"):  # an FFM spreads its own time scales
            for rnn in self.rnns:
                self._init_gate_biases(rnn, forget_bias_init, chrono_max_len)

    def _init_gate_biases(self, rnn: nn.Module, how: str, chrono_max_len: int) -> None:
        """Open the memory gates so that gradients reach far back from the first update on."""
        if how == "default":
            return
        W = self.hidden_size
        # LSTM gate order is (input, forget, cell, output); GRU's is (reset, update, new) and its
        # update gate z keeps the old state (h' = (1 - z) n + z h), so it plays the forget role.
        with torch.no_grad():
            for layer in range(self.num_layers):
                b_ih = getattr(rnn, f"bias_ih_l{layer}")
                if self.rnn_type == "mingru":  # one gate, its keep gate, in the first W rows
                    n = (W + 1) // 2 if how == "half-chrono" else W
                    if how in ("chrono", "chrono-forget", "half-chrono"):
                        b_ih[0:n] = chrono_bias(n, chrono_max_len)
                    else:
                        b_ih[0:W] += float(how)
                    continue
                b_hh = getattr(rnn, f"bias_hh_l{layer}")
                if how in ("chrono", "chrono-forget", "half-chrono"):
                    # half-chrono: the first half of the units only; the rest keep PyTorch's init
                    n = (W + 1) // 2 if how == "half-chrono" else W
                    bias = chrono_bias(n, chrono_max_len)
                    b_ih[W : W + n] = bias
                    b_hh[W : W + n] = 0.0
                    if how != "chrono-forget" and self.rnn_type != "gru":
                        b_ih[0:n] = -bias
                        b_hh[0:n] = 0.0
                else:  # a number added to the forget (GRU: update) gate's bias
                    b_ih[W : 2 * W] += float(how)

    def initial_state(
        self, batch_size: int, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Zeros of shape [S, layers, batch_size, G * H]."""
        return torch.zeros(
            self.state_slots, self.num_layers, batch_size, self.output_size, device=device
        )

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run [L, N, F] inputs from `state` [S, layers, N, G * H] with no reset inside.

        Returns the outputs [L, N, G * H] and the state after the last step.
        """
        if self.rnn_type == "none":
            return torch.cat(self.outputs(x, state), dim=-1), state
        outs, states = [], []
        for rnn, (h0, c0) in zip(self.rnns, self._group_states(state), strict=True):
            if c0 is not None:
                out, (h, c) = rnn(x, (h0, c0))
                new = torch.stack((h, c))
            else:
                out, h = rnn(x, h0)
                new = h.unsqueeze(0)
            outs.append(out)
            states.append(new)
        if self.groups == 1:
            return outs[0], states[0]
        return torch.cat(outs, dim=-1), torch.cat(states, dim=-1)

    def outputs(self, x: torch.Tensor, state: torch.Tensor) -> list[torch.Tensor]:
        """`forward`'s outputs, one [L, N, H] tensor per network, without the final state: what
        training needs, in fewer operations (and fewer to differentiate)."""
        return [self.output(x, state, g) for g in range(self.groups)]

    def output(self, x: torch.Tensor, state: torch.Tensor, group: int) -> torch.Tensor:
        """One network's outputs (`outputs()[group]`), touching only its own parameters: what
        lets the actor's and the critic's halves of an update run apart."""
        if self.rnn_type == "none":
            return self.rnns[group](x)
        # The modules' own call: `torch.lstm`/`torch.gru` (undocumented) skipped its argument
        # checks, about 50 us a call, but saved under 2% of a CartPoleNoVel run.
        h0, c0 = self._group_state(state, group)
        return self.rnns[group](x, h0 if c0 is None else (h0, c0))[0]

    def _group_state(
        self, state: torch.Tensor, group: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Network `group`'s (h, c) (c None for a GRU), contiguous [layers, N, H]."""
        H = self.hidden_size
        part = state[..., group * H : (group + 1) * H]
        return part[0].contiguous(), part[1].contiguous() if self.state_slots == 2 else None

    def _group_states(self, state: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Each network's (h, c), as `_group_state` gives them."""
        return [self._group_state(state, g) for g in range(self.groups)]

    @torch.no_grad()
    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of a batch without autograd, as in a rollout: [B, F] inputs from `state`
        [S, layers, B, G * H]. Returns the outputs [B, G * H] and the next state.

        The reference step, a sequence of one step through the modules; the fast path's fused
        LSTM step (`agent.networks.fast_path.lstm_step`) must equal it.
        """
        out, state = self(x.unsqueeze(0), state)
        return out[0], state
