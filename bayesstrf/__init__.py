"""bayesstrf: Bayesian spectro-temporal receptive fields (linear-nonlinear-Poisson, NUTS).

Start at `fit` (``bayesstrf/inference.py``). Names are loaded on first use, so that the
command line can configure JAX before it starts. Importing bayesstrf changes nothing in the
process: JAX's compilation cache is switched on by the command line, or by calling
`enable_compilation_cache` (`bayesstrf.compilation`).
"""

from importlib import import_module
from importlib.metadata import version

__version__ = version("bayesstrf")

_PUBLIC = {
    "Recording": "bayesstrf.data",
    "simulate": "bayesstrf.simulation",
    "Simulation": "bayesstrf.simulation",
    "fit": "bayesstrf.inference",
    "fit_distributed": "bayesstrf.distributed",
    "diagnose": "bayesstrf.diagnostics",
    "Diagnostics": "bayesstrf.diagnostics",
    "compare": "bayesstrf.comparison",
    "Comparison": "bayesstrf.comparison",
    "predict": "bayesstrf.prediction",
    "prior_predictive": "bayesstrf.prior_checks",
    "write_report": "bayesstrf.report",
    "save_fit": "bayesstrf.io",
    "load_fit": "bayesstrf.io",
    "enable_compilation_cache": "bayesstrf.compilation",
    "InputError": "bayesstrf.errors",
}
_MODULES = ("activations", "strf", "metrics", "design", "model", "io", "plotting", "interop", "nwb")

__all__ = [*_PUBLIC, *_MODULES]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    if name in _MODULES:
        return import_module(f"bayesstrf.{name}")
    raise AttributeError(f"module 'bayesstrf' has no attribute {name!r}")
