"""The two steps every plot in learnloop shares: a new figure, and saving it when asked.

Figures are made through pyplot, so `plt.show()` shows them, and a notebook draws each one
exactly once, wherever in the cell it was made. A figure saved to a file by a script (a
non-interactive backend such as Agg) is released from pyplot, so a run that plots every epoch
does not pile figures up; the returned Figure stays usable.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from .utils import writable_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["new_figure", "save_figure"]


@functools.cache
def _figure_class() -> type:
    from matplotlib.figure import Figure  # matplotlib loads only when someone plots

    class LearnloopFigure(Figure):
        """A Figure that a notebook shows once: displaying it (as a cell's value, or when the
        notebook draws the figures pyplot holds at the end of the cell) draws it as PNG and
        releases it from pyplot, so the other path does not draw it a second time."""

        def _ipython_display_(self) -> None:
            import io

            import matplotlib.pyplot as plt
            from IPython.display import Image, display

            buf = io.BytesIO()
            self.savefig(buf, format="png", dpi=100)
            display(Image(buf.getvalue()))
            plt.close(self)

    return LearnloopFigure


def new_figure(width: float, height: float) -> "Figure":
    """A figure with tight layout, registered with pyplot (see the module docstring)."""
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), layout="tight", FigureClass=_figure_class())


def save_figure(fig: "Figure", path: str | Path | None) -> "Figure":
    """Save `fig` as an image at `path` (format from the suffix) when a path is given; return it."""
    if path is not None:
        fig.savefig(writable_path(path), dpi=100)  # matplotlib's own error names neither the folder nor the cause
        import matplotlib
        import matplotlib.pyplot as plt

        if not matplotlib.is_interactive() and "agg" == matplotlib.get_backend().lower():
            plt.close(fig)
    return fig
