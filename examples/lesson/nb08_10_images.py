"""Notebooks 08 (data blocks), 09 (optimizers), 09b/09c (the Learner with a progress bar) and
10 (augmentation timings) on image folders.

    python examples/lesson/nb08_10_images.py [--quick]

The lesson trained on Imagenette-160 at 128 px, which is not available offline here: these
rows read the CIFAR-10 JPEG folders instead (50,000 training and 10,000 test images, 32 px,
ten classes), with the lesson's model and schedules unchanged. Its figures and ours therefore
measure the same recipe on different data; the rows say so.
"""

import statistics
import time

import numpy as np
import torch
from common import QUICK, SEEDS, Timer, accuracy_of, fmt, over_seeds, row
from PIL import Image

import learnloop as ll
from learnloop.datasets import cifar10
from learnloop.init import init_model, kaiming_normal_
from learnloop.layers import cnn
from learnloop.optim import LAMB, SGD, Adam
from learnloop.schedule import combine_scheds, sched_cos
from learnloop.vision import GeneralCrop, ImageList, RandomAffine, SplitData, grandparent_splitter, label_by_func, parent_labeler

E = (lambda n: 1 if QUICK else n)  # noqa: E731  epochs: full runs, or one epoch of the subset
DATA = "CIFAR-10 JPEG folders at 32 px (the lesson: Imagenette-160 at 128 px)"


def cifar(seed: int) -> ll.DataLoaders:
    """Notebook 08's data block: files -> split by folder (train/, test/) -> label by parent
    folder -> uint8 batches of 64, normalised per channel on the way to the model."""
    il = ImageList.from_files(cifar10())
    if QUICK:
        il.items = il.items[::50]
    lsd = label_by_func(SplitData.split_by_func(il, grandparent_splitter("test")), parent_labeler)
    return lsd.to_dataloaders(batch_size=64, num_workers=1, seed=seed)


def lesson_cnn() -> torch.nn.Module:
    """The lesson's image model: nfs [64, 64, 128, 256], stride-2 convs (5x5 first), batch norm,
    GeneralRelu(0.1, 0.4, 6), Kaiming init."""
    model = cnn((64, 64, 128, 256), n_out=10, in_channels=3, norm="batch", leak=0.1, sub=0.4, maxv=6.0)
    return init_model(model, kaiming_normal_, a=0.1)


def train(seed: int, opt_func, lr: float, epochs: int, sched=None, progress: bool = False) -> float:
    ll.set_seed(seed)
    learn = ll.Learner(lesson_cnn(), cifar(seed), opt_func=opt_func, lr=lr, metrics=[ll.accuracy], progress=progress)
    learn.fit(epochs, cbs=[ll.ParamScheduler({"lr": sched})] if sched else [])
    return accuracy_of(learn)


def median_time(fn, n: int = 5 if QUICK else 30) -> float:
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    one_cycle = combine_scheds([0.3, 0.7], [sched_cos(0.1, 0.3), sched_cos(0.3, 0.05)])
    with Timer() as t:
        acc = over_seeds(lambda s: train(s, SGD, 0.3, E(5), sched=one_cycle))
    row("08", "data blocks on image folders: nfs [64, 64, 128, 256], one-cycle cosine, 5 epochs", "0.736", fmt(acc),
        f"{DATA}; SGD lr 0.1 -> 0.3 -> 0.05, batch 64; median (range) over {len(SEEDS)} seeds", t.seconds / len(SEEDS),
        "other data (CIFAR-10 at 32 px, not Imagenette at 128 px): the figures are not comparable")  # fmt: skip

    with Timer() as t:
        sgd = train(0, SGD, 0.4, E(1))
    with Timer() as t_adam:
        adam = train(0, Adam, 1e-3, E(3))
    with Timer() as t_lamb:
        lamb = train(0, LAMB, 3e-3, E(3))
    row("09", "optimizers from steppers: SGD lr 0.4, 1 epoch; Adam lr 1e-3, 3 epochs; LAMB lr 3e-3, 3 epochs", "0.418; 0.672; 0.646",
        f"{sgd:.4f}; {adam:.4f}; {lamb:.4f}", f"{DATA}; learnloop.optim with the lesson's defaults, constant lr, seed 0",
        (t.seconds + t_adam.seconds + t_lamb.seconds) / 3, "other data; the order (Adam and LAMB well above one epoch of SGD) is the lesson's")  # fmt: skip

    with Timer() as t:
        one = train(0, SGD, 0.4, E(1), progress=True)
        two = train(0, SGD, 0.4, E(2), progress=True)
    row("09b/09c", "the Learner with callbacks and a progress bar, 1 and 2 epochs", "0.488; 0.423", f"{one:.4f}; {two:.4f}",
        f"{DATA}; SGD lr 0.4, seed 0", t.seconds / 2, "other data; the progress bar changes nothing in training (same seed, same figure as without)")  # fmt: skip

    yy, xx = np.mgrid[0:160, 0:213]  # an Imagenette-160-sized picture
    photo = np.stack([xx * 1.1, yy * 1.4, 128 + 100 * np.sin(xx / 9) * np.cos(yy / 13)], -1)
    img = Image.fromarray(photo.clip(0, 255).astype(np.uint8))
    box = (20, 10, 20 + 140, 10 + 140)
    two_steps = median_time(lambda: img.crop(box).resize((128, 128), Image.BILINEAR))
    crop = GeneralCrop(128, crop_size=140)
    one_step = median_time(lambda: crop(img))
    x = torch.rand(64, 3, 128, 128)
    rotate = RandomAffine(degrees=30, scale=1.0, flip=0.0, p=1.0, seed=0)
    batch = median_time(lambda: rotate(x, torch.Generator().manual_seed(0)), n=3 if QUICK else 10)
    row("10", "augmentation: crop then resize vs one resample (lesson: EXTENT transform; learnloop: GeneralCrop), 160 px picture to 128; "
        "rotating a 64 x 3 x 128 x 128 batch on the CPU",
        "818 us vs 751 us; 45.6 ms", f"{two_steps * 1e6:.0f} us vs {one_step * 1e6:.0f} us; {batch * 1e3:.1f} ms",
        "median of 30 (10 for the batch), one torch thread; a synthetic picture", two_steps + one_step + batch,
        "timings depend on the CPU; more of them, and the pictures, in augmentation.md")  # fmt: skip


if __name__ == "__main__":
    main()
