"""Checks of a `Recording`'s arguments: numeric segment arrays, spike counts, unique ids."""

from __future__ import annotations

import numpy as np

from bayesstrf.errors import InputError, InputTypeError

#: Largest count per bin: integers above 2**24 are not exact in float32, as the model computes.
MAX_COUNT = 2**24


def as_segments(value, name: str, ndim: int) -> list[np.ndarray]:
    """``value`` (an array or a list/tuple of them, one per segment) as a list of
    ``ndim``-D float arrays, or an error naming ``name``."""
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise InputError(f"{name}: expected at least one segment, found an empty list")
    out = []
    for index, item in enumerate(items):
        array = np.asarray(item)
        where = f"{name}[{index}]" if len(items) > 1 else name
        if array.dtype == object or not (
            np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
        ):
            raise InputTypeError(
                f"{where}: expected a real numeric array, found dtype {array.dtype}")
        if array.ndim != ndim:
            raise InputError(
                f"{where}: expected a {ndim}-D array, found shape {array.shape}"
            )
        out.append(array.astype(float))
    return out


def check_counts(counts: np.ndarray, where: str) -> None:
    """An error naming ``where`` unless ``counts`` (N, R, T) holds at least one neuron and
    trial of non-negative integer counts up to `MAX_COUNT` (NaN = missing)."""
    if counts.shape[0] == 0 or counts.shape[1] == 0:
        raise InputError(
            f"{where}: expected at least one neuron and one trial, found shape {counts.shape}"
        )
    present = counts[~np.isnan(counts)]
    if np.isinf(present).any():
        raise InputError(f"{where}: expected finite counts (NaN = missing), found Inf")
    if (present < 0).any():
        raise InputError(f"{where}: expected non-negative counts, found minimum {present.min()}")
    if (present > MAX_COUNT).any():
        raise InputError(
            f"{where}: expected counts of at most {MAX_COUNT} per bin (exact in float32), "
            f"found {present.max():g}"
        )
    fractional = present != np.round(present)
    if fractional.any():
        raise InputError(
            f"{where}: expected integer spike counts, found non-integer value "
            f"{present[fractional][0]}"
        )


def unique_ids(value, n: int, name: str, prefix: str) -> np.ndarray:
    """``n`` unique ids as strings (``prefix`` numbered when ``value`` is None), or an error
    naming ``name``."""
    if value is None:
        return np.array([f"{prefix}{i}" for i in range(n)])
    ids = np.asarray(value).astype(str)
    if ids.shape != (n,):
        raise InputError(f"{name}: expected {n} ids, found shape {ids.shape}")
    if len(set(ids.tolist())) != n:
        raise InputError(f"{name}: expected unique ids, found duplicates in {ids.tolist()}")
    return ids
