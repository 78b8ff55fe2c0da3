"""Loaders for the real recordings kept outside the package (see each folder's NOTES.md).

The data are never shipped with bayesstrf: pass the folder where they live.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import numpy as np

from bayesstrf.data.recording import Recording
from bayesstrf.errors import InputError


def load_segments_npz(path: str | os.PathLike, *, n_freq: int | None = None) -> Recording:
    """Read the shared "derived" layout: ``spec_i (F, T_i)``, ``counts_i (N, R, T_i)``,
    ``segment_names``, ``dt`` and optionally ``freqs_hz``.

    Parameters
    ----------
    path : path to the ``.npz``
    n_freq : int, optional
        Average adjacent channels into this many bands (``numpy.array_split`` groups), for
        smaller problems; frequencies become the band means.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"path: expected an existing .npz file, found {str(path)!r}")
    with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as npz:
        names = npz["segment_names"].astype(str)
        specs = [npz[f"spec_{i}"].astype(float) for i in range(len(names))]
        counts = [npz[f"counts_{i}"].astype(float) for i in range(len(names))]
        dt = float(npz["dt"])
        freqs = npz["freqs_hz"].astype(float) if "freqs_hz" in npz.files else None
    if n_freq is not None:
        total = specs[0].shape[0]
        if isinstance(n_freq, bool) or not isinstance(n_freq, int) or not 1 <= n_freq <= total:
            raise InputError(f"n_freq: expected an integer in 1..{total}, found {n_freq!r}")
        groups = np.array_split(np.arange(total), n_freq)
        specs = [np.stack([s[g].mean(0) for g in groups]) for s in specs]
        freqs = None if freqs is None else np.array([freqs[g].mean() for g in groups])
    return Recording(specs, counts, dt, freqs=freqs, segment_ids=names)


def load_songbird(root: str | os.PathLike, *, n_freq: int | None = None) -> Recording:
    """Songbird auditory neuron, 20 songs x 10 trials, 31-band dB spectrogram at 2 ms
    (``songbird-auditory/songbird_song_2ms.npz``; Theunissen et al. 2000, STRFLab)."""
    return load_segments_npz(Path(root) / "songbird_song_2ms.npz", n_freq=n_freq)


def load_ferret_torc(root: str | os.PathLike, *, n_freq: int | None = None) -> Recording:
    """Ferret A1 unit, 30 TORCs x 10 trials, 30-channel envelope at 5 ms
    (``ferret-a1-torc/ferret_a1_torc_5ms.npz``; LBHB)."""
    return load_segments_npz(Path(root) / "ferret_a1_torc_5ms.npz", n_freq=n_freq)


# ---- NS1 (Harper et al. 2016), original release layout ---------------------------------------

#: The 20 natural sounds in the release's order: the order of the stimulus sets 1-20 in every
#: ``cluster.NN.data.mat`` (MATLAB set k = index k-1 here), which is also the order deepSTRF
#: uses. Set k's ``stim_params`` (``Source``, ``Token``, ``Set``, ``StimID``) name its WAV:
#: sets 1-12 are source 1 ``frozen.1..12``, sets 13-20 source 2 ``frozen.1..8``. This is NOT
#: the alphabetical order of the file names (``frozen.1, frozen.10, ...``).
NS1_SOUNDS = tuple(
    [f"source.1.sound.0.snr.0.token.0.fw.2.frozen.{k}" for k in range(1, 13)]
    + [f"source.2.sound.0.snr.0.token.0.fw.1.frozen.{k}" for k in range(1, 9)]
)

#: deepSTRF's (and Rahman et al.'s) held-out sounds: 0-based indices into `NS1_SOUNDS`.
NS1_TEST_INDICES = (3, 6, 9, 19)

#: Band centres span 500 Hz .. 500 * 2**5.5 Hz (= 22627 Hz): 1/6 octave apart with 34 bands.
NS1_LOWEST_HZ = 500.0
NS1_HIGHEST_HZ = 500.0 * 2**5.5

