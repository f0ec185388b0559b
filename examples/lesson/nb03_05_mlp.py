"""Notebooks 03 (minibatch training), 04 (callbacks), 05 (annealing) and 05b (cancellation), with
the lesson's MLP 784-50-10 on MNIST.

    python examples/lesson/nb03_05_mlp.py [--quick]
"""

import torch
from common import QUICK, Timer, against, fmt, lesson_loaders, note, over_seeds, plot, row

import learnloop as ll
from learnloop.layers import mlp
from learnloop.schedule import combine_scheds, plot_schedule, sched_cos

# An MLP epoch takes about a second: ten seeds show how far lr 0.5's runs scatter.
SEEDS = [0] if QUICK else list(range(10))
DATA = "the lesson's data (50,000 / 10,000 split of MNIST's training set, pixels in [0, 1], not normalised)"


def fit_mlp(seed: int, epochs: int, bs: int = 64, lr: float = 0.5, cbs=(), normalized: bool = False) -> list[float]:
    """Validation accuracy after each epoch."""
    ll.set_seed(seed)
    dls = lesson_loaders(bs, seed=seed, normalized=normalized)
    learn = ll.Learner(mlp([784, 50, 10]), dls, opt_func=torch.optim.SGD, lr=lr, metrics=[ll.accuracy], progress=False)
    learn.fit(epochs, cbs=list(cbs))
    return [h["accuracy"] for h in learn.recorder.history]


def last(run):
    return lambda seed: run(seed)[-1]


def main() -> None:
    epochs = 1 if QUICK else 5
    with Timer() as t:
        acc = over_seeds(last(lambda s: fit_mlp(s, epochs)), SEEDS)
    norm = over_seeds(last(lambda s: fit_mlp(s, epochs, normalized=True)), SEEDS)
    row("03", "MLP 784-50-10, SGD lr 0.5, batch 64, 5 epochs", "0.9625", fmt(acc), f"{DATA}; median (range) over {len(SEEDS)} seeds", t.seconds / len(SEEDS),
        note(against(0.9625, acc, len(SEEDS)), f"inputs normalised to mean 0, std 1 give {fmt(norm)}"))  # fmt: skip
    with Timer() as t:
        finder = ll.Learner(mlp([784, 50, 10]), lesson_loaders(64, seed=0), opt_func=torch.optim.SGD, progress=False)
        valley = finder.lr_find()["valley"]
        finder.plot_lr_find(path=plot("lesson_03_lr_find.png", "03: the LR finder on the lesson's MLP and data (the row's valley)"))
        better = over_seeds(last(lambda s: fit_mlp(s, epochs, lr=valley)), SEEDS)
    row("03", "same, at the LR finder's valley instead of 0.5", "-", fmt(better), f"valley = {valley:.3g}; median (range) over {len(SEEDS)} seeds", t.seconds / len(SEEDS))

    epochs = 1 if QUICK else 2
    def per_seed(**kw):
        """Each seed's accuracies after each epoch, and how many seeds diverged."""
        runs = []
        for s in SEEDS:
            try:
                runs.append(fit_mlp(s, epochs, **kw))
            except ll.NonFiniteLossError:
                pass
        return runs, len(SEEDS) - len(runs)

    def spread(result, i):
        runs, diverged = result
        v = sorted(r[i] for r in runs)
        stats = (v[len(v) // 2], v[0], v[-1])
        return (*stats, diverged) if diverged else stats

    with Timer() as t:
        per = per_seed()
    norm = per_seed(normalized=True)

    row("04", "MLP, callbacks + average stats, 2 epochs (after epoch 1)", "0.9354 (0.9587)", f"{fmt(spread(per, -1))} ({fmt(spread(per, 0))})",
        f"{DATA}; median (range) over {len(SEEDS)} seeds", t.seconds / len(SEEDS),
        note(against(0.9354, spread(per, -1), len(SEEDS)), f"normalised inputs give {fmt(spread(norm, -1))} ({fmt(spread(norm, 0))})"))  # fmt: skip

    epochs = 1 if QUICK else 3
    with Timer() as t:
        flat = over_seeds(last(lambda s: fit_mlp(s, epochs, bs=512)), SEEDS)
    norm = over_seeds(last(lambda s: fit_mlp(s, epochs, bs=512, normalized=True)), SEEDS)
    row("05", "MLP, batch 512, lr 0.5, 3 epochs", "0.9397", fmt(flat), f"{DATA}; median (range) over {len(SEEDS)} seeds", t.seconds / len(SEEDS),
        note(against(0.9397, flat, len(SEEDS)), f"normalised inputs: {fmt(norm)}"))  # fmt: skip
    sched = combine_scheds([0.3, 0.7], [sched_cos(0.3, 0.6), sched_cos(0.6, 0.2)])
    plot_schedule(sched, path=plot("lesson_05_schedule.png", "05: the lesson's cosine schedule, 0.3 -> 0.6 -> 0.2"), title="lr")
    with Timer() as t:
        cos = over_seeds(last(lambda s: fit_mlp(s, epochs, bs=512, cbs=[ll.ParamScheduler({"lr": sched})])), SEEDS)
    norm = over_seeds(last(lambda s: fit_mlp(s, epochs, bs=512, cbs=[ll.ParamScheduler({"lr": sched})], normalized=True)), SEEDS)
    row("05", "same with the lesson's cosine schedule (0.3 -> 0.6 -> 0.2)", "0.9400", fmt(cos), f"{DATA}; median (range) over {len(SEEDS)} seeds", t.seconds / len(SEEDS),
        note(against(0.9400, cos, len(SEEDS)), f"normalised inputs: {fmt(norm)}"))  # fmt: skip

    events = []

    class StopAfter10(ll.Callback):
        order = 100

        def after_step(self, learn):
            events.append("step")
            if learn.train_batches_done >= 10:
                raise ll.CancelTrainException

        def after_cancel_train(self, learn):
            events.append("after_cancel_train")

        def after_fit(self, learn):
            events.append("after_fit")

    with Timer() as t:
        ll.Learner(mlp([784, 50, 10]), lesson_loaders(64), progress=False, default_cbs=False).fit(1, cbs=[StopAfter10()])
    steps = events.count("step")
    row("05b", "cancellation: stop after 10 steps", "11 optimizer steps, then after_cancel_train, then after_fit",
        f"{steps} optimizer steps, then {', then '.join(e for e in events if e != 'step')}", "CancelTrainException raised in after_step once 10 steps were counted", t.seconds)  # fmt: skip


if __name__ == "__main__":
    main()
