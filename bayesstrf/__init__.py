"""bayesstrf: Bayesian spectro-temporal receptive fields (linear-nonlinear-Poisson, NUTS).

Start at `fit` (``bayesstrf/inference/fit.py``). Names are loaded on first use, so that the
command line can configure JAX before it starts. Importing bayesstrf changes nothing in the
process: JAX's compilation cache is switched on by the command line, or by calling
`enable_compilation_cache` (`bayesstrf.compilation`).
"""

from importlib import import_module
from importlib.metadata import version

from bayesstrf.lazy import submodules

__version__ = version("bayesstrf")

_PUBLIC = {
    "Recording": "bayesstrf.data.recording",
    "simulate": "bayesstrf.model.simulation",
    "Simulation": "bayesstrf.model.simulation",
    "fit": "bayesstrf.inference.fit",
    "fit_distributed": "bayesstrf.inference.distributed",
    "diagnose": "bayesstrf.evaluation.diagnostics",
    "Diagnostics": "bayesstrf.evaluation.diagnostics",
    "compare": "bayesstrf.evaluation.comparison",
    "Comparison": "bayesstrf.evaluation.comparison",
    "predict": "bayesstrf.model.prediction",
    "prior_predictive": "bayesstrf.evaluation.prior_checks",
    "write_report": "bayesstrf.viz.report",
    "save_fit": "bayesstrf.data.io",
    "load_fit": "bayesstrf.data.io",
    "enable_compilation_cache": "bayesstrf.compilation",
    "InputError": "bayesstrf.errors",
}
#: The layers, bottom to top (docs/explanation/architecture.md); ``bayesstrf.model.strf`` and
#: the like load on first access.
LAYERS = ("data", "model", "inference", "evaluation", "viz")

__all__ = [*_PUBLIC, *LAYERS]

_submodule = submodules(__name__)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    return _submodule(name)
