"""The Learner: the loop (`BaseLearner`) with the fit recipes, default callbacks, argument
checks at the door, evaluation and inference."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import checks, distributed
from .callbacks.compile import CompileModel
from .callbacks.device import DeviceCallback
from .callbacks.distributed import DistributedTrainer
from .callbacks.guards import NonFiniteCheck
from .callbacks.progress import ProgressBar
from .callbacks.recorder import Recorder
from .callbacks.transforms import BatchTransform
from .checkpoint import Resume, load_checkpoint, restore_state, save_checkpoint
from .data import ArrayDataset, DataLoader, DataLoaders
from .distributed import gather_shards
from .events import Callback
from .export import export
from .loop import BaseLearner
from .metrics import Accumulator, decoded, probabilities, resolve_metric
from .schedule.recipes import FitRecipes
from .utils import model_device

__all__ = ["Learner"]


class Learner(FitRecipes, BaseLearner):
    """Trains `model` on `dls` with `loss_func` and an optimizer made by `opt_func`.

    Args:
        model: any `nn.Module`; called as `model(xb)`.
        dls: `DataLoaders` with `.train` and (optionally) `.valid`, each yielding `(x, y)` batches.
        loss_func: `loss_func(pred, y) -> scalar tensor` (default cross-entropy).
        opt_func: an optimizer class or factory called as `opt_func(params, lr=lr)`, e.g.
            `torch.optim.SGD` (default) or `torch.optim.AdamW`. The optimizer is created at
            the first `fit` and kept across fits (`fit(..., reset_opt=True)` makes a new one).
        lr: learning rate for the optimizer.
        cbs: extra callbacks, kept for the learner's lifetime.
        metrics: metrics computed on the validation set: functions `f(pred, y) -> tensor`
            (averaged, weighted by batch size), objects with `update/compute/reset`
            (torchmetrics-style), or names such as `'accuracy'`.
        device: where to train (default: CUDA, then MPS, then CPU).
        default_cbs: add the default callbacks (device, recorder, non-finite check, progress).
        progress: show the progress bar and epoch table (False for quiet scripts).
        compile: compile the model with `torch.compile` at the first fit (adds `CompileModel()`;
            pass `CompileModel(mode=...)` in `cbs` to choose its options).

    The loop itself is `learnloop.loop.BaseLearner`; the recipes `fit_one_cycle`,
    `fit_flat_cos`, `fit_sgdr` and `lr_find` come from `learnloop.schedule.FitRecipes`.
    """

    def __init__(
        self,
        model: nn.Module,
        dls: DataLoaders,
        loss_func: Callable[..., torch.Tensor] = F.cross_entropy,
        opt_func: Callable[..., torch.optim.Optimizer] = torch.optim.SGD,
        lr: float = 0.1,
        cbs: Iterable[Callback] | None = None,
        metrics: Sequence[Any] | Any = None,
        device: torch.device | str | None = None,
        default_cbs: bool = True,
        progress: bool = True,
        compile: bool = False,
    ):
        checks.check_model(model)
        checks.check_dls(dls)
        checks.check_loss_func(loss_func)
        checks.check_opt_func(opt_func)
        checks.check_lr(lr)
        resolved = [resolve_metric(m) for m in checks.as_list(metrics)]
        super().__init__(model, dls, loss_func, opt_func, lr, metrics=resolved)
        if default_cbs:
            defaults: list[Callback] = [DeviceCallback(device), Recorder(), NonFiniteCheck()]
            self.add_cbs(defaults + [ProgressBar()] if progress else defaults)
        elif device is not None:
            self.add_cbs([DeviceCallback(device)])
        batch_tfms = getattr(dls, "batch_tfms", None)
        if batch_tfms:  # e.g. image loaders: uint8 batches become float, normalised, on the device
            self.add_cbs([BatchTransform(functools.partial(_compose, batch_tfms), name="dls_batch_tfms")])
        if default_cbs and distributed.launched():  # started by torchrun as one of several processes
            self.add_cbs([DistributedTrainer()])
        if compile:
            self.add_cbs([CompileModel()])
        self.add_cbs(cbs or [])

    @property
    def rank(self) -> int:
        """This process's rank under torch.distributed (0 in a single process)."""
        return distributed.rank()

    @property
    def world_size(self) -> int:
        """How many processes train together (1 in a single process)."""
        return distributed.world_size()

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints, plots and writes files."""
        return distributed.is_main()

    @property
    def device(self) -> torch.device:
        """Where training runs: the device callback's target, else where the model's weights are."""
        cb = getattr(self, "device_cb", None)
        if isinstance(cb, DeviceCallback):
            return cb.device
        return model_device(self.model) or torch.device("cpu")

    def fit(
        self,
        n_epochs: int = 1,
        lr: float | None = None,
        cbs: Iterable[Callback] | None = None,
        reset_opt: bool = False,
        resume: str | Path | bool | None = None,
    ) -> None:
        """Train for `n_epochs`, validating after each. `lr` overrides every param group's learning
        rate; `cbs` are attached for this fit only; `reset_opt` makes a new optimizer.

        `resume` continues an interrupted run exactly where its checkpoint left it: a checkpoint
        file, a folder written by `Checkpoint` (its latest checkpoint), or True for the attached
        `Checkpoint`'s folder. Call it the way the run was started (same `n_epochs`, recipe and
        callbacks); the finished run equals the uninterrupted one.
        """
        checks.check_n_epochs(n_epochs)
        if isinstance(lr, (list, tuple)):
            raise TypeError(
                "fit(lr=...) takes one learning rate for every param group; for one per group use a recipe "
                "(fit_one_cycle(lr_max=[...])) or set learn.opt.param_groups[i]['lr'] before fit()."
            )
        if lr is not None:
            checks.check_lr(lr)
        checks.check_dls(self.dls)
        if self.opt is not None and not reset_opt:
            checks.check_opt_holds(self.opt, self.model)
        extra = checks.as_list(cbs)
        if resume is not None and resume is not False:
            state, path = load_checkpoint(self._resume_path(resume))
            extra.append(Resume(state, str(path)))
        super().fit(n_epochs, lr, extra, reset_opt)

    def _resume_path(self, resume: str | Path | bool) -> Path:
        if resume is True:
            ckpt = getattr(self, "checkpoint", None)
            if ckpt is None or not hasattr(ckpt, "dir"):
                raise ValueError("resume=True resumes from the attached Checkpoint callback's folder, but none is attached; pass the path instead.")
            return Path(ckpt.dir)
        return Path(resume)

    # ---- saving and loading -----------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint of the whole run (weights, optimizer, callbacks, loader positions,
        counters, RNGs) to `path`, a single safetensors file, atomically. See docs/checkpoints.md."""
        return save_checkpoint(self, path)

    def export(self, path: str | Path) -> Path:
        """Write what a fresh process needs to predict: weights, preprocessing (`dls.meta`) and,
        for learnloop-built models, the architecture. Read it back with `load_learner(path)`."""
        return export(self, path)

    def load(self, path: str | Path) -> "Learner":
        """Restore a checkpoint written by `save` (or a `Checkpoint` folder's latest) into this
        learner, built with the same model and callbacks. To continue the run, use `fit(resume=...)`."""
        state, path = load_checkpoint(path)
        if self.opt is None and state["opt"] is not None:
            self.create_opt()
        restore_state(self, state, str(path), strict_callbacks=False)
        return self

    # ---- evaluation and inference -----------------------------------------------------------

    def _loader(self, dl: Any) -> Any:
        dl = dl if dl is not None else self.dls.valid
        if dl is None:
            raise ValueError("No DataLoader to evaluate: dls.valid is None, so pass dl=...")
        if isinstance(dl, torch.Tensor) or (isinstance(dl, (tuple, list)) and dl and all(isinstance(v, torch.Tensor) for v in dl)):
            # a list of (x, y) batches is a loader; tensors themselves are not (iterating them yields rows)
            raise TypeError(
                f"dl must yield (x, y) batches, got {'a tensor' if isinstance(dl, torch.Tensor) else f'a {type(dl).__name__} of tensors'}; "
                "for tensors in memory use ll.DataLoader(ll.ArrayDataset(x, y), batch_size=64) (or learn.infer(x) for predictions)."
            )
        if hasattr(dl, "__len__") and len(dl) == 0:
            raise ValueError("The DataLoader to evaluate yields no batches (an empty dataset?); there is nothing to measure.")
        return dl

    def validate(self, dl: Any = None, cbs: Iterable[Callback] | None = None) -> dict[str, float]:
        """Loss and metrics over `dl` (default: the validation loader), e.g. {'valid_loss': .., 'accuracy': ..}."""
        dl = self._loader(dl)
        recorder = getattr(self, "recorder", None)
        if isinstance(recorder, Recorder):  # it counts anyway: read its numbers rather than count twice
            self._eval_pass(dl, cbs)
            return dict(recorder.last_valid)
        evaluate = _Evaluate()
        self._eval_pass(dl, [evaluate, *checks.as_list(cbs)])
        return evaluate.result

    @property
    def classes(self) -> list | None:
        """The class names, when the data has them (`dls.vocab` or `dls.meta['classes']`)."""
        return getattr(self.dls, "vocab", None) or (getattr(self.dls, "meta", None) or {}).get("classes")

    def get_preds(self, dl: Any = None, cbs: Iterable[Callback] | None = None, with_probs: bool = False,
                  with_decoded: bool = False) -> tuple[torch.Tensor | None, ...]:  # fmt: skip
        """Model outputs (logits: before any softmax) and targets over `dl` (default: the
        validation loader), concatenated on the CPU; targets are None for unlabelled batches.

        `with_probs` adds the probabilities and `with_decoded` the predicted class indices: softmax
        and argmax, or, for a model with one logit per row (binary, BCE-with-logits), its sigmoid
        and whether that passes 0.5. `learn.classes[i]` names class i. Returns
        (preds, targets[, probs][, decoded]).
        """
        dl = self._loader(dl)
        gather = _GatherPreds()
        self._eval_pass(dl, [gather, *checks.as_list(cbs)])
        # A loader sharded across processes: every rank gets all rows back, in dataset order.
        preds, targets = gather.result(sharded=getattr(getattr(dl, "sampler", None), "num_replicas", 1) > 1)
        out: tuple[torch.Tensor | None, ...] = (preds, targets)
        if with_probs:
            out += (probabilities(preds),)
        if with_decoded:
            out += (decoded(preds),)
        return out

    def infer(self, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Model outputs for raw inputs `x` (no targets), in eval mode, batched, returned on the CPU."""
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"infer takes the inputs as one tensor, a batch of rows, got {type(x).__name__}; stack a list with torch.stack(items).")
        bs = batch_size or getattr(self.dls.valid or self.dls.train, "batch_size", None) or 256
        preds, _ = self.get_preds(DataLoader(ArrayDataset(x), batch_size=bs))
        return preds

    def predict(self, item: torch.Tensor | None = None) -> tuple[Any, int, torch.Tensor] | None:
        """`learn.predict(item)`: one item, shaped as the loaders yield a single row (no batch
        dimension) -> (its class name, or its index when the data has no names; the class index;
        the probabilities). Called without an argument, it is the loop's forward step (sets
        `self.pred`), the piece a subclass overrides to change how the model is called."""
        if item is None:
            return super().predict()
        if not isinstance(item, torch.Tensor):
            raise TypeError(f"predict takes one item as a tensor shaped like a row of the loaders' batches, got {type(item).__name__}; "
                            "for files or Pillow images, export the learner and use load_learner(...).predict.")  # fmt: skip
        out = self.infer(item.unsqueeze(0))
        if out.ndim > 2:  # a batch passed as one item comes back with an extra dimension, not one row of scores
            raise ValueError(
                f"predict takes one item (a row of the loaders' batches, without the batch dimension); the model maps "
                f"{tuple(item.shape)} to {tuple(out.shape[1:])}, not to one score per class. For a batch use learn.infer(xb)."
            )
        p = probabilities(out)[0].reshape(-1)
        probs = torch.cat([1 - p, p]) if p.numel() == 1 else p  # one logit: (P(class 0), P(class 1))
        idx = int(decoded(out)[0])  # the same decision get_preds(with_decoded=True) makes
        classes = self.classes
        return (classes[idx] if classes else idx), idx, probs


def _compose(tfms: Sequence[Callable], x: Any) -> Any:
    for t in tfms:
        x = t(x)
    return x


class _Evaluate(Callback):
    """Counts loss and metrics of an evaluation pass for `validate` when no Recorder is attached."""

    order = 100

    def before_validate(self, learn: BaseLearner) -> None:
        self.acc = Accumulator()
        self.acc.start(learn.metrics, model_device(learn.model))

    def after_loss(self, learn: BaseLearner) -> None:
        self.acc.add(learn.loss, learn.pred, learn.yb)

    def after_validate(self, learn: BaseLearner) -> None:
        _, values = self.acc.read()
        self.result = {"valid_loss": values.pop("loss"), **values}


class _GatherPreds(Callback):
    """Collects predictions and targets of an evaluation pass, on the device, for get_preds."""

    order = 100

    def before_validate(self, learn: BaseLearner) -> None:
        self.preds: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def after_pred(self, learn: BaseLearner) -> None:
        self.preds.append(learn.pred.detach())
        if learn.yb is not None:
            self.targets.append(learn.yb.detach())

    def result(self, sharded: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.preds:
            raise ValueError("get_preds: the DataLoader yielded no batches.")
        preds, targets = torch.cat(self.preds), (torch.cat(self.targets) if self.targets else None)
        if sharded:
            preds, targets = gather_shards(preds), (gather_shards(targets) if targets is not None else None)
        return preds.cpu(), (targets.cpu() if targets is not None else None)
