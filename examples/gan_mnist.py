"""A small DCGAN on MNIST, trained by callbacks (GANLearner), scored by a learnloop classifier.

    python examples/gan_mnist.py [--epochs 5] [--out gan_samples] [--smooth 0.9] [--ema 0.999] [--truncation 1.0 0.5]
                                 [--deeper] [--deeper-critic] [--keep 0.25] [--spectral-norm] [--cosine]
                                 [--gen-lr 1e-4 --crit-lr 4e-4] [--threads 2] [--quick]

1. Trains an MNIST classifier (the lesson's CNN with batch norm, one-cycle, 3 epochs; >= 99%).
2. Trains a DCGAN (non-saturating loss, Adam lr 2e-4, betas (0.5, 0.999)) and after every
   epoch saves a grid of 64 samples (`samples_epoch{N}.png`, the same noise each time; with
   --keep also `samples_epoch{N}_kept.png`, the critic's choice) and
   scores 1,000 samples with the classifier: the mean of its top probability (how digit-like
   they are) and how many of the 10 classes appear (whether the generator covers them all).
`--quick` uses 2,000 images and 1 epoch (tests).
"""

import argparse
import functools
import math
import time
from pathlib import Path

import torch
from torch import nn

import learnloop as ll
from learnloop.datasets import mnist, mnist_dataloaders
from learnloop.gan import gan_crit_loss
from learnloop.layers import cnn
from learnloop.plots import new_figure, save_figure
from learnloop.vision import show_image

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=5)
p.add_argument("--out", default="gan_samples")
p.add_argument("--smooth", type=float, default=1.0, help="the critic's target for real images (0.9: one-sided label smoothing)")
p.add_argument("--ema", type=float, default=None, help="draw samples from a moving average of the generator's weights with this decay (e.g. 0.999)")
p.add_argument("--truncation", type=float, nargs="+", default=[],
               help="also score samples drawn with the noise cut at +-T standard deviations (the truncation trick), e.g. 1.0 0.5")
p.add_argument("--deeper", action="store_true", help="a third generator layer: up to 32 channels at 28 x 28, then a 3 x 3 convolution to the image")
p.add_argument("--deeper-critic", action="store_true", help="a third critic layer: 256 channels at 4 x 4 before the linear layer")
p.add_argument("--keep", type=float, default=None,
               help="also score samples filtered by the critic: draw 1,000 / KEEP and keep the 1,000 it rates most real (e.g. 0.25)")
p.add_argument("--spectral-norm", action="store_true", help="spectral normalisation on the critic's layers (instead of its batch norm)")
p.add_argument("--cosine", action="store_true", help="anneal both learning rates to 0 along a cosine over the run")
p.add_argument("--gen-lr", type=float, default=2e-4)
p.add_argument("--crit-lr", type=float, default=2e-4, help="e.g. 4e-4 with --gen-lr 1e-4: the two time-scale rule")
p.add_argument("--threads", type=int, default=2, help="torch threads (the scores differ in the last digits between thread counts)")
p.add_argument("--quick", action="store_true")
args = p.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
ll.set_seed(0)
data = mnist()

# 1. the judge: a classifier on images scaled like the generator's output, [-1, 1]
clf_data = data._replace(x_train=data.x_train[:2000], y_train=data.y_train[:2000]) if args.quick else data
dls = mnist_dataloaders(batch_size=128, flatten=False, data=clf_data, seed=0, mean=0.5, std=0.5)
clf_epochs = 1 if args.quick else 3
clf = ll.Learner(cnn((8, 16, 32, 64, 64)), dls, opt_func=lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9), metrics=[ll.accuracy], progress=False)
clf.fit_one_cycle(clf_epochs, lr_max=0.4)
print(f"classifier: validation accuracy {clf.recorder.history[-1]['accuracy']:.4f} after {clf_epochs} epochs")
judge = clf.model.eval()


def score(samples: torch.Tensor) -> tuple[float, int]:
    with torch.no_grad():
        probs = judge(samples).softmax(1)
    return probs.max(1).values.mean().item(), len(probs.argmax(1).unique())


# 2. the GAN: real images in [-1, 1], a batch of 64
x = data.x_train[:2000] if args.quick else data.x_train
real = ll.DataLoaders.from_tensors((x.float() / 127.5 - 1).unsqueeze(1), data.y_train[: len(x)], batch_size=64, seed=0)
nz = 64


