"""Hooks, layers (GeneralRelu, conv_layer, cnn) and the normalisation layers against torch."""

from __future__ import annotations

import gc
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import learnloop as ll
from learnloop.hooks import Hook, Hooks, find_modules, model_summary
from learnloop.layers import Flatten, GeneralRelu, Lambda, cnn, conv_layer, mlp
from learnloop.norm import BatchNorm, GroupNorm, InstanceNorm, LayerNorm, RunningBatchNorm


def n_hooks(model):
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules())


def test_hook_records_and_removes_itself_three_ways():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))

    def keep(hook, module, inp, out):
        hook.out = out

    with Hook(model[0], keep) as h:
        y = model[0](torch.ones(1, 3))
        assert torch.equal(h.out, y)
    assert n_hooks(model) == 0
    h = Hook(model[1], keep)
    h.remove()
    h.remove()  # twice is fine
    assert n_hooks(model) == 0
    Hook(model[2], keep)  # dropped at once: garbage-collected, so removed
    gc.collect()
    assert n_hooks(model) == 0


def test_hooks_and_backward_hooks():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with Hooks(find_modules(model, nn.Linear), lambda h, m, i, o: setattr(h, "shape", tuple(o.shape))) as hooks:
        model(torch.ones(5, 3))
        assert [h.shape for h in hooks] == [(5, 4), (5, 2)] and len(hooks) == 2
    assert n_hooks(model) == 0
    with Hook(model[2], lambda h, m, gi, go: setattr(h, "g", go[0]), forward=False) as h:
        model(torch.ones(5, 3)).sum().backward()
        assert torch.equal(h.g, torch.ones(5, 2))
    assert find_modules(model, lambda m: isinstance(m, nn.ReLU)) == [model[1]]


def test_model_summary(capsys):
    learn = ll.Learner(cnn((4, 8), n_out=10), ll.DataLoaders.from_tensors(torch.randn(8, 1, 28, 28), torch.zeros(8, dtype=torch.long), batch_size=4))
    learn.model.train()
    rows = model_summary(learn)
    assert learn.model.training and n_hooks(learn.model) == 0
    assert rows[0] == ("0.0", "Conv2d", (4, 4, 14, 14), 4 * 25)
    assert rows[-1] == ("4", "Linear", (4, 10), 8 * 10 + 10) and rows[1] == ("0.1", "BatchNorm2d", (4, 4, 14, 14), 8)
    assert "total" in capsys.readouterr().out


def test_general_relu():
    x = torch.linspace(-3, 9, 50)
    assert torch.equal(GeneralRelu()(x), F.relu(x))
    out = GeneralRelu(leak=0.1, sub=0.4, maxv=6.0)(x)
    assert torch.allclose(out, (F.leaky_relu(x, 0.1) - 0.4).clamp_max(6.0))
    x = torch.randn(10, requires_grad=True)
    GeneralRelu(sub=0.5)(x).sum().backward()  # no in-place op breaks autograd
    assert torch.equal(x.grad, (x > 0).float())


def test_lambda_flatten_conv_layer_cnn():
    assert Lambda(lambda t: t * 2)(torch.ones(2)).tolist() == [2, 2]
    assert Flatten()(torch.ones(3, 2, 5)).shape == (3, 10)
    layer = conv_layer(3, 8, norm="batch", leak=0.1)
    assert layer[0].bias is None and isinstance(layer[1], nn.BatchNorm2d) and layer[2].leak == 0.1
    assert conv_layer(3, 8)[0].bias is not None
    model = cnn((8, 16, 32, 64, 64), n_out=10, in_channels=3, norm="running_batch")
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert model[0][0].kernel_size == (5, 5) and model[1][0].kernel_size == (3, 3)
    with pytest.raises(ValueError, match="Unknown norm"):
        conv_layer(3, 8, norm="weird")
    assert mlp([784, 50, 10])(torch.randn(2, 784)).shape == (2, 10)


