"""Minutes of training to reach given test errors, from a run's own log (metrics.jsonl).

    python benchmarks/time_to_accuracy.py                      # trains the default recipe, seed 0
    python benchmarks/time_to_accuracy.py --method ts-me --views 4 --iters 4000   # another recipe
    python benchmarks/time_to_accuracy.py --seeds 0 1 2        # three labelled splits, one after another
    python benchmarks/time_to_accuracy.py --from-run runs/a runs/b runs/c   # reads existing runs instead
    python benchmarks/time_to_accuracy.py --from-json results/mnist100-fast/ROW-s0.json ...  # benchmark rows

The run logs the test error of its (EMA) model every ``--eval-every`` steps. The time to a
target (2%, 1% and the run's own final error) is the first logged point at or below it, in two
clocks: wall time of the run, and training time (wall time minus the time spent on those test
evaluations, which training does not need). A logged point only bounds the crossing from above:
it happened at most ``eval-every`` steps earlier. With several runs (one per labelled split) the
report gives each split's times and their mean and standard deviation. Results:
results/time-to-accuracy/time_to_accuracy-METHOD-KIND.json, KIND the CPU model and kernel features (the same model
name covers machines about twice apart in speed).
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

from stochreg.config import TrainConfig
from stochreg.config.recipe import recipe_method

HERE = Path(__file__).resolve().parent
TARGETS = (0.02, 0.01)


def crossings(records: list[dict], targets=TARGETS, final: float | None = None) -> dict[str, dict | None]:
    """For each target error (and, given, the run's final error), the first record at or below it
    (step, minutes wall and training)."""
    out = {}
    named = [(f"{100 * target:g}%", target) for target in targets] + ([("final", final)] if final is not None else [])
    for name, target in named:
        hit = next((r for r in records if r.get("test_error", 1.0) <= target), None)
        out[name] = None if hit is None else {
            "step": hit["step"], "test_error": hit["test_error"],
            "wall_minutes": round(hit["seconds"] / 60, 2),
            "train_minutes": round((hit["seconds"] - hit.get("eval_seconds", 0.0)) / 60, 2)}
    return out


def summary(splits: list[dict]) -> dict[str, dict]:
    """Per target: how many splits reached it, and the mean and standard deviation of their
    training minutes (over the splits that reached it)."""
    out = {}
    for name in splits[0]["targets"]:
        minutes = [split["targets"][name]["train_minutes"] for split in splits if split["targets"][name]]
        out[name] = {"reached": len(minutes), "of": len(splits),
                     "train_minutes_mean": round(statistics.fmean(minutes), 2) if minutes else None,
                     "train_minutes_std": round(statistics.stdev(minutes), 2) if len(minutes) > 1 else None}
    return out


def kind_slug(machine: str) -> str:
    """A file-name part for the machine a run's results.json names: "x86_64 CPU (AMD EPYC; avx2), 2
    cores, ..." -> "amd-epyc-avx2"."""
    inside = re.search(r"CPU \((.*)\), \d+ cores", machine.replace("(R)", "").replace("(TM)", ""))
    text = inside.group(1) if inside else machine.split(",")[0]
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def read_split(run_dir: Path, command: str | None) -> tuple[dict, dict, dict]:
    """One run's crossings, from its metrics.jsonl, results.json and config.yaml; with the last two."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    results = json.loads((run_dir / "results.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    last = records[-1] if records else {"seconds": 0.0}
    split = {"seed": config.get("seed"), "targets": crossings(records, final=results["test_error"]),
             "final_test_error": results["test_error"],
             "train_minutes": round((last["seconds"] - last.get("eval_seconds", 0.0)) / 60, 2),
             "command": command or results["command"], "commit": results["commit"], "machine": results["machine"],
             "curve": [r for r in records if "test_error" in r]}
    return split, results, config


def read_row(path: Path) -> tuple[dict, dict, dict]:
    """One benchmark row's crossings (results/TABLE/ROW-sS.json: results.json's fields plus the
    logged curve), as read_split gives them; the settings it needs come from the row's own command,
    parsed as `stochreg train` parses it."""
    from stochreg.cli import build_parser
    from stochreg.cli.train_command import config_overrides
    row = json.loads(path.read_text())
    if "curve" not in row:
        raise SystemExit(f"{path}: no logged curve (row JSONs carry one from 2026-11-30 on)")
    given = {k: v for k, v in config_overrides(build_parser().parse_args(shlex.split(row["command"])[1:])).items()
             if v is not None}
    config = {"seed": row["seed"], "precision": given.get("precision", "fp32"),
              "lambda_graph": given.get("lambda_graph", 0.0), "graph_fade_iters": given.get("graph_fade_iters", 0)}
    records = row["curve"]
    split = {"seed": row["seed"], "targets": crossings(records, final=row["test_error"]),
             "final_test_error": row["test_error"],
             "train_minutes": round(row["train_seconds"] / 60, 2),
             "command": row["command"], "commit": row["commit"], "machine": row["machine"],
             "curve": [r for r in records if "test_error" in r]}
    if row.get("note"):
        split["note"] = row["note"]
    return split, row, config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-run", metavar="RUN_DIR", nargs="+", help="read these runs' logs (one per labelled "
                        "split) instead of training")
    parser.add_argument("--from-json", metavar="ROW_JSON", nargs="+", help="read these benchmark rows' logged "
                        "curves (results/TABLE/ROW-sS.json, one per labelled split) instead of training")
    parser.add_argument("--machine", help="the machine to record, for rows written before machine descriptions "
                        "named the CPU's kernel features (say which in --note)")
    parser.add_argument("--note", help="recorded in the report: the machine kind, what ran beside")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="labelled splits to train (default: 0)")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--method", default=recipe_method(is_digits=True), help="default: the default recipe's "
                        "on digits")
    parser.add_argument("--views", type=int, help="default: the default recipe's")
    parser.add_argument("--iters", type=int, help="default: the default recipe's")
    parser.add_argument("--precision", help="default: the default recipe's (auto: bf16 on CPUs that compute it "
                        "natively, else fp32); fp32 or bf16 to measure one of them")
    parser.add_argument("--lambda-graph", help="default: the default recipe's; 0: without the label-propagation term")
    parser.add_argument("--out", help="default: results/time-to-accuracy/time_to_accuracy-METHOD-KIND.json")
    args = parser.parse_args(argv)
    runs: list[tuple[Path, str | None]] = [(Path(run), None) for run in args.from_run or []]
    if args.from_run and args.from_json:
        parser.error("--from-run or --from-json, not both")
    if not args.from_run and not args.from_json:
        recipe = [flag for name in ("views", "iters", "precision", "lambda_graph") if getattr(args, name) is not None
                  for flag in (f"--{name.replace('_', '-')}", str(getattr(args, name)))]
        for seed in args.seeds:
            run_dir = HERE.parent / "runs" / "bench" / \
                f"time-to-accuracy-{args.method}{'-' + args.precision if args.precision else ''}-s{seed}"
            cmd = ["stochreg", "train", "--dataset", "mnist", "--labels", "100", "--method", args.method, *recipe,
                   "--seed", str(seed), "--eval-every", str(args.eval_every), "--out", str(run_dir),
                   "--overwrite", "--no-progress"]
            print("$", shlex.join(cmd), flush=True)
            subprocess.run([sys.executable, "-m", "stochreg", *cmd[1:]], check=True)
            runs.append((run_dir, shlex.join(cmd)))
    loaded = [read_split(run_dir, command) for run_dir, command in runs] + \
        [read_row(Path(path)) for path in args.from_json or []]
    splits = [split for split, _, _ in loaded]
    if args.machine:
        for split in splits:
            split["machine"] = args.machine
    first, results, config = loaded[0]
    machines = sorted({split["machine"] for split in splits})
    if len(machines) > 1:
        parser.error(f"the runs were measured on different machines ({'; '.join(machines)}): one report per machine")
    report = {"targets": summary(splits) if len(splits) > 1 else first["targets"],
              "method": results["method"], "iters": results["iters"],
              "precision": config.get("precision", "fp32"),  # runs before --precision: fp32
              "lambda_graph": config.get("lambda_graph", 0.0),
              "graph_fade_iters": config.get("graph_fade_iters") or 0,   # runs before the fade: none
              # whether the graph was built on deskewed images (runs before 2026-11-30's deskewing: raw pixels)
              "graph_deskewed": results.get("graph_deskewed", False),
              "command": first["command"], "eval_every": args.eval_every,
              "final_test_error": statistics.fmean(split["final_test_error"] for split in splits),
              "commit": first["commit"], "machine": first["machine"]}
    if args.note:
        report["note"] = args.note
    if len(splits) > 1:
        report["splits"] = splits
    else:
        report["curve"] = first["curve"]
    out = Path(args.out or HERE / "results" / "time-to-accuracy" / f"time_to_accuracy-{results['method']}-{kind_slug(first['machine'])}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["targets"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
