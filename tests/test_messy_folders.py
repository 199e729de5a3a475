"""Folders as people have them: colour JPEGs of mixed sizes and orientations, EXIF turns, a truncated
file, a grayscale image, a 16-bit scan, a transparent cut-out, nested folders and a file that is no
image, taken through the whole user path (train, predict, eval, export, onnxruntime with the docs'
reference program, resume, the Python API), and each mistake such a folder invites refused or
reported in one line."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stochreg
from stochreg.cli import main
from stochreg.data import load_dataset
from stochreg.errors import DataError, UsageError
from stochreg.runs.lock import LOCK_NAME, _start_time

pytestmark = pytest.mark.end_to_end   # every test here trains a model, or reads one a fixture trained

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ("circle", "square", "triangle")
FAST = ["--iters", "3", "--batch-labelled", "6", "--batch-unlabelled", "4", "--views", "2", "--eval-batch", "16",
        "--transform", "crop-flip", "--no-progress", "--net", "compact-small", "--method", "supervised",
        "--class-prior", "labelled"]


def shape(k: int, seed: int, size=(48, 36)) -> Image.Image:
    """A colour picture of class k: a filled circle, square or triangle on white at a seeded place."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[:h, :w]
    cx, cy, r = w / 2 + rng.integers(-3, 4), h / 2 + rng.integers(-3, 4), min(w, h) / 3
    mask = [(xx - cx) ** 2 + (yy - cy) ** 2 < r * r, (abs(xx - cx) < r) & (abs(yy - cy) < r),
            (yy - cy + r > 0) & (abs(xx - cx) < (yy - cy + r) / 2)][k]
    array = np.full((h, w, 3), 255, np.uint8)
    array[mask] = rng.integers(0, 200, 3)
    return Image.fromarray(array)


def exif_turned(image: Image.Image, path: Path) -> None:
    """Saves ``image`` stored on its side with EXIF orientation 6, as a phone held upright does."""
    exif = Image.Exif()
    exif[0x0112] = 6
    image.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif.tobytes(), quality=92)


