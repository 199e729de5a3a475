"""The typed training configuration, its named presets, and loading/validation from YAML.

A run is fully described by one :class:`TrainConfig`; the resolved config is saved into every
run folder as ``config.yaml``. Presets are small dicts of overrides on top of the defaults:

    >>> cfg = resolve_config(preset="paper-mnist", overrides={"seed": 3})
    >>> cfg.net, cfg.views, cfg.seed
    ('fmp-mnist', 5, 3)
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import UsageError

# A setting left to be chosen from the data (recipe.py); the saved config holds the choice.
AUTO = "auto"


@dataclass
class TrainConfig:
    # data
    dataset: str = "mnist"
    data_dir: str = "data"
    # labelled images, class-balanced; 0 = every labelled image; None = 100 for the built-in datasets
    # (their quick benchmarks), every labelled image for the user's own (folder:, csv:, arrays)
    labels: int | None = None
    label_fraction: float = 0.0       # when > 0: this fraction of the labelled images (overrides labels)
    # the user's own images (folder:ROOT, csv:FILE): size and channels (0 = detect), streaming
    image_size: int = 0               # resize every image to this square size
    channels: int = 0                 # 1 (grayscale) or 3 (colour): convert every image to it
    stream: bool = False              # decode training images from disk each step instead of holding them
    workers: int = 4                  # DataLoader worker processes decoding for --stream
    # the user's own images without a test folder: keep this many labelled images of each class
    # aside (chosen with the split seed) as the test set, for a test estimate; 0 = no test estimate
    holdout: int = 0
    # method and network
    # The default method is the paper's TS + ME over 4 weak views plus FixMatch's term on a 5th,
    # strong view: the best of stochreg's methods on MNIST-100 under the 60-minute CPU budget, by a
    # rule fixed before the runs (benchmarks/RESULTS.md). `--method ts-me` is the paper's alone.
    method: str = "ts-me-fixmatch"
    net: str = AUTO                   # auto: by image size (recipe.py)
    views: int = 5                    # n: stochastic passes of each unlabelled image
    lambda_ts: float = 4.0
    lambda_me: float = 0.1
    lambda_u: float = 1.0             # weight of the other methods' unsupervised term (pi, mt, pl, fixmatch, ent)
    threshold: float = 0.95           # confidence needed for a pseudo-label (pseudo-label, fixmatch)
    lambda_balance: float = 0.0       # weight of KL(labelled class frequencies || mean unlabelled prediction)
    # weight of the cross-entropy toward label propagation's labels over a pixel-space neighbour
    # graph of the training images (graph.py); 0 = off. It reaches styles of a class that no
    # labelled image shows but that pixel neighbours connect (benchmarks/tuning.md)
    lambda_graph: float | None = None  # None = auto: 3 where a label-only check says the graph is right enough
    # when > 0: the graph term's weight fades (half a cosine) from full at step 0 to 0 at this step
    # and stays 0; the propagated labels are a prior the network outgrows (they are wrong on whole
    # styles, e.g. MNIST's curled nines, that the network's own terms would get right).
    # 0 = the full weight for the whole run
    graph_fade_iters: int = 0
    # deskew the images before building the graph (graph.py): slant is a style of handwriting, not
    # a class. None (the default) = for single-channel digit datasets (MNIST), not for others;
    # true = always (refused for colour images), false = never
    graph_deskew: bool | None = None
    # images whose propagated label has a confidence below this get no graph term (0 = every image,
    # weighted by its confidence): the wrong propagated labels are mostly the unsure ones, but the
    # unsure right ones still guide the network (benchmarks/tuning.md)
    graph_min_confidence: float = 0.0
    rampup_iters: int = 500           # unsupervised weight rises as exp(-5(1-t)^2) over these steps
    # batches: labelled images per step, unlabelled images per step (each seen `views` times)
    batch_labelled: int = 32
    batch_unlabelled: int = 32
    transform: str = AUTO             # applied to every view and to the labelled images; auto: from the data
    flip: bool | None = None          # may views be mirrored (auto transform)? None = unless the images are digits
    # optimisation
    # the quick start's budget on a 2-core Zen 4 CPU; fewer steps end short of 1% test error on
    # MNIST-100 (benchmarks/tuning.md)
    iters: int = 6000
    # when > 0: train for about this many minutes instead: the first steps are timed (and undone)
    # and iters is set to the count that fits; the saved config holds that count (and 0 here), so
    # that the run repeats and resumes exactly
    time_budget: float = 0.0
    optimizer: str = "sgd"            # sgd (momentum, nesterov) or adam
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"          # cosine to 0, or exp: lr * exp(-lr_decay * epoch) as in the paper
    lr_decay: float = 0.01            # per epoch, for schedule=exp
    warmup_iters: int = 0
    ema: float = 0.995                # EMA decay of the weights used for evaluation; 0 = off
    # bf16: forward passes under bfloat16 autocast (weights, optimiser, losses and evaluation stay
    # float32); pays where the hardware computes bf16 natively (benchmarks/results/speed.md)
    precision: str = "fp32"
    # evaluation (logged only: the result is always the final model)
    eval_every: int = 500
    eval_batch: int = 1000
    # labelled training images kept out of the labelled split, whose labels only score the model
    # (the validation error, logged beside the test error); they stay in the unlabelled pool, as a
    # user's spare labelled images would. Tuning decisions compare this, never the test error. 0 = none
    val_size: int = 0
    tta_passes: int = 1               # the final result averages this many stochastic passes (the paper's TTA)
    # resume: a full training checkpoint every this many steps (and on SIGINT/SIGTERM), last k kept
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    # seeds: the split seed is `seed`; the others default to values derived from it
    seed: int = 0
    init_seed: int | None = None
    data_seed: int | None = None
    aug_seed: int | None = None
    # machine
    device: str = "auto"              # auto, cpu, cuda, cuda:1, ...
    threads: int = 0                  # torch CPU threads; 0 = all cores
    sync_bn: bool = False             # under torchrun on GPUs: batch-norm statistics over the global batch

    def seeds(self) -> dict[str, int]:
        """Independent seeds for the labelled split, initialisation, data order and augmentation."""
        return {"split": self.seed,
                "init": self.init_seed if self.init_seed is not None else 1000 + self.seed,
                "data": self.data_seed if self.data_seed is not None else 2000 + self.seed,
                "aug": self.aug_seed if self.aug_seed is not None else 3000 + self.seed}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # The quick-start recipe (the dataclass defaults): MNIST with 100 labels on 2 CPU cores. How
    # each value was chosen is logged in benchmarks/tuning.md.
    "default": {},
    # "paper-mnist", the authors' MNIST configuration, follows the helpers below.
}


def sparseconvnet_settings(slots: int, views: int, lr: float, lambda_ts: float, lambda_me: float,
                           momentum: float = 0.99) -> dict[str, Any]:
    """The authors' SparseConvNet settings in stochreg's terms, so that each step moves the weights
    as theirs did.

    Their batch is 2 * ``slots`` slots: ``slots`` labelled images, and ``slots / views`` unlabelled
    images each repeated ``views`` times (mnist.cpp, find_index). Their gradients are sums over the
    batch, never divided by its size; their TS gradient is that of half the pair sum per image; their
    momentum update is m = mu*m - lr*(1-mu)*grad (NetworkInNetworkLayer.cu), which settles at a step
    of lr * grad. stochreg averages the cross-entropy over labelled images, the TS pair sum over
    unlabelled images and ME over every pass, and torch's SGD settles at lr / (1-mu) * grad. Equal
    steps need lr * (1-mu) * slots, lambda_TS / (2 * views) and lambda_ME unchanged: for MNIST's
    0.003, 1 and 0.1 with 50 slots and n=5, 0.0015, 0.1 and 0.1. (Taken literally, 0.003 and
    lambda_TS=1 diverged on a GPU at step 2,700, 0.001 at step 29,600: benchmarks/README.md.)

    >>> s = sparseconvnet_settings(slots=50, views=5, lr=0.003, lambda_ts=1.0, lambda_me=0.1)
    >>> (s["batch_labelled"], s["batch_unlabelled"], round(s["lr"], 6), s["lambda_ts"], s["lambda_me"])
    (50, 10, 0.0015, 0.1, 0.1)
    """
    if slots % views:
        raise ValueError(f"{slots} unlabelled batch slots do not hold whole groups of {views} passes")
    return {"method": "ts-me", "views": views, "batch_labelled": slots, "batch_unlabelled": slots // views,
            "lr": round(lr * (1 - momentum) * slots, 12), "momentum": momentum, "lambda_ts": lambda_ts / (2 * views),
            "lambda_me": lambda_me, "optimizer": "sgd", "weight_decay": 0.0, "schedule": "exp", "lr_decay": 0.01,
            "rampup_iters": 0, "ema": 0.0, "lambda_graph": 0.0}


def _epochs_to_steps(epochs: int, train_images: int, slots: int, views: int = 5) -> int:
    """The authors' epoch is 2 * N_train * n batch slots (mnist.cpp); a step fills 2 * ``slots``."""
    return round(epochs * 2 * train_images * views / (2 * slots))


