"""learnloop.losses against torch.nn.functional: values, gradients, stability, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from learnloop.losses import cross_entropy, log_softmax, logsumexp, nll_loss


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 70), classes=st.integers(1, 12), seed=st.integers(0, 10_000), scale=st.sampled_from([0.1, 1.0, 10.0]))
def test_equal_to_torch(batch, classes, seed, scale):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, classes, generator=g) * scale
    y = torch.randint(0, classes, (batch,), generator=g)
    assert torch.allclose(logsumexp(x), torch.logsumexp(x, -1), atol=1e-6)
    assert torch.allclose(log_softmax(x), F.log_softmax(x, -1), atol=1e-6)
    lp = F.log_softmax(x, -1)
    for red in ("mean", "sum", "none"):
        assert torch.allclose(nll_loss(lp, y, reduction=red), F.nll_loss(lp, y, reduction=red), atol=1e-6)
        assert torch.allclose(cross_entropy(x, y, reduction=red), F.cross_entropy(x, y, reduction=red), atol=1e-5)
    assert torch.allclose(cross_entropy(x, y, 0.1), F.cross_entropy(x, y, label_smoothing=0.1), atol=1e-6)


def test_other_dims():
    x = torch.randn(3, 5, 4)
    assert torch.allclose(logsumexp(x, dim=1), torch.logsumexp(x, 1), atol=1e-6)
    assert torch.allclose(log_softmax(x, dim=0), F.log_softmax(x, 0), atol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_gradients_match_torch(smoothing):
    x = torch.randn(16, 7, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 7, (16,))
    (ga,) = torch.autograd.grad(cross_entropy(x, y, smoothing), x)
    (gb,) = torch.autograd.grad(F.cross_entropy(x, y, label_smoothing=smoothing), x)
    assert torch.allclose(ga, gb, atol=1e-12)
    (gl,) = torch.autograd.grad(logsumexp(x).sum(), x)
    assert torch.allclose(gl, torch.softmax(x, -1), atol=1e-12)


def test_stable_on_huge_logits():
    x = torch.randn(32, 10) * 1e4
    y = torch.randint(0, 10, (32,))
    naive = (x.exp().sum(-1)).log()
    assert not torch.isfinite(naive).all()  # the naive formula overflows here
    out = cross_entropy(x, y)
    assert torch.isfinite(out) and torch.allclose(out, F.cross_entropy(x, y), rtol=1e-6)
    assert torch.allclose(logsumexp(x), torch.logsumexp(x, -1), rtol=1e-6)
    inf_row = torch.full((1, 3), float("-inf"))
    assert logsumexp(inf_row).item() == float("-inf")


def test_clear_errors():
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    with pytest.raises(ValueError, match=r"classes from 0 to 3, but logits have 3 classes \(0..2\)"):
        cross_entropy(x, torch.tensor([0, 1, 3, 1]))
    with pytest.raises(ValueError, match="classes from -1"):
        nll_loss(F.log_softmax(x, -1), torch.tensor([0, -1, 2, 1]))
    with pytest.raises(TypeError, match="class indices.*float32"):
        cross_entropy(x, y.float())
    with pytest.raises(ValueError, match="batch size 4 but target has 2"):
        cross_entropy(x, y[:2])
    with pytest.raises(ValueError, match=r"\(batch, n_classes\)"):
        cross_entropy(torch.randn(4), y)
    with pytest.raises(ValueError, match="reduction"):
        cross_entropy(x, y, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        cross_entropy(x, y, label_smoothing=1.5)
    with pytest.raises(TypeError, match="class indices.*bool"):  # booleans are not class indices either
        cross_entropy(x, y == 1)
    with pytest.raises(ValueError, match=r"log_probs must be \(batch, n_classes\)"):  # the message names nll_loss's argument
        nll_loss(torch.randn(4), y)


@pytest.mark.parametrize("smoothing", [0.3, 1.0])
def test_label_smoothing_per_sample_and_at_the_boundary(smoothing):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 5, generator=g), torch.randint(0, 5, (6,), generator=g)
    for red in ("none", "sum", "mean"):  # 'none': each row smoothed with its own mean log-probability
        want = F.cross_entropy(x, y, reduction=red, label_smoothing=smoothing)
        torch.testing.assert_close(cross_entropy(x, y, reduction=red, label_smoothing=smoothing), want)


def test_usable_as_learner_loss():
    from torch import nn

    import learnloop as ll

    from .conftest import tiny_dls

    torch.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    ll.Learner(a, tiny_dls(), loss_func=cross_entropy, default_cbs=False).fit(2)
    ll.Learner(b, tiny_dls(), loss_func=F.cross_entropy, default_cbs=False).fit(2)
    assert torch.allclose(a.weight, b.weight, atol=1e-6)
