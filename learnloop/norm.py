"""Normalisation layers from scratch, up to RunningBatchNorm.

BatchNorm, LayerNorm, InstanceNorm and GroupNorm compute what PyTorch's do (same conventions:
running statistics updated with `mom` as `(1 - mom) * old + mom * new`, unbiased variance in the
running estimate, biased variance to normalise). RunningBatchNorm is the lesson's fix for tiny
batches: it normalises with running sums instead of the batch's own statistics, the same way in
training and evaluation, so it trains at batch size 2 where BatchNorm's statistics are noise.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["BatchNorm", "SyncBatchNorm", "convert_sync_batchnorm", "LayerNorm", "InstanceNorm", "GroupNorm", "RunningBatchNorm"]


def _channel_shape(x: torch.Tensor) -> tuple[int, ...]:
    """Broadcast shape for per-channel values on input (N, C, *spatial): (1, C, 1, ...)."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


class BatchNorm(nn.Module):
    """Normalises each channel with the batch's mean and variance while training, and with
    running estimates in eval mode. Works on (N, C), (N, C, L), (N, C, H, W), (N, C, D, H, W)."""

    def __init__(self, nf: int, mom: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.mom, self.eps = mom, eps
        self.weight = nn.Parameter(torch.ones(nf))
        self.bias = nn.Parameter(torch.zeros(nf))
        self.register_buffer("running_mean", torch.zeros(nf))
        self.register_buffer("running_var", torch.ones(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = _channel_shape(x)
        if self.training:
            dims = [0, *range(2, x.ndim)]
            n = x.numel() // x.shape[1]
            if n < 2:
                raise ValueError(f"BatchNorm needs more than one value per channel in training, got input of shape {tuple(x.shape)}.")
            mean = x.mean(dims)
            var = x.var(dims, unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.mom)
                self.running_var.lerp_(var * n / (n - 1), self.mom)
        else:
            mean, var = self.running_mean, self.running_var
        x = (x - mean.view(shape)) / (var.view(shape) + self.eps).sqrt()
        return x * self.weight.view(shape) + self.bias.view(shape)


class LayerNorm(nn.Module):
    """Normalises each sample over its last dims (`normalized_shape`), as nn.LayerNorm."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(x.ndim - len(self.normalized_shape), x.ndim))
        mean = x.mean(dims, keepdim=True)
        var = x.var(dims, keepdim=True, unbiased=False)
        return (x - mean) / (var + self.eps).sqrt() * self.weight + self.bias


class GroupNorm(nn.Module):
    """Normalises each sample over groups of channels (and all positions), as nn.GroupNorm.
    One group is a layer norm over (C, H, W); one channel per group is an instance norm."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups}).")
        self.num_groups, self.eps = num_groups, eps
        self.weight = nn.Parameter(torch.ones(num_channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_channels)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        g = x.reshape(n, self.num_groups, -1)
        mean = g.mean(-1, keepdim=True)
        var = g.var(-1, keepdim=True, unbiased=False)
        x = ((g - mean) / (var + self.eps).sqrt()).reshape(x.shape)
        if self.weight is not None:
            shape = _channel_shape(x)
            x = x * self.weight.view(shape) + self.bias.view(shape)
        return x


class InstanceNorm(GroupNorm):
    """Normalises each channel of each sample over its positions, as nn.InstanceNorm2d (which by
    default has no affine parameters and keeps no running statistics)."""

    def __init__(self, nf: int, eps: float = 1e-5, affine: bool = False):
        super().__init__(nf, nf, eps, affine)


class RunningBatchNorm(nn.Module):
    """Batch norm from running statistics, usable at batch size 2.

    Keeps exponential moving averages of the per-channel sum, sum of squares and count of the
    values seen, and normalises with the mean and variance they imply, in training and in
    evaluation alike. What makes it work on tiny batches:

    - the momentum grows with the batch size, `1 - (1 - mom) / sqrt(bs - 1)`, so a batch of 2
      moves the averages less than a batch of 64 (a batch of 1 counts as 2);
    - the averages start at zero but need no debiasing: the count is averaged with the same
      weights as the sums, so their ratio, the mean, is unbiased from the first batch (the
      lesson's debias factor divides both and cancels);
    - until 20 samples have been seen, the variance is kept at least 0.01.

    The current batch enters the averages with its gradient, so the layer still learns through
    the batch statistics; what is stored is detached.
    """

    def __init__(self, nf: int, mom: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.mom, self.eps = mom, eps
        self.weight = nn.Parameter(torch.ones(nf))
        self.bias = nn.Parameter(torch.zeros(nf))
        self.register_buffer("sums", torch.zeros(nf))
        self.register_buffer("sqrs", torch.zeros(nf))
        self.register_buffer("count", torch.zeros(()))
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))
        self._early = True  # still under 20 samples? (checked on the host only while true)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bs, nc = x.shape[:2]
        sums, sqrs, count = self.sums, self.sqrs, self.count
        if self.training:
            dims = [0, *range(2, x.ndim)]
            m = 1 - (1 - self.mom) / math.sqrt(max(bs - 1, 1))
            sums = sums * (1 - m) + x.sum(dims) * m
            sqrs = sqrs * (1 - m) + (x * x).sum(dims) * m
            count = count * (1 - m) + (x.numel() / nc) * m
            with torch.no_grad():
                self.sums.copy_(sums)
                self.sqrs.copy_(sqrs)
                self.count.copy_(count)
                self.seen += bs
        mean = sums / count
        var = sqrs / count - mean * mean
        if self._early:
            seen = int(self.seen)
            if seen == 0:
                raise RuntimeError("RunningBatchNorm has seen no training batch yet: run it in training mode first.")
            if seen < 20:
                var = var.clamp_min(0.01)
            else:
                self._early = False
        shape = _channel_shape(x)
        x = (x - mean.view(shape)) / (var.view(shape) + self.eps).sqrt()
        return x * self.weight.view(shape) + self.bias.view(shape)


class SyncBatchNorm(BatchNorm):
    """BatchNorm whose training statistics cover the whole global batch: per-channel sums,
    sums of squares and counts are all-reduced (with gradients) across ranks, so N processes
    with batch b normalise exactly as one process with batch N x b would. Works on the CPU
    (gloo) and on CUDA; torch's own nn.SyncBatchNorm is CUDA-only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        shape, dims = _channel_shape(x), [0, *range(2, x.ndim)]
        count = torch.full((1,), x.numel() // x.shape[1], dtype=x.dtype, device=x.device)
        stats = torch.cat([x.sum(dims), (x * x).sum(dims), count])
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            from torch.distributed.nn.functional import all_reduce  # the collective that carries gradients

            stats = all_reduce(stats)
        # One process computes the same sums (the same formula), so 1 x 64 and 2 x 32 agree.
        nf = x.shape[1]
        n = stats[-1]
        mean = stats[:nf] / n
        var = stats[nf : 2 * nf] / n - mean * mean
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.mom)
            self.running_var.lerp_(var * n / (n - 1), self.mom)
        x = (x - mean.view(shape)) / (var.view(shape) + self.eps).sqrt()
        return x * self.weight.view(shape) + self.bias.view(shape)


def convert_sync_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm layer (torch's 1d/2d/3d or learnloop's) with `SyncBatchNorm`,
    keeping its weights and running statistics. Returns the model (changed in place)."""
    for name, child in model.named_children():
        if isinstance(child, (nn.modules.batchnorm._BatchNorm, BatchNorm)) and not isinstance(child, SyncBatchNorm):
            torch_bn = isinstance(child, nn.modules.batchnorm._BatchNorm)
            mom = child.momentum if torch_bn else child.mom
            sync = SyncBatchNorm(child.num_features if torch_bn else child.weight.shape[0], mom=0.1 if mom is None else mom, eps=child.eps)
            with torch.no_grad():
                for k in ("weight", "bias", "running_mean", "running_var"):
                    if getattr(child, k, None) is not None:  # a BatchNorm without affine or running stats keeps the defaults
                        getattr(sync, k).copy_(getattr(child, k))
            setattr(model, name, sync.to(child.running_mean.device if child.running_mean is not None else "cpu"))
        else:
            convert_sync_batchnorm(child)
    return model
