"""Data blocks on folders of images the tests write with Pillow, and on the real CIFAR-10 JPEGs."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import learnloop as ll
from learnloop.datasets import cifar10
from learnloop.layers import cnn_layers
from learnloop.vision import (
    CategoryProcessor,
    ImageList,
    ItemList,
    ResizeFixed,
    SplitData,
    get_files,
    grandparent_splitter,
    image_extensions,
    label_by_func,
    parent_labeler,
    random_splitter,
    regex_labeler,
    show_batch,
    to_byte_tensor,
    to_float_tensor,
)

from .conftest import SHARED


def _img(path: Path, mode: str = "RGB", size=(12, 10), color=(200, 30, 60)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        Image.fromarray(np.full(size[::-1], 40000, dtype=np.uint16)).save(path)
    else:
        Image.new("RGB", size, color).convert(mode).save(path)
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    """train/{cat,dog} and valid/{cat,dog}: JPEG, PNG, grayscale, RGBA, palette, CMYK, 16-bit."""
    root = tmp_path / "pets"
    for split, n in (("train", 6), ("valid", 2)):
        for cls, color in (("cat", (250, 10, 10)), ("dog", (10, 10, 250))):
            for i in range(n):
                ext = ".jpg" if i % 2 else ".PNG"
                _img(root / split / cls / f"{cls}_{i}{ext}", color=color)
    _img(root / "train" / "cat" / "gray.png", "L")
    _img(root / "train" / "cat" / "rgba.png", "RGBA")
    _img(root / "train" / "dog" / "palette.png", "P")
    _img(root / "train" / "dog" / "cmyk.jpg", "CMYK")
    _img(root / "train" / "dog" / "deep.png", "I;16")
    (root / "train" / "dog" / "notes.txt").write_text("not an image")
    _img(root / "train" / ".hidden" / "x.png")
    _img(root / "train" / "cat" / ".secret.png")
    return root


def test_get_files_is_sorted_case_insensitive_and_skips_hidden(folder):
    files = get_files(folder, image_extensions)
    assert files == get_files(folder, image_extensions)  # deterministic
    for parent in {p.parent for p in files}:  # each folder's files in name order
        names = [p.name for p in files if p.parent == parent]
        assert names == sorted(names)
    assert [p.parts[-3] for p in files] == sorted(p.parts[-3] for p in files)  # train before valid
    assert len(files) == 6 * 2 + 2 * 2 + 5 and not any(p.name.startswith(".") or ".hidden" in p.parts for p in files)
    assert any(p.suffix == ".PNG" for p in files) and not any(p.suffix == ".txt" for p in files)
    assert len(get_files(folder, [".txt"])) == 1 and len(get_files(folder, ["JPG"])) == sum(p.suffix == ".jpg" for p in files)
    assert {p.parts[-3] for p in get_files(folder, image_extensions, include=["valid"])} == {"valid"}
    assert get_files(folder / "train" / "cat", image_extensions, recurse=False)


def test_symlink_loops_end(folder):
    os.symlink(folder, folder / "train" / "cat" / "loop")
    files = get_files(folder, image_extensions)
    assert len(files) == 21  # the linked folder is the root itself: walked once


def test_image_list_opens_every_kind_as_rgb_and_names_corrupt_files(folder):
    il = ImageList.from_files(folder)
    for img in il:
        assert img.mode == "RGB"
    deep = il[[str(p).endswith("deep.png") for p in il.items].index(True)]
    assert deep.getpixel((0, 0)) == (156, 156, 156)  # 40000 / 256
    assert len(il[2:5]) == 3 and len(il[[0, 3]]) == 2 and len(il[[i % 2 == 0 for i in range(len(il))]]) == 11
    assert "ImageList([" in repr(il) and "(21 items)" in repr(il)
    bad = folder / "train" / "cat" / "broken.jpg"
    bad.write_bytes(_img(folder / "tmp.jpg").read_bytes()[:100])
    with pytest.raises(ValueError, match="Cannot read image .*broken.jpg"):
        ImageList([bad]).get(bad).load()


def test_split_and_label_with_train_only_vocabulary(folder):
    il = ImageList.from_files(folder)
    sd = SplitData.split_by_func(il, grandparent_splitter(valid_name="valid"))
    assert len(sd.train) == 17 and len(sd.valid) == 4
    lsd = label_by_func(sd, parent_labeler)
    assert lsd.train.proc_y.vocab == ["cat", "dog"] and lsd.valid.proc_y is lsd.train.proc_y
    assert lsd.valid.y_obj(0) == "cat" and lsd.valid.x_obj(0).mode == "RGB"
    rx = label_by_func(sd, regex_labeler(r"^([a-z]+)"))
    assert set(rx.train.proc_y.vocab) >= {"cat", "dog"}
    # the same random split every time, whatever the order of the files
    split = random_splitter(0.3, seed=1)
    assert [split(p) for p in il.items] == [split(p) for p in il.items] and any(split(p) for p in il.items)


def test_bad_splits_and_labels_are_named(folder):
    il = ImageList.from_files(folder)
    with pytest.raises(ValueError, match="sent no file to the validation side"):
        SplitData.split_by_func(il, lambda p: False)
    sd = SplitData.split_by_func(il, grandparent_splitter(valid_name="valid"))
    (folder / "valid" / "bird").mkdir()
    sd.valid.items.append(_img(folder / "valid" / "bird" / "b.png"))
    with pytest.raises(ValueError, match=r"\['bird'\] are not among the training classes"):
        label_by_func(sd, parent_labeler)
    with pytest.raises(ValueError, match="returned None"):
        label_by_func(sd, lambda p: None)
    with pytest.raises(FileNotFoundError, match="No image files"):
        ImageList.from_files(folder / "train" / "dog", extensions=[".gif"])
    proc = CategoryProcessor()
    assert proc(["b", "a", "b"]) == [1, 0, 1] and proc.deprocess([0, 1]) == ["a", "b"]


def test_the_data_block_steps_in_the_wrong_order_or_uncalled_are_named(folder):
    # The lesson's data blocks: files -> split -> label -> loaders. Each slip says which step is missing.
    il = ImageList.from_files(folder)
    with pytest.raises(TypeError, match=r"grandparent_splitter makes a function: pass what it returns as the splitter, e\.g\. grandparent_splitter\(\)"):
        SplitData.split_by_func(il, grandparent_splitter)
    with pytest.raises(TypeError, match=r"returns True \(valid\), False \(train\) or None \(left out\); it returned 'train' for .*cat_0"):
        SplitData.split_by_func(il, lambda p: p.parent.parent.name)
    with pytest.raises(TypeError, match="split_by_func splits an ItemList"):
        SplitData.split_by_func(list(il.items), grandparent_splitter(valid_name="valid"))
    with pytest.raises(TypeError, match=r"label_by_func labels a SplitData; split first"):
        label_by_func(il, parent_labeler)
    sd = SplitData.split_by_func(il, lambda p: int(p.parent.parent.name == "valid"))  # 0/1 split like False/True
    assert (len(sd.train), len(sd.valid)) == (17, 4)
    with pytest.raises(TypeError, match=r"regex_labeler makes a function: pass what it returns as the label function"):
        label_by_func(sd, regex_labeler)
    with pytest.raises(TypeError, match=r"needs labelled split data, got SplitData of unlabelled items: label it first"):
        sd.to_dataloaders(batch_size=2)


def test_item_transforms_in_order():
    img = Image.new("RGB", (7, 5), (255, 0, 0))
    x = ItemList([img], tfms=[to_float_tensor, ResizeFixed(4), to_byte_tensor])[0]
    assert x.shape == (3, 4, 4) and x.dtype == torch.float32 and x[0].max() == 1.0 and x[1].max() == 0.0


def test_to_dataloaders_batches_resumes_and_trains(folder, tmp_path):
    il = ImageList.from_files(folder)
    lsd = label_by_func(SplitData.split_by_func(il, grandparent_splitter(valid_name="valid")), parent_labeler)
    dls = lsd.to_dataloaders(batch_size=4, size=8, num_workers=0, seed=0)
    xb, yb = dls.train.one_batch()
    assert xb.shape == (4, 3, 8, 8) and xb.dtype == torch.uint8 and yb.dtype == torch.long
    assert dls.c_in == 3 and dls.c_out == 2 and dls.vocab == ["cat", "dog"] and len(dls.meta["mean"]) == 3
    # resumable like the tensor loaders: the state after 2 batches gives the same next batches
    it = iter(dls.train)
    next(it), next(it)
    state = dls.train.state_dict()
    rest = [b[0] for b in it]
    dls.train.load_state_dict(state)
    again = [b[0] for b in dls.train]
    assert len(again) == len(rest) == len(dls.train) - 2 and all(torch.equal(a, b) for a, b in zip(again, rest))
    show_batch(dls, n=4, path=tmp_path / "grid.png")
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    # the Learner turns uint8 batches into normalised floats on the device
    seen = []

    class Spy(ll.Callback):
        order = 0

        def before_batch(self, learn):
            seen.append(learn.xb.dtype)

    learn = ll.Learner(cnn_layers(dls.c_in, dls.c_out, nfs=(8,), stem=(4,)), dls, lr=0.01, progress=False, cbs=[Spy()])
    learn.fit(1)
    assert set(seen) == {torch.float32} and len(learn.recorder.history) == 1


@pytest.mark.parametrize("workers", [0, 2])
def test_unreadable_images_stop_training_or_are_skipped_and_counted(folder, workers):
    good = _img(folder / "tmp.jpg").read_bytes()
    (folder / "tmp.jpg").unlink()
    for name in ("broken.jpg", "empty.png"):  # a truncated JPEG and an empty file
        (folder / "train" / "cat" / name).write_bytes(good[:100] if name.endswith("jpg") else b"")
    lsd = label_by_func(SplitData.split_by_func(ImageList.from_files(folder), grandparent_splitter(valid_name="valid")), parent_labeler)
    n_train = len(lsd.train)
    with pytest.raises(ValueError, match=r"Cannot read image .*(broken\.jpg|empty\.png)"):  # by default, at once
        list(lsd.to_dataloaders(batch_size=4, size=8, num_workers=workers, seed=0, mean=[0.5] * 3, std=[0.25] * 3).train)
    with pytest.raises(ValueError, match="on_error must be 'raise'"):
        lsd.to_dataloaders(batch_size=4, size=8, on_error="ignore")
    dls = lsd.to_dataloaders(batch_size=4, size=8, num_workers=workers, seed=0, on_error="skip")
    for epoch in range(2):  # the count starts again each pass
        with pytest.warns(UserWarning, match=rf"skipped 2 of {n_train} training images in this pass .*the first: Cannot read image .*(broken|empty)") as rec:
            seen = sum(len(yb) for _, yb in dls.train)
        assert seen == n_train - 2 and len([w for w in rec if "skipped" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing unreadable on the validation side: no warning
        assert sum(len(yb) for _, yb in dls.valid) == len(lsd.valid)


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    if not (SHARED / "cifar10-jpeg" / "cifar10-jpeg-q75.zip").is_file():
        pytest.skip(f"CIFAR-10 JPEG archive not found under {SHARED}; CI provides it")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    try:
        yield cifar10(SHARED / "cifar10-jpeg")
    finally:
        del os.environ["XDG_CACHE_HOME"]


def test_cifar10_folders(cifar):
    train = get_files(cifar / "train", image_extensions)
    assert len(train) == 50_000 and len(get_files(cifar / "test", image_extensions)) == 10_000
    assert {p.parent.name for p in train} == {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
    assert cifar10(SHARED / "cifar10-jpeg") == cifar  # unpacked once


def test_cifar10_subset_trains_with_workers(cifar):
    il = ImageList.from_files(cifar)
    il.items = il.items[::50]  # 1,200 images: every class, both splits
    lsd = label_by_func(SplitData.split_by_func(il, grandparent_splitter()), parent_labeler)
    assert lsd.train.proc_y.vocab[0] == "airplane" and len(lsd.valid) == 200
    dls = lsd.to_dataloaders(batch_size=64, num_workers=1, seed=0)
    ll.set_seed(0)
    learn = ll.Learner(cnn_layers(3, 10, nfs=(16, 32), stem=(8,)), dls, lr=0.05, metrics=[ll.accuracy], progress=False)
    learn.fit_one_cycle(2)
    assert learn.recorder.history[-1]["accuracy"] > 0.15  # better than chance (0.1) after 2 short epochs


def test_export_of_an_image_folder_model_predicts_from_uint8_images(folder, tmp_path):
    il = ImageList.from_files(folder)
    lsd = label_by_func(SplitData.split_by_func(il, grandparent_splitter(valid_name="valid")), parent_labeler)
    dls = lsd.to_dataloaders(batch_size=4, size=8, num_workers=0, seed=0)
    learn = ll.Learner(cnn_layers(3, 2, nfs=(8,), stem=(4,)), dls, lr=0.01, progress=False)
    learn.fit(1)
    learn.export(tmp_path / "e.safetensors")
    expected, _ = learn.get_preds()
    xb = torch.cat([b[0] for b in dls.valid])  # the uint8 batches the loader made
    predictor = ll.load_learner(tmp_path / "e.safetensors")  # cnn_layers rebuilt from the file
    labels, probs = predictor.predict(xb)
    assert torch.allclose(probs, expected.softmax(1), atol=1e-5) and set(labels) <= {"cat", "dog"}
