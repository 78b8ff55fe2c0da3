"""Every dotted ``bayesstrf.<name>`` that the README, the docs, the notebooks and the code's own
docstrings mention resolves (after ``import bayesstrf``, through lazy access), and every
``from bayesstrf... import ...`` they show runs: a renamed or moved name fails here."""

import re
from pathlib import Path

import pytest

import bayesstrf

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
         *sorted((ROOT / "notebooks").glob("*.ipynb")), *sorted((ROOT / "bayesstrf").rglob("*.py")),
         *sorted((ROOT / "benchmarks").glob("*.py"))]
DOTTED = re.compile(r"(?<![\w/.-])bayesstrf(?:\.[A-Za-z_]\w*)+(?![\w/])")  # not a schema id
FROM = re.compile(r"from (bayesstrf(?:\.\w+)*) import ([\w, ]+)")


def mentioned() -> dict[str, str]:
    """Dotted name -> the first file that mentions it."""
    found: dict[str, str] = {}
    for path in TEXTS:
        text = path.read_text()
        for name in DOTTED.findall(text):
            found.setdefault(name.rstrip("."), str(path.relative_to(ROOT)))
        for module, names in FROM.findall(text):
            for name in names.split(","):
                name = name.strip().split(" as ")[0]
                if name:
                    found.setdefault(f"{module}.{name}", str(path.relative_to(ROOT)))
    return found


NAMES = mentioned()


def test_the_scan_finds_the_public_api_and_the_layers():
    assert {"bayesstrf.fit", "bayesstrf.compare", "bayesstrf.model.strf"} <= set(NAMES)
    assert len(NAMES) > 100


@pytest.mark.parametrize("name", sorted(NAMES))
def test_a_documented_name_resolves(name):
    target = bayesstrf
    for part in name.split(".")[1:]:
        fields = getattr(target, "__dataclass_fields__", {})  # a dataclass's field
        try:
            target = fields[part] if part in fields else getattr(target, part)
        except AttributeError:
            pytest.fail(f"{name} (mentioned in {NAMES[name]}): no attribute {part!r}")


@pytest.mark.parametrize("owner", ["bayesstrf", "bayesstrf.model", "bayesstrf.viz"])
def test_a_missing_name_is_an_attribute_error_naming_it(owner):
    """Lazy access turns a typo into the usual AttributeError, not an import error."""
    import importlib

    module = importlib.import_module(owner)
    with pytest.raises(AttributeError, match=rf"module '{owner}' has no attribute 'strff'"):
        module.strff  # noqa: B018
