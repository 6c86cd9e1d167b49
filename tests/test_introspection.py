"""Memory introspection: gates recomputed from the weights agree with the core itself, and the
plot and TensorBoard outputs are written."""

import numpy as np
import pytest
import torch

import envs  # noqa: F401
import evaluate as evaluate_script
import train as train_script
from agent import RecurrentPPO
from agent.introspection import lstm_gates, trace_episode
from agent.recurrent import RecurrentCore


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
    assert trace.cell.shape == trace.forget_gate.shape == (6, H)
    assert trace.observations[0, 0] != 0 and np.all(trace.observations[1:, 0] == 0)
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


def test_log_memory_writes_histograms_and_an_image(tmaze_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmaze_run / "tb"), size_guidance={"histograms": 0, "images": 0})
    events.Reload()
    assert {"memory/forget_gate", "memory/cell"} <= set(events.Tags()["histograms"])
    assert [e.step for e in events.Images("memory/gates_and_cell")] == [128, 256]


def test_plot_memory_writes_a_png(tmaze_run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "memory.png"
    argv = [str(tmaze_run), "--episodes", "2", "--plot-memory", str(out), "--plot-episodes", "1"]
    assert evaluate_script.main(argv) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out) in capsys.readouterr().out


def test_plot_memory_of_a_gru_is_a_clear_error(tmp_path, capsys):
    model = RecurrentPPO(
        "Memory/TMaze-v0", env_kwargs={"length": 3}, n_envs=2, n_steps=8, batch_size=16,
        rnn_type="gru", lstm_hidden_size=4,
    )  # fmt: skip
    model.save(tmp_path / "model.pt")
    code = evaluate_script.main([str(tmp_path), "--plot-memory", str(tmp_path / "m.png")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "gru" in err
