"""torch.distributed on the CPU: 2 processes (gloo) started by torch's own launcher, against one
process doing the same work. Each test starts its processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import learnloop as ll
from learnloop.norm import SyncBatchNorm, convert_sync_batchnorm
from learnloop.serialize import read_state

from . import dist_worker

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(mode: str, out: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "tests.dist_worker", mode, str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def ok(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 0, r.stderr[-4000:]


def weights(path: Path) -> dict:
    return read_state(path, "model")["model"]


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_two_processes_of_32_equal_one_of_64(tmp_path, kind):
    ok(torchrun(kind, tmp_path))
    one = dist_worker.make(kind, 64)  # the same 50 global batches in one process
    one.fit(1)
    two = weights(tmp_path / f"{kind}-2x32.safetensors")
    assert len(one.recorder.losses) == 50
    for k, v in one.model.state_dict().items():
        assert torch.allclose(two[k], v, atol=1e-6, rtol=0), k
    if kind == "mlp":  # the LR finder's losses are the mean over both processes: one process's at batch 64
        one.lr_find(num_it=20, stop_div=False)
        assert json.loads((tmp_path / "lr_find.json").read_text()) == pytest.approx(one.lr_find_result.losses, rel=1e-4)


def test_validation_metrics_are_exact_over_uneven_shards(tmp_path):
    ok(torchrun("metrics", tmp_path))
    counted = [json.loads((tmp_path / f"counted-{r}.json").read_text()) for r in (0, 1)]
    assert counted == [5001, 5000] and sum(counted) == 10_001
    got = json.loads((tmp_path / "metrics.json").read_text())
    saved = read_state(tmp_path / "preds.safetensors", "export")
    ll.set_seed(0)
    x, y, xv, yv = dist_worker.data(n_train=64, n_valid=10_001)
    single = ll.Learner(nn.Linear(8, 3), ll.DataLoaders.from_tensors(x, y, xv, yv, batch_size=32), metrics=[ll.accuracy], progress=False)
    assert torch.equal(single.model.weight, saved["weight"])  # same seed, same initial weights
    ref = single.validate()
    assert got["valid_loss"] == pytest.approx(ref["valid_loss"], abs=1e-7) and got["accuracy"] == pytest.approx(ref["accuracy"], abs=1e-7)
    preds, targets = single.get_preds()
    assert torch.equal(saved["targets"], targets) and torch.allclose(saved["preds"], preds, atol=1e-6)  # dataset order


def test_only_rank_0_prints_and_writes(tmp_path):
    r = torchrun("rank0", tmp_path)
    ok(r)
    assert r.stdout.count("train_loss") == 1  # one epoch table header: rank 0's
    assert len(list((tmp_path / "ck-rank0").glob("ckpt-*.safetensors"))) == 1
    assert not (tmp_path / "ck-rank1").exists()


def test_a_failure_on_rank_1_ends_both_quickly_with_its_error(tmp_path):
    start = time.monotonic()
    r = torchrun("fail", tmp_path)
    assert r.returncode != 0 and "rank 1 broke on purpose at step 3" in r.stderr
    assert time.monotonic() - start < 45


def test_resume_under_two_processes_is_bitwise_the_uninterrupted_run(tmp_path):
    r = torchrun("crash", tmp_path)
    assert r.returncode != 0 and (tmp_path / "ck" / "latest").read_text() == "ckpt-e0000-s00000030.safetensors"
    ok(torchrun("resume", tmp_path))
    ok(torchrun("whole", tmp_path))
    a, b = weights(tmp_path / "resumed.safetensors"), weights(tmp_path / "whole.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sync_batchnorm_in_one_process_is_batchnorm():
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight.uniform_()
        bn.bias.uniform_()
    model = convert_sync_batchnorm(nn.Sequential(nn.Conv2d(1, 4, 3), bn))
    assert isinstance(model[1], SyncBatchNorm) and torch.equal(model[1].weight, bn.weight)
    x = torch.randn(8, 1, 6, 6)
    ref = nn.Sequential(model[0], nn.BatchNorm2d(4))
    ref[1].load_state_dict(bn.state_dict())
    assert torch.allclose(model(x), ref(x), atol=1e-5)
    assert torch.allclose(model[1].running_var, ref[1].running_var, atol=1e-6)
