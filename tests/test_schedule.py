"""Annealers, ParamScheduler, torch schedulers, one-cycle and the LR finder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import learnloop as ll
from learnloop.schedule import (
    annealer,
    combine_scheds,
    cos_1cycle_anneal,
    plot_schedule,
    sched_cos,
    sched_exp,
    sched_lin,
    sched_no,
    sched_poly,
)

from .conftest import tiny_dls


def test_annealer_exact_values():
    assert sched_lin(1, 2)(0.3) == 1.3
    assert sched_cos(1, 3)(0.0) == 1 and sched_cos(1, 3)(1.0) == 3 and sched_cos(1, 3)(0.5) == pytest.approx(2.0)
    assert sched_cos(5, 1)(0.25) == pytest.approx(1 + 4 * (1 + math.cos(math.pi * 0.25)) / 2)
    assert sched_no(4, 9)(0.7) == 4
    assert sched_exp(1e-4, 1e-2)(0.5) == pytest.approx(1e-3) and sched_exp(2, 8)(1.0) == pytest.approx(8)
    assert sched_poly(1, 3, 2)(0.5) == 1.5
    with pytest.raises(ValueError, match="positive"):
        sched_exp(0, 1)(0.5)


def test_custom_annealer():
    @annealer
    def sched_step(start, end, pos):
        return start if pos < 0.5 else end

    s = sched_step(3, 7)
    assert (s(0.2), s(0.8)) == (3, 7)


def test_combine_scheds_phases_and_boundaries():
    s = combine_scheds([0.3, 0.7], [sched_lin(0, 1), sched_lin(1, 5)])
    assert s(0.0) == 0 and s(0.15) == pytest.approx(0.5) and s(0.3) == pytest.approx(1.0)
    assert s(0.65) == pytest.approx(3.0) and s(1.0) == 5
    z = combine_scheds([0.0, 1.0], [sched_no(9, 9), sched_lin(1, 2)])  # a zero-length phase never runs
    assert z(0.0) == 1 and z(1.0) == 2
    one = combine_scheds([0.5, 0.5], cos_1cycle_anneal(0.1, 1.0, 0.01))
    assert one(0) == pytest.approx(0.1) and one(0.5) == pytest.approx(1.0) and one(1) == pytest.approx(0.01)
    three = combine_scheds([0.2, 0.3, 0.5], [sched_lin(0, 1), sched_lin(1, 2), sched_lin(2, 3)])
    assert three(1.0) == three(1.7) == 3  # past the end (a run given more steps) the last value holds, not an extrapolation
    assert three(0.35) == pytest.approx(1.5) and three(0.75) == pytest.approx(2.5)
    # fractions that sum to 1 up to float rounding of user input are accepted
    assert combine_scheds([0.3, 0.7 + 5e-7], [sched_no(1, 1)] * 2)(0.5) == 1


def test_combine_scheds_errors():
    with pytest.raises(ValueError, match="sum to 1"):
        combine_scheds([0.3, 0.3], [sched_no(1, 1)] * 2)
    with pytest.raises(ValueError, match=">= 0"):
        combine_scheds([-0.5, 1.5], [sched_no(1, 1)] * 2)
    with pytest.raises(ValueError, match="one fraction per schedule"):
        combine_scheds([1.0], [sched_no(1, 1)] * 2)


def test_plot_schedule(tmp_path):
    sched = sched_cos(1, 0)
    fig = plot_schedule(sched, path=tmp_path / "s.png", title="cosine")
    ax = fig.axes[0]
    (line,) = ax.lines
    xs, ys = line.get_xdata(), line.get_ydata()
    assert len(xs) == 200 and xs[0] == 0 and xs[-1] == 1 and np.allclose(np.diff(xs), 1 / 199)
    assert np.allclose(ys, [sched(x) for x in xs])  # the curve drawn is the schedule's own values
    assert ax.get_xlabel() == "training position" and ax.get_title() == "cosine"
    assert tuple(fig.get_size_inches()) == (5, 3.5)  # saved at 100 dpi: 500 x 350 pixels
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    short = plot_schedule(sched, n=5)
    assert np.allclose(short.axes[0].lines[0].get_xdata(), [0, 0.25, 0.5, 0.75, 1]) and short.axes[0].get_title() == ""


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_param_scheduler_sets_the_schedule_at_every_batch():
    dls = tiny_dls(n_train=10, bs=4)  # 3 batches an epoch, 6 in the fit
    sched = combine_scheds([0.5, 0.5], [sched_lin(0.1, 0.5), sched_cos(0.5, 0.01)])
    learn = ll.Learner(mlp(), dls, progress=False)
    learn.fit(2, cbs=[ll.ParamScheduler({"lr": sched, "mom": sched_lin(0.9, 0.8), "wd": sched_no(1e-4, 1e-4)})])
    hps = learn.recorder.hps
    assert [row[0] for row in hps["lr"]] == pytest.approx([sched(i / 6) for i in range(6)])
    assert [row[0] for row in hps["mom"]] == pytest.approx([0.9 - 0.1 * i / 6 for i in range(6)])
    assert [row[0] for row in hps["wd"]] == [1e-4] * 6


@pytest.mark.parametrize("opt_func, mom_key", [(torch.optim.SGD, "momentum"), (torch.optim.Adam, "betas"), (torch.optim.AdamW, "betas")])
def test_mom_maps_onto_each_optimizer(opt_func, mom_key):
    learn = ll.Learner(mlp(), tiny_dls(), opt_func=opt_func, lr=1e-3, progress=False)
    learn.fit(1, cbs=[ll.ParamScheduler({"mom": sched_no(0.7, 0.7), "wd": sched_no(0.02, 0.02)})])
    group = learn.opt.param_groups[0]
    assert (group[mom_key][0] if mom_key == "betas" else group[mom_key]) == 0.7
    assert group["weight_decay"] == 0.02 and learn.recorder.hps["mom"][0] == [0.7]
    if mom_key == "betas":
        learn.fit(1, cbs=[ll.ParamScheduler({"sqr_mom": sched_no(0.95, 0.95), "eps": sched_no(1e-6, 1e-6)})])
        assert learn.opt.param_groups[0]["betas"] == (0.7, 0.95) and learn.opt.param_groups[0]["eps"] == 1e-6


def test_discriminative_schedules_per_group():
    model = mlp()
    opt_func = lambda params, lr: torch.optim.SGD([{"params": model[0].parameters()}, {"params": model[2].parameters()}], lr=lr)
    learn = ll.Learner(model, tiny_dls(n_train=8, bs=4), opt_func=opt_func, progress=False)
    learn.fit(1, cbs=[ll.ParamScheduler({"lr": [sched_lin(0.01, 0.02), sched_lin(0.1, 0.2)]})])
    assert np.allclose(learn.recorder.hps["lr"], [[0.01, 0.1], [0.015, 0.15]])
    with pytest.raises(ValueError, match="3 schedules but the optimizer has 2 param groups"):
        learn.fit(1, cbs=[ll.ParamScheduler({"lr": [sched_no(1, 1)] * 3})])


def test_unknown_hyper_parameter_lists_what_there_is():
    learn = ll.Learner(mlp(), tiny_dls(), opt_func=torch.optim.SGD, progress=False)
    with pytest.raises(ValueError, match=r"no 'sqr_mom'; it has \['lr', 'mom', 'wd'\]"):
        learn.fit(1, cbs=[ll.ParamScheduler({"sqr_mom": sched_no(0.9, 0.9)})])


def test_torch_scheduler_per_batch_matches_torch():
    dls = tiny_dls(n_train=20, bs=4)  # 5 batches an epoch
    learn = ll.Learner(mlp(), dls, lr=0.1, progress=False)
    make = lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=10)
    learn.fit(2, cbs=[ll.TorchScheduler(make)])
    ref_opt = torch.optim.SGD(mlp().parameters(), lr=0.1)
    ref = make(ref_opt)
    expected = []
    for _ in range(10):
        expected.append(ref_opt.param_groups[0]["lr"])
        ref_opt.step()
        ref.step()
    assert [r[0] for r in learn.recorder.hps["lr"]] == pytest.approx(expected)


def test_torch_scheduler_per_epoch_and_plateau():
    learn = ll.Learner(mlp(), tiny_dls(n_train=8, bs=4), lr=0.1, progress=False)
    learn.fit(3, cbs=[ll.TorchScheduler(lambda o: torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.5), interval="epoch")])
    assert [r[0] for r in learn.recorder.hps["lr"]] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])

    class Worse(ll.Callback):  # make valid_loss rise so the plateau scheduler reacts
        order = 51

        def after_validate(self, learn):
            learn.recorder._row["valid_loss"] = float(learn.epoch)

    learn = ll.Learner(mlp(), tiny_dls(n_train=8, bs=4), lr=0.1, progress=False, cbs=[Worse()])
    plateau = lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=0, factor=0.1)
    learn.fit(3, cbs=[ll.TorchScheduler(plateau, interval="epoch")])
    assert [r[0] for r in learn.recorder.hps["lr"]][::2] == pytest.approx([0.1, 0.1, 0.01])  # worse after epoch 1
    with pytest.raises(ValueError, match="^ReduceLROnPlateau watches an epoch metric: use interval='epoch'"):
        learn.fit(1, cbs=[ll.TorchScheduler(plateau)])
    with pytest.raises(ValueError, match=r"'nope' is not in the Recorder's history; have \['epoch', 'train_loss', 'valid_loss'"):
        learn.fit(1, cbs=[ll.TorchScheduler(plateau, interval="epoch", monitor="nope")])

    class SkipFirst(ll.Callback):
        def before_epoch(self, learn):
            if learn.epoch == 0:
                raise ll.CancelEpochException()

    learn = ll.Learner(mlp(), tiny_dls(n_train=8, bs=4), lr=0.1, progress=False, cbs=[SkipFirst()])
    learn.fit(2, cbs=[ll.TorchScheduler(plateau, interval="epoch")])  # a cancelled epoch has no row to watch: no step, no error
    assert [h["epoch"] for h in learn.recorder.history] == [1]


def test_torch_scheduler_built_beforehand():
    learn = ll.Learner(mlp(), tiny_dls(n_train=8, bs=4), lr=0.1, progress=False)
    learn.fit(1)  # the optimizer exists from the first fit on
    learn.fit(2, cbs=[ll.TorchScheduler(torch.optim.lr_scheduler.StepLR(learn.opt, 1, gamma=0.5), interval="epoch")])
    assert [r[0] for r in learn.recorder.hps["lr"]] == pytest.approx([0.1, 0.1, 0.05, 0.05])

    class Halve:  # any object with step() will do; it need not say which optimizer it drives
        def __init__(self, opt):
            self.opt = opt

        def step(self):
            for g in self.opt.param_groups:
                g["lr"] /= 2

    learn.fit(2, cbs=[ll.TorchScheduler(Halve, interval="epoch")])
    assert [r[0] for r in learn.recorder.hps["lr"]] == pytest.approx([0.025, 0.025, 0.0125, 0.0125])
    other = torch.optim.SGD(mlp().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="^TorchScheduler: the scheduler drives another optimizer than learn.opt; pass a factory"):
        learn.fit(1, cbs=[ll.TorchScheduler(torch.optim.lr_scheduler.StepLR(other, 1))])
    with pytest.raises(TypeError, match=r"scheduler must be a scheduler \(with step\(\)\) or a function opt -> scheduler, got 0.5"):
        ll.TorchScheduler(0.5)


def test_fit_one_cycle_shape():
    learn = ll.Learner(mlp(), tiny_dls(n_train=40, bs=2), opt_func=torch.optim.Adam, lr=1e-2, progress=False)
    learn.fit_one_cycle(1, lr_max=1e-2, pct_start=0.25)
    lrs = [r[0] for r in learn.recorder.hps["lr"]]
    moms = [r[0] for r in learn.recorder.hps["mom"]]
    assert lrs[0] == pytest.approx(1e-2 / 25) and max(lrs) == pytest.approx(1e-2) and lrs.index(max(lrs)) == 5
    assert lrs[-1] == pytest.approx(sched_cos(1e-2, 1e-2 / 1e5)((19 / 20 - 0.25) / 0.75))
    assert moms[0] == pytest.approx(0.95) and moms[5] == pytest.approx(0.85) and moms.index(min(moms)) == 5


def test_fit_one_cycle_leaves_plain_sgd_momentum_alone():
    learn = ll.Learner(mlp(), tiny_dls(), lr=0.1, progress=False)
    learn.fit_one_cycle(1)
    assert set(r[0] for r in learn.recorder.hps["mom"]) == {0}


def test_fit_flat_cos():
    learn = ll.Learner(mlp(), tiny_dls(n_train=8, bs=1), lr=0.1, progress=False)
    learn.fit_flat_cos(1, pct_start=0.5)
    lrs = [r[0] for r in learn.recorder.hps["lr"]]
    assert lrs[:4] == [0.1] * 4 and lrs[4] == pytest.approx(0.1) and lrs[-1] < lrs[5] < lrs[4]


def test_fit_sgdr_restarts():
    learn = ll.Learner(mlp(), tiny_dls(n_train=8, bs=2), lr=0.1, progress=False)
    learn.fit_sgdr(2, cycle_len=1, cycle_mult=2)  # cycles of 1 and 2 epochs: 3 epochs, 12 batches
    lrs = [r[0] for r in learn.recorder.hps["lr"]]
    assert len(lrs) == 12 and len(learn.recorder.history) == 3
    assert lrs[0] == pytest.approx(0.1) and lrs[4] == pytest.approx(0.1)  # the restart
    assert lrs[3] < lrs[2] < lrs[1] < lrs[0] and lrs[11] < lrs[5]
    assert lrs[5] == pytest.approx(sched_cos(0.1, 0)(1 / 8))


def _state(learn):
    return (
        [t.clone() for t in learn.model.state_dict().values()],
        {k: {n: v.clone() for n, v in s.items()} for k, s in learn.opt.state_dict()["state"].items()},
        [dict(g, params=None) for g in learn.opt.state_dict()["param_groups"]],
        [dict(h) for h in learn.recorder.history],
        list(learn.recorder.losses),
        learn.dls.train.state_dict(),
        torch.get_rng_state().clone(),
        np.random.get_state()[1].copy(),
    )


def test_lr_find_restores_everything_bitwise():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))
    learn = ll.Learner(model, tiny_dls(n_train=64, bs=4), opt_func=lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9), lr=0.05, metrics=[ll.accuracy])
    learn.fit(1)
    before = _state(learn)
    result = learn.lr_find(num_it=30)
    after = _state(learn)
    for a, b in zip(before[0], after[0]):
        assert torch.equal(a, b)
    assert before[1].keys() == after[1].keys() and all(torch.equal(before[1][k][n], after[1][k][n]) for k in before[1] for n in before[1][k])
    assert before[2:6] == after[2:6]
    assert torch.equal(before[6], after[6]) and np.array_equal(before[7], after[7])
    assert set(result) == {"valley", "steep", "minimum"} and all(1e-7 <= v <= 10 for v in result.values())
    assert len(learn.lr_find_result.lrs) <= 30


def test_lr_find_before_any_fit_leaves_no_optimizer():
    learn = ll.Learner(mlp(), tiny_dls(n_train=64, bs=4), progress=False)
    learn.lr_find(num_it=10)
    assert learn.opt is None
    with pytest.raises(ValueError, match="Unknown suggestion"):
        learn.lr_find(num_it=10, suggest=("bottom",))


def test_lr_find_on_mnist_and_plot(mnist_dir, tmp_path):
    from learnloop.datasets import mnist_dataloaders

    ll.set_seed(0)
    dls = mnist_dataloaders(64, path=mnist_dir, seed=0)
    learn = ll.Learner(nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10)), dls, progress=False)
    suggestions = learn.lr_find()
    assert 1e-3 <= suggestions["steep"] <= 1
    fig = learn.plot_lr_find(path=tmp_path / "lr.png")
    assert fig.axes[0].get_xscale() == "log" and (tmp_path / "lr.png").exists()


def test_one_cycle_cnn_on_mnist(mnist_dir):
    """The lesson's CNN (Kaiming init, GeneralRelu, batch norm): one epoch of one-cycle at bs 128."""
    from learnloop.datasets import mnist_dataloaders
    from learnloop.init import init_model, kaiming_normal_
    from learnloop.layers import cnn

    ll.set_seed(0)
    dls = mnist_dataloaders(128, flatten=False, path=mnist_dir, seed=0)
    model = init_model(cnn((8, 16, 32, 32), norm="batch", leak=0.1, sub=0.4, maxv=6.0), kaiming_normal_, a=0.1)
    sgd = lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9)
    learn = ll.Learner(model, dls, opt_func=sgd, metrics=[ll.accuracy], progress=False)
    learn.fit_one_cycle(1, lr_max=0.4)
    assert learn.recorder.history[-1]["accuracy"] >= 0.98
    moms = [r[0] for r in learn.recorder.hps["mom"]]
    assert moms[0] == pytest.approx(0.95) and min(moms) == pytest.approx(0.85, abs=1e-3)


