"""A `Recording`'s files: ``.npz`` and netCDF, written atomically, read back without unpickling.

File formats
------------
``.npz`` (read with ``allow_pickle=False``; object arrays are refused):

==================  =====================  ==========================================
key                 shape / dtype          meaning
==================  =====================  ==========================================
``schema``          str                    ``"bayesstrf.recording/1"``
``dt``              float                  bin width in seconds
``freqs``           (F,) float             frequency of each spectrogram row
``neuron_ids``      (N,) str               neuron names
``segment_ids``     (S,) str               segment (stimulus) names
``spectrogram_i``   (F, T_i) float         stimulus of segment ``i`` (i = 0 .. S-1)
``counts_i``        (N, R_i, T_i) float    spike counts, NaN = missing
==================  =====================  ==========================================

``.nc`` (netCDF4 via h5netcdf): variables ``spectrogram (freq, time)`` and
``counts (neuron, trial, time)`` over the concatenated time axis, with a ``segment``
coordinate on ``time``, the trial axis padded with NaN up to ``n_trials (segment_order)``;
``dt`` in the attributes.

The readers take ``build``, the `Recording` class, to make the recording from its parts, so
this module needs no import of `bayesstrf.data.recording`.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bayesstrf.errors import InputError
from bayesstrf.files import atomic_path

SCHEMA = "bayesstrf.recording/1"


class Fields(Protocol):
    """What the writers read of a `Recording`."""

    spectrograms: list[np.ndarray]
    counts: list[np.ndarray]
    dt: float
    freqs: np.ndarray
    neuron_ids: np.ndarray
    segment_ids: np.ndarray

    @property
    def segment_lengths(self) -> np.ndarray: ...


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, never unpickling: object arrays and pickles are refused."""
    with open(path, "rb") as handle:
        head = handle.read(1)
    if not zipfile.is_zipfile(path):
        what = "a pickle" if head == b"\x80" else "not a zip archive of .npy arrays"
        raise InputError(
            f"path: cannot read {str(path)!r} as .npz: {what}; bayesstrf never unpickles"
        )
    content, pickled = {}, []
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as npz:
            for key in npz.files:
                try:
                    content[key] = npz[key]
                except ValueError as error:
                    if "allow_pickle" not in str(error):
                        raise
                    pickled.append(key)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        message = " ".join(str(error).split())
        raise InputError(f"path: cannot read {str(path)!r} as .npz: {message}") from None
    if pickled:
        raise InputError(
            f"path: {str(path)!r} holds pickled object arrays {pickled}; "
            "bayesstrf never unpickles"
        )
    return content


def save(recording: Fields, path: str | os.PathLike) -> Path:
    """Write ``recording`` as ``.npz`` or ``.nc`` (by suffix) atomically."""
    path = Path(path)
    if path.suffix not in (".npz", ".nc"):
        raise InputError(f"path: expected a .npz or .nc file name, found {path.name!r}")
    if not path.parent.is_dir():
        raise InputError(f"path: expected an existing folder, found {str(path.parent)!r}")
    with atomic_path(path) as tmp:
        if path.suffix == ".npz":
            arrays: dict[str, Any] = {
                "schema": np.array(SCHEMA), "dt": np.array(recording.dt),
                "freqs": recording.freqs, "neuron_ids": recording.neuron_ids,
                "segment_ids": recording.segment_ids,
            }
            for i, (spec, count) in enumerate(zip(recording.spectrograms, recording.counts,
                                                  strict=True)):
                arrays[f"spectrogram_{i}"] = spec
                arrays[f"counts_{i}"] = count
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)
        else:
            to_dataset(recording).to_netcdf(tmp, engine="h5netcdf")
    return path


