"""Notebooks 06 (CUDA, hooks), 07 (batch norm) and 07a (LSUV) with the lesson's CNN on MNIST.

    python examples/lesson/nb06_07_cnn.py [--quick]
"""

import math

import torch
from common import QUICK, SEEDS, Timer, accuracy_of, against, fmt, lesson_loaders, note, over_seeds, plot, row
from torch import nn

import learnloop as ll
from learnloop.init import init_model, kaiming_normal_, kaiming_uniform_, lsuv_init
from learnloop.layers import cnn
from learnloop.norm import RunningBatchNorm
from learnloop.schedule import combine_scheds, sched_cos, sched_lin

E = (lambda n: 1 if QUICK else n)  # noqa: E731  epochs: full runs, or one epoch of the subset
SPLIT = "the lesson's 50,000 / 10,000 split, normalised"


def fit(make, seed: int, epochs: int, lr: float, bs: int = 512, sched=None, mom: float = 0.0) -> float:
    """The lesson's runs of notebooks 06 and 07: its 50,000 / 10,000 split, normalised, batch 512."""
    ll.set_seed(seed)
    dls = lesson_loaders(bs, seed=seed, normalized=True, flatten=False)
    opt = lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=mom)  # noqa: E731
    learn = ll.Learner(make(), dls, opt_func=opt, lr=lr, metrics=[ll.accuracy], progress=False)
    learn.fit(epochs, cbs=[ll.ParamScheduler({"lr": sched})] if sched else [])
    return accuracy_of(learn)


def one_cycle(lr_max: float):
    return combine_scheds([0.3, 0.7], [sched_cos(lr_max / 10, lr_max), sched_cos(lr_max, lr_max / 1e4)])


