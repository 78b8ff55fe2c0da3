"""Loaders for the real recordings kept outside the package (see each folder's NOTES.md).

The data are never shipped with bayesstrf: pass the folder where they live.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bayesstrf.data import Recording


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
        raise ValueError(f"path: expected an existing .npz file, found {str(path)!r}")
    with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as npz:
        names = npz["segment_names"].astype(str)
        specs = [npz[f"spec_{i}"].astype(float) for i in range(len(names))]
        counts = [npz[f"counts_{i}"].astype(float) for i in range(len(names))]
        dt = float(npz["dt"])
        freqs = npz["freqs_hz"].astype(float) if "freqs_hz" in npz.files else None
    if n_freq is not None:
        total = specs[0].shape[0]
        if isinstance(n_freq, bool) or not isinstance(n_freq, int) or not 1 <= n_freq <= total:
            raise ValueError(f"n_freq: expected an integer in 1..{total}, found {n_freq!r}")
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
