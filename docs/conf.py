"""Sphinx configuration of the bayesstrf documentation (``make docs``).

Builds offline: no intersphinx, no remote images, no notebook execution. Markdown pages and
the tutorial notebooks (``tutorials/notebooks`` links to the repository's ``notebooks/``,
committed without outputs) are read by myst-nb; the API reference comes from the numpydoc
docstrings through autodoc.
"""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))

import bayesstrf  # noqa: E402

project = "bayesstrf"
author = "bayesstrf developers"
copyright = "bayesstrf developers"
version = release = bayesstrf.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "numpydoc",
    "cli_help",
]

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "**/.ipynb_checkpoints"]

# Single backticks in docstrings (`fit`, `bayesstrf.model.strf`) are cross-references when the
# target is documented and plain code otherwise; nitpicky stays off for the same reason.
default_role = "py:obj"

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The notebooks are shown as committed (code, no outputs): `make test` runs them instead.
nb_execution_mode = "off"

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc sections carry the types and shapes
autodoc_inherit_docstrings = False  # only bayesstrf's own text (not NumPyro's)
autodoc_default_options = {"members": True}

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

html_theme = "alabaster"
html_title = f"bayesstrf {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Bayesian spectro-temporal receptive fields",
    "fixed_sidebar": True,
    "page_width": "1180px",  # room for 100-column code blocks
    "sidebar_width": "240px",
}
