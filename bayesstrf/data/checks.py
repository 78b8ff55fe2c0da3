"""Argument checks shared by the public functions: one-line errors naming the argument."""

from __future__ import annotations

import numpy as np

from bayesstrf.data.recording import Recording
from bayesstrf.errors import InputError, InputTypeError


def positive_int(value, name: str) -> int:
    """``value`` as an int, or an InputError naming ``name`` unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(f"{name}: expected a positive integer, found {value!r}")
    return int(value)


def is_real(value) -> bool:
    """Whether ``value`` is a Python ``int`` or ``float`` (a ``bool`` is not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def seed(value) -> int:
    """A non-negative integer seed, or an InputError naming ``seed``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InputError(f"seed: expected a non-negative integer, found {value!r}")
    return int(value)


def recording(value) -> Recording:
    """``value`` if it is a `Recording`, else an InputTypeError naming ``recording``."""
    if not isinstance(value, Recording):
        raise InputTypeError(
            f"recording: expected a bayesstrf.Recording, found {type(value).__name__}")
    return value


def new_name(name: str, built_in: frozenset, argument: str) -> str:
    """``name`` for a registry entry of the user's, or an InputError if it is a built-in's."""
    if name in built_in:
        raise InputError(f"{argument}: expected a name other than the built-in "
                         f"{sorted(built_in)}, found {name!r}")
    return name
