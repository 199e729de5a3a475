"""The accuracy benchmark: its tables (every row a valid `stochreg train` command, the 60-minute
rows scaled from the 15-minute ones) and which JSON files make up a row."""
from __future__ import annotations

import pytest

from benchmark_scripts import load_benchmark


def test_a_row_takes_only_its_own_seeds_not_a_longer_method_name(tmp_path, monkeypatch):
    """`ts-me-strong-s0.json` once landed in the `ts-me` row through a `ts-me-s*` glob."""
    module = load_benchmark("accuracy")
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    (tmp_path / "methods").mkdir()
    for name in ("ts-me-s10", "ts-me-s2", "ts-me-strong-s0", "ts-me-anchored-s1", "ts-s0", "ts-me-s0"):
        (tmp_path / "methods" / f"{name}.json").write_text("{}")
    assert [p.stem for p in module.row_results("methods", "ts-me")] == ["ts-me-s0", "ts-me-s2", "ts-me-s10"]
    assert [p.stem for p in module.row_results("methods", "ts")] == ["ts-s0"]
    assert module.row_results("methods", "me") == []


def table_configs(module, table):
    """Each row of ``table`` as the TrainConfig its `stochreg train` command would resolve to."""
    return module.row_configs(table)


def on_cpu(cfg, native_bf16=False):
    """A digit row's settings as a run on a CPU resolves them (with or without native bf16)."""
    from stochreg.config.recipe import resolve_data_recipe
    return resolve_data_recipe(cfg, (1, 28, 28), is_digits=True, native_bf16_cpu=native_bf16)[0]


def test_every_row_of_every_table_is_a_valid_train_command():
    """A row is named after the method it trains, or that method plus a variant's suffix
    (ts-me-fixmatch-bf16) that is not itself a method's name (ts-me-strong trains ts-me-strong);
    a row of the recipe chosen from the data (method auto) is named default."""
    from stochreg.config import AUTO
    from stochreg.config.settings import DIGIT_RECIPE_METHOD
    from stochreg.methods import METHODS
    module = load_benchmark("accuracy")
    for table in module.TABLES:
        for row, cfg in table_configs(module, table).items():
            method = "default" if cfg.method == AUTO else cfg.method
            trains = row.removeprefix("val-")   # a row that chooses on validation names what it trains after that
            assert trains == method or (trains.startswith(method + "-") and trains not in METHODS), (table, row)
            expected = {"fashion400": ("fashion-mnist", 400),
                        "fashion400-folder": (("fashion-mnist", 400) if "-builtin" in row
                                              else (f"folder:{module.FOLDER_ROOT}", 0)),
                        "elpv40": (("elpv", 40) if row.startswith("val-") else ("elpv", 0) if row.endswith("-all")
                                   else (f"folder:{module.ELPV_ROOT}", 0))}.get(table, ("mnist", 100))
            # the recipe chosen from the data sets the step count of a default row and of the digit recipe's
            # method (it waits for the precision); every other row has its own
            assert (cfg.iters is None and cfg.method in (AUTO, DIGIT_RECIPE_METHOD)) or cfg.iters > 0, (table, row)
            assert (cfg.dataset, cfg.labels) == expected, (table, row)
            if table.startswith("mnist") or table == "methods":   # a digit row reruns as it ran, on any CPU
                assert on_cpu(cfg, native_bf16=True) == on_cpu(cfg, native_bf16=False), (table, row)
    variants = table_configs(module, "mnist100")
    assert variants["ts-me-fixmatch-3000"].iters == 3000 and variants["ts-me-fixmatch-bf16"].precision == "bf16"
    assert variants["ts-me-fixmatch-graph"].lambda_graph == 3 and on_cpu(variants["ts-me-fixmatch-graph"]).iters == 6000
    # the rows of the quick start's default, pinned: make train's command as each kind of CPU resolves it
    from stochreg.config import resolve_config
    quick_start = resolve_config(overrides={"dataset": "mnist", "labels": 100, "method": "ts-me-fixmatch"})
    graph = {"lambda_graph": 3.0, "graph_deskew": True}
    assert vars(on_cpu(variants["ts-me-fixmatch-graph-deskew-fade"])) == {**vars(on_cpu(quick_start)), **graph}
    assert vars(on_cpu(variants["ts-me-fixmatch-graph-deskew-bf16-4800-fade"], native_bf16=True)) == \
        {**vars(on_cpu(quick_start, native_bf16=True)), **graph}
    assert vars(variants["ts-me-fixmatch-graph-deskew"]) == {**vars(variants["ts-me-fixmatch-graph"]), "graph_deskew": True}
    assert vars(variants["ts-me-fixmatch-graph-deskew-conf04"]) == {**vars(variants["ts-me-fixmatch-graph-deskew"]),
                                                                    "graph_min_confidence": 0.4}
    fashion = table_configs(module, "fashion400")  # the same FixMatch, a narrower net for more steps
    assert vars(fashion["fixmatch-crop-flip-medium-10k"]) == {**vars(fashion["fixmatch-crop-flip"]),
                                                               "net": "compact-medium", "iters": 10000}
    for row, decay in (("fixmatch-crop-flip-wd1e-3", 1e-3), ("fixmatch-crop-flip-wd2e-3", 2e-3)):
        assert vars(fashion[row]) == {**vars(fashion["fixmatch-crop-flip"]), "weight_decay": decay}
    assert vars(fashion["fixmatch-crop-flip-ls05"]) == {**vars(fashion["fixmatch-crop-flip"]), "labelled_strong": 0.5}
    assert vars(fashion["fixmatch-crop-flip-warp"]) == {**vars(fashion["fixmatch-crop-flip"]),
                                                         "transform": "crop-flip-warp"}
    assert vars(fashion["fixmatch-crop-flip-medium-10k-u2"]) == {**vars(fashion["fixmatch-crop-flip-medium-10k"]),
                                                                  "lambda_u": 2.0}
    assert vars(fashion["fixmatch-crop-flip-medium-9200-u2"]) == {**vars(fashion["fixmatch-crop-flip-medium-10k-u2"]),
                                                                   "iters": 9200}
    assert vars(fashion["fixmatch-crop-flip-medium-14500-u2-sep"]) == {
        **vars(fashion["fixmatch-crop-flip-medium-9200-u2"]), "iters": 14500, "separate_targets": True}
    assert vars(fashion["fixmatch-crop-flip-medium-12000-u2-sep"]) == {
        **vars(fashion["fixmatch-crop-flip-medium-14500-u2-sep"]), "iters": 12000}


