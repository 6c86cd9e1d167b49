"""What matplotlib can write: checked before any work, so a bad output name fails first."""

from __future__ import annotations

from pathlib import Path


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
