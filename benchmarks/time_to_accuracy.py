"""Minutes of training to reach given test errors, from a run's own log (metrics.jsonl).

    python benchmarks/time_to_accuracy.py                      # trains the default recipe, seed 0
    python benchmarks/time_to_accuracy.py --method ts-me --views 4 --iters 4000   # another recipe
    python benchmarks/time_to_accuracy.py --from-run runs/x    # reads an existing run instead

The run logs the test error of its (EMA) model every ``--eval-every`` steps. The time to a
target is the first logged point at or below it, in two clocks: wall time of the run, and
training time (wall time minus the time spent on those test evaluations, which training does
not need). A logged point only bounds the crossing from above: it happened at most
``eval-every`` steps earlier. Results: results/time_to_accuracy-METHOD.json.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from stochreg.config import TrainConfig
from stochreg.config.recipe import recipe_method

HERE = Path(__file__).resolve().parent
TARGETS = (0.02, 0.01)


def crossings(records: list[dict], targets=TARGETS) -> dict[str, dict | None]:
    """For each target error, the first record at or below it (step, minutes wall and training)."""
    out = {}
    for target in targets:
        hit = next((r for r in records if r.get("test_error", 1.0) <= target), None)
        out[f"{100 * target:g}%"] = None if hit is None else {
            "step": hit["step"], "test_error": hit["test_error"],
            "wall_minutes": round(hit["seconds"] / 60, 2),
            "train_minutes": round((hit["seconds"] - hit.get("eval_seconds", 0.0)) / 60, 2)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-run", metavar="RUN_DIR", help="read this run's log instead of training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--method", default=recipe_method(is_digits=True), help="default: the default recipe's "
                        "on digits")
    parser.add_argument("--views", type=int, help="default: the default recipe's")
    parser.add_argument("--iters", type=int, help="default: the default recipe's")
    parser.add_argument("--precision", help="default: the default recipe's (fp32); bf16: bfloat16 autocast")
    parser.add_argument("--lambda-graph", help="default: the default recipe's; 0: without the label-propagation term")
    parser.add_argument("--out", help="default: results/time_to_accuracy-METHOD.json")
    args = parser.parse_args(argv)
    command = None
    run_dir = Path(args.from_run) if args.from_run else \
        HERE.parent / "runs" / "bench" / f"time-to-accuracy-{args.method}{'-' + args.precision if args.precision else ''}-s{args.seed}"
    if not args.from_run:
        recipe = [flag for name in ("views", "iters", "precision", "lambda_graph") if getattr(args, name) is not None
                  for flag in (f"--{name.replace('_', '-')}", str(getattr(args, name)))]
        cmd = ["stochreg", "train", "--dataset", "mnist", "--labels", "100", "--method", args.method, *recipe,
               "--seed", str(args.seed), "--eval-every", str(args.eval_every), "--out", str(run_dir),
               "--overwrite", "--no-progress"]
        command = shlex.join(cmd)
        print("$", command, flush=True)
        subprocess.run([sys.executable, "-m", "stochreg", *cmd[1:]], check=True)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    results = json.loads((run_dir / "results.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    precision = config.get("precision", "fp32")  # runs before --precision: fp32
    report = {"targets": crossings(records), "method": results["method"], "iters": results["iters"],
              "precision": precision, "lambda_graph": config.get("lambda_graph", 0.0),
              # whether the graph was built on deskewed images (runs before 2026-11-30's deskewing: raw pixels)
              "graph_deskewed": results.get("graph_deskewed", False),
              "command": command or results["command"],
              "eval_every": args.eval_every, "final_test_error": results["test_error"],
              "commit": results["commit"], "machine": results["machine"],
              "curve": [r for r in records if "test_error" in r]}
    out = Path(args.out or HERE / "results" / f"time_to_accuracy-{results['method']}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["targets"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
