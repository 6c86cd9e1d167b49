"""POPGym's Easy environments (Morad et al., ICLR 2023) per memory model, and none, on Ray Tune.

    python benchmarks/popgym_easy.py --out runs/popgym                   # every env and cell, 1M
    python benchmarks/popgym_easy.py --out runs/popgym --envs RepeatFirst CountRecall --cells lstm
    python benchmarks/popgym_easy.py --out runs/popgym --cells gru --first-seed 1 --seeds 2  # 1, 2
    python benchmarks/popgym_easy.py --out runs/popgym --cells mingru --layers 2 --envs RepeatFirst
    python benchmarks/popgym_easy.py --out runs/popgym --cells none --prev-action --envs Battleship
    python benchmarks/popgym_easy.py --out runs/popgym --cells lstm --hyperparams ent_coef:0.03
    python benchmarks/popgym_easy.py --table --plot results/popgym/popgym.png  # from results/popgym

Each (environment, cell) pair is one `tune.py` experiment at our defaults but `--rnn-type`
(`--seeds` of them for the LSTM, the GRU and `none`, no memory at all; `--new-cell-seeds` for
minGRU and FFM), run one after another, every env of one cell before the next cell, each folder
resumable (`benchmarks.jobs.run_tune_experiment`). Trials run without periodic evaluations: the
score is the paper's metric, MMER, the maximum over training of the mean episodic return, here
of the last 100 training episodes (`rollout/ep_rew_mean`, logged after every rollout, counted
once about 100 episodes have ended: `full_windows`; the paper's is the mean over each RLlib
train batch of 65,536 steps). A trial that failed is not retried: its seed is missing from the
table's count, and deleting its experiment folder runs it again. POPGym scales returns into
[-1, 1] for most tasks. Unlike the paper, the previous action is not fed back as an input
(`--prev-action` feeds it) and there is no first-step flag (popgym's `Antialias`, which the
paper added on every task), and budgets are at most 1M steps (the paper's 15M). popgym warns
that its two Labyrinth tasks can be solved without memory and advises against them as memory
benchmarks; they are run anyway.

On one machine, the last seed of an experiment leaves the other cores idle: two copies of the
script, each with `--max-concurrent 1` and its own part of `--envs`, keep two cores busy (they
share `--out` and `--results` safely). `--address` joins a running Ray cluster instead of
starting Ray in each experiment; the run folders must be readable from this machine.

`--layers 2` stacks two layers of each cell (tune.py's `--n-lstm-layers`): its runs are
labelled `<cell>-2layers` in the results. `--prev-action` adds the previous action to each
observation (`envs.previous_action.PreviousAction`): `<cell>-prevaction`, or
`<cell>-2layers-prevaction` with both. popgym marks six tasks as needing it: MultiarmedBandit,
Concentration, Battleship, MineSweeper, and the two Labyrinths, whose observation already holds
the last move. `--hyperparams ent_coef:0.03` changes train.py's hyperparameters from the
defaults, to test a cause of a result: `<cell>-ent_coef=0.03`. Variants are reported in a
table of their own, each beside its plain cell and the LSTM; the figure draws them dashed (or
dotted) in their cell's colour.

Each finished trial leaves a line in RESULTS/results.jsonl (`--results`, results/popgym: its
MMER, the step it was first reached, its training time and a thinned curve), so that `--table`
and `--plot` need no run folders.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.jobs import (  # noqa: E402
    CURVE_POINTS,
    WINDOW,
    load_results,
    locked,
    run_tune_experiment,
)

ENVS = (
    "Autoencode",
    "RepeatPrevious",
    "RepeatFirst",
    "CountRecall",
    "PositionOnlyCartPole",
    "PositionOnlyPendulum",
    "VelocityOnlyCartpole",
    "NoisyPositionOnlyCartPole",
    "NoisyPositionOnlyPendulum",
    "MultiarmedBandit",
    "HigherLower",
    "Battleship",
    "Concentration",
    "MineSweeper",
    "LabyrinthEscape",
    "LabyrinthExplore",
)
"""POPGym's environments, by their names in popgym 1.0 (`popgym-<name>Easy-v0`)."""
CELLS = ("lstm", "gru", "none", "mingru", "ffm")
PAPER_CELLS = ("lstm", "gru", "none")
"""The models the paper also ran (its memoryless MLP is our `none`): `--seeds` seeds each; the
others `--new-cell-seeds`. Without the paper's per-task scores, `none` tells where memory helps."""
TAG = "rollout/ep_rew_mean"
WALLS = "walls.json"
"""Per experiment, the wall-clock seconds of its tune.py call(s), in the output folder."""

