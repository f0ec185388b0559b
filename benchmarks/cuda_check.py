"""Checks that need a CUDA GPU (never run by CI, which has none): device moves, pinned memory,
windowed non-finite checks, torchmetrics objects, the Learner's overhead over a hand loop, and
bf16 / fp16 / compiled training of the lesson's CNN, and batch augmentation on the GPU.

    python benchmarks/cuda_check.py [MNIST_DIR]

Prints one line per check and exits non-zero if any fails.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

import learnloop as ll
from learnloop.datasets import mnist, normalize

FAILED: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    print(f"{'PASS' if ok else 'FAIL'}  {name}  {detail}", flush=True)
    if not ok:
        FAILED.append(name)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))


def main() -> int:
    assert torch.cuda.is_available(), "this script needs a CUDA GPU"
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}", flush=True)
    data = mnist(sys.argv[1] if len(sys.argv) > 1 else None, download=False, verbose=True)
    x, y = normalize(data.x_train).view(-1, 784), data.y_train
    xv, yv = normalize(data.x_test).view(-1, 784), data.y_test

    # 1. The default device is CUDA: model, batches and metrics go there; get_preds comes back on the CPU.
    ll.set_seed(0)
    dls = ll.DataLoaders.from_tensors(x, y, xv, yv, batch_size=64, seed=0, pin_memory=True)
    learn = ll.Learner(mlp(), dls, lr=0.1, metrics=[ll.accuracy], progress=False)
    learn.fit(2)
    acc = learn.recorder.history[-1]["accuracy"]
    check("default device is cuda", learn.device.type == "cuda" and next(learn.model.parameters()).is_cuda)
    check("MLP on CUDA reaches 0.95 in 2 epochs", acc >= 0.95, f"accuracy {acc:.4f}")
    preds, targets = learn.get_preds()
    check("get_preds returns CPU tensors", preds.device.type == "cpu" and torch.equal(targets, yv))
    check("pin_memory=True yields pinned batches", next(iter(dls.train))[0].is_pinned())

    # 2. An optimizer with state follows its model to the GPU.
    model = mlp()
    learn = ll.Learner(model, dls, opt_func=torch.optim.Adam, lr=1e-3, device="cpu", progress=False)
    learn.fit(1)
    learn.remove_cbs([learn.device_cb]).add_cbs([ll.DeviceCallback("cuda")])
    learn.fit(1)
    states = [v.device.type for s in learn.opt.state.values() for v in s.values() if v.ndim > 0]
    check("Adam state moved with the model", set(states) == {"cuda"}, f"{len(states)} state tensors")

    # 3. NonFiniteCheck checks in windows on the GPU but still names the first bad batch.
    class Poison(ll.Callback):
        def after_loss(self, learn):
            if learn.training and learn.iter == 37:
                learn.loss = learn.loss * float("nan")

    learn = ll.Learner(mlp(), dls, cbs=[Poison()], progress=False)
    try:
        learn.fit(1)
        check("non-finite loss detected on GPU", False)
    except ll.NonFiniteLossError as e:
        check("non-finite loss detected on GPU", e.batch == 37 and e.epoch == 0, str(e).split(".")[0])

    # 4. A torchmetrics object is moved to the model's device and accumulates there.
    try:
        import torchmetrics

        metric = torchmetrics.classification.MulticlassAccuracy(num_classes=10, average="micro")
        learn = ll.Learner(mlp(), dls, lr=0.1, metrics=[ll.accuracy, metric], progress=False)
        learn.fit(1)
        h = learn.recorder.history[-1]
        check("torchmetrics metric on GPU", abs(h["multiclassaccuracy"] - h["accuracy"]) < 1e-5, f"{h}")
    except ImportError:
        print("skip  torchmetrics not installed")

    # 5. Data kept on the GPU: batches are gathered there.
    gdls = ll.DataLoaders.from_tensors(x.cuda(), y.cuda(), xv.cuda(), yv.cuda(), batch_size=64, seed=0)
    xb, yb = gdls.one_batch()
    check("GPU-resident data gathered on the GPU", xb.is_cuda and yb.is_cuda)

    # 6. Overhead on the GPU: default callbacks vs a hand loop over the same GPU-resident batches.
    def hand_epoch(model, opt, sampler, state):
        sampler.set_epoch(state["e"])
        state["e"] += 1
        perm = sampler.indices().cuda()
        xg, yg = gdls.train.dataset.tensors
        losses = []
        model.train()
        for i in range(0, len(xg), 64):
            idx = perm[i : i + 64]
            loss = F.cross_entropy(model(xg.index_select(0, idx)), yg.index_select(0, idx))
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(loss.detach())
        model.eval()
        correct = torch.zeros((), device="cuda")
        with torch.no_grad():
            for i in range(0, len(xv), 128):
                correct += (model(gdls.valid.dataset.tensors[0][i : i + 128]).argmax(-1) == gdls.valid.dataset.tensors[1][i : i + 128]).sum()
        torch.stack(losses).mean().item(), correct.item()

    torch.manual_seed(0)
    m_hand, m_ll = mlp().cuda(), mlp().cuda()
    m_ll.load_state_dict(m_hand.state_dict())
    opt = torch.optim.SGD(m_hand.parameters(), lr=0.1)
    sampler, state = ll.RandomSampler(len(x), seed=0), {"e": 0}
    learn = ll.Learner(m_ll, gdls, lr=0.1, metrics=[ll.accuracy], progress=False)
    times: dict[str, list[float]] = {"hand": [], "learnloop": []}
    for r in range(6):
        for name, run in (("hand", lambda: hand_epoch(m_hand, opt, sampler, state)), ("learnloop", lambda: learn.fit(1))):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            run()
            torch.cuda.synchronize()
            if r:
                times[name].append(time.perf_counter() - t0)
    h, l = statistics.median(times["hand"]), statistics.median(times["learnloop"])
    same = all(torch.equal(a, b) for a, b in zip(m_hand.parameters(), m_ll.parameters()))
    print(f"info  GPU epoch (MLP bs64, 60k+10k): hand {h:.3f}s, learnloop {l:.3f}s, ratio {l / h:.3f}; weights equal: {same}")

    # 7. Mixed precision and compile on the GPU: accuracy as fp32, scaler active, epoch times.
    from learnloop.layers import cnn

    xi, xvi = x.view(-1, 1, 28, 28), xv.view(-1, 1, 28, 28)
    results = {}
    for name, kw in (("fp32", {}), ("bf16", {"cbs": [ll.MixedPrecision("bf16")]}), ("fp16", {"cbs": [ll.MixedPrecision("fp16")]}),
                     ("compiled", {"compile": True}), ("compiled+bf16", {"compile": True, "cbs": [ll.MixedPrecision("bf16")]})):  # fmt: skip
        ll.set_seed(0)
        idls = ll.DataLoaders.from_tensors(xi.cuda(), y.cuda(), xvi.cuda(), yv.cuda(), batch_size=128, seed=0)
        learn = ll.Learner(cnn((8, 16, 32, 32)), idls, lr=0.4, metrics=[ll.accuracy], progress=False, **kw)
        epochs = []
        for _ in range(3):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            learn.fit(1)
            torch.cuda.synchronize()
            epochs.append(time.perf_counter() - t0)
        results[name] = (learn.recorder.history[-1]["accuracy"], epochs)
        if name == "fp16":
            mp = learn.mixed_precision
            check("fp16 GradScaler active on CUDA", mp.scaler is not None and mp.scaler.is_enabled(), f"scale {mp.scaler.get_scale()}, overflow steps {mp.overflow_steps}")
    base = results["fp32"][0]
    for name, (acc, epochs) in results.items():
        check(f"CNN {name} within 0.5 points of fp32", abs(acc - base) < 0.005 or name == "fp32", f"accuracy {acc:.4f}")
        print(f"info  CNN {name}: first epoch {epochs[0]:.2f}s (compilation there), then {statistics.median(epochs[1:]):.2f}s per epoch")

    # 6. Batch augmentation on the GPU (the lesson measured 1.9 ms for a 64-image batch rotation on its GPU).
    from learnloop.vision import RandomAffine

    xb = torch.rand(64, 3, 128, 128, device="cuda")
    aff = RandomAffine(degrees=30, scale=1.0, flip=0.0, p=1.0, seed=0)
    same = torch.allclose(aff(xb, torch.Generator().manual_seed(0)).cpu(), aff(xb.cpu(), torch.Generator().manual_seed(0)), atol=1e-4)
    check("RandomAffine on CUDA equals the CPU result", same)
    times = []
    for _ in range(20):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        aff(xb, torch.Generator().manual_seed(0))
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    print(f"info  RandomAffine, 64 x 3 x 128 x 128 on CUDA: {statistics.median(times[5:]) * 1e3:.2f} ms per batch")

    print(f"{len(FAILED)} failed" if FAILED else "all CUDA checks passed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
