"""benchmarks/DECISIONS.md against the code and the evidence: every row's values are what the recipe
resolves today, its evidence files and its tuning.md entries exist, and the code cites the row."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from stochreg.config import TrainConfig
from stochreg.config import recipe
from stochreg.config.recipe import resolve_data_recipe
from stochreg.data.listing import DEFAULT_MAX_SIDE

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SRC = Path(__file__).resolve().parent.parent / "src" / "stochreg"


def resolved(shape, is_digits, bf16=False, *fields):
    cfg, _ = resolve_data_recipe(TrainConfig(), image_shape=shape, is_digits=is_digits, native_bf16_cpu=bf16)
    return [getattr(cfg, name) for name in fields]


# What the code holds for each row, the values the row's value cell must name
CODE = {
    "digit-method": lambda: resolved((1, 28, 28), True, False, "method", "views", "batch_unlabelled"),
    "graph-term": lambda: [recipe.GRAPH_WEIGHT, recipe.GRAPH_MIN_HELD_OUT_ACCURACY],
    "small-images-method": lambda: resolved((3, 32, 32), False, False, "method", "views", "batch_unlabelled",
                                            "transform"),
    "small-fixmatch": lambda: resolved((1, 28, 28), False, False, "net", "iters", "lambda_u"),
    "small-fixmatch-dropout": lambda: resolved((1, 28, 28), False, False, "dropout"),
    "digit-bf16": lambda: resolved((1, 28, 28), True, True, "precision", "iters", "graph_fade_iters"),
    "digit-fp32-fade": lambda: resolved((1, 28, 28), True, False, "graph_fade_iters"),
    "photo-recipe": lambda: resolved((3, 128, 128), False, False, "net", "lr", "iters", "method", "class_prior",
                                     "transform"),
    "read-size": lambda: [DEFAULT_MAX_SIDE],
}


def rows() -> dict[str, list[str]]:
    table = [line for line in (BENCHMARKS / "DECISIONS.md").read_text().splitlines() if line.startswith("| ")]
    cells = ([c.strip() for c in line.strip("|").split(" | ")] for line in table)
    return {row[0]: row for row in cells if row[0] != "row"}


def named_values(cell: str) -> list[str]:
    """The values a cell names: its `quoted` words and its numbers (9,200 -> 9200; 90% -> 0.9)."""
    words = re.findall(r"`([^`]+)`", cell)
    numbers = [str(float(n.replace(",", "")) / (100 if pct else 1))
               for n, pct in re.findall(r"(\d[\d,]*(?:\.\d+)?)(%?)", re.sub(r"`[^`]+`", "", cell))]
    return words + numbers


def same(named: str, value) -> bool:
    try:
        return float(named) == float(value)
    except (TypeError, ValueError):
        return named == str(value)


def test_every_row_is_checked_and_every_check_has_a_row():
    assert set(rows()) == set(CODE)


@pytest.mark.parametrize("row", sorted(CODE))
def test_a_rows_values_are_what_the_code_resolves(row):
    values = CODE[row]()
    for named in named_values(rows()[row][2]):
        assert any(same(named, value) for value in values), f"{row}: {named} is not among the code's {values}"


@pytest.mark.parametrize("row", sorted(CODE))
def test_a_rows_evidence_and_entries_exist_and_the_code_cites_it(row):
    cells = rows()[row]
    for pattern in re.findall(r"`(results/[^`]+)`", cells[5]):
        assert list(BENCHMARKS.glob(pattern)), f"{row}: no file matches {pattern}"
    headings = re.findall(r"(?m)^## (.+)$", (BENCHMARKS / "tuning.md").read_text())
    anchors, seen = set(), {}
    for heading in headings:   # GitHub's anchors: lower case, punctuation dropped, spaces as hyphens
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug + (f"-{seen[slug]}" if seen.get(slug) else ""))
        seen[slug] = seen.get(slug, 0) + 1
    linked = re.findall(r"tuning\.md#([\w-]+)", cells[6])
    assert linked and set(linked) <= anchors, f"{row}: {set(linked) - anchors}"
    assert any(row in path.read_text() for path in SRC.rglob("*.py")), f"no module cites row {row}"
