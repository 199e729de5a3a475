"""The accuracy benchmark's table writer: which JSON files make up a row."""
from __future__ import annotations

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