def test_one_cycle_schedules_exactly_with_its_defaults():
    """lr and momentum per batch are the documented defaults' schedules, value for value."""
    learn = ll.Learner(mlp(), tiny_dls(n_train=40, bs=2), opt_func=torch.optim.Adam, lr=1e-2, progress=False)
    learn.fit_one_cycle(1)
    top = 1e-2
    lr = combine_scheds([0.25, 0.75], [sched_cos(top / 25, top), sched_cos(top, top / 1e5)])
    mom = combine_scheds([0.25, 0.75], [sched_cos(0.95, 0.85), sched_cos(0.85, 0.95)])
    assert [r[0] for r in learn.recorder.hps["lr"]] == pytest.approx([lr(i / 20) for i in range(20)], rel=1e-12, abs=0)
    assert [r[0] for r in learn.recorder.hps["mom"]] == pytest.approx([mom(i / 20) for i in range(20)], rel=1e-12, abs=0)


RECIPES = {
    "fit_one_cycle": lambda learn, **kw: learn.fit_one_cycle(1, lr_max=kw.pop("lr", None), **kw),
    "fit_flat_cos": lambda learn, **kw: learn.fit_flat_cos(1, **kw),
    "fit_sgdr": lambda learn, **kw: learn.fit_sgdr(1, lr_max=kw.pop("lr", None), **kw),
}


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_pass_their_arguments_on(recipe, tmp_path):
    run = RECIPES[recipe]
    learn = ll.Learner(mlp(), tiny_dls(n_train=8, bs=2), opt_func=torch.optim.Adam, lr=1e-3, progress=False)
    learn.fit(1)
    opt = learn.opt
    seen = []

    class Count(ll.Callback):
        def after_step(self, learn):
            seen.append(learn.iter)

    run(learn, lr=0.05, wd=0.02, cbs=[Count()])
    assert learn.opt is opt and len(opt.state) > 0  # the optimizer and its state are kept by default
    assert len(seen) == 4 and {r[0] for r in learn.recorder.hps["wd"]} == {0.02}
    assert max(r[0] for r in learn.recorder.hps["lr"]) == pytest.approx(0.05)  # the lr given, not learn.lr
    run(learn, reset_opt=True)
    assert learn.opt is not opt
    what = "lr" if recipe == "fit_flat_cos" else "lr_max"
    with pytest.raises(ValueError, match=rf"^{what}: got 2 values for 1 param groups"):
        run(learn, lr=[0.1, 0.2])
    with pytest.raises(ValueError, match=rf"^{what} must be a positive number, got -1"):
        run(learn, lr=-1)
    with pytest.raises(FileNotFoundError, match="No checkpoint at .*missing"):
        run(learn, resume=tmp_path / "missing")


