"""benchmarks/plot_run.py: reads a run's TensorBoard scalars and draws them."""

from __future__ import annotations

import pytest
from torch.utils.tensorboard import SummaryWriter

from benchmarks import plot_run


def write_run(folder, values):
    writer = SummaryWriter(str(folder / "tb"))
    for step, value in values:
        writer.add_scalar("eval/success_rate", value, step)
    writer.close()


def test_reads_the_logged_scalars_in_order(tmp_path):
    write_run(tmp_path, [(100, 0.5), (200, 0.75), (300, 1.0)])
    steps, values, wall = plot_run.read_scalars(tmp_path, "eval/success_rate")
    assert steps == [100, 200, 300]
    assert values == [0.5, 0.75, 1.0]
    assert wall[0] == 0.0 and wall == sorted(wall)


def test_writes_a_png_and_rejects_a_missing_tag(tmp_path):
    write_run(tmp_path, [(100, 0.5), (200, 1.0)])
    png = tmp_path / "out.png"
    plot_run.main([str(tmp_path), "--tags", "eval/success_rate", "--out", str(png)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit, match="no scalar 'rollout/success_rate'"):
        plot_run.main([str(tmp_path), "--tags", "rollout/success_rate", "--out", str(png)])
    with pytest.raises(SystemExit, match="no run folder"):
        plot_run.main([str(tmp_path / "nope"), "--out", str(png)])
