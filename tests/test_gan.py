"""GANLearner on a 2-D Gaussian: samples move toward the data, each model trains only in
its own phase, WGAN-GP's penalty against its formula, and the bad inputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import learnloop as ll
from learnloop.gan import GANModule, gradient_penalty, wgan_gen_loss, wgan_gp_crit_loss


def blob(n: int = 2048, seed: int = 0) -> torch.Tensor:
    """A stretched 2-D Gaussian away from the origin, where an untrained generator puts its samples."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g) * torch.tensor([0.5, 0.2]) + torch.tensor([2.0, -1.0])


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """2 E|X - Y| - E|X - X'| - E|Y - Y'|: zero exactly when the two distributions are equal."""
    return (2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()).item()


def models():
    gen = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    crit = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
    return gen, crit


def dls(bs=128):
    x = blob()
    return ll.DataLoaders.from_tensors(x, torch.zeros(len(x)), batch_size=bs, seed=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_samples_move_toward_the_data(seed):
    ll.set_seed(seed)
    learn = ll.GANLearner(*models(), dls(64), lr=1e-3, noise_size=8, seed=seed, progress=False)
    data = blob(1000, seed=9)
    before = energy_distance(learn.generate(1000), data)
    learn.fit(4)  # 32 steps an epoch: 128 steps, half of them the generator's
    after = energy_distance(learn.generate(1000), data)
    assert after < 0.25 * before, (before, after)  # measured: 3.4-3.8 -> 0.05-0.6
    hist = learn.recorder.history[-1]
    assert {"gen_loss", "crit_loss"} <= set(hist) and len(learn.recorder.logs["gen_loss"]) == len(learn.recorder.logs["crit_loss"]) == 64


def test_each_model_trains_only_in_its_own_phase():
    ll.set_seed(1)
    trace = []

    class Trace(ll.Callback):
        order = 90

        def before_step(self, learn):
            gan, self.mode = learn.model, learn.gen_mode  # GANTrainer (order -20) switches in after_step before this one runs
            self.snap = [p.detach().clone() for p in gan.parameters()]
            self.grads = {"gen": [p.grad is not None for p in gan.generator.parameters()], "crit": [p.grad is not None for p in gan.critic.parameters()]}

        def after_step(self, learn):
            gan = learn.model
            moved = [not torch.equal(a, p) for a, p in zip(self.snap, gan.parameters())]
            n_gen = len(list(gan.generator.parameters()))
            trace.append((self.mode, self.grads, all(moved[:n_gen]), any(moved[:n_gen]), all(moved[n_gen:]), any(moved[n_gen:])))

    learn = ll.GANLearner(*models(), dls(), lr=1e-3, noise_size=8, n_crit=3, seed=0, progress=False, cbs=[Trace()])
    learn.fit(1)
    modes = [t[0] for t in trace]
    assert modes[:8] == [False, False, False, True, False, False, False, True]  # 3 critic steps, then 1 generator step
    for gen_mode, grads, gen_all, gen_any, crit_all, crit_any in trace:
        if gen_mode:
            assert all(grads["gen"]) and not any(grads["crit"]) and gen_all and not crit_any
        else:
            assert all(grads["crit"]) and not any(grads["gen"]) and crit_all and not gen_any
    assert all(p.requires_grad for p in learn.model.parameters())  # unfrozen after fitting


def test_gradient_penalty_matches_the_formula_for_a_linear_critic():
    critic = nn.Linear(3, 1)
    real, fake = torch.randn(16, 3), torch.randn(16, 3)
    w = critic.weight.detach().flatten()
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)  # grad of w.x is w
    ll.set_seed(2)
    learn = ll.GANLearner(*models(), dls(), gen_loss=wgan_gen_loss, crit_loss=wgan_gp_crit_loss, lr=1e-4, n_crit=5, noise_size=8, seed=0,
                          opt_func=lambda p, lr: torch.optim.Adam(p, lr=lr, betas=(0.0, 0.9)), progress=False)  # fmt: skip
    learn.fit(1)
    assert len(learn.recorder.logs["crit_loss"]) == 14 and len(learn.recorder.logs["gen_loss"]) == 2  # 16 steps: CCCCCG CCCCCG CCCC


def test_generator_average_follows_its_formula_weights_and_batch_norm_statistics():
    torch.manual_seed(0)
    gen = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    gan = GANModule(gen, nn.Linear(4, 1), ema=0.6)
    expected = {k: v.clone() for k, v in gen.state_dict().items()}
    for t in range(1, 8):
        with torch.no_grad():
            gen[0].weight.add_(torch.randn(4, 3))
        gen(torch.randn(16, 3) * t)  # train mode: moves the running statistics
        gan.update_ema()
        decay = min(0.6, (1 + t) / (10 + t))  # the warm-up, then 0.6 from t = 5 on
        for k, v in gen.state_dict().items():
            expected[k] = decay * expected[k] + (1 - decay) * v if v.is_floating_point() else v.clone()
    got = gan.generator_ema.state_dict()
    assert int(gan.ema_steps) == 7 and got["1.num_batches_tracked"] == 7
    for k, v in expected.items():
        torch.testing.assert_close(got[k], v, rtol=1e-6, atol=1e-6)
    assert not any(p.requires_grad for p in gan.generator_ema.parameters())
    with pytest.raises(ValueError, match="ema .* between 0 and 1"):
        GANModule(gen, nn.Linear(4, 1), ema=1.0)


