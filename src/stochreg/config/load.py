"""From defaults, a preset, a YAML file and flags to one checked :class:`TrainConfig`."""
from __future__ import annotations

import dataclasses
import difflib
import math
from pathlib import Path
from typing import Any

import yaml

from ..data.datasets import check_dataset_name
from ..errors import UsageError
from ..methods import METHODS
from ..nets import check_dropout_setting
from ..pretrained import WEIGHT_CHOICES, weights_source
from ..augment.transforms import TRANSFORMS
from .presets import PRESETS
from .settings import AUTO, DEFAULT_ITERS, DEFAULT_LAMBDA_U, DIGIT_RECIPE_METHOD, TrainConfig, field_type


def _check_type(name: str, value: Any, f: dataclasses.Field) -> Any:
    kind, optional = field_type(f)
    annotation = str(f.type)
    if value is None and optional:
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise UsageError(f"config key {name!r} must be true or false{' or null' if optional else ''}, "
                             f"got {value!r}")
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise UsageError(f"config key {name!r} must be {annotation}, got {value!r}")
    return value


def _check_bounds(cfg: TrainConfig) -> None:
    """Each field's bound from its declaration (settings.py)."""
    for f in dataclasses.fields(TrainConfig):
        value = getattr(cfg, f.name)
        kind, _ = field_type(f)
        if value is None:
            continue
        if f.metadata["positive"] and value <= 0:
            raise UsageError(f"{f.name} must be positive, got {value}")
        if f.metadata["minimum"] is not None:
            if kind is float and (not math.isfinite(value) or value < f.metadata["minimum"]):
                raise UsageError(f"{f.name} must be a finite number >= 0, got {value}")
            if kind is int and value < f.metadata["minimum"]:
                raise UsageError(f"{f.name} must be >= 0, got {value}")


