"""``stochreg train``: its flags (every TrainConfig field, documented where it is declared, plus the
run-folder flags) and the command, which starts, continues or resumes a run."""
from __future__ import annotations

import argparse
from dataclasses import fields, replace
from pathlib import Path

import yaml

from ..config import GROUPS, PRESETS, TrainConfig, field_type, from_dict, load_yaml, resolve_config, validate
from ..errors import UsageError
from ..train import config_differences, default_run_folder, train


def add_config_flags(parser: argparse.ArgumentParser) -> dict[str, argparse._ArgumentGroup]:
    """Every TrainConfig field as a flag, in the group its declaration names; returns the groups."""
    defaults = TrainConfig()
    groups = {title: parser.add_argument_group(title) for title in GROUPS}
    for f in fields(TrainConfig):
        default = getattr(defaults, f.name)
        flag, group = "--" + f.name.replace("_", "-"), groups[f.metadata["group"]]
        # an unset default is explained by the help itself ("unset = ...")
        shown = "" if default is None else f" (default: {default})"
        text = f"{f.metadata['help']}{shown}".replace("%", "%%")   # argparse formats help with %
        kind, _ = field_type(f)
        if kind is bool:
            group.add_argument(flag, dest=f.name, default=None, action=argparse.BooleanOptionalAction, help=text)
        else:
            group.add_argument(flag, dest=f.name, type=kind, default=None, metavar=f.name.split("_")[-1].upper(),
                               help=text)
    return groups


def add_train(sub) -> None:
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
    groups = add_config_flags(train)
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
    train.set_defaults(handler=cmd_train)


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

    overrides = config_overrides(args)
    if args.resume:
        cfg = _resumed_config(args, overrides)
        args.run_folder = args.resume   # named by an interruption's hint
        train(cfg, args.resume, progress=not args.no_progress, resume=True, tensorboard=args.tensorboard)
        return 0
    cfg = with_absolute_paths(resolve_config(args.preset, args.config, overrides))
    if args.resume_if_exists:
        if not args.out:
            raise UsageError("--resume-if-exists needs --out RUN_DIR: the folder to start, or to continue")
        args.run_folder = args.out
        # start the run, or continue it exactly when RUN_DIR holds one of the same settings
        train(cfg, args.out, progress=not args.no_progress, resume=True, tensorboard=args.tensorboard,
              same_settings=not args.force)
        return 0
    out = args.run_folder = args.out or default_run_folder(cfg)
    train(cfg, out, overwrite=args.overwrite, progress=not args.no_progress, tensorboard=args.tensorboard)
    return 0


def with_absolute_paths(cfg: TrainConfig) -> TrainConfig:
    """The data folder and a folder:/csv: dataset's path made absolute, so that the saved config
    finds the same data when the run is resumed from another working directory."""
    kind, _, where = cfg.dataset.partition(":")
    dataset = f"{kind}:{Path(where).expanduser().resolve()}" if kind in ("folder", "csv") and where else cfg.dataset
    init = str(Path(cfg.init).expanduser().resolve()) if cfg.init else cfg.init
    return replace(cfg, data_dir=str(Path(cfg.data_dir).expanduser().resolve()), dataset=dataset, init=init)


def _resumed_config(args: argparse.Namespace, overrides: dict) -> TrainConfig:
    """The run's saved config, with any settings given now; refused if they change the training
    (unless --force), because the resumed run would no longer be the run that was started."""

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
