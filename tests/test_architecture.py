"""The import contract: docs/explanation/architecture.md's layers, read against the code.

A layer is a folder of ``bayesstrf/`` (``model/``, ``inference/``, ...) or, for the
foundation and the interface, a few top-level modules; the page's table lists each layer's
modules, bottom to top. Modules are named by their dotted path below ``bayesstrf``
(``model.strf``); a nested package (``viz.plotting``) counts as one module.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bayesstrf"
PAGE = ROOT / "docs" / "explanation" / "architecture.md"


def table() -> list[tuple[str, list[str]]]:
    """(layer, its modules) bottom to top, from the page's table."""
    rows = re.findall(r"^\| (\w+) \| ((?:`[\w/.]+`(?:, )?)+) \|", PAGE.read_text(), re.M)
    assert rows, f"{PAGE} lost its table of layers"
    return [(layer, re.findall(r"`([\w/.]+)`", modules)) for layer, modules in rows]


def layers() -> dict[str, int]:
    """Module (dotted, below ``bayesstrf``) -> its layer's rank (0 lowest)."""
    rank = {}
    for number, (_, modules) in enumerate(table()):
        for module in modules:
            rank[module.removesuffix("/").replace("/", ".")] = number
    return rank


def modules() -> dict[str, list[Path]]:
    """Module -> its files: top-level modules, modules of a layer folder, nested packages."""
    found: dict[str, list[Path]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) <= 2:
            continue  # the root's and the layers' __init__: lazy access, see the test below
        found.setdefault(".".join(parts[:2]), []).append(path)  # a nested package is one
    return found


MODULES = modules()


def resolve(dotted: str) -> str | None:
    """The module that ``bayesstrf.<dotted>`` names or lies in (None for the root)."""
    parts = dotted.split(".")
    for cut in (2, 1):
        if ".".join(parts[:cut]) in MODULES:
            return ".".join(parts[:cut])
    return None


def imports(path: Path) -> set[str]:
    """The bayesstrf modules ``path`` imports, anywhere in it (``bayesstrf`` for the root)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            head, _, rest = node.module.partition(".")
            if head != "bayesstrf":
                continue
            for alias in node.names:
                target = resolve(f"{rest}.{alias.name}" if rest else alias.name)
                found.add(target or resolve(rest) or "bayesstrf")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "bayesstrf":
                    found.add("bayesstrf")  # the package root: above every layer
                elif alias.name.startswith("bayesstrf."):
                    found.add(resolve(alias.name.partition(".")[2]) or "bayesstrf")
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the bayesstrf modules it imports, less itself."""
    return {name: set().union(*map(imports, files)) - {name} for name, files in MODULES.items()}


GRAPH = graph()


def test_the_folders_are_the_pages_layers():
    """Every file sits where the page says, and the page names no module that is gone."""
    assert set(GRAPH) == set(layers())
    for layer, names in table():
        if (PACKAGE / layer).is_dir():
            assert {name.split(".")[0] for name in names} == {layer}, (layer, names)


@pytest.mark.parametrize("layer", [path.parent for path in PACKAGE.glob("*/__init__.py")])
def test_a_layers_init_imports_only_the_foundation(layer):
    """``import bayesstrf.model`` loads none of its modules (they load on first access)."""
    foundation = set(table()[0][1])
    assert imports(layer / "__init__.py") <= foundation


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


def inside(layer: str) -> set[str]:
    return {name for name in GRAPH if name.split(".")[0] == layer}


@pytest.mark.parametrize("module", sorted(inside("viz")))
def test_figures_and_reports_never_reach_the_sampler(module):
    assert not reachable(module) & inside("inference"), sorted(reachable(module))


@pytest.mark.parametrize("module", sorted(inside("model")))
def test_the_model_never_reaches_the_sampler(module):
    assert not reachable(module) & inside("inference"), sorted(reachable(module))


def test_the_contract_sees_a_violation(tmp_path):
    """The parser finds function-local, root and nested-package imports (the test can fail)."""
    code = tmp_path / "probe.py"
    code.write_text("import bayesstrf\ndef f():\n    from bayesstrf.inference.fit import fit\n"
                    "    from bayesstrf.viz.plotting.fit import plot_strf\n"
                    "    from bayesstrf.model import strf, design\n")
    assert imports(code) == {"bayesstrf", "inference.fit", "viz.plotting", "model.strf",
                             "model.design"}
