"""benchmarks/defaults.py: a job of each library writes its results line and is not run twice,
the table summarises lines correctly, and every task's env works with both libraries."""

import json
from functools import partial

import numpy as np
import pytest

from benchmarks import defaults, jobs
from benchmarks.defaults import Config
from benchmarks.sb3_peer import policy_for
from tests.conftest import require


def test_jobs_write_a_line_each_and_are_skipped_when_rerun(tmp_path, monkeypatch, capsys):
    tiny = {"n_envs": 2, "n_steps": 16, "batch_size": 16, "n_epochs": 1}
    monkeypatch.setattr(
        defaults,
        "CONFIGS",
        {
            "tiny-ours": Config("ours", {**tiny, "lstm_hidden_size": 8}),
            "tiny-sb3": Config("sb3", tiny),
        },
    )
    scale = 64 / defaults.TASKS["tmaze-short"].budget
    argv = ["--out", str(tmp_path), "--tasks", "tmaze-short", "--seeds", "0", "--sb3-seeds", "0"]
    argv += ["--budget-scale", str(scale), "--episodes", "3"]
    assert defaults.main(argv) == 0
    lines = jobs.load_results(tmp_path)
    assert sorted(line["config"] for line in lines) == ["tiny-ours", "tiny-sb3"]
    for line in lines:
        assert line["budget"] == 64 and line["steps"] >= 64 and line["wall"] > 0
        assert line["task"] == "tmaze-short" and line["seed"] == 0
        assert line["eval_success"] in (0.0, 1 / 3, 2 / 3, 1.0)
        assert line["score"] == line["eval_success"]  # the T-maze is judged on success
        assert line["goal"] == ["success", 0.99]
        steps = [point[0] for point in line["curve"]]
        assert steps == sorted(steps) and steps[-1] == line["steps"] and len(steps) >= 2
    assert "2 jobs to run" in capsys.readouterr().out

    assert defaults.main(argv) == 0
    assert "0 jobs to run" in capsys.readouterr().out
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 2


def line(config: str, library: str, seed: int, score: float, wall: float, goal: tuple | None):
    """A hand-made results line; `goal` is (steps, seconds) to the goal, or None."""
    return {
        "task": "tmaze-short", "budget": 200_000, "config": config, "library": library,
        "seed": seed, "score": score, "wall": wall, "goal": ["success", 0.99],
        "goal_steps": goal and goal[0], "goal_wall": goal and goal[1],
        "curve": [[100_000, wall / 2, 0.5, 0.5], [200_000, wall, 1.0, score]],
    }  # fmt: skip


def test_table_means_medians_and_ratio():
    results = [
        line("ours-defaults", "ours", 0, 1.0, 30.0, (100_000, 15.0)),
        line("ours-defaults", "ours", 1, 0.5, 10.0, None),
        line("ours-defaults", "ours", 2, 0.9, 20.0, (140_000, 12.0)),
        line("sb3-defaults", "sb3", 0, 1.0, 600.0, (60_000, 270.0)),
    ]
    cells = defaults.cells(results)[("tmaze-short", 200_000)]
    ours = cells["ours-defaults"]
    assert ours.score == pytest.approx(0.8) and ours.seeds == 3
    assert ours.wall == 20.0  # median of 30, 10, 20
    assert ours.reached == 2 and ours.goal_steps == 120_000 and ours.goal_wall == 13.5
    assert cells["sb3-defaults"].goal_steps == 60_000

    row = defaults.table(results).splitlines()[2]
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "tmaze-short (200k, success >= 0.99)",
        "0.8 (3) · 20 s · 120k (2/3) · 0.05x sb3",  # 13.5 s against 270 s to the goal
        "1 (1) · 600 s · 60k (1/1)",
    ]


def test_named_configs_limit_the_table_to_them(tmp_path, capsys):
    results = [
        line("ours-defaults", "ours", 0, 1.0, 30.0, None),
        line("ours-chrono", "ours", 0, 0.5, 30.0, None),
        line("ours[n_epochs=3]", "ours", 0, 0.7, 30.0, None),
    ]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in results))
    header = lambda: capsys.readouterr().out.splitlines()[0]  # noqa: E731
    assert defaults.main(["--out", str(tmp_path), "--table"]) == 0
    assert header().count("`") == 6  # every configuration in the file
    argv = ["--out", str(tmp_path), "--table", "--configs", "ours-chrono", "--set", "n_epochs=3"]
    assert defaults.main(argv) == 0
    assert header() == "| task (budget, goal) | `ours-chrono` | `ours[n_epochs=3]` |"


