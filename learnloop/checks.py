"""Argument checks at the door: plain functions the Learner calls before any work starts.

Each raises a `TypeError` or `ValueError` that names what was wrong and what to do instead.
`loss_hint` is the one check that runs inside the loop, on the first loss of a fit; `batch_note`
and `forward_note` add what the loop knows (the batch, shapes, dtypes) to an error raised inside it.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "check_model",
    "check_dls",
    "check_loss_func",
    "check_opt_func",
    "check_opt_holds",
    "check_lr",
    "check_n_epochs",
    "check_pct",
    "as_list",
    "loss_hint",
    "batch_form_error",
    "batch_note",
    "forward_note",
    "check_loss_value",
]


def check_model(model: Any) -> None:
    if isinstance(model, type) and issubclass(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module instance, got the class {model.__name__}; create one: {model.__name__}(...).")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")


def check_dls(dls: Any) -> None:
    if isinstance(dls, (torch.Tensor, tuple, list)):
        raise TypeError(
            f"dls must be DataLoaders, got a {type(dls).__name__}; for tensors in memory use "
            "ll.DataLoaders.from_tensors(x_train, y_train, x_valid, y_valid, batch_size=64)."
        )
    if not hasattr(dls, "train"):
        raise TypeError(f"dls must be DataLoaders (with .train and .valid), got {type(dls).__name__}.")
    for which in ("train", "valid"):
        dl = getattr(dls, which, None)
        if dl is not None and hasattr(dl, "__len__") and len(dl) == 0:
            raise ValueError(f"The {which} DataLoader yields no batches (an empty dataset, or drop_last with too few items).")


def check_loss_func(loss_func: Any) -> None:
    if isinstance(loss_func, type):
        raise TypeError(f"loss_func is the class {loss_func.__name__}; pass an instance, {loss_func.__name__}(), or a function.")
    if not callable(loss_func):
        raise TypeError(f"loss_func must be callable as loss_func(pred, target), got {loss_func!r}.")


def check_opt_func(opt_func: Any) -> None:
    if isinstance(opt_func, torch.optim.Optimizer) or not callable(opt_func):
        raise TypeError(
            "opt_func must be an optimizer class or factory such as torch.optim.SGD (not an optimizer "
            "instance): the Learner creates the optimizer itself with opt_func(params, lr=lr)."
        )
    try:
        params = inspect.signature(opt_func).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature to read: they fail at the first fit instead
        return
    if not any(p.name == "lr" or p.kind is p.VAR_KEYWORD for p in params):
        raise TypeError(
            "opt_func is called as opt_func(params, lr=lr) and takes no lr; give it one, e.g. "
            "lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9)."
        )


def check_opt_holds(opt: torch.optim.Optimizer, model: nn.Module) -> None:
    """Every trainable parameter of the model is in the optimizer: a model replaced (or a layer
    added) after the optimizer was made would otherwise not train at all, silently."""
    held = {id(p) for group in opt.param_groups for p in group["params"]}
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if id(p) not in held]
    if missing:
        what = f"all {len(missing)}: was learn.model replaced?" if len(missing) == len(trainable) else f"{len(missing)} of {len(trainable)}: a layer added?"
        raise ValueError(
            f"The optimizer does not hold the model's parameters {missing[:5]} ({what}), so they would not train. "
            "fit(..., reset_opt=True) makes an optimizer for the model as it is now (or call learn.create_opt())."
        )


def check_lr(lr: Any, what: str = "lr") -> None:
    """A learning rate is a positive, finite number (one per param group when a list)."""
    for v in lr if isinstance(lr, (list, tuple)) else [lr]:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{what} must be a positive number, got {v!r}.")


def check_n_epochs(n_epochs: Any) -> None:
    if not isinstance(n_epochs, int) or isinstance(n_epochs, bool) or n_epochs < 0:
        raise ValueError(f"n_epochs must be a non-negative int, got {n_epochs!r}.")


def check_pct(pct: Any, what: str = "pct_start") -> None:
    if not isinstance(pct, (int, float)) or not 0 <= pct <= 1:
        raise ValueError(f"{what} must be in [0, 1], got {pct!r}.")


def as_list(items: Any) -> list:
    """None -> [], one item -> [item], a list or tuple -> a list (strings count as one item)."""
    if items is None:
        return []
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        return [items]
    return list(items)


# Losses that compare prediction and target element by element: differing shapes would
# silently broadcast (with only a warning from torch), so they are an error here.
_ELEMENTWISE_FUNCS = (
    F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss, F.binary_cross_entropy, F.binary_cross_entropy_with_logits,
)  # fmt: skip
_ELEMENTWISE_MODULES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss, nn.BCELoss, nn.BCEWithLogitsLoss)


def _shape(x: Any) -> Any:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else f"{type(x).__name__} (not a tensor)"


def _dtypes(*xs: Any) -> str:
    """' (float32 and int64)': a wrong dtype fails a loss or a layer as surely as a wrong shape."""
    names = [str(x.dtype).removeprefix("torch.") for x in xs if isinstance(x, torch.Tensor)]
    return f" ({' and '.join(names)})" if names else ""


@contextlib.contextmanager
def loss_hint(loss_func: Callable, pred: Any, target: Any) -> Iterator[None]:
    """Around the first loss of a fit: an elementwise loss with mismatched shapes is an error,
    and any exception from the loss gets a note with both shapes (its type is kept, so an
    out-of-memory error still reads as one)."""
    hint = (
        f"predictions of shape {_shape(pred)} and targets of shape {_shape(target)}{_dtypes(pred, target)}. Make the model's output "
        "fit the loss (e.g. (batch, n_classes) logits with (batch,) int64 class targets for cross-entropy)."
    )
    if isinstance(pred, (tuple, list)):  # nn.LSTM and friends return (output, state)
        hint += (f" The model returned a {type(pred).__name__} of {len(pred)}: have it return the one tensor the loss "
                 "takes (wrap it, e.g. a module whose forward returns model(x)[0]), or override Learner.get_loss.")  # fmt: skip
    elementwise = loss_func in _ELEMENTWISE_FUNCS or isinstance(loss_func, _ELEMENTWISE_MODULES)
    if elementwise and isinstance(pred, torch.Tensor) and isinstance(target, torch.Tensor) and pred.shape != target.shape:
        raise ValueError(f"{getattr(loss_func, '__name__', type(loss_func).__name__)} got {hint}")
    try:
        yield
    except Exception as e:
        e.add_note(f"learnloop: the first loss of this run failed on {hint}{_bad_targets(pred, target)}")
        raise


def batch_form_error(batch: Any) -> TypeError:
    """What `split_batch` raises for a batch that is not (x, y) or (x,)."""
    length = f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""
    return TypeError(
        f"Expected batches of (x, y), got {type(batch).__name__}{length}. "
        "Return (x, y) pairs from the dataset, or subclass Learner and override split_batch."
    )


def _where(epoch: int, batch: int, training: bool) -> str:
    # Outside training the epoch means nothing: validate(), get_preds() and infer() run without one.
    return f"at epoch {epoch}, batch {batch}" if training else f"in batch {batch} of a validation or inference pass"


def batch_note(e: Exception, pred: Any, target: Any, epoch: int, batch: int, training: bool = True) -> Exception:
    """`e` (raised by the loss on a later batch) with a note naming the batch, the shapes, and
    any class target outside the model's output range (a bad label deep in the data)."""
    e.add_note(f"learnloop: the loss failed {_where(epoch, batch, training)}, on predictions of shape {_shape(pred)} and "
               f"targets of shape {_shape(target)}{_dtypes(pred, target)}{_bad_targets(pred, target)}.")  # fmt: skip
    return e


