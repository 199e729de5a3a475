"""The table of bad inputs: each gives one clear line on stderr and a non-zero exit, never a
traceback from inside torch and never a silently wrong result. docs/errors.md lists the same
cases with the exact line each prints (temporary folders shortened): every case's test compares
its row there with what the command really printed. After changing a message, rewrite the rows
with ``STOCHREG_UPDATE_ERRORS_DOC=1 python -m pytest tests/test_bad_inputs.py``."""
from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from stochreg.cli import main
from stochreg.data.idx import read_idx, write_idx
from test_user_data import write_tree
from tinydata import write_cifar

DOCS = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
TINY = ["--iters", "6", "--batch-labelled", "10", "--batch-unlabelled", "8", "--views", "3", "--eval-every", "0",
        "--eval-batch", "50", "--rampup-iters", "4", "--no-progress", "--net", "compact-small"]


@dataclass
class Case:
    name: str
    args: list[str]                                     # {data}, {tmp} and {run} are filled in
    message: str                                        # must appear in the one line on stderr
    setup: Callable[[Path, Path], None] | None = None   # (data_dir, tmp_path): damage or create files


def train(*extra: str) -> list[str]:
    return ["train", "--data-dir", "{data}", "--labels", "20", "--out", "{tmp}/r", *TINY, *extra]


def mnist_file(data: Path, name: str) -> Path:
    return data / "mnist" / name


def rewrite(data: Path, name: str, change: Callable[[np.ndarray], np.ndarray]) -> None:
    path = mnist_file(data, name)
    write_idx(path, change(read_idx(path)))


def corrupt_magic(data, tmp):
    path = mnist_file(data, "train-images-idx3-ubyte.gz")
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(b"\x07\x07" + raw[2:]))


def foreign_header(data, tmp):
    """First bytes that pass for an IDX magic number, followed by another format's bytes."""
    path = mnist_file(data, "train-images-idx3-ubyte.gz")
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"PK\x03\x04 not an idx file at all" * 100))


def truncate(data, tmp):
    path = mnist_file(data, "t10k-images-idx3-ubyte.gz")
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-100]))


def not_gzip(data, tmp):
    mnist_file(data, "train-labels-idx1-ubyte.gz").write_bytes(b"<html>404 Not Found</html>")


def nan_pixels(data, tmp):
    def with_nan(a):
        a = a.astype(np.float32) / 255
        a[3, 10, 10] = np.nan
        return a
    rewrite(data, "train-images-idx3-ubyte.gz", with_nan)


def out_of_range_pixels(data, tmp):
    rewrite(data, "t10k-images-idx3-ubyte.gz", lambda a: a.astype(np.int16) * 4)


def wrong_size(data, tmp):
    rewrite(data, "t10k-images-idx3-ubyte.gz", lambda a: np.pad(a, ((0, 0), (2, 2), (2, 2))))


def colour_images(data, tmp):
    rewrite(data, "train-images-idx3-ubyte.gz", lambda a: np.repeat(a[..., None], 3, axis=3))


def labels_out_of_range(data, tmp):
    rewrite(data, "train-labels-idx1-ubyte.gz", lambda a: np.where(np.arange(len(a)) == 7, 12, a).astype(np.uint8))


def float_labels(data, tmp):
    rewrite(data, "t10k-labels-idx1-ubyte.gz", lambda a: a.astype(np.float32))


def fewer_labels(data, tmp):
    rewrite(data, "t10k-labels-idx1-ubyte.gz", lambda a: a[:-1])


def remove_labels(data, tmp):
    mnist_file(data, "train-labels-idx1-ubyte.gz").unlink()


def config_file(text: str) -> Callable[[Path, Path], None]:
    def write(data, tmp):
        (tmp / "c.yaml").write_text(text)
    return write


def blocked_out_dir(data, tmp):
    (tmp / "file").write_text("a file, not a folder")


def finished_run(data, tmp):
    assert main(["train", "--data-dir", str(data), "--labels", "20", "--out", str(tmp / "run"), *TINY]) == 0