def test_flat_cos_and_sgdr_defaults():
    learn = ll.Learner(mlp(), tiny_dls(n_train=8, bs=1), lr=0.1, progress=False)
    learn.fit_flat_cos(1)  # flat for 3/4 of the fit
    lrs = [r[0] for r in learn.recorder.hps["lr"]]
    assert lrs[:6] == [0.1] * 6 and lrs[6] == pytest.approx(sched_cos(0.1, 0.0)(0.0)) and lrs[7] == pytest.approx(sched_cos(0.1, 0.0)(0.5))
    learn.fit_sgdr(2)  # cycles of 1 and 2 epochs by default
    lrs = [r[0] for r in learn.recorder.hps["lr"]]
    assert len(learn.recorder.history) == 3 and lrs[8] == pytest.approx(0.1) and lrs[1] == pytest.approx(sched_cos(0.1, 0)(1 / 8))
    for bad in ({"n_cycles": 0}, {"cycle_len": 0}, {"cycle_mult": 0}):
        with pytest.raises(ValueError, match="^n_cycles, cycle_len and cycle_mult must all be at least 1.$"):
            learn.fit_sgdr(**{"n_cycles": 1, **bad})
    learn.fit_sgdr(1, cycle_mult=1)  # the smallest values are allowed
    assert len(learn.recorder.history) == 1


