"""Read the contents of a `bayesstrf.Recording` from an NWB file (needs the optional ``pynwb``:
``pip install bayesstrf[nwb]``). Users call ``Recording.from_nwb``; this module knows NWB, not
recordings, so that the data layer has no import cycle.

Conventions
-----------
- Spikes: the file's ``Units`` table, one neuron per row (``units`` picks rows by their
  ``id``); neuron ids are the unit ids as strings.
- Stimulus: a ``TimeSeries`` named ``stimulus``, looked up in ``/stimulus/presentation``, then
  ``/stimulus/templates``, then ``/acquisition``; its ``data`` is ``(time, freq)`` (NWB puts
  time first; bayesstrf transposes it to ``(freq, time)``) with a ``rate`` and
  ``starting_time``, or regular ``timestamps``. Its frame interval is the bin width unless
  ``dt`` is an integer multiple of it, in which case each group of frames is averaged.
- Time bins are aligned to the stimulus frames, half-open ``[t_k, t_k + dt)``; a spike at a
  bin's left edge counts in that bin.
- Without a ``trials`` table the recording is one segment, one trial, covering the whole
  stimulus. With one, each row is one presentation from ``start_time`` to ``stop_time``
  (started at the nearest stimulus frame). Rows are grouped into segments by the trials
  column ``group_by`` (default ``"stimulus_name"``): the rows of a group are repeats of one
  stimulus, must show the same spectrogram, and are cut to the shortest of them. Without that
  column every row is a segment of its own. Segments come in order of first presentation and
  are named by the group value (or ``trial<id>``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bayesstrf.errors import InputError, InputTypeError

#: relative tolerance on regular timestamps and on ``dt`` being a multiple of the frame interval
_TOLERANCE = 1e-6


def _import_pynwb():
    try:
        import pynwb
    except ImportError:
        raise ImportError(
            "path: reading NWB files needs pynwb; install it with pip install 'bayesstrf[nwb]'"
        ) from None
    return pynwb


def _stimulus_series(nwbfile, stimulus: str):
    places = {"stimulus": nwbfile.stimulus, "stimulus_template": nwbfile.stimulus_template,
              "acquisition": nwbfile.acquisition}
    for place in places.values():
        if stimulus in place:
            return place[stimulus]
    found = {name: sorted(place) for name, place in places.items() if len(place)}
    raise InputError(
        f"stimulus: expected a TimeSeries named {stimulus!r} in the stimulus or acquisition "
        f"groups, found {found or 'none'}"
    )


def _frames(series, stimulus: str) -> tuple[np.ndarray, float, float]:
    """Data ``(T, F)``, first frame time and frame interval of a stimulus TimeSeries."""
    data = np.asarray(series.data[:])
    if data.ndim != 2 or 0 in data.shape or data.dtype.kind not in "iuf":
        raise InputError(
            f"stimulus: expected {stimulus!r} to hold numeric (time, freq) data, found shape "
            f"{data.shape} and dtype {data.dtype}"
        )
    if series.timestamps is not None:
        stamps = np.asarray(series.timestamps[:], dtype=float)
        steps = np.diff(stamps)
        if stamps.shape != (data.shape[0],) or steps.size == 0:
            raise InputError(
                f"stimulus: expected one timestamp per frame of {stimulus!r} (at least two), "
                f"found {stamps.shape[0]} for {data.shape[0]} frames"
            )
        interval = float(np.median(steps))
        if interval <= 0 or np.abs(steps - interval).max() > 1e-3 * interval:
            raise InputError(
                f"stimulus: expected regular timestamps for {stimulus!r}, found intervals from "
                f"{steps.min():g} to {steps.max():g} s"
            )
        return data.astype(float), float(stamps[0]), interval
    return data.astype(float), float(series.starting_time or 0.0), 1.0 / float(series.rate)


def _bin_factor(dt, interval: float) -> int:
    if dt is None:
        return 1
    if isinstance(dt, bool) or not isinstance(dt, int | float | np.number) or not dt > 0:
        raise InputError(f"dt: expected a bin width in seconds > 0 or None, found {dt!r}")
    factor = round(dt / interval)
    if factor < 1 or abs(factor * interval - dt) > _TOLERANCE * dt:
        raise InputError(
            f"dt: expected an integer multiple of the stimulus frame interval {interval:g} s, "
            f"found {dt!r}"
        )
    return factor


def _unit_rows(table, units) -> tuple[list[int], np.ndarray]:
    ids = np.asarray(table.id[:])
    if units is None:
        return list(range(len(ids))), ids
    wanted = [units] if isinstance(units, int | np.integer) else list(units)
    rows = []
    for unit in wanted:
        matches: np.ndarray | list[int] = (np.flatnonzero(ids == unit)
                                           if not isinstance(unit, bool) else [])
        if len(matches) != 1:
            raise InputError(
                f"units: expected unit ids among {ids.tolist()}, found {unit!r}"
            )
        rows.append(int(matches[0]))
    if not rows:
        raise InputError("units: expected at least one unit id, found none")
    return rows, ids[rows]


def _unreadable(path: Path, error: Exception) -> ValueError:
    message = " ".join(str(error).split())
    return ValueError(f"path: cannot read {str(path)!r} as NWB: {message}")


def _count(spikes: list[np.ndarray], origin: float, n_bins: int, dt: float) -> np.ndarray:
    """Spike counts ``(N, n_bins)`` in half-open bins ``[origin + k dt, origin + (k+1) dt)``."""
    edges = origin + dt * np.arange(n_bins + 1)
    return np.stack([np.diff(np.searchsorted(times, edges, side="left")) for times in spikes])


def read_nwb(
    path: str | os.PathLike,
    *,
    units: Sequence[int] | int | None = None,
    stimulus: str = "spectrogram",
    dt: float | None = None,
    freqs=None,
    group_by: str = "stimulus_name",
) -> dict:
    """Spike counts and stimulus spectrogram of an NWB file, as the arguments of a
    `bayesstrf.Recording` (``Recording.from_nwb`` builds it).

    Parameters
    ----------
    path : str or path
        An NWB (HDF5) file.
    units : int or sequence of int, optional
        Unit ids of the ``Units`` table to read (default: all, in table order).
    stimulus : str
        Name of the stimulus ``TimeSeries``, data ``(time, freq)``.
    dt : float, optional
        Bin width in seconds: the stimulus frame interval (default) or an integer multiple of it.
    freqs : array (F,), optional
        Frequency of each spectrogram channel (NWB TimeSeries do not store one).
    group_by : str
        Trials column naming the stimulus of each presentation (see the module docstring).

    Returns
    -------
    dict
        ``spectrograms``, ``counts`` ``(N, R_s, T_s)`` per segment (integers stored as
        floats), ``dt``, ``freqs``, ``neuron_ids``, ``segment_ids``.

    Raises
    ------
    ImportError
        When pynwb is not installed.
    ValueError, TypeError
        Naming the argument, what was expected and what was found.
    """
    pynwb = _import_pynwb()
    if not isinstance(stimulus, str):
        raise InputTypeError(f"stimulus: expected the name of a TimeSeries, found {stimulus!r}")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"path: expected an existing NWB file, found {str(path)!r}")
    unreadable = (OSError, ValueError, KeyError, TypeError)
    try:
        io = pynwb.NWBHDF5IO(str(path), mode="r")
    except unreadable as error:
        raise _unreadable(path, error) from None
    with io:
        try:
            nwbfile = io.read()
        except unreadable as error:
            raise _unreadable(path, error) from None
        if nwbfile.units is None or len(nwbfile.units) == 0:
            raise InputError(f"path: expected a Units table with spike times in {path.name}, "
                             "found none")
        rows, ids = _unit_rows(nwbfile.units, units)
        spikes = [np.sort(np.asarray(nwbfile.units["spike_times"][row], dtype=float))
                  for row in rows]
        data, start, interval = _frames(_stimulus_series(nwbfile, stimulus), stimulus)
        factor = _bin_factor(dt, interval)
        trials = None if nwbfile.trials is None else nwbfile.trials.to_dataframe()
    width = interval * factor

    if trials is None or len(trials) == 0:
        n_bins = data.shape[0] // factor
        if n_bins == 0:
            raise InputError(f"dt: expected at most {data.shape[0]} stimulus frames per bin, "
                             f"found {factor}")
        specs = [data[: n_bins * factor]]
        counts = [_count(spikes, start, n_bins, width)[:, None]]
        names = [stimulus]
    else:
        specs, counts, names = _segments(trials, data, start, interval, factor, spikes, group_by)
    blocked = [spec.reshape(-1, factor, spec.shape[1]).mean(axis=1).T for spec in specs]
    return {"spectrograms": blocked, "counts": [c.astype(float) for c in counts], "dt": width,
            "freqs": freqs, "neuron_ids": ids.astype(str), "segment_ids": names}


def _segments(trials, data, start, interval, factor, spikes, group_by):
    """Per-group frames ``(T_s * factor, F)``, counts ``(N, R_s, T_s)`` and names."""
    width = interval * factor
    if group_by in trials.columns:
        keys = [str(value) for value in trials[group_by]]
    else:
        keys = [f"trial{index}" for index in trials.index]
    groups: dict[str, list[tuple[int, int, int]]] = {}
    for (index, row), key in zip(trials.iterrows(), keys, strict=True):
        first = int(round((row["start_time"] - start) / interval))
        n_bins = int(round((row["stop_time"] - row["start_time"]) / width))
        if n_bins < 1 or first < 0 or first + n_bins * factor > data.shape[0]:
            raise InputError(
                f"trials: expected trial {index} ({row['start_time']:g}-{row['stop_time']:g} s) "
                f"to cover at least one bin within the stimulus ({start:g} s, "
                f"{data.shape[0]} frames of {interval:g} s), found frames {first}.."
                f"{first + n_bins * factor}"
            )
        groups.setdefault(key, []).append((index, first, n_bins))
    specs, counts = [], []
    for key, members in groups.items():
        n_bins = min(n for _, _, n in members)
        frames = [data[first : first + n_bins * factor] for _, first, _ in members]
        for (index, _, _), other in zip(members[1:], frames[1:], strict=True):
            if not np.allclose(other, frames[0], rtol=1e-5, atol=1e-8):
                raise InputError(
                    f"trials: expected the repeats of {group_by} {key!r} to show the same "
                    f"spectrogram, found trial {index} differing from trial {members[0][0]}"
                )
        specs.append(frames[0])
        counts.append(np.stack([
            _count(spikes, start + first * interval, n_bins, width) for _, first, _ in members
        ], axis=1))
    return specs, counts, list(groups)
