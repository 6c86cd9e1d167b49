"""What matplotlib can write: checked before any work, so a bad output name fails first."""

from __future__ import annotations

import textwrap
from pathlib import Path

TITLE_CHARS_PER_INCH = 12
"""How many characters of a figure title (at 10 points) fit in an inch of its width."""


def check_figure_path(path: str | Path) -> Path:
    """`path` as a Path if matplotlib can write a figure there (judged by its extension, as
    `savefig` does; no extension is refused, since `savefig` would quietly add `.png`); else
    ValueError naming the supported extensions. Needs matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    formats = sorted(FigureCanvasAgg.get_supported_filetypes())
    extension = path.suffix.lower().lstrip(".")
    if extension not in formats:
        found = f"matplotlib cannot write .{extension} files" if extension else "no extension"
        raise ValueError(
            f"cannot draw a figure to {path}: {found}; use one of "
            + ", ".join(f".{f}" for f in formats)
        )
    return path


def panel_grid(count: int, title: str, columns: int = 3, size: tuple[float, float] = (4.0, 2.8)):
    """A constrained-layout figure of `count` panels, `columns` to a row, the panels left over
    in the last row hidden, under `title`. Returns the figure and its `count` panels in order.
    Needs matplotlib."""
    from matplotlib.figure import Figure

    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    figure = Figure(figsize=(size[0] * columns, size[1] * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    # Wrapped to the figure's width: a one-panel figure would clip a long title at both ends.
    figure.suptitle(
        textwrap.fill(title, int(TITLE_CHARS_PER_INCH * size[0] * columns)), fontsize=10
    )
    return figure, list(axes[:count])


def style_panel(ax, title: str, xlabel: str, ylabel: str) -> None:
    """Small labels and a light grid: one panel of a `panel_grid`."""
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def legend_below(figure, handles, labels: list[str], fontsize: float = 8, columns: int = 2):
    """One legend under the panels of a constrained-layout `figure`, kept inside it: in
    `columns` columns when they fit its width, else in one, with the labels broken at spaces
    when a line is still wider than the figure; the figure grows by the legend's height, so
    the panels keep theirs. Returns the legend. Needs matplotlib.

    A legend placed `outside lower center` is given room below the panels, but none across:
    one wider than the figure was cut off at both edges."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(figure).get_renderer()
    room = 0.96 * figure.bbox.width
    columns, texts = max(1, min(len(labels), columns)), list(labels)
    while True:
        legend = figure.legend(
            handles, texts, loc="outside lower center", ncols=columns, fontsize=fontsize
        )
        extent = legend.get_window_extent(renderer)
        longest = max(len(line) for text in texts for line in text.splitlines())
        if extent.width <= room or (columns == 1 and longest <= 10):
            break
        legend.remove()
        if columns > 1:
            columns = 1
        else:
            chars = min(longest - 1, int(longest * room / extent.width))
            texts = [textwrap.fill(label, max(10, chars)) for label in labels]
    figure.set_figheight(figure.get_figheight() + extent.height / figure.dpi)
    return legend


def save_figure(figure, path: str | Path) -> Path:
    """Write `figure` to `path` (checked by `check_figure_path`), making its folder."""
    path = check_figure_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
