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
landscape, portrait or square; its longer side at most
``DEFAULT_MAX_SIDE`` pixels; other images are resized to it) are detected from the images'
headers. Unlabelled images are part of the training set with label -1: they join the unlabelled
pool and are never picked as labelled. Errors name the file or folder at fault: an unreadable or
oversized image, an empty class, a single class, a test class the training set lacks.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from ..errors import DataError
from .image_files import IMAGE_SUFFIXES, files_left_out_note, hidden, images_under
from .images import GRAYSCALE_MODES, UnreadableImage, open_image, read_each, read_image, stacked, \
    turned_a_quarter, unreadable_error

UNLABELLED = -1
T = TypeVar("T")


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


def images_word(count: int) -> str:
    """"image" or "images", to follow ``count`` in a note."""
    return "image" if count == 1 else "images"


Listing = dict[str, list[tuple[Path, str | None]]]


def read_listing(items: Listing, read: Callable[[Path], T], left_out: list[tuple[Path, str]]) \
        -> tuple[Listing, dict[str, list[T]]]:
    """``read(file)`` for every file of the listing: (the listing without the unlabelled images that cannot
    be read, each split's results in its order). The unlabelled images that cannot be read are appended
    to ``left_out`` as (file, reason): one damaged photo among thousands stops no run. A labelled or test
    image that cannot be read is an error, naming every such file with its reason, since each counts."""
    kept: Listing = {split: [] for split in items}
    results: dict[str, list[T]] = {split: [] for split in items}
    fatal = []
    for split, listing in items.items():
        for file, label in listing:
            try:
                results[split].append(read(file))
                kept[split].append((file, label))
            except UnreadableImage as exc:
                if split == "train" and label is None:
                    left_out.append((exc.file, exc.reason))
                else:
                    fatal.append(str(exc))
            except DataError as exc:
                fatal.append(str(exc))
    if fatal:
        raise unreadable_error(fatal, " (each labelled and test image counts: unreadable unlabelled ones are "
                                      "left out instead)", named=len(fatal))
    return kept, results


def left_out_note(left_out: list[tuple[Path, str]], named: int = 3) -> str | None:
    """The note on the unlabelled images left out because they cannot be read; None when there are none."""
    if not left_out:
        return None
    first = "; ".join(f"{file.name}: {reason}" for file, reason in left_out[:named])
    more = f"; and {len(left_out) - named} more" if len(left_out) > named else ""
    return (f"note: {len(left_out)} unlabelled {images_word(len(left_out))} cannot be read and "
            f"{'was' if len(left_out) == 1 else 'were'} left out ({first}{more}); the run folder's "
            f"{UNREADABLE_LIST} lists {'it' if len(left_out) == 1 else 'them all'}")


# The run folder's list of the unlabelled images left out as unreadable (path,reason rows)
UNREADABLE_LIST = "unreadable.csv"


def detect_shape(files: list[Path], log: Callable[[str], None] = print,
                 headers: list[tuple[tuple[int, int], int]] | None = None) -> tuple[tuple[int, int, int], int, int]:
    """((C, H, W), how many differ from the size read at (size_to_read), how many of them lie the other way:
    portrait among landscape or the reverse), from the files' headers only (``headers``: read already).

    Grayscale and colour images mixed in one dataset are all read as colour (the network takes
    one kind), with a note saying how many grayscale images are converted.
    """
    if headers is None:
        headers = read_each(files, image_header)
    sizes, kinds = Counter(size for size, _ in headers), Counter(kind for _, kind in headers)
    if len(kinds) > 1:
        log(f"note: {kinds[1]} grayscale {images_word(kinds[1])} among {kinds[3]} colour "
            f"{'one' if kinds[3] == 1 else 'ones'}: all are read as colour")
    (width, height), count = size_to_read(sizes)
    turned = sum(n for size, n in sizes.items() if orientation(size) * orientation((width, height)) == -1)
    return (max(kinds), height, width), len(files) - count, turned


def image_header(file: Path) -> tuple[tuple[int, int], int]:
    """An image file's (width, height) upright and its channels (1 or 3), from its header."""
    with open_image(file) as image:
        width, height = image.size
        upright = (height, width) if turned_a_quarter(image) else (width, height)
        return upright, 1 if image.mode in GRAYSCALE_MODES else 3


def orientation(size: tuple[int, int]) -> int:
    """1 for a landscape (width, height), -1 for a portrait one, 0 for a square."""
    width, height = size
    return (width > height) - (width < height)


def size_to_read(sizes: Counter) -> tuple[tuple[int, int], int]:
    """The (width, height) images of these sizes are read at, and how many have it: the most common size
    among the images of the most common orientation. Photos from two landscape cameras and one portrait
    size are read landscape even when the portrait size is the single most common one, so that the fewer
    images are squeezed; ties between orientations go to the most common size's."""
    by_orientation = Counter()
    for size, count in sizes.items():
        by_orientation[orientation(size)] += count
    first = orientation(sizes.most_common(1)[0][0])
    kept = max(by_orientation, key=lambda way: (by_orientation[way], way == first))
    return Counter({size: n for size, n in sizes.items() if orientation(size) == kept}).most_common(1)[0]


