"""Learning curves of run folders: read their TensorBoard scalars, group seeds, label by settings.

A run folder is what `train.py` writes (and what each Ray Tune trial is): `config.yaml` and the
event files in `tb/`. The pieces go one way and each can be used alone:

    runs = [read_run(path) for path in paths]    # scalars and flattened config of each folder
    groups = group_runs(runs)                    # seeds of one config together, labelled
    plot_curves(groups, default_tags(runs), "curves.png")

A group's label names the settings whose values differ among the groups (`length=50,
learning_rate=0.0003`), or the folder name when nothing differs; a group of several seeds is
drawn as its mean with the min-max range over seeds as a band. Drawing needs matplotlib, imported
only when drawing.
"""

from __future__ import annotations

import difflib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from agent.report.figures import check_figure_path, legend_below

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_TAGS = (
    ("rollout/success_rate", "rollout/ep_rew_mean"),
    ("eval/success_rate", "eval/mean_reward"),
)
"""One panel per family when no tags are given: its first tag logged by the most runs."""
SEED_KEYS = ("seed",)
"""Settings that tell repetitions of one experiment apart: runs differing only here are grouped."""
IGNORED_KEYS = ("device",)
"""Settings that do not change what is learned: neither grouped on nor shown in labels."""
BAND = "min-max over seeds"
"""What the shaded band around a group's mean shows (said in the figure's title)."""


class RunFolderError(ValueError):
    """A folder that cannot be plotted: missing, without TensorBoard events, or lacking a tag."""


@dataclass(frozen=True)
class Curve:
    """One scalar of one run, in the order it was trained: `steps` [N] ascending, `values` [N],
    `wall` [N] seconds since the run's first event of this scalar."""

    steps: np.ndarray
    values: np.ndarray
    wall: np.ndarray


@dataclass(frozen=True)
class RunLog:
    """What one run folder holds for plotting."""

    path: Path
    config: dict[str, Any]
    """`config.yaml` flattened by `flat_config`; empty when the folder has none."""
    scalars: dict[str, Curve]
    """Every scalar tag the run logged."""

    @property
    def name(self) -> str:
        return self.path.resolve().name


@dataclass(frozen=True)
class Band:
    """The curves of a group on common steps: `steps` [M], `mean`, `low`, `high` [M]."""

    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class Group:
    """Runs of one configuration (seeds apart), with the label that tells it from the others."""

    label: str
    runs: tuple[RunLog, ...]

    def band(self, tag: str) -> Band | None:
        """`seed_band` of the runs that logged `tag`; None when none did."""
        curves = [run.scalars[tag] for run in self.runs if tag in run.scalars]
        return seed_band(curves) if curves else None


# ------------------------------------------------------------------------------ reading ---


def read_run(path: str | Path) -> RunLog:
    """Read a run folder (or a folder of event files itself). Raises `RunFolderError` when it
    is missing or holds no scalars."""
    path = Path(path)
    if not path.is_dir():
        raise RunFolderError(f"no run folder {path}")
    folder = path / "tb" if (path / "tb").is_dir() else path
    if not any(f.name.startswith("events.out.tfevents") for f in folder.iterdir()):
        raise RunFolderError(f"{path} holds no TensorBoard events (looked in {folder})")
    scalars = read_scalars(folder)
    if not scalars:
        raise RunFolderError(f"{path} holds TensorBoard events but no scalars")
    config_file = path / "config.yaml"
    record = yaml.safe_load(config_file.read_text()) if config_file.is_file() else None
    if not isinstance(record, dict):
        return RunLog(path, {}, scalars)
    env = record.get("env")
    return RunLog(path, flat_config(record, env_defaults(env) if env else {}), scalars)


