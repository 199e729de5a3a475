"""README.md stays short and true: its own-images commands and its Python example run, and every
number of its results table is the one the benchmark JSON gives."""
from __future__ import annotations

import pytest

import json
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from stochreg.cli import main
from test_own_folders import write_photos
from test_user_data import CLASSES, picture, write_tree
from tinydata import write_idx_dataset

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
sys.path.insert(0, str(ROOT / "benchmarks"))
from accuracy import error_cells, row_results  # noqa: E402

SMALL = ["--iters", "8", "--eval-every", "0", "--batch-labelled", "6", "--batch-unlabelled", "4",
         "--net", "compact-small", "--no-progress"]


def section(title: str) -> str:
    return README.read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def commands(text: str) -> list[list[str]]:
    """The indented `stochreg ...` lines of a README section, comments cut off."""
    return [shlex.split(line.split("  #")[0]) for line in text.splitlines() if line.startswith("    stochreg ")]


def test_readme_is_short_and_shows_own_images_early():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150
    assert any("--dataset folder:" in line for line in lines[:60])


def test_results_table_matches_the_benchmark_json():
    rows = [line for line in section("Results").splitlines() if line.startswith("| ") and "](benchmarks/" in line]
    assert 1 <= len(rows) <= 8
    for line in rows:
        table, row = re.search(r"\[([\w-]+): `([\w-]+)`\]", line).groups()
        runs = [json.loads(p.read_text()) for p in row_results(table, row, ROOT / "benchmarks" / "results")]
        assert len(runs) >= 3, line
        minutes = [run["train_seconds"] / 60 for run in runs]
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[1] == error_cells(runs)[0], line
        assert cells[2] == f"{min(minutes):.1f}-{max(minutes):.1f}", line


@pytest.mark.end_to_end
def test_own_images_commands_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_photos(tmp_path / "photos")                       # labelled/, unlabelled/, no test/
    write_tree(tmp_path / "new-photos" / "tree", unlabelled=0)
    for k, name in enumerate(CLASSES):                      # photos labelled after training
        (tmp_path / "more-photos" / name).mkdir(parents=True)
        picture(k, 900 + k).save(tmp_path / "more-photos" / name / "0.jpg")
    steps = commands(section("Train on your own images"))
    assert [words[1] for words in steps] == ["train", "predict", "export", "eval", "suggest", "label"]
    for words in steps[:4]:
        extra = SMALL if words[1] == "train" else []
        assert main(words[1:] + extra) == 0, capsys.readouterr().err
    rows = (tmp_path / "predictions.csv").read_text().splitlines()
    assert rows[0].startswith("path,class,confidence") and len(rows) == 1 + 18
    assert (tmp_path / "runs" / "photos" / "model.onnx").is_file()
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["images"] == len(CLASSES)
    assert main(steps[4][1:]) == 0
    suggested = (tmp_path / "runs" / "photos" / "suggestions.csv").read_text().splitlines()
    assert suggested[0] == "path,guess,confidence,reason" and len(suggested) > 1
    assert all("/unlabelled/" in row for row in suggested[1:])
    capsys.readouterr()

    def person_stops_the_page(server, *args, **kwargs):   # the page itself is driven in test_label_page.py
        raise KeyboardInterrupt

    monkeypatch.setattr("werkzeug.serving.BaseWSGIServer.serve_forever", person_stops_the_page)
    assert main(steps[5][1:]) == 0
    printed = capsys.readouterr().out
    assert f"the {len(suggested) - 1} that photos suggests first" in printed and "open http://127.0.0.1:" in printed
    assert "stochreg train --data photos --init runs/photos" in printed
    assert "`stochreg train --resume runs/photos` continues a stopped run exactly" in section("Train on your own images")
    assert main(["train", "--resume", "runs/photos"]) == 0   # the run is finished: resuming it says so at once
    assert "nothing left to do" in capsys.readouterr().out


@pytest.mark.end_to_end
def test_python_example_runs(tmp_path, monkeypatch, capsys):
    import functools
    import stochreg
    monkeypatch.chdir(tmp_path)
    write_photos(tmp_path / "photos")
    (tmp_path / "new-photos").mkdir()
    for name, k in (("a", 0), ("b", 2)):
        picture(k, 500 + k).save(tmp_path / "new-photos" / f"{name}.jpg")
    small = {"iters": 8, "eval_every": 0, "batch_labelled": 6, "batch_unlabelled": 4, "net": "compact-small"}
    monkeypatch.setattr(stochreg, "fit", functools.partial(stochreg.fit, progress=False, **small))
    code = re.search(r"```python\n(.*?)```", section("From Python"), re.S).group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 4
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"\['(cat|dog|owl)', '(cat|dog|owl)'\] \[0\.\d+, 0\.\d+\]", printed), printed


@pytest.mark.end_to_end
def test_fit_on_arrays_with_a_test_set(tmp_path):
    import stochreg
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    images = rng.integers(0, 40, size=(60, 12, 12), dtype=np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 + 3 * k:4 + 3 * k] = 255
    train_labels = np.where(np.arange(60) < 30, labels, -1)      # half of them unlabelled
    run = stochreg.fit((images[:48], train_labels[:48]), test=(images[48:], labels[48:]), out=tmp_path / "run",
                       progress=False, iters=30, eval_every=0, batch_labelled=6, batch_unlabelled=4, views=3,
                       net="compact-small", transform="crop", lambda_graph=0, class_names=["a", "b", "c"])
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["labels"] == 30 and 0 <= results["test_error"] <= 1
    assert run.class_names == ["a", "b", "c"] and run.predict(torch.from_numpy(images[:2, None])).shape == (2, 3)
