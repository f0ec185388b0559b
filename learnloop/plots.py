"""The two steps every plot in learnloop shares: a new figure, and saving it when asked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["new_figure", "save_figure"]


def new_figure(width: float, height: float) -> "Figure":
    """A figure with tight layout, made without pyplot so plotting never needs a display."""
    from matplotlib.figure import Figure  # matplotlib loads only when someone plots

    return Figure(figsize=(width, height), layout="tight")


def save_figure(fig: "Figure", path: str | Path | None) -> "Figure":
    """Save `fig` as an image at `path` (format from the suffix) when a path is given; return it."""
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