def _paper_preset(dataset: str, labels: int, net: str, transform: str, lr: float, epochs: int,
                  train_images: int, tta_passes: int) -> dict[str, Any]:
    """The authors' released settings for a colour/NORB dataset (method.md): n=5, lambda_TS=1,
    lambda_ME=0.1, 25 + 25 batch slots, lr*exp(-0.01*epoch), momentum 0.99, ``epochs`` of
    2 * N_train * n batch slots, test-time averaging of ``tta_passes`` passes; in stochreg's terms by
    :func:`sparseconvnet_settings`."""
    return {**sparseconvnet_settings(slots=25, views=5, lr=lr, lambda_ts=1.0, lambda_me=0.1),
            "dataset": dataset, "labels": labels, "net": net, "transform": transform,
            "iters": _epochs_to_steps(epochs, train_images, slots=25), "eval_every": 10_000,
            "tta_passes": tta_passes}


# The authors' released configuration for MNIST (mnist.cpp, method.md): their FMP net, n=5,
# lambda_TS=1, lambda_ME=0.1, 50 + 50 batch slots, lr 0.003*exp(-0.01*epoch), momentum 0.99, 400
# epochs (2.4M steps: a GPU job), no input transformation (FMP and dropout supply the randomness),
# no label-propagation graph (not the authors'). The method is named, not inherited: the default
# method changed (to ts-me-fixmatch) after the presets were written, and a preset must not follow
# the defaults.
PRESETS["paper-mnist"] = {**sparseconvnet_settings(slots=50, views=5, lr=0.003, lambda_ts=1.0, lambda_me=0.1),
                          "net": "fmp-mnist", "transform": "none",
                          "iters": _epochs_to_steps(400, 60_000, slots=50), "eval_every": 6000}