def test_lr_find_defaults_and_epochs_enough_for_num_it():
    learn = ll.Learner(mlp(), tiny_dls(n_train=64, bs=4), progress=False)  # 16 batches an epoch
    learn.lr_find(stop_div=False)
    lrs = learn.lr_find_result.lrs
    assert len(lrs) == 100 and lrs[0] == pytest.approx(1e-7) and lrs[-1] == pytest.approx(10.0)
    learn.lr_find(num_it=40, end_lr=1e3, stop_div=False)  # past the end of the first epoch, diverging or not
    assert len(learn.lr_find_result.lrs) == 40
    with pytest.raises(RuntimeError, match=r"^Run learn.lr_find\(\) first.$"):
        ll.Learner(mlp(), tiny_dls(), progress=False).plot_lr_find()


class _Stub:
    """What LRFinder reads of a learner: the optimizer and the batch's loss."""

    def __init__(self):
        self.opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
        self.loss = None


def _sweep(finder, losses):
    """Feed `losses` to the finder batch by batch; the number of batches before it stopped."""
    learn = _Stub()
    finder.before_fit(learn)
    for n, value in enumerate(losses, 1):
        finder.before_batch(learn)
        learn.loss = torch.tensor(value, dtype=torch.float64)
        try:
            finder.after_loss(learn)
            finder.after_batch(learn)
        except ll.CancelFitException:
            return n
    return None


