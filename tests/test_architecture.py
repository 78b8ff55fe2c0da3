"""The import contract: docs/explanation/architecture.md's layers, read against the code."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bayesstrf"
PAGE = ROOT / "docs" / "explanation" / "architecture.md"


def layers() -> dict[str, int]:
    """Module -> its layer's rank (0 lowest), from the page's table."""
    rows = re.findall(r"^\| (\w+) \| ((?:`\w+`(?:, )?)+) \|", PAGE.read_text(), re.M)
    assert rows, f"{PAGE} lost its table of layers"
    return {module: rank for rank, (_, modules) in enumerate(rows)
            for module in re.findall(r"`(\w+)`", modules)}


def imports(path: Path) -> set[str]:
    """The bayesstrf modules ``path`` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "bayesstrf":
                found |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names
                      if a.name.startswith("bayesstrf.")}
            if any(a.name == "bayesstrf" for a in node.names):
                found.add("bayesstrf")  # the package root: above every layer
    return found


def graph() -> dict[str, set[str]]:
    """Module or subpackage -> the bayesstrf modules it imports (a subpackage counts as one
    module: the union of its files' imports, less its own)."""
    found = {path.stem: imports(path) for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    for package in (path.parent for path in PACKAGE.glob("*/__init__.py")):
        found[package.name] = set().union(*map(imports, package.glob("*.py"))) - {package.name}
    return found


GRAPH = graph()


def test_every_module_has_a_layer_and_the_page_no_stale_one():
    assert set(GRAPH) == set(layers())


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_go_down_or_sideways_only(module):
    rank = layers()
    upward = {other for other in GRAPH[module] if rank.get(other, len(rank)) > rank[module]}
    assert not upward, f"{module} (layer {rank[module]}) imports from above: {sorted(upward)}"


def test_no_import_cycle():
    state = {}

    def visit(module, trail):
        if state.get(module) == "open":
            raise AssertionError("import cycle: " + " -> ".join([*trail, module]))
        if state.get(module) != "done":
            state[module] = "open"
            for other in sorted(GRAPH.get(module, ())):
                visit(other, [*trail, module])
            state[module] = "done"

    for module in sorted(GRAPH):
        visit(module, [])


def reachable(module: str) -> set[str]:
    """Every module ``module`` imports, directly or through others."""
    seen, todo = set(), [module]
    while todo:
        for other in GRAPH.get(todo.pop(), ()):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


@pytest.mark.parametrize("module", ["plotting", "report"])
def test_figures_and_reports_never_reach_the_sampler(module):
    sampler = {name for name, rank in layers().items() if rank == layers()["inference"]}
    assert not reachable(module) & sampler, sorted(reachable(module) & sampler)


def test_the_model_never_reaches_the_sampler():
    model = [name for name, rank in layers().items() if rank == layers()["model"]]
    sampler = {name for name, rank in layers().items() if rank == layers()["inference"]}
    for module in model:
        assert not reachable(module) & sampler, (module, sorted(reachable(module) & sampler))


def test_the_contract_sees_a_violation(tmp_path):
    """The parser finds function-local and root imports (the test can fail)."""
    code = tmp_path / "probe.py"
    code.write_text("import bayesstrf\ndef f():\n    from bayesstrf.inference import fit\n")
    assert imports(code) == {"bayesstrf", "inference"}
