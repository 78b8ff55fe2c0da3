"""The tutorial notebooks in notebooks/ are committed clean and can run quickly.

`make test` executes them (pytest --nbmake, with BAYESSTRF_QUICK=1); these checks only read the
files: every code cell without outputs and execution count, the quick-mode switch present, and
the ``python3`` kernel (the one in the project's venv) named.
"""

import copy
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
QUICK_SWITCH = 'os.environ.get("BAYESSTRF_QUICK"'


def problems(notebook: dict) -> list[str]:
    """What keeps a notebook (parsed .ipynb JSON) from being committed as it is."""
    found = []
    if notebook.get("nbformat") != 4:
        found.append(f"nbformat {notebook.get('nbformat')!r}, expected 4")
    kernel = notebook.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "python3":
        found.append(f"kernelspec {kernel!r}, expected 'python3'")
    code = [cell for cell in notebook.get("cells", []) if cell.get("cell_type") == "code"]
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {index} has outputs")
        if cell.get("execution_count") is not None:
            found.append(f"cell {index} has execution_count {cell['execution_count']}")
    source = "\n".join("".join(cell.get("source", "")) for cell in code)
    if QUICK_SWITCH not in source:
        found.append(f"no quick-mode switch ({QUICK_SWITCH}...) in any code cell")
    return found


def test_the_tutorial_notebooks_are_there():
    assert [p.name for p in PATHS] == [
        "01_quickstart.ipynb", "02_priors.ipynb", "03_real_data.ipynb"]


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_notebook_is_committed_clean_with_a_quick_mode(path):
    assert problems(json.loads(path.read_text(encoding="utf-8"))) == []


def test_the_check_catches_outputs_counts_a_missing_switch_and_another_kernel():
    clean = json.loads(PATHS[0].read_text(encoding="utf-8"))
    assert problems(clean) == []
    executed = copy.deepcopy(clean)
    first = next(c for c in executed["cells"] if c["cell_type"] == "code")
    first["execution_count"] = 1
    first["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["quick mode\n"]}]
    index = executed["cells"].index(first)
    assert problems(executed) == [f"cell {index} has outputs",
                                  f"cell {index} has execution_count 1"]
    no_switch = copy.deepcopy(clean)
    for cell in no_switch["cells"]:
        if cell["cell_type"] == "code":
            cell["source"] = "".join(cell["source"]).replace("BAYESSTRF_QUICK", "QUICK")
    assert problems(no_switch) == [f"no quick-mode switch ({QUICK_SWITCH}...) in any code cell"]
    other_kernel = copy.deepcopy(clean)
    other_kernel["metadata"]["kernelspec"]["name"] = "conda-env-x"
    assert problems(other_kernel) == ["kernelspec 'conda-env-x', expected 'python3'"]
