"""Where datasets live: the user cache, and the error when none of the places has one."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DataNotFoundError", "cache_dir"]


class DataNotFoundError(FileNotFoundError):
    """No source could provide the dataset; the message lists what was tried."""


def cache_dir() -> Path:
    """Where downloads go: $XDG_CACHE_HOME/learnloop, else ~/.cache/learnloop."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "learnloop"
