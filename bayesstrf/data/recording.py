"""`Recording`: validated stimulus spectrograms and spike counts, split and saved by segment.

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
"""

from __future__ import annotations

import os
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bayesstrf.data import nwb
from bayesstrf.errors import InputError, InputTypeError

SCHEMA = "bayesstrf.recording/1"

#: Largest count per bin: integers above 2**24 are not exact in float32, as the model computes.
MAX_COUNT = 2**24


def _as_list(value, name: str, ndim: int) -> list[np.ndarray]:
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


def _check_counts(counts: np.ndarray, where: str) -> None:
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


def _ids(value, n: int, name: str, prefix: str) -> np.ndarray:
    if value is None:
        return np.array([f"{prefix}{i}" for i in range(n)])
    ids = np.asarray(value).astype(str)
    if ids.shape != (n,):
        raise InputError(f"{name}: expected {n} ids, found shape {ids.shape}")
    if len(set(ids.tolist())) != n:
        raise InputError(f"{name}: expected unique ids, found duplicates in {ids.tolist()}")
    return ids


def _read_npz(path: Path) -> dict[str, np.ndarray]:
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


class Recording:
    """Stimulus spectrograms and binned spike counts of one or more neurons, by segment.

    Parameters
    ----------
    spectrogram : array (F, T) or list of arrays (F, T_s)
        Stimulus per segment; finite.
    counts : array (N, R, T) or list of arrays (N, R_s, T_s)
        Spike counts per neuron, trial (repeat) and bin; non-negative integers, NaN marks a
        missing trial (or bin). Trials may differ in number between segments.
    dt : float
        Bin width in seconds, > 0.
    freqs : array (F,), optional
        Frequency of each row (default: 0 .. F-1).
    neuron_ids, segment_ids : sequence of str, optional
        Unique names (default ``n0 ..``, ``s0 ..``).

    Raises
    ------
    ValueError, TypeError
        Naming the argument, what was expected and what was found.
    """

    def __init__(
        self,
        spectrogram,
        counts,
        dt: float,
        *,
        freqs=None,
        neuron_ids: Sequence[str] | np.ndarray | None = None,
        segment_ids: Sequence[str] | np.ndarray | None = None,
    ):
        specs = _as_list(spectrogram, "spectrogram", 2)
        counts = _as_list(counts, "counts", 3)
        if len(specs) != len(counts):
            raise InputError(
                f"counts: expected one array per spectrogram segment ({len(specs)}), "
                f"found {len(counts)}"
            )
        n_freq, n_neurons = specs[0].shape[0], counts[0].shape[0]
        for index, (spec, count) in enumerate(zip(specs, counts, strict=True)):
            if spec.shape[0] != n_freq:
                raise InputError(
                    f"spectrogram[{index}]: expected {n_freq} frequency rows like segment 0, "
                    f"found {spec.shape[0]}"
                )
            if 0 in spec.shape:
                raise InputError(
                    f"spectrogram[{index}]: expected frequency rows and time bins, "
                    f"found shape {spec.shape}"
                )
            if not np.isfinite(spec).all():
                raise InputError(f"spectrogram[{index}]: expected finite values, found NaN/Inf")
            if count.shape[2] != spec.shape[1]:
                raise InputError(
                    f"counts[{index}]: expected {spec.shape[1]} time bins like "
                    f"spectrogram[{index}], found {count.shape[2]}"
                )
            if count.shape[0] != n_neurons:
                raise InputError(
                    f"counts[{index}]: expected {n_neurons} neurons like segment 0, "
                    f"found {count.shape[0]}"
                )
            _check_counts(count, f"counts[{index}]")
        observed = sum(np.isfinite(c).all(axis=2).sum(axis=1) for c in counts)
        if (observed == 0).any():
            raise InputError(
                f"counts: expected at least one complete trial per neuron, found none for "
                f"neuron index {int(np.argmin(observed))}"
            )
        if (isinstance(dt, bool) or not isinstance(dt, int | float | np.number)
                or not np.isfinite(dt) or dt <= 0):
            raise InputError(f"dt: expected a bin width in seconds > 0, found {dt!r}")
        self.spectrograms = specs
        self.counts = counts
        self.dt = float(dt)
        if freqs is None:
            freqs = np.arange(n_freq, dtype=float)
        try:
            self.freqs = np.asarray(freqs, dtype=float)
        except (TypeError, ValueError):
            raise InputTypeError(f"freqs: expected {n_freq} numbers, found {freqs!r}") from None
        if self.freqs.shape != (n_freq,) or not np.isfinite(self.freqs).all():
            raise InputError(
                f"freqs: expected {n_freq} finite values, found shape {self.freqs.shape}"
            )
        self.neuron_ids = _ids(neuron_ids, n_neurons, "neuron_ids", "n")
        self.segment_ids = _ids(segment_ids, len(specs), "segment_ids", "s")

    # ---- shape summary ---------------------------------------------------------------------
    @property
    def n_freq(self) -> int:
        return self.spectrograms[0].shape[0]

    @property
    def n_neurons(self) -> int:
        return self.counts[0].shape[0]

    @property
    def n_segments(self) -> int:
        return len(self.spectrograms)

    @property
    def segment_lengths(self) -> np.ndarray:
        return np.array([s.shape[1] for s in self.spectrograms])

    @property
    def n_time(self) -> int:
        return int(self.segment_lengths.sum())

    def __repr__(self) -> str:
        return (
            f"Recording(neurons={self.n_neurons}, freqs={self.n_freq}, "
            f"segments={self.n_segments}, bins={self.n_time}, dt={self.dt})"
        )

    # ---- selections --------------------------------------------------------------------------
    def _segment_index(self, segments) -> list[int]:
        items = [segments] if isinstance(segments, str | int | np.integer) else list(segments)
        ids = self.segment_ids.tolist()
        out = []
        for item in items:
            if isinstance(item, str) and item in ids:
                out.append(ids.index(item))
            elif (isinstance(item, int | np.integer) and not isinstance(item, bool)
                  and -len(ids) <= item < len(ids)):
                out.append(int(item) % len(ids))
            else:
                raise InputError(
                    f"test_segments: expected segment ids {ids} or indices "
                    f"0..{len(ids) - 1}, found {item!r}"
                )
        return out

    def select_segments(self, indices: Sequence[int]) -> Recording:
        """A recording with only the segments at ``indices`` (in that order)."""
        return Recording(
            [self.spectrograms[i] for i in indices],
            [self.counts[i] for i in indices],
            self.dt,
            freqs=self.freqs,
            neuron_ids=self.neuron_ids,
            segment_ids=self.segment_ids[list(indices)],
        )

    def without(self, neuron: int, segment: int, bins: slice) -> Recording:
        """The same recording with neuron ``neuron``'s counts in ``bins`` of segment ``segment``
        missing (NaN) in every trial: the data of a leave-one-out refit."""
        for name, value, size in (("neuron", neuron, self.n_neurons),
                                  ("segment", segment, self.n_segments)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or not (
                    0 <= value < size):
                raise InputError(f"{name}: expected an index in 0..{size - 1}, found {value!r}")
        if not isinstance(bins, slice):
            raise InputTypeError(f"bins: expected a slice, found {type(bins).__name__}")
        counts = [np.array(c, dtype=float) for c in self.counts]
        counts[segment][neuron, :, bins] = np.nan
        return Recording(self.spectrograms, counts, self.dt, freqs=self.freqs,
                         neuron_ids=self.neuron_ids, segment_ids=self.segment_ids)

    def select_neurons(self, neurons: Sequence[int]) -> Recording:
        """A recording with only the neurons at indices ``neurons``."""
        neurons = list(neurons)
        return Recording(
            self.spectrograms,
            [c[neurons] for c in self.counts],
            self.dt,
            freqs=self.freqs,
            neuron_ids=self.neuron_ids[neurons],
            segment_ids=self.segment_ids,
        )

    def rebin(self, factor: int) -> Recording:
        """Coarser bins of ``factor`` original bins: counts summed (still Poisson counts),
        spectrogram averaged, ``dt`` multiplied.

        The last ``len % factor`` bins of a segment cannot fill a coarse bin and are left out,
        with a warning giving how many bins and spikes that leaves out.
        """
        if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
            raise InputError(f"factor: expected a positive integer, found {factor!r}")
        shortest = int(self.segment_lengths.min())
        if factor > shortest:
            raise InputError(
                f"factor: expected at most the shortest segment's {shortest} bins, found {factor}"
            )
        kept = self.segment_lengths // factor * factor
        left_bins = int((self.segment_lengths - kept).sum())
        left_spikes = float(sum(np.nansum(c[..., k:]) for c, k in zip(self.counts, kept,
                                                                        strict=True)))
        if left_bins:
            warnings.warn(f"rebin: the last {left_bins} bins of the segments (fewer than "
                          f"factor={factor} each), holding {left_spikes:g} spikes, are left out",
                          stacklevel=2)
        spectrograms = [s[:, :k].reshape(s.shape[0], -1, factor).mean(-1)
                        for s, k in zip(self.spectrograms, kept, strict=True)]
        counts = [c[..., :k].reshape(*c.shape[:2], -1, factor).sum(-1)
                  for c, k in zip(self.counts, kept, strict=True)]
        return Recording(spectrograms, counts, self.dt * factor, freqs=self.freqs,
                         neuron_ids=self.neuron_ids, segment_ids=self.segment_ids)

    def split(self, test_segments) -> tuple[Recording, Recording]:
        """Split by segment into ``(train, test)``.

        Parameters
        ----------
        test_segments : str, int or sequence of them
            Segment ids or indices held out for testing.
        """
        test = sorted(set(self._segment_index(test_segments)))
        if not test:
            raise InputError("test_segments: expected at least one segment to hold out, found none")
        train = [i for i in range(self.n_segments) if i not in test]
        if not train:
            raise InputError("test_segments: expected to leave at least one training segment")
        return self.select_segments(train), self.select_segments(test)

    # ---- files --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``.npz`` or ``.nc`` (by suffix) atomically; see the module docstring."""
        path = Path(path)
        if path.suffix not in (".npz", ".nc"):
            raise InputError(f"path: expected a .npz or .nc file name, found {path.name!r}")
        if not path.parent.is_dir():
            raise InputError(f"path: expected an existing folder, found {str(path.parent)!r}")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
        os.close(fd)
        try:
            if path.suffix == ".npz":
                arrays: dict[str, Any] = {
                    "schema": np.array(SCHEMA), "dt": np.array(self.dt), "freqs": self.freqs,
                    "neuron_ids": self.neuron_ids, "segment_ids": self.segment_ids,
                }
                for i, (spec, count) in enumerate(zip(self.spectrograms, self.counts, strict=True)):
                    arrays[f"spectrogram_{i}"] = spec
                    arrays[f"counts_{i}"] = count
                with open(tmp, "wb") as handle:
                    np.savez_compressed(handle, **arrays)
            else:
                self.to_dataset().to_netcdf(tmp, engine="h5netcdf")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Recording:
        """Read a recording written by `save` (``.npz`` or ``.nc``)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"path: expected an existing .npz or .nc file, found {str(path)!r}")
        if path.suffix == ".nc":
            import xarray as xr

            try:
                with xr.open_dataset(path, engine="h5netcdf") as ds:
                    return cls.from_dataset(ds.load())
            except (OSError, ValueError, KeyError) as error:
                raise InputError(
                    f"path: cannot read {str(path)!r} as a recording: {error}"
                ) from None
        if path.suffix != ".npz":
            raise InputError(f"path: expected a .npz or .nc file, found {path.name!r}")
        content = _read_npz(path)
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
        return cls(
            [content[f"spectrogram_{i}"] for i in range(n_segments)],
            [content[f"counts_{i}"] for i in range(n_segments)],
            dt.item(),
            freqs=content["freqs"],
            neuron_ids=content["neuron_ids"],
            segment_ids=content["segment_ids"],
        )

    @classmethod
    def from_nwb(cls, path: str | os.PathLike, units=None, stimulus: str = "spectrogram",
                 dt: float | None = None, *, freqs=None, group_by: str = "stimulus_name"
                 ) -> Recording:
        """Read spike times and a stimulus spectrogram from an NWB file (needs the ``nwb``
        extra, pynwb); conventions and parameters in `bayesstrf.data.nwb.read_nwb`."""
        contents = nwb.read_nwb(path, units=units, stimulus=stimulus, dt=dt, freqs=freqs,
                                group_by=group_by)
        return cls(contents.pop("spectrograms"), contents.pop("counts"), contents.pop("dt"),
                   **contents)

    def to_dataset(self):
        """An ``xarray.Dataset`` over the concatenated time axis (the ``.nc`` layout)."""
        import xarray as xr

        n_trials = max(c.shape[1] for c in self.counts)
        padded = [
            np.concatenate([c, np.full((c.shape[0], n_trials - c.shape[1], c.shape[2]), np.nan)], 1)
            for c in self.counts
        ]
        segment = np.repeat(self.segment_ids, self.segment_lengths)
        return xr.Dataset(
            {
                "spectrogram": (("freq", "time"), np.concatenate(self.spectrograms, axis=1)),
                "counts": (("neuron", "trial", "time"), np.concatenate(padded, axis=2)),
                "n_trials": ("segment_order", [c.shape[1] for c in self.counts]),
            },
            coords={
                "freq": self.freqs, "neuron": self.neuron_ids,
                "segment": ("time", segment), "segment_order": self.segment_ids,
            },
            attrs={"schema": SCHEMA, "dt": self.dt},
        )

    @classmethod
    def from_dataset(cls, ds) -> Recording:
        """Inverse of `to_dataset` (trial padding removed using ``n_trials``)."""
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
        return cls(
            specs, counts, float(ds.attrs["dt"]), freqs=ds["freq"].values,
            neuron_ids=ds["neuron"].values.astype(str), segment_ids=order,
        )
