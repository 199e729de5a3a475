"""A built-in dataset written as the folder tree of the own-images path (``stochreg data folder``).

    ROOT/labelled/CLASS/*.png   the images of the labelled split ``--labels N --seed S`` picks
    ROOT/unlabelled/*.png       every other training image, its label left out
    ROOT/test/CLASS/*.png       the test images

so that ``stochreg train --data ROOT`` meets real files as a user's folder holds them, and trains on the
same labelled images as ``--dataset NAME --labels N --seed S``. Datasets stored as image files (ELPV)
are copied file by file, at their own size; the others are written as PNG from their arrays. Files
are named by their index in the dataset's training or test set. A folder written whole carries a
``.complete`` mark and is kept as it is; one that was interrupted is written again.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from ..errors import DataError
from .datasets import load_dataset
from .images import write_png
from .split import labelled_split

COMPLETE = ".complete"


def _source_files(name: str, data_dir: str) -> dict[str, list[Path]] | None:
    """The original image files of each split, for datasets kept as files (their order is the
    dataset's); None for datasets held as arrays."""
    if name != "elpv":
        return None
    from .elpv import binary_labels, read_labels, held_out_indices
    from .fetch import dataset_folder
    files, probabilities, _ = read_labels(dataset_folder(name, data_dir))
    test = set(held_out_indices(binary_labels(probabilities)).tolist())
    return {"train": [f for i, f in enumerate(files) if i not in test],
            "test": [f for i, f in enumerate(files) if i in test]}


def write_dataset_folder(name: str, root: str | Path, labels: int, seed: int = 0, data_dir: str = "data",
                         log: Callable[[str], None] = print) -> Path:
    """Writes dataset ``name`` as ROOT/{labelled,unlabelled,test} (see the module's text); returns ROOT."""
    root = Path(root)
    if (root / COMPLETE).exists():
        log(f"{root}: already written")
        return root
    if root.exists() and any(p.name != COMPLETE for p in root.iterdir()):
        shutil.rmtree(root)   # an interrupted writing: start again rather than mix two splits
    data = load_dataset(name, data_dir, log=log)
    if labels <= 0:
        raise DataError(f"--labels must be positive: how many training images keep their label, got {labels}")
    labelled = set(labelled_split(data.train_labels, labels, data.num_classes, seed).tolist())
    # indices padded, so that the folders' sorted order is the label order (10 after 9)
    width = len(str(data.num_classes - 1))
    classes = data.class_names or [f"{k:0{width}d}" for k in range(data.num_classes)]
    files = _source_files(name, data_dir)
    for split, images, targets in (("train", data.train_images, data.train_labels), ("test", data.test_images,
                                                                                        data.test_labels)):
        for i, label in enumerate(targets.tolist()):
            kept = split == "test" or i in labelled
            folder = root / ("test" if split == "test" else "labelled" if kept else "unlabelled")
            folder = folder / classes[label] if kept else folder
            folder.mkdir(parents=True, exist_ok=True)
            if files is not None:
                source = files[split][i]
                shutil.copyfile(source, folder / f"{i:05d}{source.suffix}")
            else:
                image = images[i].numpy()
                write_png(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0), folder / f"{i:05d}.png")
    (root / COMPLETE).write_text("")
    log(f"{root}: {len(labelled)} labelled, {len(data.train_labels) - len(labelled)} unlabelled and "
        f"{len(data.test_labels)} test images")
    return root

