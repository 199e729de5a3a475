"""Seconds per training step of every row of the `methods` table, measured in interleaved rounds
(a b c ... a b c ...) on real MNIST (or the rows of another table, on its dataset), the minutes a
run of each takes at that pace, and the step count each row gets for an equal wall-clock
budget. The counts are then fixed in benchmarks/accuracy.py (a run's budget is an iteration
count, so that a run is reproducible and resumable; its measured wall time is recorded beside
its result).

    python benchmarks/method_costs.py                 # writes results/costs/method_costs.json
    python benchmarks/method_costs.py --budget-min 15 --steps 20 --rounds 3
    python benchmarks/method_costs.py --anchor ts-me=0.156   # scale by one row's clean s/step
    python benchmarks/method_costs.py --table fashion400 --rows fixmatch-crop-flip fixmatch-crop-flip-medium-10k \
        --steps 50 --out benchmarks/results/costs/fashion400-costs.json  # another table's rows, as their commands resolve

With --anchor ROW=SECONDS the step counts come from the cost *ratios* to ROW, scaled by ROW's
seconds per step measured in a clean run: a way to use ratios measured on a busy machine (they
hold when everything slows down alike; the absolute times do not).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from accuracy import METHOD_SETTINGS, TABLES, row_configs  # noqa: E402
from stochreg.config import resolve_config  # noqa: E402
from stochreg.data import labelled_split, load_dataset  # noqa: E402
from stochreg.train import Learner  # noqa: E402
from stochreg.runtime.machine import machine_description, source_commit  # noqa: E402


def add_budget_iters(result: dict, anchor: str | None) -> None:
    """Each row's step count for the budget, from its measured cost or its ratio to the anchor's."""
    scale = 1.0
    if anchor:
        row, seconds = anchor.split("=")
        scale = float(seconds) / result["rows"][row]["seconds_per_step"]
        result["anchor"] = {"row": row, "clean_seconds_per_step": float(seconds)}
    for r in result["rows"].values():
        r["iters_for_budget"] = int(round(result["budget_minutes"] * 60 / (r["seconds_per_step"] * scale), -2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-min", type=float, default=15.0)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per row per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--anchor", metavar="ROW=SECONDS", help="scale the costs so that ROW takes SECONDS per step")
    parser.add_argument("--table", choices=sorted(TABLES), help="measure this table's rows (each on its own "
                        "dataset, as its command resolves) instead of the methods table's")
    parser.add_argument("--rows", nargs="+", metavar="ROW", help="measure only these rows (include the --anchor row)")
    parser.add_argument("--out", default=str(HERE / "results" / "costs" / "method_costs.json"))
    args = parser.parse_args()
    anchor_row = args.anchor.split("=")[0] if args.anchor else None
    if args.rows and anchor_row and anchor_row not in args.rows:
        parser.error(f"--rows must include the --anchor row {anchor_row}")
    if args.table:
        configs = {row: dataclasses.replace(cfg, data_dir=args.data_dir) for row, cfg in row_configs(args.table).items()}
    else:  # each method's own step, as the methods table runs it (without the graph term)
        configs = {row: resolve_config(overrides={**settings, "data_dir": args.data_dir, "lambda_graph": 0.0})
                   for row, settings in METHOD_SETTINGS.items()}
    unknown = sorted(set(args.rows or ()) - set(configs))
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; choose from {', '.join(configs)}")
    learners, datasets = {}, {}
    for row, cfg in configs.items():
        if args.rows and row not in args.rows:
            continue
        if cfg.dataset not in datasets:
            data = load_dataset(cfg.dataset, args.data_dir)
            datasets[cfg.dataset] = data, labelled_split(data.train_labels, cfg.labels or 100, data.num_classes, 0)
        data, labelled = datasets[cfg.dataset]
        learners[row] = Learner(cfg, data, labelled, torch.device("cpu"))
        for step in range(3):  # warm-up
            learners[row].step(step)
    times: dict[str, list[float]] = {row: [] for row in learners}
    for _ in range(args.rounds):
        for row, learner in learners.items():
            started = time.perf_counter()
            for step in range(args.steps):
                learner.step(1000 + step)
            times[row].append((time.perf_counter() - started) / args.steps)
    result = {"command": " ".join(["python", *sys.argv]), "commit": source_commit(), "table": args.table or "methods",
              "machine": machine_description(torch.device("cpu")), "budget_minutes": args.budget_min,
              "rows": {row: {"seconds_per_step": statistics.median(t), "rounds": t, "iters": learners[row].cfg.iters,
                             "minutes_per_run": statistics.median(t) * learners[row].cfg.iters / 60}
                       for row, t in times.items()}}
    add_budget_iters(result, args.anchor)
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=1) + "\n")
    for row, r in result["rows"].items():
        print(f"{row:30s} {r['seconds_per_step']:.3f} s/step, {r['minutes_per_run']:.1f} min for its {r['iters']} "
              f"steps -> {r['iters_for_budget']} steps in {args.budget_min:g} min")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
