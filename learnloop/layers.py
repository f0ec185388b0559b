"""Model building blocks: GeneralRelu, Lambda, Flatten, conv_layer, and the lesson's CNN and MLP."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .norm import BatchNorm, GroupNorm, InstanceNorm, RunningBatchNorm

__all__ = ["GeneralRelu", "Lambda", "Flatten", "conv_layer", "cnn", "cnn_layers", "mlp", "build", "NORMS", "ACTIVATIONS"]


class GeneralRelu(nn.Module):
    """ReLU with three knobs from the lesson: a leak (negative slope), a shift `sub` subtracted
    from the output (a plain ReLU's output has mean about 0.4 for unit-normal input; subtracting
    it recentres the activations) and a ceiling `maxv`."""

    def __init__(self, leak: float | None = None, sub: float | None = None, maxv: float | None = None):
        super().__init__()
        self.leak, self.sub, self.maxv = leak, sub, maxv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(x, self.leak) if self.leak is not None else F.relu(x)
        if self.sub is not None:
            x = x - self.sub
        if self.maxv is not None:
            x = x.clamp_max(self.maxv)
        return x

    def extra_repr(self) -> str:
        return f"leak={self.leak}, sub={self.sub}, maxv={self.maxv}"


class Lambda(nn.Module):
    """Wraps a function as a layer, e.g. `Lambda(lambda x: x.view(-1, 1, 28, 28))`."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return getattr(self.fn, "__name__", repr(self.fn))


