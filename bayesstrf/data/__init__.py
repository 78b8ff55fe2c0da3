"""The data layer: `Recording` and its files (``.npz``, ``.nc``, NWB), the shared argument
checks, the real datasets' loaders, and fits on disk.

Submodules load on first attribute access (``bayesstrf.data.<module>``).
"""

from bayesstrf.lazy import submodules

__getattr__ = submodules(__name__)
