"""Augmentation: each transform's geometry against an exact reference, determinism across worker
counts and resumes, MixUp/CutMix against soft-target cross-entropy, and the bad inputs."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import learnloop as ll
from learnloop.layers import cnn_layers
from learnloop.vision import (
    CenterCrop,
    GeneralCrop,
    ImageList,
    PilRandomDihedral,
    PilRandomFlip,
    PilTiltRandomCrop,
    RandomAffine,
    RandomCrop,
    RandomErasing,
    RandomResizedCrop,
    SplitData,
    find_coeffs,
    grandparent_splitter,
    label_by_func,
    np_to_float,
    parent_labeler,
    rotate_batch,
    show_augmentations,
    to_byte_tensor,
    to_float_tensor,
    warp,
)


def _noise_image(w: int = 12, h: int = 10, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.fixture
def pets(tmp_path) -> Path:
    root = tmp_path / "pets"
    for split, n in (("train", 10), ("valid", 4)):
        for c, cls in enumerate(("cat", "dog")):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                _noise_image(16, 16, seed=100 * c + i + (50 if split == "valid" else 0)).save(root / split / cls / f"{i}.png")
    return root


def _dls(root: Path, tfms, workers: int = 0, seed: int = 0):
    il = ImageList.from_files(root)
    lsd = label_by_func(SplitData.split_by_func(il, grandparent_splitter()), parent_labeler)
    return lsd.to_dataloaders(batch_size=4, num_workers=workers, seed=seed, item_tfms=tfms, mean=[0.5] * 3, std=[0.25] * 3)


# ---- geometry ------------------------------------------------------------------------------


def test_flip_and_the_eight_dihedral_elements():
    img = _noise_image()
    a = np.asarray(img)
    assert np.array_equal(np.asarray(PilRandomFlip(p=1.0)(img)), a[:, ::-1])
    assert np.array_equal(np.asarray(PilRandomFlip(p=0.0)(img)), a)
    sq = _noise_image(9, 9)
    d = PilRandomDihedral(p=1.0)
    seen = {}
    for s in range(200):
        out = np.asarray(d(sq, random.Random(s)))
        seen[out.tobytes()] = out
    assert len(seen) == 8  # the whole group, nothing else
    q = np.asarray(sq)
    group = [q, q[:, ::-1], q[::-1], np.rot90(q), np.rot90(q, 2), np.rot90(q, 3), q.transpose(1, 0, 2), np.rot90(q, 2).transpose(1, 0, 2)]
    assert {g.tobytes() for g in map(np.ascontiguousarray, group)} == set(seen)
    p, n = 0.75, 8000
    rng = random.Random(0)
    identity = sum(np.array_equal(np.asarray(PilRandomDihedral(p)(sq, rng)), q) for _ in range(n)) / n
    assert abs(identity - (1 - p * 7 / 8)) < 0.02  # 1 - 7p/8 = 0.344; binomial sd 0.005


def test_random_crop_is_a_slice_of_the_zero_padded_image():
    img = _noise_image(12, 10)
    padded = np.pad(np.asarray(img), ((4, 4), (4, 4), (0, 0)))
    t = RandomCrop(8, padding=4)
    for s in range(50):
        left, top, right, bottom = t.corners(12, 10, random.Random(s))
        out = np.asarray(t(img, random.Random(s)))
        assert np.array_equal(out, padded[top + 4 : bottom + 4, left + 4 : right + 4])
    assert {t.corners(12, 10, random.Random(s))[0] for s in range(300)} == set(range(-4, 12 + 4 - 8 + 1))  # every offset


def test_one_resample_crop_equals_crop_then_resize_and_extent():
    noise = _noise_image(40, 30)
    one = np.asarray(GeneralCrop(16, crop_size=(20, 20))(noise))  # the box (10, 5, 30, 25): inside, integer
    two = np.asarray(noise.crop((10, 5, 30, 25)).resize((16, 16), Image.BILINEAR))
    # equal but at the border, where one resample also reads the pixels just outside the box (a crop cuts them off)
    assert np.array_equal(one[1:-1, 1:-1], two[1:-1, 1:-1]) and not np.array_equal(one, two)
    yy, xx = np.mgrid[0:30, 0:40]
    smooth = np.stack([xx * 6, yy * 8, 128 + 100 * np.sin(xx / 5) * np.cos(yy / 7)], -1).astype(np.uint8)
    img = Image.fromarray(smooth)  # smooth: resize antialiases, EXTENT does not; on noise they differ
    box = (9.5, 4.5, 30.5, 25.5)  # a fractional box (odd sizes centred): what crop() cannot do without a second resample
    ours = np.asarray(GeneralCrop(16, crop_size=(21, 21))(img), dtype=np.float64)
    extent = np.asarray(img.transform((16, 16), Image.Transform.EXTENT, box, resample=Image.BILINEAR), dtype=np.float64)
    assert np.abs(ours - extent).mean() < 2.0  # the same picture; the kernels differ slightly
    assert CenterCrop(16, scale=1.0)(_noise_image(16, 16)).tobytes() == _noise_image(16, 16).tobytes()


def test_random_resized_crop_stays_inside_over_1000_draws():
    t = RandomResizedCrop(8, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))
    rng = random.Random(0)
    for w, h in ((64, 48), (100, 7), (5, 90)):  # the thin ones force the fallback
        for _ in range(1000):
            left, top, right, bottom = t.corners(w, h, rng)
            assert -1e-9 <= left < right <= w + 1e-9 and -1e-9 <= top < bottom <= h + 1e-9
            assert 3 / 4 - 1e-9 <= (right - left) / (bottom - top) <= 4 / 3 + 1e-9
    areas = [(r - l) * (b - t_) / (64 * 48) for l, t_, r, b in (t.corners(64, 48, rng) for _ in range(1000))]
    assert min(areas) >= 0.08 - 1e-9 and max(areas) <= 1 + 1e-9 and np.std(areas) > 0.1
    assert t(_noise_image(64, 48), rng).size == (8, 8)


def test_find_coeffs_maps_the_corners_it_was_given_and_warp_of_the_full_frame_is_identity():
    orig = [(3.0, 2.0), (1.0, 40.0), (50.0, 44.0), (47.0, 0.5)]
    targ = [(0, 0), (0, 32), (32, 32), (32, 0)]
    a, b, c, d, e, f, g, h = find_coeffs(orig, targ)
    for (x, y), (u, v) in zip(targ, orig):
        den = g * x + h * y + 1
        assert abs((a * x + b * y + c) / den - u) < 1e-9 and abs((d * x + e * y + f) / den - v) < 1e-9
    img = _noise_image(20, 20)
    same = warp(img, 20, [(0, 0), (0, 20), (20, 20), (20, 0)], resample=Image.NEAREST)
    assert np.array_equal(np.asarray(same), np.asarray(img))


def test_tilted_crop_corners_stay_inside():
    t = PilTiltRandomCrop(16, crop_size=20, magnitude=0.3)
    rng = random.Random(1)
    for _ in range(1000):
        for x, y in t.corners(24, 22, rng):
            assert 0 <= x <= 24 and 0 <= y <= 22
    assert t(_noise_image(24, 22), rng).size == (16, 16)


def test_np_to_float_equals_the_two_step_path():
    img = _noise_image()
    assert torch.equal(np_to_float(img), to_float_tensor(to_byte_tensor(img)))
    assert torch.equal(np_to_float(img.convert("L")), to_float_tensor(to_byte_tensor(img.convert("L"))))


def test_affine_90_degrees_is_rot90_and_the_identity_leaves_the_batch():
    x = torch.randn(3, 2, 9, 9, generator=torch.Generator().manual_seed(0))
    # float32 grid arithmetic: pixels land within ~5e-6 of where they should
    turned = rotate_batch(x, 90.0)
    assert torch.allclose(turned, torch.rot90(x, 1, dims=(2, 3)), atol=1e-5)  # counterclockwise as displayed
    aff = RandomAffine(degrees=(90, 90), scale=1.0, flip=0.0, p=1.0, seed=0)
    assert torch.allclose(aff(x), turned, atol=1e-5)
    still = RandomAffine(degrees=0, scale=1.0, flip=0.0, p=1.0, padding_mode="zeros")
    assert torch.allclose(still(x), x, atol=1e-5)
    mirror = RandomAffine(degrees=0, scale=1.0, flip=1.0, p=0.0)
    assert torch.allclose(mirror(x), x.flip(-1), atol=1e-5)
    # translate 1/9 of a 9-pixel image: each output pixel reads the one a row down and a column right
    m = RandomAffine(degrees=0, scale=1.0, translate=(1 / 9, 1 / 9), flip=0.0, p=1.0, padding_mode="zeros")
    shifted = m(x)
    assert torch.allclose(shifted[..., :-1, :-1], x[..., 1:, 1:], atol=1e-5) and (shifted[..., -1, :].abs() < 1e-5).all()
    zoom = RandomAffine(degrees=0, scale=(2.0, 2.0), flip=0.0, p=1.0)(x)  # 2x in: the centre pixel stays
    assert torch.allclose(zoom[..., 4, 4], x[..., 4, 4], atol=1e-5)


def test_affine_draws_depend_on_seed_and_step_only():
    aff = RandomAffine(degrees=30, scale=(0.9, 1.2), translate=0.1, seed=5)
    g = ll.vision.step_generator
    assert torch.equal(aff.matrices(8, g(5, 3)), aff.matrices(8, g(5, 3)))
    assert not torch.equal(aff.matrices(8, g(5, 3)), aff.matrices(8, g(5, 4)))
    off = RandomAffine(degrees=30, p=0.0, flip=0.0).matrices(16)
    assert torch.equal(off, torch.eye(3).expand(16, 3, 3))


def test_random_erasing_erases_one_rectangle_in_about_p_of_the_images():
    er = RandomErasing(p=0.5, area=(0.1, 0.2), value=0.0, seed=0)
    masks = er.masks(2000, 20, 30, torch.Generator().manual_seed(0))
    erased = masks.flatten(1).any(1)
    assert abs(erased.float().mean().item() - 0.5) < 0.04
    for m in masks[erased][:200, 0]:
        rows, cols = m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()
        assert m[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()  # a full rectangle
        assert 0.05 <= m.float().mean().item() <= 0.3  # area 10-20% up to rounding and clamping
    x = torch.randn(4, 3, 20, 30)
    out = er(x, torch.Generator().manual_seed(1))
    changed = (out != x).any(1)
    assert torch.equal(out[:, :, ~changed.any(0)], x[:, :, ~changed.any(0)]) and (out[(out != x)] == 0).all()


# ---- the data pipeline ------------------------------------------------------------------------


def test_item_augmentations_do_not_depend_on_workers_and_resume_exactly(pets):
    tfms = [RandomCrop(16, padding=3), PilRandomFlip()]
    one, two = _dls(pets, tfms, 0), _dls(pets, tfms, 2)
    for _ in range(2):  # two epochs: same batches with 0 and 2 workers
        a, b = [x for x, _ in one.train], [x for x, _ in two.train]
        assert all(torch.equal(u, v) for u, v in zip(a, b)) and len(a) == len(b) == 5
    e1 = [x for x, _ in one.train]
    assert not all(torch.equal(u, v) for u, v in zip(e1, a))  # a new epoch draws anew
    it = iter(one.train)
    next(it)
    state = one.train.state_dict()
    rest = [x for x, _ in it]
    fresh = _dls(pets, tfms, 0)
    fresh.train.load_state_dict(state)
    assert all(torch.equal(u, v) for u, v in zip([x for x, _ in fresh.train], rest))
    # validation items are never randomly augmented: random crops become centre crops, flips go
    assert [type(t).__name__ for t in one.valid.dataset.tfms] == ["CenterCrop"]
    plain = _dls(pets, [], 0)
    assert all(torch.equal(u[0], v[0]) for u, v in zip(one.valid, plain.valid))


def test_show_augmentations_draws_the_item_under_n_draws(pets, tmp_path):
    dls = _dls(pets, [RandomResizedCrop(12), PilRandomDihedral()], 0)
    fig = show_augmentations(dls, idx=3, n=6, path=tmp_path / "aug.png", batch_tfms=[RandomAffine(degrees=20)])
    assert (tmp_path / "aug.png").read_bytes()[:4] == b"\x89PNG" and len(fig.axes) == 7
    ll.show_batch(dls, n=4, batch_tfms=[RandomAffine()], path=tmp_path / "batch.png")
    assert (tmp_path / "batch.png").stat().st_size > 1000
    with pytest.raises(IndexError, match="outside"):
        show_augmentations(dls, idx=999)


def test_batch_augmentations_run_on_training_batches_only(pets):
    dls = _dls(pets, [], 0)
    seen = {True: [], False: []}

    class Spy(ll.Callback):
        order = 0  # after the augmentations

        def before_batch(self, learn):
            seen[learn.training].append(learn.xb.clone())

    aff = RandomAffine(degrees=45, p=1.0, seed=0)
    learn = ll.Learner(cnn_layers(3, 2, nfs=(8,), stem=(4,)), dls, lr=0.01, progress=False, cbs=[aff, Spy()])
    learn.fit(1)
    norm = ll.vision.FloatNormalize([0.5] * 3, [0.25] * 3)
    raw = [norm(x) for x, _ in dls.valid]
    assert all(torch.equal(a, b) for a, b in zip(seen[False], raw))
    train_raw = [norm(x) for x, _ in _dls(pets, [], 0).train]  # the epoch-0 batches, unaugmented
    assert all(not torch.allclose(a, b) for a, b in zip(seen[True], train_raw))
    assert aff.state_dict() == {"seed": 0}


# ---- MixUp and CutMix --------------------------------------------------------------------------


def _mix_learner(pets, mix, fail: bool = False):
    dls = _dls(pets, [], 0)
    got = []

    class Probe(ll.Callback):
        order = 10

        def after_loss(self, learn):
            if learn.training:
                soft = mix.soft_targets(learn.yb, 2)
                got.append((soft, F.cross_entropy(learn.pred, soft), learn.loss.detach(), mix.lam))
                if fail:
                    raise RuntimeError("boom")

    learn = ll.Learner(cnn_layers(3, 2, nfs=(8,), stem=(4,)), dls, lr=0.01, progress=False, cbs=[mix, Probe()])
    return learn, got


@pytest.mark.parametrize("mix", [ll.MixUp(0.4, seed=0), ll.CutMix(1.0, seed=0)], ids=["mixup", "cutmix"])
def test_mixing_loss_is_cross_entropy_on_soft_targets_that_sum_to_one(pets, mix):
    learn, got = _mix_learner(pets, mix)
    plain = learn.loss_func
    learn.fit(1)
    assert len(got) == 5 and learn.loss_func is plain  # restored after fitting
    for soft, ce, loss, lam in got:
        assert torch.allclose(soft.sum(1), torch.ones(len(soft)))
        assert torch.allclose(ce, loss, atol=1e-6) and 0 <= lam <= 1
    if isinstance(mix, ll.MixUp):
        assert all(lam >= 0.5 for *_, lam in got)
    learn.validate()  # the plain loss outside fitting


def test_cutmix_lambda_is_the_share_of_pixels_kept():
    cm = ll.CutMix(1.0)
    x, other = torch.zeros(2, 1, 10, 10), torch.ones(2, 1, 10, 10)
    for s in range(100):
        out, lam = cm.mix(x, other, float(np.random.default_rng(s).beta(1, 1)), np.random.default_rng(s + 1))
        assert (out == 0).sum().item() == round(lam * out.numel())


def test_mixing_restores_the_loss_when_training_fails(pets):
    mix = ll.MixUp(seed=0)
    learn, _ = _mix_learner(pets, mix, fail=True)
    plain = learn.loss_func
    with pytest.raises(RuntimeError, match="boom"):
        learn.fit(1)
    assert learn.loss_func is plain


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: RandomCrop(0), "size must be a positive int"),
        (lambda: RandomResizedCrop(-3), "size must be a positive int"),
        (lambda: GeneralCrop((8, "8")), "size must be a positive int"),
        (lambda: PilRandomFlip(p=1.5), r"p must be a probability in \[0, 1\]"),
        (lambda: PilRandomDihedral(p=-0.1), "probability"),
        (lambda: RandomAffine(degrees="10"), "degrees must be a number"),
        (lambda: RandomAffine(p=2), r"in \[0, 1\]"),
        (lambda: RandomAffine(scale=(1.2, 0.9)), "min > max"),
        (lambda: RandomAffine(padding_mode="wrap"), "padding_mode"),
        (lambda: RandomErasing(area=(0, 2)), "area"),
        (lambda: ll.MixUp(alpha=0), "alpha must be a number > 0"),
        (lambda: RandomResizedCrop(8, scale=(0.5, 0.1)), "scale"),
        (lambda: CenterCrop(8, scale=0.5), "scale must be a number >= 1"),
        (lambda: RandomCrop(8, padding=-1), "padding"),
    ],
)
def test_bad_arguments_are_named(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_wrong_kind_of_input_names_the_transform():
    with pytest.raises(ValueError, match=r"RandomCrop: the 40x40 crop is larger than the 32x32 image"):
        RandomCrop(40, padding=0)(_noise_image(32, 32))
    with pytest.raises(TypeError, match="PilRandomFlip works on Pillow images.*tensor of shape"):
        PilRandomFlip(p=1.0)(torch.zeros(3, 8, 8))
    with pytest.raises(TypeError, match="RandomAffine works on a batch tensor.*Image"):
        RandomAffine()(_noise_image())
    with pytest.raises(TypeError, match="RandomAffine needs a float"):
        RandomAffine()(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