def validate(cfg: TrainConfig) -> TrainConfig:
    """Checks values and cross-field rules; raises UsageError with one clear line."""
    check_dataset_name(cfg.dataset)
    if cfg.net != AUTO:
        check_dropout_setting(cfg.net, cfg.dropout)   # with --net auto: when the net is chosen
    if cfg.transform != AUTO:
        TRANSFORMS.get(cfg.transform)
    if cfg.weights not in WEIGHT_CHOICES and not Path(cfg.weights).expanduser().is_file():
        raise UsageError(f"no such weights file: {cfg.weights} (--weights takes a file, or one of "
                         f"{', '.join(WEIGHT_CHOICES)})")
    if cfg.net != AUTO:
        weights_source(cfg.net, cfg.weights)
    method = METHODS.get(cfg.method) if cfg.method != AUTO else None   # auto: checked once chosen (recipe.py)
    if cfg.channels not in (0, 1, 3):
        raise UsageError(f"channels must be 1 (grayscale) or 3 (colour), got {cfg.channels}")
    if not 0 <= cfg.label_fraction <= 1:
        raise UsageError(f"label_fraction must be in [0, 1], got {cfg.label_fraction}")
    if cfg.labels is not None and cfg.labels < 0:
        raise UsageError(f"labels must be >= 0 (0 = every labelled image), got {cfg.labels}")
    _check_bounds(cfg)
    if method is not None and method.uses_unlabelled and cfg.batch_unlabelled is not None and cfg.batch_unlabelled <= 0:
        raise UsageError(f"batch_unlabelled must be positive, got {cfg.batch_unlabelled}")
    if cfg.lr == 0:
        raise UsageError("lr must be positive")
    if cfg.dropout is not None and not 0 <= cfg.dropout < 1:
        raise UsageError(f"dropout must be in [0, 1), got {cfg.dropout}")
    if not 0 <= cfg.ema < 1:
        raise UsageError(f"ema must be in [0, 1), got {cfg.ema}")
    if not 0 <= cfg.threshold <= 1:
        raise UsageError(f"threshold must be in [0, 1], got {cfg.threshold}")
    if not 0 <= cfg.labelled_strong <= 1:
        raise UsageError(f"labelled_strong must be in [0, 1], got {cfg.labelled_strong}")
    if not 0 <= cfg.graph_min_confidence < 1:
        raise UsageError(f"graph_min_confidence must be in [0, 1), got {cfg.graph_min_confidence}")
    if method is not None and not method.strong_views and cfg.labelled_strong > 0:
        raise UsageError(f"labelled_strong applies the strong augmentation of methods with strong views; "
                         f"method {cfg.method} has none")
    if method is not None and cfg.separate_targets and not method.target_views:
        raise UsageError(f"separate_targets runs the views that only give targets in a pass of their own; "
                         f"method {cfg.method} has none (fixmatch has one)")
    if method is not None and cfg.teacher_targets and not method.target_views:
        raise UsageError(f"teacher_targets takes the targets of the views that only give targets from the EMA "
                         f"weights; method {cfg.method} has none (fixmatch has one)")
    if cfg.teacher_targets and cfg.ema <= 0:
        raise UsageError("teacher_targets takes targets from the EMA of the weights: --ema must be > 0 (e.g. 0.995)")
    for name, what in (("flex_threshold", "scales the confidence threshold"),
                       ("dist_align", "aligns the probabilities")):
        if method is not None and getattr(cfg, name) and not method.uses_threshold:
            raise UsageError(f"{name} {what} of pseudo-labels; method {cfg.method} has none (pseudo-label, fixmatch "
                             "and ts-me-fixmatch have them)")
    if method is not None and method.needs_teacher and cfg.ema <= 0:
        raise UsageError(f"method {cfg.method} needs a teacher: the EMA of the weights (--ema > 0, e.g. 0.99)")
    if method is not None and cfg.views is not None and cfg.views < method.min_views:
        strong = method.first_strong_view(method.min_views)
        why = f" ({strong} weak and {method.min_views - strong} strong)" if strong is not None and strong > 0 else ""
        raise UsageError(f"method {cfg.method} compares passes and needs views >= {method.min_views}{why}, "
                         f"got {cfg.views}")
    if cfg.class_prior not in (AUTO, "labelled", "estimated"):
        raise UsageError(f"unknown class_prior {cfg.class_prior!r}; choose labelled, estimated or auto")
    if cfg.optimizer not in ("sgd", "adam"):
        raise UsageError(f"unknown optimizer {cfg.optimizer!r}; choose one of: adam, sgd")
    if cfg.precision not in (AUTO, "fp32", "bf16"):
        raise UsageError(f"unknown precision {cfg.precision!r}; choose fp32, bf16 or auto")
    if cfg.schedule not in ("cosine", "cosine-fixmatch", "exp", "constant"):
        raise UsageError(f"unknown schedule {cfg.schedule!r}; choose one of: constant, cosine, cosine-fixmatch, exp")
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
    # only the recipe chosen from the data sets these otherwise, and the digit recipe's step count
    # depends on the precision the device gives it (recipe.py)
    if cfg.method not in (AUTO, DIGIT_RECIPE_METHOD):
        cfg = dataclasses.replace(cfg, iters=DEFAULT_ITERS if cfg.iters is None else cfg.iters,
                                  lambda_u=DEFAULT_LAMBDA_U if cfg.lambda_u is None else cfg.lambda_u)
    return validate(cfg)


def default_labels(dataset: str) -> int:
    """100 labelled images for a built-in dataset, every labelled image (0) for the user's own."""
    return 0 if ":" in dataset or dataset == "arrays" else 100


def from_dict(values: dict[str, Any]) -> TrainConfig:
    known = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        def named(key: str) -> str:   # a misspelt key names the setting it is closest to
            close = difflib.get_close_matches(key, known, n=1)
            return f"{key} (did you mean {close[0]}?)" if close else key
        raise UsageError(f"unknown config key(s): {', '.join(map(named, unknown))}")
    checked = {k: _check_type(k, v, known[k]) for k, v in values.items()}
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
