"""Plot TensorBoard scalars of one or more `train.py` runs against environment steps.

Reads the event files under each run's `tb/` folder (or the folder given) and draws the chosen
tags, one panel per tag, one line per run. Wall-clock minutes since the run's start are given on
a second x axis when one run is plotted.

    python benchmarks/plot_run.py runs/tmaze1000 --out results/tmaze1000_curve.png
    python benchmarks/plot_run.py runs/a runs/b --tags eval/success_rate rollout/ep_rew_mean
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_TAGS = ("eval/success_rate", "rollout/success_rate")


def read_scalars(run: Path, tag: str) -> tuple[list[int], list[float], list[float]]:
    """(steps, values, wall times in seconds since the first event) of `tag` in `run`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = run / "tb" if (run / "tb").is_dir() else run
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags()["scalars"]:
        raise SystemExit(f"error: {folder} has no scalar {tag!r}")
    events = acc.Scalars(tag)
    start = events[0].wall_time if events else 0.0
    return (
        [e.step for e in events],
        [e.value for e in events],
        [e.wall_time - start for e in events],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (or tb folders)")
    parser.add_argument("--tags", nargs="+", default=list(DEFAULT_TAGS))
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    for run in args.runs:
        if not run.is_dir():
            raise SystemExit(f"error: no run folder {run}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(args.tags), 1, figsize=(6.4, 2.6 * len(args.tags)), squeeze=False)
    for ax, tag in zip(axes[:, 0], args.tags, strict=True):
        for run in args.runs:
            steps, values, wall = read_scalars(run, tag)
            ax.plot(steps, values, label=run.name)
            if len(args.runs) == 1 and steps:
                top = ax.secondary_xaxis(
                    "top",
                    functions=(
                        lambda s, st=steps, w=wall: _interp(s, st, w) / 60.0,
                        lambda m, st=steps, w=wall: _interp(m * 60.0, w, st),
                    ),
                )
                top.set_xlabel("wall-clock minutes", fontsize=8)
        ax.set_ylabel(tag, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("environment steps")
    if len(args.runs) > 1:
        axes[0, 0].legend(fontsize=8)
    if args.title:
        fig.suptitle(args.title, fontsize=9)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    plt.close(fig)
    print(f"plot: {args.out}")


def _interp(x, xs, ys):
    import numpy as np

    return np.interp(x, xs, ys)


if __name__ == "__main__":
    main()