def test_the_60_minute_rows_scale_the_15_minute_rows_alike():
    """The long rows keep their methods-table settings and cost the same time per run: each
    15-minute row's steps times one factor (the step costs were measured side by side)."""
    module = load_benchmark("accuracy")
    short, long = table_configs(module, "methods"), table_configs(module, "mnist100-60min")
    factor = long["ts-me"].iters / short["ts-me"].iters
    # the one row that fills the 60 minutes on a faster machine instead
    filled = long.pop(f"ts-me-fixmatch-graph-{module.GRAPH_LONG_ITERS}")
    assert (filled.iters, filled.lambda_graph, filled.rampup_iters) == (28000, 3, 2000)
    assert vars(filled) == {**vars(long["ts-me-fixmatch-graph"]), "iters": 28000}
    # and the same with the graph term faded out at step 3,000, nothing else changed
    faded = long.pop(f"ts-me-fixmatch-graph-fade-{module.GRAPH_LONG_ITERS}")
    assert vars(faded) == {**vars(filled), "graph_fade_iters": 3000}
    deskewed = long.pop(f"ts-me-fixmatch-graph-deskew-{module.GRAPH_LONG_ITERS}")
    assert vars(deskewed) == {**vars(filled), "graph_deskew": True}
    # and that with the graph term fading over the whole run
    deskewed_faded = long.pop(f"ts-me-fixmatch-graph-deskew-fade-{module.GRAPH_LONG_ITERS}")
    assert vars(deskewed_faded) == {**vars(deskewed), "graph_fade_iters": module.GRAPH_LONG_ITERS}
    for row, cfg in long.items():
        base = short[cfg.method]  # a variant row (ts-me-fixmatch-graph) scales its method's row
        assert (cfg.method, cfg.views, cfg.lambda_u) == (base.method, base.views, base.lambda_u)
        assert cfg.iters == pytest.approx(base.iters * factor, abs=50)
        assert cfg.rampup_iters == 2000
    assert long["ts-me-fixmatch-graph"].lambda_graph == 3 and long["ts-me-fixmatch"].lambda_graph == 0


def test_a_row_run_on_machines_of_different_speed_shows_its_range_of_wall_times():
    """A row whose seeds ran on a 2.3x faster machine must not report one misleading mean."""
    module = load_benchmark("accuracy")
    assert module.wall_time_cell([8.2, 18.7, 17.9]) == "8.2-18.7 min"
    assert module.wall_time_cell([16.0, 17.0, 18.0]) == "17.0 min"
    assert module.wall_time_cell([13.9]) == "13.9 min"


@pytest.mark.end_to_end
def test_method_costs_times_a_tables_rows_as_their_commands_resolve(tiny_data_dir, tmp_path, monkeypatch):
    """Interleaved real steps of two rows of another table; the minutes a run follow from each row's steps."""
    import json
    import sys
    costs = load_benchmark("method_costs")
    out = tmp_path / "costs.json"
    monkeypatch.setattr(sys, "argv", ["method_costs.py", "--table", "mnist100", "--rows", "ts-me-fixmatch",
                                      "ts-me-fixmatch-3000", "--steps", "1", "--rounds", "1", "--data-dir",
                                      str(tiny_data_dir), "--out", str(out)])
    assert costs.main() == 0
    result = json.loads(out.read_text())
    assert result["table"] == "mnist100" and set(result["rows"]) == {"ts-me-fixmatch", "ts-me-fixmatch-3000"}
    for row, iters in (("ts-me-fixmatch", 6000), ("ts-me-fixmatch-3000", 3000)):
        r = result["rows"][row]
        assert r["iters"] == iters and r["seconds_per_step"] > 0
        assert r["minutes_per_run"] == pytest.approx(r["seconds_per_step"] * iters / 60)
