"""ProgressBar: a live bar per phase and a table row per epoch, in a terminal or a notebook."""

from __future__ import annotations

import html
import math
import sys
import time
from typing import Any

from ..events import Callback
from ..loop import BaseLearner

__all__ = ["ProgressBar", "format_row"]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.4f}" if abs(v) < 1e4 else f"{v:.3g}"
    return str(v)


def format_row(values: list[Any], widths: list[int]) -> str:
    return "  ".join(_fmt(v).rjust(w) for v, w in zip(values, widths))


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where HTML output renders)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


class _HTMLBar:
    """A progress bar drawn as HTML in a notebook (no widget library needed), redrawn at most
    five times a second; cleared when closed, like the terminal bar."""

    def __init__(self, total: int, desc: str):
        from IPython.display import HTML, display

        self.total, self.desc, self.n, self.postfix = total, desc, 0, ""
        self.start = self.last = time.perf_counter()
        self._HTML = HTML
        self.handle = display(HTML(self._html()), display_id=True)

    def _html(self) -> str:
        elapsed = time.perf_counter() - self.start
        return (f'<div><progress value="{self.n}" max="{max(self.total, 1)}" style="width:300px;vertical-align:middle"></progress> '
                f"{html.escape(self.desc)} {self.n}/{self.total} [{elapsed:.0f} s] {html.escape(self.postfix)}</div>")  # fmt: skip

    def update(self, k: int) -> bool:
        self.n += k
        now = time.perf_counter()
        if now - self.last < 0.2 and self.n < self.total:
            return False
        self.last = now
        self.handle.update(self._HTML(self._html()))
        return True

    def set_postfix_str(self, s: str, refresh: bool = False) -> None:
        self.postfix = s

    def close(self) -> None:
        self.handle.update(self._HTML(""))


class ProgressBar(Callback):
    """Shows a tqdm bar while a phase runs (with the running training loss) and prints one table
    row per epoch from the Recorder's history.

    Args:
        bar: show the live bar (it hides itself where the output is not a terminal or notebook).
        table: print the per-epoch table.
    """

    order = 90  # after the Recorder has written the epoch's row
    rank_zero_only = True
    run_after = ("Recorder",)

    def __init__(self, bar: bool = True, table: bool = True):
        self.bar, self.table = bar, table
        self._pbar: Any = None
        self._header_done, self._rows, self._table = False, [], None

    def before_fit(self, learn: BaseLearner) -> None:
        self._header_done, self._rows, self._table = False, [], None

    def _open(self, learn: BaseLearner, what: str) -> None:
        if not self.bar:
            return
        n_epochs = getattr(learn, "n_epochs", 0)
        desc = f"epoch {learn.epoch + 1}/{n_epochs} {what}" if learn.training or n_epochs else what
        if in_notebook():
            self._pbar = _HTMLBar(len(learn.dl), desc)
            return
        from tqdm.auto import tqdm

        # disable=None: no bar when stderr is not a terminal (logs, CI), so they are not flooded.
        self._pbar = tqdm(total=len(learn.dl), desc=desc, leave=False, disable=None, dynamic_ncols=True)
        if self._pbar.disable:  # nothing will be drawn: skip the per-batch update
            self._pbar = None

    def before_train(self, learn: BaseLearner) -> None:
        self._open(learn, "train")

    def before_validate(self, learn: BaseLearner) -> None:
        self._open(learn, "valid")

    def after_batch(self, learn: BaseLearner) -> None:
        if self._pbar is not None and self._pbar.update(1) and learn.training and learn.loss is not None:
            # The bar just redrew: read the loss back now (a few times a second, not per batch).
            self._pbar.set_postfix_str(f"loss {learn.loss.item():.4f}", refresh=False)

    def _close(self, learn: BaseLearner) -> None:
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None

    after_train = _close
    after_validate = _close

    def after_fit(self, learn: BaseLearner) -> None:
        self._close(learn)

    def after_epoch(self, learn: BaseLearner) -> None:
        recorder = getattr(learn, "recorder", None)
        row = recorder.epoch_row(learn) if self.table and recorder is not None else None
        if row is None:
            return
        keys = list(row)
        if in_notebook():  # one HTML table, redrawn with each new row
            from IPython.display import HTML, display

            self._rows.append(row)
            head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
            body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(k, ''))}</td>" for k in keys) + "</tr>" for r in self._rows)
            table = HTML(f'<table class="learnloop-history"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
            if self._table is None:
                self._table = display(table, display_id=True)
            else:
                self._table.update(table)
            return
        widths = [max(len(k), 10) for k in keys]
        if not self._header_done:
            self._write("  ".join(k.rjust(w) for k, w in zip(keys, widths)))
            self._header_done = True
        self._write(format_row([row[k] for k in keys], widths))

    def _write(self, line: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(line)
