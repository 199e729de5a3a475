"""Unlabelled folders with images of no class: tables `fashion-open` and `fashion-junk`.

Fashion-MNIST's first six classes are the known ones (t-shirt, trouser, pullover, dress, coat, shirt), 40
labelled training images of each (a seeded choice) in `labelled/CLASS/`. The unlabelled pool:

- `fashion-open`: every other training image of all ten classes (sandals, sneakers, bags and ankle boots,
  40% of the pool, are of no known class);
- `fashion-junk`: every other training image of the six known classes, plus MNIST digits as foreign images,
  a quarter of the pool;
- `clean` pool (the `*-clean` rows): the known classes' images alone, the reference.

`test/CLASS/` holds the known classes' test images (the test error); the unknown ones (Fashion-MNIST's
other four classes' test images, or MNIST's test digits) lie beside the folder in `unknown-test/` and
score the rejection. Each run is `stochreg train --data ROOT` plus the row's flags; the JSON has the test
error, `outlier_auroc` (how well the run's out-of-class scores in outliers.csv rank the pool's foreign images
above its known ones: 1 is perfect, 0.5 chance) and, at the run's own threshold, the share of known and
of unknown test images that `predict --reject` calls unknown.

    python benchmarks/open_set.py --table fashion-open --row default --seed 0
        # results/fashion-open/default-s0.json, and the page results/fashion-open.md
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
WORK = HERE.parent / "runs" / "open-set"
KNOWN = ["t-shirt", "trouser", "pullover", "dress", "coat", "shirt"]
PER_CLASS = 40
JUNK_SHARE = 0.25
ROWS = {"default": [], "supervised": ["--method", "supervised"], "default-clean": [],
        "supervised-clean": ["--method", "supervised"]}


def auroc(scores: np.ndarray, foreign: np.ndarray) -> float:
    """The chance that a foreign image scores above a known one (ties count half): the Mann-Whitney form."""
    from scipy.stats import rankdata
    ranks = rankdata(scores)
    positives, negatives = int(foreign.sum()), int((~foreign).sum())
    if not positives or not negatives:
        return float("nan")
    return float((ranks[foreign].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def write_png(array, path: Path) -> None:
    from stochreg.data.images import write_png as write
    write(array[0], path)


def write_open_folder(table: str, clean: bool, seed: int, root: Path, data_dir: str) -> dict[str, bool]:
    """The folder for ``table`` (clean: the known classes' pool alone) at ROOT, and ROOT/../unknown-test;
    returns {unlabelled file name: whether it is foreign}."""
    from stochreg.data import load_dataset
    truth_file = root.parent / "truth.json"
    if truth_file.exists():
        return json.loads(truth_file.read_text())
    if root.parent.exists():
        shutil.rmtree(root.parent)
    fashion = load_dataset("fashion-mnist", data_dir, log=lambda line: None)
    digits = load_dataset("mnist", data_dir, log=lambda line: None) if table == "fashion-junk" else None
    generator = torch.Generator().manual_seed(seed)
    labels = fashion.train_labels
    labelled = set()
    for k in range(len(KNOWN)):
        members = (labels == k).nonzero().flatten()
        labelled.update(members[torch.randperm(len(members), generator=generator)[:PER_CLASS]].tolist())
    truth = {}
    for i, label in enumerate(labels.tolist()):
        known = label < len(KNOWN)
        if i in labelled:
            folder, name = root / "labelled" / KNOWN[label], f"{i:05d}.png"
        elif known or (table == "fashion-open" and not clean):
            folder, name = root / "unlabelled", f"{i:05d}.png"
            truth[name] = not known
        else:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        write_png(fashion.train_images[i].numpy(), folder / name)
    if digits is not None and not clean:
        count = round(len(truth) * JUNK_SHARE / (1 - JUNK_SHARE))
        for i in torch.randperm(len(digits.train_labels), generator=generator)[:count].tolist():
            name = f"digit-{i:05d}.png"
            write_png(digits.train_images[i].numpy(), root / "unlabelled" / name)
            truth[name] = True
    for i, label in enumerate(fashion.test_labels.tolist()):
        if label < len(KNOWN):
            folder = root / "test" / KNOWN[label]
        elif table == "fashion-open":
            folder = root.parent / "unknown-test"
        else:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        write_png(fashion.test_images[i].numpy(), folder / f"{i:05d}.png")
    if digits is not None:
        (root.parent / "unknown-test").mkdir(parents=True, exist_ok=True)
        for i in range(4000):   # as many as fashion-open's four unknown classes have
            write_png(digits.test_images[i].numpy(), root.parent / "unknown-test" / f"digit-{i:05d}.png")
    truth_file.write_text(json.dumps(truth))
    return truth


def rejection(run_dir: Path, root: Path) -> dict:
    """The share of known and unknown test images whose out-of-class score is above the run's threshold."""
    import stochreg
    run = stochreg.load(run_dir)
    threshold = run.reject_threshold
    shares = {}
    for name, files in (("known", sorted((root / "test").rglob("*.png"))),
                        ("unknown", sorted((root.parent / "unknown-test").glob("*.png")))):
        scores = torch.cat([run.out_of_class(files[start:start + 2000]) for start in range(0, len(files), 2000)])
        shares[f"rejected_{name}"] = round(float((scores > threshold).float().mean()), 4)
    return {"threshold": threshold, **shares}


def compare_scores(run_dir: Path, root: Path, truth: dict[str, bool]) -> dict[str, float]:
    """The AUROC on the pool's foreign images of other out-of-class scores than the one stochreg uses, from the
    same run (its pool is training images: no test image is looked at)."""
    import torch.nn.functional as F
    import stochreg
    from stochreg.data import load_dataset
    from stochreg.evaluate import learnt_features
    from stochreg.runs.suggest import pool_indices

    run = stochreg.load(run_dir)
    data = load_dataset(f"folder:{root}", log=lambda line: None, image_size=run.config.image_size,
                        channels=run.config.channels)
    labelled = torch.tensor(json.loads((run_dir / "labelled_indices.json").read_text()))
    pool = pool_indices(data.train_labels, [labelled])
    labelled_features, _ = learnt_features(run.model, data.train_images[labelled])
    features, probs = learnt_features(run.model, data.train_images[pool])
    foreign = np.array([truth[Path(data.train_files[i]).name] for i in pool.tolist()])
    near = F.normalize(features, dim=1) @ F.normalize(labelled_features, dim=1).T
    classes = data.train_labels[labelled]
    means = torch.stack([F.normalize(labelled_features, dim=1)[classes == k].mean(0) for k in classes.unique()])
    scores = {f"nearest-{k}-labelled (cosine)": 1 - near.topk(k, dim=1).values[:, -1] for k in (1, 5, 20)}
    scores["class means (cosine)"] = 1 - (F.normalize(features, dim=1) @ F.normalize(means, dim=1).T).max(1).values
    scores["1 - maximum softmax probability"] = 1 - probs.max(1).values
    scores["entropy of the softmax"] = -(probs * probs.clamp_min(1e-12).log()).sum(1)
    scores["minus the feature norm"] = -features.norm(dim=1)
    return {name: round(auroc(score.numpy(), foreign), 4) for name, score in scores.items()}


def spread(values: list[float], percent: bool = True) -> str:
    values = [100 * v if percent else v for v in values if v is not None]
    unit = "%" if percent else ""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}{unit} (one seed)"
    return f"{statistics.mean(values):.2f}{unit} +- {statistics.stdev(values):.2f}"


