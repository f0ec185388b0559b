"""Hooks: run a function on a module's output (or gradient) without changing the model.

    with Hooks(find_modules(model, nn.Conv2d), lambda hook, mod, inp, out: ...) as hooks:
        model(xb)

A `Hook` keeps its state on itself and always removes itself: on `remove()`, when its `with`
block ends, and when it is garbage-collected (it holds the module's hook only weakly).
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from .utils import evaluating, model_device

__all__ = ["Hook", "Hooks", "find_modules", "model_summary", "Summary"]


def _call(ref: weakref.ref, fn: Callable) -> Callable:
    def hook(module: nn.Module, inp: Any, out: Any) -> None:
        h = ref()
        if h is not None:
            fn(h, module, inp, out)

    return hook


class Hook:
    """Calls `fn(hook, module, input, output)` after each forward of `module` (or, with
    `forward=False`, `fn(hook, module, grad_input, grad_output)` after its backward)."""

    _handle: Any = None  # until registered: a Hook whose arguments were refused has nothing to remove

    def __init__(self, module: nn.Module, fn: Callable[..., None], forward: bool = True):
        if not isinstance(module, nn.Module):
            raise TypeError(f"Hook goes on an nn.Module, got {type(module).__name__}.")
        if not callable(fn):
            raise TypeError(f"Hook needs a function fn(hook, module, input, output), got {fn!r}.")
        self.module = module
        register = module.register_forward_hook if forward else module.register_full_backward_hook
        # The module keeps only a weak reference to us, so dropping the Hook removes it.
        self._handle: Any = register(_call(weakref.ref(self), fn))

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def __enter__(self) -> "Hook":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def __del__(self) -> None:
        self.remove()


class Hooks:
    """One `Hook` per module, all calling `fn`; a sequence of the hooks, removed together."""

    def __init__(self, modules: Iterable[nn.Module], fn: Callable[..., None], forward: bool = True):
        self.hooks = [Hook(m, fn, forward) for m in modules]

    def __getitem__(self, i: int) -> Hook:
        return self.hooks[i]

    def __len__(self) -> int:
        return len(self.hooks)

    def __iter__(self) -> Iterator[Hook]:
        return iter(self.hooks)

    def remove(self) -> None:
        for h in self.hooks:
            h.remove()

    def __enter__(self) -> "Hooks":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def __del__(self) -> None:
        self.remove()


def find_modules(model: nn.Module, predicate: Callable[[nn.Module], bool] | type | tuple[type, ...]) -> list[nn.Module]:
    """Every submodule (the model included) for which `predicate(m)` holds; a type or tuple of
    types means `isinstance(m, types)`."""
    if isinstance(predicate, nn.Module):  # callable, but calling it would run the layer on a module
        raise TypeError(f"find_modules takes a predicate or a class, e.g. nn.{type(predicate).__name__}, not an instance of it.")
    if isinstance(predicate, (type, tuple)):
        types = predicate
        return [m for m in model.modules() if isinstance(m, types)]
    return [m for m in model.modules() if predicate(m)]


class Summary(list):
    """model_summary's rows: (name, type, output shape, parameter count)."""

    def __str__(self) -> str:
        lines = [f"{'layer':<24}{'type':<20}{'output shape':<24}{'params':>10}", "-" * 78]
        for name, kind, shape, n in self:
            lines.append(f"{name:<24}{kind:<20}{str(shape):<24}{n:>10,}")
        lines.append("-" * 78)
        lines.append(f"{'total':<68}{sum(r[3] for r in self):>10,}")
        return "\n".join(lines)


def model_summary(learn_or_model: Any, xb: torch.Tensor | None = None, print_it: bool = True) -> Summary:
    """Each leaf layer's name, type, output shape and parameter count, from one forward pass
    on `xb` (default: the learner's first training batch). The model's mode is kept."""
    model = getattr(learn_or_model, "model", learn_or_model)
    if xb is None:
        if not hasattr(learn_or_model, "dls"):
            raise ValueError("model_summary needs an input batch xb when given a bare model.")
        xb = learn_or_model.dls.one_batch()[0]
    device = model_device(model)
    if device is not None:
        xb = xb.to(device)
    rows = Summary()
    # A model that is one layer (no children) is its own only row.
    leaves = [(n or "(model)", m) for n, m in model.named_modules() if not list(m.children())]

    def record(hook: Hook, module: nn.Module, inp: Any, out: Any) -> None:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        rows.append((hook.name, type(module).__name__, shape, sum(q.numel() for q in module.parameters(recurse=False))))

    hooks = Hooks([m for _, m in leaves], record)
    for h, (n, _) in zip(hooks, leaves):
        h.name = n
    try:
        with evaluating(model):
            model(xb)
    finally:
        hooks.remove()
    if print_it:
        print(rows)
    return rows
