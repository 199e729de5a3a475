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


def _learner_for(root, **overrides):
    from stochreg.config import resolve_config
    from stochreg.data import load_dataset, labelled_split
    from stochreg.train import Learner, image_options
    cfg = resolve_config(overrides={"dataset": f"folder:{root}", "labels": 0, "views": 3, "batch_labelled": 6,
                                    "batch_unlabelled": 4, "transform": "crop-flip", **overrides})
    data = load_dataset(cfg.dataset, log=lambda line: None, **image_options(cfg))
    return Learner(cfg, data, labelled_split(data.train_labels, 0, data.num_classes, 0), torch.device("cpu"))


@pytest.mark.end_to_end
def test_the_next_round_starts_from_the_previous_runs_weights_and_a_new_class_gets_a_new_classifier(tmp_path, capsys):
    from stochreg.errors import UsageError
    from stochreg.runtime.checkpoints import load_checkpoint
    write_tree(tmp_path / "pets", unlabelled=6)
    first = tmp_path / "first"
    assert main(["train", "--dataset", f"folder:{tmp_path / 'pets'}", "--labels", "0", *TRAIN, "--out", str(first)]) == 0
    reported = load_checkpoint(first / "checkpoint.pt")["ema"]
    # --net left at auto: the run's network, its weights, every tensor
    learner = _learner_for(tmp_path / "pets", init=str(first))
    assert learner.cfg.net == "compact-small" and learner.cfg.weights == "none"
    assert all(torch.equal(learner.model.state_dict()[key], value) for key, value in reported.items())
    assert any(line.startswith(f"network compact-small starts from the weights of {first / 'checkpoint.pt'} "
                               "(every tensor)") for line in learner.notes)
    # a class labelled since: the classifier starts new, the rest is the run's
    (tmp_path / "pets" / "train" / "fox").mkdir()
    for i in range(2):
        (tmp_path / "pets" / "train" / "fox" / f"{i}.png").write_bytes(
            (tmp_path / "pets" / "train" / "cat" / "1.png").read_bytes())
    grown = _learner_for(tmp_path / "pets", init=str(first))
    state = grown.model.state_dict()
    changed = {key for key, value in reported.items() if state[key].shape != value.shape}
    assert changed and all(state[key].shape[0] == 4 for key in changed)
    assert all(torch.equal(state[key], value) for key, value in reported.items() if key not in changed)
    assert any("the classifier starts new" in line for line in grown.notes)
    with pytest.raises(UsageError, match=r"--init \S+: the run took images of \(3, 16, 16\) \(channels, height, "
                                         r"width\), these are \(3, 20, 20\)"):
        _learner_for(tmp_path / "pets", init=str(first), image_size=20)
    with pytest.raises(UsageError, match="gives the starting weights already; leave --weights out"):
        _learner_for(tmp_path / "pets", init=str(first), weights="imagenet")
    # from the command line, the next round trains and resumes as any run
    second = tmp_path / "second"
    assert main(["train", "--dataset", f"folder:{tmp_path / 'pets'}", "--labels", "0", *TRAIN, "--init", str(first),
                 "--out", str(second)]) == 0
    assert "recipe: the network starts from the weights of" in capsys.readouterr().out


def test_the_labelling_benchmark_moves_each_chosen_file_into_its_true_class(tmp_path):
    from benchmark_scripts import load_benchmark
    move_to_labelled = load_benchmark("label_next").move_to_labelled
    for name in ("functional", "defective"):
        (tmp_path / "labelled" / name).mkdir(parents=True)
    (tmp_path / "unlabelled").mkdir()
    files = [tmp_path / "unlabelled" / f"{i:05d}.png" for i in (3, 7)]
    for file in files:
        file.write_bytes(b"png")
    move_to_labelled(tmp_path, files, torch.tensor([0, 0, 0, 1, 0, 0, 0, 0]), ["functional", "defective"])
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == [
        "labelled/defective/00003.png", "labelled/functional/00007.png"]


def test_the_labelling_page_gives_each_arm_a_row_and_each_round_the_mean_over_the_seeds_that_reached_it(tmp_path):
    from benchmark_scripts import load_benchmark
    write_page = load_benchmark("label_next").write_page
    folder = tmp_path / "label-next"
    folder.mkdir()
    for seed, errors in ((0, [0.30, 0.20, 0.10]), (1, [0.40, 0.30])):   # seed 1 stopped after round 1
        for arm, shift in (("suggest", 0.0), ("random", 0.05)):
            rounds = [{"round": r, "labels": 100 * (r + 1), "test_error": e + (shift if r else 0.0),
                       "train_seconds": 60.0 * (r + 1)} for r, e in enumerate(errors)]
            (folder / f"fashion-s{seed}-{arm}.json").write_text(json.dumps(
                {"dataset": "fashion", "seed": seed, "arm": arm, "init": False, "rounds": rounds,
                 "command": "python benchmarks/label_next.py --dataset fashion", "commit": "abcdef0", "machine": "cpu"}))
    page = write_page(folder).read_text()
    assert "| arm | seeds | round 0 (100 labels) | round 1 (200 labels) | round 2 (300 labels) | minutes a run |" in page
    assert "| random | 0, 1 | 35.00% +- 7.07 | 30.00% +- 7.07 | 15.00% (one seed) | 1.0-3.0 |" in page
    assert "| suggest | 0, 1 | 35.00% +- 7.07 | 25.00% +- 7.07 | 10.00% (one seed) | 1.0-3.0 |" in page
