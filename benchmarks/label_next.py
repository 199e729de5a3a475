"""Rounds of labelling as a person does them, with the true labels standing in for the person: a built-in
dataset written as a folder (`stochreg data folder`), a run with the default recipe (`--data ROOT` alone),
then rounds that each move ``--add`` unlabelled images into labelled/CLASS/ (those `stochreg suggest`
lists, or a seeded random choice) and train again (from ImageNet as the recipe does, or with `--init` from
the round before). One JSON per arm with every round's test error, balanced error and minutes.

    python benchmarks/label_next.py --dataset elpv --seed 0 --labels 40 --rounds 1 --add 40
        # results/label-next/elpv-s0-{suggest,random}[-init].json
    python benchmarks/label_next.py --page     # results/label-next.md from every JSON there

The page gives each arm's test error after every round, mean +- std over the seeds measured (a round
counts only the seeds that reached it), beside the speed of one round on a large folder
(label_loop_speed.py).
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
from collections import defaultdict
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


def mean_std(values: list[float]) -> str:
    percent = [100 * v for v in values]
    if len(percent) == 1:
        return f"{percent[0]:.2f}% (one seed)"
    return f"{statistics.mean(percent):.2f}% +- {statistics.stdev(percent):.2f}"


def arm_table(reports: list[dict]) -> list[str]:
    """One dataset's arms, a row each, a column per round: mean +- std of the test error (and of the balanced
    error where the classes are unbalanced), the labels at that round, the seeds."""
    rounds = max(len(report["rounds"]) for report in reports)
    by_arm = defaultdict(list)
    for report in reports:
        by_arm[report["arm"] + (" from the round before (--init)" if report["init"] else "")].append(report)
    labels = {row["round"]: row["labels"] for report in reports for row in report["rounds"]}
    lines = ["| arm | seeds | " + " | ".join(f"round {r} ({labels.get(r, '?')} labels)" for r in range(rounds))
             + " | minutes a run |", "|---|---|" + "---|" * rounds + "---|"]
    for arm in sorted(by_arm):
        cells = []
        for r in range(rounds):
            rows = [report["rounds"][r] for report in by_arm[arm] if len(report["rounds"]) > r]
            cells.append(mean_std([row["test_error"] for row in rows]) if rows else "-")
        minutes = [row["train_seconds"] / 60 for report in by_arm[arm] for row in report["rounds"]]
        seeds = ", ".join(str(report["seed"]) for report in sorted(by_arm[arm], key=lambda report: report["seed"]))
        lines.append(f"| {arm} | {seeds} | " + " | ".join(cells) + f" | {min(minutes):.1f}-{max(minutes):.1f} |")
    return lines


def write_page(folder: Path = HERE / "results" / "label-next") -> Path:
    """results/label-next.md from the JSON in ``folder``."""
    reports = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    lines = ["# Table `label-next`", "",
             "Rounds of labelling with the true labels standing in for the person: a built-in dataset written as a "
             "folder with a seeded class-balanced labelled split, the default recipe (`--data ROOT` alone), then "
             "rounds that each move the images `stochreg suggest` lists (or as many chosen at random, a seeded "
             "choice) into `labelled/CLASS/` and train again, from ImageNet or the dataset's own start as the "
             "recipe does, or from the round before (`--init`). Test error of each round's final model, mean +- std "
             "over the seeds (each seed a different labelled split and random choice; the suggested and the random "
             "arm of a seed share round 0).", ""]
    datasets = sorted({report["dataset"] for report in reports if "rounds" in report})
    for dataset in datasets:
        mine = [report for report in reports if report.get("dataset") == dataset and "rounds" in report]
        lines += [f"## {dataset}", "", f"`{mine[0]['command']}` (and `--seed S`)", ""] + arm_table(mine) + [""]
        machines = sorted({report["machine"] for report in mine})
        commits = sorted({report["commit"][:7] for report in mine if report.get("commit")})
        lines += [f"Machine: {'; '.join(machines)}. Commits: {', '.join(commits)}.", ""]
    speed = [report for report in reports if "suggest_seconds" in report]
    if speed:
        lines += ["## One round on a large folder", "",
                  "`python benchmarks/label_loop_speed.py`: `stochreg suggest` over a run's whole unlabelled pool, and "
                  "the labelling page in headless Chromium, the time from each key to the next image drawn as the page "
                  "measures it; a load average above the machine's 2 cores means another job shared them.", "",
                  "| data | unlabelled images | suggest | key to next image (median / 95th percentile / max) | "
                  "load average | machine | commit |", "|---|---|---|---|---|---|---|"]
        for report in speed:
            keys = report["key_to_image_ms"]
            lines.append(f"| {report['dataset']} | {report['unlabelled_images']:,} | {report['suggest_seconds']:.1f} s | "
                         f"{keys['median']} / {keys['p95']} / {keys['max']} ms over {keys['answers']} answers | "
                         f"{report['load_average_1min']} | {report['machine']} | {(report['commit'] or '')[:7]} |")
        lines.append("")
    out = folder.parent / "label-next.md"
    out.write_text("\n".join(lines))
    return out


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
    parser.add_argument("--page", action="store_true", help="only write results/label-next.md from the JSON there")
    args = parser.parse_args(argv)
    if args.page:
        print(f"wrote {write_page()}")
        return 0

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
        for r in range(1, args.rounds + 1):
            root = folder / "folder"
            labelled = sum(1 for path in (root / "labelled").rglob("*") if path.is_file())
            # an interrupted round has moved its images already: they are not chosen twice
            if not (folder / f"round{r}" / "results.json").exists() and labelled < args.labels + r * args.add:
                if arm == "suggest":
                    files = [Path(row.path) for row in suggest(previous, n=args.add, out=folder / f"suggest{r}.csv")]
                else:
                    # seeded per round, so that a round resumed after an interruption chooses as it would have
                    chooser = random.Random(args.seed + 4242 + 1000 * (r - 1))
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
    write_page()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