def test_gan_learner_with_a_generator_average_draws_from_it():
    ll.set_seed(0)
    real = blob()
    learn = ll.GANLearner(*models(), dls(64), lr=1e-3, noise_size=8, seed=0, ema=0.9, progress=False)
    learn.fit(4)
    assert int(learn.model.ema_steps) == len(learn.recorder.logs["gen_loss"]) == 64  # one update per generator step
    averaged, live = learn.generate(1000), learn.generate(1000, ema=False)
    assert not torch.equal(averaged, live)
    assert energy_distance(averaged, real[:1000]) < 0.3 and energy_distance(live, real[:1000]) < 0.3
    assert all(p.requires_grad for p in learn.model.generator.parameters()) and not any(p.requires_grad for p in learn.model.generator_ema.parameters())


@pytest.mark.parametrize("ema", [None, 0.95])
def test_checkpoint_resume_of_a_gan_is_exact(tmp_path, ema):
    def make():
        ll.set_seed(3)
        return ll.GANLearner(*models(), dls(), lr=1e-3, noise_size=8, n_crit=2, seed=0, ema=ema, progress=False)

    whole = make()
    whole.fit(2)

    class Stop(ll.Callback):
        order = 200

        def after_batch(self, learn):
            if learn.train_batches_done == 21:
                raise KeyboardInterrupt

    part = make()
    with pytest.raises(KeyboardInterrupt):
        part.fit(2, cbs=[Stop(), ll.Checkpoint(every_n_steps=7, dir=tmp_path)])
    resumed = make()
    resumed.fit(2, resume=tmp_path, cbs=[ll.Checkpoint(every_n_steps=7, dir=tmp_path)])
    assert whole.model.state_dict().keys() == resumed.model.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()))


def test_bad_gan_inputs_are_named():
    with pytest.raises(ValueError, match="n_crit"):
        ll.GANLearner(*models(), dls(), n_crit=0)
    gen = nn.Sequential(nn.Linear(8, 3))  # makes 3-D points, the data is 2-D
    learn = ll.GANLearner(gen, models()[1], dls(), noise_size=8, progress=False)
    with pytest.raises(ValueError, match=r"generator makes samples of shape \(3,\).*real batches.*\(2,\)"):
        learn.fit(1)
    with pytest.raises(TypeError, match="GANModule"):
        ll.Learner(nn.Linear(2, 1), dls(), cbs=[ll.GANTrainer()], progress=False).fit(1)
    assert isinstance(learn.model, GANModule)


def test_truncated_noise_is_the_normal_cut_at_the_threshold():
    # An identity generator shows the noise itself.
    learn = ll.GANLearner(nn.Identity(), models()[1], dls(), noise_size=2, seed=0, progress=False)
    full = learn.generate(20000, seed=1)
    assert torch.equal(full, learn.generate(20000, seed=1)) and full.abs().max() > 3  # a fixed seed; the full normal's tails
    for t in (0.5, 2.0):
        cut = learn.generate(20000, seed=1, truncation=t)
        assert cut.abs().max() <= t
        # the standard normal truncated at +-t has variance 1 - 2 t phi(t) / (2 Phi(t) - 1)
        phi, Phi = math.exp(-t * t / 2) / math.sqrt(2 * math.pi), 0.5 * (1 + math.erf(t / math.sqrt(2)))
        assert cut.std().item() == pytest.approx(math.sqrt(1 - 2 * t * phi / (2 * Phi - 1)), rel=0.03)
        assert abs(cut.mean().item()) < 0.03
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="truncation must be a positive"):
            learn.generate(4, truncation=bad)


def test_critic_filtering_keeps_the_samples_the_critic_rates_most_real():
    # An identity generator shows the noise; this critic's score is the first coordinate.
    critic = nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[1.0, 0.0]]))
        critic.bias.zero_()
    learn = ll.GANLearner(nn.Identity(), nn.Sequential(critic, nn.Dropout(0.5)), dls(), noise_size=2, seed=0, progress=False)
    drawn = learn.generate(4000, seed=3)
    kept = learn.generate(1000, seed=3, keep=0.25)
    best = drawn[:, 0].topk(1000).indices.sort().values  # the best quarter, in the order drawn
    assert torch.equal(kept, drawn[best]) and kept[:, 0].min() >= drawn[:, 0].quantile(0.75)
    assert learn.model.critic.training and learn.generate(10, seed=3, keep=0.3).shape == (10, 2)  # 34 drawn, 10 kept
    assert torch.equal(learn.generate(3, seed=3, keep=1.0), learn.generate(3, seed=3))  # keep=1 is plain sampling
    for bad in (0, 1.5, -0.25, True, "half"):
        with pytest.raises(ValueError, match=r"keep is the fraction of drawn samples to return, in \(0, 1\]"):
            learn.generate(4, keep=bad)
