"""--time-budget: the step count is fixed from the pace of the first steps (timed with a fake clock
here), those steps are undone, and the run is then exactly the run of --iters that count."""
from __future__ import annotations

import pytest

import itertools
import json

import torch
import yaml

from stochreg.runtime.checkpoints import load_checkpoint
from stochreg.config import resolve_config
from stochreg.train import train

TINY = {"labels": 20, "batch_labelled": 10, "batch_unlabelled": 8, "views": 3, "eval_every": 0, "eval_batch": 50,
        "rampup_iters": 4, "net": "compact-small", "lambda_graph": 0.0, "checkpoint_every": 10}


def fake_clock(seconds_between_readings: float):
    ticks = itertools.count(0.0, seconds_between_readings)
    return lambda: next(ticks)


def quiet(message: str) -> None:
    pass


@pytest.mark.end_to_end
def test_the_budget_fixes_the_steps_and_the_run_equals_that_many_iters(tiny_data_dir, tmp_path):
    settings = {**TINY, "data_dir": str(tiny_data_dir)}
    # 20 timed steps between two readings 6 s apart: 0.3 s a step, so 0.2 minutes hold 40 steps
    results = train(resolve_config(overrides={**settings, "time_budget": 0.2}), tmp_path / "budget", progress=False,
                    log=quiet, clock=fake_clock(6.0))
    assert results["iters"] == 40 and results["time_budget"] == 0.2
    saved = yaml.safe_load((tmp_path / "budget" / "config.yaml").read_text())
    assert saved["iters"] == 40 and saved["time_budget"] == 0.0
    train(resolve_config(overrides={**settings, "iters": 40}), tmp_path / "iters", progress=False, log=quiet)
    a, b = (load_checkpoint(tmp_path / name / "checkpoint.pt") for name in ("budget", "iters"))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])   # the timed steps were undone


@pytest.mark.end_to_end
def test_a_resumed_budget_run_keeps_its_step_count(tiny_data_dir, tmp_path):
    cfg = resolve_config(overrides={**TINY, "data_dir": str(tiny_data_dir), "time_budget": 0.2})
    train(cfg, tmp_path / "run", progress=False, log=quiet, clock=fake_clock(6.0))
    uninterrupted = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["model"]
    for name in ("checkpoint.pt", "results.json", "checkpoints/step-00000040.pt"):
        (tmp_path / "run" / name).unlink()                 # as if it had been killed after step 30

    def no_clock():
        raise AssertionError("a resumed run must not time its steps again")
    results = train(cfg, tmp_path / "run", progress=False, log=quiet, resume=True, same_settings=True, clock=no_clock)
    assert results["iters"] == 40 and results["resumed_at"] == 30
    assert json.loads((tmp_path / "run" / "results.json").read_text())["iters"] == 40
    resumed = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["model"]
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


@pytest.mark.end_to_end
def test_the_bf16_digit_recipe_fades_its_graph_term_over_the_steps_a_budget_fixes(tiny_data_dir, tmp_path,
                                                                                   monkeypatch):
    """On a CPU that computes bf16 natively the digit recipe fades the graph term over the whole run:
    over the budget's step count, not the 4,800 steps it would take without a budget."""
    import stochreg.train.run_settings as run_settings
    monkeypatch.setattr(run_settings, "cpu_computes_bf16", lambda: True)
    settings = {**TINY, "data_dir": str(tiny_data_dir), "lambda_graph": 1.0}
    train(resolve_config(overrides={**settings, "time_budget": 0.2}), tmp_path / "budget", progress=False, log=quiet,
          clock=fake_clock(6.0))
    saved = yaml.safe_load((tmp_path / "budget" / "config.yaml").read_text())
    assert (saved["precision"], saved["iters"], saved["graph_fade_iters"]) == ("bf16", 40, 40)
    train(resolve_config(overrides={**settings, "iters": 40}), tmp_path / "iters", progress=False, log=quiet)
    assert yaml.safe_load((tmp_path / "iters" / "config.yaml").read_text())["graph_fade_iters"] == 40
    a, b = (load_checkpoint(tmp_path / name / "checkpoint.pt") for name in ("budget", "iters"))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])   # the term faded alike