PAPER: dict[str, dict[str, float]] = {
    "PositionOnlyCartPole": {"mlp": 0.722, "lstm": 1.000},
}
"""The paper's MMER (PPO, Easy, mean of 3 trials) where a source we could read gives it: its
Appendix Table 3 as quoted by a secondary source (a project note in the public code index that
names the table and the paper's commit, popgym e397e5e), not checked against the paper, whose
appendix no stored copy returned. The other cells are unknown here, not zero."""
NOT_IN_PAPER = ("VelocityOnlyCartpole",)
"""Environments added to popgym after the paper (VelocityOnlyCartpole: popgym commit b6b9c3b,
2023-08-23; the popgym that proroklab/ffm says it evaluated against has 15 environments, this
one not among them, and names the position-only tasks `Stateless...`)."""


def env_id(name: str) -> str:
    return f"popgym-{name}Easy-v0"


PREV_ACTION = "envs.previous_action:PreviousAction"
"""The wrapper spec of `--prev-action`."""


HELD = ("rnn_type", "n_lstm_layers", "seed")
"""Hyperparameters `--hyperparams` leaves to this script's own flags (`--cells`, `--layers`,
`--first-seed`)."""


def hyperparams(pairs: list[str]) -> dict[str, Any]:
    """`--hyperparams`' NAME:VALUE pairs (as rl-zoo's `--hyperparams`, a list's values joined
    by commas: `net_arch:64,64`) as {name: value}, each value read as train.py reads its flag,
    in PPOConfig's field order; a ValueError says, in one line, which pair is wrong and why.
    Settings that depend on the cell are checked by `check_hyperparams`."""
    from agent.config import PPOConfig
    from agent.run.cli import add_config_flags, flag_name

    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    add_config_flags(parser)
    defaults = PPOConfig().to_dict()
    chosen: dict[str, Any] = {}
    for pair in pairs:
        name, _, value = pair.partition(":")
        value = value.strip()
        if not value:
            raise ValueError(f"--hyperparams takes NAME:VALUE pairs, got {pair!r}")
        if name not in defaults:
            raise ValueError(f"--hyperparams: {name!r} is unknown")
        if name in HELD:
            raise ValueError(f"--hyperparams: {name!r} is set by --cells, --layers or --first-seed")
        if name in chosen:
            raise ValueError(f"--hyperparams: {name!r} is given twice")
        if isinstance(defaults[name], list):  # a list's values, never another flag
            words = [word.strip() for word in value.split(",")]
            if any(not word or word.startswith("-") for word in words):
                raise ValueError(f"--hyperparams {pair}: {name} takes positive sizes")
            flags = [flag_name(name), *words]
        else:  # one word, even one that starts with `-`
            flags = [f"{flag_name(name)}={value}"]
        try:
            chosen[name] = getattr(parser.parse_args(flags), name)
        except argparse.ArgumentError as error:
            raise ValueError(f"--hyperparams {pair}: {error}") from None
    return {name: chosen[name] for name in defaults if name in chosen}


def check_hyperparams(params: dict[str, Any], cell: str, layers: int) -> None:
    """Raise ConfigError (one line) if train.py would refuse `params` (`hyperparams`) for
    `layers` layers of `cell`, or if one of them is the default already."""
    from agent.config import ConfigError, PPOConfig

    config = PPOConfig(**params, rnn_type=cell, n_lstm_layers=layers).validate().to_dict()
    default = PPOConfig(rnn_type=cell, n_lstm_layers=layers).validate().to_dict()
    same = [f"{name}:{spelled(config[name])}" for name in params if config[name] == default[name]]
    if same:
        raise ConfigError(f"{', '.join(same)} is the default already: leave it out")


