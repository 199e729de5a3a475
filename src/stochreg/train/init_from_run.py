"""``--init RUN``: the next round of a person's labelling starts from the weights of the run before it.

After labelling the images ``stochreg suggest`` listed, a new run on the folder starts from the previous
run's reported weights (its EMA where it kept one) rather than from ImageNet or at random: the same
network (``--net`` left at auto takes the run's), at the same input size; the recipe's other choices (the
learning rate of a network that starts trained among them) are as for a run without it. Where the classes are the same
every tensor is loaded; where they changed (a class added, renamed or removed) the classifier starts new
and the rest is loaded. The run folder or its ``checkpoint.pt`` is read with ``weights_only=True``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch import nn

from ..config import AUTO, TrainConfig
from ..errors import DataError, UsageError
from ..runtime.checkpoints import load_checkpoint


def init_checkpoint(init: str) -> tuple[Path, dict[str, Any]]:
    """The checkpoint ``--init`` names (a finished run's folder, or a checkpoint file) and its contents."""
    path = Path(init).expanduser()
    if path.is_dir():
        if not (path / "checkpoint.pt").is_file():
            raise DataError(f"--init {init}: the run has no final checkpoint.pt (unfinished? `stochreg train --resume "
                            f"{init}` completes it, or give one of its checkpoints/step-*.pt)")
        path = path / "checkpoint.pt"
    elif not path.is_file():
        raise DataError(f"--init {init}: no such run folder or checkpoint file")
    state = load_checkpoint(path)
    if "config" not in state or "model" not in state:
        raise DataError(f"--init {init}: {path} is not a stochreg checkpoint")
    return path, state


def check_init_alone(given: TrainConfig) -> None:
    """``--init`` and other starting weights (``--weights``) are refused together, before the recipe reads
    either."""
    if given.init and given.weights not in ("auto", "none"):
        raise UsageError(f"--init {given.init} gives the starting weights already; leave --weights out")


def with_init_network(given: TrainConfig, resolved: TrainConfig,
                      image_shape: tuple[int, int, int]) -> tuple[TrainConfig, list[str]]:
    """The resolved settings with the network of the run ``--init`` starts from (where ``--net`` was left at
    auto: the recipe's other choices stand) and no other starting weights; refused where the images or the
    network do not fit that run's weights. ``given``: the settings before the recipe resolved them."""
    if not given.init:
        return resolved, []
    path, state = init_checkpoint(given.init)
    run_net = state["config"].get("net")
    shape = tuple(int(v) for v in state.get("image_shape", ()))
    if tuple(image_shape) != shape:
        raise UsageError(f"--init {given.init}: the run took images of {shape} (channels, height, width), these are "
                         f"{tuple(image_shape)}; read them as it did (--image-size, --channels) or start afresh")
    reasons = []
    if given.net == AUTO and resolved.net != run_net:
        reasons.append(f"net {run_net}: the network of the run --init starts from")
    elif given.net != AUTO and given.net != run_net:
        raise UsageError(f"--init {given.init} holds weights of {run_net}, not of --net {given.net}; leave --net out")
    reasons.append(f"the network starts from the weights of {path} (--init), not from the recipe's")
    return dataclasses.replace(resolved, net=run_net, weights="none"), reasons


def load_init_weights(model: nn.Module, init: str, class_names: list[str]) -> str:
    """Loads the run's reported weights into ``model``; returns what was loaded, for the run's notes."""
    path, state = init_checkpoint(init)
    weights = state["ema"] if state.get("ema") is not None else state["model"]
    count = int(state.get("num_classes", -1))
    run_names = list(state.get("class_names") or [str(k) for k in range(count)])   # a built-in dataset's: numbers
    same_classes = run_names == list(class_names)
    if same_classes:
        model.load_state_dict(weights)
        return f"the weights of {path} (every tensor)"
    classifier = _classifier_keys(model)
    kept = {key: value for key, value in weights.items() if key not in classifier}
    missing, unexpected = model.load_state_dict(kept, strict=False)
    if set(missing) - classifier or unexpected:
        raise DataError(f"--init {init}: its weights do not fit this network (missing {sorted(missing)[:3]}, "
                        f"unexpected {sorted(unexpected)[:3]})")
    return (f"the weights of {path} but its classifier (its classes {', '.join(run_names)} differ from these: "
            f"{', '.join(class_names)}): the classifier starts new")


def _classifier_keys(model: nn.Module) -> set[str]:
    """The parameter names of the network's last linear layer, the one that gives each class its score."""
    last = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)][-1]
    return {f"{last}.{name}" for name, _ in model.get_submodule(last).named_parameters()}
