"""The speed benchmark's --quick mode runs and writes a complete report (speed is never asserted)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark_scripts import load_benchmark


@pytest.mark.end_to_end
def test_quick_mode_writes_json_and_markdown(tmp_path):
    out = tmp_path / "speed.json"
    assert load_benchmark("speed").main(["--quick", "--threads", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["machine"] and report["command"].startswith("python benchmarks/speed.py --quick")
    first = report["rows"][0]
    for key in ("a_images_per_second", "b_images_per_second", "c_images_per_second", "b_over_a", "b_over_c",
                "flops_per_step"):
        assert first[key] > 0, key
    assert first["images_per_step"] == first["batch_labelled"] + first["views"] * first["batch_unlabelled"]
    assert "| compact-small | digits |" in out.with_suffix(".md").read_text()
    assert [row["variant"] for row in report["rows"]][-1] == "sgd-loop"


def test_naive_step_computes_the_same_losses_as_the_fast_one():
    """c is a fair contrast only if it computes the same thing: explicit pairs and the literal ME
    product give the fast losses' values."""
    import torch
    from stochreg.losses import mutual_exclusivity, transformation_stability
    probs = torch.softmax(torch.randn(4, 6, 10, dtype=torch.float64), dim=2)
    ts, me = load_benchmark("speed").naive_losses(list(probs))
    assert torch.allclose(transformation_stability(probs), ts)
    assert torch.allclose(mutual_exclusivity(probs), me)


def test_time_to_accuracy_reads_the_first_crossing(tmp_path):
    module = load_benchmark("time_to_accuracy")
    records = [{"step": 100, "seconds": 30.0, "eval_seconds": 3.0, "test_error": 0.05}, {"step": 120, "seconds": 35.0, "ce": 0.4},
               {"step": 200, "seconds": 63.0, "eval_seconds": 6.0, "test_error": 0.019},
               {"step": 300, "seconds": 96.0, "eval_seconds": 9.0, "test_error": 0.021}]
    found = module.crossings(records)
    assert found["2%"] == {"step": 200, "test_error": 0.019, "wall_minutes": 1.05, "train_minutes": 0.95}
    assert found["1%"] is None


def fake_run(run_dir: Path, seed: int, errors: list[float], final: float, machine: str) -> Path:
    """A finished run's files as stochreg writes them: an evaluation every 100 steps, 30 s each 100 steps."""
    run_dir.mkdir(parents=True)
    records = [{"step": 100 * (i + 1), "seconds": 30.0 * (i + 1), "eval_seconds": 3.0 * (i + 1), "test_error": e}
               for i, e in enumerate(errors)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run_dir / "results.json").write_text(json.dumps({"test_error": final, "method": "ts-me-fixmatch", "iters": 300,
                                                      "command": f"stochreg train --seed {seed}", "commit": "abc",
                                                      "machine": machine}))
    (run_dir / "config.yaml").write_text(f"seed: {seed}\nlambda_graph: 3.0\n")
    return run_dir


