"""``stochreg label ROOT``: a local page to label a folder's unlabelled images (label/)."""
from __future__ import annotations

import argparse
import webbrowser
from pathlib import Path

from ..label.server import start_server
from ..errors import UsageError
from ..label.store import LOG_NAME, OUT_OF_CLASS, LabelStore
from ..runs.outliers import LIST
from ..runs.suggest import run_folder, suggest, suggestions_path


def add_label(sub) -> None:
    command = sub.add_parser(
        "label", help="label unlabelled images on a local web page",
        description="Serve a page on 127.0.0.1 (the address, with a token made fresh each time, is printed) that "
                    "shows ROOT/unlabelled/'s images one at a time, the images a run suggests first with its guess "
                    "preselected. Enter confirms the guess, 1-9 pick a class (0-9 where classes are digits), x: none of these, s: skip, n: a new "
                    "class, z: undo; buttons too. Each answer moves the file into labelled/CLASS/ (or "
                    f"{OUT_OF_CLASS}/, which training does not read) and is appended to ROOT/{LOG_NAME}; nothing "
                    "is overwritten or deleted. Then train the next round: stochreg train --data ROOT --init RUN.")
    command.add_argument("root", metavar="ROOT", help="the folder with labelled/CLASS/... and unlabelled/...")
    command.add_argument("--run", metavar="RUN_DIR", help="a run trained on ROOT: its suggestions come first (made "
                                                          "now with `stochreg suggest` if RUN has none yet)")
    command.add_argument("--outliers", action="store_true",
                         help="show RUN's unlabelled images most unlike every labelled one first (RUN/outliers.csv), "
                              "to move those of no class out of the pool with x")
    command.add_argument("--n", type=int, default=100, help="how many suggestions to make when RUN has none "
                                                            "(default 100)")
    command.add_argument("--port", type=int, default=0, help="the port to listen on (default 0: any free one)")
    command.add_argument("--open", action="store_true", help="open the page in the default web browser")
    command.set_defaults(handler=cmd_label)


def cmd_label(args: argparse.Namespace) -> int:
    suggestions = None
    if args.outliers:
        if not args.run:
            raise UsageError("--outliers shows a run's list: give the run with --run RUN")
        suggestions = run_folder(args.run) / LIST
        if not suggestions.is_file():
            raise UsageError(f"{run_folder(args.run)} has no {LIST}: runs trained before out-of-class scores have "
                             "none; train again")
    elif args.run:
        suggestions = suggestions_path(args.run)
        if not suggestions.is_file():
            print(f"{run_folder(args.run)} has no suggestions yet: ranking its unlabelled images")
            suggest(args.run, args.n)
    store = LabelStore(args.root, suggestions)
    server, url = start_server(store, args.port)
    print(f"{store.left()} images to label in {store.unlabelled}"
          + (f", the {store.suggested} that {Path(args.run).name} "
             f"{'finds most unlike its labelled ones' if args.outliers else 'suggests'} first" if args.run else ""))
    print(f"open {url}\n(Ctrl-C stops the page; answers are kept in {store.log_path})", flush=True)
    if args.open:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    init = f" --init {args.run}" if args.run else ""
    print(f"\nstopped; to train on the new labels: stochreg train --data {args.root}{init}")
    return 0
