"""Memory introspection: what the actor's LSTM writes, keeps and reads over an episode.

`trace_episode` plays one episode with a trained model and records, at every step, the gate
activations (input, forget, output) and the cell state of the actor's recurrent core (its last
layer), recomputed from the core's weights and the state the model carried into that step.
`plot_memory` draws them (with the observation) so a user can see a cue being stored, kept
across the gap, and read out. `memory_image` turns a trace into a TensorBoard image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agent.observations import tree_map
from agent.peephole import PeepholeLSTM


@dataclass
class MemoryTrace:
    """One episode. Per-step arrays have T rows; gate and cell arrays are [T, H]."""

    observations: np.ndarray
    input_gate: np.ndarray
    forget_gate: np.ndarray
    output_gate: np.ndarray
    cell: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    success: float | None

    def active_units(self, k: int) -> np.ndarray:
        """Indices of the k units whose cell state varies most over the episode."""
        spread = self.cell.max(axis=0) - self.cell.min(axis=0)
        return np.argsort(-spread)[: min(k, spread.size)]


def lstm_gates(
    rnn: torch.nn.Module, layer: int, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """One step of layer `layer` of an `nn.LSTM` or `PeepholeLSTM` from (h, c) [N, H] on input
    x [N, F]: returns (i, f, o, c_new, h_new)."""
    w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
    z = (
        x @ w_ih.T
        + h @ w_hh.T
        + getattr(rnn, f"bias_ih_l{layer}")
        + getattr(rnn, f"bias_hh_l{layer}")
    )
    zi, zf, zg, zo = z.chunk(4, dim=-1)
    if isinstance(rnn, PeepholeLSTM):
        peep = getattr(rnn, f"peep_l{layer}")
    else:  # a plain LSTM is a peephole LSTM with closed peepholes
        peep = h.new_zeros(3, h.shape[-1])
    i = torch.sigmoid(zi + peep[0] * c)
    f = torch.sigmoid(zf + peep[1] * c)
    c_new = f * c + i * torch.tanh(zg)
    o = torch.sigmoid(zo + peep[2] * c_new)
    return i, f, o, c_new, o * torch.tanh(c_new)


def has_lstm_core(model: Any) -> bool:
    """Whether the model's recurrent core has gates to trace (an LSTM or a peephole LSTM)."""
    return model.policy.core.rnn_type in ("lstm", "peephole")


@torch.no_grad()
def trace_episode(
    model: Any,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    deterministic: bool = True,
    max_steps: int = 100_000,
) -> MemoryTrace:
    """Play one episode of `env_id` with `model` (a `RecurrentPPO` with an LSTM or peephole
    core) and record its actor's memory. Raises ValueError for other cores."""
    core = model.policy.core
    if not has_lstm_core(model):
        raise ValueError(
            f"memory introspection needs an LSTM core, this model has {core.rnn_type!r}"
        )
    rnn, H = core.rnns[0], core.hidden_size
    env = gym.make(env_id, **(env_kwargs or {}))
    obs, _ = env.reset(seed=seed)
    state, start = None, np.ones(1, dtype=bool)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "i", "f", "o", "c", "a", "r")}
    info: dict[str, Any] = {}
    for _ in range(max_steps):
        memory = (
            model.policy.initial_state(1, model.device)
            if state is None
            else torch.as_tensor(np.stack(state), dtype=torch.float32, device=model.device)
        )
        if start[0]:
            memory = memory * 0.0
        batch = tree_map(lambda v: np.expand_dims(np.asarray(v), 0), obs)
        x = model.policy.encoder(model._obs_to_tensor(batch, update_stats=False))
        for layer in range(core.num_layers):
            h, c = memory[0, layer, :, :H], memory[1, layer, :, :H]
            i, f, o, c_new, x = lstm_gates(rnn, layer, x, h, c)
        action, state = model.predict(obs, state, start, deterministic=deterministic)
        for key, value in (("i", i), ("f", f), ("o", o), ("c", c_new)):
            rows[key].append(value[0].cpu().numpy())
        rows["obs"].append(_flat_observation(obs))
        obs, reward, terminated, truncated, info = env.step(action)
        rows["a"].append(np.asarray(action, dtype=np.float32).reshape(-1))
        rows["r"].append(np.float32(reward))
        start = np.zeros(1, dtype=bool)
        if terminated or truncated:
            break
    env.close()
    success = info.get("success", info.get("is_success"))
    return MemoryTrace(
        observations=np.stack(rows["obs"]),
        input_gate=np.stack(rows["i"]),
        forget_gate=np.stack(rows["f"]),
        output_gate=np.stack(rows["o"]),
        cell=np.stack(rows["c"]),
        actions=np.stack(rows["a"]),
        rewards=np.asarray(rows["r"]),
        success=None if success is None else float(success),
    )


