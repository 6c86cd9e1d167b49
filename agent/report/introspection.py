"""Memory introspection: what the actor's recurrent core writes, keeps and reads over an episode.

`trace_episode` plays one episode with a trained model and records, at every step, the gate
activations and the memory of the actor's recurrent core (its last layer), recomputed from the
core's weights and the state the model carried into that step: an LSTM's input, forget and
output gates and its cell state; a GRU's reset and update gates and its hidden state; a minGRU's
keep gate and its hidden state; an FFM's input gate and the magnitude of its complex memory.
`memory_figure` draws them (with the observation) so a user can see a cue being stored, kept
across the gap, and read out; `plot_memory` saves that figure to a file and `figure_rgb` renders
it as an image for TensorBoard. Drawing needs matplotlib, imported only when drawing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from agent.environment.vec_env import check_env_id, copy_wrappers, make_single_env
from agent.networks.ffm import CONTEXT
from agent.networks.observations import tree_map
from agent.networks.peephole import PeepholeLSTM
from agent.report.figures import check_figure_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubFigure

MAX_OBSERVATION_ROWS = 16
"""The plot's observation row shows at most this many components."""


MEMORY = {
    "lstm": ("cell", "cell state"),
    "peephole": ("cell", "cell state"),
    "gru": ("hidden", "hidden state"),
    "mingru": ("hidden", "hidden state"),
    "ffm": ("magnitude", "|memory|"),
}
"""Per core, what `MemoryTrace.cell` holds: its TensorBoard name (`memory/<name>`), its label."""


@dataclass
class MemoryTrace:
    """One episode. Per-step arrays have T rows; gate and memory arrays are [T, H]."""

    observations: np.ndarray
    observation_names: tuple[str, ...]
    """One name per column of `observations`: `obs[2]`, `key[0]`, `key ch1` (an image channel)."""
    gates: dict[str, np.ndarray]
    """Each gate's activations in [0, 1], by name (`forget gate`), in the core's order."""
    cell: np.ndarray
    """The memory after each step: an LSTM's cell state, a GRU's or a minGRU's hidden state, the
    magnitude of each of an FFM's complex memory entries."""
    actions: np.ndarray
    rewards: np.ndarray
    success: float | None
    memory: tuple[str, str] = MEMORY["lstm"]
    """What `cell` is: (name, label), `MEMORY`'s entry for the core."""

    def active_units(self, k: int) -> np.ndarray:
        """Indices of the k units whose memory varies most over the episode."""
        spread = self.cell.max(axis=0) - self.cell.min(axis=0)
        return np.argsort(-spread)[: min(k, spread.size)]


class CoreStep(NamedTuple):
    """One step of one layer of a recurrent core, recomputed from its weights."""

    gates: dict[str, torch.Tensor]
    memory: torch.Tensor
    """What `MemoryTrace.cell` records, [N, H]."""
    state: list[torch.Tensor]
    """The layer's next state, its slots as the core keeps them (an LSTM's h and c)."""
    output: torch.Tensor


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


