"""Memory introspection: what the actor's LSTM writes, keeps and reads over an episode.

`trace_episode` plays one episode with a trained model and records, at every step, the gate
activations (input, forget, output) and the cell state of the actor's recurrent core (its last
layer), recomputed from the core's weights and the state the model carried into that step.
`memory_figure` draws them (with the observation) so a user can see a cue being stored, kept
across the gap, and read out; `plot_memory` saves that figure to a file and `figure_rgb` renders
it as an image for TensorBoard. Drawing needs matplotlib, imported only when drawing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from agent.environment.vec_env import check_env_id, copy_wrappers, make_single_env
from agent.networks.observations import tree_map
from agent.networks.peephole import PeepholeLSTM
from agent.report.figures import check_figure_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubFigure

MAX_OBSERVATION_ROWS = 16
"""The plot's observation row shows at most this many components."""


@dataclass
class MemoryTrace:
    """One episode. Per-step arrays have T rows; gate and cell arrays are [T, H]."""

    observations: np.ndarray
    observation_names: tuple[str, ...]
    """One name per column of `observations`: `obs[2]`, `key[0]`, `key ch1` (an image channel)."""
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
    wrappers: Sequence[Any] = (),
) -> MemoryTrace:
    """Play one episode of `env_id` (with `wrappers`, as the model was trained) with `model` (a
    `RecurrentPPO` with an LSTM or peephole core) and record its actor's memory. Raises
    ValueError for other cores."""
    core = model.policy.core
    if not has_lstm_core(model):
        raise ValueError(
            f"memory introspection needs an LSTM core, this model has {core.rnn_type!r}"
        )
    rnn, H = core.rnns[0], core.hidden_size
    check_env_id(env_id)
    env = make_single_env(env_id, dict(env_kwargs or {}), copy_wrappers(wrappers))
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
        observation_names=_observation_names(obs),
        input_gate=np.stack(rows["i"]),
        forget_gate=np.stack(rows["f"]),
        output_gate=np.stack(rows["o"]),
        cell=np.stack(rows["c"]),
        actions=np.stack(rows["a"]),
        rewards=np.asarray(rows["r"]),
        success=None if success is None else float(success),
    )


def plot_memory(traces: list[MemoryTrace], path: str | Path, units: int = 8) -> Path:
    """Draw `memory_figure(traces, units)` to `path` (any format `check_figure_path` accepts)
    and return the path. Needs matplotlib."""
    path = check_figure_path(path)
    figure = memory_figure(traces, units)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def memory_figure(traces: list[MemoryTrace], units: int = 8) -> Figure:
    """One column per trace, its rows on one time axis (one column of pixels per step): the
    observation, the input, forget and output gates of the `units` units whose cell state
    varies most (heatmaps, one row per unit) and those units' cell states (lines). Each row has
    a slot at its right for its colour bar or legend, so every row has the same width.

    Drawn with matplotlib's Agg canvas, without pyplot (no global backend is chosen). The axes
    are labelled for lookup: `observation`, `input gate`, `forget gate`, `output gate`, `cell`,
    `colorbar` and `legend` (which names the units of the cell lines).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.5 * len(traces), 9.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    for col, (panel, trace) in enumerate(
        zip(figure.subfigures(1, len(traces), squeeze=False)[0], traces, strict=True)
    ):
        _draw_trace(panel, trace, units, col + 1)
    return figure


def figure_rgb(figure: Figure) -> np.ndarray:
    """`figure` drawn by the Agg canvas at its own size and dpi: [H, W, 3] uint8 (RGB)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _draw_trace(panel: SubFigure, trace: MemoryTrace, units: int, episode: int) -> None:
    """Fill one subfigure with one trace (see `memory_figure`)."""
    from matplotlib.ticker import MaxNLocator

    steps = len(trace.observations)
    shown = min(trace.observations.shape[1], MAX_OBSERVATION_ROWS)
    chosen = trace.active_units(units)
    grid = panel.add_gridspec(
        5, 2, width_ratios=[1.0, 0.04], height_ratios=[0.4 + 0.05 * shown, 1.0, 1.0, 1.0, 1.2]
    )
    top = panel.add_subplot(grid[0, 0], label="observation")
    rows = [top] + [
        panel.add_subplot(grid[row, 0], sharex=top, label=name)
        for row, name in enumerate(("input gate", "forget gate", "output gate", "cell"), start=1)
    ]
    top.xaxis.set_major_locator(MaxNLocator(integer=True))  # shared: every row's steps
    for ax in rows[:-1]:
        ax.tick_params(labelbottom=False)
    outcome = "" if trace.success is None else f", success {trace.success:.0f}"
    panel.suptitle(f"episode {episode}: {steps} steps{outcome}")

    obs = trace.observations[:, :shown].T
    bound = max(float(np.abs(obs).max()), 1e-6)
    image = rows[0].imshow(
        obs, aspect="auto", interpolation="nearest", cmap="coolwarm", vmin=-bound, vmax=bound
    )
    names = trace.observation_names[:shown]
    rows[0].set_yticks(range(shown), names, fontsize=7)
    more = trace.observations.shape[1] - shown
    rows[0].set_ylabel("observation" + (f"\n(+{more} more)" if more > 0 else ""))
    panel.colorbar(image, cax=panel.add_subplot(grid[0, 1], label="colorbar"), label="value")

    for ax, gate in zip(
        rows[1:4], (trace.input_gate, trace.forget_gate, trace.output_gate), strict=True
    ):
        image = ax.imshow(
            gate[:, chosen].T, aspect="auto", interpolation="nearest", vmin=0.0, vmax=1.0
        )
        ax.set_yticks(range(len(chosen)), [str(u) for u in chosen], fontsize=7)
        ax.set_ylabel(f"{ax.get_label()}\n(unit)")
    panel.colorbar(
        image, cax=panel.add_subplot(grid[1:4, 1], label="colorbar"), label="gate activation"
    )

    # at whole steps, the centres of the heatmap cells: the shared x limits stay the images'
    lines = rows[4].plot(np.arange(steps), trace.cell[:, chosen], linewidth=1.0)
    rows[4].set_ylabel("cell state")
    rows[4].set_xlabel("step")
    key = panel.add_subplot(grid[4, 1], label="legend")
    key.axis("off")
    key.legend(
        lines, [str(u) for u in chosen], title="unit", loc="center left", fontsize=7,
        title_fontsize=7, frameon=False, borderaxespad=0.0,
    )  # fmt: skip


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


def _observation_names(obs: Any, prefix: str = "obs") -> tuple[str, ...]:
    """Names of the components `_flat_observation(obs)` returns, in its order."""
    if isinstance(obs, dict):
        return tuple(n for k, v in obs.items() for n in _observation_names(v, str(k)))
    if isinstance(obs, tuple):
        return tuple(n for i, v in enumerate(obs) for n in _observation_names(v, f"{prefix}[{i}]"))
    array = np.asarray(obs)
    if array.ndim == 3:  # an image: `_flat_observation` keeps one value per channel
        return tuple(f"{prefix} ch{c}" for c in range(min(array.shape)))
    if array.size == 1:
        return (prefix,)
    return tuple(f"{prefix}[{i}]" for i in range(array.size))
