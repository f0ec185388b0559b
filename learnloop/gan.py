"""GANs by callbacks: the loop stays the same, a callback decides which model trains.

A batch of real images comes from the loader; `GANTrainer` makes a batch of noise and sets
`xb = noise`, `yb = real`. The model is a `GANModule`: `pred = generator(noise)` in both
phases (detached in the critic's). The loss then calls the critic:

    critic phase:    loss = crit_loss(critic, real, fake)   critic trains, generator frozen
    generator phase: loss = gen_loss(critic, fake, real)    generator trains, critic frozen

Each model has its own optimizer; `learn.opt` is the one of the phase that runs and
`learn.gen_mode` says which. `switch(learn, steps)` decides when to change phase (default:
`n_crit` critic steps, then one generator step). The Recorder logs `gen_loss` and `crit_loss`.

Losses: the non-saturating GAN loss (the default; Goodfellow et al. 2014, section 3) and WGAN-GP
(Gulrajani et al. 2017: critic loss E[D(fake)] - E[D(real)] + 10 * E[(|grad D(mix)| - 1)^2]).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .data import DataLoaders
from .data.sampler import random_seed
from .events import Callback, CancelValidException
from .learner import Learner
from .loop import BaseLearner
from .utils import evaluating, step_generator

__all__ = ["GANModule", "GANTrainer", "GANLearner", "gan_gen_loss", "gan_crit_loss", "wgan_gen_loss", "wgan_gp_crit_loss", "gradient_penalty"]


def gan_crit_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """Non-saturating GAN, critic side: binary cross-entropy, real -> 1, fake -> 0 (critic logits).
    `real_label` below 1 (e.g. 0.9) is one-sided label smoothing (Salimans et al. 2016)."""
    r, f = critic(real), critic(fake)
    return F.binary_cross_entropy_with_logits(r, torch.full_like(r, real_label)) + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))


def gan_gen_loss(critic: nn.Module, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """Non-saturating GAN, generator side: -log D(fake), which keeps gradients alive early on when
    the critic rejects every fake (unlike minimising log(1 - D(fake)))."""
    f = critic(fake)
    return F.binary_cross_entropy_with_logits(f, torch.ones_like(f))


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(|grad_x D(x)| - 1)^2] at random points x between real and fake samples."""
    eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
    mix = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mix).sum(), mix, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def wgan_gp_crit_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, gp_weight: float = 10.0) -> torch.Tensor:
    """WGAN-GP, critic side: E[D(fake)] - E[D(real)] + gp_weight * gradient penalty."""
    return critic(fake).mean() - critic(real).mean() + gp_weight * gradient_penalty(critic, real, fake.detach())