def plot_memory(traces: list[MemoryTrace], path: str | Path, units: int = 8) -> Path:
    """Draw each trace as a column: observation, input/forget/output gates of the most active
    units (heatmaps, time on the x axis) and their cell states (lines). Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        5, len(traces), figsize=(6 * len(traces), 10), sharex="col", squeeze=False
    )
    for col, trace in enumerate(traces):
        chosen = trace.active_units(units)
        ax = axes[:, col]
        obs = trace.observations
        bound = max(float(np.abs(obs).max()), 1e-6)
        ax[0].imshow(
            obs.T[:16], aspect="auto", interpolation="nearest", cmap="coolwarm",
            vmin=-bound, vmax=bound,
        )  # fmt: skip
        outcome = "" if trace.success is None else f", success {trace.success:.0f}"
        ax[0].set_title(f"episode {col + 1}: {len(obs)} steps{outcome}")
        ax[0].set_ylabel("observation")
        for row, (name, gate) in enumerate(
            (
                ("input gate", trace.input_gate),
                ("forget gate", trace.forget_gate),
                ("output gate", trace.output_gate),
            ),
            start=1,
        ):
            image = ax[row].imshow(
                gate[:, chosen].T, aspect="auto", interpolation="nearest", vmin=0, vmax=1
            )
            ax[row].set_ylabel(f"{name}\n(unit)")
            ax[row].set_yticks(range(len(chosen)), [str(u) for u in chosen], fontsize=6)
        fig.colorbar(image, ax=ax[1:4], fraction=0.02)
        ax[4].plot(trace.cell[:, chosen], linewidth=0.8)
        ax[4].set_ylabel("cell state")
        ax[4].set_xlabel("step")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def memory_image(trace: MemoryTrace, units: int = 16) -> np.ndarray:
    """A [3, 4 * units, T] image (CHW, floats in [0, 1]): the input, forget and output gates and
    the cell state (rescaled) of the most active units, stacked, for TensorBoard's add_image."""
    chosen = trace.active_units(units)
    cell = trace.cell[:, chosen]
    scale = max(float(np.abs(cell).max()), 1e-6)
    blocks = [
        trace.input_gate[:, chosen],
        trace.forget_gate[:, chosen],
        trace.output_gate[:, chosen],
        (cell / scale + 1.0) / 2.0,
    ]
    gray = np.concatenate([b.T for b in blocks], axis=0).astype(np.float32)
    return np.repeat(gray[None], 3, axis=0)


def _flat_observation(obs: Any) -> np.ndarray:
    """A vector for the plot's first row: images as their per-channel means, dicts and tuples
    concatenated."""
    if isinstance(obs, dict):
        return np.concatenate([_flat_observation(v) for v in obs.values()])
    if isinstance(obs, tuple):
        return np.concatenate([_flat_observation(v) for v in obs])
    array = np.asarray(obs, dtype=np.float32)
    if array.ndim == 3:  # an image: one value per channel
        channels = int(np.argmin(array.shape))
        return array.mean(axis=tuple(a for a in range(3) if a != channels))
    return array.reshape(-1)
