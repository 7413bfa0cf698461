"""The import graph the README draws: mledge (the CLI) -> export -> toolkit -> edge, no package
importing one above it; inside toolkit, training sits above inference (predict), so evaluation and
export read runs without importing training. Every import counts, also those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
LAYERS = ["edge", "toolkit", "report", "export", "mledge"]  # bottom to top


def imports(path: Path) -> set[str]:
    """What ``path`` imports; ``from a import b`` counts as a and a.b (b may be a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", LAYERS)
def test_no_package_imports_one_above_it(package):
    above = LAYERS[LAYERS.index(package) + 1 :]
    for path in modules(package):
        bad = sorted(name for name in imports(path) if name.split(".")[0] in above)
        assert not bad, f"{path.relative_to(REPO)} imports {', '.join(bad)} (above {package})"


@pytest.mark.parametrize("package", ["edge", "report"])
def test_never_imports_tensorflow_or_keras(package):
    for path in modules(package):
        bad = sorted(name for name in imports(path) if name.split(".")[0] in ("tensorflow", "keras", "pandas"))
        assert not bad, f"{path.relative_to(REPO)} imports {', '.join(bad)}"


def test_only_training_and_classes_import_training():
    allowed = {REPO / "toolkit" / "classes.py", *modules("toolkit/train")}
    for path in modules("toolkit"):
        if path not in allowed:
            bad = sorted(name for name in imports(path) if name == "toolkit.train" or name.startswith("toolkit.train."))
            assert not bad, f"{path.relative_to(REPO)} imports training ({', '.join(bad)})"


def test_the_checker_sees_imports_inside_functions(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from export.convert import export_run\n    import mledge.cli\n")
    assert imports(probe) == {"export.convert", "export.convert.export_run", "mledge.cli"}


def module_graph() -> dict[str, set[str]]:
    """Module -> the project's modules it imports."""
    paths = [p for package in LAYERS for p in modules(package)]
    names = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p for p in paths}
    return {name: {m for m in imports(path) if m in names and m != name} for name, path in names.items()}


def test_no_two_modules_import_each_other():
    """A package's __init__ may gather its modules; otherwise dependencies point one way."""
    graph = module_graph()
    pairs = sorted({tuple(sorted((a, b))) for a, deps in graph.items() for b in deps
                    if a in graph.get(b, ()) and not (a.startswith(f"{b}.") or b.startswith(f"{a}."))})
    assert not pairs, "modules that import each other: " + "; ".join(f"{a} <-> {b}" for a, b in pairs)
