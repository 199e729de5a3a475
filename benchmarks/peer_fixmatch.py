"""The peer rows of the Fashion-MNIST-400 and ELPV-40 tables: FixMatch as USB (the ``semilearn`` package
from PyPI) implements it, on stochreg's labelled split, validation split and test set, on the same
machine, for the same wall clock as the stochreg run it is compared with.

    python benchmarks/peer_fixmatch.py --seed 0 --minutes 12.4    # results/fashion400/peer-usb-fixmatch-s0.json
    python benchmarks/peer_fixmatch.py --table elpv40 --seed 0 --minutes 2.47   # the images stochreg reads, 128 px

The peer runs in its own environment, made by this script on first use (``runs/peer-env``: the
same PyTorch and torchvision releases as stochreg's, semilearn without the packages that only its
text, audio and experiment-tracking modules use); stochreg is never imported there. The script is
the driver in stochreg's environment (it writes the split to an .npz file, makes the environment,
starts the worker and writes the JSON) and, with ``--worker``, the worker inside the peer's.

Configuration: USB's documented FixMatch settings for small images (its classic-CV FixMatch
configs: SGD with Nesterov momentum 0.9, lr 0.03, cosine to the last step, weight decay 5e-4, EMA
0.999 for evaluation, threshold 0.95, temperature 0.5 with hard pseudo-labels, lambda_u 1; weak
view: random crop with 12.5% reflect padding and a horizontal flip, which keeps the class of
clothes; strong view: that, then RandAugment(3, 5) with cutout), its BasicDataset, DataLoader
samplers, pseudo-labelling and masking hooks, EMA and parameter-update hooks. Three choices are
this adapter's, for a fair comparison on a 2-core CPU: the network is the architecture of
stochreg's compact net (131k parameters; USB's WRN-28-2 would take a step of seconds here), the
batch is 32 labelled and 3 x 32 unlabelled images (about stochreg's 192 images a step; USB's 64
and 7 x 64 would fit a few hundred steps in the budget), and the grayscale images are given to it
as RGB (its RandAugment and cutout are written for colour images). The step count is fixed from
the pace of the first steps so that training fills ``--minutes`` (its cosine schedule needs the
count up front), and glibc's malloc keeps freed blocks (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``), as stochreg's runtime/hostmem.py does for itself: without them the
peer spends much of each step in the kernel, on page faults.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = HERE.parent / "runs" / "peer-env"
PEER_PACKAGES = ["torch==2.14.1", "torchvision==0.29.1", "numpy", "Pillow", "ruamel.yaml", "progress",
                 "scikit-learn", "tqdm", "scipy", "tensorboard"]
PEER = "semilearn==0.3.2"
# Imported at the top of semilearn's text, audio and experiment-tracking modules, never called on
# the image FixMatch path: stand-ins keep the peer environment to what that path runs.
UNUSED_IMPORTS = ("transformers", "torchaudio", "wandb", "aim", "timm", "skimage")
GLIBC_KEEP_FREED = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}
SETTINGS = {"batch_size": 32, "uratio": 3, "lr": 0.03, "momentum": 0.9, "weight_decay": 5e-4, "ema_m": 0.999,
            "p_cutoff": 0.95, "T": 0.5, "hard_label": True, "ulb_loss_ratio": 1.0, "crop_ratio": 0.875,
            "num_workers": 2}
TIMING_STEPS = 40


# --- the driver, in stochreg's environment ---

# The tables a peer row is run for: stochreg's settings that fix the images and the splits the peer gets
TABLE_DATA = {
    # fashion-mnist --labels 400 --val-size 5000 --seed S
    "fashion400": lambda seed, data_dir: {"dataset": "fashion-mnist", "labels": 400, "val_size": 5000},
    # --data data/elpv40-folder-sS: the folder's 40 labelled images, its unlabelled and test images, read at the
    # size stochreg's default reads them (128 px)
    "elpv40": lambda seed, data_dir: {"dataset": f"folder:{Path(data_dir).resolve() / f'elpv40-folder-s{seed}'}",
                                      "labels": 0},
}


def write_split(seed: int, path: Path, data_dir: str = "data", table: str = "fashion400") -> None:
    """The images and stochreg's splits of the table's data for split ``seed``."""
    import numpy as np
    from stochreg.config import resolve_config
    from stochreg.data import load_dataset
    from stochreg.train.run_data import image_options, make_splits
    cfg = resolve_config(overrides={**TABLE_DATA[table](seed, data_dir), "seed": seed, "data_dir": data_dir})
    data = load_dataset(cfg.dataset, data_dir, **image_options(cfg))
    splits = make_splits(cfg, data)
    validation = splits.validation.numpy() if splits.validation is not None else np.zeros(0, dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, train_images=data.train_images[:, 0].numpy(), train_labels=data.train_labels.numpy(),
             test_images=data.test_images[:, 0].numpy(), test_labels=data.test_labels.numpy(),
             labelled=splits.labelled.numpy(), validation=validation, num_classes=data.num_classes,
             dataset=np.array(cfg.dataset if table == "fashion400" else table))


def ensure_env() -> Path:
    """The peer's Python, its environment made first where it is missing."""
    python = ENV / "bin" / "python"
    if not (ENV / ".complete").exists():
        subprocess.run([sys.executable, "-m", "venv", str(ENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", PEER], check=True)
        (ENV / ".complete").write_text("")
    return python


def drive(args: argparse.Namespace) -> int:
    import torch
    from stochreg.runtime.machine import machine_description, source_commit
    split = HERE.parent / "runs" / "peer" / f"{args.table}-s{args.seed}.npz"
    if not split.exists():
        write_split(args.seed, split, args.data_dir, args.table)
    python = ensure_env()
    raw = split.with_suffix(".result.json")
    command = [str(python), str(Path(__file__).resolve()), "--worker", str(split), "--minutes", str(args.minutes),
               "--seed", str(args.seed), "--out", str(raw)]
    if args.steps:
        command += ["--steps", str(args.steps)]
    subprocess.run(command, check=True, env={**os.environ, **GLIBC_KEEP_FREED})
    result = json.loads(raw.read_text())
    table = f" --table {args.table}" if args.table != "fashion400" else ""
    result.update({"command": f"python benchmarks/peer_fixmatch.py{table} --seed {args.seed} --minutes {args.minutes}",
                   "commit": source_commit(), "machine": machine_description(torch.device("cpu")), "peer": PEER,
                   "environment": GLIBC_KEEP_FREED, "settings": SETTINGS})
    out = Path(args.out) if args.out else HERE / "results" / args.table / f"peer-usb-fixmatch-s{args.seed}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    validation = f", validation {100 * result['val_error']:.2f}%" if result.get("val_error") is not None else ""
    print(f"wrote {out}: test error {100 * result['test_error']:.2f}%{validation}, "
          f"{result['iters']} steps in {result['train_seconds'] / 60:.1f} min")
    return 0


# --- the worker, in the peer's environment ---

def stand_in_unused_imports() -> None:
    """Any module under UNUSED_IMPORTS imports as a stand-in whose every name is an empty class."""
    import importlib.abc
    import importlib.machinery
    import types

    class Anything(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return type(name, (), {"__init__": lambda self, *a, **k: None})

    class StandIns(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in UNUSED_IMPORTS:
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
            return None

        def create_module(self, spec):
            module = Anything(spec.name)
            module.__path__ = []
            return module

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, StandIns())


def compact_architecture(channels: int, classes: int, width: int = 32, dropout: float = 0.25):
    """The layers of stochreg's compact net, in USB's network interface (logits and features)."""
    import torch.nn as nn

    def conv_bn(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                             nn.ReLU(inplace=True))

    class Compact(nn.Module):
        def __init__(self):
            super().__init__()
            w1, w2, w3 = width, 2 * width, 4 * width
            self.features = nn.Sequential(
                conv_bn(channels, w1), nn.MaxPool2d(2), nn.Dropout2d(dropout / 2),
                conv_bn(w1, w2), conv_bn(w2, w2), nn.MaxPool2d(2), nn.Dropout2d(dropout / 2),
                conv_bn(w2, w3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))
            self.classifier = nn.Linear(w3, classes)

        def forward(self, x, only_fc=False, only_feat=False, **kwargs):
            if only_fc:
                return self.classifier(x)
            feat = self.features(x)
            return feat if only_feat else {"logits": self.classifier(feat), "feat": feat}

    return Compact()


def work(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    import torchvision.transforms as T
    stand_in_unused_imports()
    from semilearn import BasicDataset, get_config, get_data_loader
    from semilearn.algorithms.fixmatch import FixMatch
    from semilearn.datasets.augmentation import RandAugment

    arrays = np.load(args.worker)
    rgb = lambda images: np.repeat(images[..., None], 3, axis=3)   # (N, H, W) -> (N, H, W, 3)
    images, labels = rgb(arrays["train_images"]), arrays["train_labels"]
    labelled, validation = arrays["labelled"], arrays["validation"]
    classes = int(arrays["num_classes"]) if "num_classes" in arrays else 10
    dataset = str(arrays["dataset"]) if "dataset" in arrays else "fashion-mnist"
    size = images.shape[1]
    mean, std = [float(images.mean() / 255)] * 3, [float(images.std() / 255)] * 3
    crop = [T.RandomCrop(size, padding=int(size * (1 - SETTINGS["crop_ratio"])), padding_mode="reflect"),
            T.RandomHorizontalFlip()]
    finish = [T.ToTensor(), T.Normalize(mean, std)]
    weak, strong = T.Compose(crop + finish), T.Compose(crop + [RandAugment(3, 5)] + finish)
    plain = T.Compose(finish)

    def build(steps: int):
        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
        random.seed(args.seed)
        config = {"algorithm": "fixmatch", "net": "compact", "use_pretrain": False, "num_classes": classes,
                  "num_train_iter": steps, "epoch": 1, "num_eval_iter": 10 ** 9, "num_log_iter": 10 ** 9,
                  "save_dir": str(Path(args.out).parent / "peer-runs"), "save_name": f"s{args.seed}",
                  "gpu": None, "distributed": False, "amp": False, "use_cat": True, "clip_grad": 0, "dataset": dataset,
                  "data_dir": str(Path(args.worker).parent), "img_size": size,
                  **{k: v for k, v in SETTINGS.items() if k != "num_workers"}}
        cfg = get_config(config)

        def net_builder(num_classes, **kwargs):
            return compact_architecture(3, num_classes)

        class CpuFixMatch(FixMatch):
            def set_dataset(self):   # the datasets are this adapter's: stochreg's split
                return None

            def process_batch(self, input_args=None, **kwargs):   # USB sends each batch to a GPU
                names = list(inspect.signature(self.train_step).parameters)
                return {k: v for k, v in kwargs.items() if k in names and v is not None}

        algorithm = CpuFixMatch(cfg, net_builder)
        for name in ("EvaluationHook", "CheckpointHook", "TimerHook", "LoggingHook", "DistSamplerSeedHook"):
            algorithm.hooks_dict.pop(name, None)   # GPU timing, logging and checkpointing: not this benchmark's
        lb = BasicDataset("fixmatch", images[labelled], labels[labelled], classes, weak, False, strong, False)
        ulb = BasicDataset("fixmatch", images, labels, classes, weak, True, strong, False)
        loaders = [get_data_loader(cfg, lb, SETTINGS["batch_size"], num_iters=steps, num_epochs=1,
                                   num_workers=SETTINGS["num_workers"]),
                   get_data_loader(cfg, ulb, SETTINGS["batch_size"] * SETTINGS["uratio"], num_iters=steps,
                                   num_epochs=1, num_workers=SETTINGS["num_workers"])]
        algorithm.call_hook("before_run")
        return algorithm, loaders

    def train(algorithm, loaders, steps: int) -> float:
        algorithm.model.train()
        started = None
        for step, (data_lb, data_ulb) in enumerate(zip(*loaders)):
            if step == 5:
                started = time.perf_counter()   # the first steps start the workers
            algorithm.call_hook("before_train_step")
            algorithm.out_dict, algorithm.log_dict = algorithm.train_step(**algorithm.process_batch(**data_lb, **data_ulb))
            algorithm.call_hook("after_train_step")
            algorithm.it += 1
            if step + 1 >= steps:
                break
        return (time.perf_counter() - started) / max(1, steps - 5)

    torch.set_num_threads(os.cpu_count() or 1)
    if args.steps:
        steps, pace = args.steps, None
    else:
        pace = train(*build(TIMING_STEPS), TIMING_STEPS)
        steps = max(TIMING_STEPS, int(args.minutes * 60 / pace))
        print(f"peer: {pace:.3f} s a step, so {steps} steps fill {args.minutes:g} minutes", flush=True)
    algorithm, loaders = build(steps)
    started = time.perf_counter()
    train(algorithm, loaders, steps)
    seconds = time.perf_counter() - started

    def predictions(pictures, use_ema: bool) -> np.ndarray:
        model = algorithm.model
        if use_ema:
            algorithm.ema.apply_shadow()
        model.eval()
        with torch.no_grad():
            predicted = [model(torch.stack([plain(picture) for picture in pictures[start:start + 1000]]))["logits"]
                         .argmax(1).numpy() for start in range(0, len(pictures), 1000)]
        if use_ema:
            algorithm.ema.restore()
        model.train()
        return np.concatenate(predicted)

    def error(pictures, targets, use_ema: bool) -> float | None:
        return float((predictions(pictures, use_ema) != targets).mean()) if len(pictures) else None

    test, test_labels = rgb(arrays["test_images"]), arrays["test_labels"]
    predicted = predictions(test, True)
    recall = [float((predicted[test_labels == k] == k).mean()) for k in range(classes) if (test_labels == k).any()]
    result = {"test_error": error(test, test_labels, True), "val_error": error(images[validation], labels[validation], True),
              "balanced_test_error": 1 - sum(recall) / len(recall),
              "test_error_raw_weights": error(test, test_labels, False), "evaluated": "ema", "iters": steps,
              "train_seconds": round(seconds, 1), "timed_seconds_per_step": pace, "seed": args.seed, "labels": len(labelled),
              "val_size": len(validation), "method": "usb-fixmatch", "dataset": dataset, "net": "compact (peer copy)",
              "parameters": sum(p.numel() for p in algorithm.model.parameters()), "torch": torch.__version__}
    if result["val_error"] is None:   # a table without a validation split (the test rows of elpv40)
        del result["val_error"]
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", choices=sorted(TABLE_DATA), default="fashion400",
                        help="the table whose data and splits the peer trains on")
    parser.add_argument("--seed", type=int, default=0, help="labelled split (stochreg's --seed)")
    parser.add_argument("--minutes", type=float, required=True,
                        help="training wall clock: the stochreg run's, measured on this machine")
    parser.add_argument("--steps", type=int, help="a fixed step count instead of filling --minutes (for tests)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", help="default: results/TABLE/peer-usb-fixmatch-sSEED.json")
    parser.add_argument("--worker", metavar="NPZ", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return work(args) if args.worker else drive(args)


if __name__ == "__main__":
    raise SystemExit(main())
