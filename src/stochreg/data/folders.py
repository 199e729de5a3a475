"""The user's own images: a folder tree of classes, or a CSV of path,label rows.

``--data ROOT`` (or ``--dataset folder:ROOT``) reads

    ROOT/labelled/CLASS/*.png|jpg|...   labelled training images, one subfolder per class (or train/)
    ROOT/unlabelled/...                 optional: images without labels, any nesting
    ROOT/test/CLASS/...                 optional: labelled test images (or val/, ImageNet's name)

``--dataset csv:FILE`` reads rows ``path,label[,split]`` (paths relative to the CSV's folder; an
optional header row; an empty label marks an unlabelled image; split is ``train`` (the default)
or ``test``).

Without test images the run trains and predicts but has no test estimate; ``holdout`` keeps that
many labelled images of each class aside (a seeded choice) as the test set instead.

Classes are the sorted class names. The channels (1 for grayscale, 3 for colour; colour when
both kinds are present) and the image size (the most common one of the orientation most images have,
landscape, portrait or square; its longer side at most ``DEFAULT_MAX_SIDE`` pixels; other images are
resized to it) are detected from the images' headers by listing.py, which also reads the pixels.
Unlabelled images are part of the training set with label -1: they join the unlabelled pool and are
never picked as labelled. Errors name the file or folder at fault: an empty class, a single class,
a test class the training set lacks, two class folders that differ only in case.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from .image_files import IMAGE_SUFFIXES, files_left_out_note, hidden, images_under
from .listing import images_word


def class_tree(folder: Path, others: Counter | None = None) -> list[tuple[Path, str]]:
    """(image, class name) for every image under ``folder/CLASS/``; an empty class is an error; the
    files that are not images are counted into ``others`` by suffix."""
    try:
        classes = sorted(p for p in folder.iterdir() if p.is_dir() and not hidden(p.name))
    except OSError as exc:
        raise DataError(f"cannot read folder {folder}: {exc.strerror}") from None
    if not classes:
        raise DataError(f"{folder} holds no class subfolders (expected {folder}/CLASS/image files)")
    by_case: dict[str, list[str]] = {}
    for class_dir in classes:
        by_case.setdefault(class_dir.name.casefold(), []).append(class_dir.name)
    twins = next((names for names in by_case.values() if len(names) > 1), None)
    if twins:   # two classes a person means as one, or a case-insensitive disk would merge
        raise DataError(f"class folders {' and '.join(twins)} in {folder} differ only in upper and lower case: "
                        f"merge them into one, or rename one if they are different classes")
    items = []
    for class_dir in classes:
        images = images_under(class_dir, others)
        if not images:
            raise DataError(f"class folder {class_dir} holds no image files (png, jpg, ...)")
        items += [(image, class_dir.name) for image in images]
    return items


def _first_existing(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


LABELLED_FOLDERS, TEST_FOLDERS, UNLABELLED_FOLDERS = ("labelled", "labeled", "train"), ("test", "val"), \
    ("unlabelled", "unlabeled")


def _class_folders_hint(root: Path) -> str:
    """Where ``root``'s own subfolders hold images (class folders one level too high, a common
    layout elsewhere), the move that makes it a stochreg tree; else nothing."""
    try:
        classes = sorted(p.name for p in root.iterdir()
                         if p.is_dir() and not hidden(p.name) and p.name not in UNLABELLED_FOLDERS + TEST_FOLDERS
                         and images_under(p))
    except (OSError, DataError):
        return ""
    if len(classes) < 2:
        return ""
    named = ", ".join(classes[:3]) + (f" and {len(classes) - 3} more" if len(classes) > 3 else "")
    if root.name in LABELLED_FOLDERS:   # the labelled folder itself was given: its parent is the tree
        return f"; its folders {named} hold images: give the folder above it, --data {root.parent}"
    return f"; its folders {named} hold images: if they are the classes, move them into {root / 'labelled'}/"


def read_folder_tree(root: Path, log: Callable[[str], None] = print) -> dict[str, list[tuple[Path, str | None]]]:
    """{"train": [(file, class or None)], "test": [...]} from ROOT/labelled (or train),
    ROOT/unlabelled and, when there is one, ROOT/test (or val); files there that are not images
    get a note."""
    if root.is_file() and root.suffix.lower() == ".zip":
        raise DataError(f"{root} is a zip archive: unpack it (unzip {root.name}) and give the folder it holds, "
                        "the one with labelled/CLASS/...")
    if root.is_file():
        raise DataError(f"{root} is a file: give the folder that holds labelled/CLASS/... (a CSV listing of "
                        "images is read with --dataset csv:FILE)")
    if not root.is_dir():
        raise DataError(f"no such folder: {root}")
    labelled = _first_existing(root, LABELLED_FOLDERS)
    if labelled is None:
        raise DataError(f"{root} must hold labelled/CLASS/... folders (or train/CLASS/...); "
                        "optional: unlabelled/... and test/CLASS/..." + _class_folders_hint(root))
    test = _first_existing(root, TEST_FOLDERS)
    others: Counter = Counter()
    items = {"train": list(class_tree(labelled, others)), "test": list(class_tree(test, others)) if test else []}
    unlabelled = _first_existing(root, UNLABELLED_FOLDERS)
    if unlabelled is not None:
        files = images_under(unlabelled, others)
        if not files:
            raise DataError(f"folder {unlabelled} holds no image files (png, jpg, ...)")
        items["train"] += [(file, None) for file in files]
    for note in [files_left_out_note(others), loose_images_note(root, labelled, test)]:
        if note:
            log(note)
    return items


def loose_images_note(root: Path, *class_parents: Path | None) -> str | None:
    """A note on the images lying directly in ROOT, or in labelled/ or test/ beside the class folders, which
    belong to no class and are not read; None where there are none."""
    loose = []
    for folder in (root, *(parent for parent in class_parents if parent is not None)):
        try:
            loose += [p for p in folder.iterdir() if p.is_file() and not hidden(p.name)
                      and p.suffix.lower() in IMAGE_SUFFIXES]
        except OSError:
            continue
    if not loose:
        return None
    where = sorted({str(p.parent) for p in loose})
    return (f"note: {len(loose)} {images_word(len(loose))} directly in {' and '.join(where)} "
            f"{'was' if len(loose) == 1 else 'were'} left out (e.g. {loose[0].name}): images are read from "
            "labelled/CLASS/, unlabelled/ and test/CLASS/; move them into one of those")


def hold_out(items: dict[str, list[tuple[Path, str | None]]], per_class: int, seed: int,
             name: str) -> dict[str, list[tuple[Path, str | None]]]:
    """``per_class`` labelled training images of each class moved to the test set (a seeded choice),
    for data without test images; refused when a class would keep fewer than 2 to train on."""
    if items["test"]:
        raise DataError(f"{name} has test images already; --holdout is for data without them")
    by_class: dict[str, list[int]] = {}
    for i, (_, label) in enumerate(items["train"]):
        if label is not None:
            by_class.setdefault(label, []).append(i)
    short = {c: len(members) for c, members in by_class.items() if len(members) - per_class < 2}
    if short:
        cls, count = min(short.items(), key=lambda kv: kv[1])
        raise DataError(f"--holdout {per_class} leaves class {cls!r} fewer than 2 labelled images to train on "
                        f"(it has {count}); use --holdout {max(0, count - 2)} or fewer, or add a test/ folder")
    generator = np.random.default_rng(seed + 6007)
    held = set()
    for cls in sorted(by_class):
        held.update(generator.choice(by_class[cls], size=per_class, replace=False).tolist())
    return {"train": [item for i, item in enumerate(items["train"]) if i not in held],
            "test": [item for i, item in enumerate(items["train"]) if i in held]}


def read_csv_listing(path: Path, log: Callable[[str], None] = print) -> dict[str, list[tuple[Path, str | None]]]:
    """{"train": [(file, class or None)], "test": [...]} from rows path,label[,split]; ``log`` is there
    for the folder reader's sake: a CSV names its files, so none is left out unsaid."""
    try:
        with open(path, newline="") as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable CSV file: {exc}") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    items: dict[str, list] = {"train": [], "test": []}
    for number, row in enumerate(rows, start=1):
        if len(row) not in (2, 3):
            raise DataError(f"{path}, row {number}: expected path,label[,split], got {len(row)} columns")
        file, label = (path.parent / row[0].strip()), row[1].strip()
        split = row[2].strip().lower() if len(row) == 3 and row[2].strip() else "train"
        if split not in items:
            raise DataError(f"{path}, row {number}: split must be train or test, got {split!r}")
        if not file.is_file():
            raise DataError(f"{path}, row {number}: no such image file {file}")
        if split == "test" and not label:
            raise DataError(f"{path}, row {number}: a test image needs a label")
        items[split].append((file, label or None))
    return items


def user_dataset_reader(spec: str, holdout: int = 0,
                        seed: int = 0) -> tuple[str, Callable[..., dict[str, list]]] | None:
    """For ``folder:ROOT`` or ``csv:FILE``, (display name, function listing the files, with
    ``holdout`` labelled images of each class moved to the test set); else None."""
    kind, _, where = spec.partition(":")
    readers = {"folder": read_folder_tree, "csv": read_csv_listing}
    if kind not in readers or not where:
        return None

    def listing(log: Callable[[str], None] = print) -> dict[str, list]:
        items = readers[kind](Path(where).expanduser(), log)
        return hold_out(items, holdout, seed, spec) if holdout else items
    return spec, listing

