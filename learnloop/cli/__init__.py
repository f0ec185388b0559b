"""The `learnloop` command: `train` (the main job), `lr-find`, `show-batch`, `init-report`.

`parser` holds the grammar, `setup` builds data, model and Learner from the options, `train`
runs the main job with its run folder, `tools` the other commands. Nothing imports this package.
"""

from __future__ import annotations

import sys
from typing import Sequence

from .. import distributed
from ..datasets import DataNotFoundError
from .parser import UsageError, build_parser
from .tools import init_report_cmd, lr_find, show_batch_cmd
from .train import launch, resumed_args, train

__all__ = ["main", "build_parser", "UsageError"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        if args.command == "train" and args.resume and not distributed.launched():
            args, _ = resumed_args(args)  # a run resumes on as many processes as it had
        if args.command == "train" and args.nproc > 1 and not distributed.launched():
            return launch(args, argv)
        return {"train": train, "lr-find": lr_find, "show-batch": show_batch_cmd, "init-report": init_report_cmd}[args.command](args)
    except UsageError as e:
        print(f"learnloop: error: {e}", file=sys.stderr)
        return 2
    except (DataNotFoundError, ValueError, OSError) as e:  # a user's input or files: one line, no traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"learnloop: error: {first}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("learnloop: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