def spelled(value: Any) -> str:
    """A hyperparameter's value as labels and tune.py's flags write it (`0.03`, `true`,
    `none`, `64,64`): one spelling for each value."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(size) for size in value)
    return repr(value) if isinstance(value, float) else str(value)


def label(
    cell: str, layers: int = 1, prev_action: bool = False, params: dict[str, Any] | None = None
) -> str:
    """The name of a variant of `cell` in folders and results: `mingru-2layers` stacked two
    deep, `lstm-prevaction` with the previous action as an input, `lstm-ent_coef=0.03` with a
    hyperparameter of `--hyperparams` changed; the plain cell keeps its name."""
    return (
        cell
        + (f"-{layers}layers" if layers != 1 else "")
        + ("-prevaction" if prev_action else "")
        + "".join(f"-{name}={spelled(value)}" for name, value in (params or {}).items())
    )


def experiment(out: Path, name: str, cell: str, budget: int, seeds: int, first: int = 0) -> Path:
    """The experiment folder of `seeds` seeds of `cell` (a `label`) on env `name` at `budget`
    steps, from seed `first` (`..._3seeds` from seed 0, `..._seeds1-2` for seeds 1 and 2)."""
    tail = f"{seeds}seeds" if first == 0 else f"seeds{first}-{first + seeds - 1}"
    return out / f"{name}__{cell}__{budget}steps__{tail}"


def tune_args(
    name: str,
    cell: str,
    seeds: int,
    budget: int,
    first: int = 0,
    layers: int = 1,
    prev_action: bool = False,
    params: dict[str, Any] | None = None,
) -> list[str]:
    """tune.py's flags for one experiment (the run folder aside): seeds `first` to
    `first + seeds - 1`, `layers` layers of `cell`, the previous action as an input or not,
    and the hyperparameters `params` (`hyperparams`)."""
    from agent.run.cli import flag_name

    changed = [
        word
        for name, value in (params or {}).items()
        for word in (
            [flag_name(name), *map(str, value)]
            if isinstance(value, list)
            else [f"{flag_name(name)}={spelled(value)}"]
        )
    ]
    return [
        "--env", env_id(name), "--rnn-type", cell, "--seeds", str(seeds),
        *(["--seed", str(first)] if first else []),
        *(["--n-lstm-layers", str(layers)] if layers != 1 else []),
        *(["--wrapper", PREV_ACTION] if prev_action else []),
        "--total-timesteps", str(budget), "--eval-freq", "0", "--metric", TAG, *changed,
    ]  # fmt: skip


def thin(steps: list[int], wall: list[float], values: list[float]) -> list[list[float]]:
    """About `CURVE_POINTS` points (steps, seconds, value) of a curve, always its last."""
    every = max(1, len(steps) // CURVE_POINTS)
    keep = sorted({*range(0, len(steps), every), len(steps) - 1})
    return [[int(steps[i]), round(wall[i], 2), round(values[i], 4)] for i in keep]


def full_windows(steps: Any, lengths: Any, n_envs: int) -> Any:
    """Which points of a run's `rollout/` curves average `jobs.WINDOW` episodes (SB3's means
    start at the first episode), judged from the steps and the mean episode length: n copies
    have ended at least steps / (length + 1) - n episodes (each episode takes one more step,
    the autoreset's)."""
    return steps >= (WINDOW + n_envs) * (lengths + 1.0)


def trial_line(name: str, cell: str, budget: int, row: dict[str, str]) -> dict[str, Any]:
    """The results line of one finished trial of an experiment (a `results.csv` row): MMER is
    the maximum of the points whose mean is over a full window (`full_windows`)."""
    from agent.report.curves import read_run

    run = read_run(row["path"])
    curve, lengths = run.scalars[TAG], run.scalars["rollout/ep_len_mean"]
    full = full_windows(curve.steps, lengths.values, int(run.config.get("n_envs", 16)))
    best = int(np.flatnonzero(full)[curve.values[full].argmax()]) if full.any() else -1
    return {
        "env": name, "cell": cell, "budget": budget, "seed": int(row["seed"]),
        "mmer": float(curve.values[best]), "mmer_step": int(curve.steps[best]),
        "final": float(curve.values[-1]), "steps": int(row["steps"]),
        "train_seconds": float(row["wall_time_s"]),
        "full_from": int(curve.steps[full][0]) if full.any() else None,
        "curve": thin(curve.steps.tolist(), curve.wall.tolist(), curve.values.tolist()),
    }  # fmt: skip


def collect(folder: Path, results: Path, name: str, cell: str, budget: int) -> int:
    """Add the lines of the finished trials of the experiment in `folder` missing from
    RESULTS/results.jsonl; how many were added."""
    from agent.tune.trial_table import RESULTS_CSV, finished_trials

    if not (folder / RESULTS_CSV).is_file():
        return 0
    with locked(results / "results.jsonl"):  # another copy of this script may add lines too
        have = {(x["env"], x["cell"], x["budget"], x["seed"]) for x in load_results(results)}
        lines = [
            trial_line(name, cell, budget, row)
            for row in finished_trials(folder)
            if (name, cell, budget, int(row["seed"])) not in have
        ]
        with (results / "results.jsonl").open("a") as f:
            f.writelines(json.dumps(line) + "\n" for line in lines)
    return len(lines)


def score(values: list[float]) -> str:
    """`mean ± std (n)` of a cell's MMERs; `mean (1)` for one seed."""
    if len(values) == 1:
        return f"{values[0]:.3f} (1)"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f} ({len(values)})"