def wgan_gen_loss(critic: nn.Module, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN, generator side: -E[D(fake)]."""
    return -critic(fake).mean()


class GANModule(nn.Module):
    """Generator and critic as one module, so checkpoints, devices and exports see both.
    `forward(noise)` is the generator; without gradients in the critic phase (`gen_mode=False`).

    With `ema` (e.g. 0.999) it also keeps `generator_ema`, an exponential moving average of the
    generator's weights and batch-norm statistics, updated after every generator step: the
    average of a generator that keeps circling an equilibrium draws better samples than any one
    point of its path (Yazici et al. 2019). Early on the decay is min(ema, (1 + t) / (10 + t))
    at step t, so the average does not remember the random start for long."""

    def __init__(self, generator: nn.Module, critic: nn.Module, ema: float | None = None):
        super().__init__()
        if ema is not None and not 0 < ema < 1:
            raise ValueError(f"ema (the decay of the generator's weight average) must be between 0 and 1, e.g. 0.999; got {ema!r}.")
        self.generator, self.critic, self.gen_mode, self.ema = generator, critic, False, ema
        self.generator_ema = copy.deepcopy(generator).requires_grad_(False) if ema is not None else None
        if ema is not None:
            self.register_buffer("ema_steps", torch.zeros((), dtype=torch.long))  # in checkpoints: a resumed average goes on exactly

    @torch.no_grad()
    def update_ema(self) -> None:
        """One step of the weight average toward the generator's current weights and buffers."""
        self.ema_steps += 1
        t = int(self.ema_steps)
        decay = min(self.ema, (1 + t) / (10 + t))
        for avg, now in zip(self.generator_ema.state_dict().values(), self.generator.state_dict().values()):
            if avg.is_floating_point():
                avg.lerp_(now, 1 - decay)
            else:  # counters such as num_batches_tracked
                avg.copy_(now)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        if self.gen_mode:
            return self.generator(noise)
        with torch.no_grad():
            return self.generator(noise)


class GANTrainer(Callback):
    """Feeds noise, alternates the phases, freezes the model that is not training, keeps an
    optimizer per model, logs each phase's loss, and skips validation (a GAN has no target)."""

    order = -20  # after the device callback and batch transforms: `real` is on the device, final

    def __init__(self, noise_size: int | Sequence[int] = 100, n_crit: int = 1, switch: Callable[[BaseLearner, int], bool] | None = None,
                 seed: int | None = None):  # fmt: skip
        if isinstance(n_crit, bool) or not isinstance(n_crit, int) or n_crit < 1:
            raise ValueError(f"n_crit (critic steps per generator step) must be an int >= 1, got {n_crit!r}.")
        self.noise_size = (noise_size,) if isinstance(noise_size, int) else tuple(noise_size)
        self.n_crit, self.seed = n_crit, random_seed() if seed is None else int(seed)
        self.switch = switch or (lambda learn, steps: steps >= (1 if learn.gen_mode else self.n_crit))
        self.steps_in_mode, self._checked = 0, False

    def _set_mode(self, learn: BaseLearner, gen_mode: bool) -> None:
        gan: GANModule = learn.model
        learn.gen_mode = gan.gen_mode = gen_mode
        gan.generator.requires_grad_(gen_mode)
        gan.critic.requires_grad_(not gen_mode)
        learn.opt = learn.gen_opt if gen_mode else learn.crit_opt

    def before_fit(self, learn: BaseLearner) -> None:
        if not isinstance(learn.model, GANModule):
            raise TypeError(f"GANTrainer needs a GANModule as the model (use GANLearner), got {type(learn.model).__name__}.")
        self._checked = False
        self._set_mode(learn, learn.gen_mode)

    def before_batch(self, learn: BaseLearner) -> None:
        real = learn.xb
        g = step_generator(self.seed, learn.train_batches_done)
        learn.xb = torch.randn(real.shape[0], *self.noise_size, generator=g).to(real.device)
        learn.yb = real

    def after_pred(self, learn: BaseLearner) -> None:
        if not self._checked:
            if learn.pred.shape[1:] != learn.yb.shape[1:]:
                raise ValueError(f"The generator makes samples of shape {tuple(learn.pred.shape[1:])} but the real batches (the critic's "
                                 f"input) have shape {tuple(learn.yb.shape[1:])}; they must match.")  # fmt: skip
            self._checked = True

    def after_loss(self, learn: BaseLearner) -> None:
        learn.recorder.log("gen_loss" if learn.gen_mode else "crit_loss", learn.loss)

    def after_step(self, learn: BaseLearner) -> None:
        if learn.gen_mode and learn.model.generator_ema is not None:
            learn.model.update_ema()
        self.steps_in_mode += 1
        if self.switch(learn, self.steps_in_mode):
            self.steps_in_mode = 0
            self._set_mode(learn, not learn.gen_mode)

    def before_validate(self, learn: BaseLearner) -> None:
        raise CancelValidException()

    def after_fit(self, learn: BaseLearner) -> None:
        if isinstance(learn.model, GANModule):  # (after_fit also runs when before_fit refused the model)
            learn.model.generator.requires_grad_(True)
            learn.model.critic.requires_grad_(True)

    def state_dict(self) -> dict[str, Any]:
        # Both optimizers: the checkpoint's own `opt` is only the one of the running phase.
        learn = self.learn
        return {"seed": self.seed, "steps_in_mode": self.steps_in_mode, "gen_mode": bool(learn.gen_mode),
                "gen_opt": learn.gen_opt.state_dict() if learn.gen_opt else None,
                "crit_opt": learn.crit_opt.state_dict() if learn.crit_opt else None}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        learn = self.learn
        self.seed, self.steps_in_mode = int(state["seed"]), int(state["steps_in_mode"])
        for name in ("gen_opt", "crit_opt"):
            if state.get(name) is not None:
                getattr(learn, name).load_state_dict(state[name])
        self._set_mode(learn, bool(state["gen_mode"]))


class GANLearner(Learner):
    """A `Learner` that trains `generator` against `critic` on the real images of `dls`.

    Args:
        generator: noise (batch, *noise_size) -> samples shaped like the real images.
        critic: images -> one score (logit) per image.
        dls: `DataLoaders` whose training batches are real images (or (images, labels)).
        gen_loss: `gen_loss(critic, fake, real)`; default the non-saturating loss.
        crit_loss: `crit_loss(critic, real, fake)`; default the non-saturating loss
            (use `wgan_gen_loss` and `wgan_gp_crit_loss` together for WGAN-GP).
        opt_func, lr: one optimizer of this kind per model (Adam with betas (0.5, 0.999) by
            default, the DCGAN setting).
        n_crit: critic steps per generator step (WGAN-GP uses 5).
        switch: `switch(learn, steps_in_phase) -> bool`, to change phase; overrides `n_crit`.
        noise_size: the shape of one noise vector (an int or a tuple).
        ema: keep a moving average of the generator's weights with this decay (e.g. 0.999),
            which `generate` draws from; see `GANModule`.
        kwargs: the rest of `Learner`'s arguments (cbs, device, progress, ...).
    """

    def __init__(self, generator: nn.Module, critic: nn.Module, dls: DataLoaders,
                 gen_loss: Callable[..., torch.Tensor] = gan_gen_loss, crit_loss: Callable[..., torch.Tensor] = gan_crit_loss,
                 opt_func: Callable[..., torch.optim.Optimizer] | None = None, lr: float = 2e-4, n_crit: int = 1,
                 switch: Callable[[BaseLearner, int], bool] | None = None, noise_size: int | Sequence[int] = 100,
                 seed: int | None = None, ema: float | None = None, **kwargs: Any):  # fmt: skip
        for name, f in (("gen_loss", gen_loss), ("crit_loss", crit_loss)):
            if not callable(f):
                raise TypeError(f"{name} must be a function of (critic, ...) returning a scalar tensor, got {type(f).__name__}.")
        self.gen_loss, self.crit_loss = gen_loss, crit_loss
        trainer = GANTrainer(noise_size, n_crit, switch, seed)  # reachable as learn.gan_trainer once attached
        opt_func = opt_func or (lambda params, lr: torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999)))
        train_only = DataLoaders(dls.train, None, meta=getattr(dls, "meta", None))
        self.gen_opt: torch.optim.Optimizer | None = None
        self.crit_opt: torch.optim.Optimizer | None = None
        self.gen_mode = False
        cbs = [*(kwargs.pop("cbs", None) or []), trainer]
        super().__init__(GANModule(generator, critic, ema), train_only, loss_func=self._loss, opt_func=opt_func, lr=lr, cbs=cbs, **kwargs)

    def split_batch(self, batch: Any) -> tuple[Any, Any]:
        """Real images, with or without labels: the labels are not used."""
        return (batch if isinstance(batch, torch.Tensor) else batch[0]), None

    def create_opt(self) -> torch.optim.Optimizer:
        """One optimizer per model; `opt` is the one of the phase that runs."""
        self.gen_opt = self.opt_func(self.model.generator.parameters(), lr=self.lr)
        self.crit_opt = self.opt_func(self.model.critic.parameters(), lr=self.lr)
        self.opt = self.gen_opt if self.gen_mode else self.crit_opt
        return self.opt

    def _loss(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        critic = self.model.critic
        return self.gen_loss(critic, fake, real) if self.gen_mode else self.crit_loss(critic, real, fake)

    def generate(self, n: int = 64, seed: int = 0, ema: bool = True, truncation: float | None = None, keep: float = 1.0) -> torch.Tensor:
        """`n` samples (eval mode, no gradients) from a fixed seed: from the generator's weight
        average when there is one (`ema=False`: from the generator itself).

        Two ways to trade variety for typical samples, both off by default:

        - `truncation` (the "truncation trick"): draw each noise value from the standard normal
          cut at +-truncation; None draws from the full normal.
        - `keep` below 1 (critic filtering): draw n / keep samples and return the n the critic
          scores as most real, in the order they were drawn. The critic learned where real
          images lie, so it weeds out the generator's worst attempts; this is a simple form of
          discriminator rejection sampling (Azadi et al. 2019). The judge of quality should be
          another model than this critic."""
        if truncation is not None and not truncation > 0:
            raise ValueError(f"truncation must be a positive number of standard deviations (e.g. 1.0), or None; got {truncation}.")
        if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
            raise ValueError(f"keep is the fraction of drawn samples to return, in (0, 1] (e.g. 0.25: the critic's best quarter); got {keep!r}.")
        n_drawn = math.ceil(round(n / keep, 9))  # round: 3 / 0.3 is 10.000000000000002 in floats, and must draw 10
        g = torch.Generator().manual_seed(seed)
        shape = (n_drawn, *self.gan_trainer.noise_size)
        if truncation is None:
            noise = torch.randn(shape, generator=g)
        else:
            noise = nn.init.trunc_normal_(torch.empty(shape), a=-truncation, b=truncation, generator=g)
        noise = noise.to(self.device)
        averaged = self.model.generator_ema
        gen = averaged if ema and averaged is not None else self.model.generator
        with evaluating(gen):
            samples = gen(noise)
        if n_drawn == n:
            return samples
        with evaluating(self.model.critic) as critic:
            scores = critic(samples).reshape(n_drawn)
        return samples[scores.topk(n).indices.sort().values]