# GPU jobs of 2M to 7M steps. CIFAR-100's label count is not in the released code; 10,000
# (100 per class) is the count the semi-supervised CIFAR-100 benchmarks of the time used.
PRESETS.update({
    "paper-cifar10": _paper_preset("cifar10", 4000, "fmp-cifar", "paper-cifar10", 0.003, 410, 50_000, 100),
    "paper-cifar100": _paper_preset("cifar100", 10_000, "fmp-cifar", "paper-natural", 0.003, 700, 50_000, 12),
    "paper-svhn": _paper_preset("svhn", 732, "fmp-small", "paper-digits", 0.001, 410, 73_257, 100),
    "paper-norb": _paper_preset("norb", 582, "fmp-small", "paper-natural", 0.001, 410, 24_300, 100),
    # ImageNet with 10% of the labels, as the paper evaluated it. Its settings are not in the
    # released code (the paper used an AlexNet-style net); these are stochreg's: torchvision's
    # ResNet-18 on 128 px images streamed from ImageNet's train/ and val/ folders, the paper's
    # loss weights, SGD with a cosine schedule. A multi-GPU job (docs/distributed.md).
    "paper-imagenet": {"dataset": "folder:data/imagenet", "label_fraction": 0.1, "image_size": 128, "channels": 3,
                       "method": "ts-me", "stream": True, "workers": 8, "net": "resnet18", "transform": "imagenet",
                       "views": 4, "lambda_ts": 1.0, "lambda_me": 0.1, "rampup_iters": 5000, "batch_labelled": 64,
                       "batch_unlabelled": 64, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
                       "weight_decay": 1e-4, "schedule": "cosine", "iters": 300_000, "ema": 0.999,
                       "eval_every": 10_000, "eval_batch": 256, "lambda_graph": 0.0},
})


def _check_type(name: str, value: Any, annotation: str) -> Any:
    kinds = {"int": int, "float": float, "str": str, "int | None": (int, type(None)), "bool": bool,
             "bool | None": (bool, type(None)), "float | None": (int, float, type(None))}
    expected = kinds[annotation]
    if annotation in ("bool", "bool | None"):
        if not isinstance(value, expected):
            raise UsageError(f"config key {name!r} must be true or false{' or null' if 'None' in annotation else ''}, "
                             f"got {value!r}")
        return value
    if annotation == "float | None" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, expected):
        if annotation == "float" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        raise UsageError(f"config key {name!r} must be {annotation}, got {value!r}")
    return value


