"""Optimizers built from steppers and statistics, as in the course.

A *statistic* keeps per-parameter state (a running average of gradients, of squared gradients,
a step count); a *stepper* changes the parameters using the gradients, the state and the
hyper-parameters. An optimizer is a list of each, plus hyper-parameters whose defaults come from
the pieces that use them. Every hyper-parameter lives in the param groups under learnloop's
names (lr, mom, sqr_mom, eps, wd), where schedulers, the Recorder and the LR finder find them.

    opt = Optimizer(model.parameters(), [weight_decay, adam_step],
                    [AverageGrad(dampening=True), AverageSqrGrad(), StepCount()], lr=1e-3, wd=1e-2)

Updates use PyTorch's multi-tensor `torch._foreach_*` kernels: one call per group, not per tensor.
Bookkeeping (param groups, state_dict, zero_grad) is torch.optim.Optimizer's, which this
subclasses, so torch's schedulers and tools accept these optimizers too.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Sequence

import torch

__all__ = [
    "Optimizer",
    "stepper",
    "sgd_step",
    "weight_decay",
    "l2_reg",
    "momentum_step",
    "adam_step",
    "rms_step",
    "lamb_step",
    "Stat",
    "AverageGrad",
    "AverageSqrGrad",
    "StepCount",
    "SGD",
    "Adam",
    "RMSProp",
    "LAMB",
]

Tensors = list[torch.Tensor]


def stepper(defaults: dict[str, float] | None = None, requires: Sequence[str] = (), before_stats: bool = False) -> Callable:
    """Decorator for `f(params, grads, states, hp)`: records the hyper-parameters it needs
    (`requires`), their defaults, and whether it changes gradients before statistics see them."""

    def wrap(f: Callable) -> Callable:
        f.defaults, f.requires, f.before_stats = dict(defaults or {}), tuple(requires), before_stats
        return f

    return wrap


@stepper(requires=("lr",))
def sgd_step(ps: Tensors, grads: Tensors, states: list[dict], hp: dict) -> None:
    """p <- p - lr * grad"""
    torch._foreach_add_(ps, grads, alpha=-hp["lr"])


@stepper(defaults={"wd": 0.0}, requires=("lr", "wd"))
def weight_decay(ps: Tensors, grads: Tensors, states: list[dict], hp: dict) -> None:
    """Decoupled weight decay: p <- p * (1 - lr * wd), apart from the gradient step."""
    if hp["wd"]:
        torch._foreach_mul_(ps, 1 - hp["lr"] * hp["wd"])


@stepper(defaults={"wd": 0.0}, requires=("wd",), before_stats=True)
def l2_reg(ps: Tensors, grads: Tensors, states: list[dict], hp: dict) -> None:
    """L2 regularisation: grad <- grad + wd * p, before any statistic averages the gradient."""
    if hp["wd"]:
        torch._foreach_add_(grads, ps, alpha=hp["wd"])


@stepper(requires=("lr",))
def momentum_step(ps: Tensors, grads: Tensors, states: list[dict], hp: dict) -> None:
    """p <- p - lr * grad_avg (needs the AverageGrad statistic)."""
    torch._foreach_add_(ps, [s["grad_avg"] for s in states], alpha=-hp["lr"])


def _debias(mom: float, step: int) -> float:
    # The weight a dampened running average, started at 0, has gathered after `step` steps:
    # (1 - mom) * (1 + mom + ... + mom**(step - 1)).
    return 1 - mom**step


def _by_step(states: list[dict]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, s in enumerate(states):
        groups.setdefault(s["step"], []).append(i)
    return groups


@stepper(defaults={"eps": 1e-5}, requires=("lr", "mom", "sqr_mom", "eps"))
def adam_step(ps: Tensors, grads: Tensors, states: list[dict], hp: dict) -> None:
    """p <- p - lr * (grad_avg / debias1) / (sqrt(sqr_avg / debias2) + eps)
    (needs AverageGrad(dampening=True), AverageSqrGrad and StepCount)."""
    for step, idx in _by_step(states).items():
        d1, d2 = _debias(hp["mom"], step), _debias(hp["sqr_mom"], step)
        denom = torch._foreach_sqrt([states[i]["sqr_avg"] for i in idx])
        torch._foreach_div_(denom, math.sqrt(d2))
        torch._foreach_add_(denom, hp["eps"])
        torch._foreach_addcdiv_([ps[i] for i in idx], [states[i]["grad_avg"] for i in idx], denom, value=-hp["lr"] / d1)


@stepper(defaults={"eps": 1e-5}, requires=("lr", "eps"))
def rms_step(ps: Tensors, grads: Tensors, states: list[dict], hp: dict) -> None:
    """p <- p - lr * grad / (sqrt(sqr_avg) + eps) (needs AverageSqrGrad)."""
    denom = torch._foreach_sqrt([s["sqr_avg"] for s in states])
    torch._foreach_add_(denom, hp["eps"])
    torch._foreach_addcdiv_(ps, grads, denom, value=-hp["lr"])


@stepper(defaults={"eps": 1e-6, "wd": 0.0}, requires=("lr", "mom", "sqr_mom", "eps", "wd"))
def lamb_step(ps: Tensors, grads: Tensors, states: list[dict], hp: dict) -> None:
    """LAMB: the Adam direction plus wd * p, scaled per tensor by the trust ratio
    ||p|| / ||direction|| (capped at 10; 1 when either norm is 0, so a zero tensor still moves)."""
    for p, s in zip(ps, states):
        d1, d2 = _debias(hp["mom"], s["step"]), _debias(hp["sqr_mom"], s["step"])
        direction = (s["grad_avg"] / d1) / ((s["sqr_avg"] / d2).sqrt() + hp["eps"]) + hp["wd"] * p
        r1, r2 = p.norm(), direction.norm()
        trust = torch.where((r1 > 0) & (r2 > 0), (r1 / r2).clamp(max=10.0), torch.ones_like(r1))
        p.sub_(hp["lr"] * trust * direction)


class Stat:
    """A per-parameter statistic: its hyper-parameter defaults, initial state, and update."""

    defaults: dict[str, float] = {}
    requires: tuple[str, ...] = ()

    def init_state(self, p: torch.Tensor) -> dict[str, Any]:
        raise NotImplementedError

    def update(self, ps: Tensors, grads: Tensors, states: list[dict], hp: dict) -> None:
        raise NotImplementedError


class AverageGrad(Stat):
    """grad_avg <- mom * grad_avg + (1 - mom if dampening else 1) * grad (starting from 0)."""

    requires = ("mom",)

    def __init__(self, dampening: bool = False):
        self.dampening = dampening
        self.defaults = {"mom": 0.9}

    def init_state(self, p: torch.Tensor) -> dict[str, Any]:
        return {"grad_avg": torch.zeros_like(p)}

    def update(self, ps: Tensors, grads: Tensors, states: list[dict], hp: dict) -> None:
        avgs = [s["grad_avg"] for s in states]
        torch._foreach_mul_(avgs, hp["mom"])
        torch._foreach_add_(avgs, grads, alpha=1 - hp["mom"] if self.dampening else 1.0)


class AverageSqrGrad(Stat):
    """sqr_avg <- sqr_mom * sqr_avg + (1 - sqr_mom if dampening else 1) * grad**2 (from 0)."""

    requires = ("sqr_mom",)

    def __init__(self, dampening: bool = True):
        self.dampening = dampening
        self.defaults = {"sqr_mom": 0.99}

    def init_state(self, p: torch.Tensor) -> dict[str, Any]:
        return {"sqr_avg": torch.zeros_like(p)}

    def update(self, ps: Tensors, grads: Tensors, states: list[dict], hp: dict) -> None:
        avgs = [s["sqr_avg"] for s in states]
        torch._foreach_mul_(avgs, hp["sqr_mom"])
        torch._foreach_addcmul_(avgs, grads, grads, value=1 - hp["sqr_mom"] if self.dampening else 1.0)


class StepCount(Stat):
    """step <- step + 1: how many updates this parameter has had (for debiasing)."""

    def init_state(self, p: torch.Tensor) -> dict[str, Any]:
        return {"step": 0}

    def update(self, ps: Tensors, grads: Tensors, states: list[dict], hp: dict) -> None:
        for s in states:
            s["step"] += 1


class Optimizer(torch.optim.Optimizer):
    """An optimizer made of `steppers` (applied in order) and `stats` (updated before them).

    Args:
        params: tensors, or param groups (dicts with "params" and their own hyper-parameters).
        steppers: functions decorated with `@stepper`.
        stats: `Stat` objects.
        **hypers: hyper-parameters, overriding the defaults the steppers and stats declare.
    """

    def __init__(self, params: Iterable[Any], steppers: Sequence[Callable] | Callable, stats: Sequence[Stat] | Stat = (), **hypers: float):
        self.steppers = list(steppers) if isinstance(steppers, (list, tuple)) else [steppers]
        self.stats = list(stats) if isinstance(stats, (list, tuple)) else [stats]
        for f in self.steppers:
            if not hasattr(f, "before_stats"):
                raise TypeError(f"{getattr(f, '__name__', repr(f))} is not a stepper: decorate it with @stepper(...) so the optimizer knows "
                                "the hyper-parameters it needs and when it runs.")  # fmt: skip
        for stat in self.stats:
            if not isinstance(stat, Stat):
                raise TypeError(f"stats must be Stat objects (e.g. AverageGrad()), got {stat!r}: subclass Stat with init_state and update.")
        defaults: dict[str, Any] = {}
        for piece in [*self.stats, *self.steppers]:
            defaults.update(piece.defaults)
        defaults.update(hypers)
        lr = defaults.get("lr")
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}.")
        super().__init__(params, defaults)
        for group in self.param_groups:
            for piece in [*self.stats, *self.steppers]:
                missing = [k for k in piece.requires if k not in group]
                if missing:
                    name = getattr(piece, "__name__", type(piece).__name__)
                    raise TypeError(f"{name} needs hyper-parameter(s) {missing}: pass them, e.g. Optimizer(..., {missing[0]}=...).")

    @property
    def hypers(self) -> list[dict[str, Any]]:
        """Each param group's hyper-parameters (everything but the params): what schedulers drive."""
        return [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            ps = [p for p in group["params"] if p.grad is not None]
            if not ps:
                continue
            grads = [p.grad for p in ps]
            states = []
            for p in ps:
                if not self.state[p]:
                    for stat in self.stats:
                        self.state[p].update(stat.init_state(p))
                states.append(self.state[p])
            for s in self.steppers:
                if s.before_stats:
                    s(ps, grads, states, group)
            for stat in self.stats:
                stat.update(ps, grads, states, group)
            for s in self.steppers:
                if not s.before_stats:
                    s(ps, grads, states, group)
        return loss


def _check_averaging(**moms: float) -> None:
    # Adam's debiasing divides by 1 - mom**step, which is 0 for mom = 1.
    for name, m in moms.items():
        if not 0 <= m < 1:
            raise ValueError(f"{name} must be in [0, 1) (a running average's decay, e.g. 0.9), got {m!r}.")


def SGD(params: Iterable[Any], lr: float, mom: float = 0.0, wd: float = 0.0, decouple_wd: bool = True) -> Optimizer:
    """SGD, with momentum when `mom` > 0, and weight decay decoupled (default) or as L2."""
    steppers = [weight_decay if decouple_wd else l2_reg, momentum_step if mom else sgd_step]
    stats = [AverageGrad()] if mom else []
    return Optimizer(params, steppers, stats, lr=lr, mom=mom, wd=wd)


def Adam(
    params: Iterable[Any], lr: float, mom: float = 0.9, sqr_mom: float = 0.99, eps: float = 1e-5, wd: float = 0.0, decouple_wd: bool = True
) -> Optimizer:
    """Adam with the course's defaults; decoupled weight decay (the default) makes it AdamW."""
    _check_averaging(mom=mom, sqr_mom=sqr_mom)
    steppers = [weight_decay if decouple_wd else l2_reg, adam_step]
    return Optimizer(params, steppers, [AverageGrad(dampening=True), AverageSqrGrad(), StepCount()], lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd)


def RMSProp(params: Iterable[Any], lr: float, sqr_mom: float = 0.99, eps: float = 1e-5, wd: float = 0.0, decouple_wd: bool = True) -> Optimizer:
    """RMSProp: each gradient divided by the root of its running mean square."""
    steppers = [weight_decay if decouple_wd else l2_reg, rms_step]
    return Optimizer(params, steppers, [AverageSqrGrad()], lr=lr, sqr_mom=sqr_mom, eps=eps, wd=wd)


def LAMB(params: Iterable[Any], lr: float, mom: float = 0.9, sqr_mom: float = 0.99, eps: float = 1e-6, wd: float = 0.0) -> Optimizer:
    """LAMB (You et al.): Adam's direction with weight decay, scaled per tensor by a trust ratio."""
    _check_averaging(mom=mom, sqr_mom=sqr_mom)
    return Optimizer(params, [lamb_step], [AverageGrad(dampening=True), AverageSqrGrad(), StepCount()], lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd)