def read_scalars(folder: str | Path) -> dict[str, Curve]:
    """Every scalar in the event files of `folder`, by tag.

    A resumed run appends a new event file that logs again from its checkpoint's step; the
    steps the first file logged past that point belong to a branch that was thrown away, so
    each point drops the earlier-written points at its step or later.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    accumulator.Reload()
    curves = {}
    for tag in accumulator.Tags()["scalars"]:
        kept: list[Any] = []
        for event in sorted(accumulator.Scalars(tag), key=lambda e: e.wall_time):
            while kept and kept[-1].step >= event.step:
                kept.pop()
            kept.append(event)
        start = kept[0].wall_time
        curves[tag] = Curve(
            np.array([e.step for e in kept], dtype=np.int64),
            np.array([e.value for e in kept], dtype=np.float64),
            np.array([e.wall_time - start for e in kept], dtype=np.float64),
        )
    return curves


def flat_config(record: dict[str, Any], defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run's `config.yaml` as one level of settings, in its order: the env kwargs stand in
    place of `env_kwargs` under their own names (`length`), or as `env_kwargs.NAME` where a
    name is also a top-level key. `defaults` (`env_defaults`) fill in the env kwargs the run
    did not pass, so that a run made with `{}` and one made with `{length: 20}` compare (and
    are labelled) by the length each was made with."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if key == "env_kwargs" and isinstance(value, dict | None):
            for name, kwarg in {**(defaults or {}), **(value or {})}.items():
                flat[f"env_kwargs.{name}" if name in record else name] = kwarg
        elif key != "env_kwargs":
            flat[key] = value
    return flat


def env_defaults(env_id: str) -> dict[str, Any]:
    """The env kwargs `env_id` is made with where a run passes none, as the env is registered
    now: its registered kwargs over the keyword defaults of its entry point (and, for a task of
    `envs/`, which takes its kwargs through `**kwargs`, of its `task_class`). Empty when the id
    or its entry point cannot be loaded here: the run's own kwargs are then all there is."""
    import inspect

    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    from agent.environment.vec_env import check_env_id

    try:
        check_env_id(env_id)  # imports a `module:` prefix; the Memory/ suite is registered
        spec = gym.spec(env_id.rpartition(":")[2])
        entry = spec.entry_point
        creator = entry if callable(entry) else load_env_creator(entry)
    except (ValueError, ImportError, AttributeError, gym.error.Error):
        return {}
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    defaults: dict[str, Any] = {}
    for target in (creator, getattr(creator, "task_class", None)):
        try:
            parameters = inspect.signature(target).parameters.values() if target else []
        except (TypeError, ValueError):  # a builtin or C callable without a signature
            continue
        defaults |= {
            p.name: p.default
            for p in parameters
            if p.kind in named and p.default is not p.empty and p.name != "render_mode"
        }
    return {**defaults, **(spec.kwargs or {})}


# ----------------------------------------------------------------------------- grouping ---


def differing_keys(configs: Sequence[dict[str, Any]]) -> list[str]:
    """The settings whose values are not the same in all `configs` (a missing one counts as a
    value), in the order they first appear."""
    keys = list(dict.fromkeys(key for config in configs for key in config))
    missing = object()
    return [
        key for key in keys if len({_canonical(config.get(key, missing)) for config in configs}) > 1
    ]


def describe(config: dict[str, Any], keys: Sequence[str]) -> str:
    """`length=50, learning_rate=0.0003`: the values of `keys` in `config`, leaving out those
    it does not hold (a kwarg of another env)."""
    return ", ".join(f"{key}={_format(key, config[key])}" for key in keys if key in config)


def group_runs(runs: Sequence[RunLog]) -> list[Group]:
    """Runs whose configs agree on all but `SEED_KEYS` and `IGNORED_KEYS` form one group (a run
    without a config is a group of its own). Each is labelled by `describe` of the settings that
    differ among the groups, else by its folder name, with the number of seeds when it holds
    several. Groups come in the order of those settings' values (numbers by size), else in the
    order first seen."""
    members: dict[str, list[RunLog]] = {}
    for run in runs:
        members.setdefault(_group_key(run), []).append(run)
    groups = list(members.values())
    keys = differing_keys([_settings(group[0]) for group in groups if group[0].config])
    groups.sort(key=lambda group: [_sort_key(group[0].config.get(key)) for key in keys])
    labels = [
        (describe(group[0].config, keys) if group[0].config and keys else _folder_label(group))
        + (f" ({len(group)} {_repetitions(group)})" if len(group) > 1 else "")
        for group in groups
    ]
    if len(set(labels)) < len(labels):  # only runs without a config differ: name the folders
        labels = [
            f"{label} [{_folder_label(group)}]" for label, group in zip(labels, groups, strict=True)
        ]
    return [Group(label, tuple(group)) for label, group in zip(labels, groups, strict=True)]


def seed_band(curves: Sequence[Curve]) -> Band:
    """The mean, minimum and maximum of `curves` at every step any of them logged within the
    range all of them cover (each curve linearly interpolated between its own steps). A single
    curve comes back unchanged, its band of zero width."""
    first = max(curve.steps[0] for curve in curves)
    last = min(curve.steps[-1] for curve in curves)
    steps = np.unique(np.concatenate([curve.steps for curve in curves]))
    steps = steps[(steps >= first) & (steps <= last)]
    values = np.stack([np.interp(steps, c.steps, c.values) for c in curves])
    return Band(steps, values.mean(axis=0), values.min(axis=0), values.max(axis=0))


def _settings(run: RunLog) -> dict[str, Any]:
    return {k: v for k, v in run.config.items() if k not in SEED_KEYS + IGNORED_KEYS}


def _group_key(run: RunLog) -> str:
    if not run.config:
        return f"folder:{run.path.resolve()}"
    return json.dumps(_settings(run), sort_keys=True, default=str)


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers by size before anything else, which goes by its text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, _canonical(value))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _folder_label(runs: Sequence[RunLog]) -> str:
    """The folder name of one run; the name several share (`lr3e-4_seed` of `lr3e-4_seed0`,
    `lr3e-4_seed1`), else the first one's."""
    names = [run.name for run in runs]
    same = itertools.takewhile(lambda chars: len(set(chars)) == 1, zip(*names, strict=False))
    shared = "".join(chars[0] for chars in same).rstrip("-_. ")
    return shared or names[0]


