"""Loading a trained model back from a run folder or a checkpoint file (safe, weights only).

    >>> run = stochreg.load("runs/mnist@100.s0-ts-me")   # doctest: +SKIP
    >>> run.predict(images).argmax(1)                    # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from ..runtime.checkpoints import load_checkpoint
from ..config import TrainConfig, from_dict
from ..data.datasets import label_names
from .lock import describe_training, live_owner
from ..data.images import image_array, read_each, read_image
from ..data.pixels import as_nchw_uint8
from ..errors import DataError
from ..evaluate import predict_probs
from ..nets import build_net
from .outliers import load_reference, out_of_class_scores


@dataclass
class Run:
    folder: Path
    config: TrainConfig
    model: nn.Module   # in eval mode, on the CPU
    weights: str       # "ema" or "final": the weights the run reported its result with
    image_shape: tuple[int, int, int]
    num_classes: int
    class_names: list[str] | None = None   # the user's class folder names, when trained on them

    @property
    def label_names(self) -> list[str]:
        return label_names(self.class_names, self.num_classes)

    def predict(self, images, passes: int = 1, device: str | torch.device = "cpu") -> torch.Tensor:
        """Class probabilities (N, classes) for ``images``: image files or PIL images, one or a list
        (converted to the model's channels and size), or an array or tensor of images at the model's
        size as ``stochreg.fit`` takes them ((N, H, W), (N, H, W, C) or (N, C, H, W); uint8, or floats in
        0..1 or 0..255); ``passes > 1`` averages that many stochastic passes (dropout and fractional
        max-pooling kept random), as the paper did."""
        return predict_probs(self.model.to(device), self._images(images), self.config.eval_batch, passes, device)

    def out_of_class(self, images, device: str | torch.device = "cpu") -> torch.Tensor:
        """Each image's out-of-class score (0 for one like a labelled training image, up to 2 for one like
        none: runs/outliers.py); ``images`` as :meth:`predict` takes them. Above :attr:`reject_threshold`
        an image looks like none of the classes."""
        reference, _ = load_reference(self.folder)
        return out_of_class_scores(self.model.to(device), self._images(images), reference, self.config.eval_batch,
                                   device)[1]

    @property
    def reject_threshold(self) -> float | None:
        """The out-of-class score above which the run calls an image none of its classes (chosen when it
        trained, on held-out images: runs/outliers.py)."""
        return load_reference(self.folder)[1]

    def _images(self, images) -> torch.Tensor:
        if isinstance(images, (str, Path)) or hasattr(images, "getbands"):   # one file or one PIL image
            images = [images]
        if isinstance(images, (list, tuple)):
            images = self._read(images)
        elif isinstance(images, (np.ndarray, torch.Tensor)):
            images = as_nchw_uint8(images, "images")
        else:
            raise DataError(f"expected image files, PIL images or an array of images, got {type(images).__name__}")
        if tuple(images.shape[1:]) != self.image_shape:
            size = "x".join(map(str, self.image_shape[1:]))
            raise DataError(f"images of {images.shape[1]} channel(s) at {images.shape[2]}x{images.shape[3]}, but the "
                            f"model takes {self.image_shape[0]} at {size}: give files or PIL images (read at "
                            "the model's size), or resize the array")
        return images

    def _read(self, items: list) -> torch.Tensor:
        """A list of image paths, PIL images or single-image arrays as uint8 (N, C, H, W) at the model's size."""
        def read(item) -> np.ndarray:
            if isinstance(item, (str, Path)):
                return read_image(Path(item), self.image_shape)[0]
            if hasattr(item, "getbands"):
                return image_array(item, self.image_shape)[0]
            if isinstance(item, (np.ndarray, torch.Tensor)):   # one image: (H, W), (H, W, C) or (C, H, W)
                array = as_nchw_uint8(item[None], "image")[0].numpy()
                if array.shape != self.image_shape:
                    raise DataError(f"an image array of shape {tuple(item.shape)}, but the model takes "
                                    f"{self.image_shape[0]} channel(s) at {self.image_shape[1]}x{self.image_shape[2]}: "
                                    "give files or PIL images (read at the model's size), or resize the array")
                return array
            raise DataError(f"expected an image file, a PIL image or an image array in the list, got "
                            f"{type(item).__name__}")
        return torch.from_numpy(np.stack(read_each(items, read))) if items else \
            torch.empty((0, *self.image_shape), dtype=torch.uint8)


def load_run(path: str | Path) -> Run:
    """A run folder (``config.yaml`` + ``checkpoint.pt``) or a checkpoint file, as a :class:`Run`."""
    path = Path(path)
    if path.is_file():
        folder, state = path.parent, load_checkpoint(path)
        if "config" not in state:
            raise DataError(f"{path} is not a stochreg checkpoint (it has no config)")
        config = from_dict(state["config"])
    elif path.is_dir():
        folder = path
        try:
            config = from_dict(yaml.safe_load((folder / "config.yaml").read_text()) or {})
        except FileNotFoundError:
            raise DataError(f"{folder} is not a run folder (no config.yaml)") from None
        if not (folder / "checkpoint.pt").exists():
            partial = sorted((folder / "checkpoints").glob("step-*.pt"))
            latest = f"; `stochreg eval {partial[-1]}` evaluates its latest checkpoint" if partial else ""
            owner = live_owner(folder)
            if owner is not None:
                raise DataError(f"run {folder} is still training ({describe_training(folder, owner)}): its final "
                                f"model is written when it ends{latest}")
            raise DataError(f"run {folder} has no final checkpoint.pt yet (unfinished? `stochreg train --resume "
                            f"{folder}` completes it{latest})")
        state = load_checkpoint(folder / "checkpoint.pt")
    else:
        raise DataError(f"run folder {path} does not exist")
    if "image_shape" not in state or "num_classes" not in state:
        raise DataError(f"checkpoint in {folder} does not say its image shape and classes")
    shape, classes = tuple(int(v) for v in state["image_shape"]), int(state["num_classes"])
    model = build_net(config.net, shape, classes, config.dropout)
    weights = "ema" if state.get("ema") is not None else "final"
    try:
        model.load_state_dict(state["ema"] if weights == "ema" else state["model"])
    except (RuntimeError, KeyError) as exc:
        raise DataError(f"checkpoint in {folder} does not match network {config.net}: {str(exc).splitlines()[0]}") from None
    return Run(folder, config, model.eval(), weights, shape, classes, state.get("class_names"))


load = load_run