def write_messy_folder(root: Path) -> Path:
    """labelled/ and test/ of JPEGs; unlabelled/ nested, with mixed sizes, an EXIF-turned photo, a
    grayscale PNG, a 16-bit PNG, a transparent PNG, a truncated JPEG, a text file named .png and notes."""
    seed = 0
    for split, count in (("labelled", 4), ("test", 2)):
        for k, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                seed += 1
                shape(k, seed).save(root / split / name / f"{i}.jpg", quality=90)
    deep = root / "unlabelled" / "day1" / "camera2"
    deep.mkdir(parents=True)
    for i in range(9):
        shape(i % 3, 100 + i, (64, 48) if i % 2 else (48, 36)).save(
            (deep if i % 3 == 0 else root / "unlabelled") / f"u{i}.jpg", quality=85)
    exif_turned(shape(0, 200), root / "unlabelled" / "turned.jpg")
    shape(1, 201).convert("L").save(root / "unlabelled" / "gray.png")
    whole = (root / "unlabelled" / "u1.jpg").read_bytes()
    (root / "unlabelled" / "broken.jpg").write_bytes(whole[:len(whole) // 2])
    (root / "unlabelled" / "fake.png").write_text("not a picture")
    (root / "unlabelled" / "notes.txt").write_text("shot on the line, day 1")
    return root


def sixteen_bit(path: Path) -> None:
    ramp = (np.linspace(0, 65535, 48 * 36).reshape(36, 48)).astype(np.uint16)
    Image.fromarray(ramp).save(path)


def transparent(path: Path) -> None:
    image = shape(2, 300).convert("RGBA")
    alpha = np.zeros((36, 48), np.uint8)
    alpha[6:30, 8:40] = 255
    image.putalpha(Image.fromarray(alpha))
    image.save(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A messy folder and a run trained on it (3 steps), shared by the tests that only read them."""
    base = tmp_path_factory.mktemp("messy")
    root = write_messy_folder(base / "shapes")
    run = base / "run"
    assert main(["train", "--data", str(root), *FAST, "--out", str(run)]) == 0
    return root, run


def test_unreadable_unlabelled_images_are_left_out_with_a_note_and_a_list(trained, capsys):
    root, run = trained
    results = json.loads((run / "results.json").read_text())
    notes = " ".join(results["notes"])
    assert "2 unlabelled images cannot be read and were left out (broken.jpg: truncated (the file ends early); " \
           "fake.png: not an image (text))" in notes
    assert "1 file that is not an image by its name was left out (1 .txt)" in notes
    rows = (run / "unreadable.csv").read_text().splitlines()
    assert rows[0] == "path,reason" and len(rows) == 3
    assert rows[1] == f"{root / 'unlabelled' / 'broken.jpg'},truncated (the file ends early)"
    # every readable image is in the run: 12 labelled + 11 unlabelled (the turned, gray and nested ones too)
    data = load_dataset(f"folder:{root}", log=lambda m: None)
    assert len(data.train_labels) == 12 + 11 and len(data.left_out) == 2


def test_unreadable_labelled_or_test_images_are_one_error_naming_each_with_its_reason(tmp_path, capsys):
    root = write_messy_folder(tmp_path / "shapes")
    whole = (root / "labelled" / "circle" / "0.jpg").read_bytes()
    (root / "labelled" / "circle" / "cut.jpg").write_bytes(whole[:len(whole) // 3])
    (root / "test" / "square" / "empty.jpg").write_bytes(b"")
    assert main(["train", "--data", str(root), *FAST, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert re.fullmatch(r"stochreg: error: 2 image files cannot be read \(mend or remove them\): \S+/cut.jpg: "
                        r"truncated \(the file ends early\); \S+/empty.jpg: empty file \(each labelled and test image "
                        r"counts: unreadable unlabelled ones are left out instead\)", err[0]), err[0]


def test_the_docs_reference_program_gives_stochreg_predicts_probabilities(trained, tmp_path):
    """docs/export.md's program (Pillow, NumPy, onnxruntime: no stochreg) on JPEG, PNG, 16-bit, EXIF-turned
    and transparent images, a large JPEG decoded at a reduced scale among them, against stochreg predict."""
    pytest.importorskip("onnxruntime")
    _, run = trained
    assert main(["export", str(run), "--format", "onnx"]) == 0
    images = tmp_path / "new"
    images.mkdir()
    shape(0, 400, (480, 360)).save(images / "large.jpg", quality=90)   # 10x the model's side: draft decodes 1/8
    shape(1, 401).save(images / "plain.png")
    sixteen_bit(images / "scan16.png")
    exif_turned(shape(2, 402, (96, 72)), images / "turned.jpg")
    transparent(images / "cutout.png")
    files = sorted(str(p) for p in images.iterdir())
    program = re.search(r"```python\n(.*?)```", (ROOT / "docs" / "export.md").read_text(), re.S).group(1)
    (tmp_path / "reference.py").write_text(program)
    out = subprocess.run([sys.executable, str(tmp_path / "reference.py"), str(run / "model.json"), *files],
                         capture_output=True, text=True, check=True).stdout
    reference = np.array([json.loads(line)["probabilities"] for line in out.splitlines()])
    expected = stochreg.load(run).predict(files).numpy()
    assert reference.shape == expected.shape == (5, 3)
    assert np.abs(reference - expected).max() < 1e-5
    meta = json.loads((run / "model.json").read_text())
    assert any("Image.draft('RGB', (48, 36))" in step for step in meta["input"]["reading"])


def test_predict_and_eval_on_the_messy_run(trained, tmp_path, capsys):
    root, run = trained
    capsys.readouterr()
    assert main(["predict", str(run), str(root / "test"), "--out", str(tmp_path / "p.csv")]) == 0
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert len(rows) == 1 + 6 and all(row.split(",")[1] in CLASSES for row in rows[1:])
    assert main(["eval", str(run)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["test_error"] is not None


@pytest.mark.parametrize("mistake, option, message", [
    ("fewer labels than classes", ["--labels", "2"], r"--labels 2 is fewer than the 3 classes: every class needs at "
                                                      r"least one labelled image; use --labels 3 or more \(or 0 for every labelled image\)"),
    ("two classes in two cases", [], r"class folders Circle and circle in \S+/labelled differ only in upper and lower "
                                     r"case: merge them into one, or rename one if they are different classes"),
])
def test_silent_data_mistakes_are_refused_in_one_line(tmp_path, capsys, mistake, option, message):
    root = write_messy_folder(tmp_path / "shapes")
    if "cases" in mistake:
        (root / "labelled" / "Circle").mkdir()
        shape(0, 900).save(root / "labelled" / "Circle" / "x.jpg")
    assert main(["train", "--data", str(root), *FAST, *option, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.fullmatch("stochreg: error: " + message, err[0]), err


def test_images_beside_the_class_folders_are_named_in_a_note(tmp_path):
    root = write_messy_folder(tmp_path / "shapes")
    shape(0, 901).save(root / "stray.jpg")
    shape(1, 902).save(root / "labelled" / "stray2.jpg")
    said = []
    load_dataset(f"folder:{root}", log=said.append)
    assert f"note: 2 images directly in {root} and {root / 'labelled'} were left out (e.g. stray.jpg): images are " \
           "read from labelled/CLASS/, unlabelled/ and test/CLASS/; move them into one of those" in said


def live_lock(run: Path) -> subprocess.Popen:
    """A lock on ``run`` held by a live process (a sleeping child standing in for a training)."""
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (run / LOCK_NAME).write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename,
                                             "started": _start_time(holder.pid)}))
    return holder


def test_a_run_being_trained_is_locked_and_its_readers_say_so(trained, tmp_path, capsys):
    import shutil
    run = tmp_path / "live"
    shutil.copytree(trained[1], run)
    (run / "checkpoint.pt").unlink()
    (run / "results.json").unlink()
    holder = live_lock(run)
    try:
        capsys.readouterr()
        assert main(["train", "--resume", str(run)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"stochreg: error: run folder {run} is being trained by process {holder.pid}, at step 3; wait "
                       f"for it to finish, stop it (Ctrl-C) and then continue it with `stochreg train --resume {run}`, "
                       "or choose another --out")
        assert main(["train", "--data", str(trained[0]), *FAST, "--out", str(run), "--overwrite"]) == 2
        assert "is being trained by process" in capsys.readouterr().err
        assert main(["predict", str(run), str(trained[0] / "test")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"stochreg: error: run {run} is still training (process {holder.pid}, at step 3): its "
                              "final model is written when it ends; `stochreg eval ") and "--resume" not in err
        assert main(["runs", str(tmp_path)]) == 0
        assert "| training (step 3/3) |" in capsys.readouterr().out
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale, taken over with a note, and the run's finish completed
    assert main(["train", "--resume", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"note: {run / LOCK_NAME} was left by process {holder.pid}, which has ended" in out
    assert (run / "results.json").exists() and not (run / LOCK_NAME).exists()


def test_an_interrupted_finish_is_completed_by_resume(tmp_path, capsys, monkeypatch):
    import stochreg.train.finish as finish
    root = write_messy_folder(tmp_path / "shapes")
    run = tmp_path / "run"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt   # Ctrl-C just after the last step, while the report is drawn
    monkeypatch.setattr(finish, "write_run_report", interrupted)
    assert main(["train", "--data", str(root), *FAST, "--out", str(run)]) == 130
    assert capsys.readouterr().err.strip() == (f"stochreg: interrupted; `stochreg train --resume {run}` continues "
                                               "from the last checkpoint")
    assert not (run / "results.json").exists() and not (run / LOCK_NAME).exists()
    monkeypatch.undo()
    assert main(["train", "--resume", str(run)]) == 0
    assert "nothing left to do" not in capsys.readouterr().out
    assert (run / "summary.md").exists() and (run / "confusion.png").exists()
    assert json.loads((run / "results.json").read_text())["iters"] == 3


def test_a_checkpoint_from_the_checkpoints_folder_keeps_the_class_names(trained, tmp_path, capsys):
    _, run = trained
    checkpoint = sorted((run / "checkpoints").glob("step-*.pt"))[-1]
    assert main(["export", str(checkpoint), "--format", "pt2", "--out", str(tmp_path / "m.pt2")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["class_names"] == list(CLASSES)
    capsys.readouterr()
    assert main(["predict", str(checkpoint), str(trained[0] / "test" / "square" / "0.jpg")]) == 0
    assert capsys.readouterr().out.strip().split("\t")[1] in CLASSES   # path, class, probability: the name, not 1
    assert stochreg.load(checkpoint).class_names == list(CLASSES)


def test_python_api_on_arrays_as_documented(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 12, 12), dtype=np.uint8)
    labels = np.array([k % 3 for k in range(12)] + [-1] * 18)
    settings = dict(net="compact-small", method="supervised", iters=2, batch_labelled=6, transform="crop-flip",
                    progress=False)
    run = stochreg.fit((images, labels), out=tmp_path / "run", **settings)
    assert run.class_names == ["0", "1", "2"]
    probs = run.predict([images[0], images[1]])   # a list of single-image arrays
    assert probs.shape == (2, 3) and torch.allclose(probs, run.predict(images[:2]))
    with pytest.raises(UsageError, match=r"choose another out= or pass overwrite=True$"):
        stochreg.fit((images, labels), out=tmp_path / "run", **settings)
    again = stochreg.fit((images, labels), out=tmp_path / "run", overwrite=True, class_names=["a", "b", "c"],
                         **settings)
    assert again.class_names == ["a", "b", "c"]
    with pytest.raises(DataError, match=r"an image array of shape \(10, 10\), but the model takes 1 channel\(s\) "
                                        r"at 12x12"):
        run.predict([np.zeros((10, 10), np.uint8)])
    digits = rng.integers(0, 17, (30, 8, 8)).astype(np.float64)   # scikit-learn's digits: 0..16
    with pytest.raises(DataError, match=r"training images: pixel values reach only 16 \(from 0\): neither 0..1 nor "
                                        r"0..255; scale them first, e.g. images \* 255 / 16"):
        stochreg.fit((digits, labels), out=tmp_path / "digits", **settings)


def test_smaller_mistakes_get_lines_that_say_what_to_do(tmp_path, capsys, monkeypatch):
    root = write_messy_folder(tmp_path / "shapes")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "shapes", *FAST]) == 2
    assert capsys.readouterr().err.strip() == ("stochreg: error: --dataset shapes: no built-in dataset of that name; "
                                               "for your own images give --data shapes")
    (tmp_path / "shapes.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    assert main(["train", "--data", "shapes.zip", *FAST]) == 2
    assert capsys.readouterr().err.strip().endswith("shapes.zip is a zip archive: unpack it (unzip shapes.zip) and "
                                                    "give the folder it holds, the one with labelled/CLASS/...")


def test_class_names_no_font_draws_are_numbered_without_a_font_warning(tmp_path):
    from stochreg.runs.plots import confusion_png, font_with_glyphs
    names = ["猫", "犬", "鳥"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # matplotlib's "Glyph missing" warning would fail here
        confusion_png(np.eye(3, dtype=int) * 4, tmp_path / "c.png", class_names=names)
    assert (tmp_path / "c.png").stat().st_size > 0
    assert font_with_glyphs("circle") is None


def test_the_runs_listing_counts_a_folder_runs_labels(trained, capsys):
    _, run = trained
    capsys.readouterr()
    assert main(["runs", str(run.parent)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| run | folder:"))
    assert row.split("|")[4].strip() == "12"


def test_a_supervised_runs_summary_says_what_it_trained_on_and_the_class_prior(tmp_path):
    root = write_messy_folder(tmp_path / "shapes")
    run = tmp_path / "run"
    flags = [flag for flag in FAST if flag not in ("--class-prior", "labelled")]
    assert main(["train", "--data", str(root), *flags, "--class-prior", "estimated", "--out", str(run)]) == 0
    summary = (run / "summary.md").read_text()
    assert "| method | supervised: the labelled images alone, no unsupervised term |" in summary
    assert "(the unlabelled ones only for the class prior)" in summary and "n=2 views" not in summary
    assert "| batches | 6 labelled images a step, transform crop-flip |" in summary
    prior = json.loads((run / "results.json").read_text())["class_prior"]["estimated"]
    shares = ", ".join(f"{name} {100 * p:.0f}%" for name, p in zip(CLASSES, prior))
    assert f"| class prior | estimated from the unlabelled images: {shares} (the labelled split's: circle 33%, " \
           "square 33%, triangle 33%); the final answers are moved to it |" in summary