def test_named_tasks_limit_the_table_to_them(tmp_path, capsys):
    results = [line("ours-defaults", "ours", 0, 1.0, 30.0, None)]
    results.append({**line("ours-defaults", "ours", 0, 0.5, 30.0, None), "task": "bandit"})
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in results))
    assert defaults.main(["--out", str(tmp_path), "--table"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| ")]
    assert [r.split(" (")[0] for r in rows[1:]] == ["| tmaze-short", "| bandit"]
    assert defaults.main(["--out", str(tmp_path), "--table", "--tasks", "bandit"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| ")]
    assert [r.split(" (")[0] for r in rows[1:]] == ["| bandit"]


def test_mean_curve_only_where_every_seed_has_a_value():
    curves = [[(10, 1.0, None, None), (20, 2.0, 1.0, None), (30, 3.0, 3.0, None)],
              [(10, 1.0, 2.0, None), (20, 2.0, 4.0, None), (30, 3.0, 6.0, None)]]  # fmt: skip
    steps, mean = defaults.mean_curve(curves, 2)
    assert steps.tolist() == [20, 30] and mean.tolist() == [2.5, 4.5]


def test_adhoc_config_is_typed_and_named_by_its_settings():
    name, config = defaults.adhoc_config(["n_epochs=10", "learning_rate=3e-4", "net_arch=64 64"])
    assert name == "ours[n_epochs=10,learning_rate=3e-4,net_arch=64 64]"
    assert config == Config("ours", {"n_epochs": 10, "learning_rate": 3e-4, "net_arch": [64, 64]})
    with pytest.raises(SystemExit):
        defaults.adhoc_config(["batch_size=100000"])  # larger than a rollout


@pytest.mark.parametrize("name", list(defaults.TASKS))
def test_every_task_works_with_both_libraries(name):
    """...or with ours alone, where sb3-contrib refuses it as the task says."""
    task = defaults.TASKS[name]
    if task.requires:
        require(task.requires)
    from sb3_contrib import RecurrentPPO as SB3RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env

    from agent import RecurrentPPO

    ours = RecurrentPPO(
        task.env_id, env_kwargs=task.env_kwargs, wrappers=task.wrappers, n_envs=2, n_steps=8,
        batch_size=16, vec_env="sync", device="cpu",
    )  # fmt: skip
    obs, _ = ours.env.reset(seed=0)
    actions, _ = ours.predict(obs)
    _, rewards, *_ = ours.env.step(actions)
    assert rewards.shape == (2,)
    ours.close()

    env = make_vec_env(partial(defaults.make_env, task), n_envs=2, seed=0)
    assert env.observation_space == ours.observation_space
    if not task.sb3:  # refused as the task says (minigrid-codes: a 7x7 image for its NatureCNN)
        with pytest.raises(RuntimeError, match="Kernel size"):
            SB3RecurrentPPO("MultiInputLstmPolicy", env, n_steps=8, device="cpu")
        return
    sb3 = SB3RecurrentPPO(policy_for(env.observation_space), env, n_steps=8, device="cpu")
    actions, _ = sb3.predict(env.reset(), episode_start=np.ones(2, bool))
    _, rewards, _, _ = env.step(actions)
    assert rewards.shape == (2,)
    json.dumps(task.goal)  # results lines hold it


def test_symbol_encodings_carry_the_symbol_the_env_shows():
    """The Discrete, the number and the Dict's `symbol` are the index of the one-hot symbol the
    wrapped RepeatPrevious shows; the Dict's noise is uniform, drawn anew each step, and seeded
    with the env."""
    import gymnasium as gym

    kwargs = defaults.TASKS["repeat-previous"].env_kwargs
    shown = gym.make("Memory/RepeatPrevious-v0", **kwargs)
    wrapped = {kind: defaults.make_env(defaults.TASKS[f"repeat-previous-{kind}"])
               for kind in ("discrete", "index", "dict")}  # fmt: skip
    obs = {kind: env.reset(seed=3)[0] for kind, env in wrapped.items()}
    one_hot, _ = shown.reset(seed=3)
    noises = []
    for _ in range(6):
        symbol = int(np.flatnonzero(one_hot)[0])
        assert obs["discrete"] == symbol
        assert obs["index"].tolist() == [float(symbol)]
        assert obs["dict"]["symbol"] == symbol
        assert obs["dict"]["noise"].shape == (4,)
        assert ((obs["dict"]["noise"] >= 0) & (obs["dict"]["noise"] < 1)).all()
        noises.append(obs["dict"]["noise"])
        one_hot = shown.step(1)[0]
        obs = {kind: env.step(1)[0] for kind, env in wrapped.items()}
    assert len({tuple(n) for n in noises}) == len(noises)
    again = defaults.make_env(defaults.TASKS["repeat-previous-dict"]).reset(seed=3)[0]
    assert np.array_equal(again["noise"], noises[0])


def test_flat_pixels_are_the_frames_over_255():
    import gymnasium as gym

    task = defaults.TASKS["visual-match-flat"]
    frames = gym.make(task.env_id, **task.env_kwargs)
    flat = defaults.make_env(task)
    assert flat.observation_space == gym.spaces.Box(0.0, 1.0, (8, 8, 3), np.float32)
    frame, _ = frames.reset(seed=1)
    obs, _ = flat.reset(seed=1)
    for _ in range(3):
        assert obs.dtype == np.float32
        np.testing.assert_allclose(obs * 255.0, frame, atol=1e-4)
        frame, obs = frames.step(0)[0], flat.step(0)[0]
