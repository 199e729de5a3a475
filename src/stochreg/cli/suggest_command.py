"""``stochreg suggest RUN``: the unlabelled images worth labelling next (runs/suggest.py)."""
from __future__ import annotations

import argparse

from ..runtime.devices import pick_device
from ..runs.suggest import suggest, suggestions_path
from .model_commands import DEVICE_HELP, MODEL_HELP


def add_suggest(sub) -> None:
    command = sub.add_parser("suggest", help="list the unlabelled images worth labelling next",
                             description="Rank a run's unlabelled images by how unsure its final model is of them "
                                         "(the margin between its two likeliest classes, the classes it guesses "
                                         "taken in turn) and write the first N to RUN/suggestions.csv (path, the "
                                         "model's guess, its confidence, the reason) with a contact sheet beside it "
                                         "(suggestions.png). Label them (move each into labelled/CLASS/) and train "
                                         "again.")
    command.add_argument("model", metavar="RUN_DIR_OR_CHECKPOINT", help=MODEL_HELP)
    command.add_argument("--n", type=int, default=100, help="how many images to suggest (default 100)")
    command.add_argument("--passes", type=int, default=1,
                         help="average this many stochastic passes per image (default 1)")
    command.add_argument("--out", metavar="FILE.csv", help="where to write the list (default: RUN/suggestions.csv; "
                                                           "the contact sheet goes beside it as .png)")
    command.add_argument("--device", default="auto", help=DEVICE_HELP)
    command.set_defaults(handler=cmd_suggest)


def cmd_suggest(args: argparse.Namespace) -> int:
    rows = suggest(args.model, args.n, args.passes, pick_device(args.device), args.out)
    out = suggestions_path(args.model, args.out)
    print(f"wrote {len(rows)} suggestions to {out} and their contact sheet to {out.with_suffix('.png')}")
    for row in rows[:5]:
        print(f"{row.path}\t{row.guess}\t{row.reason}")
    return 0
