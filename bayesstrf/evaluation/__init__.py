"""The evaluation layer: CCnorm and co., convergence checks, scores and rankings of fits,
simulation-based calibration, moment-matched LOO, `compare`, `sbc` and prior predictive
checks.

Submodules load on first attribute access (``bayesstrf.evaluation.<module>``).
"""

from bayesstrf.lazy import submodules

__getattr__ = submodules(__name__)
