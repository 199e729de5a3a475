"""Fashion-MNIST written as a folder of PNG files in the layout a user has, for the own-images benchmark.

    python benchmarks/fashion_folder.py --seed 0     # writes data/fashion400-folder-s0/

ROOT/labelled/CLASS/*.png holds the 400 images (40 per class) that stochreg's labelled split of
``--dataset fashion-mnist --labels 400 --seed S`` picks, ROOT/unlabelled/*.png the other 59,600
training images, and ROOT/test/CLASS/*.png the 10,000 test images. Class folders are numbered so
that their sorted order is Fashion-MNIST's label order. Written once; an existing folder is kept.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from stochreg.data import labelled_split, load_dataset

CLASSES = ("0-t-shirt", "1-trouser", "2-pullover", "3-dress", "4-coat", "5-sandal", "6-shirt", "7-sneaker",
           "8-bag", "9-ankle-boot")
LABELS = 400


def write_fashion_folder(root: Path, seed: int, data_dir: str = "data") -> Path:
    """Writes the folder for split ``seed`` (unless it is complete already); returns it."""
    done = root / ".complete"
    if done.exists():
        return root
    data = load_dataset("fashion-mnist", data_dir)
    labelled = set(labelled_split(data.train_labels, LABELS, len(CLASSES), seed).tolist())
    for split in ("labelled", "unlabelled", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
    for name in CLASSES:
        (root / "labelled" / name).mkdir(exist_ok=True)
        (root / "test" / name).mkdir(exist_ok=True)
    for i, (image, label) in enumerate(zip(data.train_images, data.train_labels.tolist())):
        folder = root / "labelled" / CLASSES[label] if i in labelled else root / "unlabelled"
        Image.fromarray(image[0].numpy()).save(folder / f"{i:05d}.png")
    for i, (image, label) in enumerate(zip(data.test_images, data.test_labels.tolist())):
        Image.fromarray(image[0].numpy()).save(root / "test" / CLASSES[label] / f"{i:05d}.png")
    done.write_text("")
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="labelled split seed (default 0)")
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    print(write_fashion_folder(Path(args.data_dir) / f"fashion400-folder-s{args.seed}", args.seed, args.data_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
