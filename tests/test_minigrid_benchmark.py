"""benchmarks/minigrid_memory.py: the runs' flags, MarcoMeter's harder observation of MemoryS9,
and a quick run of the pipeline."""

import json

import numpy as np
import pytest
from gymnasium import spaces

from agent import RecurrentPPO
from agent.networks.encoders import ImageEncoder
from agent.run.cli import resolve_settings, train_parser
from benchmarks import jobs, minigrid_memory
from benchmarks.minigrid_memory import Job, flags


def test_the_harder_observation_is_a_3x3_view_drawn_in_84x84_rgb_with_three_actions():
    settings = resolve_settings(
        train_parser().parse_args(flags(Job("MemoryS9-rgb3x3", "defaults", 0, 64)))
    )
    assert settings.env_kwargs == {"agent_view_size": 3}
    model = RecurrentPPO(settings.env_id, settings.config, env_kwargs=settings.env_kwargs,
                         wrappers=settings.wrappers)  # fmt: skip
    assert model.observation_space == spaces.Box(0, 255, (84, 84, 3), np.uint8)
    assert model.action_space == spaces.Discrete(3)
    assert isinstance(model.policy.encoder, ImageEncoder)  # pictures, through `nature`
    model.close()


def test_a_quick_run_writes_one_line_per_variant_once(tmp_path, capsys):
    argv = ["--quick", "--out", str(tmp_path), "--experiment", "encoders"]
    assert minigrid_memory.main(argv) == 0
    lines = jobs.load_results(tmp_path)
    assert sorted(x["variant"] for x in lines) == ["embed", "flatten", "onehot"]
    for line in lines:
        assert line["steps"] >= minigrid_memory.QUICK_BUDGET and line["wall"] > 0
        assert line["task"] == "MemoryS7" and line["goal"] == 0.9
    out = capsys.readouterr().out
    assert "| MemoryS7 (4k, 0.9) | embed |" in out
    assert minigrid_memory.main(argv) == 0 and "0 jobs to run" in capsys.readouterr().out


def test_a_run_stops_once_held_past_the_goal_and_not_before():
    stop = jobs.held_for(0.9, 1000)
    assert not stop([(500, 1.0, None), (1000, 2.0, 0.5)])  # never at the goal
    assert not stop([(500, 1.0, 0.95), (1400, 2.0, 0.5)])  # at it, not yet 1000 steps on
    assert stop([(500, 1.0, 0.5), (1000, 2.0, 0.95), (2000, 3.0, 0.7)])  # 1000 steps on


