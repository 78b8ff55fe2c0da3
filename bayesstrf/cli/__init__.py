"""The interface layer: the ``bayesstrf`` command line (`main`), its commands and its console
plumbing.

Submodules load on first attribute access (``bayesstrf.cli.<module>``).
"""

from bayesstrf.lazy import submodules

__getattr__ = submodules(__name__)
