"""Writes benchmarks/RESULTS.md, the results page, from the tables and JSON in results/.

    python benchmarks/results_page.py

Each section is the generated table of one benchmark script (kept there as the source of
truth), with the command that reruns it. Sections whose results do not exist yet say so.
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from accuracy import error_cells, row_results  # noqa: E402
from stochreg.config import TrainConfig  # noqa: E402
from stochreg.config.settings import DEFAULT_ITERS  # noqa: E402
from stochreg.config.recipe import BF16_DIGIT_ITERS, GRAPH_WEIGHT, recipe_method  # noqa: E402

RESULTS = HERE / "results"

# The rows the summary shows, with the target each must meet: (what the row is, table,
# row, the most mean test error allowed in %, the minutes per run allowed). The headline row is the
# one the 60-minute table's rules named (tuning.md): a challenger replaced the row before it only
# with a lower mean over the three splits and a lower error on at least two of them.
SUMMARY_ROWS = (
    ("the 60-minute CPU recipe (the headline)", "mnist100-60min", "ts-me-fixmatch-graph-deskew-fade-28000", 0.6, 60),
    ("the quick-start default (`make train`) in float32", "mnist100", "ts-me-fixmatch-graph-deskew-fade", 1.0, 15),
    ("the float32 default before 2026-12-07 (full graph weight)", "mnist100", "ts-me-fixmatch-graph-deskew", 1.0, 15),
    ("the paper's TS + ME alone (n=4), quick-start budget", "mnist100", "ts-me", None, 15),
    ("supervised: the same 100 labels, no unlabelled images", "mnist100", "supervised", None, 15),
)


def table_section(title: str, name: str, command: str, intro: str) -> list[str]:
    lines = [f"## {title}", "", intro, "", f"Rerun: `{command}`", ""]
    path = RESULTS / f"{name}.md"
    if not path.exists():
        return lines + ["(no runs yet)", ""]
    body = path.read_text().split("\n", 2)[2]  # the table file without its own title
    return lines + [body.replace("](", "](results/").replace("](results/http", "](http"), ""]


def summary_section() -> list[str]:
    """The headline numbers against their targets, from the rows' JSON: a target counts as met
    only with at least three splits, a mean at or under it, and every run's recorded wall time
    within the budget (a run slowed by other work beside it counts as it ran; its note in its
    table says so)."""
    lines = ["## Summary", "",
             "MNIST with 100 labels, mean +- std of the final model's test error over three labelled splits "
             "(seeds 0, 1, 2), on the 2-core CPU machine; each row's table below has its commands, notes and curves.",
             "", "| recipe | table: row | test error | per split | wall time per run | target |",
             "|---|---|---|---|---|---|"]
    for what, table, row, most_error, budget_minutes in SUMMARY_ROWS:
        runs = [json.loads(p.read_text()) for p in row_results(table, row, RESULTS)]
        if not runs:
            lines.append(f"| {what} | {table}: {row} | (no runs yet) | | | |")
            continue
        minutes = [run["train_seconds"] / 60 for run in runs]
        if most_error is None:
            target = "-"
        else:
            missing = [f"{len(runs)} split{'s' if len(runs) > 1 else ''}"] if len(runs) < 3 else []
            mean_error = statistics.mean(100 * run["test_error"] for run in runs)
            missing += [f"mean over {most_error}%"] if mean_error > most_error else []
            missing += [f"a run took {max(minutes):.1f} min"] if max(minutes) > budget_minutes else []
            target = f"at most {most_error}% within {budget_minutes} min: " + (
                f"not met ({'; '.join(missing)})" if missing else "met")
        mean_cell, per_split_cell = error_cells(runs, unit="split")
        lines.append(f"| {what} | {table}: {row} | {mean_cell} | {per_split_cell} | "
                     f"{min(minutes):.1f}-{max(minutes):.1f} min | {target} |")
    return lines + [""]


def split_crossings_table(report: dict) -> list[str]:
    """A time-to-accuracy report over several labelled splits: per target, the training minutes of
    each split (the step in brackets) and their mean +- std over the splits that reached it."""
    seeds = [split["seed"] for split in report["splits"]]
    lines = ["| target | training minutes, mean +- std | " + " | ".join(f"split {seed}" for seed in seeds) + " |",
             "|---|---|" + "---|" * len(seeds)]
    for target, total in report["targets"].items():
        mean, std = total["train_minutes_mean"], total["train_minutes_std"]
        overall = "not reached" if mean is None else f"{mean:.2f}" + (f" +- {std:.2f}" if std is not None else "")
        if mean is not None and total["reached"] < total["of"]:
            overall += f" ({total['reached']} of {total['of']} splits)"
        cells = [f"{hit['train_minutes']:.2f} (step {hit['step']:,})" if hit else "not reached"
                 for hit in (split["targets"][target] for split in report["splits"])]
        lines.append(f"| {target} | {overall} | " + " | ".join(cells) + " |")
    return lines


def time_to_accuracy_section() -> list[str]:
    """One table per measurement (results/time-to-accuracy/time_to_accuracy-*.json: a recipe, on one machine), the default's first.

    The default recipe is the default method at the default step count, precision and graph
    weight: a measurement of the same method with other steps (an earlier default), in bf16 or
    without the label-propagation graph term is another recipe.
    """
    default = recipe_method(is_digits=True)   # the measurements are of MNIST

    def precision(report: dict) -> str:
        return report.get("precision", "fp32")  # measurements before --precision existed ran in float32

    def default_precision(report: dict) -> str:
        """What an auto precision gives the digit recipe on the report's machine (named in its machine
        string or, before that listed the CPU's features, in its note)."""
        named = f"{report.get('machine', '')} {report.get('note', '')}".lower()
        return "bf16" if any(word in named for word in ("avx512_bf16", "avx-512 bf16", "amx")) else "fp32"

    def graph(report: dict) -> float:
        return report.get("lambda_graph", 0.0)  # measurements before --lambda-graph ran without it

    def deskewed(report: dict) -> bool:
        return report.get("graph_deskewed", False)  # measurements before --graph-deskew: raw pixels

    # MNIST's graph is built on deskewed digits by default (unset = for single-channel digit datasets)
    default_deskewed = TrainConfig.graph_deskew is not False
    # the graph weight the default gives MNIST: auto, which the labelled split's check turns on there
    default_graph = GRAPH_WEIGHT if TrainConfig.lambda_graph is None else TrainConfig.lambda_graph

    def fade(report: dict) -> int:
        return report.get("graph_fade_iters", 0)  # measurements before the fade: none

    def is_default(report: dict) -> bool:
        """The digit recipe as an unset precision, step count and fade resolve it on the report's
        machine, the graph fading over the whole run: 4,800 bfloat16 steps where it computes bf16,
        else 6,000 float32 steps."""
        iters = BF16_DIGIT_ITERS if default_precision(report) == "bf16" else DEFAULT_ITERS
        return (report["method"], report["iters"], precision(report), graph(report), deskewed(report), fade(report)) \
            == (default, iters, default_precision(report), default_graph, default_deskewed, iters)

    lines = ["## Time to accuracy", "",
             "Minutes of the 2-core machine named above each table until the logged test error first "
             "reaches 2%, 1% and (where measured) the run's own final error, over labelled splits 0-2 where the "
             "table has a column per split, else of split 0, from "
             "the run's own log (evaluations every 100 steps unless the note says otherwise; training time "
             "excludes the time spent on "
             f"those evaluations): the default recipe ({default}), then the recipes measured before it.", "",
             "Rerun: `python benchmarks/time_to_accuracy.py --seeds 0 1 2` (another recipe: `--method M --views N --iters K`)", ""]
    reports = [json.loads(path.read_text()) for path in sorted((RESULTS / "time-to-accuracy").glob("time_to_accuracy-*.json"))]
    if not reports:
        return lines + ["(not measured yet)", ""]
    # The default's measurements first; one recipe may have been measured on several machines.
    for report in sorted(reports, key=lambda r: not is_default(r)):
        lines += [f"**{report['method']}**, {report['iters']:,} steps, {precision(report)}"
                  + (f", graph term {graph(report):g}" if graph(report) != default_graph else "")
                  + (", graph on raw pixels" if graph(report) > 0 and deskewed(report) != default_deskewed else "")
                  + (f", graph term fading to 0 at step {fade(report):,}" if graph(report) > 0 and fade(report) else "")
                  + (" (the default recipe)" if is_default(report) else "") + f", on {report['machine']}", "",
                  ]
        if "splits" in report:
            lines += split_crossings_table(report)
        else:
            lines += ["| target | step | training minutes | wall minutes (with evaluations) |", "|---|---|---|---|"]
            for target, hit in report["targets"].items():
                lines.append(f"| {target} | " + (f"{hit['step']} | {hit['train_minutes']} | {hit['wall_minutes']} |"
                                                 if hit else "not reached | - | - |"))
        lines += [""] + ([report["note"][0].upper() + report["note"][1:] + "."] if "note" in report else [])
        finals = [split["final_test_error"] for split in report.get("splits", [])]
        final = (f"{100 * statistics.fmean(finals):.2f}% +- {100 * statistics.stdev(finals):.2f} over splits "
                 f"{', '.join(str(split['seed']) for split in report['splits'])}" if len(finals) > 1
                 else f"{100 * report['final_test_error']:.2f}%")
        # the splits of one report may have run at different commits: name each
        commits = sorted({split["commit"] for split in report.get("splits", [])}) or [report["commit"]]
        lines += [f"Final test error {final}; commit{'s' if len(commits) > 1 else ''} {', '.join(commits)}; "
                  f"command `{report['command']}`" + (" (per split: `--seed S`)" if finals else "") + ".", ""]
    return lines


