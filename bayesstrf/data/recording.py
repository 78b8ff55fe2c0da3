"""`Recording`: validated stimulus spectrograms and spike counts, split and saved by segment.

The file formats are documented, written and read in `bayesstrf.data.recording_files`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bayesstrf.data import nwb, recording_files
from bayesstrf.data.recording_checks import as_segments, check_counts, unique_ids
from bayesstrf.errors import InputError, InputTypeError


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
        specs = as_segments(spectrogram, "spectrogram", 2)
        counts = as_segments(counts, "counts", 3)
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
            check_counts(count, f"counts[{index}]")
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
        self.neuron_ids = unique_ids(neuron_ids, n_neurons, "neuron_ids", "n")
        self.segment_ids = unique_ids(segment_ids, len(specs), "segment_ids", "s")

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
        """Write ``.npz`` or ``.nc`` (by suffix) atomically; formats in
        `bayesstrf.data.recording_files`."""
        return recording_files.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Recording:
        """Read a recording written by `save` (``.npz`` or ``.nc``)."""
        return recording_files.load(path, cls)

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
        return recording_files.to_dataset(self)

    @classmethod
    def from_dataset(cls, ds) -> Recording:
        """Inverse of `to_dataset` (trial padding removed using ``n_trials``)."""
        return recording_files.from_dataset(ds, cls)
