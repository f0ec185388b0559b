"""ProgressBar: a live bar per phase and a table row per epoch, in a terminal or a notebook."""

from __future__ import annotations

import math
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

    def before_fit(self, learn: BaseLearner) -> None:
        self._header_done = False

    def _open(self, learn: BaseLearner, what: str) -> None:
        if not self.bar:
            return
        from tqdm.auto import tqdm

        n_epochs = getattr(learn, "n_epochs", 0)
        desc = f"epoch {learn.epoch + 1}/{n_epochs} {what}" if learn.training or n_epochs else what
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
        if not self.table or recorder is None or not recorder.history:
            return
        row = recorder.history[-1]
        keys = list(row)
        widths = [max(len(k), 10) for k in keys]
        if not self._header_done:
            self._write("  ".join(k.rjust(w) for k, w in zip(keys, widths)))
            self._header_done = True
        self._write(format_row([row[k] for k in keys], widths))

    def _write(self, line: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(line)