def write_page(table: str) -> Path:
    """results/TABLE.md from the JSON in results/TABLE/: a row per benchmark row, mean +- std over its seeds."""
    reports = [json.loads(path.read_text()) for path in sorted((HERE / "results" / table).glob("*.json"))
               if not path.name.startswith("scores-")]
    rows: dict[str, list[dict]] = {}
    for report in reports:
        rows.setdefault(report["row"], []).append(report)
    lines = [f"# Table `{table}`", "", "\n\n".join(__doc__.split("\n\n")[1:4]), "",
             "| row | seeds | known-class test error | out-of-class AUROC (pool) | foreign among the list's first 100 | "
             "known test images rejected | unknown test images rejected | minutes a run |",
             "|---|---|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda name: list(ROWS).index(name)):
        mine = sorted(rows[row], key=lambda report: report["seed"])
        minutes = [report["train_seconds"] / 60 for report in mine]
        lines.append(f"| {row} | {', '.join(str(r['seed']) for r in mine)} | "
                     f"{spread([r['test_error'] for r in mine])} | "
                     f"{spread([r.get('outlier_auroc') for r in mine], percent=False)} | "
                     f"{spread([r.get('foreign_in_first_100') for r in mine])} | "
                     f"{spread([r.get('rejected_known') for r in mine])} | "
                     f"{spread([r.get('rejected_unknown') for r in mine])} | {min(minutes):.1f}-{max(minutes):.1f} |")
    lines += ["", "Commands, commits and machines:", ""]
    lines += [f"- {r['row']} s{r['seed']}: `{r['command']}`, commit {(r['commit'] or '?')[:7]}, {r['machine']}"
              for r in reports]
    out = HERE / "results" / f"{table}.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", choices=["fashion-open", "fashion-junk"], default="fashion-open")
    parser.add_argument("--row", choices=sorted(ROWS), default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--compare-scores", action="store_true",
                        help="also the AUROC of other out-of-class scores on the same run (results/TABLE/scores-ROW-sS.json)")
    args, extra = parser.parse_known_args(argv)

    from stochreg.cli import main as stochreg_main
    from stochreg.runtime.machine import machine_description, source_commit

    clean = args.row.endswith("-clean")
    base = WORK / f"{args.table}{'-clean' if clean else ''}-s{args.seed}"
    truth = write_open_folder(args.table, clean, args.seed, base / "folder", args.data_dir)
    run_dir = WORK / "runs" / f"{args.table}-{args.row}-s{args.seed}"
    flags = ["--data", str(base / "folder"), "--out", str(run_dir), "--no-progress", *ROWS[args.row], *extra]
    if (run_dir / "results.json").exists():
        pass
    elif (run_dir / "config.yaml").exists():
        assert stochreg_main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    else:
        assert stochreg_main(["train", *flags]) == 0
    results = json.loads((run_dir / "results.json").read_text())
    report = {"table": args.table, "row": args.row, "seed": args.seed, "test_error": results["test_error"],
              "balanced_test_error": results.get("balanced_test_error"), "train_seconds": results["train_seconds"],
              "iters": results["iters"], "method": results["method"], "net": results["net"],
              "outliers": results.get("outliers")}
    if (run_dir / "outliers.csv").exists():
        import csv
        with open(run_dir / "outliers.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        foreign = np.array([truth[Path(row["path"]).name] for row in rows])
        report["foreign_in_pool"] = int(foreign.sum())
        if foreign.any():
            scores = np.array([float(row["out_of_class_score"]) for row in rows])
            report["outlier_auroc"] = round(auroc(scores, foreign), 4)
            # what a person sees first: the list's head (outliers.csv is sorted, most foreign first)
            report["foreign_in_first_100"] = round(float(foreign[:100].mean()), 4)
        report.update(rejection(run_dir, base / "folder"))
    report.update({"command": "python benchmarks/open_set.py " + " ".join(sys.argv[1:] if argv is None else argv),
                   # the commit that trained the run (the scores are computed again from the same files)
                   "commit": results.get("commit") or source_commit(), "machine": results.get("machine") or
                   machine_description(torch.device("cpu"))})
    if args.compare_scores and report.get("foreign_in_pool"):
        compared = {"table": args.table, "row": args.row, "seed": args.seed, "auroc": compare_scores(
            run_dir, base / "folder", truth), "command": report["command"], "commit": source_commit()}
        (HERE / "results" / args.table).mkdir(parents=True, exist_ok=True)
        (HERE / "results" / args.table / f"scores-{args.row}-s{args.seed}.json").write_text(
            json.dumps(compared, indent=1) + "\n")
        print(json.dumps(compared["auroc"], indent=1))
    out = HERE / "results" / args.table / f"{args.row}-s{args.seed}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    print(f"wrote {out} and {write_page(args.table)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
