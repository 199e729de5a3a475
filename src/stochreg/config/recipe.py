"""The recipe chosen from the data: the settings left at ``auto`` resolved from what the images are.

- ``method``, ``views``, ``batch_unlabelled``: digit datasets get ts-me-fixmatch (the paper's
  TS + ME over 4 weak views, FixMatch's term on a 5th, strong one) with 5 views of 32 unlabelled
  images; other images FixMatch alone with its weak and its strong view of 80 unlabelled images
  (the same 160 unlabelled passes a step). A method named on the command line keeps 5 views of 32.
- ``transform``: digit datasets get the authors' digit transform (stretch, slant, rotation, a
  small shift, never flipped); other images random shifts ("crop"), with horizontal flips unless
  ``--no-flip`` says that a mirror changes the class (text, digits).
- ``net``: by image size: the compact CPU net up to 28 px, WRN-28-2 below 64 px; from 64 px (photos, scans,
  inspection images) EfficientNet-Lite0 from ImageNet weights (``--weights``), fine-tuned at learning rate
  0.01 on the labels (``method`` supervised) for 300 steps, the unlabelled images giving the class prior the
  final model answers with (``class_prior`` estimated): on the one real data set measured (ELPV, 40 labels),
  FixMatch's unlabelled term raised the validation error, and a network trained from scratch needs hours
  on a CPU for less (benchmarks/tuning.md). A method or network named on the command line keeps the rest.
- ``net``, ``iters``, ``lambda_u``, ``dropout`` together, where the recipe's method is FixMatch on
  images of up to 28 px: the compact net at three-quarter width without dropout for 9,200 steps
  with the unlabelled term at weight 2 (chosen on Fashion-MNIST-400's validation split at about 1.1
  times the minutes of 6,000 steps of the full-width net). Elsewhere 6,000 steps, weight 1, and
  the network's own dropout.
- ``lambda_graph``: the label-propagation graph term (weight 3) only where propagation over the
  training images' neighbour graph gives at least 90% of the labelled images their own hidden
  label (:func:`stochreg.terms.propagation.held_out_accuracy`): the term pulls every unlabelled view toward
  its propagated label about as hard as the labels pull, so labels that are often wrong would
  teach mistakes. Decided from the labelled split alone, never from test labels.
- ``precision``, ``iters``, ``graph_fade_iters`` together, for the digit recipe (ts-me-fixmatch on
  digits), the graph term fading to 0 over the whole run: on a CPU that computes bf16 natively
  (AVX-512 BF16 or AMX) bfloat16 autocast for 4,800 steps, about half the minutes of 6,000 float32
  steps there for the same validation error; elsewhere float32 for 6,000 steps, where the fade
  lowered the validation error (benchmarks/tuning.md). On other CPUs bf16 is emulated and slower,
  and on GPUs and other recipes it was not validated. A precision given on the command line keeps
  6,000 steps at full graph weight, the digit recipe before these choices.

Every choice comes with its reason, which the run prints first and keeps in results.json and
summary.md; config.yaml holds the resolved values, so that a rerun or a resume is exact.

    >>> from stochreg.config import TrainConfig
    >>> cfg, why = resolve_data_recipe(TrainConfig(), image_shape=(3, 64, 64), is_digits=False)
    >>> cfg.method, cfg.transform, cfg.net, cfg.lr, cfg.iters, cfg.class_prior
    ('supervised', 'imagenet', 'efficientnet-lite0', 0.01, 300, 'estimated')
    >>> cfg, why = resolve_data_recipe(TrainConfig(), image_shape=(3, 32, 32), is_digits=False)
    >>> cfg.method, cfg.views, cfg.batch_unlabelled, cfg.net, cfg.iters
    ('fixmatch', 2, 80, 'wrn-28-2', 6000)
    >>> cfg, why = resolve_data_recipe(TrainConfig(), image_shape=(1, 28, 28), is_digits=False)
    >>> cfg.net, cfg.iters, cfg.lambda_u, cfg.dropout
    ('compact-medium', 9200, 2.0, 0.0)
    >>> cfg, why = resolve_data_recipe(TrainConfig(), image_shape=(1, 28, 28), is_digits=True, native_bf16_cpu=True)
    >>> cfg.precision, cfg.iters, cfg.graph_fade_iters
    ('bf16', 4800, 4800)
    >>> cfg, why = resolve_data_recipe(TrainConfig(), image_shape=(1, 28, 28), is_digits=True, native_bf16_cpu=False)
    >>> cfg.precision, cfg.iters, cfg.graph_fade_iters
    ('fp32', 6000, 6000)
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ..nets import takes_dropout
from ..pretrained import weights_source
from .load import validate
from .settings import AUTO, DEFAULT_ITERS, DEFAULT_LAMBDA_U, DIGIT_RECIPE_METHOD, TrainConfig

# benchmarks/DECISIONS.md, row graph-term
GRAPH_WEIGHT = 3.0
GRAPH_MIN_HELD_OUT_ACCURACY = 0.9
# (views, unlabelled images a step): the digit recipe's, kept by any method named explicitly, and
# FixMatch's weak + strong pair over as many unlabelled passes a step (benchmarks/DECISIONS.md, rows
# digit-method and small-images-method).
DEFAULT_VIEWS_AND_BATCH = (5, 32)
FIXMATCH_VIEWS_AND_BATCH = (2, 80)
# (net, steps, weight of the unlabelled term, dropout) of the FixMatch recipe on images of up to 28 px:
# a narrower net takes more, cheaper steps in about the same minutes; the strong views are its
# perturbation, and dropout on the weak view only blurs the pseudo-labels (benchmarks/DECISIONS.md, rows
# small-fixmatch and small-fixmatch-dropout).
SMALL_FIXMATCH = ("compact-medium", 9200, 2.0, 0.0)
# Images from this side (photos, scans, inspection images; not the 28- and 32-pixel benchmarks) start from an
# ImageNet network, fine-tuned at a tenth of the learning rate from scratch (benchmarks/DECISIONS.md, row
# photo-recipe).
PRETRAINED_FROM_SIDE = 64
PRETRAINED_NET = "efficientnet-lite0"
DEFAULT_LR, PRETRAINED_LR = 0.1, 0.01
# The rest of that recipe: fine-tuning on the labels, a few hundred steps (minutes on a CPU at 128 px).
PHOTO_METHOD = "supervised"
PRETRAINED_VALUES = {"iters": 300}
# The digit recipe's steps in bfloat16: about half the minutes of its 6,000 float32 steps on a CPU
# that computes bf16 natively; with the graph term fading over them it matches their validation error
# (benchmarks/DECISIONS.md, rows digit-bf16 and digit-fp32-fade).
BF16_DIGIT_ITERS = 4800


def recipe_method(is_digits: bool) -> str:
    """The method an ``auto`` method resolves to."""
    return DIGIT_RECIPE_METHOD if is_digits else "fixmatch"


def resolve_data_recipe(cfg: TrainConfig, image_shape: tuple[int, int, int], is_digits: bool,
                        native_bf16_cpu: bool = False) -> tuple[TrainConfig, list[str]]:
    """``cfg`` with its ``auto`` settings resolved from the images (and, for the precision, from
    ``native_bf16_cpu``: training runs on a CPU that computes bfloat16 natively); and the reasons."""
    reasons, changes = [], {}
    channels, height, width = image_shape
    kind = "colour" if channels == 3 else ("grayscale" if channels == 1 else f"{channels}-channel")
    side = max(height, width)
    pretrained_start = cfg.net == AUTO and not is_digits and side >= PRETRAINED_FROM_SIDE
    if cfg.method == AUTO and pretrained_start:
        changes["method"] = PHOTO_METHOD
        reasons.append(f"method {PHOTO_METHOD}: {side}-pixel {kind} images (photos, scans) fine-tune an ImageNet "
                       "network on the labels; FixMatch's unlabelled term raised the validation error of the one real "
                       "data set measured (benchmarks/tuning.md), so the unlabelled images give the class prior here")
    elif cfg.method == AUTO:
        changes["method"] = recipe_method(is_digits)
        reasons.append(f"method {changes['method']}: " + (
            "the images are digits (the paper's TS + ME over 4 weak views, FixMatch's term on a 5th, strong one)"
            if is_digits else f"{kind} images that are not digits (FixMatch alone: TS at the digits' weight "
                              "fights the labels there)"))
    views, batch = FIXMATCH_VIEWS_AND_BATCH if changes.get("method") == "fixmatch" else DEFAULT_VIEWS_AND_BATCH
    if cfg.views is None or cfg.batch_unlabelled is None:
        changes["views"] = cfg.views if cfg.views is not None else views
        changes["batch_unlabelled"] = cfg.batch_unlabelled if cfg.batch_unlabelled is not None else batch
        if "method" in changes and changes["method"] != PHOTO_METHOD:   # supervised takes no unlabelled image
            reasons.append(f"views {changes['views']} of {changes['batch_unlabelled']} unlabelled images a step "
                           f"for method {changes['method']}")
    if cfg.transform == AUTO:
        if is_digits:
            changes["transform"] = "digits"
            reasons.append("transform digits: the images are digits (stretch, slant, rotation, a 2-pixel shift; "
                           "never flipped)")
        elif pretrained_start:
            flips = cfg.flip is not False
            changes["transform"] = "imagenet" if flips else "imagenet-noflip"
            reasons.append(f"transform {changes['transform']}: {side}-pixel images get shifts of up to an eighth of "
                           "their side, a mild stretch and rotation"
                           + (" and horizontal flips (--no-flip where a "
                                                                        "mirror changes the class)" if flips else
                                                                        ", no flips (--no-flip)"))
        else:
            flips = cfg.flip is not False
            changes["transform"] = "crop-flip" if flips else "crop"
            reasons.append(f"transform {changes['transform']}: {kind} images that are not digits get random shifts"
                           + (" and horizontal flips (--no-flip where a mirror changes the class)" if flips
                              else ", no flips (--no-flip)"))
    small_fixmatch = changes.get("method") == "fixmatch" and side <= 28
    if cfg.net == AUTO:
        if pretrained_start:
            changes["net"] = PRETRAINED_NET
            reasons.append(f"net {PRETRAINED_NET}: {side}-pixel images (photos, scans, inspection images) start from "
                           "ImageNet weights, fine-tuned: a network trained from scratch on a few labels learns "
                           "less in many more minutes")
        elif small_fixmatch:
            changes["net"] = SMALL_FIXMATCH[0]
            reasons.append(f"net {changes['net']}: {side}-pixel images with the FixMatch recipe (the compact net at "
                           "three-quarter width, so that more steps fit in the same minutes)")
        else:
            changes["net"] = "compact" if side <= 28 else ("wrn-28-2" if side < PRETRAINED_FROM_SIDE else "resnet18")
            reasons.append(f"net {changes['net']}: {side}-pixel images (compact up to 28 px, wrn-28-2 below "
                           f"{PRETRAINED_FROM_SIDE})")
    precision_left = cfg.precision == AUTO
    cfg, why = resolve_precision(dataclasses.replace(cfg, **changes), is_digits, native_bf16_cpu)
    reasons += [why] if why else []
    # the digit recipe's schedule comes with the precision it chose; a precision given keeps full graph weight
    digit_schedule = precision_left and is_digits and cfg.method == recipe_method(True)
    bf16_digits = digit_schedule and cfg.precision == "bf16"
    recipe_values = (dict(zip(("iters", "lambda_u", "dropout"), SMALL_FIXMATCH[1:])) if small_fixmatch
                     else {"iters": BF16_DIGIT_ITERS if bf16_digits else DEFAULT_ITERS,
                           "lambda_u": DEFAULT_LAMBDA_U})   # and the net's own dropout
    if not takes_dropout(cfg.net):
        recipe_values.pop("dropout", None)   # a net the user named may have no dropout rate
    # the values that differ from the plain defaults are explained
    explained = ({name: "the FixMatch recipe for images of up to 28 px" for name in recipe_values} if small_fixmatch
                 else {"iters": "the digit recipe in bfloat16"} if bf16_digits else {})
    if cfg.lr is None:
        starts_trained = weights_source(cfg.net, cfg.weights) != "none"
        recipe_values["lr"] = PRETRAINED_LR if starts_trained else DEFAULT_LR
        explained["lr"] = "a network that starts from pretrained weights is fine-tuned at a tenth of the rate"
    changes = {}
    if cfg.class_prior == AUTO:
        changes["class_prior"] = "estimated" if pretrained_start else "labelled"
        if pretrained_start:
            reasons.append("class_prior estimated: photos and scans are often of unbalanced classes, and a labelled "
                           "split of as many images of each class teaches equal odds; the final answers take the "
                           "proportions of the unlabelled images")
    if pretrained_start:
        recipe_values.update(PRETRAINED_VALUES)
        explained.update({name: "the recipe for photos and scans" for name in PRETRAINED_VALUES})
    for name, value in recipe_values.items():
        if getattr(cfg, name) is None:
            changes[name] = value
            if name in explained and (name != "lr" or value != DEFAULT_LR):
                reasons.append(f"{name} {value:g}: {explained[name]}")
    if cfg.graph_fade_iters is None:   # the propagated labels guide the start of a digit-recipe run only
        fades = digit_schedule and cfg.lambda_graph != 0
        changes["graph_fade_iters"] = changes.get("iters", cfg.iters) if fades else 0
        if fades:
            reasons.append(f"graph_fade_iters {changes['graph_fade_iters']}: the digit recipe fades the graph term "
                           "to 0 over the whole run")
    return validate(dataclasses.replace(cfg, **changes)), reasons


def resolve_precision(cfg: TrainConfig, is_digits: bool, native_bf16_cpu: bool) -> tuple[TrainConfig, str | None]:
    """``cfg`` with an ``auto`` precision resolved, and the reason where the digit recipe makes the
    choice (None elsewhere); ``native_bf16_cpu``: training runs on a CPU that computes bfloat16 natively.

    >>> resolve_precision(TrainConfig(method="ts-me-fixmatch"), is_digits=True, native_bf16_cpu=True)[0].precision
    'bf16'
    >>> resolve_precision(TrainConfig(method="fixmatch"), is_digits=False, native_bf16_cpu=True)[0].precision
    'fp32'
    """
    if cfg.precision != AUTO:
        return cfg, None
    digit_recipe = is_digits and cfg.method == recipe_method(True)
    if digit_recipe and native_bf16_cpu:
        return dataclasses.replace(cfg, precision="bf16"), (
            "precision bf16: the digit recipe on a CPU that computes bfloat16 natively (4,800 steps with the graph "
            "term fading over them, for float32's validation error at 6,000 steps in about half its minutes; "
            "--precision fp32 for 6,000 float32 steps)")
    return dataclasses.replace(cfg, precision="fp32"), (
        "precision fp32: bfloat16 is the digit recipe's only on CPUs that compute it natively (AVX-512 BF16, "
        "AMX), which this run's device is not" if digit_recipe else None)


def graph_decision(accuracy: float | None, why_not: str | None = None) -> tuple[float, str]:
    """The graph term's weight and its reason, from the held-out accuracy of the labelled images
    (None with ``why_not`` where no graph can be built)."""
    if accuracy is None:
        return 0.0, f"lambda_graph 0: {why_not}"
    verdict = "at least" if accuracy >= GRAPH_MIN_HELD_OUT_ACCURACY else "under"
    weight = GRAPH_WEIGHT if accuracy >= GRAPH_MIN_HELD_OUT_ACCURACY else 0.0
    return weight, (f"lambda_graph {weight:g}: label propagation gives {100 * accuracy:.1f}% of the labelled "
                    f"images their own label when it is hidden, {verdict} the "
                    f"{100 * GRAPH_MIN_HELD_OUT_ACCURACY:.0f}% the graph term needs")


def with_saved_choices(cfg: TrainConfig, saved: dict[str, Any]) -> TrainConfig:
    """``cfg`` with its ``auto`` settings taken from a run's saved (resolved) config, so that the
    command that started a run compares equal to it when it comes to continue it."""
    auto = {"method": cfg.method == AUTO, "views": cfg.views is None, "batch_unlabelled": cfg.batch_unlabelled is None,
            "transform": cfg.transform == AUTO, "net": cfg.net == AUTO, "lambda_graph": cfg.lambda_graph is None,
            "iters": cfg.iters is None, "lambda_u": cfg.lambda_u is None, "dropout": cfg.dropout is None,
            "precision": cfg.precision == AUTO, "graph_fade_iters": cfg.graph_fade_iters is None,
            "lr": cfg.lr is None, "class_prior": cfg.class_prior == AUTO}
    return dataclasses.replace(cfg, **{name: saved[name] for name, is_auto in auto.items() if is_auto and name in saved})
