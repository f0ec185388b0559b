"""The lesson's data blocks: a list of items, split in two, labelled (with processors fitted on
the training side only), each item transformed in order.

    il = ImageList.from_files(path)                       # get the files
    sd = SplitData.split_by_func(il, grandparent_splitter())   # split them
    ll = label_by_func(sd, parent_labeler)                # label them (vocabulary from train)
    dls = ll.to_dataloaders(batch_size=64, size=32)       # transform, batch: DataLoaders
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from PIL import Image, UnidentifiedImageError

from .files import UnreadableImageError, get_files, image_extensions
from .loaders import to_dataloaders
from .transforms import compose

__all__ = [
    "ItemList",
    "ImageList",
    "SplitData",
    "LabeledData",
    "CategoryProcessor",
    "grandparent_splitter",
    "random_splitter",
    "func_splitter",
    "parent_labeler",
    "regex_labeler",
    "label_by_func",
    "compose",
]


class ItemList:
    """Items (paths, labels, ...) with transforms: `il[i]` is item i transformed; `il[2:5]`,
    `il[[0, 3]]` and `il[mask]` give lists of transformed items; `new(items)` a list of the same
    kind over other items."""

    def __init__(self, items: Iterable[Any], path: str | Path = ".", tfms: Sequence[Callable] | None = None):
        self.items, self.path, self.tfms = list(items), Path(path), list(tfms or [])

    def new(self, items: Iterable[Any], cls: type | None = None) -> "ItemList":
        return (cls or type(self))(items, self.path, tfms=self.tfms)

    def get(self, item: Any) -> Any:
        """What an item is before transforms (override: open a file, look up a label, ...)."""
        return item

    def _get(self, item: Any) -> Any:
        return compose(self.get(item), self.tfms)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, int) or (isinstance(idx, torch.Tensor) and idx.ndim == 0 and idx.dtype != torch.bool):
            return self._get(self.items[int(idx)])
        if isinstance(idx, slice):
            return [self._get(o) for o in self.items[idx]]
        idx = list(idx)
        if len(idx) == len(self.items) and all(type(b).__name__ in ("bool", "bool_") or getattr(b, "dtype", None) == torch.bool for b in idx):
            return [self._get(o) for o, keep in zip(self.items, idx) if keep]  # a boolean mask
        return [self._get(self.items[int(i)]) for i in idx]

    def __iter__(self):
        return (self._get(o) for o in self.items)

    def __repr__(self) -> str:
        shown = ", ".join(repr(str(o)) if isinstance(o, Path) else repr(o) for o in self.items[:5])
        more = f", ... ({len(self.items)} items)" if len(self.items) > 5 else ""
        return f"{type(self).__name__}([{shown}{more}], path={str(self.path)!r})"


class ImageList(ItemList):
    """Image files; `get` opens one with Pillow and returns it as RGB whatever the file holds
    (grayscale, palette, RGBA, CMYK, 16-bit), or raises an error naming the file."""

    draft: tuple[int, int] | None = None  # set by to_dataloaders when images are shrunk: JPEG decodes at reduced size

    @classmethod
    def from_files(cls, path: str | Path, extensions: Iterable[str] | None = image_extensions, recurse: bool = True,
                   include: Iterable[str] | None = None, **kwargs: Any) -> "ImageList":  # fmt: skip
        files = get_files(path, extensions, recurse, include)
        if not files:
            raise FileNotFoundError(f"No image files in {path} (extensions: {sorted(extensions or [])[:8]}...).")
        return cls(files, path, **kwargs)

    def get(self, item: Any) -> Image.Image:
        try:
            img = Image.open(item)
            if self.draft is not None:
                img.draft("RGB", self.draft)  # JPEG: decode straight at (at least) the target size
            if img.mode == "I;16" or img.mode == "I":  # 16/32-bit grayscale: scale to 8 bits before RGB
                img = img.point(lambda v: v / 256).convert("L") if img.mode == "I;16" else img.convert("L")
            return img.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise UnreadableImageError(f"Cannot read image {item}: {e}") from e


# ---- splitting ----------------------------------------------------------------------------


def grandparent_splitter(valid_name: str | Sequence[str] = ("valid", "val", "test"), train_name: str = "train") -> Callable[[Path], bool | None]:
    """Split by the folder two levels up: train/<class>/x.jpg -> False, valid/<class>/x.jpg (or
    val/, test/) -> True; files elsewhere -> None (left out)."""
    valid = {valid_name} if isinstance(valid_name, str) else set(valid_name)

    def split(fn: Path) -> bool | None:
        gp = Path(fn).parent.parent.name
        return True if gp in valid else False if gp == train_name else None

    return split


def random_splitter(valid_pct: float = 0.2, seed: int = 42) -> Callable[[Any], bool]:
    """A random split that is the same every time for the same files: each item goes to valid
    when a hash of (seed, its name) falls below `valid_pct`, whatever order the items come in."""
    if not 0 < valid_pct < 1:
        raise ValueError(f"valid_pct must be between 0 and 1, got {valid_pct!r}.")

    def split(o: Any) -> bool:
        name = "/".join(Path(o).parts[-3:]) if isinstance(o, (str, Path)) else repr(o)
        return zlib.crc32(f"{seed}:{name}".encode()) / 2**32 < valid_pct

    return split


def _called(f: Any, what: str) -> None:
    """Passing one of the factories below uncalled (grandparent_splitter, not grandparent_splitter()) is an easy slip."""
    examples = {grandparent_splitter: "grandparent_splitter()", random_splitter: "random_splitter(0.2)",
                regex_labeler: r"regex_labeler(r'^(\w+)_\d+')"}  # fmt: skip
    if f in examples:
        raise TypeError(f"{f.__name__} makes a function: pass what it returns as the {what}, e.g. {examples[f]}.")
    if not callable(f):
        raise TypeError(f"A {what} is a function of an item, got {f!r}.")


def func_splitter(f: Callable[[Any], bool | None]) -> Callable[[Any], bool | None]:
    """Any function of an item: True for valid, False for train, None to leave it out."""
    return f


class SplitData:
    """A training and a validation `ItemList` (or `LabeledData`)."""

    def __init__(self, train: Any, valid: Any):
        self.train, self.valid = train, valid

    @classmethod
    def split_by_func(cls, il: ItemList, f: Callable[[Any], bool | None]) -> "SplitData":
        if not isinstance(il, ItemList):
            raise TypeError(f"split_by_func splits an ItemList (e.g. ImageList.from_files(path)), got {type(il).__name__}.")
        _called(f, "splitter")
        sides = [f(o) for o in il.items]
        odd = next((i for i, s in enumerate(sides) if s not in (True, False, None)), None)
        if odd is not None:
            raise TypeError(f"A splitter returns True (valid), False (train) or None (left out); it returned {sides[odd]!r} for {il.items[odd]}.")
        sides = [None if s is None else bool(s) for s in sides]  # numpy's bools and 0/1 count too
        train, valid = [o for o, s in zip(il.items, sides) if s is False], [o for o, s in zip(il.items, sides) if s is True]
        if not train or not valid:
            where = "validation" if not valid else "training"
            raise ValueError(
                f"The splitter sent no file to the {where} side ({len(train)} train, {len(valid)} valid, "
                f"{sides.count(None)} left out of {len(il)}); check the folder layout or use random_splitter()."
            )
        return cls(il.new(train), il.new(valid))

    def to_dataloaders(self, batch_size: int = 64, **kwargs: Any) -> Any:
        """`DataLoaders` over the two labelled sides: see `learnloop.vision.to_dataloaders`."""
        return to_dataloaders(self, batch_size, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}\nTrain: {self.train}\nValid: {self.valid}"


# ---- labelling ----------------------------------------------------------------------------


def parent_labeler(fn: Path) -> str:
    """The name of the folder a file is in: train/dog/1.jpg -> 'dog'."""
    return Path(fn).parent.name


def regex_labeler(pattern: str) -> Callable[[Path], str]:
    """The first group of `pattern` matched against the file name, e.g. r'^(.+)_\\d+\\.jpg$'."""
    rx = re.compile(pattern)

    def label(fn: Path) -> str:
        m = rx.search(Path(fn).name)
        if m is None:
            raise ValueError(f"regex_labeler: {pattern!r} does not match {Path(fn).name!r}.")
        return m.group(1) if m.groups() else m.group(0)

    return label


class CategoryProcessor:
    """Labels -> integer classes, with the vocabulary built on the training set only (sorted,
    so the same files always give the same classes): `vocab`, `otoi`, `process`, `deprocess`."""

    def __init__(self) -> None:
        self.vocab: list[Any] | None = None

    def __call__(self, items: Sequence[Any]) -> list[int]:
        if self.vocab is None:  # the first call, on the training labels, fixes the vocabulary
            self.vocab = sorted(set(items))
            self.otoi = {v: i for i, v in enumerate(self.vocab)}
        return self.process(items)

    def process(self, items: Sequence[Any]) -> list[int]:
        unknown = sorted({o for o in items if o not in self.otoi}, key=str)
        if unknown:
            raise ValueError(f"Label(s) {unknown[:5]} are not among the training classes {self.vocab[:10]}; every validation class must appear in training.")
        return [self.otoi[o] for o in items]

    def deprocess(self, idxs: Iterable[int]) -> list[Any]:
        return [self.vocab[int(i)] for i in idxs]


class LabeledData:
    """Inputs `x` (an ItemList) and processed labels `y`; `ld[i]` is (transformed x, class)."""

    def __init__(self, x: ItemList, y: list[int], proc_y: CategoryProcessor):
        self.x, self.y, self.proc_y = x, torch.tensor(y, dtype=torch.long), proc_y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[Any, torch.Tensor]:
        return self.x[i], self.y[i]

    def x_obj(self, i: int) -> Any:
        """Item i as it was before transforms (e.g. the PIL image)."""
        return self.x.get(self.x.items[i])

    def y_obj(self, i: int) -> Any:
        """Item i's label as a name."""
        return self.proc_y.deprocess([self.y[i]])[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(x={self.x!r}, y: {len(self.y)} labels in {len(self.proc_y.vocab or [])} classes)"


def _labels(items: Sequence[Any], f: Callable[[Any], Any]) -> list[Any]:
    out = []
    for o in items:
        try:
            lab = f(o)
        except Exception as e:
            raise ValueError(f"The label function failed on {o}: {e}") from e
        if lab is None:
            raise ValueError(f"The label function returned None for {o}.")
        out.append(lab)
    return out


def label_by_func(sd: SplitData, f: Callable[[Any], Any], proc_y: CategoryProcessor | None = None) -> SplitData:
    """Label both sides of `sd` with `f`; the processor is fitted on the training labels and
    shared with validation. Returns a SplitData of two `LabeledData`."""
    if not isinstance(sd, SplitData):
        raise TypeError(f"label_by_func labels a SplitData; split first: SplitData.split_by_func(il, grandparent_splitter()), got {type(sd).__name__}.")
    _called(f, "label function")
    proc_y = proc_y or CategoryProcessor()
    train = LabeledData(sd.train, proc_y(_labels(sd.train.items, f)), proc_y)
    valid = LabeledData(sd.valid, proc_y.process(_labels(sd.valid.items, f)), proc_y)
    return type(sd)(train, valid)