def float_image(path, top):
    """A float TIFF (a depth map, a measurement) of values 0..top."""
    from PIL import Image
    Image.fromarray(np.linspace(0, top, 64, dtype=np.float32).reshape(8, 8)).save(path)


def malicious_checkpoint(data, tmp):
    finished_run(data, tmp)

    class Payload:
        def __reduce__(self):
            return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))
    torch.save({"model": Payload()}, tmp / "run" / "checkpoint.pt")


def truncated_checkpoint(data, tmp):
    finished_run(data, tmp)
    path = tmp / "run" / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:500])


CASES = [
    # names
    Case("unknown dataset", train("--dataset", "cifar-1000"), "unknown dataset 'cifar-1000'"),
    Case("unknown method", train("--method", "magic"), "unknown method 'magic'"),
    Case("unknown network", train("--net", "resnet-9000"), "unknown network 'resnet-9000'"),
    Case("unknown transform", train("--transform", "swirl"), "unknown transform 'swirl'"),
    Case("unknown optimizer", train("--optimizer", "lion"), "unknown optimizer 'lion'"),
    Case("unknown precision", train("--precision", "fp16"), "unknown precision 'fp16'; choose fp32, bf16 or auto"),
    Case("unknown preset", ["train", "--preset", "fast"], "stochreg train: error: argument --preset: invalid choice: 'fast'"),
    # sizes and numbers
    Case("more labels than images", train("--labels", "5000"), "exceeds the 200 training images"),
    Case("negative label count", train("--labels", "-10"), "labels must be >= 0"),
    Case("zero steps", train("--iters", "0"), "iters must be positive"),
    Case("zero batch", train("--batch-labelled", "0"), "batch_labelled must be positive"),
    Case("negative threads", train("--threads", "-1"), "threads must be >= 0"),
    Case("one view for TS", train("--method", "ts-me", "--views", "1"), "needs views >= 2"),
    Case("two views for the default", train("--views", "2"), "needs views >= 3 (2 weak and 1 strong)"),
    Case("negative learning rate", train("--lr", "-1"), "lr must be a finite number >= 0"),
    Case("NaN weight", train("--lambda-ts", "nan"), "lambda_ts must be a finite number >= 0"),
    Case("EMA decay of 1.5", train("--ema", "1.5"), "ema must be in [0, 1)"),
    Case("no checkpoints kept", train("--keep-checkpoints", "0"), "keep_checkpoints must be positive"),
    Case("not a number", train("--lr", "fast"), "argument --lr: invalid float value: 'fast'"),
    Case("flips on digits", train("--transform", "crop-flip"), "changes the class of digits"),
    Case("strong labelled views without strong views", train("--method", "ts-me", "--labelled-strong", "0.5"),
         "method ts-me has none"),
    Case("a separate target pass without target views", train("--method", "ts-me", "--separate-targets"),
         "method ts-me has none (fixmatch has one)"),
    Case("teacher targets without an EMA", train("--method", "fixmatch", "--views", "2", "--teacher-targets",
                                                 "--ema", "0"), "--ema must be > 0"),
    Case("negative ramp-up", train("--rampup-iters", "-5"), "rampup_iters must be >= 0"),
    Case("label-propagation graph of streamed images", ["train", "--dataset", "folder:{tmp}/pets", "--stream", "--labels", "6",
                                                         "--lambda-graph", "1", "--out", "{tmp}/r", *TINY],
         "--lambda-graph needs the training images in memory", lambda d, t: write_tree(t / "pets", per_class=6)),
    # the user's own folders
    Case("fewer labels than classes", ["train", "--data", "{tmp}/pets", "--labels", "2", "--out", "{tmp}/r", *TINY],
         "--labels 2 is fewer than the 3 classes", lambda d, t: write_tree(t / "pets")),
    Case("two class folders differing only in case", ["train", "--data", "{tmp}/pets", "--out", "{tmp}/r", *TINY],
         "differ only in upper and lower case", lambda d, t: (
             write_tree(t / "pets"), (t / "pets" / "train" / "cat").rename(t / "pets" / "train" / "Dog"))),
    Case("unreadable labelled images", ["train", "--data", "{tmp}/pets", "--out", "{tmp}/r", *TINY],
         "2 image files cannot be read (mend or remove them): {tmp}/pets/train/cat/a.png: not an image (text); "
         "{tmp}/pets/train/cat/b.jpg: empty file (each labelled and test image counts", lambda d, t: (
             write_tree(t / "pets"), (t / "pets" / "train" / "cat" / "a.png").write_text("notes"),
             (t / "pets" / "train" / "cat" / "b.jpg").write_bytes(b""))),
    Case("a zip archive for a folder", ["train", "--data", "{tmp}/pets.zip", "--out", "{tmp}/r", *TINY],
         "is a zip archive: unpack it", lambda d, t: (t / "pets.zip").write_bytes(b"PK\x05\x06" + bytes(18))),
    Case("a folder named as a dataset", ["train", "--dataset", "{tmp}/pets", "--out", "{tmp}/r", *TINY],
         "no built-in dataset of that name; for your own images give --data", lambda d, t: write_tree(t / "pets")),
    # data files
    Case("missing data file", train(), "missing data file", remove_labels),
    Case("not an IDX file", train(), "wrong magic number", corrupt_magic),
    Case("an IDX-like header of another file", train(), "not an IDX file (its header announces a", foreign_header),
    Case("truncated data file", train(), "truncated or padded", truncate),
    Case("a web page instead of the data", train(), "corrupt data file", not_gzip),
    Case("NaN pixels", train(), "mnist train images: 1 NaN or infinite pixel values", nan_pixels),
    Case("pixel values out of range", train(), "pixel values outside 0..255", out_of_range_pixels),
    Case("images of the wrong size", train(), "t10k images are 32x32, expected 28x28", wrong_size),
    Case("colour images in a grayscale format", train(), "holds a 4-d array, expected (N, H, W)", colour_images),
    Case("labels out of range", train(), "labels outside 0..9", labels_out_of_range),
    Case("labels that are not integers", train(), "labels must be integers, got float32", float_labels),
    Case("fewer labels than images", train(), "100 images but 99 labels", fewer_labels),
    # config files
    Case("config: unknown key", train("--config", "{tmp}/c.yaml"), "unknown config key(s): lables (did you mean labels?)",
         config_file("lables: 100\n")),
    Case("config: wrong type", train("--config", "{tmp}/c.yaml"), "config key 'momentum' must be float, got 'fast'",
         config_file("momentum: fast\n")),
    Case("config: not a mapping", train("--config", "{tmp}/c.yaml"), "must hold a mapping", config_file("- a\n")),
    Case("config: broken YAML", train("--config", "{tmp}/c.yaml"), "is not valid YAML", config_file("a: [1,\n")),
    Case("config: missing file", train("--config", "{tmp}/none.yaml"), "cannot read config file"),
    # run folders and checkpoints
    Case("output folder not writable", ["train", "--data-dir", "{data}", "--labels", "20", "--out", "{tmp}/file/r",
                                        *TINY], "cannot write to run folder", blocked_out_dir),
    Case("resume with other settings", ["train", "--resume", "{tmp}/run", "--lr", "0.5"],
         "cannot resume {tmp}/run with different settings (lr: 0.1 -> 0.5)", finished_run),
    Case("resume of a folder that is no run", ["train", "--resume", "{tmp}"], "not a run folder (no config.yaml)"),
    Case("resume with --out", ["train", "--resume", "{tmp}/run", "--out", "{tmp}/x"],
         "cannot be combined with --out", finished_run),
    Case("checkpoint with code in it", ["eval", "{tmp}/run"], "refusing checkpoint {tmp}/run/checkpoint.pt: it holds a pickled object (exec) that would run code when loaded", malicious_checkpoint),
    Case("truncated checkpoint", ["eval", "{tmp}/run"], "corrupt checkpoint {tmp}/run/checkpoint.pt: PytorchStreamReader failed reading zip archive", truncated_checkpoint),
    Case("eval of a missing run", ["eval", "{tmp}/nothing"], "run folder {tmp}/nothing does not exist"),
    Case("eval: --on with --split train", ["eval", "{tmp}/run", "--on", "{tmp}", "--split", "train"],
         "--on scores other images; it cannot be combined with --split train", finished_run),
    Case("eval: --on a folder with a class the run lacks", ["eval", "{tmp}/run", "--on", "{tmp}/more"],
         "class folder {tmp}/more/ferret is not a class of the run (its classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)",
         lambda d, t: (finished_run(d, t), (t / "more" / "ferret").mkdir(parents=True),
                       (t / "more" / "ferret" / "0.png").write_bytes(b""))),
    Case("zero test-time passes", ["eval", "{tmp}/run", "--passes", "0"], "--passes must be at least 1",
         finished_run),
    Case("negative confusion count", ["eval", "{tmp}/run", "--confusions", "-1"], "--confusions must be 0 or more",
         finished_run),
    # using a model and looking at runs
    Case("predict: a file that is not an image", ["predict", "{tmp}/run", "{tmp}/notes.png"],
         "cannot read image {tmp}/notes.png: not an image (text)", lambda d, t: (
             finished_run(d, t), (t / "notes.png").write_text("not a picture"))),
    Case("predict: several files that are not images", ["predict", "{tmp}/run", "{tmp}/scans"],
         "7 image files cannot be read (mend or remove them): {tmp}/scans/0.png: not an image (text); "
         "{tmp}/scans/1.png: not an image (text); ", lambda d, t: (
             finished_run(d, t), (t / "scans").mkdir(),
             [(t / "scans" / f"{i}.png").write_text("not a picture") for i in range(7)])),
    Case("predict: a float image beyond the pixel range", ["predict", "{tmp}/run", "{tmp}/depth.tif"],
         "image {tmp}/depth.tif: pixel values outside 0..255 (from 0.0 to 300.0)", lambda d, t: (
             finished_run(d, t), float_image(t / "depth.tif", 300.0))),
    Case("predict: no such image", ["predict", "{tmp}/run", "{tmp}/missing.png"],
         "no such image file or folder: {tmp}/missing.png", finished_run),
    Case("predict: a folder without images", ["predict", "{tmp}/run", "{tmp}/run/checkpoints"],
         "no image files (png, jpg, ...) in folder", finished_run),
    Case("predict: output neither CSV nor JSON", ["predict", "{tmp}/run", "{tmp}/x.png", "--out", "{tmp}/p.txt"],
         "--out must end in .csv or .json", finished_run),
    Case("predict: --reject given a word", ["predict", "{tmp}/run", "{tmp}/x.png", "--reject", "high"],
         "--reject takes a number (an out-of-class score, 0 to 2), got 'high'", finished_run),
    Case("predict: --reject with a run that has no out-of-class scores", ["predict", "{tmp}/run", "{tmp}/x.png",
                                                                          "--reject"],
         "has no outliers.safetensors", lambda d, t: (finished_run(d, t), (t / "run" / "outliers.safetensors").unlink())),
    Case("predict: a run that has not finished", ["predict", "{tmp}/run", "{tmp}/x.png"],
         "has no final checkpoint.pt yet", lambda d, t: (finished_run(d, t), (t / "run" / "checkpoint.pt").unlink())),
    Case("show-views: zero images", ["show-views", "--data-dir", "{data}", "--images", "0"],
         "--images and --scale must be at least 1"),
    Case("runs: no such folder", ["runs", "{tmp}/nowhere"], "no such folder: {tmp}/nowhere"),
    Case("compare: not a run folder", ["compare", "{tmp}"], "is not a run folder (no readable config.yaml)"),
    Case("CUDA without a GPU", train("--device", "cuda:0"), "no CUDA GPU is available"),
    Case("deskewing colour images", ["train", "--dataset", "cifar10", "--data-dir", "{tmp}/colour", "--labels", "20",
                                     "--out", "{tmp}/r", *TINY, "--graph-deskew"],
         "--graph-deskew is for single-channel images such as digits; cifar10 has 3 channels: leave it out",
         setup=lambda data, tmp: write_cifar(tmp / "colour" / "cifar10", "cifar10")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.end_to_end
def test_bad_input_gives_one_clear_line(case, tiny_data_dir, tmp_path, capsys, monkeypatch):
    if "cuda" in case.args and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    monkeypatch.chdir(tmp_path)
    if case.setup:
        case.setup(tiny_data_dir, tmp_path)
    capsys.readouterr()
    fill = lambda s: s.replace("{data}", str(tiny_data_dir)).replace("{tmp}", str(tmp_path))
    try:
        code = main([fill(a) for a in case.args])
    except SystemExit as exc:  # argparse's own errors (invalid choice, not a number)
        code = exc.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert fill(case.message) in lines[0], err
    assert not (tmp_path / "PWNED").exists()
    row = doc_row(case.name, shorten(lines[0], tiny_data_dir, tmp_path))
    if os.environ.get("STOCHREG_UPDATE_ERRORS_DOC"):
        write_doc_row(case.name, row)
    assert row in DOCS.read_text().splitlines(), f"docs/errors.md's row differs from the real output:\n{row}"


def shorten(line: str, data_dir: Path, tmp_path: Path) -> str:
    """The line as the docs show it: the test's temporary folders as data/ and the current folder."""
    return line.replace(str(data_dir), "data").replace(f"{tmp_path}/", "").replace(str(tmp_path), ".")


def doc_row(name: str, line: str) -> str:
    quoted = f"`` {line} ``" if "`" in line else f"`{line}`"
    return f"| {name} | {quoted} |"


def write_doc_row(name: str, row: str) -> None:
    lines = DOCS.read_text().splitlines()
    at = [i for i, line in enumerate(lines) if line.startswith(f"| {name} | ")]
    assert at, f"docs/errors.md has no row for {name!r}: add one to its first table"
    lines[at[0]] = row
    DOCS.write_text("\n".join(lines) + "\n")


def test_there_are_at_least_twenty_distinct_cases():
    assert len({c.name for c in CASES}) == len(CASES) >= 20


def test_docs_table_holds_exactly_the_cases():
    first_table = DOCS.read_text().split("\n\n| case |")[1].split("\n\n")[0]
    names = [m.group(1) for m in re.finditer(r"^\| ([^|`]+?) \| `", first_table, re.M)]
    assert sorted(names) == sorted(c.name for c in CASES)


@pytest.mark.end_to_end
def test_a_run_out_of_memory_names_the_settings_that_need_less(tmp_path, capsys, monkeypatch):
    """Large photos can ask for more memory than the machine has; torch's CPU allocator then fails
    inside an operator. The step fails here as it does there, and the user gets one line."""
    import stochreg.train.state as state

    def allocate_too_much(learner, step):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 1228800000 bytes. Error code 12 (Cannot allocate memory)")
    monkeypatch.setattr(state, "training_step", allocate_too_much)
    write_tree(tmp_path / "photos")
    code = main(["train", "--dataset", f"folder:{tmp_path / 'photos'}", "--image-size", "40", "--out",
                 str(tmp_path / "r"), *TINY])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert lines[0] == ("stochreg: error: ran out of memory on cpu with images of 3x40x40 (each step holds 10 labelled "
                        "images and 8 unlabelled ones in 3 views each; an evaluation batch 50 images); start again "
                        "with less: --image-size 28 (smaller images on a smaller network), --batch-unlabelled 4")
    assert "| out of memory (large images) | `" + lines[0] + "`" in DOCS.read_text()
