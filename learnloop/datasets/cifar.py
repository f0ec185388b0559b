"""CIFAR-10 as JPEG image folders, found locally and unpacked once."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from .sources import DataNotFoundError, cache_dir

__all__ = ["cifar10", "CIFAR_ZIP"]


CIFAR_ZIP = "cifar10-jpeg-q75.zip"


def _cifar_folder(folder: Path) -> bool:
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def _unpack(archive: Path, dest: Path) -> Path:
    """Unpack `archive` into `dest` all or nothing: into a temporary folder beside it, renamed
    into place at the end, so a half-unpacked folder never counts as present."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if name.startswith("/") or ".." in Path(name).parts:
                    raise ValueError(f"{archive}: refusing the entry {name!r}, which points outside the folder.")
            z.extractall(tmp)
        try:
            os.rename(tmp, dest)
        except OSError:  # another process unpacked it first
            if not _cifar_folder(dest):
                raise
    except zipfile.BadZipFile as e:
        raise ValueError(f"{archive} is not a readable zip archive ({e}); delete it and fetch it again.") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def cifar10(path: str | os.PathLike | None = None, verbose: bool = False) -> Path:
    """The folder of CIFAR-10 as JPEG images: `train/<class>/NNNN.jpg` (50,000) and
    `test/<class>/NNNN.jpg` (10,000).

    Looked for in `path`, then `$LEARNLOOP_DATA`, then the user cache: a folder holding train/
    and test/, or one named cifar10-jpeg holding them or the archive `cifar10-jpeg-q75.zip`,
    which is unpacked once into the cache (atomically). Nothing is downloaded.
    """
    roots = [Path(path).expanduser()] if path is not None else []
    if path is None and os.environ.get("LEARNLOOP_DATA"):
        roots.append(Path(os.environ["LEARNLOOP_DATA"]).expanduser())
    roots.append(cache_dir())
    if path is not None and not roots[0].exists():
        raise DataNotFoundError(f"{roots[0]} does not exist; point path/--data at the CIFAR-10 folder or at {CIFAR_ZIP}.")
    tried = []
    for root in roots:
        for folder in (root, root / "cifar10-jpeg"):
            tried.append(str(folder))
            if _cifar_folder(folder):
                return _say(folder, verbose)
            archive = folder if folder.suffix == ".zip" else folder / CIFAR_ZIP
            if archive.is_file():
                cached = cache_dir() / "cifar10-jpeg"
                if _cifar_folder(cached):
                    return _say(cached, verbose)
                if verbose:
                    print(f"learnloop: unpacking {archive} into {cached} (once)", file=sys.stderr)
                return _say(_unpack(archive, cached), verbose)
    raise DataNotFoundError("CIFAR-10 (JPEG folders) not found. Tried: " + "; ".join(tried) + ". Pass path=... or set LEARNLOOP_DATA.")


def _say(folder: Path, verbose: bool) -> Path:
    if verbose:
        print(f"learnloop: using CIFAR-10 images from {folder}", file=sys.stderr)
    return folder
