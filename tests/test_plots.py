"""Plots: known to pyplot (so plt.show() and notebooks display them), released once saved by a
script, drawn by a notebook once; the loss plot smooths, the schedule plot skips constants."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from torch import nn  # noqa: E402

import learnloop as ll  # noqa: E402

from .conftest import tiny_dls  # noqa: E402


@pytest.fixture
def learn():
    plt.close("all")
    ll.set_seed(0)
    learn = ll.Learner(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), tiny_dls(n_train=16, bs=4), progress=False,
                       cbs=[stats := ll.ActivationStats()])  # fmt: skip
    learn.stats = stats
    learn.fit_one_cycle(2, lr_max=0.1)
    yield learn
    plt.close("all")


def test_plots_are_pyplot_figures_released_when_saved(learn, tmp_path):
    fig = learn.recorder.plot_loss()
    assert plt.get_fignums() == [fig.number]  # plt.show() would show it
    saved = learn.recorder.plot_sched(path=tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 0 and plt.get_fignums() == [fig.number]  # the saved one is let go
    assert saved.axes  # and still usable


def test_a_notebook_draws_each_figure_once():
    IPython = pytest.importorskip("IPython")
    from unittest import mock

    fig = ll.schedule.plot_schedule(ll.sched_cos(1, 2))
    with mock.patch.object(IPython.display, "display") as shown:
        fig._ipython_display_()  # as a cell's value: drawn, and let go so the end-of-cell draw skips it
        assert shown.call_count == 1 and shown.call_args[0][0].data[:4] == b"\x89PNG"
        assert plt.get_fignums() == []


def test_plot_contents(learn):
    fig = learn.recorder.plot_loss(beta=0.5)
    ax = fig.axes[0]
    raw, smooth = ax.lines[0].get_ydata(), ax.lines[1].get_ydata()
    losses = learn.recorder.losses
    assert list(raw) == losses and smooth[0] == pytest.approx(losses[0])  # debiased: starts at the first loss
    assert smooth[1] == pytest.approx((0.25 * losses[0] + 0.5 * losses[1]) / 0.75)
    assert len([line for line in ax.lines if line.get_xdata()[0] == line.get_xdata()[-1]]) == 1  # one epoch boundary
    sched = learn.recorder.plot_sched()
    assert [a.get_title() for a in sched.axes] == ["lr"] and "wd = 0" in sched._suptitle.get_text()  # SGD: mom and wd stay 0
    colorful = learn.stats.plot_colorful()
    assert colorful.axes[0].get_title() == "linear 1 (Linear 4->8)" and colorful.axes[-1].get_label() == "<colorbar>"