def _debiased_ema(values, beta):
    """The exponential moving average of `values` with weight `beta`, divided by 1 - beta**i."""
    avg, out = 0.0, []
    for i, v in enumerate(values, 1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta**i))
    return out


def test_lr_finder_sweep_smoothing_and_stops_against_their_formulas():
    losses = [2.0, 1.5, 1.7, 1.2, 1.0, 0.9, 1.1, 0.8]
    f = ll.LRFinder(1e-4, 1.0, num_it=8, beta=0.9)
    assert _sweep(f, losses) == 8  # stops after num_it batches
    assert f.lrs == pytest.approx([1e-4 * (1.0 / 1e-4) ** (i / 7) for i in range(8)], rel=1e-12)
    assert f.losses == pytest.approx(_debiased_ema(losses, 0.9), rel=1e-12)
    # the defaults: 1e-7 to 10 over 100 batches, smoothing 0.98, stopping on divergence
    f = ll.LRFinder()
    assert _sweep(f, [1.0] * 100) == 100 and f.lrs[0] == 1e-7 and f.lrs[-1] == pytest.approx(10.0)
    assert _sweep(f, [1.0] * 10 + [1e3] * 10) is not None and len(f.lrs) < 20
    assert f.losses == pytest.approx(_debiased_ema([1.0] * 10 + [1e3], 0.98), rel=1e-12)  # beta 0.98; stopped at the first batch above 4x the best
    # divergence: above 4 times the lowest smoothed loss stops; exactly 4 times does not
    for jump, stops in ((4.0, False), (4.5, True)):
        f = ll.LRFinder(1e-3, 1.0, num_it=3, beta=0.0)  # beta 0: the smoothed loss is the loss
        assert (_sweep(f, [1.0, jump, 1.0]) == 2) is stops
    assert _sweep(ll.LRFinder(1e-3, 1.0, num_it=3, beta=0.0, stop_div=False), [1.0, 100.0, 1.0]) == 3
    f = ll.LRFinder(1e-3, 1.0, num_it=5)
    assert _sweep(f, [1.0, float("nan"), 1.0]) == 2 and f.lrs == [1e-3]  # a NaN loss stops the sweep unrecorded
    ll.LRFinder(1e-3, 1.0, num_it=2)  # the fewest allowed
    for bad in ({"start_lr": 0.0}, {"start_lr": 1e-3, "end_lr": 1e-3}, {"num_it": 1}):
        with pytest.raises(ValueError, match="start_lr < end_lr|num_it must be at least 2"):
            ll.LRFinder(**{"start_lr": 1e-3, "end_lr": 1.0, **bad})


