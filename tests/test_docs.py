"""Every Python block in README.md and docs/*.md runs as written: each page's blocks in order, in
one fresh process (a page's later blocks may use what its earlier ones defined), in an empty
folder, on the real data where a page reads it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SHARED

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: p.name)
def test_page_runs_as_written(page, tmp_path):
    code = "\n\n".join(blocks(page))
    if re.search(r"\bmnist\(|mnist_dataloaders|cifar10\(|fashion_mnist\(", code) and not (SHARED / "mnist").is_dir():
        pytest.skip(f"{page.name} reads the real data, not found under {SHARED}; CI provides it")
    env = {**os.environ, "LEARNLOOP_DATA": str(SHARED), "XDG_CACHE_HOME": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{page.name}:\n{r.stderr[-3000:]}"



def test_api_reference_is_current_and_complete():
    r = subprocess.run([sys.executable, str(ROOT / "docs" / "make_api.py"), "--check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    import inspect

    import learnloop

    api = (ROOT / "docs" / "api.md").read_text()
    missing = [n for n in learnloop.__all__ if f"### `{n}`" not in api and not inspect.ismodule(getattr(learnloop, n))]
    assert not missing, f"not in docs/api.md: {missing}"
    assert "(no docstring)" not in api