def validate(cfg: TrainConfig) -> TrainConfig:
    """Checks values and cross-field rules; raises UsageError with one clear line."""
    from .methods import METHODS
    from .nets import NETS
    from .transforms import TRANSFORMS
    from .data.datasets import check_dataset_name

    check_dataset_name(cfg.dataset)
    if cfg.net != AUTO:
        NETS.get(cfg.net)
    if cfg.transform != AUTO:
        TRANSFORMS.get(cfg.transform)
    method = METHODS.get(cfg.method)
    if cfg.channels not in (0, 1, 3):
        raise UsageError(f"channels must be 1 (grayscale) or 3 (colour), got {cfg.channels}")
    for name in ("image_size", "workers", "val_size", "holdout"):
        if getattr(cfg, name) < 0:
            raise UsageError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if not 0 <= cfg.label_fraction <= 1:
        raise UsageError(f"label_fraction must be in [0, 1], got {cfg.label_fraction}")
    if cfg.labels is not None and cfg.labels < 0:
        raise UsageError(f"labels must be >= 0 (0 = every labelled image), got {cfg.labels}")
    positive = ["iters", "batch_labelled", "eval_batch", "views", "keep_checkpoints", "tta_passes"]
    if method.uses_unlabelled:
        positive.append("batch_unlabelled")
    for name in positive:
        if getattr(cfg, name) <= 0:
            raise UsageError(f"{name} must be positive, got {getattr(cfg, name)}")
    for name in ("rampup_iters", "warmup_iters", "eval_every", "threads", "batch_unlabelled", "checkpoint_every",
                 "graph_fade_iters"):
        if getattr(cfg, name) < 0:
            raise UsageError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    for name in ("lambda_ts", "lambda_me", "lambda_u", "lambda_balance", "lambda_graph", "lr", "momentum", "weight_decay", "lr_decay",
                 "time_budget"):
        value = getattr(cfg, name)
        if value is None and name == "lambda_graph":   # auto
            continue
        if not math.isfinite(value) or value < 0:
            raise UsageError(f"{name} must be a finite number >= 0, got {value}")
    if cfg.lr == 0:
        raise UsageError("lr must be positive")
    if not 0 <= cfg.ema < 1:
        raise UsageError(f"ema must be in [0, 1), got {cfg.ema}")
    if not 0 <= cfg.threshold <= 1:
        raise UsageError(f"threshold must be in [0, 1], got {cfg.threshold}")
    if not 0 <= cfg.graph_min_confidence < 1:
        raise UsageError(f"graph_min_confidence must be in [0, 1), got {cfg.graph_min_confidence}")
    if method.needs_teacher and cfg.ema <= 0:
        raise UsageError(f"method {cfg.method} needs a teacher: the EMA of the weights (--ema > 0, e.g. 0.99)")
    if cfg.views < method.min_views:
        strong = method.first_strong_view(method.min_views)
        why = f" ({strong} weak and {method.min_views - strong} strong)" if strong is not None and strong > 0 else ""
        raise UsageError(f"method {cfg.method} compares passes and needs views >= {method.min_views}{why}, "
                         f"got {cfg.views}")
    if cfg.optimizer not in ("sgd", "adam"):
        raise UsageError(f"unknown optimizer {cfg.optimizer!r}; choose one of: adam, sgd")
    if cfg.precision not in ("fp32", "bf16"):
        raise UsageError(f"unknown precision {cfg.precision!r}; choose fp32 or bf16")
    if cfg.schedule not in ("cosine", "exp", "constant"):
        raise UsageError(f"unknown schedule {cfg.schedule!r}; choose one of: constant, cosine, exp")
    return cfg


def resolve_config(preset: str = "default", config_file: str | Path | None = None,
                   overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the preset, then a YAML file, then explicit overrides; validated."""
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose one of: {', '.join(sorted(PRESETS))}")
    values: dict[str, Any] = dict(PRESETS[preset])
    if config_file is not None:
        values.update(load_yaml(config_file))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    cfg = from_dict(values)
    if cfg.labels is None:
        cfg = dataclasses.replace(cfg, labels=default_labels(cfg.dataset))
    return validate(cfg)


def default_labels(dataset: str) -> int:
    """100 labelled images for a built-in dataset, every labelled image (0) for the user's own."""
    return 0 if ":" in dataset or dataset == "arrays" else 100


def from_dict(values: dict[str, Any]) -> TrainConfig:
    known = {f.name: f for f in fields(TrainConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UsageError(f"unknown config key(s): {', '.join(unknown)}")
    checked = {k: _check_type(k, v, str(known[k].type)) for k, v in values.items()}
    return TrainConfig(**checked)


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UsageError(f"config file {path} must hold a mapping of keys to values")
    return values
