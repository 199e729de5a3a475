"""What a user sees and uses: run reports, show-views, predict, stochreg.load, runs, compare."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stochreg
from stochreg.cli import main
from stochreg.data import load_dataset
from stochreg.errors import DataError
from tinydata import write_idx_dataset

pytestmark = pytest.mark.end_to_end   # every test here trains a model, or reads one a fixture trained

TINY = ["--labels", "20", "--iters", "40", "--batch-labelled", "10", "--batch-unlabelled", "8", "--views", "3",
        "--eval-every", "10", "--eval-batch", "50", "--rampup-iters", "10", "--no-progress", "--threads", "2",
        "--net", "compact-small", "--checkpoint-every", "10"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Tiny data and one finished run (with TensorBoard on), shared by the tests of this module."""
    root = tmp_path_factory.mktemp("user")
    write_idx_dataset(root / "data" / "mnist")
    assert main(["train", "--data-dir", str(root / "data"), "--out", str(root / "runs" / "first"), *TINY,
                 "--tensorboard"]) == 0
    return root


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.verify()  # a complete, valid PNG
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_run_folder_has_curves_confusion_and_summary(workspace):
    run = workspace / "runs" / "first"
    assert png_size(run / "curves.png") == (1000, 400)
    assert png_size(run / "confusion.png") == (600, 550)
    results = json.loads((run / "results.json").read_text())
    summary = (run / "summary.md").read_text()
    assert f"**Final test error: {100 * results['test_error']:.2f}%**" in summary
    assert "20 images, 2 per class, split seed 0" in summary and "compact-small" in summary
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "test_error" in r] == [10, 20, 30, 40]
    assert any("test_error" not in r and "ts" in r for r in records)  # loss records between evaluations


def test_tensorboard_event_files_hold_the_scalars(workspace):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(workspace / "runs" / "first" / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"ce", "ts", "me", "test_error", "lr"} <= set(tags)
    assert [e.step for e in events.Scalars("test_error")] == [10, 20, 30, 40]


def test_show_views_draws_each_image_then_its_views(workspace, capsys):
    out = workspace / "views.png"
    assert main(["show-views", "--data-dir", str(workspace / "data"), "--views", "4", "--images", "3",
                 "--scale", "2", "--out", str(out)]) == 0
    cell = 28 * 2 + 2
    assert png_size(out) == (5 * cell + 2, 3 * cell + 2)  # (width, height): 1 + 4 columns, 3 rows
    grid = np.asarray(Image.open(out))
    data = load_dataset("mnist", workspace / "data", fetch_missing=False)
    chosen = torch.randperm(200, generator=torch.Generator().manual_seed(0))[:3]
    first = data.train_images[chosen[0], 0].numpy().repeat(2, 0).repeat(2, 1)
    assert np.array_equal(grid[2:58, 2:58], first)  # the first column is the untouched image
    assert not np.array_equal(grid[2:58, 60:116], first)  # a view differs from it
    assert "3 images (rows), each then its 4 views of method ts-me-fixmatch (digits, the last 1 also strongly augmented)" \
        in capsys.readouterr().out


def test_show_views_draws_the_strong_view_as_training_makes_it(workspace, capsys):
    """The default method's last view is also strongly augmented: drawn with the same seed, the
    weak views match those of a method without strong views and the last one does not."""
    grids = {}
    for method in ("ts-me-fixmatch", "ts-me"):
        out = workspace / f"views-{method}.png"
        assert main(["show-views", "--data-dir", str(workspace / "data"), "--method", method, "--views", "3",
                     "--images", "2", "--scale", "1", "--out", str(out)]) == 0
        grids[method] = np.asarray(Image.open(out))
    weak_columns, last_column = slice(0, 3 * 30 + 2), slice(3 * 30 + 2, 4 * 30 + 2)
    assert np.array_equal(grids["ts-me-fixmatch"][:, weak_columns], grids["ts-me"][:, weak_columns])
    assert not np.array_equal(grids["ts-me-fixmatch"][:, last_column], grids["ts-me"][:, last_column])
    assert "the last 1 also strongly augmented" not in capsys.readouterr().out.splitlines()[-1]


def write_test_pngs(workspace: Path) -> tuple[Path, np.ndarray]:
    folder = workspace / "pngs"
    if not folder.exists():
        data = load_dataset("mnist", workspace / "data", fetch_missing=False)
        (folder / "sub").mkdir(parents=True)
        for i, image in enumerate(data.test_images[:, 0].numpy()):
            Image.fromarray(image).save(folder / ("sub" if i % 2 else "") / f"{i:03d}.png")
    data = load_dataset("mnist", workspace / "data", fetch_missing=False)
    return folder, data.test_labels.numpy()


