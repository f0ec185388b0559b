"""learnloop's file format: tensors in safetensors, everything else as JSON in the same file's
header, written atomically. Reading never unpickles and never runs code from the file.

A state is any tree of dicts, lists, tuples, numbers, strings, None, numpy arrays and torch
tensors (a model's, an optimizer's or a callback's `state_dict`). `write_state` puts each tensor
in the safetensors body under a generated key and the tree, with the tensors replaced by
references, as JSON under the header key `learnloop`; `read_state` reverses it.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .utils import writable_path

__all__ = ["FORMAT_VERSION", "CheckpointError", "write_state", "read_state", "atomic_write"]

FORMAT_VERSION = 1
_MAGIC = "learnloop"


class CheckpointError(ValueError):
    """A file that is not a readable learnloop file of the expected kind."""


# ---- atomic writes ------------------------------------------------------------------------------


def atomic_write(path: str | Path, write: Callable[[Any], None]) -> Path:
    """Write a file so that it is either complete or absent: `write(f)` fills a temporary file
    beside `path`, which is flushed, fsynced and renamed over `path`. On any failure the
    temporary file is removed and `path` keeps its old content; a full disk says so."""
    path = writable_path(path)
    if path.is_dir():
        raise IsADirectoryError(f"Cannot write {path}: it is a folder; name a file, e.g. {path / 'model.safetensors'}.")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"The disk is full: could not write {path} (nothing partial was left behind).") from e
        if isinstance(e, PermissionError):
            raise PermissionError(f"Cannot write {path}: the folder {path.parent} is not writable.") from e
        raise
    _fsync_dir(path.parent)  # make the rename itself durable
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- the tree <-> JSON + tensors ----------------------------------------------------------------


class _Encoder:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self._keys: dict[int, str] = {}  # id(tensor) -> key: a tensor met twice (tied weights) is stored once
        self._storages: set[tuple[int, int]] = set()

    def tensor(self, t: torch.Tensor) -> dict:
        key = self._keys.get(id(t))
        if key is None:
            key = self._keys[id(t)] = f"t{len(self._keys)}"
            t = t.detach().cpu().contiguous()
            storage = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
            if storage in self._storages or t.untyped_storage().nbytes() != t.numel() * t.element_size():
                t = t.clone()  # safetensors stores each tensor's own bytes: no views of shared storage
            self._storages.add((t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()))
            self.tensors[key] = t
        return {"@tensor": key}

    def __call__(self, obj: Any, where: str) -> Any:
        if isinstance(obj, torch.Tensor):
            return self.tensor(obj)
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return {"@ndarray": obj.tolist(), "dtype": str(obj.dtype)}
        if isinstance(obj, tuple):
            return {"@tuple": [self(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [self(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, dict):
            if all(isinstance(k, str) and not k.startswith("@") for k in obj):
                return {k: self(v, f"{where}.{k}") for k, v in obj.items()}
            return {"@items": [[self(k, where), self(v, f"{where}[{k!r}]")] for k, v in obj.items()]}
        raise TypeError(
            f"Cannot save {where}: a {type(obj).__name__} is not a tensor, number, string, list, tuple or dict. "
            "A callback's state_dict() must return only those (learnloop never pickles)."
        )


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "@tensor" in obj:
        return tensors[obj["@tensor"]]
    if "@tuple" in obj:
        return tuple(_decode(v, tensors) for v in obj["@tuple"])
    if "@ndarray" in obj:
        return np.array(obj["@ndarray"], dtype=obj["dtype"])
    if "@items" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["@items"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def write_state(path: str | Path, state: dict[str, Any], kind: str) -> Path:
    """Write `state` to one safetensors file at `path`, atomically; `kind` names what it is
    (e.g. 'checkpoint', 'model', 'export') and is checked when reading."""
    from safetensors.torch import save

    encode = _Encoder()
    tree = encode(state, kind)
    header = {"format": _MAGIC, "kind": kind, "format_version": str(FORMAT_VERSION), "state": json.dumps(tree)}
    data = save(encode.tensors, metadata=header)
    return atomic_write(path, lambda f: f.write(data))


def _sniff(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:2] == b"PK":
        return " It is a zip archive: a file from torch.save? learnloop does not load those, as unpickling can run code."
    if head[:1] == b"\x80":
        return " It looks like a Python pickle, which learnloop never loads (unpickling can run code)."
    return ""


def read_state(path: str | Path, kind: str) -> dict[str, Any]:
    """Read a file written by `write_state` with the same `kind`; anything else is refused with
    a `CheckpointError` that says what the file is and what was expected."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give the path of a learnloop {kind} file inside it.")
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {path}.")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != _MAGIC:
                raise CheckpointError(f"{path} is a safetensors file but not one written by learnloop (no learnloop header).")
            # Copies, not views of the mapped file: the file may be replaced or deleted (keep_last) later.
            tensors = {k: f.get_tensor(k).clone() for k in f.keys()}
    except SafetensorError as e:
        raise CheckpointError(f"{path} is not a learnloop {kind} file, or it is truncated or corrupt ({e}).{_sniff(path)}") from e
    if meta.get("kind") != kind:
        article = "an" if kind[0] in "aeiou" else "a"
        raise CheckpointError(f"{path} is a learnloop {meta.get('kind')!r} file, not {article} {kind}.")
    version = int(meta.get("format_version", "0"))
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses format version {version}, newer than this learnloop understands ({FORMAT_VERSION}); upgrade learnloop to read it."
        )
    try:
        tree = json.loads(meta["state"])
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: the learnloop header is damaged ({e}).") from e
    return _decode(tree, tensors)
