"""Modules that load on first use: a package's ``__getattr__`` for its submodules."""

from collections.abc import Callable
from importlib import import_module
from importlib.util import find_spec
from types import ModuleType


def submodules(package: str) -> Callable[[str], ModuleType]:
    """A module-level ``__getattr__`` (PEP 562) that imports ``package.<name>`` on access,
    so that ``import bayesstrf`` stays cheap and ``bayesstrf.model.strf`` still works."""

    def __getattr__(name: str) -> ModuleType:
        if not name.startswith("_") and find_spec(f"{package}.{name}") is not None:
            return import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
