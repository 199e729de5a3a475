"""stochreg export: the ONNX file (run by onnxruntime), the torch.export program and the TorchScript
file give the probabilities stochreg predict gives, and their sidecar says how to feed them."""
from __future__ import annotations

import csv
import json

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image

import stochreg
from stochreg.cli import main
from stochreg.runs.trained import load_run
from test_own_folders import write_photos
from test_user_data import TRAIN

pytestmark = pytest.mark.end_to_end   # every test here trains a model, or reads one a fixture trained


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory):
    """The README's own-images command on photo-like JPEGs of mixed sizes, without a test folder."""
    root = tmp_path_factory.mktemp("photos")
    write_photos(root / "photos")
    run = root / "run"
    assert main(["train", "--data", str(root / "photos"), "--labels", "0", "--transform", "crop-flip",
                 "--lambda-graph", "0", *TRAIN, "--out", str(run)]) == 0
    return root, run


def feed(image_files, shape) -> np.ndarray:
    """What the sidecar says to do: RGB, resized to the input size, pixels / 255, NCHW float32."""
    c, h, w = shape
    arrays = [np.asarray(Image.open(f).convert("RGB").resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
              for f in image_files]
    return (np.stack(arrays) / 255).transpose(0, 3, 1, 2).astype(np.float32)


def test_onnx_export_runs_in_onnxruntime_with_predicts_answers(photo_run, capsys):
    root, run = photo_run
    assert main(["export", str(run), "--format", "onnx"]) == 0
    assert "the same probabilities as stochreg predict" in capsys.readouterr().out
    meta = json.loads((run / "model.json").read_text())
    assert meta["class_names"] == ["cat", "dog", "owl"] and meta["input"]["shape"] == ["N", 3, 16, 16]
    assert meta["input"]["normalisation"].startswith("pixel values (0-255) divided by 255")
    assert meta["input"]["reading"][-3:] == [
        "converted to RGB (PIL Image.convert; grayscale from colour is ITU-R 601-2 luma)",
        "resized to 16x16 when its size differs (PIL Image.resize, BILINEAR), the aspect not kept",
        "float32, divided by 255, channels first (NCHW)"]
    files = sorted((root / "photos" / "unlabelled").rglob("*.jpg"))
    inference = onnxruntime.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    probabilities = inference.run(None, {"images": feed(files, (3, 16, 16))})[0]
    assert main(["predict", str(run), *map(str, files), "--out", str(root / "p.csv")]) == 0
    rows = list(csv.DictReader(open(root / "p.csv")))
    assert [r["class"] for r in rows] == [meta["class_names"][k] for k in probabilities.argmax(1)]
    assert np.allclose([float(r["confidence"]) for r in rows], probabilities.max(1), atol=1e-4)
    # every class's probability under its folder name
    named = [[float(r[f"p_{name}"]) for name in meta["class_names"]] for r in rows]
    assert np.allclose(named, probabilities, atol=1e-4)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_export_loads_without_stochreg_classes(photo_run, capsys):
    root, run = photo_run
    out = root / "exported" / "classifier.pt"
    assert main(["export", str(run), "--format", "torchscript", "--out", str(out)]) == 0
    module = torch.jit.load(str(out))
    x = torch.rand(3, 3, 16, 16)
    model = load_run(run)
    expected = model.predict((x * 255).round().to(torch.uint8))
    got = module((x * 255).round() / 255)
    assert torch.allclose(got, expected, atol=1e-5)
    assert json.loads(out.with_suffix(".json").read_text())["format"] == "torchscript"


def test_pt2_export_from_python_runs_any_batch_size_without_stochreg_classes(photo_run):
    root, run = photo_run
    assert stochreg.export(run, "pt2") == (run / "model.pt2", run / "model.json", 8)   # as `stochreg export`
    module = torch.export.load(str(run / "model.pt2")).module()
    model = load_run(run)
    for batch in (1, 5):
        x = torch.rand(batch, 3, 16, 16)
        expected = model.predict((x * 255).round().to(torch.uint8))
        assert torch.allclose(module((x * 255).round() / 255), expected, atol=1e-5)
    meta = json.loads((run / "model.json").read_text())
    assert meta["format"] == "pt2" and meta["file"] == "model.pt2"


def test_export_of_a_missing_run_is_one_line(photo_run, capsys):
    root, run = photo_run
    assert main(["export", str(root / "nothing")]) == 2
    assert capsys.readouterr().err.startswith("stochreg: error: run folder")
