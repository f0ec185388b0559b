"""learnloop.optim against torch.optim and reference formulas."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

import learnloop as ll
from learnloop import optim

from .conftest import tiny_dls


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def fixed_grads(m, n_steps=100, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(p.shape, generator=g) for p in m.parameters()] for _ in range(n_steps)]


def run(m, opt, grads):
    for gs in grads:
        for p, gr in zip(m.parameters(), gs):
            p.grad = gr.clone()
        opt.step()
        opt.zero_grad()
    return [p.detach().clone() for p in m.parameters()]


def same(a, b, tol=1e-6):
    return all(torch.allclose(x, y, atol=tol, rtol=0) for x, y in zip(a, b))


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda p: optim.SGD(p, lr=0.01), lambda p: torch.optim.SGD(p, lr=0.01)),
        (lambda p: optim.SGD(p, lr=0.01, mom=0.9), lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9)),
        (lambda p: optim.SGD(p, lr=0.01, mom=0.9, wd=0.1, decouple_wd=False), lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, weight_decay=0.1)),
        # without momentum, decoupled weight decay and L2 are the same update
        (lambda p: optim.SGD(p, lr=0.01, wd=0.1), lambda p: torch.optim.SGD(p, lr=0.01, weight_decay=0.1)),
        (lambda p: optim.Adam(p, lr=1e-3, mom=0.9, sqr_mom=0.99, eps=1e-5, wd=0.05), lambda p: torch.optim.AdamW(p, lr=1e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.05)),
        (lambda p: optim.Adam(p, lr=1e-3, wd=0.05, decouple_wd=False), lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.05)),
        (lambda p: optim.RMSProp(p, lr=1e-3, sqr_mom=0.9, eps=1e-6), lambda p: torch.optim.RMSprop(p, lr=1e-3, alpha=0.9, eps=1e-6)),
    ],
)
def test_parity_with_torch_over_100_steps(ours, theirs):
    a, b = model(), model()
    grads = fixed_grads(a)
    assert same(run(a, ours(a.parameters()), grads), run(b, theirs(b.parameters()), grads))


def test_decoupled_wd_with_momentum_follows_its_formula():
    m = model()
    grads = fixed_grads(m, 20)
    ref = [p.detach().clone() for p in m.parameters()]
    bufs = [torch.zeros_like(p) for p in ref]
    lr, mom, wd = 0.01, 0.9, 0.1
    for gs in grads:
        for i, g in enumerate(gs):
            ref[i] = ref[i] * (1 - lr * wd)
            bufs[i] = mom * bufs[i] + g
            ref[i] = ref[i] - lr * bufs[i]
    assert same(run(m, optim.SGD(m.parameters(), lr=lr, mom=mom, wd=wd), grads), ref)


def lamb_reference(ps, grads, lr, b1, b2, eps, wd):
    """LAMB written out step by step, tensor by tensor (You et al. 2019, with Adam's debiasing)."""
    ps = [p.detach().clone() for p in ps]
    ms, vs = [torch.zeros_like(p) for p in ps], [torch.zeros_like(p) for p in ps]
    for t, gs in enumerate(grads, 1):
        for i, g in enumerate(gs):
            ms[i] = b1 * ms[i] + (1 - b1) * g
            vs[i] = b2 * vs[i] + (1 - b2) * g * g
            u = (ms[i] / (1 - b1**t)) / ((vs[i] / (1 - b2**t)).sqrt() + eps) + wd * ps[i]
            r1, r2 = ps[i].norm().item(), u.norm().item()
            ps[i] = ps[i] - lr * (min(r1 / r2, 10.0) if r1 > 0 and r2 > 0 else 1.0) * u
    return ps


def test_lamb_matches_reference_formula():
    m = model()
    grads = fixed_grads(m, 30)
    want = lamb_reference(m.parameters(), grads, lr=1e-2, b1=0.9, b2=0.99, eps=1e-6, wd=0.01)
    assert same(run(m, optim.LAMB(m.parameters(), lr=1e-2, wd=0.01), grads), want, tol=1e-5)


def test_lamb_moves_a_zero_parameter():
    p = nn.Parameter(torch.zeros(4))
    opt = optim.LAMB([p], lr=0.1)
    p.grad = torch.ones(4)
    opt.step()
    assert torch.all(p < 0)


def test_state_dict_round_trip_resumes_identically():
    a = model()
    grads = fixed_grads(a, 40)
    opt = optim.Adam(a.parameters(), lr=1e-3, wd=0.01)
    run(a, opt, grads[:20])
    b = copy.deepcopy(a)
    opt_b = optim.Adam(b.parameters(), lr=5.0)  # different hypers: the state dict restores them
    opt_b.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert opt_b.param_groups[0]["lr"] == 1e-3
    assert torch.equal(run(a, opt, grads[20:])[0], run(b, opt_b, grads[20:])[0])


def test_param_groups_defaults_and_errors():
    m = model()
    opt = optim.Optimizer([{"params": m[0].parameters(), "lr": 0.1}, {"params": m[2].parameters()}], [optim.weight_decay, optim.sgd_step], lr=0.01)
    assert [h["lr"] for h in opt.hypers] == [0.1, 0.01] and opt.hypers[0]["wd"] == 0.0
    with pytest.raises(TypeError, match=r"sgd_step needs hyper-parameter\(s\) \['lr'\]"):
        optim.Optimizer(m.parameters(), [optim.sgd_step])
    with pytest.raises(TypeError, match=r"adam_step needs hyper-parameter\(s\) \['mom', 'sqr_mom'\]"):
        optim.Optimizer(m.parameters(), [optim.adam_step], [optim.StepCount()], lr=0.1)


def test_plain_loop_and_learner_and_schedules():
    # in a hand-written loop
    m = model()
    opt = optim.Adam(m.parameters(), lr=1e-2)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.2
    # in the Learner, with one-cycle driving lr and mom, and a scheduled wd and eps
    learn = ll.Learner(model(), tiny_dls(n_train=16, bs=4, n_in=6), opt_func=optim.Adam, lr=1e-2, progress=False)
    learn.fit_one_cycle(2, wd=0.01)
    hps = learn.recorder.hps
    assert set(hps) == {"lr", "mom", "sqr_mom", "wd", "eps"}
    assert hps["mom"][0][0] == pytest.approx(0.95) and hps["wd"][0] == [0.01]
    learn.fit(1, cbs=[ll.ParamScheduler({"sqr_mom": ll.sched_lin(0.9, 0.99), "eps": ll.sched_no(1e-7, 1e-7)})])
    assert learn.opt.param_groups[0]["eps"] == 1e-7
    assert learn.lr_find(num_it=10)  # the LR finder works with these optimizers too


def test_torch_schedulers_accept_it():
    m = model()
    opt = optim.SGD(m.parameters(), lr=0.1, mom=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    run(m, opt, fixed_grads(m, 1))
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    assert math.isfinite(opt.param_groups[0]["mom"])


@pytest.mark.parametrize("seed", range(4))
def test_parity_with_random_non_default_hyper_parameters(seed):
    """Every factory argument reaches the update: random values, none of them a default."""
    g = torch.Generator().manual_seed(seed)

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand((), generator=g).item()

    lr, mom, sqr_mom, eps, wd = u(1e-3, 3e-2), u(0.5, 0.85), u(0.9, 0.98), u(1e-7, 1e-3), u(0.01, 0.2)
    pairs = [
        (lambda p: optim.SGD(p, lr=lr, mom=mom), lambda p: torch.optim.SGD(p, lr=lr, momentum=mom)),
        (lambda p: optim.SGD(p, lr=lr, mom=mom, wd=wd, decouple_wd=False), lambda p: torch.optim.SGD(p, lr=lr, momentum=mom, weight_decay=wd)),
        (lambda p: optim.Adam(p, lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd), lambda p: torch.optim.AdamW(p, lr=lr, betas=(mom, sqr_mom), eps=eps, weight_decay=wd)),
        (lambda p: optim.Adam(p, lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd, decouple_wd=False),
         lambda p: torch.optim.Adam(p, lr=lr, betas=(mom, sqr_mom), eps=eps, weight_decay=wd)),
        (lambda p: optim.RMSProp(p, lr=lr, sqr_mom=sqr_mom, eps=eps, wd=wd, decouple_wd=False), lambda p: torch.optim.RMSprop(p, lr=lr, alpha=sqr_mom, eps=eps, weight_decay=wd)),
    ]  # fmt: skip
    for ours, theirs in pairs:
        a, b = model(), model()
        grads = fixed_grads(a, 50, seed=seed)
        assert same(run(a, ours(a.parameters()), grads), run(b, theirs(b.parameters()), grads), tol=1e-5)
    # RMSProp's decoupled weight decay: p <- p * (1 - lr * wd), then torch's step without decay
    a, b = model(), model()
    grads = fixed_grads(a, 50, seed=seed)
    ref = torch.optim.RMSprop(b.parameters(), lr=lr, alpha=sqr_mom, eps=eps)
    for gs in grads:
        with torch.no_grad():
            for p, gr in zip(b.parameters(), gs):
                p.mul_(1 - lr * wd)
                p.grad = gr.clone()
        ref.step()
    assert same(run(a, optim.RMSProp(a.parameters(), lr=lr, sqr_mom=sqr_mom, eps=eps, wd=wd), grads), [p.detach() for p in b.parameters()], tol=1e-5)
    m = model()
    grads = fixed_grads(m, 30, seed=seed)
    want = lamb_reference(m.parameters(), grads, lr, mom, sqr_mom, eps, wd)
    assert same(run(m, optim.LAMB(m.parameters(), lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd), grads), want, tol=1e-5)


def test_factory_defaults_are_the_documented_ones():
    ps = list(model().parameters())
    hyper = {k: v for k, v in optim.SGD(ps, lr=0.1).hypers[0].items() if k != "lr"}
    assert hyper == {"mom": 0.0, "wd": 0.0}
    assert optim.Adam(ps, lr=0.1).hypers[0] == {"lr": 0.1, "mom": 0.9, "sqr_mom": 0.99, "eps": 1e-5, "wd": 0.0}
    assert optim.RMSProp(ps, lr=0.1).hypers[0] == {"lr": 0.1, "sqr_mom": 0.99, "eps": 1e-5, "wd": 0.0}
    assert optim.LAMB(ps, lr=0.1).hypers[0] == {"lr": 0.1, "mom": 0.9, "sqr_mom": 0.99, "eps": 1e-6, "wd": 0.0}
    # weight decay is decoupled unless asked otherwise
    for make in (optim.SGD, optim.Adam, optim.RMSProp):
        assert make(ps, lr=0.1).steppers[0] is optim.weight_decay
        assert make(ps, lr=0.1, decouple_wd=False).steppers[0] is optim.l2_reg
    # SGD keeps per-parameter state only with momentum
    plain, heavy = optim.SGD(ps, lr=0.1), optim.SGD(ps, lr=0.1, mom=0.9)
    for p in ps:
        p.grad = torch.ones_like(p)
    plain.step()
    heavy.step()
    assert plain.stats == [] and not any(plain.state[p] for p in ps)
    assert all(set(heavy.state[p]) == {"grad_avg"} for p in ps)


def test_statistics_bring_their_own_defaults_and_formulas():
    p = nn.Parameter(torch.zeros(3))
    # a statistic's defaults fill what the caller leaves out
    assert optim.Optimizer([p], [optim.momentum_step], [optim.AverageGrad()], lr=0.1).hypers[0]["mom"] == 0.9
    assert optim.Optimizer([p], [optim.rms_step], [optim.AverageSqrGrad()], lr=0.1).hypers[0]["sqr_mom"] == 0.99
    # one stepper and one statistic need no list
    opt = optim.Optimizer([p], optim.rms_step, optim.AverageSqrGrad(dampening=False), lr=0.1, sqr_mom=0.5)
    assert opt.steppers == [optim.rms_step] and len(opt.stats) == 1
    grads = [torch.tensor([1.0, -2.0, 3.0]), torch.tensor([0.5, 0.5, -1.0])]
    for gr in grads:
        p.grad = gr.clone()
        opt.step()
    # undampened: sqr_avg = 0.5 * g1**2 + g2**2 (no (1 - sqr_mom) factor)
    assert torch.allclose(opt.state[p]["sqr_avg"], 0.5 * grads[0] ** 2 + grads[1] ** 2)
    assert not hasattr(optim.StepCount(), "dampening") and optim.StepCount().init_state(p) == {"step": 0}


def test_optimizer_errors_name_the_problem():
    ps = list(model().parameters())
    for bad in (0, 0.0, -0.1, float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(ValueError, match="lr must be a positive number"):
            optim.SGD(ps, lr=bad)

    def plain(ps, grads, states, hp):  # not decorated
        pass

    with pytest.raises(TypeError, match=r"^plain is not a stepper: decorate it with @stepper"):
        optim.Optimizer(ps, [plain], lr=0.1)

    class Step:  # a callable object has no __name__: the message shows the object
        def __call__(self, ps, grads, states, hp):
            pass

        def __repr__(self):
            return "Step()"

    with pytest.raises(TypeError, match=r"^Step\(\) is not a stepper"):
        optim.Optimizer(ps, [Step()], lr=0.1)
    with pytest.raises(TypeError, match="stats must be Stat objects"):
        optim.Optimizer(ps, [optim.sgd_step], [object()], lr=0.1)

    class Decay(optim.Stat):
        requires = ("beta",)
        defaults: dict = {}

    with pytest.raises(TypeError, match=r"Decay needs hyper-parameter\(s\) \['beta'\]"):
        optim.Optimizer(ps, [optim.sgd_step], [Decay()], lr=0.1)
    for make in (optim.Adam, optim.LAMB):
        for kw in ({"mom": 1.0}, {"sqr_mom": 1.0}, {"mom": -0.1}):
            with pytest.raises(ValueError, match=rf"{next(iter(kw))} must be in \[0, 1\)"):
                make(ps, lr=0.1, **kw)
        make(ps, lr=0.1, mom=0.0, sqr_mom=0.0)  # no averaging at all is allowed


def test_stepper_records_what_it_needs():
    @optim.stepper()
    def bare(ps, grads, states, hp):
        pass

    assert (bare.defaults, bare.requires, bare.before_stats) == ({}, (), False)

    @optim.stepper(defaults={"k": 2.0}, requires=["k"], before_stats=True)
    def full(ps, grads, states, hp):
        pass

    assert (full.defaults, full.requires, full.before_stats) == ({"k": 2.0}, ("k",), True)
    assert optim.momentum_step.before_stats is False and optim.l2_reg.before_stats is True