#: Reference pressure of dB SPL. The WAV samples are pascals: the 80-dB clips have RMS 0.1995,
#: and 20 log10(0.1995 / 20e-6) = 80.0.
NS1_REFERENCE_PA = 20e-6

#: Floor of the spectrogram in dB SPL per band and frame (about 7% of the values lie below it).
NS1_FLOOR_DB = 20.0

_NS1_METADATA = "MetadataSHEnCneurons.mat"
_NS1_WAVS = Path("spikesandwav") / "SH.En.C"


def ns1_test_segments() -> list[str]:
    """deepSTRF's NS1 test sounds, as segment ids of `load_ns1`'s recording.

    The sounds at indices `NS1_TEST_INDICES` = (3, 6, 9, 19) of `NS1_SOUNDS` (0-based, in
    the release's order: the spike files' stimulus sets 1-20, see `NS1_SOUNDS`), i.e. source 1
    ``frozen.4``, ``frozen.7``, ``frozen.10`` and source 2 ``frozen.8``. With all 20 sounds
    loaded, ``recording.split(ns1_test_segments())`` gives 16 training and 4 test sounds.
    """
    return [NS1_SOUNDS[i] for i in NS1_TEST_INDICES]


def _ns1_folder(path) -> Path:
    root = Path(path)
    missing = [str(p) for p in (_NS1_METADATA, _NS1_WAVS) if not (root / p).exists()]
    if missing:
        raise InputError(
            f"path: expected an NS1 release folder holding {_NS1_METADATA} and "
            f"{_NS1_WAVS}/, found {str(root)!r} without {' and '.join(missing)}"
        )
    return root


def _loadmat(file: Path) -> dict:
    import scipy.io

    try:
        return scipy.io.loadmat(file, squeeze_me=True)
    except (OSError, ValueError, TypeError, NotImplementedError) as error:
        message = " ".join(str(error).split())
        raise InputError(f"path: cannot read {str(file)!r} as a MATLAB file: {message}") from None


def _field(record, name: str, file: Path):
    try:
        value = record[name]
    except (KeyError, ValueError, IndexError, TypeError):
        raise InputError(
            f"path: expected a field {name!r} in {str(file)!r} (NS1 layout), found none"
        ) from None
    return value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value


def ns1_metadata(path: str | os.PathLike):
    """The NS1 neurons whose spike files are present under ``path``, in metadata order.

    Parameters
    ----------
    path : folder of the NS1 release (``MetadataSHEnCneurons.mat``, ``spikesandwav/``)

    Returns
    -------
    pandas.DataFrame
        Index ``neuron`` (the id used by `load_ns1`: the spike file's path under
        ``spikesandwav/`` without ``.data.mat``); columns ``meta_index`` (0-based position in
        the metadata, which is sorted by ascending noise ratio), ``file``, ``noise_ratio``,
        ``single`` ('Yes', 'Maybe', 'No'), ``depth_um``.
    """
    import pandas as pd

    root = _ns1_folder(path)
    file = root / _NS1_METADATA
    neurons = np.atleast_1d(_field(_loadmat(file), "neuron", file))
    rows = []
    for index, entry in enumerate(neurons):
        relative = str(_field(entry, "path", file))
        if not (root / "spikesandwav" / relative).is_file():
            continue
        rows.append({
            "neuron": relative.removesuffix(".data.mat"), "meta_index": index,
            "file": str(root / "spikesandwav" / relative),
            "noise_ratio": float(_field(entry, "NoiseRatio", file)),
            "single": str(_field(entry, "singleT", file)),
            "depth_um": float(_field(entry, "depth", file)),
        })
    if not rows:
        raise InputError(
            f"path: expected spike files of the {len(neurons)} neurons listed in {_NS1_METADATA} "
            f"under {str(root / 'spikesandwav')!r}, found none"
        )
    return pd.DataFrame(rows).set_index("neuron")