def main() -> None:
    plain = lambda: cnn((8, 16, 32, 32), norm=None, act=nn.ReLU)  # noqa: E731
    with Timer() as t:
        acc = over_seeds(lambda s: fit(plain, s, E(3), 0.4))
    at64 = over_seeds(lambda s: fit(plain, s, E(3), 0.4, bs=64))
    row("06", "CNN [8, 16, 32, 32], ReLU, lr 0.4, 3 epochs", "0.9543 to 0.9606", fmt(acc), f"{SPLIT}, batch 512; median (range) over 3 seeds",
        t.seconds / len(SEEDS), f"at batch 64 (8x the steps) the same recipe reaches {fmt(at64)}")  # fmt: skip

    general = lambda init: (lambda: init_model(cnn((8, 16, 32, 32), norm=None, leak=0.1, sub=0.4, maxv=6.0), init, a=0.1))  # noqa: E731
    with Timer() as t:
        acc = over_seeds(lambda s: fit(general(kaiming_normal_), s, E(8), 0.9, sched=one_cycle(0.9)))
        uni = over_seeds(lambda s: fit(general(kaiming_uniform_), s, E(8), 0.9, sched=one_cycle(0.9)))
    row("06", "GeneralRelu(0.1, 0.4, 6) + Kaiming (a=0.1) + one-cycle cosine, 8 epochs (uniform init)", "0.9826 (0.9822)",
        f"{fmt(acc)} ({fmt(uni)})", f"{SPLIT}, batch 512, lr 0.09 -> 0.9 -> 9e-5; median (range) over 3 seeds", t.seconds / (2 * len(SEEDS)),
        note(against(0.9826, acc, len(SEEDS)), against(0.9822, uni, len(SEEDS))))  # fmt: skip

    for name, make, caption in (("lesson_06_colorful_relu.png", plain, "06: the colorful dimension, default init and ReLU (first epoch, seed 0)"),
                                ("lesson_06_colorful_general.png", general(kaiming_normal_), "06: the same with Kaiming init and GeneralRelu")):  # fmt: skip
        ll.set_seed(0)
        stats = ll.ActivationStats(every=2)
        learn = ll.Learner(make(), lesson_loaders(512, seed=0, normalized=True, flatten=False), opt_func=torch.optim.SGD, lr=0.4,
                           metrics=[ll.accuracy], progress=False, cbs=[stats])  # fmt: skip
        learn.fit(1)
        stats.plot_colorful(path=plot(name, caption))

    bn = lambda: init_model(cnn((8, 16, 32, 64, 64), norm="batch", leak=0.1, sub=0.4, maxv=6.0), kaiming_normal_, a=0.1)  # noqa: E731
    with Timer() as t:
        acc = over_seeds(lambda s: fit(bn, s, E(3), 1.0))
    row("07", "BatchNorm CNN [8, 16, 32, 64, 64], lr 1.0, 3 epochs", "0.9813", fmt(acc), f"{SPLIT}, SGD, batch 512; median (range) over 3 seeds", t.seconds / len(SEEDS),
        against(0.9813, acc, len(SEEDS)))  # fmt: skip
    warm = combine_scheds([0.3, 0.7], [sched_lin(0.6, 2.0), sched_cos(2.0, 0.1)])
    with Timer() as t:
        acc = over_seeds(lambda s: fit(bn, s, E(8), 2.0, sched=warm))
    row("07", "same with linear warm-up 0.6 -> 2 and cosine anneal to 0.1, 8 epochs", "0.9877", fmt(acc), "median (range) over 3 seeds", t.seconds / len(SEEDS),
        against(0.9877, acc, len(SEEDS)))  # fmt: skip

    steps = 300 if QUICK else None  # None: the whole epoch (25,000 steps at batch size 2)

    swings: list[tuple[float, float]] = []  # (min, max) validation accuracy over each run's last steps

    def tiny(norm: str, seed: int, lesson_model: bool = False) -> float:
        ll.set_seed(seed)
        dls = lesson_loaders(2, seed=seed, normalized=True, flatten=False)
        dls.valid = ll.DataLoader(dls.valid.dataset, batch_size=512)  # eval mode: the batch size does not change the answer
        if lesson_model:
            model, cbs = lesson_rbn_cnn(), [probe := _Swing(dls.valid, every=100 if QUICK else 500, last=steps or 25_000)]
        else:
            model, cbs = init_model(cnn((8, 16, 32, 64, 64), norm=norm, leak=0.1, sub=0.4, maxv=6.0), kaiming_normal_, a=0.1), []
        learn = ll.Learner(model, dls, lr=0.4, opt_func=torch.optim.SGD, metrics=[ll.accuracy], progress=False)
        learn.fit(1, cbs=cbs + ([_StopAfter(steps)] if steps else []))
        if lesson_model:
            swings.append((min(probe.accs), max(probe.accs)))
        elif seed == 0:
            learn.recorder.plot_loss(path=plot(f"lesson_07_batch2_{norm}.png", f"07: training loss at batch size 2 with {norm.replace('_', ' ')} norm (seed 0)"))
        return accuracy_of(learn)

    with Timer() as t:
        bn2, rbn2 = over_seeds(lambda s: tiny("batch", s)), over_seeds(lambda s: tiny("running_batch", s))
    rbn_lesson = over_seeds(lambda s: tiny("running_batch", s, lesson_model=True))
    low, high = (min(lo for lo, _ in swings), max(hi for _, hi in swings)) if swings else (math.nan, math.nan)
    row("07", "batch size 2, one epoch: BatchNorm vs RunningBatchNorm", "0.2604 vs 0.9730", f"{fmt(bn2)} vs {fmt(rbn2)}",
        f"{SPLIT}, SGD lr 0.4" + (f", {steps} steps" if steps else ", 25,000 steps") + "; median (range) over 3 seeds", t.seconds / (2 * len(SEEDS)),
        note(against(0.2604, bn2, len(SEEDS)), against(0.9730, rbn2, len(SEEDS)),
             f"the lesson's own model (conv, plain ReLU, then RunningBatchNorm; only the convolutions Kaiming-initialised) gives "
             f"{fmt(rbn_lesson)}; within its runs, the validation accuracy measured every {500 if not QUICK else 100} steps over "
             f"the last 5,000 moves between {low:.4f} and {high:.4f} at this constant lr 0.4, so a single run's final figure, "
             "like the lesson's, depends on the step it stops at"))  # fmt: skip

    rbn = lambda: init_model(cnn((8, 16, 32, 64, 64), norm="running_batch", leak=0.1, sub=0.4, maxv=6.0), kaiming_normal_, a=0.1)  # noqa: E731
    with Timer() as t:
        acc = over_seeds(lambda s: fit(rbn, s, 1, 0.4, bs=32, sched=one_cycle(0.4)))
    row("07", "RunningBatchNorm, batch 32, 1 epoch", "0.9818", fmt(acc), "one-cycle to lr 0.4; median (range) over 3 seeds", t.seconds / len(SEEDS),
        against(0.9818, acc, len(SEEDS)))  # fmt: skip

    def lsuv_fit(seed: int, use_lsuv: bool) -> float:
        ll.set_seed(seed)
        dls = lesson_loaders(512, seed=seed, normalized=True, flatten=False)
        model = cnn((8, 16, 32, 64, 64), norm=None, leak=0.1, sub=0.4, maxv=6.0)
        if use_lsuv:
            lsuv_init(model, dls.train.one_batch()[0])
        learn = ll.Learner(model, dls, opt_func=torch.optim.SGD, lr=0.6, metrics=[ll.accuracy], progress=False)
        learn.fit(E(2), cbs=[ll.ParamScheduler({"lr": one_cycle(0.6)})])
        return accuracy_of(learn)

    with Timer() as t:
        base = over_seeds(lambda s: lsuv_fit(s, False))
        lsuv = over_seeds(lambda s: lsuv_fit(s, True))
    row("07a", "baseline (PyTorch default init) vs LSUV init, 2 epochs", "0.9588 vs 0.9733", f"{fmt(base)} vs {fmt(lsuv)}",
        f"{SPLIT}, no norm, batch 512, plain SGD (no momentum, as in the lesson at that point), one-cycle to 0.6; median (range) over 3 seeds", t.seconds / (2 * len(SEEDS)),
        note(against(0.9588, base, len(SEEDS)), against(0.9733, lsuv, len(SEEDS))))  # fmt: skip


