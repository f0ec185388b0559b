"""Plant each bug that a review found the suite used to miss, one at a time, and check that the
tests now catch it. Not collected by pytest (it rewrites source files); run it by hand:

    python tests/planted_bugs.py

Each entry: (file, exact text, its buggy replacement, the tests to run). The file is restored
after each run, also when interrupted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUGS = [
    # The LR finder's snapshot restores the RNGs through the checkpoint's set_rng_state.
    ("LR finder forgets numpy's RNG", "learnloop/checkpoint.py",
     "    np.random.set_state(state[\"numpy\"])\n", "", "tests/test_schedule.py tests/test_caught.py"),
    ("sharded sampler one batch short", "learnloop/data/sampler.py",
     "            return math.ceil(self.n / self.num_replicas)\n", "            return math.ceil(self.n / self.num_replicas) - 1\n", "tests/test_data.py tests/test_caught.py"),
    ("gradient 'std' is the mean |gradient|", "learnloop/callbacks/telemetry.py",
     "w.grad.detach().float().std()[None]", "w.grad.detach().float().abs().mean()[None]", "tests/test_telemetry.py tests/test_caught.py"),
    ("lr_find leaves the model's mode changed", "learnloop/schedule/lr_finder.py",
     "        learn.model.train(self.training)\n", "", "tests/test_schedule.py tests/test_caught.py"),
    ("device move does nothing", "learnloop/utils.py",
     "    return apply_to_tensors(lambda t: t.to(device, non_blocking=non_blocking), obj)", "    return obj", "tests/test_learner.py tests/test_callbacks.py tests/test_caught.py"),
    ("BatchNorm ignores its weight", "learnloop/norm.py",
     "        mean, var = self.running_mean, self.running_var\n        x = (x - mean.view(shape)) / (var.view(shape) + self.eps).sqrt()\n        return x * self.weight.view(shape) + self.bias.view(shape)",
     "        mean, var = self.running_mean, self.running_var\n        x = (x - mean.view(shape)) / (var.view(shape) + self.eps).sqrt()\n        return x + self.bias.view(shape)", "tests/test_hooks_layers.py tests/test_caught.py"),
    ("valley suggestion at the wrong end", "learnloop/schedule/lr_finder.py",
     "    return lrs[(down + best) // 2]", "    return lrs[best]", "tests/test_lr_suggestions.py tests/test_schedule.py tests/test_caught.py"),
    ("Normalize without the division", "learnloop/callbacks/transforms.py",
     "        return (x - self.mean) / self.std", "        return x - self.mean", "tests/test_callbacks.py tests/test_learner.py tests/test_caught.py"),
]  # fmt: skip


def main() -> int:
    missed = []
    for name, rel, good, bad, tests in BUGS:
        path = ROOT / rel
        source = path.read_text()
        assert source.count(good) == 1, f"{name}: the text to change is not in {rel} exactly once"
        try:
            path.write_text(source.replace(good, bad))
            r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests.split()], cwd=ROOT,
                               capture_output=True, text=True)  # fmt: skip
        finally:
            path.write_text(source)
        caught = r.returncode != 0
        print(f"{'caught' if caught else 'MISSED'}: {name}")
        if not caught:
            missed.append(name)
    print(f"{len(BUGS) - len(missed)} of {len(BUGS)} planted bugs caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
