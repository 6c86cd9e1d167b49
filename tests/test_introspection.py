"""Memory introspection: gates recomputed from the weights agree with the core itself; the
memory figure shares one time axis across its rows, overlaps nothing and labels what it shows; it
is what `--plot-memory` writes and what `--log-memory` logs; a path matplotlib cannot write is
refused before any work."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch

import envs  # noqa: F401
import evaluate as evaluate_script
import train as train_script
from agent import RecurrentPPO
from agent.networks.ffm import CONTEXT
from agent.networks.recurrent import RecurrentCore
from agent.report.figures import check_figure_path
from agent.report.introspection import (
    MEMORY,
    MemoryTrace,
    _flat_observation,
    _observation_names,
    core_step,
    figure_rgb,
    lstm_gates,
    memory_figure,
    trace_episode,
)
from tests.conftest import require


@pytest.mark.parametrize("rnn_type", ["lstm", "peephole"])
def test_recomputed_gates_give_the_cores_own_next_state(rnn_type):
    torch.manual_seed(0)
    core = RecurrentCore(3, 6, num_layers=1, rnn_type=rnn_type, groups=1)
    if rnn_type == "peephole":
        with torch.no_grad():
            core.rnns[0].peep_l0.uniform_(-1, 1)
    x, state = torch.randn(1, 4, 3), torch.randn(2, 1, 4, 6)
    with torch.no_grad():
        _, expected = core(x, state)
        i, f, o, c, h = lstm_gates(core.rnns[0], 0, x[0], state[0, 0], state[1, 0])
    torch.testing.assert_close(h, expected[0, 0])
    torch.testing.assert_close(c, expected[1, 0])
    for gate in (i, f, o):
        assert torch.all((gate > 0) & (gate < 1))


GATES = {
    "lstm": ["input gate", "forget gate", "output gate"],
    "peephole": ["input gate", "forget gate", "output gate"],
    "gru": ["reset gate", "update gate"],
    "mingru": ["keep gate"],
    "ffm": ["input gate"],
}


@pytest.mark.parametrize("rnn_type", list(MEMORY))
def test_each_cores_recomputed_step_is_the_cores_own_step(rnn_type):
    """Through two layers, so that the step's output feeds the next layer as the core's does."""
    torch.manual_seed(1)
    core = RecurrentCore(3, 8, num_layers=2, rnn_type=rnn_type, groups=1)
    x, state = torch.randn(1, 4, 3), torch.randn(core.state_slots, 2, 4, 8)
    with torch.no_grad():
        out, expected = core(x, state)
        inputs = [x[0]]
        for layer in range(2):
            step = core_step(core.rnns[0], rnn_type, layer, inputs[-1], list(state[:, layer]))
            for slot, value in enumerate(step.state):
                torch.testing.assert_close(value, expected[slot, layer])
            inputs.append(step.output)
    torch.testing.assert_close(inputs[-1], out[0])
    assert list(step.gates) == GATES[rnn_type]
    for gate in step.gates.values():
        assert gate.shape == (4, 8) and torch.all((gate > 0) & (gate < 1))
    if rnn_type == "ffm":  # the memory drawn is the magnitude of the complex state
        torch.testing.assert_close(step.memory, torch.complex(*step.state).abs())
        # each entry's input gate is its channel's: what entered the memory is gate * u
        with torch.no_grad():
            ffm = core.rnns[0].layers[1]
            u = ffm.pre(inputs[1])[:, : ffm.memory].repeat_interleave(CONTEXT, dim=-1)
            gamma = ffm.log_gamma().exp().reshape(-1)
        entered = torch.complex(*step.state) - gamma * torch.complex(*state[:, 1])
        torch.testing.assert_close(entered, torch.complex(step.gates["input gate"] * u, 0 * u))
    else:
        torch.testing.assert_close(step.memory, step.state[-1])


@pytest.fixture(scope="module")
def tmaze_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory")
    argv = ["--env", "Memory/TMaze-v0", "--env-kwargs", "length=5", "--n-envs", "4"]
    argv += ["--n-steps", "32", "--batch-size", "64", "--lstm-hidden-size", "8"]
    argv += ["--total-timesteps", "256", "--eval-freq", "128", "--eval-episodes", "2"]
    argv += ["--log-memory", "--no-progress", "--run-dir", str(root / "run")]
    assert train_script.main(argv) == 0
    return root / "run"


def test_trace_follows_the_episode_and_the_models_memory(tmaze_run):
    model = RecurrentPPO.load(tmaze_run / "model.pt")
    trace = trace_episode(model, "Memory/TMaze-v0", {"length": 5}, seed=3)
    H = model.config.lstm_hidden_size
    assert trace.cell.shape == trace.gates["forget gate"].shape == (6, H)
    assert trace.observations[0, 0] != 0 and np.all(trace.observations[1:, 0] == 0)
    assert trace.observation_names == ("obs[0]", "obs[1]")
    assert trace.success in (0.0, 1.0)
    # the last recorded cell state is the actor's cell after the last step, as predict carries it
    state, start = None, np.ones(1, bool)
    import gymnasium as gym

    env = gym.make("Memory/TMaze-v0", length=5)
    obs, _ = env.reset(seed=3)
    for _ in range(6):
        action, state = model.predict(obs, state, start, deterministic=True)
        obs, *_ = env.step(action)
        start = np.zeros(1, bool)
    np.testing.assert_allclose(trace.cell[-1], state[1][0, 0, :H], atol=1e-6)


def test_log_memory_logs_histograms_and_the_memory_figure(tmaze_run):
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmaze_run / "tb"), size_guidance={"histograms": 0, "images": 0})
    events.Reload()
    assert {"memory/forget_gate", "memory/cell"} <= set(events.Tags()["histograms"])
    images = events.Images("memory/gates_and_cell")
    assert [e.step for e in images] == [128, 256]
    # the last one is the figure of the final model's evaluation episode, pixel for pixel
    model = RecurrentPPO.load(tmaze_run / "model.pt")
    trace = trace_episode(model, "Memory/TMaze-v0", {"length": 5}, seed=10_000)
    expected = figure_rgb(memory_figure([trace]))
    logged = Image.open(io.BytesIO(images[-1].encoded_image_string))
    assert logged.mode == "RGB" and (images[-1].height, images[-1].width, 3) == expected.shape
    np.testing.assert_array_equal(np.asarray(logged), expected)


def test_plot_memory_writes_a_png(tmaze_run, tmp_path, capsys):
    require("matplotlib")
    out = tmp_path / "memory.png"
    argv = [str(tmaze_run), "--episodes", "2", "--plot-memory", str(out), "--plot-episodes", "1"]
    assert evaluate_script.main(argv) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out) in capsys.readouterr().out


def test_plot_memory_of_a_memoryless_core_is_a_clear_error(tmp_path, capsys):
    model = RecurrentPPO(
        "Memory/TMaze-v0", env_kwargs={"length": 3}, n_envs=2, n_steps=8, batch_size=16,
        rnn_type="none", lstm_hidden_size=4,
    )  # fmt: skip
    model.save(tmp_path / "model.pt")
    code = evaluate_script.main([str(tmp_path), "--plot-memory", str(tmp_path / "m.png")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "'none'" in err


def test_log_memory_of_a_mingru_logs_its_keep_gate_and_hidden_state(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    argv = ["--env", "Memory/TMaze-v0", "--env-kwargs", "length=3", "--n-envs", "2"]
    argv += ["--n-steps", "16", "--batch-size", "32", "--lstm-hidden-size", "8"]
    argv += ["--rnn-type", "mingru", "--total-timesteps", "32", "--eval-freq", "32"]
    argv += ["--eval-episodes", "1", "--log-memory", "--no-progress", "--run-dir", str(tmp_path)]
    assert train_script.main(argv) == 0
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"histograms": 0})
    events.Reload()
    tags = {t for t in events.Tags()["histograms"] if t.startswith("memory/")}
    assert tags == {"memory/keep_gate", "memory/hidden"}


@pytest.mark.parametrize("rnn_type", ["gru", "mingru", "ffm"])
def test_other_cores_trace_their_gates_and_memory_as_carried(rnn_type, tmp_path):
    """The recorded memory after the last step is the one `predict` carries (for an FFM, the
    magnitude of its real and imaginary parts), and the figure draws a row per gate."""
    model = RecurrentPPO(
        "Memory/TMaze-v0", env_kwargs={"length": 3}, n_envs=2, n_steps=8, batch_size=16,
        rnn_type=rnn_type, lstm_hidden_size=8,
    )  # fmt: skip
    trace = trace_episode(model, "Memory/TMaze-v0", {"length": 3}, seed=1)
    H = 8
    import gymnasium as gym

    env = gym.make("Memory/TMaze-v0", length=3)
    obs, _ = env.reset(seed=1)
    state, start = None, np.ones(1, bool)
    for _ in range(len(trace.cell)):
        action, state = model.predict(obs, state, start, deterministic=True)
        obs, *_ = env.step(action)
        start = np.zeros(1, bool)
    carried = state[-1][0, 0, :H]
    if rnn_type == "ffm":
        carried = np.hypot(state[0][0, 0, :H], state[1][0, 0, :H])
    np.testing.assert_allclose(trace.cell[-1], carried, atol=1e-6)
    assert list(trace.gates) == GATES[rnn_type] and trace.memory == MEMORY[rnn_type]
    require("matplotlib")
    figure = memory_figure([trace])
    labels = {ax.get_label() for ax in figure.get_axes()}
    assert set(GATES[rnn_type]) <= labels and "forget gate" not in labels


@pytest.mark.parametrize("name", ["m.png", "m.PDF", "sub/m.svg", "m.jpg"])
def test_check_figure_path_accepts_what_matplotlib_writes(name):
    require("matplotlib")
    assert check_figure_path(name) == Path(name)


@pytest.mark.parametrize("name", ["m.jpgx", "m", "m.png.bak"])
def test_check_figure_path_refuses_in_one_line_naming_the_formats(name):
    require("matplotlib")
    with pytest.raises(ValueError, match=r"use one of .*\.png.*\.svg") as error:
        check_figure_path(name)
    assert name in str(error.value) and "\n" not in str(error.value)


def test_plot_memory_to_an_unknown_format_fails_before_evaluating(tmaze_run, tmp_path, capsys):
    require("matplotlib")
    out = tmp_path / "plots" / "mem.jpgx"
    code = evaluate_script.main([str(tmaze_run), "--plot-memory", str(out)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""  # nothing evaluated
    assert captured.err.startswith("error:") and captured.err.count("\n") == 1
    assert ".jpgx" in captured.err and ".png" in captured.err
    assert not (tmp_path / "plots").exists()


def synthetic_trace(steps: int, obs_size: int, hidden: int, seed: int = 0) -> MemoryTrace:
    """A trace with random gates and a drifting cell state, for layout checks."""
    rng = np.random.default_rng(seed)
    gates = rng.uniform(0, 1, (3, steps, hidden))
    return MemoryTrace(
        observations=rng.choice([-1.0, 0.0, 1.0], (steps, obs_size)),
        observation_names=tuple(f"obs[{i}]" for i in range(obs_size)),
        gates=dict(zip(GATES["lstm"], gates, strict=True)),
        cell=rng.normal(0, 0.1, (steps, hidden)).cumsum(axis=0),
        actions=np.zeros((steps, 1)), rewards=np.zeros(steps), success=1.0,
    )  # fmt: skip


LAYOUTS = [
    pytest.param([(3, 1, 4)], id="3-steps"),
    pytest.param([(11, 2, 16), (11, 2, 16)], id="tmaze-2-episodes"),
    pytest.param([(300, 20, 64)], id="long-wide"),
]
ROWS = ("observation", "input gate", "forget gate", "output gate", "cell")


def drawn(shapes):
    require("matplotlib")
    traces = [synthetic_trace(*shape, seed=k) for k, shape in enumerate(shapes)]
    figure = memory_figure(traces)
    figure.canvas.draw()
    return traces, figure


def rows_of(panel):
    return [next(ax for ax in panel.axes if ax.get_label() == name) for name in ROWS]


@pytest.mark.parametrize("shapes", LAYOUTS)
def test_memory_figure_rows_share_one_time_axis(shapes):
    traces, figure = drawn(shapes)
    for panel, trace in zip(figure.subfigs, traces, strict=True):
        rows = rows_of(panel)
        for ax in rows:  # same extent on screen and in steps: a column of pixels is one step
            assert ax.get_xlim() == (-0.5, len(trace.observations) - 0.5)
            assert ax.get_position().x0 == pytest.approx(rows[0].get_position().x0)
            assert ax.get_position().x1 == pytest.approx(rows[0].get_position().x1)
        for ax in rows[1:4]:  # one heatmap pixel per step and unit
            assert ax.images[0].get_array().shape == (
                min(8, trace.cell.shape[1]),
                len(trace.observations),
            )


@pytest.mark.parametrize("shapes", LAYOUTS)
def test_memory_figure_text_and_axes_neither_overlap_nor_leave_the_figure(shapes):
    from matplotlib.text import Text

    _, figure = drawn(shapes)
    renderer = figure.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for panel in figure.subfigs for ax in panel.axes]
    for panel in figure.subfigs:  # the episode titles
        title = panel.get_suptitle()
        texts = panel.findobj(Text)
        boxes += [t.get_window_extent(renderer) for t in texts if t.get_text() == title]
    assert len(boxes) == 9 * len(figure.subfigs)  # 5 rows, 2 colour bars, a legend, a title
    for box in boxes:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= figure.bbox.x1 and box.y1 <= figure.bbox.y1
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            assert not boxes[a].overlaps(boxes[b]), (a, b)


@pytest.mark.parametrize("shapes", LAYOUTS)
def test_memory_figure_has_integer_steps_and_says_what_it_shows(shapes):
    traces, figure = drawn(shapes)
    for panel, trace in zip(figure.subfigs, traces, strict=True):
        rows = rows_of(panel)
        low, high = rows[0].get_xlim()
        steps = [t for t in rows[-1].get_xticks() if low <= t <= high]
        assert len(steps) >= 2 and all(float(t).is_integer() for t in steps)
        shown = min(trace.observations.shape[1], 16)
        assert list(rows[0].get_yticks()) == list(range(shown))
        assert [t.get_text() for t in rows[0].get_yticklabels()] == list(
            trace.observation_names[:shown]
        )
        units = [t.get_text() for t in rows[1].get_yticklabels()]
        assert units == [str(u) for u in trace.active_units(8)]
        for ax in rows[2:4]:
            assert [t.get_text() for t in ax.get_yticklabels()] == units
        legend = next(ax for ax in panel.axes if ax.get_label() == "legend").get_legend()
        assert [t.get_text() for t in legend.get_texts()] == units  # the cell lines' units
        colours = [line.get_color() for line in rows[-1].get_lines()]
        assert [h.get_color() for h in legend.legend_handles] == colours
        labels = [ax.get_ylabel() for ax in panel.axes if ax.get_label() == "colorbar"]
        assert labels == ["value", "gate activation"]


@pytest.mark.parametrize(
    "obs",
    [
        np.zeros(3, np.float32),
        np.int64(2),
        {"image": np.zeros((5, 4, 3), np.uint8), "flags": np.zeros(2), "t": 1.0},
        (np.zeros(2), {"x": np.zeros(1)}),
    ],
)
def test_observation_names_name_each_component_of_the_flat_observation(obs):
    names = _observation_names(obs)
    assert len(names) == len(set(names)) == _flat_observation(obs).size


def test_a_trace_plays_the_env_with_the_wrappers_the_model_trained_with(tmp_path):
    """A model trained on a wrapped env (here two frames stacked) is traced on that env, as
    `--log-memory` and `evaluate.py --plot-memory` record it."""
    wrappers = [{"gymnasium.wrappers:FrameStackObservation": {"stack_size": 2}}]
    model = RecurrentPPO("Memory/TMaze-v0", env_kwargs={"length": 5}, wrappers=wrappers,
                         n_envs=2, n_steps=8, batch_size=16, lstm_hidden_size=8)  # fmt: skip
    trace = trace_episode(model, "Memory/TMaze-v0", {"length": 5}, seed=0, wrappers=wrappers)
    assert trace.observations.shape[1] == 4  # TMaze's two, twice
