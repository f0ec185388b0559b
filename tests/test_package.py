"""The package itself: public names, and no side effects at import time."""

from __future__ import annotations

import subprocess
import sys

import learnloop


def test_public_names():
    for name in ("Learner", "Callback", "DataLoaders", "DataLoader", "ArrayDataset", "RandomSampler", "accuracy", "set_seed", "Recorder", "ProgressBar", "DeviceCallback", "CancelFitException"):
        assert name in learnloop.__all__ and hasattr(learnloop, name)


def test_import_has_no_side_effects():
    code = (
        "import torch, pathlib; threads = torch.get_num_threads(); path_attrs = set(dir(pathlib.Path));"
        "import learnloop, sys;"
        "assert torch.get_num_threads() == threads;"
        "assert not torch.cuda.is_initialized();"
        "assert set(dir(pathlib.Path)) == path_attrs;"
        "assert 'matplotlib' not in sys.modules;"
        "print('clean')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "clean", r.stderr
