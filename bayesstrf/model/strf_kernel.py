"""What the STRF prior modules share: the `Kernel` a prior returns, and the check of a prior's
positive settings."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from bayesstrf.errors import InputError


class Kernel(NamedTuple):
    """An STRF in the internal basis, and its factors when it has low rank.

    Attributes
    ----------
    weights : array (N, F, L)
    spectral : array (N, r, F) or None
        Spectral factors scaled by their gains.
    temporal : array (N, r, L) or None
    """

    weights: jnp.ndarray
    spectral: jnp.ndarray | None = None
    temporal: jnp.ndarray | None = None


def _check_positive(prior, *names: str) -> None:
    """Raise `InputError` unless every setting of ``prior`` in ``names`` is a number above 0."""
    for name in names:
        value = getattr(prior, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise InputError(
                f"strf: expected {type(prior).__name__}({name} > 0), found {name}={value!r}"
            )
