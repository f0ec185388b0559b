"""The notebooks in examples/notebooks run headless, cell by cell, with no error; the progress
bar and the epoch table render as HTML and every plot as an image."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import SHARED

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "examples" / "notebooks"


def run(name: str, tmp_path: Path, monkeypatch) -> list:
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"the notebooks read MNIST, not found under {SHARED}; CI provides it")
    monkeypatch.setenv("LEARNLOOP_DATA", str(SHARED))
    monkeypatch.setenv("LEARNLOOP_QUICK", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own inline backend draws the plots
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    return [c for c in nb.cells if c.cell_type == "code"]


def kinds(cell) -> set[str]:
    out = set()
    for o in cell.outputs:
        assert o.output_type != "error", "".join(o.get("traceback", []))
        out |= set(o.get("data", {}))
    return out


def test_quickstart(tmp_path, monkeypatch):
    cells = run("quickstart.ipynb", tmp_path, monkeypatch)
    fit = next(c for c in cells if "learn.fit(2)" in c.source)
    html = [o["data"]["text/html"] for o in fit.outputs if "text/html" in o.get("data", {})]
    assert any("<table" in h and "accuracy" in h for h in html), "the epoch table renders as HTML"
    assert any("<progress" in h or h == "" for h in html)  # the bar (cleared when its phase ends)
    for marker in ("show_batch", "plot_loss", "plot_lr_find", "plot_sched"):
        cell = next(c for c in cells if marker in c.source)
        assert "image/png" in kinds(cell), f"{marker} drew no image"
    assert (tmp_path / "digits.safetensors").is_file()


def test_lesson09(tmp_path, monkeypatch):
    cells = run("lesson09.ipynb", tmp_path, monkeypatch)
    images = [c for c in cells if "image/png" in kinds(c)]
    assert len(images) == 2
    assert "Kaiming" in "".join(o.get("text", "") for c in cells for o in c.outputs)