def _repetitions(runs: Sequence[RunLog]) -> str:
    seeds = {_canonical([run.config.get(k) for k in SEED_KEYS]) for run in runs}
    return "seeds" if len(seeds) == len(runs) else "runs"


def _format(key: str, value: Any) -> str:
    if key == "wrappers" and isinstance(value, list):
        return "+".join(_wrapper_name(spec) for spec in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _wrapper_name(spec: Any) -> str:
    """`FrameStackObservation(stack_size=4)` of `{"gymnasium.wrappers:FrameStackObservation":
    {"stack_size": 4}}`."""
    if isinstance(spec, dict) and len(spec) == 1:
        ((target, kwargs),) = spec.items()
        args = ", ".join(f"{k}={v}" for k, v in (kwargs or {}).items())
        return f"{str(target).rsplit(':', 1)[-1]}({args})"
    return str(spec).rsplit(":", 1)[-1]


# ------------------------------------------------------------------------------- tags ---


def default_tags(runs: Sequence[RunLog]) -> list[str]:
    """One tag per `DEFAULT_TAGS` family that any run logged: the success rate where the runs
    log it, else the return. Raises `RunFolderError` when no run logs any of them."""
    tags = []
    for family in DEFAULT_TAGS:
        counts = [sum(tag in run.scalars for run in runs) for tag in family]
        if max(counts) > 0:
            tags.append(family[counts.index(max(counts))])
    if not tags:
        logged = sorted({tag for run in runs for tag in run.scalars})
        raise RunFolderError(
            f"no run logs any of {', '.join(t for f in DEFAULT_TAGS for t in f)}; choose with "
            f"--tag from: {', '.join(logged)}"
        )
    return tags


def check_tags(runs: Sequence[RunLog], tags: Sequence[str]) -> None:
    """Raise `RunFolderError` naming the first run that did not log one of `tags`."""
    for tag in tags:
        for run in runs:
            if tag not in run.scalars:
                close = difflib.get_close_matches(tag, list(run.scalars), n=1)
                hint = (
                    f"did you mean {close[0]!r}?" if close else f"it logs {', '.join(run.scalars)}"
                )
                raise RunFolderError(f"{run.path} has no scalar {tag!r}; {hint}")


# ------------------------------------------------------------------------------ drawing ---


def curves_figure(groups: Sequence[Group], tags: Sequence[str], title: str = "") -> Figure:
    """One panel per tag against environment steps, one line per group (its mean) with its band
    shaded, one legend below. The title is `title`, else the env when all runs share one, with
    what the band shows when a group holds several runs. With a single run, a second x axis on
    top gives wall-clock minutes."""
    from matplotlib.figure import Figure

    n_runs = sum(len(group.runs) for group in groups)
    figure = Figure(figsize=(7.0, 1.0 + 2.6 * len(tags)), layout="constrained")
    axes = figure.subplots(len(tags), 1, sharex=True, squeeze=False)[:, 0]
    legend: dict[str, Any] = {}  # one entry per group, from the first panel that drew it
    for ax, tag in zip(axes, tags, strict=True):
        for index, group in enumerate(groups):
            band = group.band(tag)
            if band is None:
                continue
            color = f"C{index % 10}"
            few = len(band.steps) <= 30  # sparse points (evaluations): show where they are
            (line,) = ax.plot(
                band.steps,
                band.mean,
                color=color,
                label=group.label,
                linewidth=1.4,
                marker="o" if few else None,
                markersize=3,
            )
            legend.setdefault(group.label, line)
            if len(group.runs) > 1:
                ax.fill_between(band.steps, band.low, band.high, color=color, alpha=0.2)
        ax.set_ylabel(tag, fontsize=8)
        if tag.endswith("success_rate"):
            ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("environment steps")
    if n_runs == 1:
        _wall_clock_axis(axes[0], groups[0].runs[0].scalars[tags[0]])
    envs = {run.config.get("env") for group in groups for run in group.runs}
    heading = title or (str(envs.pop()) if len(envs) == 1 and None not in envs else "")
    if any(len(group.runs) > 1 for group in groups):
        heading = f"{heading}: mean, band {BAND}" if heading else f"mean, band {BAND}"
    if heading:
        figure.suptitle(heading, fontsize=9)
    if n_runs > 1:
        legend_below(figure, list(legend.values()), list(legend.keys()))
    return figure


def plot_curves(
    groups: Sequence[Group], tags: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Draw `curves_figure(groups, tags, title)` to `path` (any format `check_figure_path`
    accepts) and return the path."""
    path = check_figure_path(path)
    figure = curves_figure(groups, tags, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def _wall_clock_axis(ax: Any, curve: Curve) -> None:
    steps, wall = curve.steps.astype(np.float64), curve.wall
    if len(steps) < 2:
        return
    top = ax.secondary_xaxis(
        "top",
        functions=(
            lambda s: np.interp(s, steps, wall) / 60.0,
            lambda m: np.interp(np.asarray(m) * 60.0, wall, steps),
        ),
    )
    top.set_xlabel("wall-clock minutes", fontsize=8)