def test_time_to_accuracy_over_three_splits_gives_each_split_and_the_mean(tmp_path):
    module = load_benchmark("time_to_accuracy")
    machine = "x86_64 CPU (AMD EPYC; avx2), 2 cores, 2 torch threads"
    runs = [fake_run(tmp_path / "s0", 0, [0.03, 0.015, 0.009], 0.009, machine),
            fake_run(tmp_path / "s1", 1, [0.019, 0.012, 0.011], 0.012, machine),
            fake_run(tmp_path / "s2", 2, [0.05, 0.03, 0.025], 0.025, machine)]
    out = tmp_path / "report.json"
    assert module.main(["--from-run", *map(str, runs), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [split["seed"] for split in report["splits"]] == [0, 1, 2]
    # 2%: split 0 at step 200 (60 s less 6 s of evaluations), split 1 at step 100 (27 s), split 2 never
    assert report["targets"]["2%"] == {"reached": 2, "of": 3, "train_minutes_mean": 0.68, "train_minutes_std": 0.32}
    assert report["targets"]["1%"]["reached"] == 1
    # the final error: first reached at the last step on splits 0 and 2, one evaluation earlier on split 1
    assert report["targets"]["final"] == {"reached": 3, "of": 3, "train_minutes_mean": 1.2, "train_minutes_std": 0.26}
    assert report["final_test_error"] == pytest.approx((0.009 + 0.012 + 0.025) / 3)
    fake_run(tmp_path / "other", 0, [0.01], 0.01, "x86_64 CPU (AMD EPYC; avx2 avx512f avx512_bf16), 2 cores")
    with pytest.raises(SystemExit):   # one report per machine kind
        module.main(["--from-run", str(runs[0]), str(tmp_path / "other"), "--out", str(out)])


def test_time_to_accuracy_reads_benchmark_rows_with_their_own_commands(tmp_path):
    """A table row's JSON carries its curve and its `stochreg train` command: the report takes the
    settings from the command, and --machine names the kind for rows recorded before the kernel
    features were."""
    module = load_benchmark("time_to_accuracy")
    rows = []
    for seed, errors in ((0, [0.03, 0.015, 0.009]), (1, [0.019, 0.012, 0.011])):
        curve = [{"step": 100 * (i + 1), "seconds": 30.0 * (i + 1), "eval_seconds": 3.0 * (i + 1), "ce": 0.1,
                  "test_error": e, "val_error": e + 0.002} for i, e in enumerate(errors)]
        row = {"test_error": errors[-1], "train_seconds": 81.0, "curve": curve, "seed": seed, "iters": 300,
               "method": "ts-me-fixmatch", "graph_deskewed": True, "commit": "abc",
               "machine": "x86_64 CPU (AMD EPYC), 2 cores, 2 torch threads", "note": f"split {seed} ran alone",
               "command": f"stochreg train --dataset mnist --labels 100 --lambda-graph 3 --graph-deskew "
                          f"--graph-fade-iters 300 --seed {seed}"}
        rows.append(tmp_path / f"row-s{seed}.json")
        rows[-1].write_text(json.dumps(row))
    out = tmp_path / "report.json"
    kind = "x86_64 CPU (AMD EPYC; avx2), 2 cores, 2 torch threads"
    assert module.main(["--from-json", *map(str, rows), "--machine", kind, "--note", "Zen 3", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["lambda_graph"] == 3.0 and report["precision"] == "fp32" and report["graph_deskewed"]
    assert report["graph_fade_iters"] == 300
    assert report["machine"] == kind and report["note"] == "Zen 3"
    assert [split["note"] for split in report["splits"]] == ["split 0 ran alone", "split 1 ran alone"]
    assert report["targets"]["2%"] == {"reached": 2, "of": 2, "train_minutes_mean": 0.68, "train_minutes_std": 0.32}
    assert report["splits"][0]["train_minutes"] == 1.35
    with pytest.raises(SystemExit):
        module.main(["--from-json", str(rows[0]), "--from-run", str(tmp_path), "--out", str(out)])


def test_time_to_accuracy_names_the_machine_kind_in_the_file_name():
    module = load_benchmark("time_to_accuracy")
    assert module.kind_slug("x86_64 CPU (AMD EPYC; avx2), 2 cores, 2 torch threads") == "amd-epyc-avx2"
    assert module.kind_slug("x86_64 CPU (Intel(R) Xeon(R) Processor; avx2 avx512f avx512_bf16 amx_bf16), 2 cores, "
                            "2 torch threads") == "intel-xeon-processor-avx2-avx512f-avx512-bf16-amx-bf16"


def test_results_page_shows_a_three_split_measurement_per_split_and_mean(tmp_path, monkeypatch):
    module = load_benchmark("results_page")
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    machine = "x86_64 CPU (AMD EPYC; avx2), 2 cores, 2 torch threads"
    runs = [fake_run(tmp_path / f"s{seed}", seed, errors, errors[-1], machine)
            for seed, errors in ((0, [0.03, 0.015, 0.009]), (1, [0.019, 0.012, 0.011]), (2, [0.05, 0.03, 0.025]))]
    load_benchmark("time_to_accuracy").main(["--from-run", *map(str, runs), "--out",
                                              str(tmp_path / "time-to-accuracy" / "time_to_accuracy-ts-me-fixmatch-amd-epyc-avx2.json")])
    lines = module.time_to_accuracy_section()
    assert "| target | training minutes, mean +- std | split 0 | split 1 | split 2 |" in lines
    assert "| 2% | 0.68 +- 0.32 (2 of 3 splits) | 0.90 (step 200) | 0.45 (step 100) | not reached |" in lines
    assert any(line.startswith("Final test error 1.50% +- 0.87 over splits 0, 1, 2;") for line in lines)


def test_results_page_shows_a_recipe_measured_on_two_machines_default_first(tmp_path, monkeypatch):
    """Time to accuracy depends on the machine: each measurement keeps its own, the default's
    first; the default's method at another step count (an earlier default), without the graph term
    (measurements before the field existed ran without it), with the graph on raw pixels (the
    earlier default), or in another precision than the machine gets by default (bf16 where the CPU
    computes it natively, float32 elsewhere) is another recipe; where the CPU computes bf16 natively
    the default is 4,800 steps with the graph fading over them, and 6,000 bf16 steps an earlier one;
    elsewhere 6,000 float32 steps with the graph fading over them, and at full graph weight an earlier one."""
    module = load_benchmark("results_page")
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    hit = {"step": 1200, "test_error": 0.0195, "wall_minutes": 5.7, "train_minutes": 5.1}
    from stochreg.config.recipe import BF16_DIGIT_ITERS, GRAPH_WEIGHT
    from stochreg.config.settings import DEFAULT_ITERS
    steps, graph = DEFAULT_ITERS, GRAPH_WEIGHT    # the default's graph weight on MNIST (auto, on there)
    deskewed = {"lambda_graph": graph, "graph_deskewed": True}   # the default's graph
    fading = {**deskewed, "graph_fade_iters": steps}   # the float32 default's graph
    for name, method, iters, machine, extra in (
            ("ts-me", "ts-me", 4000, "old CPU", {}),
            ("ts-me-fixmatch", "ts-me-fixmatch", steps, "old CPU", fading),
            ("ts-me-fixmatch-epyc", "ts-me-fixmatch", steps, "CPU (AMD EPYC)", fading),
            ("ts-me-fixmatch-full-graph", "ts-me-fixmatch", steps, "CPU (AMD EPYC)", deskewed),
            ("ts-me-fixmatch-nograph", "ts-me-fixmatch", steps, "CPU (AMD EPYC)", {}),
            ("ts-me-fixmatch-raw", "ts-me-fixmatch", steps, "CPU (AMD EPYC)", {"lambda_graph": graph}),
            ("ts-me-fixmatch-half", "ts-me-fixmatch", steps // 2, "CPU (AMD EPYC)", deskewed),
            ("ts-me-fixmatch-bf16", "ts-me-fixmatch", steps, "CPU (AMD EPYC)", {"precision": "bf16", **deskewed}),
            ("native-bf16", "ts-me-fixmatch", BF16_DIGIT_ITERS, "CPU (AMD EPYC; avx512_bf16)",
             {"precision": "bf16", "graph_fade_iters": BF16_DIGIT_ITERS, **deskewed}),
            ("native-bf16-6000", "ts-me-fixmatch", steps, "CPU (AMD EPYC; avx512_bf16)",
             {"precision": "bf16", **deskewed}),
            ("native-fp32", "ts-me-fixmatch", steps, "CPU (AMD EPYC; avx512_bf16)", deskewed)):
        report = {"targets": {"2%": hit, "1%": None}, "method": method, "iters": iters, "command": "stochreg train",
                  "eval_every": 100, "final_test_error": 0.0129, "commit": "abc", "machine": machine, **extra}
        (tmp_path / "time-to-accuracy").mkdir(exist_ok=True)
        (tmp_path / "time-to-accuracy" / f"time_to_accuracy-{name}.json").write_text(json.dumps(report))
    headings = [line for line in module.time_to_accuracy_section() if line.startswith("**")]
    default = f"**ts-me-fixmatch**, {steps:,} steps"
    faded = f"graph term fading to 0 at step {BF16_DIGIT_ITERS:,}"
    assert sorted(headings[:3]) == [f"**ts-me-fixmatch**, {BF16_DIGIT_ITERS:,} steps, bf16, {faded} (the default "
                                    "recipe), on CPU (AMD EPYC; avx512_bf16)",
                                    f"{default}, fp32, graph term fading to 0 at step {steps:,} (the default "
                                    "recipe), on CPU (AMD EPYC)",
                                    f"{default}, fp32, graph term fading to 0 at step {steps:,} (the default "
                                    "recipe), on old CPU"]
    assert sorted(headings[3:]) == ["**ts-me**, 4,000 steps, fp32, graph term 0, on old CPU",
                                    f"**ts-me-fixmatch**, {steps // 2:,} steps, fp32, on CPU (AMD EPYC)",
                                    f"{default}, bf16, on CPU (AMD EPYC)",
                                    f"{default}, bf16, on CPU (AMD EPYC; avx512_bf16)",
                                    f"{default}, fp32, graph on raw pixels, on CPU (AMD EPYC)",
                                    f"{default}, fp32, graph term 0, on CPU (AMD EPYC)",
                                    f"{default}, fp32, on CPU (AMD EPYC)",
                                    f"{default}, fp32, on CPU (AMD EPYC; avx512_bf16)"]


def test_results_page_shows_the_paper_preset_runs_per_stop_with_mean_and_std(tmp_path, monkeypatch):
    """Each stop of the GPU runs is a row: mean steps and minutes, and the test error over the splits
    in one pass and averaging 10 passes, with the values behind each mean."""
    module = load_benchmark("results_page")
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    assert module.paper_preset_section()[-2:] == ["(no runs yet)", ""]
    (tmp_path / "gpu").mkdir()
    runs = [{"stops": [{"step": step, "training_seconds": 600.0, "test_error_1_pass": one,
                        "test_error_10_passes": ten}]}
            for step, one, ten in ((100, 0.012, 0.008), (200, 0.014, 0.010), (300, 0.010, 0.006))]
    report = {"machine": "one GPU", "commit": "abc", "speed": "about 150 steps/s", "runs": runs}
    (tmp_path / "gpu" / "x-paper-corrected.json").write_text(json.dumps(report))
    rows = [line for line in module.paper_preset_section() if line.startswith("| 2")]
    assert rows == ["| 200 | 10.0 | 1.20% +- 0.20 (1.20, 1.40, 1.00) | 0.80% +- 0.20 (0.80, 1.00, 0.60) |"]


def test_results_page_summary_meets_a_target_only_with_three_splits_under_it_in_time(tmp_path, monkeypatch):
    """The summary reads each named row's JSON; a target counts as met only with three splits, a
    mean at or under it and every run within the budget, and says which of these failed."""
    module = load_benchmark("results_page")
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    monkeypatch.setattr(module, "SUMMARY_ROWS", (("fast", "t", "good", 0.6, 60), ("short", "t", "two", 0.6, 60),
                                                 ("slow", "t", "slow", 0.6, 60), ("base", "t", "absent", None, 15)))
    (tmp_path / "t").mkdir()
    for row, errors, minutes in (("good", (0.0060, 0.0051, 0.0055), 55), ("two", (0.0050, 0.0052), 50),
                                 ("slow", (0.0059, 0.0061, 0.0070), 61)):
        for seed, error in enumerate(errors):
            run = {"test_error": error, "train_seconds": 60 * (minutes - seed), "seed": seed}
            (tmp_path / "t" / f"{row}-s{seed}.json").write_text(json.dumps(run))
    (tmp_path / "t" / "good-extra-s0.json").write_text(json.dumps({"test_error": 0.5, "train_seconds": 1, "seed": 0}))
    rows = {line.split(" | ")[0][2:]: line for line in module.summary_section() if line.startswith("| ")}
    assert rows["fast"] == ("| fast | t: good | 0.55% +- 0.05 | s0: 0.60%, s1: 0.51%, s2: 0.55% | 53.0-55.0 min | "
                            "at most 0.6% within 60 min: met |")
    assert rows["short"].endswith("at most 0.6% within 60 min: not met (2 splits) |")
    assert rows["slow"].endswith("not met (mean over 0.6%; a run took 61.0 min) |")
    assert rows["base"] == "| base | t: absent | (no runs yet) | | | |"
