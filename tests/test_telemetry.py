"""ActivationStats: the recorded numbers, the plots, the summary."""

from __future__ import annotations

import numpy as np
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
    with pytest.raises(RuntimeError, match="^ActivationStats has no records yet: train with it first"):
        ll.ActivationStats().stats()


def conv_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.ReLU(), nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3),
    )  # fmt: skip


def image_dls():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 1, 5, 5, generator=g), torch.randint(0, 3, (8,), generator=g)
    return ll.DataLoaders.from_tensors(x, y, batch_size=4)


def test_layer_names_and_labels_say_which_layer_is_watched():
    m = conv_model()
    act = ll.ActivationStats()
    ll.Learner(m, image_dls(), cbs=[act], progress=False).fit(1)
    assert act.layer_names == ["0", "2", "4", "7"]  # the activation layers, by default
    assert act.layer_labels == ["0 (ReLU)", "conv 1 (Conv2d 1->4)", "conv 2 (Conv2d 4->8)", "linear 1 (Linear 8->6)"]
    assert act.weight_names == ["1", "3", "6", "8"]
    # Chosen modules: a model without activations is watched at its conv and linear layers; a
    # module outside the model is named by its type; the model itself is the input.
    lin = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 3))
    act = ll.ActivationStats()
    ll.Learner(lin, tiny_dls(n_train=8, bs=4), cbs=[act], progress=False).fit(1)
    assert act.layer_names == ["0", "1"] and act.layer_labels == ["linear 1 (Linear 4->5)", "linear 2 (Linear 5->3)"]
    stranger = nn.Tanh()
    act = ll.ActivationStats(modules=[m[2], m, stranger])
    act.before_fit(ll.Learner(m, image_dls(), progress=False))
    assert act.layer_names == ["2", "", "Tanh"] and act.layer_labels == ["conv 1 (Conv2d 1->4)", "input (Sequential)", "Tanh"]
    # ... or by their names in named_modules(), mixed with modules.
    act = ll.ActivationStats(modules=["4", m[2]])
    act.before_fit(ll.Learner(m, image_dls(), progress=False))
    assert act.layer_names == ["4", "2"] and act.layer_labels[1] == "conv 1 (Conv2d 1->4)"


def test_a_frozen_weight_has_no_gradient_std_and_the_records_have_the_documented_layout():
    m = model()
    m[0].weight.requires_grad_(False)
    act = ll.ActivationStats(hist_bins=4, hist_range=(0, 8))
    ll.Learner(m, tiny_dls(n_train=8, bs=4), cbs=[act], progress=False).fit(1)
    s = act.stats()
    assert all(r.shape == (2 * (3 + 4) + 3,) for r in act.records)  # per layer: mean, std, dead, 4 bins; then 3 weights
    assert torch.isnan(s["grad_stds"][:, 0]).all() and torch.isfinite(s["grad_stds"][:, 1:]).all()
    assert torch.equal(s["dead"], s["hists"][:, :, 0] / (4 * 16))


@pytest.mark.parametrize("hist_range", [(0, 5), (1, 5)])
def test_histogram_over_its_range(hist_range):
    m = model()
    dls = tiny_dls(n_train=4, bs=4, seed=2)
    with torch.no_grad():
        h1 = m[1](m[0](dls.train.dataset.tensors[0][dls.train.batch_sampler.batches().__next__()]))
    act = ll.ActivationStats(hist_bins=8, hist_range=hist_range)
    ll.Learner(m, dls, lr=0.1, cbs=[act], progress=False).fit(1)
    # torch.histc counts a value exactly at the top in the last bin; the bincount path (from 0) does not
    expected = torch.histc(h1.abs(), 8, *hist_range) if hist_range[0] else torch.histc(h1.abs().clamp(max=4.999), 8, *hist_range)
    assert torch.equal(act.stats()["hists"][0, 0], expected)


