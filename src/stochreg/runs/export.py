"""``stochreg export``: a trained model as a file other programs run, with a JSON sidecar.

The exported model takes float32 images (N, C, H, W) with pixel values divided by 255 (no other
normalisation), at the run's image size, and returns each class's probability (the softmax is
part of the model). The sidecar ``MODEL.json`` says all of that, with the class names. Formats: ONNX
(any runtime), a torch.export program (``pt2``: ``torch.export.load(path).module()``, torch's
successor to TorchScript) and TorchScript (``torch.jit.load``, which torch now deprecates). On
export the file is run (onnxruntime for ONNX, torch for the others) on a few images and its
probabilities compared with what ``stochreg predict`` gives; a difference is an error.

    >>> export_model("runs/photos", "onnx")            # doctest: +SKIP
    (PosixPath('runs/photos/model.onnx'), PosixPath('runs/photos/model.json'), 8)
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..errors import DataError, UsageError
from .trained import Run, load_run

FORMATS = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".pt"}
CHECK_IMAGES = 8
TOLERANCE = 1e-4   # largest difference in any probability between the file and stochreg itself


class Probabilities(nn.Module):
    """The run's network followed by a softmax: float images in [0, 1] to class probabilities."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(images), dim=1)


def sidecar(run: Run, file: Path, fmt: str) -> dict:
    c, h, w = run.image_shape
    names = run.label_names
    return {
        "file": file.name, "format": fmt, "exported_by": f"stochreg {__version__}", "run": str(run.folder),
        "weights": run.weights,
        "input": {"name": "images", "shape": ["N", c, h, w], "dtype": "float32", "layout": "NCHW",
                  "channels": {1: "grayscale", 3: "RGB"}.get(c, f"{c} channels"),
                  "normalisation": "pixel values (0-255) divided by 255; no mean or standard deviation",
                  "resize": f"to {w}x{h} (bilinear) when an image has another size",
                  # how stochreg reads an image file, so that another program feeds the model the same pixels
                  # (docs/export.md holds a program that takes these steps)
                  "reading": reading_steps(c, h, w)},
        "output": {"name": "probabilities", "shape": ["N", run.num_classes], "meaning": "softmax over the classes"},
        "class_names": names,
    }


def reading_steps(c: int, h: int, w: int) -> list[str]:
    """Every step from an image file to the model's input, in order, as data/images.py takes them."""
    mode = "L" if c == 1 else "RGB"
    return [
        "opened with Pillow (PIL)",
        f"JPEG only: decoded at a reduced scale, PIL Image.draft('{mode}', ({w}, {h})) before the pixels load "
        f"(({h}, {w}) when the EXIF orientation is 5-8): the smallest of 1/1, 1/2, 1/4, 1/8 of the stored size "
        f"that is at least that size" + ("; the luma channel decoded directly" if c == 1 else ""),
        "turned upright by its EXIF orientation (PIL ImageOps.exif_transpose)",
        "16/32-bit integer pixels: clipped to 0-65535, divided by 257, rounded; float pixels: times 255 when all "
        "lie in 0-1, else taken as 0-255, rounded",
        "transparency (RGBA, LA, PA, a palette with a transparent colour): composited on white",
        f"converted to {mode} (PIL Image.convert; grayscale from colour is ITU-R 601-2 luma)",
        f"resized to {w}x{h} when its size differs (PIL Image.resize, BILINEAR), the aspect not kept",
        "float32, divided by 255, channels first (NCHW)"]


def check_images(run: Run) -> torch.Tensor:
    """A few uint8 images to compare the exported file on: smooth seeded random pictures, so that
    the predictions are not all ties."""
    generator = torch.Generator().manual_seed(0)
    c, h, w = run.image_shape
    coarse = torch.randint(0, 256, (CHECK_IMAGES, c, max(1, h // 4), max(1, w // 4)), generator=generator)
    return torch.nn.functional.interpolate(coarse.float(), size=(h, w), mode="bilinear").round().to(torch.uint8)


def _run_file(path: Path, fmt: str, x: np.ndarray) -> np.ndarray:
    if fmt == "onnx":
        import onnxruntime
        inference = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return inference.run(["probabilities"], {"images": x})[0]
    module = torch.export.load(str(path)).module() if fmt == "pt2" else torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def export_model(run_path: str | Path, fmt: str, out: str | Path | None = None) -> tuple[Path, Path, int]:
    """Writes the run's model as ``fmt`` (onnx, pt2 or torchscript) and its sidecar, checks the file's
    predictions against stochreg's own; returns (model file, sidecar, images checked)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401  (torch's exporter needs it)
            import onnxruntime  # noqa: F401
        except ImportError:
            raise UsageError("ONNX export needs the onnx and onnxruntime packages: pip install 'stochreg[export]'") from None
    run = load_run(run_path)
    folder = run.folder if Path(run_path).is_dir() else Path(run_path).parent
    path = Path(out) if out else folder / f"model{FORMATS[fmt]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    model = Probabilities(run.model.cpu().eval()).eval()
    images = check_images(run)
    x = images.float().div(255)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the exporters' notes on their own future
        if fmt == "onnx":
            torch.onnx.export(model, (x,), str(path), input_names=["images"], output_names=["probabilities"],
                              dynamic_axes={"images": {0: "N"}, "probabilities": {0: "N"}}, dynamo=False)
        elif fmt == "pt2":   # any batch size, as the ONNX file
            torch.export.save(torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("N")},)),
                              str(path))
        else:
            torch.jit.trace(model, x).save(str(path))
    expected = run.predict(images).numpy()
    got = _run_file(path, fmt, x.numpy())
    difference = float(np.abs(got - expected).max())
    if got.shape != expected.shape or difference > TOLERANCE or (got.argmax(1) != expected.argmax(1)).any():
        raise DataError(f"the exported {path} does not give stochreg's predictions (largest probability "
                        f"difference {difference:.2g}); it is left there for inspection")
    meta = path.with_suffix(".json")
    meta.write_text(json.dumps({**sidecar(run, path, fmt), "checked": {"images": len(images),
                                "largest_probability_difference": difference}}, indent=2) + "\n")
    return path, meta, len(images)