def to_image() -> list[nn.Module]:
    """The generator's last layers, built where they sit so every layer draws its initial
    weights in the same order as without the option."""
    if args.deeper:  # one more layer at 28 x 28
        return [nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, 1, 3, padding=1)]
    return [nn.ConvTranspose2d(64, 1, 4, 2, 1)]


generator = nn.Sequential(
    nn.Linear(nz, 128 * 7 * 7), nn.Unflatten(1, (128, 7, 7)), nn.BatchNorm2d(128), nn.ReLU(),
    nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),  # 14 x 14
    *to_image(), nn.Tanh(),  # 28 x 28 in [-1, 1]
)  # fmt: skip
sn = nn.utils.parametrizations.spectral_norm if args.spectral_norm else (lambda layer: layer)


def to_score() -> list[nn.Module]:
    """The critic's last layers, built where they sit (as `to_image`)."""
    if args.deeper_critic:  # one more layer, to 4 x 4
        return [sn(nn.Conv2d(128, 256, 3, 2, 1)), *([] if args.spectral_norm else [nn.BatchNorm2d(256)]), nn.LeakyReLU(0.2),
                nn.Flatten(), sn(nn.Linear(256 * 4 * 4, 1))]  # fmt: skip
    return [nn.Flatten(), sn(nn.Linear(128 * 7 * 7, 1))]


critic = nn.Sequential(
    sn(nn.Conv2d(1, 64, 4, 2, 1)), nn.LeakyReLU(0.2),  # 14 x 14
    sn(nn.Conv2d(64, 128, 4, 2, 1)), *([] if args.spectral_norm else [nn.BatchNorm2d(128)]), nn.LeakyReLU(0.2),  # 7 x 7
    *to_score(),
)  # fmt: skip


def save_grid(samples: torch.Tensor, path: Path) -> None:
    fig = new_figure(6, 6)
    for i, image in enumerate(samples.cpu()):
        show_image((image + 1) / 2, ax=fig.add_subplot(8, 8, i + 1))
    save_figure(fig, path)


class Samples(ll.Callback):
    """After each epoch: a grid of 64 samples from fixed noise, and the classifier's verdict on 1,000."""

    order = 95

    def before_fit(self, learn):
        self.start = time.perf_counter()

    def after_epoch(self, learn):
        save_grid(learn.generate(64, seed=0), out / f"samples_epoch{learn.epoch + 1}.png")
        if args.keep is not None:
            save_grid(learn.generate(64, seed=0, keep=args.keep), out / f"samples_epoch{learn.epoch + 1}_kept.png")
        top, classes = score(learn.generate(1000, seed=1))
        row = learn.recorder.history[-1]
        more = ""
        if learn.model.generator_ema is not None:  # the generator itself, for comparison with its average
            live_top, live_classes = score(learn.generate(1000, seed=1, ema=False))
            more = f" (the generator itself: {live_top:.3f}, {live_classes}/10)"
        if args.keep is not None:
            kept_top, kept_classes = score(learn.generate(1000, seed=1, keep=args.keep))
            more += f"; the critic's best {args.keep:g}: {kept_top:.3f}, {kept_classes}/10"
        for t in args.truncation:
            cut_top, cut_classes = score(learn.generate(1000, seed=1, truncation=t))
            more += f"; noise cut at +-{t:g}: {cut_top:.3f}, {cut_classes}/10"
        print(f"epoch {learn.epoch + 1}: critic loss {row['crit_loss']:.3f}, generator loss {row['gen_loss']:.3f}; "
              f"1,000 samples: mean top probability {top:.3f}, {classes}/10 classes{more}; {time.perf_counter() - self.start:.0f} s", flush=True)  # fmt: skip


class LearningRates(ll.Callback):
    """Each model's own learning rate (--gen-lr, --crit-lr), annealed to 0 along a cosine over
    the run with --cosine."""

    def before_batch(self, learn):
        scale = (1 + math.cos(math.pi * learn.pct_train)) / 2 if args.cosine else 1.0
        for opt, lr in ((learn.gen_opt, args.gen_lr), (learn.crit_opt, args.crit_lr)):
            for group in opt.param_groups:
                group["lr"] = lr * scale


torch.set_num_threads(args.threads)
crit_loss = functools.partial(gan_crit_loss, real_label=args.smooth)
gan = ll.GANLearner(generator, critic, real, crit_loss=crit_loss, noise_size=nz, seed=0, ema=args.ema, progress=False, cbs=[Samples(), LearningRates()])
gan.fit(1 if args.quick else args.epochs)
print(f"samples saved in {out}")