class _Compiled(nn.Module):
    """What torch.compile returns, as far as ActivationStats can tell: the eager model at `_orig_mod`."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self._orig_mod = inner

    def forward(self, x):
        return self._orig_mod(x)


def test_cleanup_and_refusals():
    with pytest.raises(ValueError, match="^ActivationStats hooks every watched layer, which changes a compiled model's graph"):
        ll.Learner(_Compiled(model()), tiny_dls(), cbs=[ll.ActivationStats()], progress=False).fit(1)
    with pytest.raises(ValueError, match=r"^ActivationStats found no layers to watch; pass modules=\[\.\.\.\]\.$"):
        ll.Learner(nn.Sequential(nn.BatchNorm1d(4)), tiny_dls(), cbs=[ll.ActivationStats()], progress=False).fit(1)
    assert ll.ActivationStats().state_dict() == {"records": None, "steps": []}  # before any fit
    defaults = ll.ActivationStats()
    assert (defaults.every, defaults.hist_bins, defaults.hist_range, defaults.modules) == (1, 40, (0, 10), None)
    act = ll.ActivationStats(every=2)
    ll.Learner(model(), tiny_dls(n_train=16, bs=4), cbs=[act], progress=False).fit(1)
    state = act.state_dict()
    assert state["records"].shape == (2, len(act.records[0])) and state["steps"] == [0, 2]
    again = ll.ActivationStats(every=2)
    again.load_state_dict(state)
    assert torch.equal(torch.stack(again.records), torch.stack(act.records)) and again.steps == [0, 2]
    again.load_state_dict(ll.ActivationStats().state_dict())  # a state from before any record
    assert again.records == [] and again.steps == []

    # A fit cancelled before (or just after) ActivationStats' own before_fit: after_fit still runs for it.
    for order in (0, 80):
        class Stop(ll.Callback):
            def before_fit(self, learn):
                raise ll.CancelFitException()

        Stop.order = order
        act = ll.ActivationStats()
        ll.Learner(model(), tiny_dls(), cbs=[act, Stop()], progress=False).fit(1)
        assert act.records == [] and act.steps == []


def _hand_made(steps: int, means, stds, dead, grads, bins: int = 2) -> ll.ActivationStats:
    """An ActivationStats holding the given per-step numbers (lists over steps, then layers/weights)."""
    act = ll.ActivationStats(hist_bins=bins)
    n_layers = len(stds[0])
    act.layer_names = [f"L{i}" for i in range(n_layers)]
    act.layer_labels = act.layer_names
    act.weight_names = [f"W{i}" for i in range(len(grads[0]))]
    for t in range(steps):
        per_layer = [torch.tensor([means[t][i], stds[t][i], dead[t][i], *[0.0] * bins]) for i in range(n_layers)]
        act.records.append(torch.cat([*per_layer, torch.tensor(grads[t], dtype=torch.float32)]))
        act.steps.append(t)
    return act


def test_summary_reads_the_last_tenth_and_its_thresholds():
    ok = [1.0, 1.0]
    # 20 steps: the verdict reads the last 2. The earlier steps are all bad and must not count.
    stds = [[100.0, 0.01]] * 18 + [[1.0, 1.0], [1.0, 1.0]]
    dead = [[0.9, 0.9]] * 18 + [[1.0, 0.0], [0.6, 0.0]]  # layer 0: 0.8 over the last 2 (0.6 alone would pass)
    act = _hand_made(20, [ok] * 20, stds, dead, [[0.01, 0.5, 5.0]] * 20)  # first against last, not the second
    assert act.summary() == (
        "L0: 80% of activations sit near zero (dead units); try GeneralRelu(leak=..., sub=...) or Kaiming init.\n"
        "gradients vanish towards the input: weight-gradient std 0.01 at W0 vs 5 at W2."
    )
    # the default ratio is 100: 0.5 -> 50.25 vanishes (it would not at 101)
    assert _hand_made(1, [ok], [ok], [[0.0, 0.0]], [[0.5, 50.25]]).summary().startswith("gradients vanish")
    # 5 steps: the last one alone (0.6 dead passes)
    act = _hand_made(5, [ok] * 5, [ok] * 5, [[1.0, 0.0]] * 4 + [[0.6, 0.0]], [[1.0, 1.0]] * 5)
    assert act.summary().startswith("no problems seen")
    # exactly at each threshold is not a finding; just past it is
    act = _hand_made(1, [ok], [[0.5, 8.0]], [[0.75, 0.0]], [[0.5, 50.0]])
    assert act.summary(dead_max=0.75, std_band=(0.5, 8.0), grad_ratio=100).startswith("no problems seen")
    act = _hand_made(1, [ok], [[0.25, 16.0]], [[0.875, 0.0]], [[0.5, 50.5]])
    assert act.summary(dead_max=0.75, std_band=(0.5, 8.0), grad_ratio=100).splitlines() == [
        "L0: activations are collapsing (std 0.25); check the initialisation (init_report) or the learning rate.",
        "L0: 88% of activations sit near zero (dead units); try GeneralRelu(leak=..., sub=...) or Kaiming init.",
        "L1: activations are exploding (std 16); lower the learning rate or add normalisation.",
        "gradients vanish towards the input: weight-gradient std 0.5 at W0 vs 50.5 at W1.",
    ]
    # a NaN std is exploding too; a first weight without gradients (NaN) says nothing about vanishing
    act = _hand_made(1, [ok], [[float("nan"), 1.0]], [[0.0, 0.0]], [[float("nan"), 50.0]])
    assert act.summary() == "L0: activations are exploding (std nan); lower the learning rate or add normalisation."


def test_plots_draw_the_recorded_numbers(tmp_path):
    from matplotlib.font_manager import FontProperties

    small = FontProperties(size="small").get_size_in_points()
    m = conv_model()
    act = ll.ActivationStats(hist_bins=6, hist_range=(0, 3), every=2)
    ll.Learner(m, image_dls(), cbs=[act], progress=False).fit(4)  # 8 steps, recorded at 0, 2, 4, 6
    s, n = act.stats(), 4
    assert s["steps"].tolist() == [0, 2, 4, 6]

    fig = act.plot_stats()
    assert tuple(fig.get_size_inches()) == (10, 3.8) and len(fig.axes) == 2
    assert fig.axes[0].get_position().x1 < fig.axes[1].get_position().x0  # side by side
    for ax, key, title in zip(fig.axes, ("means", "stds"), ("activation mean", "activation std")):
        assert ax.get_title() == title and ax.get_xlabel() == "step"
        assert [line.get_label() for line in ax.lines] == act.layer_labels
        for i, line in enumerate(ax.lines):
            assert list(line.get_xdata()) == [0, 2, 4, 6] and np.allclose(line.get_ydata(), s[key][:, i].numpy())
    legend = fig.axes[0].get_legend()
    assert fig.axes[1].get_legend() is None and legend.get_texts()[0].get_fontsize() == small

    fig = act.plot_dead(path=tmp_path / "dead.png")
    (ax,) = fig.axes
    assert tuple(fig.get_size_inches()) == (6, 3.8) and ax.get_ylim() == (0, 1)
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("step", "share near zero", "dead activations")
    assert [line.get_label() for line in ax.lines] == act.layer_labels
    for i, line in enumerate(ax.lines):
        assert list(line.get_xdata()) == [0, 2, 4, 6] and np.allclose(line.get_ydata(), s["dead"][:, i].numpy())
    assert ax.get_legend().get_texts()[0].get_fontsize() == small
    assert (tmp_path / "dead.png").read_bytes()[:4] == b"\x89PNG"

    fig = act.plot_colorful()
    assert tuple(fig.get_size_inches()) == (3.2 * n, 3.8) and len(fig.axes) == n + 1  # a panel per layer and the colour bar
    panels, bar = fig.axes[:n], fig.axes[n]
    for i, ax in enumerate(panels):
        (im,) = ax.images
        assert np.allclose(im.get_array(), torch.log1p(s["hists"][:, i, :]).T.numpy())
        assert im.origin == "lower" and ax.get_aspect() == "auto" and tuple(im.get_extent()) == (0.0, 7.0, 0, 3)
        assert ax.get_title() == act.layer_labels[i] and ax.title.get_fontsize() == small and ax.get_xlabel() == "step"
    assert panels[0].get_ylabel() == "|activation|" and all(ax.get_ylabel() == "" for ax in panels[1:])
    assert bar.get_ylabel() == "log(1 + count)" and panels[-1].images[0].colorbar is not None
    # the colour bar takes its room from the last panel only
    widths = [ax.get_position().width for ax in panels]
    assert widths[-1] < min(widths[:-1]) and np.allclose(widths[:-1], widths[0])
