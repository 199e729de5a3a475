"""A run's settings, resolved once into a frozen object: nothing after changes them, a time budget's step
count is the one change made while resolving, and a resume refuses settings that resolve otherwise."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from stochreg.config import AUTO, TrainConfig
from stochreg.errors import UsageError
from stochreg.train.loop import check_resolved_as_saved
from stochreg.train.run_settings import RunSettings, resolve_run_settings


def test_a_configuration_cannot_be_changed_once_made():
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.iters = 5
    assert dataclasses.replace(cfg, iters=5).iters == 5 and cfg.iters != 5


def test_the_step_count_a_budget_fixes_moves_a_fade_that_spans_the_run_and_no_other():
    spanning = RunSettings(TrainConfig(iters=6000, graph_fade_iters=6000, time_budget=5.0), fade_spans_run=True)
    fixed = spanning.with_step_count(1234).config
    assert (fixed.iters, fixed.graph_fade_iters, fixed.time_budget) == (1234, 1234, 0.0)
    chosen = RunSettings(TrainConfig(iters=6000, graph_fade_iters=3000, time_budget=5.0)).with_step_count(100).config
    assert (chosen.iters, chosen.graph_fade_iters) == (100, 3000)


def test_settings_resolved_from_the_data_hold_every_choice_and_its_reason(tiny_data_dir):
    from stochreg.data import labelled_split, load_dataset
    data = load_dataset("mnist", tiny_data_dir)
    labelled = labelled_split(data.train_labels, 20, 10, 0)
    settings = resolve_run_settings(TrainConfig(data_dir=str(tiny_data_dir), net="compact-small", iters=10), data,
                                    labelled, torch.device("cpu"))
    cfg = settings.config
    assert AUTO not in (cfg.method, cfg.transform, cfg.net) and cfg.lambda_graph is not None
    assert any(reason.startswith("method ") for reason in settings.reasons)
    assert any(reason.startswith("lambda_graph ") for reason in settings.reasons)
    assert (settings.graph is None) == (cfg.lambda_graph == 0)


def test_a_resume_whose_settings_left_to_the_data_resolve_otherwise_is_refused(tmp_path):
    given = TrainConfig()   # method left to the data
    assert given.method == AUTO
    saved = dataclasses.replace(given, method="fixmatch")
    check_resolved_as_saved(given, saved, {"config": saved.to_dict()}, tmp_path)   # the same: no error
    with pytest.raises(UsageError, match=r"its settings resolve differently now \(method: 'fixmatch' -> "
                                         r"'ts-me-fixmatch'\): the data or stochreg changed"):
        check_resolved_as_saved(given, dataclasses.replace(given, method="ts-me-fixmatch"), {"config": saved.to_dict()},
                                tmp_path)