def paper_score(name: str, model: str) -> str:
    """The paper's MMER of `model` on env `name` as the table writes it: `?` where unknown."""
    if name in NOT_IN_PAPER:
        return "not in it"
    return f"{PAPER[name][model]:.3f}" if model in PAPER.get(name, {}) else "?"


def table(results: list[dict[str, Any]], budget: int, columns: tuple[str, ...] = CELLS) -> str:
    """The Markdown table of MMER per environment (rows) and cell (columns: those of `columns`
    with results) at `budget`, with the paper's scores where known and each cell's median
    training time per run there; environments where none of them ran are left out."""
    results = [x for x in results if x["budget"] == budget and x["cell"] in columns]
    cells = [c for c in columns if any(x["cell"] == c for x in results)]
    lines = [
        "| env (Easy) | " + " | ".join(f"{c}: MMER ± std (seeds)" for c in cells)
        + " | paper MLP | paper GRU | paper LSTM | training per run, median: "
        + " / ".join(cells) + " |",
        "|---|" + "---|" * (len(cells) + 4),
    ]  # fmt: skip
    for name in ENVS:
        runs = [x for x in results if x["env"] == name]
        if not runs:
            continue
        mmers = {c: [x["mmer"] for x in runs if x["cell"] == c] for c in cells}
        row = [score(mmers[c]) if mmers[c] else "" for c in cells]
        paper = [paper_score(name, model) for model in ("mlp", "gru", "lstm")]
        seconds = [[x["train_seconds"] for x in runs if x["cell"] == c] for c in cells]
        times = " / ".join(f"{statistics.median(t):.0f}" if t else "-" for t in seconds)
        lines.append(f"| {name} | " + " | ".join(row + paper) + f" | {times} s |")
    return "\n".join(lines)


def variant_table(results: list[dict[str, Any]], budget: int) -> str | None:
    """The table of the variants' runs (`--layers`, `--prev-action`, `--hyperparams`; None if
    there are none) beside the LSTM's and their plain cells', on the environments where they
    ran."""
    variants = sorted({x["cell"] for x in results if x["budget"] == budget} - set(CELLS))
    if not variants:
        return None
    envs = {x["env"] for x in results if x["cell"] in variants and x["budget"] == budget}
    columns = ["lstm"]  # then each variant right after its plain cell
    for cell in CELLS:
        own = [s for s in variants if s.startswith(f"{cell}-")]
        columns += [cell, *own] if own else []
    return table([x for x in results if x["env"] in envs], budget, tuple(dict.fromkeys(columns)))


VARIANT_LINES = ("--", ":", "-.")
"""The line styles of a cell's variants in a panel, in turn."""


def base_cell(name: str) -> str:
    """The cell a label (`label`) is a variant of: `ffm` for `ffm-2layers-prevaction`."""
    return name.split("-")[0]


def line_styles(labels: list[str]) -> dict[str, tuple[str, str]]:
    """Each label's (colour, line style) in a panel: a cell solid in its own colour, its
    variants in the same colour, dashed, dotted, then dash-dotted."""
    styles, variants = {}, {cell: 0 for cell in CELLS}
    for name in labels:
        cell = base_cell(name)
        line = "-" if name == cell else VARIANT_LINES[variants[cell] % len(VARIANT_LINES)]
        styles[name] = (f"C{CELLS.index(cell)}", line)
        variants[cell] += name != cell
    return styles