class Flatten(nn.Module):
    """(batch, ...) -> (batch, everything else)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


def _groups(nf: int) -> int:
    return next(g for g in (8, 4, 2, 1) if nf % g == 0)


# Normalisation layers by name, each built as NORM(n_channels). "layer" normalises each sample
# over channels and pixels, which for images is a GroupNorm with a single group.
NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm2d,
    "ours_batch": BatchNorm,
    "running_batch": RunningBatchNorm,
    "layer": lambda nf: GroupNorm(1, nf),
    "instance": lambda nf: InstanceNorm(nf, affine=True),
    "group": lambda nf: GroupNorm(_groups(nf), nf),
}


def _make_norm(norm: str | Callable[[int], nn.Module], nf: int) -> nn.Module:
    if isinstance(norm, str):
        if norm not in NORMS:
            raise ValueError(f"Unknown norm {norm!r}; choose from {sorted(NORMS)} or pass a callable nf -> module.")
        return NORMS[norm](nf)
    return norm(nf)


def conv_layer(
    ni: int,
    nf: int,
    ks: int = 3,
    stride: int = 2,
    norm: str | Callable[[int], nn.Module] | None = None,
    act: Callable[..., nn.Module] | None = GeneralRelu,
    **act_kwargs: Any,
) -> nn.Sequential:
    """Conv (padding ks//2), then an optional norm, then an optional activation built as
    `act(**act_kwargs)`. No conv bias when a norm follows: the norm's shift makes it redundant."""
    layers: list[nn.Module] = [nn.Conv2d(ni, nf, ks, stride=stride, padding=ks // 2, bias=norm is None)]
    if norm is not None:
        layers.append(_make_norm(norm, nf))
    if act is not None:
        layers.append(act(**act_kwargs))
    return nn.Sequential(*layers)


def cnn(
    channels: Sequence[int] = (8, 16, 32, 32),
    n_out: int = 10,
    in_channels: int = 1,
    norm: str | Callable[[int], nn.Module] | None = "batch",
    act: Callable[..., nn.Module] | None = GeneralRelu,
    **act_kwargs: Any,
) -> nn.Sequential:
    """The lesson's CNN for (batch, in_channels, H, W) images: stride-2 conv layers (5x5 first,
    then 3x3), each halving the image, global average pooling and a linear head."""
    if isinstance(channels, int):
        raise TypeError(f"cnn's first argument is channels, the conv layers' widths such as (8, 16, 32, 32), got {channels}; "
                        "give the input's channels as in_channels=.")  # fmt: skip
    if not channels:
        raise ValueError("cnn needs at least one conv layer in channels.")
    sizes = [in_channels, *channels]
    convs = [conv_layer(sizes[i], sizes[i + 1], 5 if i == 0 else 3, 2, norm, act, **act_kwargs) for i in range(len(channels))]
    model = nn.Sequential(*convs, nn.AdaptiveAvgPool2d(1), Flatten(), nn.Linear(sizes[-1], n_out))
    return _note_recipe(model, "cnn", channels=list(channels), n_out=n_out, in_channels=in_channels, norm=norm, act=act, **act_kwargs)


def cnn_layers(c_in: int = 3, c_out: int = 10, nfs: Sequence[int] = (64, 128, 256), stem: Sequence[int] = (16, 32, 32),
               norm: str | None = "batch", leak: float = 0.1, sub: float = 0.4) -> nn.Sequential:  # fmt: skip
    """The lesson's image CNN with the "bag of tricks" stem: three 3x3 convs at full resolution
    (`stem` channels; the first keeps colour detail, the next two widen it cheaply), then one
    stride-2 conv per entry of `nfs`, each with batch norm and GeneralRelu, global average
    pooling and a linear head. For 32x32 CIFAR images the default ends at 4x4 before pooling."""
    sizes = [c_in, *stem]
    layers: list[nn.Module] = [conv_layer(sizes[i], sizes[i + 1], 3, 1, norm, GeneralRelu, leak=leak, sub=sub) for i in range(len(stem))]
    chans = [sizes[-1], *nfs]
    layers += [conv_layer(chans[i], chans[i + 1], 3, 2, norm, GeneralRelu, leak=leak, sub=sub) for i in range(len(nfs))]
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), Flatten(), nn.Linear(chans[-1], c_out))
    return _note_recipe(model, "cnn_layers", c_in=c_in, c_out=c_out, nfs=list(nfs), stem=list(stem), norm=norm, leak=leak, sub=sub)


def mlp(sizes: Sequence[int] = (784, 50, 10), act: Callable[[], nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers with an activation between them, e.g. the lesson's 784-50-10."""
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least input and output sizes, got {list(sizes)}.")
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return _note_recipe(nn.Sequential(*layers), "mlp", sizes=list(sizes), act=act)


# Activations an exported model may name: its architecture is rebuilt from plain data, never code.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    c.__name__: c for c in (GeneralRelu, nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Tanh, nn.Sigmoid)
}
_BUILDERS: dict[str, Callable[..., nn.Module]] = {"cnn": cnn, "cnn_layers": cnn_layers, "mlp": mlp}


def _note_recipe(model: nn.Module, builder: str, **kwargs: Any) -> nn.Module:
    """Record on `model` how it was built (`model.learnloop_arch`) when every argument is plain
    data, so `Learner.export` can save the architecture and `load_learner` rebuild it."""
    act = kwargs.get("act")
    if act is not None:
        if ACTIVATIONS.get(getattr(act, "__name__", "")) is not act:
            return model  # an activation we could not name safely: the user passes model= on loading
        kwargs["act"] = act.__name__
    if callable(kwargs.get("norm")):
        return model
    model.learnloop_arch = {"builder": builder, "kwargs": kwargs}
    return model


def build(arch: dict[str, Any]) -> nn.Module:
    """The model `arch` (a `learnloop_arch` record) describes, freshly initialised."""
    builder = _BUILDERS.get(arch.get("builder"))
    if builder is None:
        raise ValueError(f"Unknown model builder {arch.get('builder')!r}; learnloop can rebuild {sorted(_BUILDERS)}.")
    kwargs = dict(arch["kwargs"])
    if kwargs.get("act") is not None:
        if kwargs["act"] not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {kwargs['act']!r}; known: {sorted(ACTIVATIONS)}.")
        kwargs["act"] = ACTIVATIONS[kwargs["act"]]
    return builder(**kwargs)