def paper_preset_section() -> list[str]:
    """The authors' configuration (``--preset paper-mnist``) on a GPU: one table per measurement
    (results/gpu/*-paper-corrected.json), a row per stop of its three runs, mean +- std over the
    splits of the final weights' test error in one pass and averaging 10 stochastic passes."""
    lines = ["## MNIST, 100 labels: the authors' configuration on a GPU", "",
             "`--preset paper-mnist`: the authors' released settings in stochreg's terms (README, Presets), "
             "three labelled splits side by side on one GPU, each stopped by SIGTERM long before the preset's "
             "2.4M steps and continued with `--resume`; the weights at each stop evaluated with `stochreg eval "
             "--passes 1` and `--passes 10` (the paper averaged passes). Not the paper's number: its full run.",
             "", "Rerun (on a GPU): `PAPER_SEEDS='0 1 2' WITH_DEFAULT=0 bash benchmarks/gpu_check.sh`", ""]
    reports = sorted((RESULTS / "gpu").glob("*-paper-corrected.json"))
    if not reports:
        return lines + ["(no runs yet)", ""]
    for path in reports:
        report = json.loads(path.read_text())
        lines += [f"On {report['machine']}, commit {report['commit']} ([{path.name}](results/gpu/{path.name})):", "",
                  "| steps (mean) | training minutes (mean) | test error, 1 pass | test error, 10 passes |",
                  "|---|---|---|---|"]
        for i in range(len(report["runs"][0]["stops"])):
            stops = [run["stops"][i] for run in report["runs"]]
            cells = []
            for key in ("test_error_1_pass", "test_error_10_passes"):
                values = [100 * stop[key] for stop in stops]
                cells.append(f"{statistics.mean(values):.2f}% +- {statistics.stdev(values):.2f} "
                             f"({', '.join(f'{v:.2f}' for v in values)})")
            lines.append(f"| {round(statistics.mean(stop['step'] for stop in stops)):,} | "
                         f"{statistics.mean(stop['training_seconds'] for stop in stops) / 60:.1f} | "
                         + " | ".join(cells) + " |")
        lines += ["", report["speed"][0].upper() + report["speed"][1:] + "."]
        if "plot" in report:
            lines += ["", f"![test error against steps](results/gpu/{report['plot']})"]
        lines.append("")
    return lines


