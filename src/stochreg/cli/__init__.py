"""The ``stochreg`` command line: one module per family of commands, each adding its
sub-parsers with their handlers; :func:`main` parses, dispatches and turns errors into one line.

- ``train_command.py``: ``train`` (its flags come from the TrainConfig declarations);
- ``model_commands.py``: ``eval``, ``predict``, ``export``;
- ``suggest_command.py``, ``label_command.py``: ``suggest``, ``label`` (the labelling loop);
- ``tool_commands.py``: ``data fetch``, ``show-views``, ``runs``, ``compare``, ``list``.
"""
from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..runtime.distributed import environment_rank
from ..errors import StochregError
from ..train import Stopped
from . import label_command, model_commands, suggest_command, tool_commands, train_command
from .train_command import config_overrides

__all__ = ["build_parser", "config_overrides", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (not the whole usage) and points to --help."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="stochreg",
        description="Semi-supervised image classification with stochastic transformations and\n"
                    "perturbations (Sajjadi et al., NIPS 2016): the transformation/stability and\n"
                    "mutual-exclusivity losses.",
        epilog="your own images (photos/labelled/CLASS/..., photos/unlabelled/..., optional photos/test/CLASS/...):\n"
               "  stochreg train --data photos --out runs/photos\n"
               "  stochreg predict runs/photos new-photos/ --out predictions.csv\n"
               "  stochreg export runs/photos --format onnx\n"
               "  stochreg suggest runs/photos --n 50\n"
               "  stochreg label photos --run runs/photos\n"
               "MNIST with 100 labels, provisioned by stochreg itself:\n"
               "  stochreg train --dataset mnist --labels 100\n"
               "each command explains its options: stochreg COMMAND --help",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"stochreg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (train_command.add_train, model_commands.add_eval, tool_commands.add_data, model_commands.add_predict,
                model_commands.add_export, suggest_command.add_suggest, label_command.add_label, tool_commands.add_show_views,
                tool_commands.add_runs, tool_commands.add_compare, tool_commands.add_list):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = args.handler
    rank = environment_rank()
    try:
        return handler(args)
    except Stopped as exc:
        if rank == 0:
            print(f"stochreg: {exc}", file=sys.stderr)
        return exc.exit_code
    except StochregError as exc:
        # Under torchrun an error every process meets is printed once; any other names its rank.
        if rank == 0 or not exc.every_rank:
            print(f"stochreg: error{f' (rank {rank})' if rank else ''}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of our output went away (`stochreg runs | head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        hint = INTERRUPTED_HINTS.get(args.command, "").format(run=getattr(args, "run_folder", None) or "RUN")
        print(f"stochreg: interrupted{hint}", file=sys.stderr)
        return 130


# what an interrupted command leaves, said after "interrupted"
INTERRUPTED_HINTS = {
    "train": "; `stochreg train --resume {run}` continues from the last checkpoint",
    "predict": "; the rows of the batches classified so far are written (CSV, or printed above)",
}


if __name__ == "__main__":
    sys.exit(main())
