"""docs/architecture.md's rules, enforced: nothing imports upward, no two packages import each other, and
no module grows past 300 lines.

Each package (and top-level module) of stochreg has a layer; a module may import from its own
package and from lower layers only, read from the source with ``ast`` (imports inside functions
included, since they run too)."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "stochreg"

# Lowest first. A name is a package under src/stochreg/ or a top-level module (without .py).
LAYERS = [
    {"errors", "registry", "__init__"},        # __init__ only re-exports: it is read lazily by nobody below
    {"runtime", "losses"},
    {"data", "augment", "methods", "nets", "pretrained", "evaluate"},
    {"config"},
    {"terms"},
    {"runs"},
    {"train", "label"},
    {"api", "cli", "__main__"},
]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}


def unit(path: Path) -> str:
    """The package (or top-level module) a source file belongs to."""
    parts = path.relative_to(SRC).parts
    return parts[0] if len(parts) > 1 else Path(parts[0]).stem


def imported_units(path: Path) -> set[str]:
    """The stochreg packages and top-level modules a file imports."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(SRC).parent.parts   # the file's package, for relative imports
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - (node.level - 1)]) if node.level > 1 else list(package)
                target = base + (node.module.split(".") if node.module else [])
                if target:
                    found.add(target[0])
                else:   # `from . import x` at the top level: x is a top-level unit
                    found.update(alias.name for alias in node.names)
            elif node.module and node.module.split(".")[0] == "stochreg":
                target = node.module.split(".")[1:]
                found.update([target[0]] if target else [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "stochreg" and len(parts) > 1:
                    found.add(parts[1])
    return found


def package_imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        graph.setdefault(unit(path), set()).update(imported_units(path) - {unit(path)})
    return graph


def test_every_package_has_a_layer():
    assert set(package_imports()) <= set(LAYER), "give the new package a layer in LAYERS"


def test_nothing_imports_upward():
    upward = [f"{path.relative_to(SRC)} imports {target}"
              for path in sorted(SRC.rglob("*.py")) if unit(path) != "__init__"
              for target in sorted(imported_units(path) - {unit(path)})
              if target in LAYER and LAYER[target] > LAYER[unit(path)]]
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_no_two_packages_import_each_other():
    graph = package_imports()
    cycles = sorted({tuple(sorted((a, b))) for a, targets in graph.items() for b in targets
                     if a in graph.get(b, set()) and a != "__init__" and b != "__init__"})
    assert not cycles, f"packages that import each other: {cycles}"


def test_the_layer_reader_sees_relative_and_absolute_imports(tmp_path):
    probe = SRC / "train" / "loop.py"
    assert {"config", "data", "runs", "runtime"} <= imported_units(probe)


# A module longer than this holds more than one job: split it (nets/ by family, data/ folders and listing).
MODULE_LINES = 300


def test_no_module_is_longer_than_the_limit():
    long = {str(path.relative_to(SRC)): n for path in SRC.rglob("*.py")
            if (n := len(path.read_text().splitlines())) > MODULE_LINES}
    assert not long, f"modules over {MODULE_LINES} lines: {long}"
