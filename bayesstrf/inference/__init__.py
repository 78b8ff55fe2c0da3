"""The inference layer: mass matrices, the lane-wise NUTS kernel and its lanes over chains and
neurons, checkpoints, the MAP and warmup stages, draws to a DataTree, and `fit`
(``fit.py``), the orchestration of these steps; fits spread over workers.

Submodules load on first attribute access (``bayesstrf.inference.<module>``).
"""

from bayesstrf.lazy import submodules

__getattr__ = submodules(__name__)
