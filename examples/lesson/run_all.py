"""Run every lesson experiment and (with --write-docs) write docs/lesson.md: the lesson's figure
beside learnloop's, the setup and the time per run on this machine.

    python examples/lesson/run_all.py [--quick] [--write-docs]

`--quick` runs each on a small MNIST subset in seconds (the tests do; its figures mean nothing).
"""

import datetime
import platform
import sys
import time
from pathlib import Path

import common
import nb02_init
import nb03_05_mlp
import nb06_07_cnn
import nb08_10_images
import torch

SCRIPTS = [nb02_init, nb03_05_mlp, nb06_07_cnn, nb08_10_images]
DOC = Path(__file__).resolve().parents[2] / "docs" / "lesson.md"

HEADER = """# The lesson, reproduced

Each recorded experiment of "How to train your model" (notebooks 02a to 10), run with
learnloop, its figure beside the lesson's. MNIST validation accuracy for notebooks 03 to 07a;
CIFAR-10 validation accuracy for 08 to 09c (Imagenette, the lesson's data, is not available
offline here, so those rows run the lesson's recipe on other data and are not comparable). The lesson's
runs were single and mostly unseeded; ours are medians over several seeds (3; 10 for the MLP
rows; 20 for 02a/02b; range in brackets) with the same setup where the lesson states it. Regenerate this page with
`python examples/lesson/run_all.py --write-docs` ({machine}; one torch thread; {date}; the whole
run took {minutes:.0f} minutes). The scripts are in `examples/lesson/`, one per notebook group.

| notebook | experiment | lesson | learnloop | setup | seconds per run |
|---|---|---|---|---|---|
"""

FOOTER = """
Notes:
{notes}

The augmentation timings and pictures are in [augmentation.md](augmentation.md).

## Plots

{plots}
"""


def main() -> None:
    start = time.perf_counter()
    for script in SCRIPTS:
        script.main()
    minutes = (time.perf_counter() - start) / 60
    if "--write-docs" in sys.argv:
        if common.QUICK:
            sys.exit("--write-docs needs the full run (no --quick): quick figures mean nothing")
        lines = [f"| {r['notebook']} | {r['experiment']} | {r['lesson']} | {r['learnloop']} | {r['setup']} | {r['seconds']:.0f} |" for r in common.ROWS]
        notes = "\n".join(f"- {r['notebook']}, {r['experiment']}: {r['note']}" for r in common.ROWS if r["note"]) or "- none"
        plots = "\n\n".join(f"{caption}:\n\n![{caption}](images/{name})" for name, caption in common.PLOTS)
        machine = f"{platform.processor() or platform.machine()}, torch {torch.__version__}"
        DOC.write_text(HEADER.format(machine=machine, date=datetime.date.today(), minutes=minutes) + "\n".join(lines) + "\n" + FOOTER.format(notes=notes, plots=plots))
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
