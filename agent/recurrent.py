"""The recurrent core: LSTM, GRU or a memoryless stand-in, with explicit state.

State is one tensor [S, layers, B, H]: S = 2 for an LSTM (h and c), 1 for a GRU (h), 0 for
`none`. Resetting at episode starts is data (a multiplication by a mask), not control flow.
"""

from __future__ import annotations

import torch
from torch import nn


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
    """A stack of recurrent layers that maps [L, N, F] inputs to [L, N, H] outputs."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        rnn_type: str = "lstm",
        forget_bias_init: str = "chrono",
        chrono_max_len: int = 128,
    ) -> None:
        super().__init__()
        self.rnn_type = rnn_type
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.output_size = hidden_size
        if rnn_type == "lstm":
            self.rnn: nn.Module = nn.LSTM(input_size, hidden_size, num_layers)
            self.state_slots = 2
        elif rnn_type == "gru":
            self.rnn = nn.GRU(input_size, hidden_size, num_layers)
            self.state_slots = 1
        elif rnn_type == "none":
            self.rnn = nn.Sequential(nn.Linear(input_size, hidden_size), nn.Tanh())
            self.state_slots = 0
        else:
            raise ValueError(f"unknown rnn_type {rnn_type!r}")
        if rnn_type != "none":
            self._init_gate_biases(forget_bias_init, chrono_max_len)

    def _init_gate_biases(self, how: str, chrono_max_len: int) -> None:
        """Open the memory gates so that gradients reach far back from the first update on."""
        if how == "default":
            return
        H = self.hidden_size
        # LSTM gate order is (input, forget, cell, output); GRU's is (reset, update, new) and its
        # update gate z keeps the old state (h' = (1 - z) n + z h), so it plays the forget role.
        memory_gate = slice(H, 2 * H)
        with torch.no_grad():
            for layer in range(self.num_layers):
                b_ih = getattr(self.rnn, f"bias_ih_l{layer}")
                b_hh = getattr(self.rnn, f"bias_hh_l{layer}")
                if how == "chrono":
                    bias = chrono_bias(H, chrono_max_len)
                    b_ih[memory_gate] = bias
                    b_hh[memory_gate] = 0.0
                    if self.rnn_type == "lstm":
                        b_ih[0:H] = -bias
                        b_hh[0:H] = 0.0
                else:
                    b_ih[memory_gate] += float(how)

    def initial_state(
        self, batch_size: int, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Zeros of shape [S, layers, batch_size, H]."""
        return torch.zeros(
            self.state_slots, self.num_layers, batch_size, self.hidden_size, device=device
        )

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run [L, N, F] inputs from `state` [S, layers, N, H] with no reset inside.

        Returns the outputs [L, N, H] and the state after the last step.
        """
        if self.rnn_type == "lstm":
            out, (h, c) = self.rnn(x, (state[0].contiguous(), state[1].contiguous()))
            return out, torch.stack((h, c))
        if self.rnn_type == "gru":
            out, h = self.rnn(x, state[0].contiguous())
            return out, h.unsqueeze(0)
        return self.rnn(x), state


def chrono_default_len(sequence_len: int) -> int:
    """The time scale chrono init prepares for when the config leaves it at 0."""
    return max(int(sequence_len), 2)