def test_train_flags_stops_when_told(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    flags = ["--env", "Memory/TMaze-v0", "--n-envs", "2", "--n-steps", "32", "--batch-size", "64",
             "--device", "cpu"]  # fmt: skip
    steps, _, curve = jobs.train_flags(flags, 10_000, stop=lambda curve: curve[-1][0] >= 128)
    assert steps == 128 and curve[-1][0] == 128


def test_a_job_stopped_midway_goes_on_from_its_checkpoint_as_if_never_stopped(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(jobs, "SAVE_EVERY", 0.0)  # a checkpoint after every update
    flags = ["--env", "Memory/TMaze-v0", "--env-kwargs", "length=4", "--n-envs", "2",
             "--n-steps", "32", "--batch-size", "64", "--device", "cpu"]  # fmt: skip
    budget = 8 * 64
    _, _, straight = jobs.train_flags(flags, budget)

    class Killed(Exception):
        pass

    killed: list[jobs.Curve] = []

    def kill(curve: jobs.Curve) -> bool:
        if curve[-1][0] >= 5 * 64:
            killed.append(list(curve))
            raise Killed
        return False

    checkpoint = tmp_path / "checkpoints" / "job.zip"
    with pytest.raises(Killed):
        jobs.train_flags(flags, budget, stop=kill, checkpoint=checkpoint)
    assert checkpoint.is_file()
    steps, wall, resumed = jobs.train_flags(flags, budget, checkpoint=checkpoint)
    assert steps == budget
    assert resumed[: len(killed[0])] == killed[0]  # the saved curve, its seconds too
    assert wall > killed[0][-1][1]
    # TMaze saves its episodes: the run goes on exactly where it stopped.
    assert [(p[0], p[2]) for p in resumed] == [(p[0], p[2]) for p in straight]
    # Killed after its end, before its line was written: run again, it trains no more.
    assert jobs.train_flags(flags, budget, checkpoint=checkpoint)[::2] == (budget, resumed)


def test_a_job_whose_stop_fired_before_a_kill_trains_no_more_when_run_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(jobs, "SAVE_EVERY", 0.0)
    flags = ["--env", "Memory/TMaze-v0", "--n-envs", "2", "--n-steps", "32", "--batch-size",
             "64", "--device", "cpu"]  # fmt: skip
    checkpoint = tmp_path / "job.zip"

    def stop(curve: jobs.Curve) -> bool:
        return curve[-1][0] >= 3 * 64

    first = jobs.train_flags(flags, 10_000, stop=stop, checkpoint=checkpoint)
    assert first[0] == 3 * 64
    again = jobs.train_flags(flags, 10_000, stop=stop, checkpoint=checkpoint)
    assert again[::2] == first[::2]


def test_a_checkpoint_of_other_flags_is_moved_aside_and_the_job_starts_afresh(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(jobs, "SAVE_EVERY", 0.0)
    flags = ["--env", "Memory/TMaze-v0", "--n-envs", "2", "--n-steps", "32", "--batch-size",
             "64", "--device", "cpu"]  # fmt: skip
    checkpoint = tmp_path / "job.zip"
    jobs.train_flags([*flags, "--seed", "1"], 2 * 64, checkpoint=checkpoint)
    steps, _, curve = jobs.train_flags(flags, 3 * 64, checkpoint=checkpoint)
    assert steps == 3 * 64 and curve[0][0] == 64  # from the first update, not from 128
    assert (tmp_path / "job.zip.stale").is_file()
    assert "other flags" in capsys.readouterr().out
    checkpoint.write_bytes(b"not a checkpoint")  # unreadable: also aside
    assert jobs.train_flags(flags, 64, checkpoint=checkpoint)[0] == 64
    assert (tmp_path / "job.zip.stale").read_bytes() == b"not a checkpoint"


def test_a_jobs_checkpoint_is_removed_once_its_line_is_written(tmp_path):
    script = tmp_path / "bench.py"  # a benchmark whose worker prints its line at once
    script.write_text(
        "import json, sys\n"
        "job = json.loads(sys.argv[sys.argv.index('--worker') + 1])\n"
        "print('RESULT ' + json.dumps({**job, 'done': True}))\n"
    )
    job, other = Job("MemoryS7", "defaults", 0, 64), Job("MemoryS7", "defaults", 1, 64)
    for kept in (job, other):
        jobs.checkpoint_path(tmp_path, kept).parent.mkdir(exist_ok=True)
        jobs.checkpoint_path(tmp_path, kept).write_bytes(b"checkpoint")
    assert jobs.run_jobs(script, [job], tmp_path, 1, lambda job, line: "") == 0
    assert jobs.load_results(tmp_path) == [{**job._asdict(), "done": True}]
    assert not jobs.checkpoint_path(tmp_path, job).exists()
    assert jobs.checkpoint_path(tmp_path, other).exists()  # not its job's


def test_a_resumed_job_keeps_its_last_returns_where_the_env_cannot_save_its_episodes(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(jobs, "SAVE_EVERY", 0.0)
    flags = ["--env", "CartPole-v1", "--n-envs", "2", "--n-steps", "32", "--batch-size", "64",
             "--device", "cpu"]  # fmt: skip
    checkpoint = tmp_path / "job.zip"

    def kill(curve: jobs.Curve) -> bool:
        if curve[-1][0] >= 4 * 64:
            raise KeyboardInterrupt
        return False

    def count(returns):  # the curve's "return": how many episodes the window holds
        return [len(returns)]

    with pytest.raises(KeyboardInterrupt):
        jobs.train_flags(flags, 8 * 64, count, stop=kill, checkpoint=checkpoint)
    _, _, curve = jobs.train_flags(flags, 8 * 64, count, checkpoint=checkpoint)
    held = [point[2] for point in curve]
    assert held[3] > 0 and held == sorted(held)  # under 100 episodes: the window only grows


def test_the_plan_takes_the_seeds_asked_for_and_each_experiments_hold():
    from argparse import Namespace

    args = Namespace(experiment=["pixels-s9", "encoders"], quick=False, seeds=[1])
    todo = minigrid_memory.plan(args)
    assert {job.seed for job in todo} == {1} and len(todo) == 4
    holds = {job.task: job.hold for job in todo}
    assert holds == {"MemoryS9-rgb3x3": 300_000, "MemoryS7": 0}
    assert len(minigrid_memory.plan(Namespace(**{**vars(args), "seeds": None}))) == 9


def test_the_table_shows_the_experiments_asked_for(tmp_path, capsys):
    def line(task):
        job = Job(task, "defaults", 0, 1000)
        return jobs.goal_line(job, 1000, 1.0, [(1000, 1.0, 0.95)], 0.9)

    (tmp_path / "results.jsonl").write_text(
        "\n".join(json.dumps(line(t)) for t in ("MemoryS7", "MemoryS13Random")) + "\n"
    )
    minigrid_memory.main(["--out", str(tmp_path), "--table", "--experiment", "random-lengths"])
    out = capsys.readouterr().out
    assert "| MemoryS13Random (1k, 0.9)" in out and "MemoryS7" not in out


def test_the_pixels_figure_shows_where_marcometers_runs_reached_the_goal(tmp_path, monkeypatch):
    import agent.report.figures

    drawn = []
    monkeypatch.setattr(agent.report.figures, "save_figure", lambda fig, path: drawn.append(fig))
    curve = [[4096, 10.0, 0.5], [8192, 20.0, 0.95]]
    line = {"task": "MemoryS9-rgb3x3", "variant": "defaults", "seed": 0, "curve": curve}
    minigrid_memory.plot([line], tmp_path / "figure.png")
    by_steps = drawn[0].axes[0]
    assert "MarcoMeter" in by_steps.get_legend().get_texts()[-1].get_text()
    span = by_steps.patches[0]  # a Rectangle, or before matplotlib 3.9 a Polygon
    xs = span.get_path().transformed(span.get_patch_transform()).vertices[:, 0]
    span = (xs.min(), xs.max())
    assert span == (390_000, 1_980_000)
    assert [ln.get_xdata()[0] for ln in by_steps.lines if ln.get_linestyle() == "--"] == [685_000]


def test_a_checkpoint_is_one_file_in_out_checkpoints_whatever_its_jobs_fields(tmp_path):
    from benchmarks import defaults

    def job(value: str) -> defaults.Job:
        return defaults.Job("Memory/TMaze-v0", "x", "ours", {"a/b": value}, 0, 10, 5)

    first, second = (jobs.checkpoint_path(tmp_path, job("c" * 300 + end)) for end in "de")
    assert first.parent == second.parent == tmp_path / "checkpoints"
    assert first != second and len(first.name) < 120
    plain = Job("MemoryS17Random", "defaults", 1, 8_000_000, 300_000)  # plain words: its fields
    assert (
        jobs.checkpoint_path(tmp_path, plain).name
        == "MemoryS17Random-defaults-1-8000000-300000.zip"
    )
