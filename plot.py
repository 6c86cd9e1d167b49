"""Plot the learning curves of run folders:
`python plot.py RUN_DIR [RUN_DIR ...] --out curves.png [--tag TAG ...]`.

One panel per TensorBoard tag (default: the training success rate where logged, else the return,
and the evaluation curve when the runs evaluated), one line per configuration. Each line is
labelled by the settings that differ among the runs; runs that differ only by seed are drawn as
one line, their mean, with the min-max range as a band. The work is done in `agent.report.curves`.

Exit codes: 0 done, 2 bad input (missing folder, no TensorBoard events, unknown tag, output
format matplotlib cannot write).
"""

from __future__ import annotations

import importlib.util
import sys

from agent.run.cli import Parser, UsageError, one_line, run_script


def plot_parser() -> Parser:
    """The parser of `plot.py`."""
    parser = Parser(
        prog="plot.py",
        description="Plot the learning curves of run folders, seeds grouped, labelled by what "
        "differs.",
    )
    parser.add_argument(
        "runs", nargs="+", metavar="RUN_DIR", help="run folders (a tb/ folder of events inside)"
    )
    parser.add_argument(
        "--out", required=True, metavar="FILE", help="figure to write (.png, .pdf, .svg, ...)"
    )
    parser.add_argument(
        "--tag",
        dest="tags",
        nargs="+",
        action="extend",
        metavar="TAG",
        help="scalars to plot, one panel each (default: rollout/success_rate, else "
        "rollout/ep_rew_mean, and eval/success_rate, else eval/mean_reward, where logged)",
    )
    parser.add_argument("--title", default="", help="figure title (default: the shared env)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Check every input, read the runs, group and label them, draw."""
    args = plot_parser().parse_args(argv)
    try:
        if importlib.util.find_spec("matplotlib") is None:
            raise UsageError("plot.py needs matplotlib: pip install matplotlib")
        from agent.report import curves
        from agent.report.figures import check_figure_path

        out = check_figure_path(args.out)
        runs = [curves.read_run(path) for path in args.runs]
        tags = args.tags or curves.default_tags(runs)
        curves.check_tags(runs, tags)
    except ValueError as e:  # RunFolderError, UsageError
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    groups = curves.group_runs(runs)
    curves.plot_curves(groups, tags, out, title=args.title)
    for group in groups:
        print(f"  {group.label}: {', '.join(str(run.path) for run in group.runs)}")
    print(f"plot: {out}")
    return 0


if __name__ == "__main__":
    run_script(main)
