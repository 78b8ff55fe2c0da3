"""`merge_fits`: join fits of disjoint sets of neurons along ``neuron``.

Every group of a fit, ``constant_data`` (per-neuron priors and hyperparameters) included, has
the neurons on a ``neuron`` dimension, so merging is `xarray.concat` group by group; the root
attributes hold only settings shared by the fits, and seconds, which add up.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from typing import Any, cast

import numpy as np
import xarray as xr

from bayesstrf.errors import InputError, InputTypeError

#: Root attributes holding seconds: summed over the fits by `merge_fits`.
TIMINGS = ("map_seconds", "warmup_seconds", "sampling_seconds")


def merge_fits(fits: Sequence[xr.DataTree], names: Sequence[str] | None = None) -> xr.DataTree:
    """Join fits of disjoint sets of neurons (same data and settings) along ``neuron``.

    Every group is concatenated along ``neuron`` in the order of ``fits``. A variable without
    a ``neuron`` dim (NUTS statistics shared by a chunk's neurons, in ``sample_stats``, when
    `fit` samples them jointly) is repeated for each of its fit's neurons, as dim
    ``(chain, draw, neuron, ...)``, so divergences count per neuron; outside
    ``sample_stats`` such a variable is kept once when it is the same in every fit
    (``stimulus_mean`` in ``constant_data``). Root attributes equal in every fit are kept;
    seconds (``map_seconds`` ...) are summed; other differences keep the first fit's value.
    The attribute ``chunks`` (JSON) lists each fit's neurons, seconds and differing
    attributes.

    Parameters
    ----------
    fits : sequence of xarray.DataTree
        Fits from `fit` (or `load_fit`), each of other neurons.
    names : sequence of str, optional
        A label per fit for ``chunks`` (default: its position).

    Returns
    -------
    xarray.DataTree
    """
    fits = list(fits)
    if not fits or not all(isinstance(f, xr.DataTree) and "posterior" in f.children
                           for f in fits):
        raise InputTypeError("fits: expected a non-empty sequence of fits (DataTrees with a "
                        "posterior group)")
    names = list(names) if names is not None else [str(i) for i in range(len(fits))]
    neurons = [cast(xr.DataArray, f["posterior"]["neuron"]).values for f in fits]
    every = np.concatenate(neurons).astype(str)
    if len(set(every.tolist())) != len(every):
        raise InputError(f"fits: expected each neuron in one fit only, found {every.tolist()}")
    groups = list(fits[0].children)
    for name, f in zip(names, fits, strict=True):
        if list(f.children) != groups:
            raise InputError(f"fits: expected groups {groups} in every fit, found "
                             f"{list(f.children)} in {name}")
    tree = xr.DataTree(dataset=xr.Dataset(attrs=_merge_attrs(fits, neurons, names)))
    for group in groups:
        datasets = [f[group].to_dataset() for f in fits]
        tree[group] = xr.DataTree(_concat_group(group, datasets, neurons))
    return tree


def _concat_group(group: str, datasets: list[xr.Dataset], neurons: list) -> xr.Dataset:
    names = list(datasets[0].data_vars)
    merged = {}
    for name in names:
        values = [ds[name] for ds in datasets]
        if all("neuron" not in v.dims for v in values) and group != "sample_stats" and all(
                v.identical(values[0]) for v in values):
            merged[name] = values[0]
            continue
        values = [v if "neuron" in v.dims else _with_neuron(v, ids)
                  for v, ids in zip(values, neurons, strict=True)]
        merged[name] = xr.concat(values, dim="neuron", coords="minimal", compat="override",
                                 join="exact", combine_attrs="override")
    return xr.Dataset(merged, attrs=datasets[0].attrs)


def _with_neuron(value: xr.DataArray, ids) -> xr.DataArray:
    """``value`` repeated for each neuron of ``ids``, as ``(chain, draw, neuron, ...)``."""
    value = value.expand_dims(neuron=ids)
    first = [d for d in ("chain", "draw") if d in value.dims]
    return value.transpose(*first, "neuron", ...)


def _merge_attrs(fits: list[xr.DataTree], neurons: list, names: list[str]) -> dict:
    attrs: dict[Hashable, Any] = {}
    chunks: list[dict[Hashable, Any]] = [{"name": name, "neurons": ids.astype(str).tolist()}
                                         for name, ids in zip(names, neurons, strict=True)]
    keys = list(dict.fromkeys(key for f in fits for key in f.attrs if key != "schema"))
    for key in keys:
        values: list[Any] = [f.attrs.get(key) for f in fits]
        if key in TIMINGS and all(isinstance(v, int | float | np.number) for v in values):
            attrs[key] = float(sum(values))
            for chunk, value in zip(chunks, values, strict=True):
                chunk[key] = float(value)
            continue
        attrs[key] = values[0]
        if not all(_same(v, values[0]) for v in values):
            for chunk, value in zip(chunks, values, strict=True):
                chunk[key] = value.tolist() if isinstance(value, np.ndarray | np.generic) else value
    attrs["chunks"] = json.dumps(chunks, default=str)
    return attrs


def _same(a, b) -> bool:
    return bool(np.array_equal(a, b)) if isinstance(a, np.ndarray) else a == b