def class_names(name: str, items: dict[str, list[tuple[Path, str | None]]]) -> list[str]:
    """The sorted class names of the labelled training images; every test class must be one."""
    classes = sorted({label for _, label in items["train"] if label is not None})
    if not classes:
        raise DataError(f"{name}: the training set has no labelled images")
    if len(classes) < 2:
        raise DataError(f"{name}: only one class ({classes[0]!r}); a classifier needs at least 2 class folders")
    unknown = sorted({label for _, label in items["test"]} - set(classes))
    if unknown:
        raise DataError(f"{name}: test class {unknown[0]!r} has no labelled training images")
    return classes


# Images held in memory as uint8 are kept under this many bytes when no --image-size is given:
# a third of a 24 GiB machine, leaving room for the network, its activations and the graph.
IN_MEMORY_BYTES = 8 * 2 ** 30
# Without --image-size, larger images are read with their longer side at this many pixels, keeping
# their aspect ratio. A step holds every view of its images at the training size: at a phone photo's
# 4032x3024 one activation of a step's views alone takes hundreds of GiB, on any machine. The recipe for
# photos and scans fine-tunes an ImageNet network at this size: on ELPV's 300-pixel solar cells 128 pixels
# erred less than 96 on validation, and 160 no less than 128 at 1.6 times the cost (benchmarks/tuning.md).
DEFAULT_MAX_SIDE = 128


def listing_shape(name: str, items: Listing, image_size: int = 0, channels: int = 0,
                  log: Callable[[str], None] = print, stream: bool = False,
                  left_out: list[tuple[Path, str]] | None = None) -> tuple[tuple[int, int, int], list[str], Listing]:
    """The (C, H, W) every image is read as, the class names, and the listing without the unlabelled
    images whose header cannot be read (added to ``left_out``). With both ``image_size`` and
    ``channels`` given no file is opened here (a million ImageNet headers take a while). Without
    ``image_size``, images that would not fit in IN_MEMORY_BYTES (unless streamed) are read smaller."""
    classes = class_names(name, items)
    if image_size and channels:
        return (channels, image_size, image_size), classes, items
    items, headers = read_listing(items, image_header, [] if left_out is None else left_out)
    files = [file for split in items.values() for file, _ in split]
    (c, h, w), odd, turned = detect_shape(files, log, [header for split in items for header in headers[split]])
    c = channels or c
    if image_size:
        return (c, image_size, image_size), classes, items
    kept, other = ("landscape", "portrait") if w > h else ("portrait", "landscape")
    if turned:
        log(f"note: {turned} of the {len(files)} images {'is' if turned == 1 else 'are'} {other} among {kept} ones, "
            f"the most common orientation: read at the most common {kept} size, they are squeezed to its shape; "
            "--image-size N reads every image at NxN, squeezing both kinds alike")
    if max(h, w) > DEFAULT_MAX_SIDE:
        scale = DEFAULT_MAX_SIDE / max(h, w)
        small_h, small_w = max(8, round(h * scale)), max(8, round(w * scale))
        log(f"{name}: images of {w}x{h} read at {small_w}x{small_h}: without --image-size the longer side is kept to "
            f"{DEFAULT_MAX_SIDE} pixels, as a step holds every view of its images at that size (--image-size "
            "chooses a square size)")
        (h, w), odd = (small_h, small_w), 0
    needed = len(files) * c * h * w
    if needed > IN_MEMORY_BYTES and not stream:
        factor = (IN_MEMORY_BYTES / needed) ** 0.5
        small_h, small_w = max(8, int(h * factor)), max(8, int(w * factor))
        log(f"{name}: {len(files):,} images of {c}x{h}x{w} would take {needed / 2 ** 30:.1f} GiB in memory: read at "
            f"{c}x{small_h}x{small_w} ({len(files) * c * small_h * small_w / 2 ** 30:.1f} GiB); --image-size chooses "
            "the size, --stream keeps the images on disk")
        return (c, small_h, small_w), classes, items
    if odd:
        log(f"{name}: {odd} {images_word(odd)} resized to {w}x{h}, the most common "
            f"{kept if w != h else 'square'} size")
    return (c, h, w), classes, items


def labels_of(listing: list[tuple[Path, str | None]], classes: list[str]) -> np.ndarray:
    index = {c: k for k, c in enumerate(classes)}
    return np.array([UNLABELLED if label is None else index[label] for _, label in listing], dtype=np.int64)


def load_listing(name: str, items: Listing, shape: tuple[int, int, int],
                 left_out: list[tuple[Path, str]] | None = None) -> tuple[dict, list[str], Listing]:
    """Decodes every image: ({"train": (images, labels), "test": ...}, class names, the listing without
    the unlabelled images that cannot be decoded, which are added to ``left_out``)."""
    classes = class_names(name, items)
    items, decoded = read_listing(items, lambda file: read_image(file, shape), [] if left_out is None else left_out)
    out = {split: (stacked(decoded[split], shape)[0].numpy(), labels_of(listing, classes))
           for split, listing in items.items()}
    return out, classes, items


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