def plot(results: list[dict[str, Any]], budget: int, path: Path) -> None:
    """One panel per environment: each cell's and variant's training return (last 100) against
    steps, one line per seed (`line_styles`)."""
    from agent.report.figures import check_figure_path, panel_grid, save_figure, style_panel

    check_figure_path(path)
    results = [x for x in results if x["budget"] == budget]
    names = [n for n in ENVS if any(x["env"] == n for x in results)]
    if not names:
        print(f"no results at {budget} steps to draw")
        return
    figure, axes = panel_grid(len(names), f"POPGym Easy at {budget // 1000}k steps, our defaults")
    for ax, name in zip(axes, names, strict=True):
        here = [x for x in results if x["env"] == name]
        labels = sorted({x["cell"] for x in here}, key=lambda c: (CELLS.index(base_cell(c)), c))
        for cell, (color, line) in line_styles(labels).items():
            for j, run in enumerate(x for x in here if x["cell"] == cell):
                steps, _, values = zip(*run["curve"], strict=True)
                ax.plot(steps, values, color=color, linestyle=line, linewidth=0.8,
                        label=None if j else cell)  # fmt: skip
        style_panel(ax, name, "environment steps", "training return (last 100)")
        ax.legend(fontsize=6)
    save_figure(figure, path)
    print(f"figure: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "popgym",
                        help="folder of the experiments")  # fmt: skip
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "popgym",
                        help="folder of results.jsonl")  # fmt: skip
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=ENVS, metavar="NAME")
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    parser.add_argument("--budget", type=int, default=1_000_000, help="steps per run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of lstm, gru and none")
    parser.add_argument("--new-cell-seeds", type=int, default=1, help="seeds of the others")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="the first seed of every experiment: `--first-seed 1 --seeds 2` adds "
                        "seeds 1 and 2 where seed 0 has run (in their own folders)")  # fmt: skip
    parser.add_argument("--layers", type=int, default=1,
                        help="stacked layers of each cell (tune.py's --n-lstm-layers): for a "
                        "cell whose one layer fails a task")  # fmt: skip
    parser.add_argument("--prev-action", action="store_true",
                        help="feed the previous action back as an input, as the paper did: for "
                        "the tasks popgym marks as needing it (the bandit, the card and board "
                        "games)")  # fmt: skip
    parser.add_argument("--hyperparams", nargs="+", default=[], metavar="NAME:VALUE",
                        help="change train.py's hyperparameters from the defaults, as rl-zoo's "
                        "flag does (ent_coef:0.03 net_arch:64,64); runs are labelled with "
                        "them")  # fmt: skip
    parser.add_argument("--table", action="store_true", help="run nothing, only report")
    parser.add_argument("--plot", type=Path, help="draw the learning curves to this file")
    parser.add_argument("--address",
                        help="join this running Ray cluster (tune.py's); its run folders must "
                        "be readable here")  # fmt: skip
    parser.add_argument("--max-concurrent", type=int,
                        help="trials at a time in each new experiment (tune.py's); resumed ones "
                        "keep theirs")  # fmt: skip
    args = parser.parse_args(argv)
    limits = (args.budget, args.seeds, args.new_cell_seeds, args.max_concurrent, args.layers)
    if min(x for x in limits if x is not None) <= 0:
        parser.error(
            "--budget, --seeds, --new-cell-seeds, --max-concurrent and --layers must be positive"
        )
    if args.layers > 1 and "none" in args.cells:
        parser.error("--layers stacks recurrent cells; `none` has none: leave it out of --cells")
    if args.first_seed < 0:
        parser.error(f"--first-seed must be 0 or more, got {args.first_seed}")
    try:
        params = hyperparams(args.hyperparams)
        for cell in args.cells:
            check_hyperparams(params, cell, args.layers)
    except ValueError as error:  # ConfigError too
        parser.error(str(error))
    args.results.mkdir(parents=True, exist_ok=True)
    if not args.table:
        args.out.mkdir(parents=True, exist_ok=True)
        ray_args = ["--address", args.address] if args.address else []
        limit = ["--max-concurrent", str(args.max_concurrent)] if args.max_concurrent else []
        for cell in args.cells:  # every env of a cell before the next cell: the LSTM's first
            for name in args.envs:
                seeds = args.seeds if cell in PAPER_CELLS else args.new_cell_seeds
                first = args.first_seed
                tag = label(cell, args.layers, args.prev_action, params)
                folder = experiment(args.out.resolve(), name, tag, args.budget, seeds, first)
                flags = tune_args(
                    name, cell, seeds, args.budget, first, args.layers, args.prev_action, params
                )
                try:
                    run_tune_experiment(folder, flags + limit, args.out / WALLS, ray_args)
                finally:  # what finished is kept, whatever stopped the rest
                    collect(folder, args.results, name, tag, args.budget)
    results = load_results(args.results)
    print(table(results, args.budget) if results else "no results yet")
    variants = variant_table(results, args.budget)
    if variants:
        print(f"\nVariants (--layers, --prev-action, --hyperparams):\n{variants}")
    if args.plot and results:
        plot(results, args.budget, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