def load[Built](path: str | os.PathLike, build: Callable[..., Built]) -> Built:
    """Read a recording written by `save` (``.npz`` or ``.nc``) and ``build`` it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"path: expected an existing .npz or .nc file, found {str(path)!r}")
    if path.suffix == ".nc":
        import xarray as xr

        try:
            with xr.open_dataset(path, engine="h5netcdf") as ds:
                return from_dataset(ds.load(), build)
        except (OSError, ValueError, KeyError) as error:
            raise InputError(
                f"path: cannot read {str(path)!r} as a recording: {error}"
            ) from None
    if path.suffix != ".npz":
        raise InputError(f"path: expected a .npz or .nc file, found {path.name!r}")
    content = read_npz(path)
    if str(content.get("schema", "")) != SCHEMA:
        raise InputError(
            f"path: expected schema {SCHEMA!r} in {path.name}, "
            f"found {str(content.get('schema', 'none'))!r}"
        )
    segment_ids = content.get("segment_ids", np.array([]))
    if segment_ids.ndim != 1:
        raise InputError(
            f"segment_ids: expected a 1-D array of names in {path.name}, "
            f"found shape {segment_ids.shape}"
        )
    n_segments = len(segment_ids)
    required = ["schema", "dt", "freqs", "neuron_ids", "segment_ids"] + [
        f"{kind}_{i}" for i in range(n_segments) for kind in ("spectrogram", "counts")
    ]
    missing = [key for key in required if key not in content]
    if missing:
        raise InputError(f"path: {path.name} lacks the keys {missing} of schema {SCHEMA!r}")
    extra = sorted(set(content) - set(required))
    if extra:
        raise InputError(
            f"path: {path.name} holds keys {extra} outside schema {SCHEMA!r} "
            f"(segment_ids names {n_segments} segments); nothing is dropped silently"
        )
    dt = content["dt"]
    if dt.shape != () or dt.dtype.kind not in "iuf":
        shown = repr(dt.item()) if dt.shape == () else f"an array of shape {dt.shape}"
        raise InputError(
            f"dt: expected a bin width in seconds (one number) in {path.name}, found {shown}"
        )
    return build(
        [content[f"spectrogram_{i}"] for i in range(n_segments)],
        [content[f"counts_{i}"] for i in range(n_segments)],
        dt.item(),
        freqs=content["freqs"],
        neuron_ids=content["neuron_ids"],
        segment_ids=content["segment_ids"],
    )


def to_dataset(recording: Fields):
    """``recording`` as an ``xarray.Dataset`` over the concatenated time axis (the ``.nc``
    layout)."""
    import xarray as xr

    n_trials = max(c.shape[1] for c in recording.counts)
    padded = [
        np.concatenate([c, np.full((c.shape[0], n_trials - c.shape[1], c.shape[2]), np.nan)], 1)
        for c in recording.counts
    ]
    segment = np.repeat(recording.segment_ids, recording.segment_lengths)
    return xr.Dataset(
        {
            "spectrogram": (("freq", "time"), np.concatenate(recording.spectrograms, axis=1)),
            "counts": (("neuron", "trial", "time"), np.concatenate(padded, axis=2)),
            "n_trials": ("segment_order", [c.shape[1] for c in recording.counts]),
        },
        coords={
            "freq": recording.freqs, "neuron": recording.neuron_ids,
            "segment": ("time", segment), "segment_order": recording.segment_ids,
        },
        attrs={"schema": SCHEMA, "dt": recording.dt},
    )


def from_dataset[Built](ds, build: Callable[..., Built]) -> Built:
    """Inverse of `to_dataset` (trial padding removed using ``n_trials``), made by ``build``."""
    if ds.attrs.get("schema") != SCHEMA:
        raise InputError(
            f"path: expected schema {SCHEMA!r}, found {ds.attrs.get('schema')!r}"
        )
    segment = ds["segment"].values.astype(str)
    specs, counts = [], []
    order = ds["segment_order"].values.astype(str)
    for seg, n_trials in zip(order, ds["n_trials"].values, strict=True):
        mask = segment == seg
        specs.append(ds["spectrogram"].values[:, mask])
        counts.append(ds["counts"].values[:, :n_trials, mask])
    return build(
        specs, counts, float(ds.attrs["dt"]), freqs=ds["freq"].values,
        neuron_ids=ds["neuron"].values.astype(str), segment_ids=order,
    )


def hash_arrays(digest, recording: Fields) -> None:
    """Feed a recording's spectrograms and counts (as float64 bytes, segment by segment) to
    ``digest`` (a `hashlib` object): the data part of every fingerprint of a recording."""
    for spec, counts in zip(recording.spectrograms, recording.counts, strict=True):
        digest.update(np.ascontiguousarray(spec, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(counts, dtype=np.float64).tobytes())