def core_step(
    rnn: torch.nn.Module, rnn_type: str, layer: int, x: torch.Tensor, state: list[torch.Tensor]
) -> CoreStep:
    """One step of layer `layer` of `rnn` (a core of `rnn_type`) on input x [N, F] from the
    layer's state slots, each [N, H] (an LSTM's h and c, an FFM's real and imaginary parts)."""
    if rnn_type in ("lstm", "peephole"):
        i, f, o, c, h = lstm_gates(rnn, layer, x, *state)
        return CoreStep({"input gate": i, "forget gate": f, "output gate": o}, c, [h, c], h)
    if rnn_type == "gru":  # rows (reset, update, new); h' = (1 - z) n + z h
        (h,) = state
        gx = x @ getattr(rnn, f"weight_ih_l{layer}").T + getattr(rnn, f"bias_ih_l{layer}")
        gh = h @ getattr(rnn, f"weight_hh_l{layer}").T + getattr(rnn, f"bias_hh_l{layer}")
        (xr, xz, xn), (hr, hz, hn) = gx.chunk(3, dim=-1), gh.chunk(3, dim=-1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        h = (1.0 - z) * torch.tanh(xn + r * hn) + z * h
        return CoreStep({"reset gate": r, "update gate": z}, h, [h], h)
    if rnn_type == "mingru":  # h' = a h + b, a the keep gate
        keep, b = rnn.gates(x, layer)
        h = keep * state[0] + b
        return CoreStep({"keep gate": keep}, h, [h], h)
    if rnn_type == "ffm":
        ffm = rnn.layers[layer]
        m, H = ffm.memory, ffm.hidden_size
        _, _, g_in, _ = ffm.pre(x).split((m, H, m, H), dim=-1)
        out, (real, imag) = ffm(x[None], (state[0], state[1]))
        # A memory channel's input gate feeds its CONTEXT entries: one column per entry. (The
        # output gate is per output unit, each a mix of every entry: no column of the memory.)
        gates = {"input gate": g_in.sigmoid().repeat_interleave(CONTEXT, dim=-1)}
        return CoreStep(gates, torch.sqrt(real**2 + imag**2), [real, imag], out[0])
    raise ValueError(f"memory introspection needs a recurrent core, this model has {rnn_type!r}")


def has_memory_trace(model: Any) -> bool:
    """Whether the model's core has gates and a memory to trace (any but `none`)."""
    return model.policy.core.rnn_type in MEMORY


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
    `RecurrentPPO` with a recurrent core) and record its actor's memory. Raises ValueError for
    the memoryless core (`none`)."""
    core = model.policy.core
    if not has_memory_trace(model):
        raise ValueError(
            f"memory introspection needs a recurrent core, this model has {core.rnn_type!r}"
        )
    rnn, H = core.rnns[0], core.hidden_size
    check_env_id(env_id)
    env = make_single_env(env_id, dict(env_kwargs or {}), copy_wrappers(wrappers))
    obs, _ = env.reset(seed=seed)
    state, start = None, np.ones(1, dtype=bool)
    rows: dict[str, list[Any]] = {k: [] for k in ("obs", "gates", "memory", "a", "r")}
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
            step = core_step(rnn, core.rnn_type, layer, x, list(memory[:, layer, :, :H]))
            x = step.output
        action, state = model.predict(obs, state, start, deterministic=deterministic)
        rows["gates"].append({k: v[0].cpu().numpy() for k, v in step.gates.items()})
        rows["memory"].append(step.memory[0].cpu().numpy())
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
        gates={k: np.stack([g[k] for g in rows["gates"]]) for k in rows["gates"][0]},
        cell=np.stack(rows["memory"]),
        actions=np.stack(rows["a"]),
        rewards=np.asarray(rows["r"]),
        success=None if success is None else float(success),
        memory=MEMORY[core.rnn_type],
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
    observation, each gate of the `units` units whose memory varies most (heatmaps, one row per
    unit) and those units' memory (lines). Each row has a slot at its right for its colour bar
    or legend, so every row has the same width.

    Drawn with matplotlib's Agg canvas, without pyplot (no global backend is chosen). The axes
    are labelled for lookup: `observation`, each gate's name (`forget gate`), `cell`, `colorbar`
    and `legend` (which names the units of the memory lines).
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
    gates = len(trace.gates)
    grid = panel.add_gridspec(
        gates + 2, 2, width_ratios=[1.0, 0.04],
        height_ratios=[0.4 + 0.05 * shown, *[1.0] * gates, 1.2],
    )  # fmt: skip
    top = panel.add_subplot(grid[0, 0], label="observation")
    rows = [top] + [
        panel.add_subplot(grid[row, 0], sharex=top, label=name)
        for row, name in enumerate([*trace.gates, "cell"], start=1)
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

    for ax, gate in zip(rows[1:-1], trace.gates.values(), strict=True):
        image = ax.imshow(
            gate[:, chosen].T, aspect="auto", interpolation="nearest", vmin=0.0, vmax=1.0
        )
        ax.set_yticks(range(len(chosen)), [str(u) for u in chosen], fontsize=7)
        ax.set_ylabel(f"{ax.get_label()}\n(unit)")
    panel.colorbar(
        image, cax=panel.add_subplot(grid[1 : gates + 1, 1], label="colorbar"),
        label="gate activation",
    )  # fmt: skip

    # at whole steps, the centres of the heatmap cells: the shared x limits stay the images'
    lines = rows[-1].plot(np.arange(steps), trace.cell[:, chosen], linewidth=1.0)
    rows[-1].set_ylabel(trace.memory[1])
    rows[-1].set_xlabel("step")
    key = panel.add_subplot(grid[gates + 1, 1], label="legend")
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
