"""Cross-entropy from the foundations: logsumexp, log-softmax, negative log-likelihood.

    cross_entropy(logits, y) = nll_loss(log_softmax(logits), y)
    log_softmax(x)           = x - logsumexp(x)
    logsumexp(x)             = m + log(sum(exp(x - m))),  m = max(x)   (no overflow)

They equal torch.nn.functional's (values and gradients) and check their inputs, so a wrong
target gives an error that says what is wrong instead of a device-side assert.
"""

from __future__ import annotations

import torch

__all__ = ["logsumexp", "log_softmax", "nll_loss", "cross_entropy"]

_REDUCTIONS = ("mean", "sum", "none")


def _max_shift(x: torch.Tensor, dim: int) -> torch.Tensor:
    """The max along `dim` (kept), detached: the shift cancels out of every gradient. Rows that
    are all -inf shift by 0, so they give -inf rather than NaN."""
    m = x.max(dim=dim, keepdim=True).values.detach()
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))


def logsumexp(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log(sum(exp(x))) along `dim`, shifted by the max so large values do not overflow."""
    m = _max_shift(x, dim)
    return (x - m).exp().sum(dim=dim).log() + m.squeeze(dim)


def log_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log(softmax(x)) = x - logsumexp(x), computed as (x - max) - log(sum(exp(x - max))) so the
    largest entries do not lose digits to cancellation."""
    shifted = x - _max_shift(x, dim)
    return shifted - shifted.exp().sum(dim=dim, keepdim=True).log()


def _check(scores: torch.Tensor, target: torch.Tensor, reduction: str, what: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}.")
    if scores.ndim != 2:
        raise ValueError(f"{what} must be (batch, n_classes), got shape {tuple(scores.shape)}.")
    if target.dtype.is_floating_point or target.dtype == torch.bool or target.is_complex():
        raise TypeError(
            f"target must hold class indices (an integer tensor such as int64), got {target.dtype}; "
            "convert with target.long(), or use a loss for probabilities or regression."
        )
    if target.ndim != 1:
        raise ValueError(f"target must be (batch,) class indices, got shape {tuple(target.shape)}.")
    if scores.shape[0] != target.shape[0]:
        raise ValueError(f"{what} have batch size {scores.shape[0]} but target has {target.shape[0]}.")
    n_classes = scores.shape[1]
    if target.numel() and bool(((target < 0) | (target >= n_classes)).any()):
        lo, hi = int(target.min()), int(target.max())
        raise ValueError(f"target holds classes from {lo} to {hi}, but {what} have {n_classes} classes (0..{n_classes - 1}).")


def _reduce(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return losses.mean()
    return losses.sum() if reduction == "sum" else losses


def nll_loss(log_probs: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Negative log-likelihood: minus the log-probability of each target class, picked by
    integer indexing. `log_probs` is (batch, n_classes), `target` (batch,) class indices."""
    _check(log_probs, target, reduction, "log_probs")
    picked = log_probs[torch.arange(len(target), device=target.device), target]
    return _reduce(-picked, reduction)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0, reduction: str = "mean") -> torch.Tensor:
    """nll_loss(log_softmax(logits), target), optionally with label smoothing: the target
    distribution puts 1 - label_smoothing on the class and spreads label_smoothing evenly over all."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}.")
    _check(logits, target, reduction, "logits")
    logp = log_softmax(logits, dim=-1)
    losses = nll_loss(logp, target, reduction="none")
    if label_smoothing:
        losses = (1 - label_smoothing) * losses + label_smoothing * -logp.mean(dim=-1)
    return _reduce(losses, reduction)