@pytest.mark.parametrize("shape", [(16, 6), (16, 6, 9), (8, 6, 5, 5), (4, 6, 3, 4, 5)])
def test_batchnorm_matches_torch_over_steps(shape):
    torch.manual_seed(0)
    ours = BatchNorm(6, mom=0.2)
    theirs = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[len(shape)](6, momentum=0.2)
    for _ in range(5):
        x = torch.randn(shape) * 3 + 1
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)
    assert torch.allclose(ours.running_mean, theirs.running_mean, atol=1e-5)
    assert torch.allclose(ours.running_var, theirs.running_var, atol=1e-5)
    ours.eval(), theirs.eval()
    x = torch.randn(shape)
    assert torch.allclose(ours(x), theirs(x), atol=1e-5)


def test_batchnorm_gradients_match_torch():
    x = torch.randn(8, 4, 3, 3, requires_grad=True)
    ours, theirs = BatchNorm(4), nn.BatchNorm2d(4)
    (g1,) = torch.autograd.grad((ours(x) ** 2).sum(), x)
    (g2,) = torch.autograd.grad((theirs(x) ** 2).sum(), x)
    assert torch.allclose(g1, g2, atol=1e-5)


def test_layer_group_instance_norm_match_torch():
    x = torch.randn(4, 6, 5, 5) * 2 + 3
    ln, tln = LayerNorm((6, 5, 5)), nn.LayerNorm((6, 5, 5))
    assert torch.allclose(ln(x), tln(x), atol=1e-5)
    assert torch.allclose(LayerNorm(5)(x), nn.LayerNorm(5)(x), atol=1e-5)
    assert torch.allclose(GroupNorm(3, 6)(x), nn.GroupNorm(3, 6)(x), atol=1e-5)
    assert torch.allclose(GroupNorm(1, 6)(x), nn.GroupNorm(1, 6)(x), atol=1e-5)
    assert torch.allclose(InstanceNorm(6)(x), nn.InstanceNorm2d(6)(x), atol=1e-5)
    assert torch.allclose(InstanceNorm(6, affine=True)(x), nn.InstanceNorm2d(6, affine=True)(x), atol=1e-5)
    with pytest.raises(ValueError, match="divisible"):
        GroupNorm(4, 6)


def test_running_batchnorm():
    torch.manual_seed(0)
    rbn = RunningBatchNorm(3)
    with pytest.raises(RuntimeError, match="no training batch"):
        rbn.eval()(torch.randn(2, 3, 4, 4))
    with pytest.raises(RuntimeError, match="^RunningBatchNorm has seen no training batch yet: run it in training mode first"):
        rbn(torch.randn(2, 3, 4, 4))
    rbn.train()
    data = torch.randn(400, 3, 4, 4) * torch.tensor([1.0, 2.0, 0.5]).view(1, 3, 1, 1) + torch.tensor([0.0, 5.0, -1.0]).view(1, 3, 1, 1)
    for i in range(0, 400, 2):  # batch size 2
        out = rbn(data[i : i + 2])
    assert torch.isfinite(out).all()
    # the running statistics approach the data's per-channel mean and variance
    mean, var = rbn.sums / rbn.count, rbn.sqrs / rbn.count - (rbn.sums / rbn.count) ** 2
    assert torch.allclose(mean, torch.tensor([0.0, 5.0, -1.0]), atol=0.35)
    assert torch.allclose(var.sqrt(), torch.tensor([1.0, 2.0, 0.5]), rtol=0.3)
    # the same normalisation in training and evaluation, once the statistics have settled
    x = data[:2]
    rbn.eval()
    y_eval = rbn(x)
    assert y_eval.shape == x.shape and int(rbn.seen) == 400
    # batch size 1 is guarded
    rbn.train()
    assert torch.isfinite(rbn(torch.randn(1, 3, 4, 4))).all()
    # gradients flow to the input and the affine parameters
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    rbn(x).sum().backward()
    assert x.grad is not None and rbn.weight.grad is not None