def lesson_rbn_cnn() -> nn.Sequential:
    """Notebook 07's model for the batch-size-2 run, as it was: conv (no bias), ReLU (its
    GeneralRelu with no arguments), then RunningBatchNorm; Kaiming-normal (a=0.1) on the
    convolutions only, the final Linear left at PyTorch's default (the lesson's init_cnn).
    learnloop's `cnn` puts the norm before a GeneralRelu(0.1, 0.4, 6) and initialises every layer."""
    sizes, layers = [1, 8, 16, 32, 64, 64], []
    for i in range(5):
        ks = 5 if i == 0 else 3
        layers += [nn.Conv2d(sizes[i], sizes[i + 1], ks, stride=2, padding=ks // 2, bias=False), nn.ReLU(), RunningBatchNorm(sizes[i + 1])]
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            kaiming_normal_(m.weight, a=0.1)
    return model


class _Swing(ll.Callback):
    """Validation accuracy every `every` training steps over the last 5,000 of `last`."""

    def __init__(self, valid, every: int, last: int):
        self.valid, self.every, self.start, self.accs = valid, every, max(last - 5000, every), []

    def after_batch(self, learn):
        n = learn.train_batches_done
        if learn.training and n >= self.start and n % self.every == 0:
            learn.model.eval()
            with torch.no_grad():
                correct = sum((learn.model(xb).argmax(1) == yb).sum().item() for xb, yb in self.valid)
            learn.model.train()
            self.accs.append(correct / len(self.valid.dataset))


class _StopAfter(ll.Callback):
    def __init__(self, n: int):
        self.n = n

    def after_batch(self, learn):
        if learn.training and learn.train_batches_done >= self.n:
            raise ll.CancelTrainException


if __name__ == "__main__":
    main()
