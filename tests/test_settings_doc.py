"""Each setting is documented once, where it is declared: `stochreg train --help`, docs/settings.md
and the run summary all read that declaration."""
from __future__ import annotations

import pytest

import dataclasses
import os
from pathlib import Path

from stochreg.cli import build_parser
from stochreg.config import GROUPS, TrainConfig
from stochreg.config.settings import settings_markdown

DOC = Path(__file__).parent.parent / "docs" / "settings.md"


def test_docs_settings_page_is_generated_from_the_declarations():
    if os.environ.get("STOCHREG_UPDATE_DOCS") == "1":
        DOC.write_text(settings_markdown())
    assert DOC.read_text() == settings_markdown(), \
        "docs/settings.md is out of date: STOCHREG_UPDATE_DOCS=1 python -m pytest tests/test_settings_doc.py"


def test_every_setting_has_help_a_group_and_a_flag_that_shows_it():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    helps = {action.dest: action.help for action in train._actions}
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata["group"] in GROUPS and len(f.metadata["help"]) > 10, f.name
        shown = helps[f.name] % {}   # argparse's own %-formatting of the help text
        assert shown.startswith(f.metadata["help"]), f.name


@pytest.mark.end_to_end
def test_the_run_summary_names_the_settings_that_differ_from_the_defaults(tiny_data_dir, tmp_path):
    from stochreg.cli import main
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(tiny_data_dir), "--labels", "20", "--iters", "2", "--views", "3",
                 "--net", "compact-small", "--lambda-graph", "0", "--eval-every", "0", "--no-progress",
                 "--lambda-me", "0.2", "--out", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    assert "| `lambda_me` | 0.2 | weight of the mutual-exclusivity loss |" in summary
    assert "| `iters` | 2 | training steps |" in summary
    assert "`lambda_ts`" not in summary.split("## Settings other than the defaults")[1]   # left at its default


def test_the_run_summary_describes_each_setting_by_a_whole_clause_of_its_own():
    """summary.md's table of changed settings shows the first clause of each help: a phrase that says
    what the setting does, brackets closed, not a scope such as "folder:/csv" or a symbol such as "n",
    and no two settings alike."""
    from stochreg.config.settings import outside_brackets, short_help
    briefs = {f.name: short_help(f.name) for f in dataclasses.fields(TrainConfig)}
    for name, brief in briefs.items():
        assert brief.count("(") == brief.count(")") and brief.count("[") == brief.count("]"), (name, brief)
        assert len(brief.split()) >= 2 and not brief.startswith(("folder:", "csv:")), (name, brief)
    assert len(set(briefs.values())) == len(briefs)
    assert outside_brackets("a (b; c); d: e", "; ") == ["a (b; c)", "d: e"]
    assert outside_brackets("a: (b: c): d", ": ") == ["a", "(b: c)", "d"]
