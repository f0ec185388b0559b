"""Weight initialisation from the foundations: gains, fans, Kaiming, Xavier, LeCun, orthogonal, LSUV.

The scale of the initial weights decides whether activations keep a healthy size through depth.
A layer y = W x with fan_in inputs keeps var(y) = var(x) when var(W) = 1 / fan_in; a ReLU halves
the second moment, so it needs var(W) = 2 / fan_in (He / Kaiming). PyTorch's default,
kaiming_uniform_(a=sqrt(5)), gives var(W) = 1 / (3 fan_in): a sixth of what ReLU needs.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable, Sequence

import torch
from torch import nn

__all__ = [
    "gain",
    "calculate_gain",
    "fan_in_fan_out",
    "kaiming_normal_",
    "kaiming_uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "lecun_normal_",
    "orthogonal_",
    "zeros_",
    "init_model",
    "lsuv_init",
    "CONV_LINEAR",
]

CONV_LINEAR = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def gain(a: float) -> float:
    """Leaky-ReLU gain sqrt(2 / (1 + a^2)): the factor that keeps the variance through a layer
    followed by a leaky ReLU of negative slope `a` (a=0: ReLU, a=1: linear)."""
    return math.sqrt(2.0 / (1 + a * a))


def calculate_gain(nonlinearity: str, a: float = 0.0) -> float:
    """Recommended gain for a nonlinearity (the names torch.nn.init knows): linear, conv and
    sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu gain(a), selu 3/4. Unlike torch, whose
    leaky_relu slope defaults to 0.01, `a` defaults to 0 here (the ReLU gain)."""
    fixed = {name: 1.0 for name in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid")}
    fixed.update(tanh=5.0 / 3, relu=math.sqrt(2.0), selu=0.75)
    if nonlinearity == "leaky_relu":
        return gain(a)
    if nonlinearity not in fixed:
        raise ValueError(f"Unknown nonlinearity {nonlinearity!r}; known: {sorted([*fixed, 'leaky_relu'])}.")
    return fixed[nonlinearity]


def fan_in_fan_out(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a linear (out, in) or conv (out, in, *kernel) weight: the receptive
    field (product of kernel dims) times the input or output channels."""
    if weight.ndim < 2:
        raise ValueError(f"fan_in_fan_out needs a weight with at least 2 dims (out, in, ...), got shape {tuple(weight.shape)}.")
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def _fan(weight: torch.Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}.")
    fan_in, fan_out = fan_in_fan_out(weight)
    return fan_in if mode == "fan_in" else fan_out


@torch.no_grad()
def kaiming_normal_(weight: torch.Tensor, a: float = 0.0, mode: str = "fan_in", generator: torch.Generator | None = None) -> torch.Tensor:
    """He init, normal: std = gain(a) / sqrt(fan). `mode='fan_out'` preserves gradients instead."""
    std = gain(a) / math.sqrt(_fan(weight, mode))
    return weight.normal_(0.0, std, generator=generator)


@torch.no_grad()
def kaiming_uniform_(weight: torch.Tensor, a: float = 0.0, mode: str = "fan_in", generator: torch.Generator | None = None) -> torch.Tensor:
    """He init, uniform on [-b, b] with b = gain(a) * sqrt(3 / fan) (same variance as the normal)."""
    bound = gain(a) * math.sqrt(3.0 / _fan(weight, mode))
    return weight.uniform_(-bound, bound, generator=generator)


