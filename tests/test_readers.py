"""Readers of CIFAR-10/100 (pickled batches), SVHN (.mat) and small NORB on tiny files in the real formats; training on them."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from stochreg.cli import main
from stochreg.data import load_dataset
from stochreg.data.cifar import read_cifar
from stochreg.errors import DataError
from tinydata import write_cifar


def train_briefly(tmp_path, dataset, *flags) -> int:
    """A few training steps of a small net on a dataset written under tmp_path/data."""
    return main(["train", "--dataset", dataset, "--data-dir", str(tmp_path / "data"), "--views", "3",
                 "--eval-every", "0", "--net", "compact-small", "--no-progress", "--out", str(tmp_path / "run"),
                 *flags])


@pytest.mark.parametrize("name, subfolder", [("cifar10", True), ("cifar10", False), ("cifar100", True)])
def test_reads_what_was_written(tmp_path, name, subfolder):
    written = write_cifar(tmp_path / name, name, subfolder=subfolder)
    data = load_dataset(name, tmp_path)
    assert data.num_classes == (10 if name == "cifar10" else 100) and data.image_shape == (3, 32, 32)
    assert np.array_equal(data.train_images.numpy(), written["train"][0])
    assert np.array_equal(data.test_labels.numpy(), written["test"][1])


def test_rows_are_red_then_green_then_blue_planes(tmp_path):
    written = write_cifar(tmp_path / "c", "cifar10", n_train=10, n_test=5)
    raw = pickle.loads((tmp_path / "c" / "cifar-10-batches-py" / "test_batch").read_bytes(), encoding="bytes")
    first = raw[b"data"][0]
    images = read_cifar(tmp_path / "c", "cifar10")["test"][0]
    assert np.array_equal(images[0, 0].ravel(), first[:1024]) and np.array_equal(images[0, 2].ravel(), first[2048:])
    assert np.array_equal(images, written["test"][0])


class Payload:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_a_batch_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_cifar(tmp_path / "c", "cifar10", n_train=10, n_test=5)
    (tmp_path / "c" / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": Payload()}))
    with pytest.raises(DataError, match="corrupt data file .*test_batch: refusing to load builtins.exec"):
        read_cifar(tmp_path / "c", "cifar10")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], "pickle data was truncated"),
    (lambda b: pickle.dumps([1, 2, 3]), "not a CIFAR batch (a list, not a dict)"),
    (lambda b: pickle.dumps({b"data": np.zeros((5, 100), np.uint8), b"labels": [0] * 5}), "expected N x 3072"),
])
def test_damaged_batches_are_clear_errors(tmp_path, damage, message):
    write_cifar(tmp_path / "c", "cifar10", n_train=10, n_test=5)
    path = tmp_path / "c" / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_cifar(tmp_path / "c", "cifar10")


def test_missing_files_say_where_to_get_them(tmp_path):
    with pytest.raises(DataError, match="download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"):
        load_dataset("cifar10", tmp_path, fetch_missing=False)


@pytest.mark.end_to_end
def test_train_runs_end_to_end_on_cifar_format(tmp_path, capsys):
    write_cifar(tmp_path / "data" / "cifar10", "cifar10")
    assert train_briefly(tmp_path, "cifar10", "--labels", "20", "--transform", "crop-flip", "--iters", "6",
                         "--batch-labelled", "10", "--batch-unlabelled", "8", "--eval-every", "3",
                         "--eval-batch", "25") == 0
    assert "final test error" in capsys.readouterr().out


def write_svhn(folder, counts={"train": 60, "test": 30, "extra": 20}):
    """Tiny SVHN files in the real format: MATLAB v5 with X (32, 32, 3, N) and y (N, 1) in 1..10."""
    from scipy.io import savemat
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    written = {}
    for split, n in counts.items():
        y = (np.arange(n) % 10) + 1
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        savemat(folder / f"{split}_32x32.mat", {"X": x, "y": y.reshape(-1, 1).astype(np.uint8)})
        written[split] = (x, y)
    return written


def test_svhn_reads_images_and_maps_label_10_to_digit_0(tmp_path):
    written = write_svhn(tmp_path / "svhn")
    data = load_dataset("svhn", tmp_path)
    x, y = written["train"]
    assert data.image_shape == (3, 32, 32) and len(data.train_labels) == 60 and data.is_digits
    assert np.array_equal(data.train_images[7].numpy(), x[..., 7].transpose(2, 0, 1))
    assert data.train_labels[9].item() == 0 and y[9] == 10 and data.train_labels[0].item() == 1
    assert len(load_dataset("svhn-extra", tmp_path).train_labels) == 80  # same folder, plus extra


def test_svhn_damaged_or_missing_files_are_clear_errors(tmp_path):
    write_svhn(tmp_path / "svhn")
    (tmp_path / "svhn" / "test_32x32.mat").write_bytes(b"MATLAB 5.0 but then nothing")
    with pytest.raises(DataError, match="corrupt data file .*test_32x32.mat: not a readable SVHN .mat file"):
        load_dataset("svhn", tmp_path)
    with pytest.raises(DataError, match="missing data file .*train_32x32.mat; download it from"):
        load_dataset("svhn", tmp_path / "elsewhere", fetch_missing=False)


@pytest.mark.end_to_end
def test_train_runs_end_to_end_on_svhn_format(tmp_path, capsys):
    write_svhn(tmp_path / "data" / "svhn")
    assert train_briefly(tmp_path, "svhn", "--labels", "20", "--transform", "crop", "--iters", "4",
                         "--batch-labelled", "10", "--batch-unlabelled", "8", "--eval-batch", "30") == 0
    assert "final test error" in capsys.readouterr().out


def write_norb(folder, n_train=30, n_test=15):
    from stochreg.data.norb import FILES, write_norb_matrix
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    written = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 2, 96, 96), dtype=np.uint8)
        labels = (np.arange(n) % 5).astype(np.int32)
        write_norb_matrix(folder / f"{FILES[split]}-dat.mat", images)
        write_norb_matrix(folder / f"{FILES[split]}-cat.mat", labels)
        written[split] = (images, labels)
    return written


def test_norb_reads_stereo_pairs_as_two_channels(tmp_path):
    written = write_norb(tmp_path / "norb")
    header = (tmp_path / "norb" / "smallnorb-5x01235x9x18x6x2x96x96-testing-cat.mat").read_bytes()[:20]
    assert header == bytes.fromhex("544c3d1e" "01000000" "0f000000" "01000000" "01000000")  # 1-d: 3 sizes stored
    data = load_dataset("norb", tmp_path)
    assert data.num_classes == 5 and data.image_shape == (2, 96, 96)
    assert np.array_equal(data.test_images.numpy(), written["test"][0])
    assert np.array_equal(data.train_labels.numpy(), written["train"][1])


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-10], "truncated or padded"),
    (lambda b: b"\x00\x00\x00\x00" + b[4:], "not a NORB binary matrix"),
    (lambda b: b[:6], "truncated header"),
])
def test_norb_damaged_files_are_clear_errors(tmp_path, damage, message):
    write_norb(tmp_path / "norb")
    path = tmp_path / "norb" / "smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=message):
        load_dataset("norb", tmp_path)


@pytest.mark.end_to_end
def test_train_runs_end_to_end_on_norb_format(tmp_path, capsys):
    write_norb(tmp_path / "data" / "norb")
    assert train_briefly(tmp_path, "norb", "--labels", "10", "--transform", "crop-flip", "--iters", "2",
                         "--batch-labelled", "5", "--batch-unlabelled", "4", "--eval-batch", "15") == 0
    assert "final test error" in capsys.readouterr().out


@pytest.mark.parametrize("preset, dataset, writer", [
    ("paper-cifar10", "cifar10", lambda folder: write_cifar(folder / "cifar10", "cifar10", n_train=40, n_test=10)),
    ("paper-svhn", "svhn", lambda folder: write_svhn(folder / "svhn", {"train": 40, "test": 10})),
    ("paper-norb", "norb", lambda folder: write_norb(folder / "norb", n_train=20, n_test=10)),
])
@pytest.mark.end_to_end
def test_paper_presets_run_unchanged_on_their_formats(tmp_path, capsys, preset, dataset, writer):
    """The authors' settings (net, n=5, transformations, schedule) for a few steps on tiny files;
    only the sizes shrink (labels, steps, batch, test-time passes), never the recipe."""
    writer(tmp_path / "data")
    assert main(["train", "--preset", preset, "--data-dir", str(tmp_path / "data"), "--labels", "10",
                 "--iters", "2", "--batch-labelled", "5", "--batch-unlabelled", "2", "--tta-passes", "2",
                 "--eval-batch", "10", "--no-progress", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "final test error" in out and f"{dataset}," in out and "n=5" in out


def test_show_views_draws_canvas_views_and_stereo_pairs(tmp_path, capsys):
    """The paper's NORB transformation enlarges the views by its 16 px canvas, and NORB images
    are stereo pairs: the grid shows the first camera, originals on the same canvas."""
    from PIL import Image
    write_norb(tmp_path / "data" / "norb")
    out = tmp_path / "views.png"
    assert main(["show-views", "--dataset", "norb", "--data-dir", str(tmp_path / "data"), "--transform",
                 "paper-natural", "--method", "ts-me", "--views", "2", "--images", "3", "--scale", "1", "--out", str(out)]) == 0
    with Image.open(out) as image:
        side = 96 + 2 * 16
        assert image.mode == "L" and image.size == (3 * (side + 2) + 2, 3 * (side + 2) + 2)
