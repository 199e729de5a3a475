"""The term interface: every unsupervised term is one object that the step weights and adds
without knowing its name, and whatever a run trains with is plotted and described."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import stochreg.runs.report as report
from stochreg.cli import main
from stochreg.config import TrainConfig
from stochreg.methods import METHODS
from stochreg.terms import build_terms, term_labels

TRAIN_PACKAGE = Path(__file__).parent.parent / "src" / "stochreg" / "train"
NOT_LOSSES = {"step", "seconds", "lr", "eval_seconds", "test_error", "val_error"}


def test_the_step_and_the_loop_name_no_term():
    pattern = re.compile(r'"(graph|balance|ts|me|fixmatch|pi|mt|pl|ent)"')
    for module in TRAIN_PACKAGE.glob("*.py"):
        assert not pattern.findall(module.read_text()), module.name


@pytest.mark.parametrize("method", METHODS.names())
@pytest.mark.end_to_end
def test_curves_plot_every_term_the_run_trains_with(method, tiny_data_dir, tmp_path, monkeypatch):
    drawn = {}
    original = report.learning_curves

    def recording(records, path, labels, title=""):
        drawn["records"], drawn["labels"] = records, labels
        return original(records, path, labels, title)

    monkeypatch.setattr(report, "learning_curves", recording)
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(tiny_data_dir), "--labels", "20", "--iters", "2", "--views", "3",
                 "--net", "compact-small", "--method", method, "--lambda-graph", "1", "--lambda-balance", "1",
                 "--eval-every", "0", "--no-progress", "--out", str(out)]) == 0
    logged = {key for record in drawn["records"] for key in record} - NOT_LOSSES
    assert logged == {"ce", *METHODS.get(method).terms, *({"balance", "graph"} if METHODS.get(method).terms else ())}
    assert logged <= set(drawn["labels"]), f"curves.png leaves out {logged - set(drawn['labels'])}"
    assert (out / "curves.png").stat().st_size > 0


def test_every_method_term_has_a_label_and_a_weight_setting():
    settings = {name for name in TrainConfig.__dataclass_fields__}
    for name in METHODS.names():
        for term in METHODS.get(name).term_names:
            assert term.label and term.weight in settings, (name, term)


def test_terms_come_in_the_order_the_step_adds_them():
    cfg = TrainConfig(method="ts-me-fixmatch", lambda_balance=1.0, lambda_graph=3.0)
    assert [term.names for term in build_terms(cfg)] == [("ts", "me", "fixmatch"), ("balance",), ("graph",)]
    assert build_terms(TrainConfig(method="supervised")) == []
    assert list(term_labels(TrainConfig(method="pi-model", lambda_graph=0.0))) == ["ce", "pi"]
