"""Rounds of labelling as a person does them, with the true labels standing in for the person: a built-in
dataset written as a folder (`stochreg data folder`), a run with the default recipe (`--data ROOT` alone),
then rounds that each move ``--add`` unlabelled images into labelled/CLASS/ (those `stochreg suggest`
lists, or a seeded random choice) and train again (from ImageNet as the recipe does, or with `--init` from
the round before). One JSON per arm with every round's test error, balanced error and minutes.

    python benchmarks/label_next.py --dataset elpv --seed 0 --labels 40 --rounds 1 --add 40
        # results/label-next/elpv-s0-{suggest,random}[-init].json
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE.parent / "runs" / "label-next"


def train(root: Path, out: Path, extra: list[str]) -> dict:
    from stochreg.cli import main
    if not (out / "results.json").exists():
        assert main(["train", "--data", str(root), "--out", str(out), "--overwrite", "--no-progress", *extra]) == 0
    return json.loads((out / "results.json").read_text())


def move_to_labelled(root: Path, files: list[Path], labels, class_names: list[str]) -> None:
    """Each file (named by its index in the dataset's training set) into labelled/ its true class."""
    for file in files:
        destination = root / "labelled" / class_names[int(labels[int(file.stem)])] / file.name
        shutil.move(str(file), destination)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="elpv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", type=int, default=40, help="labelled images to start from")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--add", type=int, default=40, help="images labelled in each round")
    parser.add_argument("--arms", nargs="+", default=["suggest", "random"], choices=["suggest", "random"])
    parser.add_argument("--init", action="store_true", help="each round starts from the round before (--init)")
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args(argv)

    from stochreg.data import load_dataset
    from stochreg.data.write_folder import write_dataset_folder
    from stochreg.runs.suggest import suggest
    from stochreg.runtime.machine import machine_description, source_commit
    import torch

    data = load_dataset(args.dataset, args.data_dir, log=lambda line: None)
    names = data.class_names or [str(k) for k in range(data.num_classes)]
    start = WORK / f"{args.dataset}-s{args.seed}" / "start"
    if not (start / "folder").exists():
        write_dataset_folder(args.dataset, start / "folder", args.labels, args.seed, args.data_dir, log=lambda l: None)
    first = train(start / "folder", start / "round0", [])
    for arm in args.arms:
        name = f"{args.dataset}-s{args.seed}-{arm}" + ("-init" if args.init else "")
        folder = WORK / name
        if not (folder / "folder").exists():
            shutil.copytree(start / "folder", folder / "folder")
        rounds = [{"round": 0, "labels": first["labels"], "test_error": first["test_error"],
                   "balanced_test_error": first.get("balanced_test_error"), "train_seconds": first["train_seconds"]}]
        previous = start / "round0"
        chooser = random.Random(args.seed + 4242)
        for r in range(1, args.rounds + 1):
            root = folder / "folder"
            if not (folder / f"round{r}" / "results.json").exists():
                if arm == "suggest":
                    files = [Path(row.path) for row in suggest(previous, n=args.add, out=folder / f"suggest{r}.csv")]
                else:
                    files = chooser.sample(sorted((root / "unlabelled").glob("*")), args.add)
                move_to_labelled(root, files, data.train_labels, names)
            result = train(root, folder / f"round{r}", ["--init", str(previous)] if args.init else [])
            rounds.append({"round": r, "labels": result["labels"], "test_error": result["test_error"],
                           "balanced_test_error": result.get("balanced_test_error"),
                           "train_seconds": result["train_seconds"]})
            previous = folder / f"round{r}"
        report = {"dataset": args.dataset, "seed": args.seed, "arm": arm, "init": args.init, "add": args.add,
                  "rounds": rounds, "command": "python benchmarks/label_next.py " + " ".join(sys.argv[1:] if argv is None
                                                                                          else argv),
                  "commit": source_commit(), "machine": machine_description(torch.device("cpu"))}
        out = HERE / "results" / "label-next" / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {out}: " + ", ".join(f"round {row['round']} ({row['labels']} labels) "
                                           f"{100 * row['test_error']:.2f}%" for row in rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
