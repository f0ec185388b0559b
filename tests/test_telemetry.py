"""ActivationStats: the recorded numbers, the plots, the summary."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import learnloop as ll

from .conftest import tiny_dls


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))


def test_records_match_an_independent_forward():
    m = model()
    dls = tiny_dls(n_train=12, bs=4, seed=2)
    first_idx = dls.train.batch_sampler.batches().__next__().clone()
    x = dls.train.dataset.tensors[0][first_idx]
    with torch.no_grad():
        h1 = m[1](m[0](x))
        h2 = m[3](m[2](h1))
    act = ll.ActivationStats(every=1, hist_bins=10, hist_range=(0, 5))
    ll.Learner(m, dls, lr=0.1, cbs=[act], progress=False).fit(1)
    s = act.stats()
    assert act.layer_names == ["1", "3"] and act.weight_names == ["0", "2", "4"]
    assert s["means"].shape == (3, 2) and s["hists"].shape == (3, 2, 10) and s["grad_stds"].shape == (3, 3)
    assert s["means"][0, 0].item() == pytest.approx(h1.mean().item(), abs=1e-6)
    assert s["stds"][0, 1].item() == pytest.approx(h2.std().item(), abs=1e-6)
    assert torch.equal(s["hists"][0, 0], torch.histc(h1.abs(), 10, 0, 5))
    assert s["dead"][0, 0].item() == pytest.approx((h1.abs() < 0.5).float().mean().item())
    assert all(r.device.type == "cpu" for r in act.records)
    assert all(not mod._forward_hooks for mod in m.modules())


def test_every_and_gradients():
    m = model()
    act = ll.ActivationStats(every=3)
    learn = ll.Learner(m, tiny_dls(n_train=40, bs=4), lr=0.1, cbs=[act], progress=False)
    learn.fit(2)  # 20 steps: recorded at 0, 3, ..., 18
    assert act.steps == list(range(0, 20, 3))
    assert torch.isfinite(act.stats()["grad_stds"]).all()


def test_plots(tmp_path):
    act = ll.ActivationStats()
    ll.Learner(model(), tiny_dls(n_train=16, bs=4), cbs=[act], progress=False).fit(1)
    for name in ("plot_stats", "plot_colorful", "plot_dead"):
        fig = getattr(act, name)(path=tmp_path / f"{name}.png")
        assert fig.axes and (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_summary_names_dead_layers_and_passes_healthy_ones():
    m = ll.init_model(model(), ll.init.kaiming_normal_, generator=torch.Generator().manual_seed(0))
    act = ll.ActivationStats()
    ll.Learner(m, tiny_dls(n_train=16, bs=4), lr=0.01, cbs=[act], progress=False).fit(1)
    assert act.summary().startswith("no problems"), act.summary()
    bad = model()
    with torch.no_grad():
        bad[2].bias.fill_(-100.0)  # everything after the second linear layer is dead
    act = ll.ActivationStats()
    ll.Learner(bad, tiny_dls(n_train=16, bs=4), lr=0.01, cbs=[act], progress=False).fit(1)
    text = act.summary()
    assert "3: 100% of activations sit near zero" in text and "collapsing" in text


def test_errors():
    with pytest.raises(ValueError, match="every"):
        ll.ActivationStats(every=0)
    with pytest.raises(RuntimeError, match="no records"):
        ll.ActivationStats().stats()
