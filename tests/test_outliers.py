"""Out-of-class scores: the nearest-labelled-image rule's properties, the list and sheet a run writes, and
``predict``'s score column and ``--reject``, on tiny real folders."""
from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch
from hypothesis import given, settings, strategies as st

import stochreg
from stochreg.cli import main
from stochreg.runs.outliers import KEEP, nearest_labelled, threshold_rule
from test_user_data import TRAIN, write_tree


def test_the_score_is_zero_for_a_labelled_look_alike_one_for_an_unrelated_image_and_at_most_two():
    reference = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    images = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0], [-1.0, -1.0, 0.0], [0.0, 0.5, 0.0]])
    scores, nearest = nearest_labelled(images, reference)
    assert torch.allclose(scores, torch.tensor([0.0, 1.0, 1 + 0.5 ** 0.5, 0.0]), atol=1e-6)
    assert nearest.tolist()[:2] == [0, 0] and nearest[3] == 1


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(1, 8), st.integers(0, 2 ** 31 - 1))
def test_leave_one_out_never_takes_an_image_as_its_own_neighbour(rows, dims, seed):
    features = torch.randn(rows, dims, generator=torch.Generator().manual_seed(seed))
    scores, nearest = nearest_labelled(features, features, leave_one_out=True, chunk=7)
    assert (nearest != torch.arange(rows)).all()
    assert ((scores >= 0) & (scores <= 2 + 1e-6)).all()
    plain, _ = nearest_labelled(features, features, chunk=7)
    assert (plain <= 1e-5).all() and (scores >= plain - 1e-6).all()


def test_the_threshold_keeps_95_percent_of_held_out_images_under_it_and_says_which():
    labelled = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
    held_out = torch.randn(200, 6, generator=torch.Generator().manual_seed(1))
    threshold, rule = threshold_rule(held_out, labelled)
    held_scores, _ = nearest_labelled(held_out, labelled)
    assert abs(float((held_scores <= threshold).float().mean()) - KEEP) < 0.01
    assert rule == "95% of the 200 validation images score under it"
    threshold, rule = threshold_rule(torch.zeros(0), labelled)
    assert rule.startswith("95% of the 40 labelled images, each scored against the others") and threshold > 0


@pytest.mark.end_to_end
def test_a_run_ranks_its_unlabelled_images_and_predict_scores_and_rejects_by_its_threshold(tmp_path, capsys):
    write_tree(tmp_path / "pets", unlabelled=6)
    twin = tmp_path / "pets" / "unlabelled" / "batch1" / "twin.png"   # a copy of a labelled image
    shutil.copy(tmp_path / "pets" / "train" / "cat" / "1.png", twin)
    run = tmp_path / "run"
    assert main(["train", "--dataset", f"folder:{tmp_path / 'pets'}", "--labels", "0", *TRAIN, "--out", str(run)]) == 0
    printed = capsys.readouterr().out
    results = json.loads((run / "results.json").read_text())
    found = results["outliers"]
    assert f"{found['flagged']} of 7 unlabelled images look out of class" in printed and found["pool"] == 7
    with open(run / "outliers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    scores = [float(row["out_of_class_score"]) for row in rows]
    assert len(rows) == 7 and scores == sorted(scores, reverse=True)
    assert rows[-1]["path"] == str(twin) and scores[-1] < 1e-3 and rows[-1]["nearest_labelled_class"] == "cat"
    assert sum(row["out_of_class"] == "yes" for row in rows) == found["flagged"]
    assert (run / "outliers.png").stat().st_size > 0
    assert "| out of class |" in (run / "summary.md").read_text()

    loaded = stochreg.load(run)
    assert loaded.reject_threshold == pytest.approx(found["threshold"], abs=1e-6)
    files = [tmp_path / "pets" / row["path"].split("pets/")[1] for row in rows]
    exact = loaded.out_of_class(files)
    assert torch.allclose(exact, torch.tensor(scores), atol=2e-4)
    ranked = exact.sort(descending=True).values
    middle = float(ranked[2] + ranked[3]) / 2
    assert main(["predict", str(run), *map(str, files), "--reject", f"{middle}", "--out", str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv", newline="") as f:
        predicted = list(csv.DictReader(f))
    given = {str(file): float(score) for file, score in zip(files, exact)}
    assert {row["path"]: row["class"] == "unknown" for row in predicted} == {
        path: score > middle for path, score in given.items()}
    assert {row["predicted"] for row in predicted if row["class"] == "unknown"} == {"-1"}
    assert all(abs(float(row["out_of_class"]) - given[row["path"]]) < 1e-5 for row in predicted)


def test_the_benchmarks_auroc_is_the_chance_that_a_foreign_image_scores_above_a_known_one():
    import numpy as np
    from benchmark_scripts import load_benchmark
    auroc = load_benchmark("open_set").auroc
    foreign = np.array([True, True, False, False, False])
    assert auroc(np.array([0.9, 0.8, 0.1, 0.2, 0.3]), foreign) == 1.0
    assert auroc(np.array([0.1, 0.2, 0.9, 0.8, 0.7]), foreign) == 0.0
    assert auroc(np.array([0.5, 0.5, 0.5, 0.5, 0.5]), foreign) == 0.5
    assert auroc(np.array([0.9, 0.2, 0.1, 0.3, 0.25]), foreign) == pytest.approx(4 / 6)