def forward_note(e: Exception, model: nn.Module, xb: Any, epoch: int, batch: int, training: bool = True) -> Exception:
    """`e` (raised by the model's forward pass) with a note naming the batch, its inputs and the
    layer they meet first; for integer inputs to floating-point weights, the likely missing conversion."""
    note = f"learnloop: the model's forward pass failed {_where(epoch, batch, training)}, on inputs of shape {_shape(xb)}{_dtypes(xb)}."
    first = next((m for m in model.modules() if next(m.parameters(recurse=False), None) is not None), None)
    if first is not None:  # e.g. Linear(in_features=784, ...): a width or channel mismatch shows at a glance
        note += f" The model's first layer with weights is {type(first).__name__}({first.extra_repr()})."
        weight = next(first.parameters(recurse=False))
        integers = isinstance(xb, torch.Tensor) and not (xb.is_floating_point() or xb.is_complex())
        if integers and weight.is_floating_point() and not isinstance(first, (nn.Embedding, nn.EmbeddingBag)):
            note += (f" The inputs are integers and its weights {str(weight.dtype).removeprefix('torch.')}: convert the "
                     "inputs to float in the data (e.g. x.float() / 255 for image bytes).")  # fmt: skip
    e.add_note(note)
    return e


def _bad_targets(pred: Any, target: Any) -> str:
    if isinstance(pred, torch.Tensor) and isinstance(target, torch.Tensor) and pred.ndim >= 2 and target.ndim == 1 and not target.is_floating_point():
        bad = target[(target < 0) | (target >= pred.shape[1])]
        if bad.numel():
            return f"; targets must be class indices 0..{pred.shape[1] - 1}, this batch has {sorted(set(bad.tolist()))[:5]}"
    return ""


def check_loss_value(loss: Any, loss_func: Callable) -> None:
    """The first loss of a run must be one number in a tensor, so that backward() can start from it."""
    name = getattr(loss_func, "__name__", type(loss_func).__name__)
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"{name} returned a {type(loss).__name__}, not a tensor: return the loss as a torch tensor (no .item()), so gradients can flow.")
    if loss.ndim != 0:
        raise ValueError(f"{name} returned a tensor of shape {tuple(loss.shape)}, not one number: reduce it (e.g. .mean()) before returning.")
