"""plot.py and agent.report.curves: TensorBoard scalars of run folders, seeds grouped into a mean with a
min-max band, each line labelled by the settings that tell it apart, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from torch.utils.tensorboard import SummaryWriter

import plot as plot_script
from agent import PPOConfig
from agent.report import curves
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def make_run(
    folder: Path,
    scalars: dict[str, list[tuple[int, float]]],
    env_kwargs: dict | None = None,
    **hyperparameters,
) -> Path:
    """A run folder as `train.py` writes it: config.yaml and real event files in tb/."""
    record = {
        "env": "Memory/TMaze-v0",
        "env_kwargs": env_kwargs if env_kwargs is not None else {"length": 10},
        "wrappers": [],
        "total_timesteps": 1000,
        **PPOConfig(**hyperparameters).to_dict(),
    }
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    writer = SummaryWriter(str(folder / "tb"))
    for tag, points in scalars.items():
        for step, value in points:
            writer.add_scalar(tag, value, step, walltime=1000.0 + step)
    writer.close()
    return folder


def success(*values: float, every: int = 100) -> dict[str, list[tuple[int, float]]]:
    return {"rollout/success_rate": [(every * (i + 1), v) for i, v in enumerate(values)]}


def test_reads_every_scalar_in_order_with_wall_time_from_the_first_event(tmp_path):
    run = curves.read_run(make_run(tmp_path / "a", success(0.5, 0.75, 1.0)))
    curve = run.scalars["rollout/success_rate"]
    assert curve.steps.tolist() == [100, 200, 300]
    assert curve.values.tolist() == [0.5, 0.75, 1.0]
    assert curve.wall.tolist() == [0.0, 100.0, 200.0]
    assert run.config["length"] == 10 and "env_kwargs" not in run.config


def test_a_resumed_run_keeps_the_branch_it_went_on_with(tmp_path):
    """Resuming from step 200 after logging up to 300: the old step 300 was thrown away."""
    folder = make_run(tmp_path / "a", success(0.1, 0.2, 0.3))
    writer = SummaryWriter(str(folder / "tb"))
    for step, value in [(300, 0.9), (400, 1.0)]:
        writer.add_scalar("rollout/success_rate", value, step, walltime=5000.0 + step)
    writer.close()
    curve = curves.read_run(folder).scalars["rollout/success_rate"]
    assert curve.steps.tolist() == [100, 200, 300, 400]
    assert curve.values.tolist() == pytest.approx([0.1, 0.2, 0.9, 1.0])


def test_labels_name_the_settings_that_differ(tmp_path):
    runs = [
        curves.read_run(make_run(tmp_path / name, success(0.5), {"length": length}, **hp))
        for name, length, hp in [
            ("a", 50, {}),
            ("b", 10, {}),
            ("c", 10, {"learning_rate": 3e-4}),
        ]
    ]
    labels = [group.label for group in curves.group_runs(runs)]
    # Ordered by value, numbers by size: length 10 before 50, learning rate 0.0003 before 0.001.
    assert labels == [
        "length=10, learning_rate=0.0003",
        "length=10, learning_rate=0.001",
        "length=50, learning_rate=0.001",
    ]


def test_a_label_falls_back_to_the_folder_name_when_nothing_differs(tmp_path):
    run = curves.read_run(make_run(tmp_path / "tmaze_long", success(0.5)))
    (group,) = curves.group_runs([run])
    assert group.label == "tmaze_long"


def test_seeds_of_one_config_are_one_group_with_a_min_max_band(tmp_path):
    runs = [
        curves.read_run(make_run(tmp_path / f"lr3_s{seed}", success(*values), seed=seed))
        for seed, values in [(0, (0.0, 0.5)), (1, (0.2, 0.7)), (2, (0.4, 1.0))]
    ]
    other = curves.read_run(make_run(tmp_path / "lr1", success(0.1, 0.1), learning_rate=1e-4))
    groups = curves.group_runs([*runs, other])
    assert [g.label for g in groups] == ["learning_rate=0.0001", "learning_rate=0.001 (3 seeds)"]
    band = groups[1].band("rollout/success_rate")
    assert band.steps.tolist() == [100, 200]
    assert band.mean == pytest.approx([0.2, 2.2 / 3])
    assert band.low == pytest.approx([0.0, 0.5])
    assert band.high == pytest.approx([0.4, 1.0])


def test_a_band_covers_only_the_steps_every_seed_reached(tmp_path):
    short = curves.Curve(np.array([100, 200]), np.array([0.0, 1.0]), np.zeros(2))
    long = curves.Curve(np.array([150, 250, 350]), np.array([1.0, 1.0, 1.0]), np.zeros(3))
    band = curves.seed_band([short, long])
    # 150 lies inside both; `short` is interpolated there (0.5).
    assert band.steps.tolist() == [150, 200]
    assert band.mean == pytest.approx([0.75, 1.0])
    assert band.low == pytest.approx([0.5, 1.0])


def test_default_tags_prefer_success_and_add_evaluation_when_logged(tmp_path):
    both = {
        "rollout/ep_rew_mean": [(100, 0.0)],
        "rollout/success_rate": [(100, 0.5)],
        "eval/mean_reward": [(100, 1.0)],
        "eval/success_rate": [(100, 1.0)],
    }
    run = curves.read_run(make_run(tmp_path / "a", both))
    assert curves.default_tags([run]) == ["rollout/success_rate", "eval/success_rate"]
    no_success = curves.read_run(make_run(tmp_path / "b", {"rollout/ep_rew_mean": [(100, 3.0)]}))
    assert curves.default_tags([no_success]) == ["rollout/ep_rew_mean"]


def test_the_figure_draws_one_line_and_one_band_per_group(tmp_path):
    both = {**success(0.1, 0.9), "eval/success_rate": [(200, 1.0)]}
    runs = [curves.read_run(make_run(tmp_path / f"s{seed}", both, seed=seed)) for seed in range(3)]
    runs.append(curves.read_run(make_run(tmp_path / "long", both, {"length": 50})))
    tags = ["rollout/success_rate", "eval/success_rate"]
    figure = curves.curves_figure(curves.group_runs(runs), tags)
    labels = ["length=10 (3 seeds)", "length=50"]
    for ax in figure.axes:
        assert [line.get_label() for line in ax.get_lines()] == labels
        assert len(ax.collections) == 1  # the band of the three seeds; a single run has none
    (legend,) = figure.legends  # one legend for both panels, each group once
    assert [text.get_text() for text in legend.get_texts()] == labels
    assert "band min-max over seeds" in figure.get_suptitle()


def test_plot_writes_the_figure(tmp_path, capsys):
    a = make_run(tmp_path / "a", success(0.2, 0.8))
    b = make_run(tmp_path / "b", success(0.4, 0.6), {"length": 20})
    out = tmp_path / "figs" / "curves.png"
    assert plot_script.main([str(a), str(b), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG
    assert "length=20: " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no run folder"),
        ("no_events", "holds no TensorBoard events"),
        ("unknown_tag", "has no scalar 'rollout/sucess_rate'; did you mean 'rollout/success_rate'"),
        ("bad_extension", "cannot draw a figure to"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_output(tmp_path, capsys, case, message):
    run = make_run(tmp_path / "run", success(0.5))
    (tmp_path / "empty").mkdir()
    out = tmp_path / ("curves.pngg" if case == "bad_extension" else "curves.png")
    argv = {
        "missing": [str(tmp_path / "nope")],
        "no_events": [str(run), str(tmp_path / "empty")],
        "unknown_tag": [str(run), "--tag", "rollout/sucess_rate"],
        "bad_extension": [str(run)],
    }[case] + ["--out", str(out)]
    assert plot_script.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_the_script_fails_in_one_line_from_the_command_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "plot.py"), str(tmp_path / "nope"), "--out", "x.png"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr == f"error: no run folder {tmp_path / 'nope'}\n"


def test_a_long_title_is_wrapped_to_a_one_panel_figure(tmp_path):
    """The suptitle of one panel 4 inches wide breaks into lines that fit it, where one line
    was clipped at both ends; the words stay in order."""
    require("matplotlib")
    from agent.report.figures import TITLE_CHARS_PER_INCH, panel_grid

    title = "Presets: mean over seeds, band min-max, dashed line the goal"
    figure, _ = panel_grid(1, title)
    lines = figure.get_suptitle().splitlines()
    assert len(lines) == 2
    assert all(len(line) <= TITLE_CHARS_PER_INCH * 4 for line in lines)
    assert " ".join(lines) == title
    wide, _ = panel_grid(3, title)
    assert wide.get_suptitle() == title


def test_a_kwarg_a_run_left_to_its_env_is_labelled_with_the_envs_default(tmp_path):
    """`length=?` was the label of a run made without `--env-kwargs length=...`."""
    runs = [
        curves.read_run(make_run(tmp_path / name, success(0.5), kwargs, seed=seed))
        for name, kwargs, seed in [("default", {}, 0), ("ten", {"length": 10}, 1), ("long", {"length": 40}, 0)]
    ]  # fmt: skip
    groups = curves.group_runs(runs)
    # A run made with {} is one made with length 10 (TMaze's default): the same config, seeds apart.
    assert [group.label for group in groups] == ["length=10 (2 seeds)", "length=40"]
    other_env = make_run(tmp_path / "repeat", success(0.5), {"delay": 2})
    record = yaml.safe_load((other_env / "config.yaml").read_text())
    (other_env / "config.yaml").write_text(
        yaml.safe_dump({**record, "env": "Memory/RepeatPrevious-v0"}, sort_keys=False)
    )
    labels = [group.label for group in curves.group_runs([runs[2], curves.read_run(other_env)])]
    assert labels == [
        "env=Memory/RepeatPrevious-v0, length=32, num_symbols=4, delay=2",
        "env=Memory/TMaze-v0, length=40, noise=False",
    ]
    assert curves.env_defaults("Memory/TMaze-v0") == {"length": 10, "noise": False}
    assert curves.env_defaults("No/SuchEnv-v0") == {}


@pytest.mark.parametrize(
    "settings",
    [
        [{"length": 5}, {"length": 10}, {"length": 20}],
        [
            {"length": 5, "learning_rate": 3e-4, "ent_coef": 0.02, "n_steps": 64},
            {"length": 10, "learning_rate": 1e-3, "ent_coef": 0.0, "n_steps": 128},
            {"length": 20, "learning_rate": 3e-3, "ent_coef": 0.05, "n_steps": 256},
        ],
        [
            {
                "length": length,
                "net_arch": [length + i for i in range(24)],
                "gamma": 0.9 + length / 1000,
            }
            for length in (5, 10, 20)
        ],
    ],
    ids=["short", "long", "longer than the figure"],
)
def test_the_legend_lies_inside_the_figure(tmp_path, settings):
    """It was cut off at both edges once two labels side by side were wider than the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    runs = []
    for i, hp in enumerate(settings):
        kwargs = {"length": hp["length"]}
        rest = {key: value for key, value in hp.items() if key != "length"}
        runs.append(
            curves.read_run(make_run(tmp_path / f"r{i}", success(0.1, 0.5), kwargs, **rest))
        )
    groups = curves.group_runs(runs)
    figure = curves.curves_figure(groups, ["rollout/success_rate"])
    FigureCanvasAgg(figure).draw()
    (legend,) = figure.legends
    box, page = legend.get_window_extent(), figure.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
    # Below the panels, not over them.
    (ax,) = figure.axes
    assert box.y1 <= ax.get_tightbbox().y0
    # Every label is there, whole (perhaps broken into lines), with its values.
    texts = [" ".join(text.get_text().split()) for text in legend.get_texts()]
    assert texts == [group.label for group in groups]
    assert [text.split(",")[0] for text in texts] == ["length=5", "length=10", "length=20"]
