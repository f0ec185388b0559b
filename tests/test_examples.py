"""Every script in examples/ runs as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, mnist_dir, tmp_path):
    # The data root (MNIST, Fashion-MNIST, CIFAR-10 beneath it); scripts with a --quick mode run it.
    env = {**os.environ, "LEARNLOOP_DATA": str(mnist_dir.parent), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    quick = ["--quick"] if "--quick" in script.read_text() else []
    r = subprocess.run([sys.executable, str(script), *quick], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