def _running_bn_reference(batches, weight, bias, mom, eps, eval_x):
    """RunningBatchNorm's documented formula, step by step in float64: momentum
    1 - (1 - mom) / sqrt(max(bs - 1, 1)), averaged sums / squares / count, variance at least 0.01
    until 20 samples have been seen."""
    nf = weight.shape[0]
    sums, sqrs, count, seen, outs = torch.zeros(nf, dtype=torch.float64), torch.zeros(nf, dtype=torch.float64), 0.0, 0, []
    early = True

    def normalise(x, sums, sqrs, count):
        nonlocal early
        mean = sums / count
        var = sqrs / count - mean**2
        if early and seen < 20:
            var = var.clamp_min(0.01)
        else:
            early = False
        y = (x - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + eps)
        return y * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)

    for x in batches:
        bs = x.shape[0]
        m = 1 - (1 - mom) / math.sqrt(max(bs - 1, 1))
        sums = sums * (1 - m) + x.sum((0, 2, 3)) * m
        sqrs = sqrs * (1 - m) + (x * x).sum((0, 2, 3)) * m
        count = count * (1 - m) + (x.numel() / nf) * m
        seen += bs
        outs.append(normalise(x, sums, sqrs, count))
    return outs, normalise(eval_x, sums.detach(), sqrs.detach(), count)


@pytest.mark.parametrize("sizes", [[1, 2, 2, 5, 3, 7, 2, 64], [3, 4, 5, 6, 2, 30]])  # the first reaches 20 samples exactly
def test_running_batchnorm_matches_its_formula_in_values_and_gradients(sizes):
    g = torch.Generator().manual_seed(1)
    scale, shift = torch.tensor([1.0, 2.0, 0.05], dtype=torch.float64), torch.tensor([0.0, 5.0, -1.0], dtype=torch.float64)
    batches = [(torch.randn(n, 3, 2, 2, generator=g, dtype=torch.float64) * scale.view(1, 3, 1, 1) + shift.view(1, 3, 1, 1)).requires_grad_() for n in sizes]
    eval_x = torch.randn(4, 3, 2, 2, generator=g, dtype=torch.float64)
    rbn = RunningBatchNorm(3, mom=0.2, eps=1e-3).double()
    with torch.no_grad():
        rbn.weight.copy_(torch.tensor([0.5, -1.5, 2.0]))
        rbn.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
    ours = [rbn(x) for x in batches]  # channel 2's variance (0.0025) is below the early floor of 0.01
    ours_eval = rbn.eval()(eval_x)
    ref_w, ref_b = rbn.weight.detach().clone().requires_grad_(), rbn.bias.detach().clone().requires_grad_()
    ref_batches = [x.detach().clone().requires_grad_() for x in batches]
    refs, ref_eval = _running_bn_reference(ref_batches, ref_w, ref_b, 0.2, 1e-3, eval_x)
    for a, b in zip([*ours, ours_eval], [*refs, ref_eval]):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)
    # gradients through the batch statistics, to the inputs and the affine parameters
    weights = torch.randn(ours[-1].shape, generator=g, dtype=torch.float64)
    (ours[-1] * weights).sum().backward()
    (refs[-1] * weights).sum().backward()
    assert torch.allclose(batches[-1].grad, ref_batches[-1].grad, rtol=1e-10, atol=1e-10)
    assert torch.allclose(rbn.weight.grad, ref_w.grad) and torch.allclose(rbn.bias.grad, ref_b.grad)
    assert int(rbn.seen) == sum(sizes)


