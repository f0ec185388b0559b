"""Finding files: `get_files` lists a folder tree fast, in a deterministic order."""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from typing import Iterable

__all__ = ["image_extensions", "get_files", "UnreadableImageError"]

# Every extension the platform's MIME table calls image/*, plus common ones it may lack.
image_extensions: frozenset[str] = frozenset(
    {ext for ext, kind in mimetypes.types_map.items() if kind.startswith("image/")} | {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"}
)


def _walk(folder: str, extensions: frozenset[str] | None, recurse: bool, seen: set[tuple[int, int]], out: list[Path]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (PermissionError, FileNotFoundError):
        return
    subdirs = []
    for e in entries:
        if e.name.startswith("."):
            continue  # hidden files and folders
        if e.is_dir():
            subdirs.append(e)
        elif e.is_file() and (extensions is None or os.path.splitext(e.name)[1].lower() in extensions):
            out.append(Path(e.path))
    if recurse:
        for d in subdirs:
            st = d.stat()  # follows symlinks: a folder reached twice (a link loop) is walked once
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                _walk(d.path, extensions, recurse, seen, out)


def get_files(path: str | os.PathLike, extensions: Iterable[str] | None = None, recurse: bool = True, include: Iterable[str] | None = None) -> list[Path]:
    """Files under `path` with one of `extensions` (case-insensitive, with or without the dot;
    None for all), in sorted order (folders, then names). Hidden files and folders are skipped,
    symlinked folders are followed once (no loops), and `include` limits the top-level folders.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder.")
    exts = None if extensions is None else frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
    st = path.stat()
    seen = {(st.st_dev, st.st_ino)}
    out: list[Path] = []
    if include is None:
        _walk(str(path), exts, recurse, seen, out)
        return out
    for name in sorted(include):
        sub = path / name
        if not sub.is_dir():
            raise FileNotFoundError(f"include names {name!r}, which is not a folder in {path}.")
        _walk(str(sub), exts, recurse, seen, out)
    return out


class UnreadableImageError(ValueError):
    """An image file Pillow cannot open or decode (truncated, empty, not an image)."""