def main() -> int:
    lines = ["# Results", "",
             "Every number here comes from a benchmark script in this folder that wrote JSON next to it "
             "(`results/`), with the command, the commit and the machine. Test errors are those of the "
             "final model (its EMA weights), never the best value seen during training.", ""]
    lines += summary_section()
    lines += table_section("MNIST, 100 labels: the quick-start recipe", "mnist100",
                           "python benchmarks/accuracy.py mnist100",
                           "The default recipe (`make train`) in float32 is the row ts-me-fixmatch-graph-deskew-fade: "
                           "ts-me-fixmatch with the label-propagation graph term built on deskewed digits, fading "
                           "over its 6,000 steps (ts-me-fixmatch-graph-deskew at full graph weight before 2026-12-07). "
                           "The other "
                           "rows are the recipes it was chosen against (graph on raw pixels, no graph term, bfloat16, "
                           "3,000 steps) and the paper's method with its ablation at the same cost per run; how each "
                           "decision was made is in [tuning.md](tuning.md).")
    lines += table_section("MNIST, 100 labels: the 60-minute CPU recipe", "mnist100-60min",
                           "python benchmarks/accuracy.py mnist100-60min",
                           "The headline row is ts-me-fixmatch-graph-deskew-fade-28000: the default recipe at the "
                           "28,000 steps that fill 60 minutes on a 2-core Zen 4 AMD EPYC, with the graph term fading "
                           "over the whole run. The other rows are the challengers it replaced, each by a rule "
                           "fixed before it ran ([tuning.md](tuning.md)).")
    lines += table_section("MNIST, 100 labels: the 60-minute recipe on a validation split", "mnist100-60min-val",
                           "python benchmarks/accuracy.py mnist100-60min-val",
                           "The 60-minute recipe against the same in bfloat16 for the steps that fill the hour on a "
                           "CPU computing bf16 natively, each run keeping 5,000 training images' labels for scoring "
                           "only: chosen on the validation error by the rule in [tuning.md](tuning.md), the test "
                           "error reported. Rows with fewer than three splits are still running.")
    lines += table_section("MNIST, 100 labels: every method under the same wall-clock budget", "methods",
                           "python benchmarks/accuracy.py methods",
                           "Every method of stochreg, about 15 minutes a run on the machine named in each run's note: "
                           "each row's step count fills the budget given its per-step cost "
                           "([method_costs.json](results/costs/method_costs.json), `python benchmarks/method_costs.py`). "
                           "Each method's usual settings, untuned here, without the graph term.")
    lines += table_section("Fashion-MNIST, 400 labels: recipes compared on a validation split", "fashion400",
                           "python benchmarks/accuracy.py fashion400",
                           "Grayscale images that are not digits, at the quick-start budget. Each run keeps 5,000 "
                           "training images' labels for scoring only (the validation error), and the recipe for "
                           "such images is chosen on it by the rule in [tuning.md](tuning.md), fixed before the "
                           "runs; the test error is shown beside it but decides nothing. Rows with fewer than "
                           "three splits are still running.")
    lines += table_section("Fashion-MNIST, 400 labels, as a folder of PNG files: the own-images path end to end",
                           "fashion400-folder", "python benchmarks/accuracy.py fashion400-folder",
                           "`stochreg train --data ROOT` and nothing else, on Fashion-MNIST written as a folder "
                           "(labelled/CLASS/, unlabelled/, test/CLASS/): the recipe is the one chosen from the "
                           "data. Beside it the built-in dataset with the same defaults and the supervised "
                           "baseline on the folder.")
    lines += table_section("ELPV, 40 labels: real inspection images from a folder", "elpv40",
                           "python benchmarks/accuracy.py elpv40",
                           "2,624 electroluminescence images of solar cells (300 px, grayscale, 69% functional), "
                           "40 labels: `stochreg train --data ROOT` and nothing else on the data set written as a "
                           "folder of its own files, against the same network on the labels alone and on every "
                           "training label; the `val-` rows choose on 400 held-out training images by the rules in "
                           "[tuning.md](tuning.md). Every row gives the balanced error too: the classes are "
                           "unbalanced, and answering `functional` for every image errs on 31.25%.")
    lines += table_section("MNIST, 100 labels: a default at half the cost", "mnist100-fast",
                           "python benchmarks/accuracy.py mnist100-fast",
                           "The default against two recipes at about half its cost per run, on a validation split "
                           "(rule in [tuning.md](tuning.md)). Rows with fewer than three splits are still running.")
    lines += paper_preset_section()
    lines += time_to_accuracy_section()
    lines += table_section("Speed of the training step", "speed/speed", "python benchmarks/speed.py",
                           "a: the network's own supervised step on the same number of images; b: stochreg's "
                           "TS+ME step; c: a naive TS+ME step. b/a >= 0.9 means the semi-supervised "
                           "machinery costs at most 10% over the network's own work.")
    lines += table_section("Speed of the training step on the Zen 3 kind (AVX2, no AVX-512)", "speed/speed-amd-epyc-avx2",
                           "python benchmarks/speed.py --nets compact --inputs digits --variants "
                           "--out benchmarks/results/speed/speed-amd-epyc-avx2.json",
                           "The same measurement for the compact net on a 2-core AMD EPYC of the Zen 3 kind, whose "
                           "float32 steps take about 1.3 times those of the Zen 4 kind above.")
    (HERE / "RESULTS.md").write_text("\n".join(lines))
    print(f"wrote {HERE / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
