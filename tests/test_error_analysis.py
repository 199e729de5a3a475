"""benchmarks/error_analysis.py on two tiny real runs: its counts agree with the runs' own."""
from __future__ import annotations

import pytest

import json

import torch

from benchmark_scripts import load_benchmark
from stochreg.cli import main
from stochreg.runs.trained import load_run

TINY = ["--labels", "20", "--iters", "20", "--batch-labelled", "10", "--batch-unlabelled", "8", "--views", "3",
        "--eval-every", "0", "--eval-batch", "50", "--rampup-iters", "5", "--no-progress", "--threads", "2",
        "--net", "compact-small", "--transform", "none", "--lr", "0.05"]


@pytest.mark.end_to_end
def test_error_analysis_of_two_runs(tiny_data_dir, tmp_path, capsys):
    runs = [tmp_path / "a", tmp_path / "b"]
    for seed, run in enumerate(runs):
        assert main(["train", "--data-dir", str(tiny_data_dir), "--out", str(run), "--init-seed", str(seed), *TINY]) == 0
    capsys.readouterr()
    analysis = load_benchmark("error_analysis")
    assert analysis.main([*map(str, runs), "--reference", str(runs[1]), "--feature-graph", "--passes", "3",
                          "--ensemble"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(lines) == 3
    first, second, ensemble = lines
    results = json.loads((runs[0] / "results.json").read_text())
    assert first["test_errors"] == results["test_errors"] and first["pool_images"] == 200 - 20
    assert second["test_errors_shared_with_reference"] == second["test_errors"]   # its own reference
    assert second["own_test_confusions"] == []
    assert 0 <= first["test_errors_shared_with_reference"] <= min(first["test_errors"], second["test_errors"])
    graph = first["feature_graph"]
    assert graph["pool_errors"] == first["pool_errors"] - graph["fixes"] + graph["breaks"]
    assert ensemble["shared_test_errors"] <= min(first["test_errors"], second["test_errors"])
    # the features are the input of the last linear layer: that layer maps them to the logits
    run = load_run(runs[0])
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    features, _ = analysis.learnt_features(run.model, images)
    logits = run.model[-1](features)
    assert torch.allclose(logits.softmax(1), run.predict(images), atol=1e-5)