def test_suggestions_on_hand_made_curves():
    from learnloop.schedule.lr_finder import suggest, suggest_minimum, suggest_steep, suggest_valley, useful_stretch

    # useful_stretch: after the first tenth (at least one point), up to the lowest loss
    assert useful_stretch([5.0] * 19 + [1.0] + [9.0] * 5) == (2, 19)
    assert useful_stretch([5.0, 4.0, 3.0, 1.0, 2.0]) == (1, 3)  # a tenth of 5 points rounds to 0: still skip one
    assert useful_stretch([5.0] * 13 + [1.0] + [9.0] * 100) == (11, 13)  # 114 points: 11 skipped
    assert useful_stretch([5.0, 1.0] + [9.0] * 18) == (0, 1) and useful_stretch([5.0, 4.0, 1.0] + [9.0] * 17) == (0, 2)
    lrs = [10.0**k for k in range(-6, 4)]  # 10 points, one decade apart
    assert suggest_minimum(lrs, [5, 5, 5, 5, 4, 3, 2, 1, 9, 9]) == pytest.approx(lrs[7] / 10)
    assert suggest_minimum(lrs, [5, 5, 1, 5, 5, 5, 5, 5, 9, 9]) == lrs[1]  # not below the useful stretch
    # steep: the biggest fall per unit of log(lr), within the stretch; the warm-up's fall does not count
    assert suggest_steep(lrs, [9, 1, 5.0, 4.5, 4.0, 2.0, 1.8, 0.5, 3, 4]) == lrs[4]
    assert suggest_steep(lrs, [9, 5.0, 4.9, 4.0, 9, 9, 9, 9, 9, 9]) == lrs[2]  # a stretch of two steps is searched
    assert suggest_steep(lrs, [9, 5.0, 4.0, 9, 9, 9, 9, 9, 9, 9]) == lrs[1]  # one step: its start
    uneven = [1e-6, 1e-5, 1e-4, 1e-3, 1.1e-3, 1.2e-3, 1e-1, 1.0, 10.0, 100.0]  # slopes need the spacing
    assert suggest_steep(uneven, [9, 5.0, 4.0, 3.0, 2.9, 2.8, 1.0, 0.5, 3, 4]) == uneven[4]
    # valley: from where the loss has fallen a tenth of the way, to the minimum; the middle, in steps
    assert suggest_valley(lrs, [9, 5.0, 5.0, 4.8, 4.0, 3.0, 2.0, 1.0, 3, 4]) == lrs[(4 + 7) // 2]
    assert suggest_valley(lrs, [3.0, 5.0, 5.0, 5.0, 4.0, 3.0, 2.0, 1.0, 3, 4]) == lrs[(4 + 7) // 2]  # warm-up point ignored
    assert set(suggest(lrs[:3], [3.0, 2.0, 1.0], ["valley", "steep", "minimum"])) == {"valley", "steep", "minimum"}
    with pytest.raises(RuntimeError, match="saw only 2 batches"):
        suggest(lrs[:2], [2.0, 1.0], ["valley"])


def test_plot_lr_find_draws_the_sweep_the_zoom_and_the_suggestions():
    from learnloop.schedule.lr_finder import LRFindResult, plot_lr_find

    lrs = [10.0**k for k in range(-6, 4)]
    losses = [3.0, 2.9, 2.5, 2.0, 1.2, 1.0, 1.5, 4.0, 9.0, 20.0]
    fig = plot_lr_find(LRFindResult(lrs, losses, {"valley": lrs[4], "steep": 2e-3}))
    ax = fig.axes[0]
    assert tuple(fig.get_size_inches()) == (6, 4)
    curve, *marks = ax.get_lines()
    assert list(curve.get_xdata()) == lrs and list(curve.get_ydata()) == losses and ax.get_xscale() == "log"
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("learning rate", "smoothed loss", "LR finder")
    low, first = 1.0, 3.0
    assert ax.get_ylim() == pytest.approx((low - 0.05 * (first - low + 1e-8), first + 0.5 * (first - low) + 1e-8), rel=1e-12)
    # each suggestion at its lr, on the curve at the nearest swept lr, with its own marker and label
    assert [(m.get_marker(), list(m.get_xdata()), list(m.get_ydata()), m.get_label()) for m in marks] == [
        ("o", [lrs[4]], [1.2], f"valley: {lrs[4]:.2e}"),
        ("^", [2e-3], [2.0], "steep: 2.00e-03"),
    ]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["valley: 1.00e-02", "steep: 2.00e-03"]


def test_lr_find_restores_callback_state_changed_in_place():
    class Seen(ll.Callback):
        def __init__(self):
            self.seen = []

        def after_batch(self, learn):
            self.seen.append(learn.iter)  # grows the very list its state_dict hands out

        def state_dict(self):
            return {"seen": self.seen}

        def load_state_dict(self, state):
            self.seen = state["seen"]

    cb = Seen()
    learn = ll.Learner(mlp(), tiny_dls(n_train=16, bs=4), lr=0.1, progress=False, cbs=[cb])
    learn.fit(1)
    before = list(cb.seen)
    learn.lr_find(num_it=6)
    assert cb.seen == before
