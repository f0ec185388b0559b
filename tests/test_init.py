"""Initialisation: exact gains and fans, distributions against torch.nn.init, init_model, LSUV,
and the diagnostics that judge an initialisation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from learnloop import init as li
from learnloop.diagnostics import init_report, layer_stats, matmul_experiment, sqrt5_net


def test_exact_gains():
    assert li.gain(1) == 1.0
    assert li.gain(0) == 1.4142135623730951
    assert li.gain(math.sqrt(5)) == 0.5773502691896257
    assert li.calculate_gain("tanh") == 5 / 3 and li.calculate_gain("selu") == 0.75 and li.calculate_gain("linear") == 1
    assert li.calculate_gain("leaky_relu", 0.1) == pytest.approx(nn.init.calculate_gain("leaky_relu", 0.1))
    names = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid", "tanh", "relu", "selu"]
    for name in names:  # every name torch knows, with torch's value
        assert li.calculate_gain(name) == pytest.approx(nn.init.calculate_gain(name), rel=1e-15), name
    assert li.calculate_gain("leaky_relu") == math.sqrt(2)  # a defaults to 0 (torch's own default slope is 0.01)
    for a in (0.0, 0.01, 0.2, math.sqrt(5)):
        assert li.calculate_gain("leaky_relu", a) == pytest.approx(nn.init.calculate_gain("leaky_relu", a), rel=1e-15)
    with pytest.raises(ValueError, match="Unknown nonlinearity") as err:
        li.calculate_gain("swish")
    assert str(sorted([*names, "leaky_relu"])) in str(err.value)  # the message lists what is known


def test_fans():
    assert li.fan_in_fan_out(torch.empty(50, 784)) == (784, 50)
    assert li.fan_in_fan_out(torch.empty(32, 16, 3, 3)) == (16 * 9, 32 * 9)
    assert li.fan_in_fan_out(torch.empty(8, 4, 3, 5, 7)) == (4 * 105, 8 * 105)
    with pytest.raises(ValueError, match="at least 2 dims"):
        li.fan_in_fan_out(torch.empty(5))


def test_sqrt5_default_variance_is_a_sixth_of_relus():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 32, 5)  # PyTorch's default init
    assert conv.weight.std().item() == pytest.approx(1 / math.sqrt(3 * 25), rel=0.05)  # 0.1155
    assert li.gain(math.sqrt(5)) ** 2 / li.gain(0) ** 2 == pytest.approx(1 / 6)


SHAPES = [(256, 512), (128, 64, 3, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda w, g: li.kaiming_normal_(w, generator=g), lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")),
        (lambda w, g: li.kaiming_normal_(w, a=0.1, mode="fan_out", generator=g), lambda w: nn.init.kaiming_normal_(w, a=0.1, mode="fan_out", nonlinearity="leaky_relu")),
        (lambda w, g: li.kaiming_uniform_(w, generator=g), lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu")),
        (lambda w, g: li.kaiming_uniform_(w, a=math.sqrt(5), generator=g), lambda w: nn.init.kaiming_uniform_(w, a=math.sqrt(5))),
        (lambda w, g: li.xavier_normal_(w, gain=2.0, generator=g), lambda w: nn.init.xavier_normal_(w, gain=2.0)),
        (lambda w, g: li.xavier_uniform_(w, generator=g), lambda w: nn.init.xavier_uniform_(w)),
        (lambda w, g: li.lecun_normal_(w, generator=g), lambda w: nn.init.kaiming_normal_(w, nonlinearity="linear")),
        (lambda w, g: li.orthogonal_(w, gain=1.5, generator=g), lambda w: nn.init.orthogonal_(w, gain=1.5)),
    ],
)
def test_distributions_match_torch(shape, ours, theirs):
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    a, b = ours(torch.empty(shape), g), theirs(torch.empty(shape))
    assert a.std().item() == pytest.approx(b.std().item(), rel=0.03)
    assert abs(a.mean().item()) < 0.05 * a.std().item() + 1e-3
    # uniform inits: same bounds
    if (a.abs().max() / a.std()) < 2:  # a uniform has max/std = sqrt(3)
        assert a.abs().max().item() == pytest.approx(b.abs().max().item(), rel=0.01)


def test_uniform_bounds_exact():
    w = li.kaiming_uniform_(torch.empty(100, 300), generator=torch.Generator().manual_seed(0))
    bound = math.sqrt(2) * math.sqrt(3 / 300)
    assert w.abs().max().item() <= bound and w.abs().max().item() > 0.99 * bound
    w = li.xavier_uniform_(torch.empty(100, 300), generator=torch.Generator().manual_seed(0))
    assert w.abs().max().item() <= math.sqrt(6 / 400)


def test_orthogonal_is_orthogonal_and_reproducible():
    w = li.orthogonal_(torch.empty(64, 128), generator=torch.Generator().manual_seed(3))
    assert torch.allclose(w @ w.T, torch.eye(64), atol=1e-5)
    w2 = li.orthogonal_(torch.empty(64, 128), generator=torch.Generator().manual_seed(3))
    assert torch.equal(w, w2)
    c = li.orthogonal_(torch.empty(16, 8, 3, 3))
    flat = c.view(16, -1)
    assert torch.allclose(flat @ flat.T, torch.eye(16), atol=1e-5)


def test_generators_make_inits_reproducible():
    for f in (li.kaiming_normal_, li.kaiming_uniform_, li.xavier_normal_, li.lecun_normal_):
        a = f(torch.empty(10, 10), generator=torch.Generator().manual_seed(7))
        b = f(torch.empty(10, 10), generator=torch.Generator().manual_seed(7))
        assert torch.equal(a, b)
    assert li.zeros_(torch.ones(3, 3)).abs().sum() == 0


def test_init_model_recurses_and_sets_bias():
    model = nn.Sequential(nn.Conv2d(3, 64, 3), nn.Sequential(nn.Linear(64, 512), nn.ReLU()), nn.BatchNorm1d(512), nn.Linear(512, 400))
    bn_before = model[2].weight.clone()
    out = li.init_model(model, li.kaiming_normal_, bias=0.1, generator=torch.Generator().manual_seed(0))
    assert out is model
    assert model[1][0].weight.std().item() == pytest.approx(math.sqrt(2 / 64), rel=0.05)
    assert model[3].weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.05)
    assert torch.all(model[0].bias == 0.1) and torch.all(model[3].bias == 0.1)
    assert torch.equal(model[2].weight, bn_before)  # not a conv or linear
    li.init_model(model, li.xavier_uniform_, bias=None)  # inits without `a` work too
    assert torch.all(model[0].bias == 0.1)


def _mnist_batch(mnist_dir, n=128):
    from learnloop.datasets import MNIST_MEAN, MNIST_STD, mnist, normalize

    d = mnist(mnist_dir)
    return normalize(d.x_train[:n], MNIST_MEAN, MNIST_STD).view(-1, 1, 28, 28), d.y_train[:n]


def test_lsuv_reaches_unit_std_and_leaves_no_trace(mnist_dir):
    xb, _ = _mnist_batch(mnist_dir)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip
    model.eval()
    bn_state = {k: v.clone() for k, v in model[3].state_dict().items()}
    report = li.lsuv_init(model, xb, tol=1e-3)
    assert [r["layer"] for r in report] == ["0", "2", "5", "9"]
    for r in report:
        assert abs(r["std"] - 1) < 1e-3 and abs(r["mean"]) < 1e-3, r
    assert not model.training
    assert all(torch.equal(v, model[3].state_dict()[k]) for k, v in bn_state.items())
    assert all(not m._forward_hooks for m in model.modules())
    # independent check of the first layer's output
    with torch.no_grad():
        out = model[0](xb)
    assert out.std().item() == pytest.approx(1, abs=1e-3)


def test_layer_stats_restores_grads_and_counts_dead():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
    x, y = torch.randn(50, 10), torch.randint(0, 3, (50,))
    model(x).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    stats = layer_stats(model, x, y, F.cross_entropy)
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, model.parameters()))
    with torch.no_grad():
        h = model[0](x)
    assert stats[0]["act_std"] == pytest.approx(h.std().item(), rel=1e-5)
    assert stats[1]["dead"] == pytest.approx((h <= 0).float().mean().item())
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    assert stats[0]["grad_std"] == pytest.approx(model[0].weight.grad.std().item(), rel=1e-5)
    assert "act std" in str(stats)


def test_init_report_flags_a_bad_model_and_passes_kaiming(mnist_dir):
    xb, yb = _mnist_batch(mnist_dir, 100)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip
    li.init_model(model, li.kaiming_normal_)
    good = init_report(model, xb, yb, F.cross_entropy)
    assert good.ok, str(good)
    with torch.no_grad():
        for p in model.parameters():
            p *= 0.01
    bad = init_report(model, xb, yb, F.cross_entropy)
    assert not bad.ok
    assert any(p.startswith("0 (Conv2d)") and "vanishing" in p for p in bad.problems)
    assert all("init_model" in p or "GeneralRelu" in p for p in bad.problems)
    assert "verdict" in str(bad)


def test_lesson_default_init_shrinks_activations(mnist_dir):
    xb, yb = _mnist_batch(mnist_dir, 100)
    loss = lambda out, y: F.mse_loss(out.squeeze(-1), y.float())
    torch.manual_seed(0)
    model = sqrt5_net()
    default = layer_stats(model, xb, yb, loss)
    li.init_model(model, li.kaiming_uniform_, bias=0.0)
    kaiming = layer_stats(model, xb, yb, loss)
    assert default[-1]["act_std"] < 0.02 < 0.2 < kaiming[-1]["act_std"]
    assert default[0]["grad_std"] < 0.1 < kaiming[0]["grad_std"]


def test_matmul_experiment():
    assert not math.isfinite(matmul_experiment(1.0)[40])
    assert matmul_experiment(0.01)[-1] == 0
    assert 0.2 < matmul_experiment(1 / math.sqrt(512))[-1] < 5


def test_init_model_draws_what_the_init_draws_in_module_order():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Sequential(nn.Linear(8, 16), nn.ReLU()), nn.Linear(16, 4, bias=False))
    li.init_model(model, li.kaiming_normal_, a=0.1, bias=0.25, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # the same draws, by hand, in the order the modules come
    for layer in (model[0], model[1][0], model[2]):
        assert torch.equal(layer.weight, li.kaiming_normal_(torch.empty_like(layer.weight), a=0.1, generator=g))
    assert torch.all(model[0].bias == 0.25) and torch.all(model[1][0].bias == 0.25) and model[2].bias is None
    li.init_model(model)  # defaults: Kaiming normal with a=0, biases zeroed
    assert torch.all(model[0].bias == 0) and torch.all(model[1][0].bias == 0)


def test_init_model_types_and_inits_without_a_or_generator():
    class Weighted(nn.Module):  # a layer type of the user's own, with a weight and no bias attribute
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(3, 5))

    model = nn.Sequential(nn.Linear(5, 3), Weighted(), nn.Conv1d(2, 2, 3))
    before = model[2].weight.clone()
    twos = lambda w: w.data.fill_(2.0)  # noqa: E731  (no `a`, no `generator`: neither is passed)
    li.init_model(model, twos, a=0.3, bias=-1.0, types=[nn.Linear, Weighted], generator=torch.Generator().manual_seed(0))
    assert torch.all(model[0].weight == 2) and torch.all(model[1].weight == 2) and torch.all(model[0].bias == -1)
    assert torch.equal(model[2].weight, before)  # not one of the types
    li.init_model(model, twos, types=nn.Conv1d)  # a single type, not in a list
    assert torch.all(model[2].weight == 2) and torch.all(model[2].bias == 0)
