"""benchmarks/popgym.py: its environment list, that each trains, and its results lines and table."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

from agent import RecurrentPPO
from benchmarks import popgym as bench
from tests.conftest import require

require("popgym")
NEEDS_MAZELIB = ("LabyrinthEscape", "LabyrinthExplore")


def test_the_list_is_every_easy_env_popgym_registers_but_the_mazes():
    registered = {
        i.removeprefix("popgym-").removesuffix("Easy-v0")
        for i in gym.registry
        if i.startswith("popgym-") and i.endswith("Easy-v0")
    }
    assert set(bench.ENVS) == registered - set(NEEDS_MAZELIB)


@pytest.mark.parametrize("name", bench.ENVS)
def test_each_env_trains_at_the_defaults_but_size(name):
    model = RecurrentPPO(bench.env_id(name), n_envs=2, n_steps=8, batch_size=16)
    model.learn(16)
    assert model.num_timesteps == 16
    model.close()


def fake_experiment(out, name, cell, budget, curves):
    """An experiment folder as tune.py leaves it: results.csv and one run folder per seed, each
    with `rollout/ep_rew_mean` logged at the given steps."""
    from torch.utils.tensorboard import SummaryWriter

    folder = bench.experiment(out, name, cell, budget)
    rows = ["trial,status,seed,rollout/ep_rew_mean,steps,wall_time_s,restarts,path"]
    for seed, curve in enumerate(curves):
        run = folder / f"seed{seed}"
        with SummaryWriter(str(run / "tb")) as writer:
            for step, value in curve:
                writer.add_scalar(bench.TAG, value, step)
        rows.append(f"seed{seed},done,{seed},{curve[-1][1]},{budget},{10.0 + seed},0,{run}")
    (folder / "results.csv").parent.mkdir(parents=True, exist_ok=True)
    (folder / "results.csv").write_text("\n".join(rows) + "\n")


def test_a_trial_line_holds_the_maximum_over_training_and_is_added_once(tmp_path):
    out, results = tmp_path / "runs", tmp_path / "results"
    results.mkdir()
    curves = [[(100, -0.5), (200, 0.8), (300, 0.6)], [(100, 0.1), (200, 0.2), (300, 0.3)]]
    fake_experiment(out, "RepeatFirst", "gru", 300, curves)
    assert bench.collect(out, results, "RepeatFirst", "gru", 300) == 2
    assert bench.collect(out, results, "RepeatFirst", "gru", 300) == 0
    lines = [json.loads(x) for x in (results / "results.jsonl").read_text().splitlines()]
    first = next(x for x in lines if x["seed"] == 0)
    assert first["mmer"] == pytest.approx(0.8) and first["mmer_step"] == 200
    assert first["final"] == pytest.approx(0.6) and first["train_seconds"] == 10.0
    assert [p[0] for p in first["curve"]] == [100, 200, 300]


def test_thinning_keeps_the_last_point():
    steps = list(range(2 * bench.CURVE_POINTS + 1))
    kept = bench.thin(steps, [0.0] * len(steps), [1.0] * len(steps))
    assert kept[-1][0] == steps[-1] and len(kept) <= bench.CURVE_POINTS + 2


def test_the_table_gives_each_cell_its_seeds_and_the_paper_where_known():
    def line(env, cell, seed, mmer, budget=1000):
        return {"env": env, "cell": cell, "budget": budget, "seed": seed, "mmer": mmer,
                "train_seconds": 60.0}  # fmt: skip

    results = [
        line("PositionOnlyCartPole", "lstm", 0, 0.9),
        line("PositionOnlyCartPole", "lstm", 1, 1.0),
        line("PositionOnlyCartPole", "ffm", 0, 0.5),
        line("RepeatFirst", "lstm", 0, 0.25),
        line("RepeatFirst", "lstm", 1, -1.0, budget=2000),  # another budget: not in this table
    ]
    header, _, *rows = bench.table(results, 1000).splitlines()
    assert header.startswith("| env (Easy) | lstm: MMER") and "ffm: MMER" in header
    cells = {row.split("|")[1].strip(): [c.strip() for c in row.split("|")[1:-1]] for row in rows}
    cartpole = cells["PositionOnlyCartPole"]
    assert cartpole == ["PositionOnlyCartPole", "0.950 ± 0.071 (2)", "0.500 (1)", "0.722", "?",
                        "1.000", "60 s"]  # fmt: skip
    repeat = cells["RepeatFirst"]
    assert repeat[:3] == ["RepeatFirst", "0.250 (1)", ""] and repeat[3:6] == ["?"] * 3