def _select_neurons(neurons, ids: list[str]) -> list[int]:
    if neurons is None:
        return list(range(len(ids)))
    items = [neurons] if isinstance(neurons, str | int | np.integer) else list(neurons)
    if not items:
        raise InputError("neurons: expected at least one neuron id or index, found none")
    out = []
    for item in items:
        if isinstance(item, str) and item.removesuffix(".data.mat") in ids:
            out.append(ids.index(item.removesuffix(".data.mat")))
        elif (isinstance(item, int | np.integer) and not isinstance(item, bool)
              and -len(ids) <= item < len(ids)):
            out.append(int(item) % len(ids))
        else:
            close = difflib.get_close_matches(str(item), ids, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(
                f"neurons: expected ids {ids} or indices 0..{len(ids) - 1}, found {item!r}{hint}"
            )
    if len(set(out)) != len(out):
        raise InputError(f"neurons: expected each neuron once, found {items!r}")
    return out


def ns1_spectrogram(samples: np.ndarray, rate: float, *, dt: float = 0.005, n_freq: int = 34,
                    floor_db: float = NS1_FLOOR_DB) -> tuple[np.ndarray, np.ndarray]:
    """Log-frequency spectrogram in dB SPL of a sound in pascals (`load_ns1`'s recipe).

    Parameters
    ----------
    samples : array (n_samples,)
        Sound pressure in Pa.
    rate : float
        Sampling rate in Hz.
    dt, n_freq, floor_db
        Bin width in seconds, number of bands, floor in dB SPL (see `load_ns1`).

    Returns
    -------
    spectrogram : array (n_freq, n_time)
        ``n_time = floor(duration / dt)``.
    centres : array (n_freq,)
        Band centre frequencies in Hz.
    """
    samples = np.asarray(samples, dtype=float)
    n_time = int(np.floor(samples.size / rate / dt + 1e-9))
    n_window = max(int(round(2 * dt * rate)), 2)
    window = np.hanning(n_window + 2)[1:-1]  # periodic-like Hann without zero end points
    n_fft = max(2048, 1 << (n_window - 1).bit_length())
    # frame t covers [(t - 1) dt, (t + 1) dt): the sound up to the end of bin t (causal)
    starts = np.round(np.arange(n_time) * dt * rate - n_window / 2).astype(int)
    padded = np.concatenate([np.zeros(n_window), samples, np.zeros(n_window)])
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    centres = NS1_LOWEST_HZ * (NS1_HIGHEST_HZ / NS1_LOWEST_HZ) ** (
        np.arange(n_freq) / (n_freq - 1))
    octaves, step = np.log2(centres), np.log2(centres[1] / centres[0])
    weights = np.clip(1 - np.abs(np.log2(np.maximum(freqs, 1e-12))[None] - octaves[:, None])
                      / step, 0, None)  # (n_freq, n_fft // 2 + 1) triangles
    bands = np.empty((n_freq, n_time))
    for first in range(0, n_time, 256):  # frames in chunks: memory ~ 256 x n_fft
        index = starts[first:first + 256, None] + n_window + np.arange(n_window)[None]
        power = np.abs(np.fft.rfft(padded[index] * window, n_fft, axis=1)) ** 2
        power[:, 1:-1] *= 2  # one-sided (n_fft is even)
        bands[:, first:first + 256] = weights @ (power / (n_fft * np.sum(window**2))).T
    level = 10 * np.log10(np.maximum(bands, 1e-300) / NS1_REFERENCE_PA**2)
    return np.maximum(level, floor_db), centres


def _ns1_sets(file: Path) -> dict[str, list[np.ndarray]]:
    """Spike times (ms) per repeat of every natural sound in one spike file, by sound name."""
    data = _field(_loadmat(file), "data", file)
    out = {}
    for entry in np.atleast_1d(_field(data, "set", file)):
        params = _field(entry, "stim_params", file)
        name = (f"source.{int(_field(params, 'Source', file))}.sound.0.snr.0.token."
                f"{int(_field(params, 'Token', file))}.fw.{int(_field(params, 'Set', file))}"
                f".frozen.{int(_field(params, 'StimID', file))}")
        if name in NS1_SOUNDS:
            repeats = np.atleast_1d(_field(entry, "repeats", file))
            out[name] = [np.atleast_1d(np.asarray(_field(r, "t", file), float)).ravel()
                         for r in repeats]
    missing = [name for name in NS1_SOUNDS if name not in out]
    if missing:
        raise InputError(
            f"path: expected the 20 natural-sound sets in {str(file)!r}, found none for {missing}"
        )
    return out


def _bin_spikes(times_ms: np.ndarray, dt_ms: float, n_time: int) -> np.ndarray:
    """Integer counts per bin ``[k dt, (k + 1) dt)``, k = 0 .. n_time-1; later spikes dropped."""
    index = np.floor(times_ms / dt_ms).astype(int)
    return np.bincount(index[(index >= 0) & (index < n_time)], minlength=n_time)


def load_ns1(path: str | os.PathLike, neurons=None, dt: float = 0.005, n_freq: int = 34,
             *, floor_db: float = NS1_FLOOR_DB) -> Recording:
    """Read the NS1 release (Harper et al. 2016; ferret A1, 20 natural sounds x 20 repeats).

    Reads the release in its original layout (``MetadataSHEnCneurons.mat``,
    ``spikesandwav/<experiment>/<probe>/cluster.NN.data.mat``, the WAVs in
    ``spikesandwav/SH.En.C/``): MATLAB files with `scipy.io.loadmat`, WAVs with
    `scipy.io.wavfile`. Only the natural sounds: the DRC sets have no audio in the release.

    Parameters
    ----------
    path : folder of the release
    neurons : str, int or sequence of them, optional
        Neuron ids (the spike file's path under ``spikesandwav/`` without ``.data.mat``, e.g.
        ``"dataAC/E1/cluster.02"``; see `ns1_metadata`) or indices into the neurons present,
        in metadata order (ascending noise ratio). None: all present.
    dt : float
        Bin width in seconds, for spikes and spectrogram alike.
    n_freq : int
        Number of log-spaced frequency bands (34: 1/6 octave apart).
    floor_db : float
        Spectrogram floor in dB SPL.

    Returns
    -------
    Recording
        One segment per sound, ids `NS1_SOUNDS` (the WAV names) in the release's order (see
        `NS1_SOUNDS`; `ns1_test_segments` gives deepSTRF's test sounds); spectrograms
        ``(n_freq, n_time)``; counts ``(n_neurons, n_repeats, n_time)``; ``freqs`` = band
        centres in Hz; neuron ids as above.

    Notes
    -----
    Spectrogram recipe (numpy only), for each WAV (float32 pascals, 48828 Hz as the header
    says; the TDT rate 48828.125 Hz differs by 3 ppm):

    - ``n_time = floor(duration / dt)``: 1000 bins of 5 ms for the 5.000-s sounds (the four
      one-sample-longer WAVs give 1000 too).
    - Frames: Hann window of ``2 dt`` (10 ms, 488 samples), one per bin, frame ``t`` centred
      on the bin's start ``t dt`` so that it covers ``[(t - 1) dt, (t + 1) dt)``: bin ``t``
      summarises sound up to the end of bin ``t`` and never later (causal, like the STRF);
      silence (zeros) is assumed before onset and after the end.
    - Power: ``|rfft|**2`` zero-padded to 2048 points (23.8 Hz apart), one-sided and
      normalised so that the bins sum to the window-weighted mean square pressure (Pa²).
    - Bands: ``n_freq`` centres log-spaced from 500 Hz to 500 * 2**5.5 = 22627 Hz (1/6
      octave apart with 34 bands; the layout of Harper et al. 2016 as we read it, not checked
      against their code); each band sums the FFT power under a triangle in log frequency
      that rises from the previous centre and falls to the next one (lowest edge 445 Hz,
      highest 25398 Hz, cut by the 24414-Hz Nyquist frequency), so neighbouring triangles
      add up to one and the bands partition the power between the outer centres.
    - Compression: ``10 log10(power / (20 µPa)²)`` (dB SPL: the 80-dB clips have RMS 0.1995
      Pa), then values below ``floor_db`` (20 dB SPL, about 7% of the values, mostly in the
      top bands) are set to ``floor_db``. No other offset, no normalisation: the model
      centres and scales the stimulus itself.
    - Resolution: the 10-ms window blurs frequency by about ±200 Hz, wider than the bands
      below about 2 kHz, so the lowest bands are strongly correlated.

    Spikes: times in ms from sound onset; spikes of each repeat are counted (integers, not
    smoothed, sub-millisecond doublets kept) in bins ``[k dt, (k + 1) dt)``, k = 0 ..
    n_time-1; spikes after the sound (the 200-242 ms of silence the release also records)
    are dropped. A sound with fewer repeats for some neuron gets NaN trials (none in the
    release: every neuron has 20 repeats of every sound).

    Raises
    ------
    ValueError
        ``path`` not an NS1 folder or unreadable; unknown ``neurons`` (with the closest id);
        ``dt`` or ``n_freq`` out of range.
    """
    import scipy.io.wavfile

    root = _ns1_folder(path)
    if (isinstance(dt, bool) or not isinstance(dt, int | float | np.number)
            or not np.isfinite(dt) or not 0.0005 <= dt <= 0.1):
        raise InputError(f"dt: expected a bin width in seconds in [0.0005, 0.1], found {dt!r}")
    if isinstance(n_freq, bool) or not isinstance(n_freq, int | np.integer) or not (
            2 <= n_freq <= 256):
        raise InputError(f"n_freq: expected an integer in 2..256, found {n_freq!r}")
    if isinstance(floor_db, bool) or not isinstance(floor_db, int | float | np.number) or not (
            np.isfinite(floor_db)):
        raise InputError(f"floor_db: expected a finite level in dB SPL, found {floor_db!r}")
    table = ns1_metadata(root)
    table = table.iloc[_select_neurons(neurons, table.index.tolist())]

    specs, freqs = [], None
    for name in NS1_SOUNDS:
        file = root / _NS1_WAVS / name
        try:
            rate, samples = scipy.io.wavfile.read(file)
        except (OSError, ValueError) as error:
            raise InputError(f"path: cannot read the NS1 sound {str(file)!r}: {error}") from None
        if samples.ndim != 1:
            raise InputError(f"path: expected a mono WAV at {str(file)!r}, "
                             f"found shape {samples.shape}")
        spec, freqs = ns1_spectrogram(samples, float(rate), dt=float(dt), n_freq=int(n_freq),
                                      floor_db=float(floor_db))
        specs.append(spec)

    spikes = [_ns1_sets(Path(file)) for file in table["file"]]
    counts = []
    for name, spec in zip(NS1_SOUNDS, specs, strict=True):
        n_time = spec.shape[1]
        n_repeats = max(len(sets[name]) for sets in spikes)
        block = np.full((len(spikes), n_repeats, n_time), np.nan)
        for n, sets in enumerate(spikes):
            for r, times in enumerate(sets[name]):
                block[n, r] = _bin_spikes(times, float(dt) * 1000, n_time)
        counts.append(block)
    return Recording(specs, counts, float(dt), freqs=freqs, neuron_ids=table.index.tolist(),
                     segment_ids=list(NS1_SOUNDS))
