"""Every script in examples/ runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
LESSON = Path(__file__).resolve().parents[1] / "examples" / "lesson"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One cache folder for the examples: CIFAR-10's archive is unpacked into it once, not per script."""
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, mnist_dir, tmp_path, cache):
    # The data root (MNIST, Fashion-MNIST, CIFAR-10 beneath it); scripts with a --quick mode run it.
    env = {**os.environ, "LEARNLOOP_DATA": str(mnist_dir.parent), "XDG_CACHE_HOME": str(cache)}
    quick = ["--quick"] if "--quick" in script.read_text() else []
    r = subprocess.run([sys.executable, str(script), *quick], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    # The numbers the docs quote from this example (in `<!-- example-output examples/NAME.py: ... -->`) are the ones it prints.
    if not quick:
        printed = re.findall(r"[-+]?\d[\d.e%+-]*", r.stdout)
        for page, numbers, within in quoted_outputs(script.name):
            missing = [n for n in numbers if not any(_close(n, p, within) for p in printed)]
            assert not missing, f"{page.name} quotes {missing} from {script.name} (within {within}), which now prints:\n{r.stdout[-3000:]}"


def _close(quoted: str, printed: str, within: float | None) -> bool:
    """Exactly the printed text; or, for a marker with `+-TOL`, a printed number of the same kind
    (a percentage or not) at most TOL away (percentages in points). Training results that
    another CPU's kernels round differently carry a tolerance in the docs."""
    if within is None or quoted.endswith("%") != printed.endswith("%"):
        return quoted == printed
    try:
        return abs(float(quoted.rstrip("%")) - float(printed.rstrip("%"))) <= within
    except ValueError:
        return False


def quoted_outputs(name: str) -> list[tuple[Path, list[str], float | None]]:
    out = []
    for page in sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.md")):
        for m in re.finditer(rf"<!-- example-output examples/{re.escape(name)}(?: \+-(\S+))?: (.*?) -->", page.read_text()):
            out.append((page, m.group(2).split(), float(m.group(1)) if m.group(1) else None))
    return out


def test_every_quoted_example_exists():
    for page in sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.md")):
        for name in re.findall(r"<!-- example-output examples/(\S+?\.py)[ :]", page.read_text()):
            assert (Path(__file__).resolve().parents[1] / "examples" / name).is_file(), f"{page.name} quotes a missing example {name}"


def test_lesson_experiments_run_quick(mnist_dir, tmp_path, cache):
    """Every lesson script, through run_all.py, on a small subset: it runs and prints its rows."""
    env = {**os.environ, "LEARNLOOP_DATA": str(mnist_dir.parent), "XDG_CACHE_HOME": str(cache)}
    r = subprocess.run([sys.executable, str(LESSON / "run_all.py"), "--quick"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    notebooks = [line.split(" | ")[0] for line in r.stdout.splitlines() if " | lesson " in line]
    assert {"02a", "02b", "03", "04", "05", "05b", "06", "07", "07a", "08", "09", "09b/09c", "10"} <= set(notebooks)
