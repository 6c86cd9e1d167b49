"""The memory-length benchmark: its recipe, one tiny job per path, the results file and the plot."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from benchmarks import memory_length as ml


@pytest.mark.parametrize("gap", [1, 10, 300])
def test_recipe_rollout_is_one_episode_cycle(gap: int) -> None:
    config = ml.recipe(gap)
    assert config["n_steps"] == gap + 2
    assert config["batch_size"] == 2 * (gap + 2)
    # SB3 resets in the same step, so its cycle is one step shorter; the rest is shared.
    sb3 = ml.sb3_config(gap)
    assert sb3["n_steps"] == gap + 1
    assert sb3["batch_size"] == 2 * (gap + 1)
    assert sb3["policy_kwargs"]["optimizer_kwargs"]["eps"] == config["adam_eps"]
    assert sb3["policy_kwargs"]["lstm_hidden_size"] == config["lstm_hidden_size"]


def test_budget_grows_with_the_gap() -> None:
    assert ml.budget(10) == 100_000
    assert ml.budget(30) == 100_000
    assert ml.budget(100) == 306_000
    assert ml.budget(1000) == 3_006_000
    assert ml.budget(100, scale=0.5) == 153_000


def test_stack4_hides_the_cue_after_four_steps() -> None:
    env = ml.stack4(gym.make("Memory/TMaze-v0", length=6))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 2)
    cue = obs[-1, 0]
    assert cue in (-1.0, 1.0)
    for _ in range(3):
        obs, *_ = env.step(0)
    assert obs[0, 0] == cue  # the first observation is still in the window
    obs, *_ = env.step(0)
    assert not obs[:, 0].any()  # and now it is gone


def test_stack4_job_trains_and_evaluates_through_the_wrapper() -> None:
    # 2 rollouts of 32 envs x 7 steps at gap 5; the evaluation would raise EnvError if it
    # did not apply the same wrapper (the model's observation space is (4, 2)).
    out = ml.run_job("mlp-stack4", gap=5, seed=0, steps=2 * 32 * 7, eval_episodes=10)
    assert out["steps"] == 2 * 32 * 7
    assert out["config"]["wrappers"] == [ml.STACK4]
    assert out["config"]["rnn_type"] == "none"
    assert 0.0 <= out["success"] <= 1.0
    assert out["eval_return"] == pytest.approx(2 * out["success"] - 1)  # returns are +-1
    assert [steps for steps, _ in out["curve"]] == [32 * 7, 2 * 32 * 7]
    assert out["solved_at"] is None  # fewer than 100 episodes cannot count as solved


def test_success_watch_records_the_first_solved_step() -> None:
    watch = ml.SuccessWatch()
    watch.update(100, 1.0, episodes=50)  # too few episodes yet
    watch.update(200, 0.98, episodes=100)
    watch.update(300, None, episodes=100)
    watch.update(400, 0.99, episodes=100)
    watch.update(500, 1.0, episodes=100)
    assert watch.solved_at == 400
    assert watch.curve == [(100, 1.0), (200, 0.98), (400, 0.99), (500, 1.0)]
    watch.curve = [(i, 0.5) for i in range(1, 251)]
    thinned = watch.thinned_curve(points=100)
    assert len(thinned) <= 101 and thinned[0] == (1, 0.5) and thinned[-1] == (250, 0.5)


def fake(agent: str, gap: int, seed: int, success: float | None = None, **extra) -> dict:
    result = {"agent": agent, "gap": gap, "seed": seed, "budget": 1000, **extra}
    if success is not None:
        result["success"] = success
    return result


def test_resume_skips_finished_triples_and_retries_failed_ones(tmp_path) -> None:
    path = tmp_path / "results.json"
    ml.save_results(
        path,
        [fake("lstm", 10, 0, 1.0), fake("mlp", 10, 0, error="boom"), fake("lstm", 30, 0, 0.5)],
    )
    args = ml.parse_args(
        ["--gaps", "10", "30", "--agents", "lstm", "mlp", "--seeds", "0", "--out", str(path)]
    )
    todo = ml.pending(ml.make_jobs(args), ml.load_results(path))
    assert [ml.key(j) for j in todo] == [("mlp", 10, 0), ("mlp", 30, 0)]

    results = ml.merge(ml.load_results(path), fake("mlp", 10, 0, 0.5))
    ml.save_results(path, results)
    stored = ml.load_results(path)
    assert len(stored) == 3
    assert not any("error" in r for r in stored)


def test_sb3_is_skipped_beyond_its_gap_limit(capsys) -> None:
    args = ml.parse_args(["--gaps", "10", "300", "--agents", "sb3-contrib", "lstm"])
    jobs = ml.make_jobs(args)
    assert {(j["agent"], j["gap"]) for j in jobs} == {
        ("sb3-contrib", 10),
        ("lstm", 10),
        ("lstm", 300),
    }
    assert len(jobs) == 3 * 3  # seeds 0 1 2
    assert "sb3-contrib skipped at gap 300" in capsys.readouterr().out
    quick = ml.make_jobs(ml.parse_args(["--quick"]))
    assert {(j["agent"], j["gap"]) for j in quick if j["agent"] == "sb3-contrib"} == {
        ("sb3-contrib", 10)
    }
    assert {j["budget"] for j in quick} == {ml.QUICK_BUDGET}


def test_table_and_plot_from_a_results_file(tmp_path, capsys) -> None:
    path = tmp_path / "results.json"
    ml.save_results(
        path,
        [
            fake("lstm", 10, 0, 1.0),
            fake("lstm", 10, 1, 0.9),
            fake("lstm", 100, 0, 0.6),
            fake("mlp", 10, 0, 0.5),
            fake("mlp", 100, 0, error="crashed"),
        ],
    )
    png = tmp_path / "plot.png"
    ml.main(["--plot-only", "--out", str(path), "--plot", str(png)])
    lines = capsys.readouterr().out.splitlines()
    lstm = next(line for line in lines if line.startswith("lstm"))
    mlp = next(line for line in lines if line.startswith("mlp"))
    assert lstm.split()[1:] == ["0.95", "(2)", "0.60", "(1)"]
    assert mlp.split()[1:] == ["0.50", "(1)", "-", "1", "err"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_a_failed_job_is_recorded_not_raised() -> None:
    job = {
        "agent": "no-such-agent",
        "gap": 5,
        "seed": 0,
        "budget": 10,
        "eval_episodes": 1,
        "threads": 1,
    }
    out = ml.spawn(job)
    assert "unknown agent 'no-such-agent'" in out["error"]
    assert out["agent"] == "no-such-agent"


def test_a_worker_subprocess_can_import_the_stack4_wrapper() -> None:
    job = {"agent": "mlp-stack4", "gap": 2, "seed": 0, "budget": 1, "eval_episodes": 4}
    out = ml.spawn({**job, "threads": 1})
    assert "error" not in out, out.get("error")
    assert out["steps"] == 32 * 4  # one rollout of n_steps = gap + 2
    assert out["machine"]["threads"] == 1
    assert out["machine"]["torch"]
    assert json.loads(json.dumps(out)) == out
    assert np.isfinite(out["sps"])


def test_learning_curves_plot_only_the_asked_gap(tmp_path, monkeypatch) -> None:
    drawn: list[str] = []
    import matplotlib.axes

    original = matplotlib.axes.Axes.plot

    def spy(self, *args, **kwargs):
        drawn.append(kwargs.get("label", ""))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    curve = [[0, 0.5], [500, 0.8], [1000, 1.0]]
    results = [
        fake("lstm", 1000, 0, 1.0, curve=curve),
        fake("lstm", 1000, 1, 1.0, curve=[[0, 0.4], [900, 1.0]]),
        fake("gru", 30, 0, 1.0, curve=curve),  # another gap: not drawn
        fake("mlp", 1000, 0, error="crashed"),  # failed: not drawn
    ]
    png = tmp_path / "curves.png"
    ml.plot_curves(results, 1000, png)
    assert drawn == ["lstm (2 seeds)"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
