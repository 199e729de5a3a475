"""benchmarks/flip_average.py on a tiny real run: its single-pass validation error is the run's own."""
from __future__ import annotations

import pytest

import json

import torch

from benchmark_scripts import load_benchmark
from stochreg.cli import main
from stochreg.runs.trained import load_run
from test_error_analysis import TINY


@pytest.mark.end_to_end
def test_flip_average_of_a_tiny_run(tiny_data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data-dir", str(tiny_data_dir), "--out", str(run), "--val-size", "30", *TINY]) == 0
    flip = load_benchmark("flip_average")
    flip.main([str(run), "--results", str(tmp_path / "json")])
    found = json.loads((tmp_path / "json" / "run.json").read_text())
    results = json.loads((run / "results.json").read_text())
    assert found["val_size"] == 30 and abs(found["val_error"] - results["val_error"]) < 1e-6
    assert found["val_errors_flip_average"] == round(found["val_error_flip_average"] * 30)
    assert "averaged with the mirror image" in capsys.readouterr().out
    # the average of an image and its mirror image is the same for the mirror image
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    model = load_run(run).model
    assert torch.allclose(flip.mirror_averaged(model, images, 4), flip.mirror_averaged(model, images.flip(-1), 4),
                          atol=1e-6)
