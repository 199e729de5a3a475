"""The user's own images: folder trees (ImageNet layout, plus unlabelled images) and CSV listings,
written as real PNG and JPEG files, trained on end to end, and the errors for bad ones."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from stochreg.cli import main
from stochreg.data import load_dataset
from stochreg.errors import DataError

CLASSES = ("cat", "dog", "owl")
TRAIN = ["--iters", "3", "--batch-labelled", "6", "--batch-unlabelled", "4", "--views", "3", "--eval-batch", "16",
         "--transform", "crop-flip", "--no-progress", "--net", "compact-small"]


def picture(k: int, seed: int, size=(16, 16), mode="RGB") -> Image.Image:
    """A 16x16 image whose class k shows as a bright band at a class-specific height."""
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 60, size=(size[1], size[0], 3), dtype=np.uint8)
    array[2 + 4 * k:5 + 4 * k] = 255
    image = Image.fromarray(array)
    return image.convert(mode)


def write_tree(root, per_class=4, test_per_class=2, unlabelled=5, test_folder="val"):
    seed = 0
    for split, count in (("train", per_class), (test_folder, test_per_class)):
        for k, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                seed += 1
                suffix = ".png" if i % 2 else ".JPEG"  # both formats, as ImageNet and screenshots mix them
                picture(k, seed).save(root / split / name / f"{i}{suffix}")
    if unlabelled:
        (root / "unlabelled" / "batch1").mkdir(parents=True)
    for i in range(unlabelled):
        picture(i % 3, 100 + i).save(root / "unlabelled" / "batch1" / f"u{i}.png")


def test_folder_tree_reads_classes_channels_size_and_unlabelled_images(tmp_path):
    write_tree(tmp_path / "pets")
    data = load_dataset(f"folder:{tmp_path / 'pets'}", log=lambda m: None)
    assert data.class_names == list(CLASSES) and data.num_classes == 3
    assert data.image_shape == (3, 16, 16)
    assert len(data.train_labels) == 12 + 5 and (data.train_labels == -1).sum() == 5
    assert len(data.test_labels) == 6 and data.test_labels.min() == 0


@pytest.mark.end_to_end
def test_a_folder_without_unlabelled_images_says_what_semi_supervised_training_lacks(tmp_path, capsys):
    """Every image labelled and used as a label: the unlabelled terms only see the labelled images,
    and the run says so (a supervised run, or one with unlabelled images, does not)."""
    note = "note: no unlabelled images: the unlabelled terms of fixmatch see only the 12 labelled ones"
    for method, unlabelled in (("fixmatch", 0), ("supervised", 0), ("fixmatch", 3)):
        root = tmp_path / f"pets-{method}-{unlabelled}"
        write_tree(root, unlabelled=unlabelled)
        assert main(["train", "--dataset", f"folder:{root}", "--labels", "0", *TRAIN, "--method", method,
                     "--out", str(tmp_path / root.name / "run")]) == 0
        said = note in capsys.readouterr().out
        assert said == (method == "fixmatch" and unlabelled == 0), (method, unlabelled)


@pytest.mark.end_to_end
def test_train_on_a_folder_tree_then_predict_prints_class_names(tmp_path, capsys):
    write_tree(tmp_path / "pets", test_folder="test")
    run = tmp_path / "run"
    assert main(["train", "--dataset", f"folder:{tmp_path / 'pets'}", "--labels", "0", *TRAIN, "--out", str(run)]) == 0
    assert len(json.loads((run / "labelled_indices.json").read_text())) == 12  # every labelled image, no others
    assert main(["predict", str(run), str(tmp_path / "pets" / "test" / "owl")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[-2:]
    assert all(line.split("\t")[1] in CLASSES for line in lines)


def test_images_of_another_size_are_resized_with_a_note(tmp_path):
    write_tree(tmp_path / "pets")
    picture(0, 7, size=(20, 24)).save(tmp_path / "pets" / "train" / "cat" / "big.png")
    messages = []
    data = load_dataset(f"folder:{tmp_path / 'pets'}", log=messages.append)
    assert data.image_shape == (3, 16, 16)
    assert any("1 image resized to 16x16" in m for m in messages)


@pytest.mark.end_to_end
def test_csv_listing_with_unlabelled_rows_and_a_test_split(tmp_path, capsys):
    rows = ["path,label,split"]
    for i in range(12):
        k = i % 3
        picture(k, i, mode="L").save(tmp_path / f"img{i}.png")
        rows.append(f"img{i}.png,{CLASSES[k] if i < 9 else ''},train")
    for i in range(6):
        picture(i % 3, 50 + i, mode="L").save(tmp_path / f"t{i}.png")
        rows.append(f"t{i}.png,{CLASSES[i % 3]},test")
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    data = load_dataset(f"csv:{tmp_path / 'list.csv'}", log=lambda m: None)
    assert data.image_shape == (1, 16, 16) and (data.train_labels == -1).sum() == 3
    assert main(["train", "--dataset", f"csv:{tmp_path / 'list.csv'}", "--labels", "3", *TRAIN,
                 "--out", str(tmp_path / "run")]) == 0
    assert "final test error" in capsys.readouterr().out


def damage_empty_class(root):
    (root / "train" / "zebra").mkdir()


def damage_unreadable_image(root):
    (root / "train" / "dog" / "broken.png").write_bytes(b"not a png at all")


def damage_seven_unreadable_images(root):
    """Damaged files among the labelled and the unlabelled images: one error names every labelled one (the
    unlabelled ones are left out)."""
    for name in ("a", "b", "c", "d"):
        (root / "train" / "dog" / f"broken-{name}.png").write_bytes(b"not a png at all")
    for name in ("e", "f", "g"):
        (root / "unlabelled" / "batch1" / f"broken-{name}.jpg").write_bytes(b"not a jpeg at all")


def damage_unknown_test_class(root):
    (root / "val" / "fox").mkdir()
    picture(1, 4).save(root / "val" / "fox" / "f.png")


def damage_one_class(root):
    import shutil
    for name in ("dog", "owl"):
        shutil.rmtree(root / "train" / name)
        shutil.rmtree(root / "val" / name)


def damage_oversized_png(root):
    """A PNG whose header announces 20000 x 20000 pixels (the pixels themselves are never written)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    (root / "train" / "cat" / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                                                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def damage_symlink_loop(root):
    import os
    os.symlink("loop.png", root / "train" / "dog" / "loop.png")   # a link to itself


def damage_no_labelled_folder(root):
    (root / "train").rename(root / "photos")


def damage_class_folders_at_the_top(root):
    """The class folders straight under the root, as many photo collections come."""
    for name in CLASSES:
        (root / "train" / name).rename(root / name)
    (root / "train").rmdir()


@pytest.mark.parametrize("damage, message", [
    (damage_empty_class, r"class folder .*train/zebra holds no image files"),
    (damage_unreadable_image, r"cannot read image .*broken.png: not an image \(text\)"),
    (damage_seven_unreadable_images, r"^4 image files cannot be read \(mend or remove them\): "
                                     r"\S*dog/broken-a.png: not an image \(text\); \S*broken-b.png: [^;]+; "
                                     r"\S*broken-c.png: [^;]+; \S*broken-d.png: [^;]+ \(each labelled and test image "
                                     r"counts: unreadable unlabelled ones are left out instead\)$"),
    (damage_unknown_test_class, r"test class 'fox' has no labelled training images"),
    (damage_one_class, r"only one class \('cat'\); a classifier needs at least 2 class folders"),
    (damage_oversized_png, r"image .*huge.png is too large to read safely"),
    (damage_symlink_loop, r"cannot read image .*loop.png"),
    (damage_no_labelled_folder, r"must hold labelled/CLASS/... folders \(or train/CLASS/...\); optional: "
                                r"unlabelled/... and test/CLASS/...$"),
    (damage_class_folders_at_the_top, r"must hold labelled/CLASS/... folders .*; its folders cat, dog, owl hold "
                                      r"images: if they are the classes, move them into .*pets/labelled/$"),
])
@pytest.mark.end_to_end
def test_bad_folder_trees_are_one_clear_line(tmp_path, capsys, damage, message):
    write_tree(tmp_path / "pets")
    damage(tmp_path / "pets")
    with pytest.raises(DataError, match=message):
        load_dataset(f"folder:{tmp_path / 'pets'}", log=lambda m: None)
    assert main(["train", "--dataset", f"folder:{tmp_path / 'pets'}", "--labels", "0", *TRAIN,
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stochreg: error: ")


def test_the_labelled_folder_given_for_the_whole_tree_names_the_folder_above(tmp_path):
    write_tree(tmp_path / "pets")                  # pets/train/CLASS/..., pets/unlabelled/..., pets/test/CLASS/...
    with pytest.raises(DataError, match=r"its folders cat, dog, owl hold images: give the folder above it, "
                                        r"--data \S*pets$"):
        load_dataset(f"folder:{tmp_path / 'pets' / 'train'}", log=lambda m: None)


@pytest.mark.end_to_end
def test_images_damaged_past_their_header_are_named_together_when_their_pixels_are_read(tmp_path, capsys):
    """A truncated file has a readable header and fails when its pixels are decoded: with the size and
    channels given no header is read first, and the pixel read names every damaged file at once, for
    training and for predict alike."""
    write_tree(tmp_path / "pets")
    whole = (tmp_path / "pets" / "train" / "cat" / "1.png").read_bytes()
    for name in ("cut1", "cut2"):
        (tmp_path / "pets" / "train" / "cat" / f"{name}.png").write_bytes(whole[:len(whole) // 2])
    message = r"^2 image files cannot be read \(mend or remove them\): \S*cut1.png: [^;]+; \S*cut2.png: [^;]+"
    with pytest.raises(DataError, match=message):
        load_dataset(f"folder:{tmp_path / 'pets'}", image_size=16, channels=3, log=lambda m: None)
    with pytest.raises(DataError, match=message):   # the header pass reads them whole enough; the pixels do not
        load_dataset(f"folder:{tmp_path / 'pets'}", log=lambda m: None)
    (tmp_path / "pets" / "train" / "cat" / "cut1.png").unlink()
    (tmp_path / "pets" / "train" / "cat" / "cut2.png").unlink()
    run = tmp_path / "run"
    assert main(["train", "--dataset", f"folder:{tmp_path / 'pets'}", "--labels", "0", *TRAIN, "--out", str(run)]) == 0
    for name in ("cut1", "cut2"):
        (tmp_path / "new").mkdir(exist_ok=True)
        (tmp_path / "new" / f"{name}.png").write_bytes(whole[:len(whole) // 2])
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stochreg: error: 2 image files cannot be read")


@pytest.mark.parametrize("text, message", [
    ("path,label\nmissing.png,cat\n", r"row 1: no such image file .*missing.png"),
    ("a.png,cat,train,extra\n", r"row 1: expected path,label\[,split\], got 4 columns"),
    ("a.png,cat,holdout\n", r"row 1: split must be train or test, got 'holdout'"),
    ("a.png,,test\n", r"row 1: a test image needs a label"),
])
def test_bad_csv_listings(tmp_path, text, message):
    picture(0, 0).save(tmp_path / "a.png")
    (tmp_path / "list.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        load_dataset(f"csv:{tmp_path / 'list.csv'}", log=lambda m: None)


@pytest.mark.end_to_end
def test_streamed_training_equals_in_memory_training_and_resumes_exactly(tmp_path):
    """--stream decodes each step's images in DataLoader workers ahead of the step: the same
    images as in memory, so the same weights; killed and resumed, still the same weights (the
    batches decoded ahead and never used are drawn again)."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    import torch
    from stochreg.runtime.checkpoints import load_checkpoint

    write_tree(tmp_path / "pets", per_class=6, unlabelled=9)
    # --stream keeps the images on disk, so the label-propagation graph (which needs them all in
    # memory) is off in both runs
    common = ["train", "--dataset", f"folder:{tmp_path / 'pets'}", "--labels", "6", "--iters", "30",
              "--checkpoint-every", "3", *TRAIN[2:], "--threads", "2", "--lambda-graph", "0"]

    def weights(run):
        state = load_checkpoint(run / "checkpoint.pt")
        return {**state["model"], **{f"ema.{k}": v for k, v in state["ema"].items()}}

    assert main([*common, "--out", str(tmp_path / "memory")]) == 0
    assert main([*common, "--stream", "--workers", "2", "--out", str(tmp_path / "streamed")]) == 0
    reference = weights(tmp_path / "memory")
    assert all(torch.equal(v, weights(tmp_path / "streamed")[k]) for k, v in reference.items())

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "stochreg", *common, "--stream", "--workers", "2",
                             "--out", str(killed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    kill_at = random.Random().choice([6, 9, 12, 15])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        steps = [int(p.stem.split("-")[1]) for p in (killed / "checkpoints").glob("step-*.pt")]
        if steps and max(steps) >= kill_at:
            break
        time.sleep(0.005)
    assert proc.poll() is None, proc.stderr.read()
    os.killpg(proc.pid, signal.SIGKILL)  # the trainer and its decoding workers
    proc.wait()
    assert main(["train", "--resume", str(killed)]) == 0
    resumed = weights(killed)
    assert all(torch.equal(v, resumed[k]) for k, v in reference.items()), f"killed at step >= {kill_at}"


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.end_to_end
def test_a_damaged_image_met_while_streaming_is_one_line_and_the_run_resumes_once_mended(tmp_path, capsys, workers):
    """With --stream an image is first decoded during the run, in a DataLoader worker (or in the
    training process with --workers 0): a damaged one stops the run with one line naming it, not
    the worker's traceback, and once the file is mended `--resume` finishes the run."""
    write_tree(tmp_path / "pets", per_class=4, unlabelled=5)
    damaged = tmp_path / "pets" / "unlabelled" / "batch1" / "u0.png"
    whole = damaged.read_bytes()
    damaged.write_bytes(whole[:len(whole) // 2])   # its header still reads: only decoding fails
    run = tmp_path / "run"
    capsys.readouterr()
    assert main(["train", "--dataset", f"folder:{tmp_path / 'pets'}", "--labels", "6", *TRAIN, "--iters", "6",
                 "--stream", "--workers", str(workers), "--lambda-graph", "0", "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert err[0].startswith(f"stochreg: error: cannot read image {damaged}: ") and "--stream: mend or replace" in err[0]
    damaged.write_bytes(whole)
    assert main(["train", "--resume", str(run)]) == 0
    assert json.loads((run / "results.json").read_text())["iters"] == 6


def test_streaming_starts_no_more_decoding_workers_than_the_cpus_it_may_use(tmp_path, monkeypatch):
    """More workers than CPUs only compete with the training, and torch warns about them: the
    prefetcher caps the count (the batches arrive in step order whatever the count)."""
    import os
    import warnings

    import torch
    from stochreg.data.streaming import FileImages, Prefetcher

    picture(0, 0).save(tmp_path / "a.png")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # torch's warning about excessive workers would fail here
        prefetcher = Prefetcher(FileImages([tmp_path / "a.png"], (3, 16, 16)),
                                draw=lambda: (torch.tensor([0]), torch.tensor([0, 0])), snapshot=lambda: None,
                                workers=4)
        idx_lb, images_lb, idx_ulb, images_ulb = prefetcher.next()
    assert prefetcher.loader.num_workers == 1
    assert images_lb.shape == (1, 3, 16, 16) and torch.equal(images_ulb[0], images_lb[0])


@pytest.mark.end_to_end
def test_eval_of_the_unlabelled_pool_of_a_streamed_run(tmp_path, capsys):
    """--split train on a --stream run decodes the pool batch by batch; the images of the
    unlabelled folder (no label) and the labelled split are left out, with class names."""
    write_tree(tmp_path / "pets", per_class=4, unlabelled=5)
    run = tmp_path / "run"
    assert main(["train", "--dataset", f"folder:{tmp_path / 'pets'}", "--labels", "6", *TRAIN, "--stream",
                 "--workers", "0", "--lambda-graph", "0", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--split", "train", "--confusions", "9"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 12 - 6 and 0 <= report["errors"] <= 6
    assert sum(c["count"] for c in report["confusions"]) == report["errors"]   # 3 classes: every cell listed
    assert all(c["true"] in CLASSES and c["predicted"] in CLASSES for c in report["confusions"])


@pytest.mark.end_to_end
def test_imagenet_preset_streams_an_imagenet_layout(tmp_path, capsys):
    """train/CLASS/*.JPEG and val/CLASS/*.JPEG, 10% of the labels, 128 px, ResNet-18, streamed:
    a couple of steps with the preset's settings (only the sizes shrink)."""
    write_tree(tmp_path / "imagenet", per_class=10, test_per_class=1, unlabelled=0)
    assert main(["train", "--preset", "paper-imagenet", "--dataset", f"folder:{tmp_path / 'imagenet'}",
                 "--iters", "2", "--batch-labelled", "3", "--batch-unlabelled", "2", "--workers", "1",
                 "--image-size", "32", "--eval-batch", "8", "--no-progress", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "3 labels" in out and "resnet18" in out
