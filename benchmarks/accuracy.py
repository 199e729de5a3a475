"""Runs a named table of training runs and writes one JSON per run plus a markdown table.

    python benchmarks/accuracy.py mnist100              # every row, every seed of the table
    python benchmarks/accuracy.py mnist100 --seeds 1    # the first seed only
    python benchmarks/accuracy.py mnist100 --methods supervised ts-me
    python benchmarks/accuracy.py mnist100 --only-seeds 1 --methods ts
    python benchmarks/accuracy.py mnist100 --report     # only rewrite the table from the JSON

Each run is a plain `stochreg train` command (recorded in its JSON, with the commit, the machine
and the measured wall time). A run whose JSON already exists is skipped, and a run that was
interrupted resumes from its last checkpoint (`stochreg train --resume`), so an interrupted table
continues where it stopped; delete a JSON to rerun that run. The table reports mean +- std over
seeds of the final model's test error.
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

from stochreg.runs.plots import compare_curves

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# The `methods` table: every method of stochreg on MNIST-100 under one wall-clock budget. The
# settings are each method's usual ones, untuned here: n=4 views for the paper's losses; two
# views (Pi-model's two passes, Mean Teacher's student and teacher views, FixMatch's weak and
# strong view, pseudo-labelling's source and target); the consistency weight of MSE-type terms
# on the scale of lambda_TS (our squared error sums over classes); entropy on ME's scale. The
# rows written before ts-me-fixmatch became the default (with views=5) pin views=4, the earlier
# default, so that they rerun as they ran.
METHOD_SETTINGS = {  # in the order the table runs them: the most informative rows first
    "ts-me": {"method": "ts-me", "views": 4},
    "fixmatch": {"method": "fixmatch", "views": 2, "lambda_u": 1.0},
    "mean-teacher": {"method": "mean-teacher", "views": 2, "lambda_u": 8.0},
    "pi-model": {"method": "pi-model", "views": 2, "lambda_u": 4.0},
    "pseudo-label": {"method": "pseudo-label", "views": 2, "lambda_u": 1.0},
    # the paper's ts-me on 4 weak views as in its own row, plus FixMatch's term on a 5th, strong view
    "ts-me-fixmatch": {"method": "ts-me-fixmatch", "views": 5, "lambda_u": 1.0},
    "ts-me-anchored": {"method": "ts-me-anchored", "views": 4},
    "ts-me-strong": {"method": "ts-me-strong", "views": 4},
    "entropy-min": {"method": "entropy-min", "views": 1, "lambda_u": 0.3},
    "supervised": {"method": "supervised"},
    "ts": {"method": "ts", "views": 4},
    "me": {"method": "me", "views": 4},
}
# Steps that fill METHOD_BUDGET_MINUTES on this machine, from benchmarks/method_costs.py
# (results/costs/method_costs.json): the per-step cost differs by method (views, a teacher pass).
METHOD_BUDGET_MINUTES = 15
METHOD_ITERS = {"supervised": 16300, "ts-me": 5800, "ts": 5600, "me": 5600, "pi-model": 8500, "mean-teacher": 6500,
                "pseudo-label": 8400, "fixmatch": 7400, "entropy-min": 11200, "ts-me-strong": 5200,
                # the same views and augmentation as ts-me-strong, a loss of negligible cost beside them
                "ts-me-anchored": 5200,
                # 1.35x ts-me's cost per step, measured (results/costs/method_costs-ts-me-fixmatch.json)
                "ts-me-fixmatch": 4300}


# The 60-minute rows: ts-me's 16,000 steps (45-48 minutes alone on a fast day, about 55 on a
# slow one), and the methods table's other leaders with their 15-minute steps scaled by the same
# factor, so that every row costs the same time per run (method_costs.py measured the step costs
# side by side).
LONG_ITERS = {"ts-me": 16000}
LONG_ITERS.update({row: int(round(METHOD_ITERS[row] * LONG_ITERS["ts-me"] / METHOD_ITERS["ts-me"], -2))
                   for row in ("pi-model", "ts-me-fixmatch")})

# ts-me-fixmatch-graph's 11,900 steps take 22-24 minutes alone on a 2-core Zen 4 AMD EPYC; this many
# fill the 60 minutes there.
GRAPH_LONG_ITERS = 28000
# the leader with the graph term at that step count: the 60-minute graph rows add one setting each
GRAPH_LONG_SETTINGS = {**METHOD_SETTINGS["ts-me-fixmatch"], "iters": GRAPH_LONG_ITERS, "lambda_graph": 3}
# the 60-minute recipe: the graph on deskewed digits, fading over the whole run
LONG_RECIPE_SETTINGS = {**GRAPH_LONG_SETTINGS, "graph_deskew": True, "graph_fade_iters": GRAPH_LONG_ITERS}
# Under bfloat16 autocast the recipe's steps take about 0.66 times as long on CPUs that compute bf16
# natively (results/costs/mnist100-fast-costs-bf16-6000.json): this many fill the 60 minutes there with the
# margin of the kind's slower machines.
BF16_LONG_ITERS = 40000


def as_flags(settings: dict) -> list[str]:
    """Command-line flags for config settings: ``--key value``, and ``--key`` / ``--no-key`` for a switch."""
    flags = []
    for key, value in settings.items():
        name = key.replace("_", "-")
        flags += ([f"--{name}" if value else f"--no-{name}"] if isinstance(value, bool) else [f"--{name}", str(value)])
    return flags


# The quick-start table's ablation of the paper's method (each loss alone, and neither): the
# recipe that was the default until ts-me-fixmatch replaced it, 4,000 steps with n=4, which takes
# the time of 3,000 steps of ts-me-fixmatch (the default's step count before 2026-11-30).
QUICK_ABLATION = {"views": 4, "iters": 4000}

# The folder the own-images rows train on, one per labelled split ({seed} is the run's seed).
FOLDER_ROOT = "data/fashion400-folder-s{seed}"
# the own-images table's default rows: the folder, and the same labelled images from the built-in dataset
FOLDER_DEFAULT_ROWS = {"default": ["--data", FOLDER_ROOT],
                       "default-builtin": ["--dataset", "fashion-mnist", "--labels", "400"]}

# The real-images table: ELPV written as a folder (`stochreg data folder elpv ROOT --labels 40 --seed S`: the
# original 300-pixel PNG files), and its validation rows on the built-in dataset, 400 training images held out.
ELPV_ROOT = "data/elpv40-folder-s{seed}"
ELPV_VALIDATION = ["--dataset", "elpv", "--labels", "40", "--val-size", "400"]
ELPV_LABELS_ONLY = ["--method", "supervised", "--class-prior", "labelled", "--iters", "300"]

# table name -> (description, shared flags, {row name: extra flags}, default seeds)
TABLES = {
    "mnist100": (
        "MNIST with 100 labels (10 per class), the quick-start recipe: the default (`make train` is its "
        "seed 0) is ts-me-fixmatch with the label-propagation graph term (`--lambda-graph 3`) built on "
        "deskewed digits, 6,000 steps in float32 with the graph term fading over them (the row "
        "ts-me-fixmatch-graph-deskew-fade; at full graph weight before 2026-12-07, ts-me-fixmatch-graph-deskew), and "
        "where the CPU computes "
        "bfloat16 natively in bfloat16 for 4,800 steps with the graph term fading over them "
        "(ts-me-fixmatch-graph-deskew-bf16-4800-fade, chosen on the validation split of table mnist100-fast; "
        "before 2026-12-06 6,000 bfloat16 steps at full graph weight, "
        "ts-me-fixmatch-graph-deskew-bf16); beside it that with no graph term on the "
        "images whose propagated label is unsure (`--graph-min-confidence 0.4`, ts-me-fixmatch-graph-deskew-conf04), "
        "the same with the graph "
        "on raw pixels (ts-me-fixmatch-graph), without the graph term (ts-me-fixmatch), that in bfloat16 "
        "(`--precision bf16`) and at half its steps (3,000), and at that cost per run the paper's method and its "
        "ablation with n=4 views and "
        "4,000 steps: the supervised baseline trains on the same labelled split with the same network, "
        "transformations and schedule, without the unlabelled images.",
        ["--dataset", "mnist", "--labels", "100"],
        {# the default in float32: the graph built on deskewed images, fading over the 6,000 steps
         "ts-me-fixmatch-graph-deskew-fade": ["--method", "ts-me-fixmatch", "--lambda-graph", "3", "--graph-deskew",
                                              "--graph-fade-iters", "6000"],
         # that at full graph weight, the float32 default before 2026-12-07
         "ts-me-fixmatch-graph-deskew": ["--method", "ts-me-fixmatch", "--lambda-graph", "3", "--graph-deskew"],
         # the default where the CPU computes bfloat16 natively (--precision, --iters and --graph-fade-iters
         # left unset give it this there), and that default before 2026-12-06
         "ts-me-fixmatch-graph-deskew-bf16-4800-fade": ["--method", "ts-me-fixmatch", "--lambda-graph", "3",
                                                        "--graph-deskew", "--precision", "bf16", "--iters", "4800",
                                                        "--graph-fade-iters", "4800"],
         "ts-me-fixmatch-graph-deskew-bf16": ["--method", "ts-me-fixmatch", "--lambda-graph", "3", "--graph-deskew",
                                              "--precision", "bf16"],
         # that with no graph term on images whose propagated label is unsure (a trial)
         "ts-me-fixmatch-graph-deskew-conf04": ["--method", "ts-me-fixmatch", "--lambda-graph", "3", "--graph-deskew",
                                                "--graph-min-confidence", "0.4"],
         "ts-me-fixmatch-graph": ["--method", "ts-me-fixmatch", "--lambda-graph", "3"],
         "ts-me-fixmatch": ["--method", "ts-me-fixmatch"],
         "ts-me-fixmatch-3000": ["--method", "ts-me-fixmatch", "--iters", "3000"],
         "ts-me-fixmatch-bf16": ["--method", "ts-me-fixmatch", "--precision", "bf16"],
         **{row: as_flags({"method": row, **QUICK_ABLATION}) for row in ("ts-me", "supervised", "ts", "me")}},
        [0, 1, 2],
    ),
    "mnist100-60min": (
        "MNIST with 100 labels, the CPU recipe for a 60-minute budget: ts-me (n=4) with "
        f"{LONG_ITERS['ts-me']:,} steps and a ramp-up of 2,000 steps; beside it the other leaders of the "
        "methods table, each with its 15-minute row's steps scaled alike so that every run costs the "
        "same time (" + ", ".join(f"{row} {iters:,}" for row, iters in LONG_ITERS.items() if row != "ts-me") + " steps), "
        "and ts-me-fixmatch with the label-propagation graph term (`--lambda-graph 3`) at ts-me-fixmatch's steps "
        f"and at {GRAPH_LONG_ITERS:,} steps (ts-me-fixmatch-graph-{GRAPH_LONG_ITERS}: the step count that fills 60 "
        "minutes on a 2-core Zen 4 AMD EPYC, where the other rows take 25-50 minutes), and that "
        f"with the graph term faded to 0 at step 3,000 (`--graph-fade-iters 3000`, ts-me-fixmatch-graph-fade-"
        f"{GRAPH_LONG_ITERS}) or built on deskewed images (`--graph-deskew`, ts-me-fixmatch-graph-deskew-"
        f"{GRAPH_LONG_ITERS}), and that with the graph term fading over the whole run (`--graph-fade-iters "
        f"{GRAPH_LONG_ITERS}`, ts-me-fixmatch-graph-deskew-fade-{GRAPH_LONG_ITERS}).",
        ["--dataset", "mnist", "--labels", "100", "--rampup-iters", "2000", "--eval-every", "1000"],
        {**{row: as_flags({**METHOD_SETTINGS[row], "iters": LONG_ITERS[row]}) for row in LONG_ITERS},
         # the leader with the label-propagation graph term, at the leader's cost per run
         "ts-me-fixmatch-graph": as_flags({**METHOD_SETTINGS["ts-me-fixmatch"], "iters": LONG_ITERS["ts-me-fixmatch"],
                                           "lambda_graph": 3}),
         # the same at the step count that fills the 60 minutes on a 2-core Zen 4 AMD EPYC
         # (0.11-0.12 s/step alone: 52-56 minutes plus evaluations and the graph)
         f"ts-me-fixmatch-graph-{GRAPH_LONG_ITERS}": as_flags(GRAPH_LONG_SETTINGS),
         # the same with the graph term faded to 0 at step 3,000: the propagated labels steer the
         # start, the network's own terms the rest (at 6,000 steps the curled nines came back)
         f"ts-me-fixmatch-graph-fade-{GRAPH_LONG_ITERS}": as_flags({**GRAPH_LONG_SETTINGS, "graph_fade_iters": 3000}),
         # the same recipe with the graph built on deskewed images
         f"ts-me-fixmatch-graph-deskew-{GRAPH_LONG_ITERS}": as_flags({**GRAPH_LONG_SETTINGS, "graph_deskew": True}),
         # that with the graph term fading over the whole run: full while the crossed
         # sevens are learnt, half at 14,000 steps, gone at the end, when split 2's curled nines are lost
         f"ts-me-fixmatch-graph-deskew-fade-{GRAPH_LONG_ITERS}": as_flags(LONG_RECIPE_SETTINGS)},
        [0, 1, 2],
    ),
    "mnist100-60min-val": (
        "MNIST with 100 labels, the 60-minute recipe chosen on a validation split of 5,000 training images "
        "(`--val-size 5000`: their labels only score; they stay in the unlabelled pool): the recipe as it is "
        f"(ts-me-fixmatch-graph-deskew-fade-{GRAPH_LONG_ITERS}, float32) beside it with the forward passes under "
        f"bfloat16 autocast for the {BF16_LONG_ITERS:,} steps that fill 60 minutes on a CPU computing bf16 "
        f"natively, the graph term fading over its whole run (ts-me-fixmatch-graph-deskew-fade-bf16-{BF16_LONG_ITERS}).",
        ["--dataset", "mnist", "--labels", "100", "--val-size", "5000", "--rampup-iters", "2000", "--eval-every", "1000"],
        {f"ts-me-fixmatch-graph-deskew-fade-{GRAPH_LONG_ITERS}": as_flags(LONG_RECIPE_SETTINGS),
         f"ts-me-fixmatch-graph-deskew-fade-bf16-{BF16_LONG_ITERS}": as_flags(
             {**LONG_RECIPE_SETTINGS, "iters": BF16_LONG_ITERS, "graph_fade_iters": BF16_LONG_ITERS,
              "precision": "bf16"})},
        [0, 1, 2],
    ),
    "methods": (
        f"MNIST with 100 labels, every method of stochreg under the same wall-clock budget of about "
        f"{METHOD_BUDGET_MINUTES} minutes on this machine (each row's step count fills it, measured by "
        "benchmarks/method_costs.py); the default network, transformations and schedule otherwise.",
        ["--dataset", "mnist", "--labels", "100", "--eval-every", "1000"],
        {row: as_flags({**settings, "iters": METHOD_ITERS[row]}) for row, settings in METHOD_SETTINGS.items()},
        [0, 1, 2],
    ),
    "mnist100-fast": (
        "MNIST with 100 labels, a default at half the cost: the default recipe (ts-me-fixmatch with the graph term "
        "on deskewed digits, 6,000 steps of 5 views) beside recipes that cost about half as much per run: the "
        "same at 3,000 steps, with 3 views (2 weak, 1 strong) at 4,500 steps (128 images a step instead of 192), "
        "on the compact net at half width (`--net compact-small`), and for 6,000 steps of fewer images (16 labelled "
        "and 16 unlabelled, or 32 and 16), and with the forward passes in bfloat16 at 4,800 steps (with the graph term "
        "at full weight, and fading over the whole run: `--graph-fade-iters 4800`; that also in float32, "
        "and in float32 at twice the learning rate, `--lr 0.2`) and 6,000 "
        "steps, the default with the graph term fading over its 6,000 float32 steps, that with 4 views (3 weak, "
        "1 strong: 160 images a step instead of 192), that with 16 labelled images a step for 5,300 steps, and on "
        "the compact net at three-quarter width for 6,500 and 6,000 steps, each "
        "with a validation split of 5,000 training images (`--val-size 5000`: their labels only score; they stay in "
        "the unlabelled pool): chosen on the validation error, the test error reported. Evaluated every 100 "
        "steps, so that each run's log also gives its time to accuracy "
        "(`python benchmarks/time_to_accuracy.py --from-run RUN`).",
        ["--dataset", "mnist", "--labels", "100", "--val-size", "5000", "--method", "ts-me-fixmatch",
         "--lambda-graph", "3", "--graph-deskew", "--eval-every", "100"],
        {"ts-me-fixmatch-graph-deskew": [],
         "ts-me-fixmatch-graph-deskew-3000": ["--iters", "3000"],
         "ts-me-fixmatch-graph-deskew-n3-4500": ["--views", "3", "--iters", "4500"],
         "ts-me-fixmatch-graph-deskew-small": ["--net", "compact-small"],
         # the same 6,000-step schedule on fewer images a step: 16 labelled and 16 unlabelled (96 images
         # a step in all), or 16 unlabelled beside the 32 labelled (112)
         "ts-me-fixmatch-graph-deskew-b16": ["--batch-labelled", "16", "--batch-unlabelled", "16"],
         "ts-me-fixmatch-graph-deskew-u16": ["--batch-unlabelled", "16"],
         # the forward passes under bfloat16 autocast, for CPUs that compute bf16 natively (AVX-512 BF16, AMX);
         # the step count fits half the default's minutes at the cost ratio measured on such a CPU
         # (results/costs/mnist100-fast-costs-bf16.json)
         "ts-me-fixmatch-graph-deskew-bf16-4800": ["--precision", "bf16", "--iters", "4800"],
         # that with the graph term fading over the whole run, as in the 60-minute recipe
         "ts-me-fixmatch-graph-deskew-bf16-4800-fade": ["--precision", "bf16", "--iters", "4800",
                                                        "--graph-fade-iters", "4800"],
         # that recipe in float32, tried for CPUs without native bf16 (not adopted: benchmarks/tuning.md)
         "ts-me-fixmatch-graph-deskew-4800-fade": ["--iters", "4800", "--graph-fade-iters", "4800"],
         # that at twice the learning rate, a shorter schedule's usual remedy (benchmarks/tuning.md)
         "ts-me-fixmatch-graph-deskew-4800-fade-lr2": ["--iters", "4800", "--graph-fade-iters", "4800", "--lr", "0.2"],
         # the fading float32 default with 4 views (3 weak, 1 strong) instead of 5: 160 images a step instead of
         # 192, the steps that fit 12 minutes at the cost ratio measured (results/costs/mnist100-fast-costs-n4.json)
         "ts-me-fixmatch-graph-deskew-n4-fade": ["--views", "4", "--graph-fade-iters", "6000"],
         # the float32 default's own 6,000 steps with the graph term fading over them
         "ts-me-fixmatch-graph-deskew-fade": ["--graph-fade-iters", "6000"],
         # that with 16 labelled images a step instead of 32 (176 images a step instead of 192: 100 labelled
         # images are seen 960 times each instead of 1,920), for the steps that fit 12 minutes on a CPU of
         # the Zen 3 kind at the cost ratio measured (results/costs/mnist100-fast-costs-b16l.json)
         "ts-me-fixmatch-graph-deskew-b16l-fade": ["--batch-labelled", "16", "--iters", "5300",
                                                   "--graph-fade-iters", "5300"],
         # the default's 6,000 steps in bfloat16: not half the cost, but the same steps for less
         "ts-me-fixmatch-graph-deskew-bf16": ["--precision", "bf16"],
         # that on the compact net at three-quarter width, for the steps that fit 6 training minutes on a CPU
         # computing bf16 natively at the cost ratio measured there (results/costs/mnist100-fast-costs-bf16-medium.json)
         "ts-me-fixmatch-graph-deskew-bf16-medium-6500": ["--precision", "bf16", "--net", "compact-medium",
                                                          "--iters", "6500"],
         # that at the default's 6,000 steps, after 6,500 overran the cost bound (benchmarks/tuning.md)
         "ts-me-fixmatch-graph-deskew-bf16-medium": ["--precision", "bf16", "--net", "compact-medium"]},
        [0, 1, 2],
    ),
    "fashion400": (
        "Fashion-MNIST with 400 labels (40 per class), the quick-start budget (6,000 steps), with a validation "
        "split of 5,000 training images (`--val-size 5000`: their labels only score; they stay in the unlabelled "
        "pool and are never labelled): settings are chosen on the validation error, the test error is reported. "
        "Rows: the MNIST recipe as it is (ts-me-fixmatch-digits-graph: digit transform, graph term), the same with "
        "crop-and-flip views without and with the graph term, that with TS at a quarter of its weight (`--lambda-ts "
        "1`), stochreg's FixMatch with 2 views of 80 unlabelled images (the same images per step) without and with "
        "the graph term, that FixMatch with a confidence threshold of 0.8, with the unlabelled term at twice its "
        "weight, with the class-balance term, on the compact net at three-quarter width for 10,000 steps (1.19 "
        "times the recipe's minutes a run, measured interleaved), with weight decay 1e-3 and 2e-3 (the default: "
        "5e-4), with half of each step's labelled images strongly augmented too (`--labelled-strong 0.5`), with "
        "views mildly warped as well (`--transform crop-flip-warp`), the narrower net for 10,000 and 9,200 steps "
        "with the unlabelled term at twice its weight, that at half and at twice the learning rate (0.05, 0.2), "
        "that with the weak view in a pass of its own without gradient (`--separate-targets`) at 80, 128 or 112 "
        "unlabelled images a step and at 80 for 14,500 and 12,000 steps, that with FlexMatch's curriculum "
        "thresholds (`--flex-threshold`), with FixMatch's targets from the averaged weights for 12,000 steps "
        "(`--teacher-targets`) on the cosine to zero and on FixMatch's schedule, with the forward passes under "
        "bfloat16 autocast (`--precision bf16`), with ReMixMatch's distribution alignment (`--dist-align`), without dropout (`--dropout 0`), and the "
        "supervised baselines with each transform.",
        ["--dataset", "fashion-mnist", "--labels", "400", "--val-size", "5000"],
        {"ts-me-fixmatch-digits-graph": ["--method", "ts-me-fixmatch", "--transform", "digits", "--lambda-graph",
                                         "3", "--no-graph-deskew"],
         "ts-me-fixmatch-crop-flip": ["--method", "ts-me-fixmatch", "--transform", "crop-flip", "--lambda-graph", "0"],
         "ts-me-fixmatch-crop-flip-graph": ["--method", "ts-me-fixmatch", "--transform", "crop-flip", "--lambda-graph", "3",
                             "--no-graph-deskew"],
         # the labels fight the terms at MNIST's weights: TS at a quarter of its weight
         "ts-me-fixmatch-crop-flip-graph-ts1": ["--method", "ts-me-fixmatch", "--transform", "crop-flip",
                                                "--lambda-graph", "3", "--no-graph-deskew", "--lambda-ts", "1"],
         # stochreg's FixMatch at the same images per step (2 views of 80 unlabelled images, as 5 of 32)
         "fixmatch-crop-flip": ["--method", "fixmatch", "--transform", "crop-flip", "--lambda-graph", "0",
                                "--views", "2", "--batch-unlabelled", "80"],
         "fixmatch-crop-flip-graph": ["--method", "fixmatch", "--transform", "crop-flip", "--lambda-graph", "3",
                                      "--no-graph-deskew", "--views", "2", "--batch-unlabelled", "80"],
         # the labels are memorised by mid-run while the validation error still falls: more of the
         # unlabelled images pass a lower confidence threshold, or the unlabelled term weighs more
         "fixmatch-crop-flip-t08": ["--method", "fixmatch", "--transform", "crop-flip", "--lambda-graph", "0",
                                    "--views", "2", "--batch-unlabelled", "80", "--threshold", "0.8"],
         "fixmatch-crop-flip-u2": ["--method", "fixmatch", "--transform", "crop-flip", "--lambda-graph", "0",
                                   "--views", "2", "--batch-unlabelled", "80", "--lambda-u", "2"],
         "fixmatch-crop-flip-balance": ["--method", "fixmatch", "--transform", "crop-flip", "--lambda-graph", "0",
                                        "--views", "2", "--batch-unlabelled", "80", "--lambda-balance", "1"],
         # the validation error still falls at the last step: more steps on the compact net at
         # three-quarter width (its steps are cheaper; results/costs/fashion400-costs.json has by how much)
         "fixmatch-crop-flip-medium-10k": ["--method", "fixmatch", "--transform", "crop-flip", "--lambda-graph", "0",
                                           "--views", "2", "--batch-unlabelled", "80", "--net", "compact-medium",
                                           "--iters", "10000"],
         # the labels are memorised by mid-run: heavier weight decay (the default is 5e-4), at two doses
         "fixmatch-crop-flip-wd1e-3": ["--method", "fixmatch", "--transform", "crop-flip", "--lambda-graph", "0",
                                       "--views", "2", "--batch-unlabelled", "80", "--weight-decay", "1e-3"],
         "fixmatch-crop-flip-wd2e-3": ["--method", "fixmatch", "--transform", "crop-flip", "--lambda-graph", "0",
                                       "--views", "2", "--batch-unlabelled", "80", "--weight-decay", "2e-3"],
         # the labels are memorised by mid-run: half of each step's labelled images strongly augmented
         # too, or every view (labelled and weak ones) mildly warped as well as cropped and mirrored
         "fixmatch-crop-flip-ls05": ["--method", "fixmatch", "--transform", "crop-flip", "--lambda-graph", "0",
                                     "--views", "2", "--batch-unlabelled", "80", "--labelled-strong", "0.5"],
         "fixmatch-crop-flip-warp": ["--method", "fixmatch", "--transform", "crop-flip-warp", "--lambda-graph", "0",
                                     "--views", "2", "--batch-unlabelled", "80"],
         # the two settings that came nearest the 0.3-point gate, together: the narrower net for more
         # steps (0.23 points over three splits) and the unlabelled term at twice its weight (0.26 on split 0)
         "fixmatch-crop-flip-medium-10k-u2": ["--method", "fixmatch", "--transform", "crop-flip", "--lambda-graph",
                                              "0", "--views", "2", "--batch-unlabelled", "80", "--net",
                                              "compact-medium", "--iters", "10000", "--lambda-u", "2"],
         # that at the step count that fits 1.1 times the recipe's minutes at the interleaved cost ratio
         "fixmatch-crop-flip-medium-9200-u2": ["--method", "fixmatch", "--transform", "crop-flip", "--lambda-graph",
                                               "0", "--views", "2", "--batch-unlabelled", "80", "--net",
                                               "compact-medium", "--iters", "9200", "--lambda-u", "2"],
         # the learning rate was chosen on the digits (0.1); FixMatch's authors use 0.03 on batches four
         # times larger than these: the recipe at half and at twice the rate, the same cost a step
         "fixmatch-crop-flip-medium-9200-u2-lr05": ["--method", "fixmatch", "--transform", "crop-flip",
                                                    "--lambda-graph", "0", "--views", "2", "--batch-unlabelled", "80",
                                                    "--net", "compact-medium", "--iters", "9200", "--lambda-u", "2",
                                                    "--lr", "0.05"],
         "fixmatch-crop-flip-medium-9200-u2-lr2": ["--method", "fixmatch", "--transform", "crop-flip",
                                                   "--lambda-graph", "0", "--views", "2", "--batch-unlabelled", "80",
                                                   "--net", "compact-medium", "--iters", "9200", "--lambda-u", "2",
                                                   "--lr", "0.2"],
         # the weak view only gives targets: run apart without gradient (--separate-targets), its saved
         # backward pass buys more unlabelled images a step (128 or 112 instead of 80) at about the recipe's cost
         "fixmatch-crop-flip-medium-9200-u2-sep-b128": ["--method", "fixmatch", "--transform", "crop-flip",
                                                        "--lambda-graph", "0", "--views", "2", "--batch-unlabelled",
                                                        "128", "--net", "compact-medium", "--iters", "9200",
                                                        "--lambda-u", "2", "--separate-targets"],
         "fixmatch-crop-flip-medium-9200-u2-sep-b112": ["--method", "fixmatch", "--transform", "crop-flip",
                                                        "--lambda-graph", "0", "--views", "2", "--batch-unlabelled",
                                                        "112", "--net", "compact-medium", "--iters", "9200",
                                                        "--lambda-u", "2", "--separate-targets"],
         # the weak view apart at the recipe's 80 images: the same work a step less its backward pass, for
         # the recipe's 9,200 steps; then the saving spent on steps, at the count that fits the recipe's
         # minutes by the interleaved cost ratio (9,200 x 0.090 / 0.057 s) and, that being 1.2 times the
         # minutes in whole runs, by the whole runs' own timing (14,500 x 12.57 / 15.07), rounded down to 100
         **{f"fixmatch-crop-flip-medium-{steps}-u2-sep":
            ["--method", "fixmatch", "--transform", "crop-flip", "--lambda-graph", "0", "--views", "2",
             "--batch-unlabelled", "80", "--net", "compact-medium", "--iters", str(steps), "--lambda-u", "2",
             "--separate-targets"] for steps in (9200, 14500, 12000)},
         # a threshold of 0.95 passes few pseudo-labels early in a short run and fewest for the hard
         # classes: FlexMatch's per-class curriculum thresholds, the same cost a step
         "fixmatch-crop-flip-medium-9200-u2-flex": ["--method", "fixmatch", "--transform", "crop-flip",
                                                    "--lambda-graph", "0", "--views", "2", "--batch-unlabelled",
                                                    "80", "--net", "compact-medium", "--iters", "9200",
                                                    "--lambda-u", "2", "--flex-threshold"],
         # FixMatch's targets from the EMA weights (the teacher of Mean Teacher and EMAN) in a pass without
         # gradient: the cost of --separate-targets, so the 12,000 steps that fit the recipe's minutes
         "fixmatch-crop-flip-medium-12000-u2-teacher": ["--method", "fixmatch", "--transform", "crop-flip",
                                                        "--lambda-graph", "0", "--views", "2", "--batch-unlabelled",
                                                        "80", "--net", "compact-medium", "--iters", "12000",
                                                        "--lambda-u", "2", "--teacher-targets"],
         # the same with FixMatch's own schedule, whose learning rate ends at 0.2 of its start, not at zero:
         # late steps still move the weights, and the average stays apart from them
         "fixmatch-crop-flip-medium-12000-u2-teacher-fmcos": ["--method", "fixmatch", "--transform", "crop-flip",
                                                              "--lambda-graph", "0", "--views", "2",
                                                              "--batch-unlabelled", "80", "--net", "compact-medium",
                                                              "--iters", "12000", "--lambda-u", "2",
                                                              "--teacher-targets", "--schedule", "cosine-fixmatch"],
         # the forward passes under bfloat16 autocast, cheaper on CPUs that compute bf16 natively: the
         # recipe's work a step, its saving spent on steps (9,200 x the seconds of float32 steps / bf16 ones)
         "fixmatch-crop-flip-medium-13300-u2-bf16": ["--method", "fixmatch", "--transform", "crop-flip",
                                                     "--lambda-graph", "0", "--views", "2", "--batch-unlabelled",
                                                     "80", "--net", "compact-medium", "--iters", "13300",
                                                     "--lambda-u", "2", "--precision", "bf16"],
         # shirts are predicted for three in four of the images that are shirts, and a confident wrong
         # pseudo-label teaches its look-alike class: ReMixMatch's distribution alignment, the same cost a step
         "fixmatch-crop-flip-medium-9200-u2-da": ["--method", "fixmatch", "--transform", "crop-flip",
                                                  "--lambda-graph", "0", "--views", "2", "--batch-unlabelled", "80",
                                                  "--net", "compact-medium", "--iters", "9200", "--lambda-u", "2",
                                                  "--dist-align"],
         # the model cannot tell shirts from T-shirts and coats: the compact net without its dropout, whose
         # every unit then learns on every view (the strong views and the unlabelled term regularise), the same steps
         "fixmatch-crop-flip-medium-9200-u2-nodrop": ["--method", "fixmatch", "--transform", "crop-flip",
                                                      "--lambda-graph", "0", "--views", "2", "--batch-unlabelled",
                                                      "80", "--net", "compact-medium", "--iters", "9200",
                                                      "--lambda-u", "2", "--dropout", "0"],
         "supervised-crop-flip": ["--method", "supervised", "--transform", "crop-flip", "--lambda-graph", "0"],
         "supervised": ["--method", "supervised", "--transform", "digits", "--lambda-graph", "0"]},
        [0, 1, 2],
    ),
    "fashion400-folder": (
        "The own-images path end to end: Fashion-MNIST written as a folder of PNG files (`python "
        "benchmarks/fashion_folder.py --seed S`: labelled/CLASS/ the 400 images of split S, unlabelled/ the other "
        "59,600 training images, test/CLASS/ the test set), trained with `--data ROOT` and no other setting, so the "
        "whole recipe is the one chosen from the data (for these grayscale images that are not digits: FixMatch "
        "alone, 2 views of 80 unlabelled images, crop-and-flip views, the compact net at three-quarter width for "
        "9,200 steps with the unlabelled term at weight 2, the graph term by its label-only check); beside it the "
        "built-in `--dataset fashion-mnist --labels 400` with the same defaults (the same labelled images, the same "
        "choices), the supervised baseline on the folder, and both default rows as they ran with the recipes of "
        "2026-12-02 (the full-width compact net for 6,000 steps, the unlabelled term at weight 1) and of 2026-12-05 "
        "(the compact nets' dropout at 0.25; today's recipe has none) (pinned here: their recorded commands, "
        "`--data ROOT` alone, predate the changes).",
        [],
        {**FOLDER_DEFAULT_ROWS,
         "supervised": ["--data", FOLDER_ROOT, "--method", "supervised"],
         **{f"{row}-{recipe}": [*flags, *pinned] for row, flags in FOLDER_DEFAULT_ROWS.items()
            for recipe, pinned in (("compact-6000", ["--net", "compact", "--iters", "6000", "--lambda-u", "1"]),
                                   ("dropout", ["--dropout", "0.25"]))}},
        [0, 1, 2],
    ),
    "elpv40": (
        "Real images nobody tuned for: ELPV, 2,624 electroluminescence images of solar cells (300x300 grayscale PNG), "
        "functional (1,803) or defective (821); a fixed stratified quarter is the test set (656 images), 20 labelled "
        "images of each class, the other 1,928 training images unlabelled, written as a folder of the original files "
        "(`stochreg data folder elpv ROOT --labels 40 --seed S`). `default` is `--data ROOT` and no other flag: the "
        "recipe chosen from the data, trained for its CPU budget; `supervised` the same on the 40 labels alone; "
        "`supervised-all` the same network on all 1,968 training labels; the `val-` rows choose on 400 training images "
        "held out of the built-in dataset (their test error is reported once, for what was chosen). The constant answer "
        "(`functional` for every image) errs on 31.25% of the test images, balanced error 50%. `peer-usb-fixmatch` is "
        "USB's FixMatch (`python benchmarks/peer_fixmatch.py --table elpv40 --seed S --minutes M`) on the same folder's "
        "images at 128 px, its adapter's compact net from scratch, for the training minutes of the `default` run of "
        "the same split on the same machine.",
        [],
        {"default": ["--data", ELPV_ROOT],
         # the same fine-tuning, the unlabelled images left out (their class prior too)
         "supervised": ["--data", ELPV_ROOT, *ELPV_LABELS_ONLY],
         "supervised-all": ["--dataset", "elpv", "--labels", "0", *ELPV_LABELS_ONLY],
         "val-default": ELPV_VALIDATION,
         # the default with its views mirrored at the edges instead of black bands (rejected on validation)
         "val-default-reflect": [*ELPV_VALIDATION, "--transform", "photo"],
         # challengers of the default's fine-tuning: half the labelled images a step and no weight average (as the
         # exploration script trained), and a third of the learning rate
         "val-default-b16-ema0": [*ELPV_VALIDATION, "--batch-labelled", "16", "--ema", "0"],
         "val-default-lr003": [*ELPV_VALIDATION, "--lr", "0.003"],
         # FixMatch on the same network, given the minutes of the CPU budget (8 on AVX-512 CPUs): 32 unlabelled
         # images a step and a short ramp-up, so that its unlabelled term is at full weight for most steps
         "val-fixmatch": [*ELPV_VALIDATION, "--method", "fixmatch", "--batch-unlabelled", "32", "--rampup-iters",
                          "100", "--time-budget", "8"]},
        [0, 1, 2],
    ),
}

# Rows that other programs than stochreg train, written by their own scripts into the table's folder.
PEER_ROWS = {"fashion400": ("peer-usb-fixmatch",), "elpv40": ("peer-usb-fixmatch",)}   # benchmarks/peer_fixmatch.py

# Rows pin the defaults they ran under, so that they rerun as they ran (their recorded commands
# say so too): the rows run before the label-propagation graph term became the default ran
# without it, and the graph rows run before it was built on deskewed digits by default built it
# on the raw pixels; the digit rows run before the precision was chosen from the machine ran in float32
# (other images get float32 from it anyway).
for _table in ("mnist100", "mnist100-60min", "methods"):
    for _flags in TABLES[_table][2].values():
        if "--lambda-graph" not in _flags:
            _flags.extend(["--lambda-graph", "0"])
        elif _flags[_flags.index("--lambda-graph") + 1] != "0" and not {"--graph-deskew", "--no-graph-deskew"} & set(_flags):
            _flags.append("--no-graph-deskew")
for _table in ("mnist100", "mnist100-60min", "mnist100-60min-val", "methods", "mnist100-fast"):
    for _flags in TABLES[_table][2].values():
        if "--precision" not in _flags:
            _flags.extend(["--precision", "fp32"])


def row_configs(table: str, seed: int = 0) -> dict:
    """Each row of ``table`` as the TrainConfig its `stochreg train` command resolves to (settings
    left at auto stay auto: the Learner resolves them from the data)."""
    from stochreg.cli import build_parser, config_overrides
    from stochreg.config import resolve_config

    _, shared, rows, _ = TABLES[table]
    configs = {}
    for row, flags in rows.items():
        args = build_parser().parse_args(["train", *shared, *flags, "--seed", str(seed)])
        configs[row] = resolve_config(args.preset, args.config, config_overrides(args))
    return configs


def run_one(table: str, row: str, seed: int, flags: list[str]) -> dict:
    flags = [flag.replace("{seed}", str(seed)) for flag in flags]
    if FOLDER_ROOT.replace("{seed}", str(seed)) in flags:
        from fashion_folder import write_fashion_folder
        write_fashion_folder(HERE.parent / FOLDER_ROOT.replace("{seed}", str(seed)), seed, str(HERE.parent / "data"))
    if ELPV_ROOT.replace("{seed}", str(seed)) in flags:
        from stochreg.data.write_folder import write_dataset_folder
        write_dataset_folder("elpv", HERE.parent / ELPV_ROOT.replace("{seed}", str(seed)), 40, seed,
                             str(HERE.parent / "data"))
    out_json = RESULTS / table / f"{row}-s{seed}.json"
    if out_json.exists():
        print(f"skip {out_json.relative_to(HERE.parent)} (exists)")
        return json.loads(out_json.read_text())
    run_dir = HERE.parent / "runs" / "bench" / table / f"{row}-s{seed}"
    cmd = ["stochreg", "train", *flags, "--seed", str(seed), "--out", str(run_dir.relative_to(HERE.parent)),
           "--overwrite", "--no-progress"]
    # A run stopped or killed earlier continues from its last checkpoint and
    # ends exactly as it would have uninterrupted; its recorded time is the sum of the segments.
    resumable = (run_dir / "config.yaml").exists() and any((run_dir / "checkpoints").glob("step-*.pt"))
    launch = ["stochreg", "train", "--resume", str(run_dir.relative_to(HERE.parent)), "--no-progress"] \
        if resumable else cmd
    print("$", shlex.join(launch), flush=True)
    subprocess.run([sys.executable, "-m", "stochreg", *launch[1:]], check=True, cwd=HERE.parent)
    return collect(run_dir, shlex.join(cmd), out_json)


def collect(run_dir: Path, command: str, out_json: Path) -> dict:
    """A finished run's results.json plus its command and test-error curve, as the table's JSON."""
    result = json.loads((run_dir / "results.json").read_text())
    result["command"] = command
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    result["curve"] = [r for r in records if "test_error" in r]  # evaluations; loss records stay in the run
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=1) + "\n")
    return result


def mean_curve(runs: list[dict]) -> list[dict]:
    """The test error at each logged step, averaged over the runs that logged that step."""
    by_step: dict[int, list[float]] = {}
    for run in runs:
        for record in run["curve"]:
            by_step.setdefault(record["step"], []).append(record["test_error"])
    return [{"step": step, "test_error": statistics.mean(errors)} for step, errors in sorted(by_step.items())]


def row_results(table: str, row: str, results: Path | None = None) -> list[Path]:
    """The JSON files of one row, by seed (under `results`, by default this script's results/). An
    exact name match: a glob such as `ts-me-s*` would also take in `ts-me-strong-s0.json`, another row."""
    pattern = re.compile(rf"{re.escape(row)}-s(\d+)\.json")
    matches = [(int(m.group(1)), p) for p in ((results or RESULTS) / table).glob("*.json")
               if (m := pattern.fullmatch(p.name))]
    return [p for _, p in sorted(matches)]


def wall_time_cell(minutes: list[float]) -> str:
    """The mean wall time of a row's runs, or their range where the runs differ by more than the
    machine's usual noise (runs of one row made on machines of different speed)."""
    if len(minutes) > 1 and max(minutes) > 1.4 * min(minutes):
        return f"{min(minutes):.1f}-{max(minutes):.1f} min"
    return f"{statistics.mean(minutes):.1f} min"


def error_cells(runs: list[dict], unit: str = "seed", key: str = "test_error") -> tuple[str, str]:
    """A row's test error cells: mean +- std over its runs (or "(one seed)"), and each run's error."""
    errors = [100 * run[key] for run in runs]
    spread = f" +- {statistics.stdev(errors):.2f}" if len(errors) > 1 else f" (one {unit})"
    return (f"{statistics.mean(errors):.2f}%{spread}",
            ", ".join(f"s{run['seed']}: {error:.2f}%" for run, error in zip(runs, errors)))


def write_table(table: str) -> Path:
    description, _, rows, _ = TABLES[table]
    all_runs = [json.loads(p.read_text()) for p in (RESULTS / table).glob("*.json")] if (RESULTS / table).is_dir() else []
    validated = any("val_error" in run for run in all_runs)   # tables with a validation split show it first
    balanced = any("balanced_test_error" in run for run in all_runs)   # unbalanced classes: the balanced error too
    lines = [f"# Table `{table}`", "", description, "",
             "| method | seeds | " + ("validation error (mean) | " if validated else "")
             + "test error (mean +- std) | " + ("balanced error (mean +- std) | " if balanced else "")
             + "per seed | wall time per run |",
             "|---|---|---|---|---|" + ("---|" if validated else "") + ("---|" if balanced else "")]
    machines, commits = set(), set()
    mean_curves = {}
    for row in [*rows, *PEER_ROWS.get(table, ())]:
        runs = [json.loads(p.read_text()) for p in row_results(table, row)]
        if not runs:
            continue
        if all(run.get("curve") for run in runs):   # a peer logs no curve
            mean_curves[f"{row} ({len(runs)} seed{'s' if len(runs) > 1 else ''})"] = mean_curve(runs)
        minutes = [r["train_seconds"] / 60 for r in runs]
        machines.update(r["machine"] for r in runs)
        commits.update(str(r["commit"])[:10] for r in runs)
        mean_cell, per_seed_cell = error_cells(runs)
        val_cell = (f"{statistics.mean(100 * r['val_error'] for r in runs):.2f}% | "
                    if validated and all("val_error" in r for r in runs) else "- | " if validated else "")
        balanced_cell = (error_cells(runs, key="balanced_test_error")[0] + " | "
                         if balanced and all("balanced_test_error" in r for r in runs) else "- | " if balanced else "")
        lines.append(f"| {row} | {len(runs)} | {val_cell}{mean_cell} | {balanced_cell}{per_seed_cell} | "
                     f"{wall_time_cell(minutes)} |")
    notes = [f"- {p.stem}: {json.loads(p.read_text())['note']}" for p in sorted((RESULTS / table).glob("*.json"))
             if "note" in json.loads(p.read_text())]
    if notes:
        lines += ["", "Notes:", *notes]
    compare_curves(mean_curves, RESULTS / f"{table}.png")
    lines += ["", f"![test error against steps, mean over seeds]({table}.png)", "",
              "Rows with fewer seeds are partial: the rest are still to run (`--only-seeds`).",
              f"Machine: {'; '.join(sorted(machines))}. Commits: {', '.join(sorted(commits))}. "
              "Wall times vary by up to 40% with the load of other users of the machine, and more between the "
              "machine kinds (a run's note names its machine; the step counts, "
              "not the wall times, fix each run's budget).",
              f"Rerun: `python benchmarks/accuracy.py {table}` (one JSON per run in `results/{table}/`, "
              "each with its exact command)."]
    path = RESULTS / f"{table}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", choices=sorted(TABLES))
    parser.add_argument("--seeds", type=int, help="run only the first K seeds of the table")
    parser.add_argument("--only-seeds", type=int, nargs="+", metavar="S", help="run only these seeds of the table")
    parser.add_argument("--methods", nargs="+", help="run only these rows")
    parser.add_argument("--report", action="store_true", help="run nothing: write the table from the JSON there is")
    args = parser.parse_args()
    _, shared, rows, seeds = TABLES[args.table]
    unknown = set(args.methods or []) - set(rows)
    if unknown:
        parser.error(f"unknown row(s) {', '.join(sorted(unknown))}; table {args.table} has {', '.join(rows)}")
    chosen = [s for s in seeds[:args.seeds] if args.only_seeds is None or s in args.only_seeds]
    for seed in [] if args.report else chosen:
        for row, extra in rows.items():
            if args.methods is None or row in args.methods:
                run_one(args.table, row, seed, shared + extra)
    print(write_table(args.table).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