def test_eval_on_the_unlabelled_pool_counts_its_errors_and_confusions(workspace, capsys):
    """--split train: the run's training images other than its labelled split, with their
    dataset labels; --confusions lists the largest off-diagonal counts, largest first."""
    run = workspace / "runs" / "first"
    assert main(["eval", str(run), "--split", "train", "--confusions", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    data = load_dataset("mnist", workspace / "data", fetch_missing=False)
    labelled = json.loads((run / "labelled_indices.json").read_text())
    pool = torch.ones(len(data.train_labels), dtype=torch.bool)
    pool[labelled] = False
    model = stochreg.load(run)
    predicted = model.predict(data.train_images[pool]).argmax(1)
    wrong = predicted != data.train_labels[pool]
    assert report["split"] == "train" and report["images"] == len(data.train_labels) - 20 == int(pool.sum())
    assert report["errors"] == int(wrong.sum()) > 0 and report["error"] == pytest.approx(wrong.float().mean().item())
    assert "test_error" not in report                    # only the test split reports a test error
    counts = [c["count"] for c in report["confusions"]]
    assert counts == sorted(counts, reverse=True) and 0 < len(counts) <= 4 and sum(counts) <= report["errors"]
    top = report["confusions"][0]
    truth, guess = data.train_labels[pool][wrong], predicted[wrong]
    assert int(((truth == int(top["true"])) & (guess == int(top["predicted"]))).sum()) == top["count"]


def test_eval_on_the_train_split_of_a_fully_unlabelled_pool_says_why_not(tmp_path, capsys):
    from stochreg.cli.model_commands import _unlabelled_pool_with_labels
    from stochreg.data.datasets import Dataset
    from stochreg.errors import DataError
    images = torch.zeros(6, 1, 8, 8, dtype=torch.uint8)
    data = Dataset("folder:mine", images, torch.tensor([0, 1, -1, -1, -1, -1]), images[:2], torch.tensor([0, 1]),
                   num_classes=2, is_digits=False)
    (tmp_path / "labelled_indices.json").write_text("[0, 1]")
    with pytest.raises(DataError, match="none"):
        _unlabelled_pool_with_labels(tmp_path, data)


def test_predict_agrees_with_eval(workspace, capsys):
    folder, labels = write_test_pngs(workspace)
    run = workspace / "runs" / "first"
    assert main(["eval", str(run)]) == 0
    evaluated = json.loads(capsys.readouterr().out)["test_error"]
    assert main(["predict", str(run), str(folder), "--out", str(workspace / "p.csv")]) == 0
    rows = list(csv.DictReader(open(workspace / "p.csv")))
    columns = ["path", "class", "confidence", "predicted", *[f"p_{k}" for k in range(10)], "out_of_class"]
    assert len(rows) == 100 and list(rows[0]) == columns
    index = [int(Path(r["path"]).stem) for r in rows]
    predicted = np.array([int(r["predicted"]) for r in rows])
    assert (predicted != labels[index]).mean() == pytest.approx(evaluated)
    assert all(abs(sum(float(r[f"p_{k}"]) for k in range(10)) - 1) < 1e-4 for r in rows)


def test_predict_in_batches_writes_what_one_batch_writes_and_keeps_the_readable_images_of_a_damaged_folder(
        workspace, tmp_path, capsys, monkeypatch):
    """A folder of thousands of photos is classified a batch at a time; a damaged file among them
    does not cost the others' predictions: they are written, and the error names the file."""
    import shutil
    import stochreg.cli.model_commands as commands
    folder = tmp_path / "pngs"
    shutil.copytree(write_test_pngs(workspace)[0], folder)
    run = workspace / "runs" / "first"
    assert main(["predict", str(run), str(folder), "--out", str(tmp_path / "whole.csv")]) == 0
    monkeypatch.setattr(commands, "PREDICT_BATCH", 7)
    (folder / "050-damaged.png").write_bytes((folder / "050.png").read_bytes()[:40])
    capsys.readouterr()
    assert main(["predict", str(run), str(folder), "--out", str(tmp_path / "batched.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"stochreg: error: cannot read image {folder / '050-damaged.png'}: damaged or truncated (its header "
                   f"is incomplete); the readable images' predictions (100) are written to {tmp_path / 'batched.csv'}"]
    assert (tmp_path / "batched.csv").read_text() == (tmp_path / "whole.csv").read_text()


def test_predict_prints_or_writes_json_and_averages_passes(workspace, capsys):
    folder, _ = write_test_pngs(workspace)
    run = workspace / "runs" / "first"
    assert main(["predict", str(run / "checkpoint.pt"), str(folder / "000.png"), str(folder / "sub" / "001.png")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[0].endswith("000.png")
    records = {}
    for passes in (1, 4):
        out = workspace / f"p{passes}.json"
        assert main(["predict", str(run), str(folder / "000.png"), "--passes", str(passes), "--out", str(out)]) == 0
        [records[passes]] = json.loads(out.read_text())
        assert list(records[passes]["probabilities"]) == [str(k) for k in range(10)]   # keyed by class name
        assert sum(records[passes]["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert records[1]["predicted"] == int(lines[0].split("\t")[1])
    assert records[1]["probabilities"] != records[4]["probabilities"]  # dropout stays on for the 4 passes


def test_predict_resizes_and_converts_a_colour_photo(workspace, capsys):
    Image.fromarray(np.full((50, 40, 3), 200, dtype=np.uint8)).save(workspace / "photo.jpg")
    assert main(["predict", str(workspace / "runs" / "first"), str(workspace / "photo.jpg")]) == 0
    captured = capsys.readouterr()
    assert "1 of 1 images resized to 28x28" in captured.err and captured.out.count("\t") == 2


def test_python_load_api_matches_eval(workspace):
    run = stochreg.load(workspace / "runs" / "first")
    data = load_dataset("mnist", workspace / "data", fetch_missing=False)
    error = (run.predict(data.test_images).argmax(1) != data.test_labels).float().mean().item()
    assert error == pytest.approx(json.loads((workspace / "runs" / "first" / "results.json").read_text())["test_error"])
    assert run.weights == "ema" and run.image_shape == (1, 28, 28) and not run.model.training


def test_python_predict_reads_files_and_pil_images_and_names_every_unreadable_file(workspace):
    run = stochreg.load(workspace / "runs" / "first")
    Image.fromarray(np.full((28, 28), 30, dtype=np.uint8)).save(workspace / "digit.png")
    from_file, from_pil = run.predict([workspace / "digit.png"]), run.predict([Image.open(workspace / "digit.png")])
    assert from_file.shape == (1, 10) and torch.equal(from_file, from_pil)
    for name in ("a.png", "b.jpg"):
        (workspace / name).write_text("not a picture")
    with pytest.raises(DataError, match=r"^2 image files cannot be read \(mend or remove them\): \S*a.png: "
                                        r"not an image \(text\); \S*b.jpg: not an image \(text\)$"):
        run.predict([workspace / "a.png", workspace / "digit.png", str(workspace / "b.jpg")])


def test_python_predict_takes_the_arrays_fit_takes_and_one_file_or_image(workspace):
    """The image arrays stochreg.fit trains on predict as they are: numpy or torch, (N, H, W),
    channels last or first, uint8 or floats in 0..1; a single file or PIL image needs no list."""
    run = stochreg.load(workspace / "runs" / "first")
    digits = load_dataset("mnist", workspace / "data", fetch_missing=False).test_images[:4]
    expected = run.predict(digits)
    as_numpy = digits.numpy()
    for images in (as_numpy, as_numpy[:, 0], as_numpy.transpose(0, 2, 3, 1), digits.float() / 255):
        assert torch.allclose(run.predict(images), expected, atol=1e-6)
    Image.fromarray(as_numpy[0, 0]).save(workspace / "one.png")
    assert torch.allclose(run.predict(workspace / "one.png"), expected[:1], atol=1e-6)
    assert torch.allclose(run.predict(Image.open(workspace / "one.png")), expected[:1], atol=1e-6)
    with pytest.raises(DataError, match=r"images of 1 channel\(s\) at 32x32, but the model takes 1 at 28x28"):
        run.predict(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(DataError, match="expected image files, PIL images or an array of images, got int"):
        run.predict(7)


def test_runs_lists_done_and_stopped_runs(workspace, capsys):
    stopped = workspace / "runs" / "stopped"
    shutil.copytree(workspace / "runs" / "first", stopped)
    for name in ("results.json", "checkpoint.pt"):
        (stopped / name).unlink()
    (stopped / "checkpoints" / "step-00000040.pt").unlink()
    assert main(["runs", str(workspace / "runs")]) == 0
    out = capsys.readouterr().out
    first = next(line for line in out.splitlines() if line.startswith("| first "))
    error = json.loads((workspace / "runs" / "first" / "results.json").read_text())["test_error"]
    assert "| mnist | ts-me-fixmatch | 20 | 0 | compact-small | done |" in first and f"{100 * error:.2f}%" in first
    assert "| stopped at 30/40 |" in next(line for line in out.splitlines() if line.startswith("| stopped "))
    shutil.rmtree(stopped)


def test_compare_writes_table_and_overlaid_curves(workspace, capsys):
    second = workspace / "runs" / "second"
    assert main(["train", "--data-dir", str(workspace / "data"), "--out", str(second), *TINY,
                 "--method", "supervised"]) == 0
    capsys.readouterr()
    assert main(["compare", str(workspace / "runs" / "first"), str(second), "--out", str(workspace / "cmp")]) == 0
    table = (workspace / "cmp.md").read_text()
    assert "| ts-me-fixmatch |" in table and "| supervised |" in table and "![test error](cmp.png)" in table
    assert png_size(workspace / "cmp.png") == (700, 450)


def test_eval_of_a_stopped_run_names_its_latest_checkpoint_which_evaluates(workspace, capsys):
    stopped = workspace / "runs" / "stopped-eval"
    shutil.copytree(workspace / "runs" / "first", stopped)
    (stopped / "checkpoint.pt").unlink()
    assert main(["eval", str(stopped)]) != 0
    latest = stopped / "checkpoints" / "step-00000040.pt"
    assert f"`stochreg eval {latest}` evaluates its latest checkpoint" in capsys.readouterr().err
    assert main(["eval", str(latest)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # the run's last step was 40: that checkpoint holds the weights the finished run reported
    finished = json.loads((workspace / "runs" / "first" / "results.json").read_text())["test_error"]
    assert result["run"] == str(latest) and result["test_error"] == pytest.approx(finished)
    shutil.rmtree(stopped)