@torch.no_grad()
def xavier_normal_(weight: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Glorot init, normal: std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_fan_out(weight)
    return weight.normal_(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator=generator)


@torch.no_grad()
def xavier_uniform_(weight: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Glorot init, uniform on [-b, b] with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_fan_out(weight)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return weight.uniform_(-bound, bound, generator=generator)


@torch.no_grad()
def lecun_normal_(weight: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """LeCun init, normal: std = 1 / sqrt(fan_in); with SELU it makes a self-normalising net."""
    return weight.normal_(0.0, 1.0 / math.sqrt(fan_in_fan_out(weight)[0]), generator=generator)


@torch.no_grad()
def orthogonal_(weight: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """A (semi-)orthogonal matrix (Saxe et al.): QR of a Gaussian matrix, with the signs of R's
    diagonal folded into Q so the result is uniformly distributed. Conv kernels are flattened."""
    if weight.ndim < 2:
        raise ValueError(f"orthogonal_ needs at least 2 dims, got shape {tuple(weight.shape)}.")
    rows, cols = weight.shape[0], weight.numel() // weight.shape[0]
    a = torch.randn(max(rows, cols), min(rows, cols), generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))
    if rows < cols:
        q = q.T
    return weight.copy_((gain * q).reshape(weight.shape).to(weight.dtype))


@torch.no_grad()
def zeros_(weight: torch.Tensor) -> torch.Tensor:
    """Set `weight` to zero in place (for biases; a weight matrix of zeros cannot break symmetry)."""
    return weight.zero_()


def init_model(
    model: nn.Module,
    init: Callable[..., torch.Tensor] = kaiming_normal_,
    a: float = 0.0,
    bias: float | None = 0.0,
    types: Sequence[type] | type = CONV_LINEAR,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Re-initialise the weight of every submodule of `types` with `init` (passing `a` to inits
    that take it, e.g. the Kaiming ones) and set biases to `bias` (None leaves them). Returns the model."""
    if not callable(init):
        named = f" (torch.nn.init.{init}_?)" if isinstance(init, str) and hasattr(nn.init, f"{init}_") else ""
        raise TypeError(f"init_model: init must be an init function such as torch.nn.init.kaiming_normal_, got {init!r}{named}.")
    params = inspect.signature(init).parameters
    kwargs = {}
    if "a" in params:
        kwargs["a"] = a
    if "generator" in params and generator is not None:
        kwargs["generator"] = generator
    types = tuple(types) if isinstance(types, (list, tuple)) else (types,)
    for m in model.modules():
        if isinstance(m, types):
            init(m.weight, **kwargs)
            if bias is not None and getattr(m, "bias", None) is not None:
                with torch.no_grad():
                    m.bias.fill_(bias)
    return model


@torch.no_grad()
def lsuv_init(
    model: nn.Module, xb: torch.Tensor, tol: float = 1e-3, max_iters: int = 10, types: Sequence[type] = CONV_LINEAR
) -> list[dict]:
    """Layer-Sequential Unit-Variance init (Mishkin & Matas): layer by layer, in order, shift the
    output mean to 0 through the bias and scale the weights until the output std on `xb` is 1
    within `tol` (at most `max_iters` rounds a layer).

    Returns one record per layer: name, final mean and std, rounds used. The model's train/eval
    mode and its buffers (batch-norm running statistics) are left as they were, and no hooks
    remain.
    """
    if not isinstance(xb, torch.Tensor):
        raise TypeError(f"lsuv_init needs a batch of inputs xb as a tensor (e.g. xb, _ = dls.train.one_batch()), got {type(xb).__name__}.")
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, tuple(types))]
    if not layers:
        raise ValueError(f"lsuv_init: the model has no layers of types {[t.__name__ for t in types]}.")
    p = next(model.parameters())
    xb = xb.to(p.device)
    buffers = {k: v.clone() for k, v in model.state_dict().items() if k not in dict(model.named_parameters())}
    stats: dict[str, torch.Tensor] = {}

    def record(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        stats["mean"], stats["std"] = out.mean(), out.std()

    report = []
    try:
        for name, layer in layers:
            handle = layer.register_forward_hook(record)
            try:
                rounds = 0
                for rounds in range(1, max_iters + 1):
                    model(xb)
                    mean, std = float(stats["mean"]), float(stats["std"])
                    if abs(mean) < tol and abs(std - 1) < tol:
                        break
                    if layer.bias is not None:
                        layer.bias -= mean
                    if std > 0:
                        layer.weight /= std
                model(xb)
                report.append({"layer": name, "mean": float(stats["mean"]), "std": float(stats["std"]), "rounds": rounds})
            finally:
                handle.remove()
    finally:
        model.load_state_dict(buffers, strict=False)
    return report
