"""benchmarks/minigrid_memory.py: the runs' flags, MarcoMeter's harder observation of MemoryS9,
and a quick run of the pipeline."""

import numpy as np
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
