"""The model layer: output families, STRF priors, the lagged design, the NumPyro LNP model and
the `Problem` built from a recording, rates and log-likelihoods of draws, simulated
recordings, deepSTRF's parameters.

Submodules load on first attribute access (``bayesstrf.model.<module>``).
"""

from bayesstrf.lazy import submodules

__getattr__ = submodules(__name__)