def test_norm_layer_defaults_and_boundaries():
    # defaults are torch's: momentum 0.1, eps 1e-5, InstanceNorm without affine parameters
    assert (BatchNorm(4).mom, BatchNorm(4).eps) == (nn.BatchNorm2d(4).momentum, nn.BatchNorm2d(4).eps) == (0.1, 1e-5)
    assert (RunningBatchNorm(4).mom, RunningBatchNorm(4).eps) == (0.1, 1e-5)
    assert list(InstanceNorm(4).parameters()) == [] == list(nn.InstanceNorm2d(4).parameters())
    assert GroupNorm(2, 4, affine=False).weight is None and GroupNorm(2, 4, affine=False).bias is None
    assert RunningBatchNorm(4).seen.dtype == torch.long  # a count of samples, exact however long the run
    # training BatchNorm needs two values per channel: (2, C) and (1, C, 2) are enough, (1, C) is not
    bn = BatchNorm(3)
    for shape in ((2, 3), (1, 3, 2)):
        x = torch.randn(shape)
        assert torch.allclose(bn(x), nn.BatchNorm1d(3)(x), atol=1e-5)
    for shape in ((1, 3), (1, 3, 1, 1)):
        with pytest.raises(ValueError, match="more than one value per channel"):
            bn(torch.randn(shape))


def test_hooks_pass_the_module_its_input_and_output_or_its_gradients():
    lin = nn.Linear(3, 2)
    seen = []
    with Hook(lin, lambda h, m, inp, out: seen.append((h, m, inp, out))) as hook:
        x = torch.randn(4, 3, requires_grad=True)
        y = lin(x)
    assert hook.module is lin and len(seen) == 1
    h, m, inp, out = seen[0]
    assert h is hook and m is lin and inp[0] is x and out is y
    grads = []
    with Hooks([lin], lambda h, m, g_in, g_out: grads.append((g_in, g_out)), forward=False) as hooks:
        lin(x).sum().backward()
    assert hooks[0].module is lin and len(grads) == 1  # a backward hook: gradients, not activations
    g_in, g_out = grads[0]
    assert torch.equal(g_out[0], torch.ones(4, 2)) and torch.allclose(g_in[0], torch.ones(4, 2) @ lin.weight)


class _Pair(nn.Module):
    def forward(self, x):
        return x, x


def test_model_summary_of_a_bare_model_prints_the_table(capsys):
    model = nn.Sequential(nn.Linear(3, 5), nn.Sequential(nn.ReLU(), nn.Linear(5, 2)), _Pair())
    rows = model_summary(model, torch.randn(4, 3))
    # leaves only (containers and the root hold no layer of their own), output shapes, own parameters
    assert rows == [("0", "Linear", (4, 5), 20), ("1.0", "ReLU", (4, 5), 0), ("1.1", "Linear", (4, 2), 12), ("2", "_Pair", "tuple", 0)]
    header = f"{'layer':<24}{'type':<20}{'output shape':<24}{'params':>10}"
    assert str(rows).splitlines() == [
        header, "-" * 78,
        f"{'0':<24}{'Linear':<20}{'(4, 5)':<24}{20:>10}",
        f"{'1.0':<24}{'ReLU':<20}{'(4, 5)':<24}{0:>10}",
        f"{'1.1':<24}{'Linear':<20}{'(4, 2)':<24}{12:>10}",
        f"{'2':<24}{'_Pair':<20}{'tuple':<24}{0:>10}",
        "-" * 78, f"{'total':<68}{32:>10}",
    ]  # fmt: skip
    assert capsys.readouterr().out == str(rows) + "\n"
    assert len(header) == 78 and model_summary(model, torch.randn(4, 3), print_it=False) == rows and capsys.readouterr().out == ""
    # the batch follows the model to its device (here the meta device: shapes without data)
    assert model_summary(nn.Linear(3, 2).to("meta"), torch.randn(4, 3), print_it=False) == [("(model)", "Linear", (4, 2), 8)]
    with pytest.raises(ValueError, match="^model_summary needs an input batch xb when given a bare model"):
        model_summary(model)
