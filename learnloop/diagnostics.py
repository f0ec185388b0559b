"""The "why sqrt(5)" investigation as a tool: per-layer statistics and an initialisation health check.

    print(init_report(model, xb, yb, loss_func))

runs one forward (and, with a target, one backward) pass and says, layer by layer, whether
activations keep a healthy scale, whether gradients vanish or explode across depth, and how
many ReLU outputs are dead, naming each offending layer and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .init import CONV_LINEAR
from .layers import GeneralRelu

__all__ = ["layer_stats", "LayerStats", "init_report", "InitReport", "matmul_experiment", "sqrt5_net"]


def sqrt5_net() -> nn.Sequential:
    """The lesson's "why sqrt(5)" model: four stride-2 convs (1->8 k5, 8->16, 16->32, 32->1),
    ReLUs between them, average pooling to one number per image."""
    def conv(ni: int, nf: int, ks: int = 3) -> nn.Conv2d:
        return nn.Conv2d(ni, nf, ks, stride=2, padding=ks // 2)

    return nn.Sequential(
        conv(1, 8, 5), nn.ReLU(), conv(8, 16), nn.ReLU(), conv(16, 32), nn.ReLU(), conv(32, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )  # fmt: skip


def _is_relu_like(m: nn.Module) -> bool:
    return isinstance(m, (nn.ReLU, nn.ReLU6, GeneralRelu))


class LayerStats(list):
    """One dict per layer: name, type, output shape, activation mean/std, dead share (ReLU-like
    layers), and weight-gradient mean/std (layers with weights, when a backward pass ran)."""

    def __str__(self) -> str:
        head = f"{'layer':<14}{'type':<18}{'output':<18}{'act mean':>10}{'act std':>10}{'dead':>7}{'grad std':>11}"
        rows = [head, "-" * len(head)]
        for r in self:
            dead = f"{r['dead']:.0%}" if r.get("dead") is not None else ""
            grad = f"{r['grad_std']:.4g}" if r.get("grad_std") is not None else ""
            rows.append(
                f"{r['layer']:<14}{r['type']:<18}{str(tuple(r['shape'])):<18}{r['act_mean']:>10.4g}{r['act_std']:>10.4g}{dead:>7}{grad:>11}"
            )
        return "\n".join(rows)


def layer_stats(
    model: nn.Module, xb: torch.Tensor, yb: torch.Tensor | None = None, loss_func: Callable | None = None
) -> LayerStats:
    """Mean and std of every leaf layer's output on `xb`, and, given `yb` and `loss_func`, of
    each weight's gradient after one backward pass. The model's parameters, gradients and
    buffers are left as they were."""
    if not isinstance(xb, torch.Tensor):
        raise TypeError(f"layer_stats needs a batch of inputs xb as a tensor (e.g. xb, yb = dls.train.one_batch()), got {type(xb).__name__}.")
    if (yb is None) != (loss_func is None):
        raise ValueError("Pass both yb and loss_func for gradient statistics, or neither.")
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children()) and n]
    if not leaves:
        raise ValueError("layer_stats: the model has no layers.")
    device = next(model.parameters()).device
    xb = xb.to(device)
    outputs: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: outputs.__setitem__(n, o.detach())) for n, m in leaves]
    params = dict(model.named_parameters())
    saved_grads = {k: (p.grad.clone() if p.grad is not None else None) for k, p in params.items()}
    buffers = {k: v.clone() for k, v in model.state_dict().items() if k not in params}
    try:
        with torch.set_grad_enabled(yb is not None):
            out = model(xb)
            if yb is not None:
                for p in params.values():
                    p.grad = None
                loss_func(out, yb.to(device)).backward()
        records = LayerStats()
        for n, m in leaves:
            if n not in outputs:
                continue
            o = outputs[n].float()
            r = {"layer": n, "type": type(m).__name__, "shape": tuple(o.shape), "act_mean": o.mean().item(), "act_std": o.std().item()}
            r["dead"] = (o == 0).float().mean().item() if _is_relu_like(m) else None
            w = getattr(m, "weight", None)
            grad = w.grad if isinstance(w, torch.Tensor) else None
            r["grad_mean"] = grad.mean().item() if grad is not None else None
            r["grad_std"] = grad.std().item() if grad is not None else None
            records.append(r)
        return records
    finally:
        for h in hooks:
            h.remove()
        for k, p in params.items():
            p.grad = saved_grads[k]
        model.load_state_dict(buffers, strict=False)


@dataclass
class InitReport:
    """The health check's verdict: `ok`, the `problems` found (plain sentences), and the stats."""

    stats: LayerStats
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        lines = [str(self.stats), ""]
        lines += [f"note: {n}" for n in self.notes]
        if self.ok:
            lines.append("verdict: healthy initialisation (activation and gradient scales hold across depth)")
        else:
            lines.append(f"verdict: {len(self.problems)} problem(s)")
            lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def init_report(
    model: nn.Module,
    xb: torch.Tensor,
    yb: torch.Tensor | None = None,
    loss_func: Callable | None = None,
    std_band: tuple[float, float] = (0.2, 5.0),
    grad_ratio: float = 100.0,
    dead_max: float = 0.7,
) -> InitReport:
    """Check that activations and gradients keep a healthy scale through the model.

    Flags: a conv/linear output whose std falls outside `std_band` (with normalised input),
    weight-gradient std changing by more than `grad_ratio` between the first and the last layer
    (vanishing or exploding gradients), and ReLU-like layers with more than `dead_max` of their
    outputs at zero (about half is normal for a ReLU fed zero-mean input). Each problem names the layer and suggests a fix.
    """
    stats = layer_stats(model, xb, yb, loss_func)
    report = InitReport(stats)
    x = xb.float()
    if abs(x.mean().item()) > 0.5 or not 0.5 < x.std().item() < 2:
        report.notes.append(
            f"the input has mean {x.mean().item():.3g} and std {x.std().item():.3g}; normalise it (mean 0, std 1) for a fair check"
        )
    lo, hi = std_band
    fix = "re-initialise with init_model(model, kaiming_normal_) or calibrate with lsuv_init(model, xb)"
    for r in stats:
        if r["type"] not in {t.__name__ for t in CONV_LINEAR}:
            continue
        if r["act_std"] < lo:
            report.problems.append(f"{r['layer']} ({r['type']}): output std {r['act_std']:.3g} < {lo}: activations are vanishing; {fix}")
        elif r["act_std"] > hi or not math.isfinite(r["act_std"]):
            report.problems.append(f"{r['layer']} ({r['type']}): output std {r['act_std']:.3g} > {hi}: activations are exploding; {fix}")
    for r in stats:
        if r.get("dead") is not None and r["dead"] > dead_max:
            report.problems.append(
                f"{r['layer']} ({r['type']}): {r['dead']:.0%} of outputs are zero (dead ReLUs); "
                "use a leaky ReLU or GeneralRelu, zero biases, or lsuv_init"
            )
    grads = [r for r in stats if r.get("grad_std") is not None]
    if len(grads) >= 2:
        first, last = grads[0]["grad_std"], grads[-1]["grad_std"]
        if first == 0 or not math.isfinite(first):
            report.problems.append(f"{grads[0]['layer']}: weight-gradient std is {first:.3g}: no useful gradient reaches the first layer; {fix}")
        elif last / first > grad_ratio:
            report.problems.append(
                f"gradients vanish towards the input: weight-gradient std falls from {last:.3g} ({grads[-1]['layer']}) "
                f"to {first:.3g} ({grads[0]['layer']}); {fix}"
            )
        elif first / last > grad_ratio:
            report.problems.append(
                f"gradients explode towards the input: weight-gradient std grows from {last:.3g} ({grads[-1]['layer']}) "
                f"to {first:.3g} ({grads[0]['layer']}); {fix}"
            )
    return report


def matmul_experiment(scale: float, n_layers: int = 100, size: int = 512, seed: int = 0) -> list[float]:
    """The lesson's chained products: x <- (scale * randn(size, size)) @ x, `n_layers` times.
    Returns x's std after each product (inf or nan once it overflows, 0 once it underflows)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(size, generator=g)
    stds = []
    for _ in range(n_layers):
        x = (torch.randn(size, size, generator=g) * scale) @ x
        stds.append(x.std().item())
    return stds
