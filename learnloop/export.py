"""Inference export: what a fresh process needs to predict, in one pickle-free file.

`Learner.export(path)` writes the weights, the data's preprocessing (`dls.meta`: pixel scale,
mean, std, input shape, class names) and, for models from learnloop's builders (`cnn`, `mlp`),
the architecture as plain data. `load_learner(path)` rebuilds the model (or takes yours as
`model=`), loads the weights strictly and returns a `Predictor` that preprocesses raw inputs the
way the training data was prepared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import _load_model_state
from .checks import forward_note
from .layers import build
from .loop import BaseLearner
from .metrics import decoded, probabilities
from .serialize import read_state, write_state
from .utils import unwrap_model
from .version import __version__

__all__ = ["export", "load_learner", "Predictor"]


def export(learn: BaseLearner, path: str | Path) -> Path:
    """Write `learn`'s model and preprocessing for inference to `path` (atomic)."""
    model = unwrap_model(learn.model)
    return write_state(
        path,
        {
            "model": model.state_dict(),
            "arch": getattr(model, "learnloop_arch", None),
            "preprocess": dict(getattr(learn.dls, "meta", {})),
            "versions": {"learnloop": __version__, "torch": torch.__version__},
        },
        "export",
    )


class Predictor:
    """A trained model with its preprocessing: `predict` on raw inputs, `get_preds` on a loader."""

    def __init__(self, model: nn.Module, preprocess: dict[str, Any]):
        self.model, self.preprocess = model.eval(), preprocess
        self.classes: list[str] | None = preprocess.get("classes")

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Raw inputs -> what the model was trained on: uint8 pixels, one image or a batch; for
        models trained on image folders, uint8 (N, C, H, W) tensors at the training size (e.g.
        `to_byte_tensor(ResizeFixed(size)(img))`)."""
        p = self.preprocess
        x = torch.as_tensor(x)
        if "mean" in p:
            mean, std = torch.as_tensor(p["mean"], dtype=torch.float32), torch.as_tensor(p["std"], dtype=torch.float32)
            if mean.ndim:  # per channel, for image batches (N, C, H, W) or one image (C, H, W)
                x = x if x.ndim == 4 else x[None]
                mean, std = mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)
            x = (x.float() / p.get("pixel_scale", 1.0) - mean) / std
        if p.get("input_shape"):
            x = x.reshape(-1, *p["input_shape"])
        device = next(self.model.parameters(), torch.empty(0)).device
        return x.to(device)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[list[Any], torch.Tensor]:
        """(labels, probabilities) for raw inputs: class names when known, else class indices."""
        x = self.prepare(x)
        try:
            out = self.model(x).cpu()
        except Exception as e:
            raise forward_note(e, self.model, x, 0, 0, training=False)
        probs, idx = probabilities(out), decoded(out).tolist()
        return [self.classes[i] for i in idx] if self.classes else idx, probs

    @torch.no_grad()
    def get_preds(self, dl: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Model outputs (logits) and targets over a loader of raw `(x, y)` or `(x,)` batches."""
        if isinstance(dl, torch.Tensor):  # iterating it would feed the model one row at a time, unbatched
            raise TypeError("get_preds takes a loader of (x, y) or (x,) batches; for a tensor of inputs use predict(x).")
        outs, targets = [], []
        for batch in dl:
            x, y = (batch[0], batch[1] if len(batch) > 1 else None) if isinstance(batch, (tuple, list)) else (batch, None)
            outs.append(self.model(self.prepare(x)).cpu())
            if y is not None:
                targets.append(torch.as_tensor(y))
        return torch.cat(outs), (torch.cat(targets) if targets else None)


def load_learner(path: str | Path, model: nn.Module | None = None) -> Predictor:
    """Load a file written by `Learner.export`. Models from learnloop's builders are rebuilt from
    the file; for your own architecture, pass an instance as `model=` (no code is ever loaded)."""
    state = read_state(path, "export")
    if model is None:
        if state["arch"] is None:
            raise ValueError(f"{path} holds a model learnloop did not build, so its architecture is not in the file; pass model=YourModel().")
        model = build(state["arch"])
    _load_model_state(model, state["model"], str(path))
    return Predictor(model, state["preprocess"])
