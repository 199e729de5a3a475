"""``stochreg suggest``: a run's unlabelled images ranked for labelling, written as a CSV list and a
contact sheet, from the command line and from Python."""
from __future__ import annotations

import csv
import json

import pytest
import torch

import stochreg
from stochreg.cli import main
from stochreg.errors import DataError
from stochreg.runs.suggest import rank_for_labelling
from test_user_data import TRAIN, write_tree


def test_the_least_sure_images_come_first_and_the_guessed_classes_take_turns():
    probs = torch.tensor([[0.50, 0.45, 0.05],   # class 0, margin 0.05
                          [0.90, 0.05, 0.05],   # class 0, sure
                          [0.60, 0.35, 0.05],   # class 0, margin 0.25
                          [0.10, 0.70, 0.20],   # class 1, margin 0.5
                          [0.30, 0.30, 0.40]])  # class 2, margin 0.1
    assert rank_for_labelling(probs, 5) == [0, 4, 3, 2, 1]
    assert rank_for_labelling(probs, 2) == [0, 4]
    assert rank_for_labelling(probs, 10) == [0, 4, 3, 2, 1]   # no more than there are
    ranked = rank_for_labelling(torch.softmax(torch.randn(50, 4, generator=torch.Generator().manual_seed(0)), 1), 50)
    assert sorted(ranked) == list(range(50))


@pytest.mark.end_to_end
def test_suggest_lists_unlabelled_files_only_with_guesses_reasons_and_a_contact_sheet(tmp_path, capsys):
    write_tree(tmp_path / "pets", unlabelled=9)
    run = tmp_path / "run"
    assert main(["train", "--dataset", f"folder:{tmp_path / 'pets'}", "--labels", "0", *TRAIN, "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["suggest", str(run), "--n", "4"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == (f"wrote 4 suggestions to {run / 'suggestions.csv'} and their contact sheet to "
                          f"{run / 'suggestions.png'}")
    with open(run / "suggestions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and len({row["path"] for row in rows}) == 4
    assert all("/unlabelled/" in row["path"] and row["guess"] in ("cat", "dog", "owl") for row in rows)
    assert all(row["reason"].startswith("unsure between ") for row in rows)
    assert (run / "suggestions.png").stat().st_size > 0
    from_python = stochreg.suggest(run, n=20, out=tmp_path / "all.csv")
    assert len(from_python) == 9   # every unlabelled image, no labelled one
    assert [row.path for row in from_python[:4]] == [row["path"] for row in rows]
    with pytest.raises(DataError, match="--n must be at least 1"):
        stochreg.suggest(run, n=0)


@pytest.mark.end_to_end
def test_a_built_in_dataset_suggests_training_images_outside_its_labelled_split(tiny_data_dir, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--data-dir", str(tiny_data_dir), "--labels", "20", "--iters", "2", "--batch-labelled", "10",
                 "--batch-unlabelled", "8", "--net", "compact-small", "--lambda-graph", "0", "--eval-every", "0",
                 "--no-progress", "--out", str(run)]) == 0
    rows = stochreg.suggest(run, n=30)
    labelled = set(json.loads((run / "labelled_indices.json").read_text()))
    assert len(rows) == 30 and not {row.index for row in rows} & labelled
    assert all(row.path == f"training image {row.index}" for row in rows)
