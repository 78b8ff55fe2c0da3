"""The viz layer: figures of fits and populations, and the HTML report.

Submodules load on first attribute access (``bayesstrf.viz.<module>``).
"""

from bayesstrf.lazy import submodules

__getattr__ = submodules(__name__)
