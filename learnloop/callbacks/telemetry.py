"""ActivationStats: watch every layer's activations while training (the lesson's telemetry).

Per hooked layer and recorded training step: activation mean and std, a histogram of absolute
values (the "colorful dimension"), and the dead fraction (share in the lowest bin); per weight,
the gradient's std. Statistics are computed on the model's device and brought to the host in
one transfer per recorded step; hooks exist only during recorded steps, so the other steps
cost nothing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import nn

from ..events import Callback
from ..hooks import Hook, Hooks, find_modules
from ..init import CONV_LINEAR
from ..layers import GeneralRelu
from ..loop import BaseLearner
from ..plots import new_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ActivationStats"]

_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.ELU, nn.SELU, nn.Tanh, nn.Sigmoid, GeneralRelu)


def _default_modules(model: nn.Module) -> list[nn.Module]:
    acts = find_modules(model, _ACTIVATIONS)
    return acts or find_modules(model, CONV_LINEAR)


def _describe(m: nn.Module) -> str:
    if isinstance(m, nn.Linear):
        return f"Linear {m.in_features}->{m.out_features}"
    if isinstance(m, nn.modules.conv._ConvNd):
        return f"{type(m).__name__} {m.in_channels}->{m.out_channels}"
    return type(m).__name__


def _labels(model: nn.Module, mods: Sequence[nn.Module]) -> list[str]:
    """Names a reader recognises: each watched layer by the conv or linear layer it follows,
    e.g. 'conv 2 (Conv2d 8->16)', counting those layers from the input."""
    seen: dict[nn.Module, str] = {}
    last, k = None, {"conv": 0, "linear": 0}
    for name, m in model.named_modules():
        if isinstance(m, CONV_LINEAR):
            kind = "linear" if isinstance(m, nn.Linear) else "conv"
            k[kind] += 1
            last = f"{kind} {k[kind]} ({_describe(m)})"
        seen[m] = last if last is not None else f"{name or 'input'} ({type(m).__name__})"
    return [seen.get(m, type(m).__name__) for m in mods]


def _module(model: nn.Module, m: nn.Module | str) -> nn.Module:
    """A watched module, given as itself or by its name in `model.named_modules()` ('0', 'layers.2')."""
    if isinstance(m, nn.Module):
        return m
    if not isinstance(m, str):
        raise TypeError(f"ActivationStats: modules are nn.Modules or their names in model.named_modules(), got {m!r}.")
    names = dict(model.named_modules())
    if m not in names:
        raise ValueError(f"ActivationStats: the model has no module named {m!r}; it has {[n for n in names if n][:12]}.")
    return names[m]


class ActivationStats(Callback):
    """Records activation statistics of `modules` (modules or their names in `model.named_modules()`;
    default: the model's activation layers, else its conv and linear layers) every `every` training steps.

    After (or during) training: `stats()` gives the numbers as tensors, `plot_stats()`,
    `plot_colorful()` and `plot_dead()` draw them, and `summary()` says in words which layers
    have dead units, exploding or collapsing activations, or vanishing gradients.
    """

    order = 70
    run_valid = False

    def __init__(self, modules: Sequence[nn.Module | str] | None = None, every: int = 1, hist_bins: int = 40, hist_range: tuple[float, float] = (0, 10)):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}.")
        self.modules, self.every, self.hist_bins, self.hist_range = modules, every, hist_bins, hist_range
        self.records: list[torch.Tensor] = []
        self.steps: list[int] = []
        self._hooks: Hooks | None = None

    def before_fit(self, learn: BaseLearner) -> None:
        model = learn.model
        if hasattr(model, "_orig_mod"):
            raise ValueError(
                "ActivationStats hooks every watched layer, which changes a compiled model's graph at each recorded "
                "step. Look inside the eager model (drop CompileModel / compile=True for this fit), then compile for speed."
            )
        self._mods = [_module(model, m) for m in self.modules] if self.modules is not None else _default_modules(model)
        if not self._mods:
            raise ValueError("ActivationStats found no layers to watch; pass modules=[...].")
        names = {m: n for n, m in model.named_modules()}
        self.layer_names = [names.get(m, type(m).__name__) for m in self._mods]
        self.layer_labels = _labels(model, self._mods)
        weighted = find_modules(model, CONV_LINEAR)
        self.weight_names = [names[m] for m in weighted]
        self._weights = [m.weight for m in weighted]
        self.records, self.steps = [], []
        self._hooks: Hooks | None = None

    def _histogram(self, a: torch.Tensor) -> torch.Tensor:
        lo, hi = self.hist_range
        bins = self.hist_bins
        if lo != 0:
            return torch.histc(a, bins, lo, hi)
        # |activations| start at 0, so truncation is the bin index: over twice as fast as histc
        # on the CPU. (Unlike histc, a value exactly at `hi` is not counted.)
        idx = (a * (bins / hi)).to(torch.int32).clamp_(max=bins)
        return torch.bincount(idx.view(-1), minlength=bins + 1)[:bins].float()

    def _record(self, hook: Hook, module: nn.Module, inp: Any, out: torch.Tensor) -> None:
        o = out.detach().float()
        hist = self._histogram(o.abs())
        self._acts[hook.index] = torch.cat([o.mean()[None], o.std()[None], (hist[0] / o.numel())[None], hist])

    def before_batch(self, learn: BaseLearner) -> None:
        self._acts: list[torch.Tensor | None] | None = None  # a cancelled batch's stats never leak into this one
        if learn.train_batches_done % self.every == 0:
            self._acts = [None] * len(self._mods)
            self._hooks = Hooks(self._mods, self._record)
            for i, h in enumerate(self._hooks):
                h.index = i

    def _unhook(self) -> None:
        if self._hooks is not None:
            self._hooks.remove()
            self._hooks = None

    def after_pred(self, learn: BaseLearner) -> None:
        self._unhook()

    def after_backward(self, learn: BaseLearner) -> None:
        acts, self._acts = self._acts, None
        if acts is None or any(a is None for a in acts):
            return  # not a recorded step, or a hooked layer did not run
        dev = acts[0].device
        grads = [w.grad.detach().float().std()[None] if w.grad is not None else torch.full((1,), math.nan, device=dev) for w in self._weights]
        flat = torch.cat([*acts, *[g.to(dev) for g in grads]])
        self.records.append(flat.cpu())  # the one device-to-host transfer of this step
        self.steps.append(learn.train_batches_done)

    def after_batch(self, learn: BaseLearner) -> None:
        self._unhook()

    def after_fit(self, learn: BaseLearner) -> None:
        self._unhook()

    def state_dict(self) -> dict[str, Any]:
        return {"records": torch.stack(self.records) if self.records else None, "steps": list(self.steps)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.records = list(state["records"].unbind()) if state["records"] is not None else []
        self.steps = list(state["steps"])

    # ---- reading the records ------------------------------------------------------------------

    def stats(self) -> dict[str, torch.Tensor]:
        """means, stds, dead (steps x layers), hists (steps x layers x bins), grad_stds (steps x weights)."""
        if not self.records:
            raise RuntimeError("ActivationStats has no records yet: train with it first.")
        n_layers, bins = len(self.layer_names), self.hist_bins
        per_layer = 3 + bins
        data = torch.stack(self.records)
        acts = data[:, : n_layers * per_layer].reshape(len(self.records), n_layers, per_layer)
        return {
            "steps": torch.tensor(self.steps),
            "means": acts[:, :, 0],
            "stds": acts[:, :, 1],
            "dead": acts[:, :, 2],
            "hists": acts[:, :, 3:],
            "grad_stds": data[:, n_layers * per_layer :],
        }

    def _figure(self, n_axes: int, width: float = 5.0) -> "Figure":
        return new_figure(width * n_axes, 3.8)

    def plot_stats(self, path: str | Path | None = None) -> "Figure":
        """Per-layer activation mean and std against training step."""
        s = self.stats()
        fig = self._figure(2)
        for ax, key in zip(fig.subplots(1, 2), ("means", "stds")):
            for i, name in enumerate(self.layer_labels):
                ax.plot(s["steps"], s[key][:, i], label=name)
            ax.set(xlabel="step", title=f"activation {key[:-1]}")
        fig.axes[0].legend(fontsize="small")
        return save_figure(fig, path)

    def plot_colorful(self, path: str | Path | None = None) -> "Figure":
        """The colorful dimension: per layer, the histogram of |activation| (rows: bins from
        small at the bottom to large at the top) over training steps, coloured by log(1 + count)."""
        s = self.stats()
        n = len(self.layer_names)
        fig = self._figure(n, width=3.2)
        axes = fig.subplots(1, n, squeeze=False)[0]
        lo, hi = self.hist_range
        for i, ax in enumerate(axes):
            img = torch.log1p(s["hists"][:, i, :]).T
            im = ax.imshow(img.numpy(), origin="lower", aspect="auto", extent=(float(s["steps"][0]), float(s["steps"][-1]) + 1, lo, hi))
            ax.set_title(self.layer_labels[i], fontsize="small")
            ax.set_xlabel("step")
        axes[0].set_ylabel("|activation|")
        fig.colorbar(im, ax=axes[-1], label="log(1 + count)")
        return save_figure(fig, path)

    def plot_dead(self, path: str | Path | None = None) -> "Figure":
        """Per-layer share of activations in the lowest histogram bin, against training step."""
        s = self.stats()
        fig = self._figure(1, width=6)
        ax = fig.add_subplot()
        for i, name in enumerate(self.layer_labels):
            ax.plot(s["steps"], s["dead"][:, i], label=name)
        ax.set(xlabel="step", ylabel="share near zero", title="dead activations", ylim=(0, 1))
        ax.legend(fontsize="small")
        return save_figure(fig, path)

    def summary(self, dead_max: float = 0.75, std_band: tuple[float, float] = (0.1, 10.0), grad_ratio: float = 100.0) -> str:
        """Plain-words verdict on the last tenth of the recorded steps, one line per finding.

        A ReLU zeroes about half its inputs, so `dead_max` (the share in the lowest bin that counts
        as a problem) is set well above one half."""
        s = self.stats()
        tail = max(1, len(self.steps) // 10)
        lines = []
        for i, name in enumerate(self.layer_names):
            dead, std = s["dead"][-tail:, i].mean().item(), s["stds"][-tail:, i].mean().item()
            if not math.isfinite(std) or std > std_band[1]:
                lines.append(f"{name}: activations are exploding (std {std:.3g}); lower the learning rate or add normalisation.")
            elif std < std_band[0]:
                lines.append(f"{name}: activations are collapsing (std {std:.3g}); check the initialisation (init_report) or the learning rate.")
            if dead > dead_max:
                lines.append(f"{name}: {dead:.0%} of activations sit near zero (dead units); try GeneralRelu(leak=..., sub=...) or Kaiming init.")
        g = s["grad_stds"][-tail:].nanmean(0)
        if len(g) >= 2 and g[0].item() * grad_ratio < g[-1].item():  # False when either is NaN (a frozen weight)
            lines.append(
                f"gradients vanish towards the input: weight-gradient std {g[0].item():.3g} at {self.weight_names[0]} "
                f"vs {g[-1].item():.3g} at {self.weight_names[-1]}."
            )
        return "\n".join(lines) if lines else "no problems seen: activations keep their scale, few dead units, gradients reach the first layer."
