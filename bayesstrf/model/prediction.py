"""Posterior predictions for a (new) recording: rates and log-likelihoods, thinned and chunked.

Predictions use the STRF and intercept in spectrogram units and the raw activation
parameters, so they apply to any recording with the same frequency axis.
"""

from __future__ import annotations

import jax
import numpy as np
import xarray as xr

from bayesstrf.data import checks
from bayesstrf.data.recording import Recording
from bayesstrf.errors import InputError
from bayesstrf.model import activations
from bayesstrf.model.design import make_design
from bayesstrf.model.lnp import count_statistics, lnp_rate, poisson_log_likelihood

#: draws evaluated at once; memory is about CHUNK x N x T floats
CHUNK = 16


def _draws(fit: xr.DataTree, max_draws: int | None) -> tuple[dict, tuple[int, int]]:
    """Posterior values needed for a prediction, flattened over ``(chain, draw)`` and thinned
    evenly to at most ``max_draws``."""
    posterior = fit["posterior"].to_dataset()
    family = activations.get(fit.attrs["activation"])
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    keep = np.arange(shape[0] * shape[1])
    if max_draws is not None and max_draws < keep.size:
        keep = np.linspace(0, keep.size - 1, max_draws).round().astype(int)
    flat = {
        name: posterior[name].values.reshape((-1, *posterior[name].shape[2:]))[keep]
        for name in ("strf", "intercept", *family.params)
    }
    return flat, shape


def _check(fit: xr.DataTree, recording: Recording) -> None:
    checks.recording(recording)
    strf = fit["posterior"]["strf"]
    if recording.n_freq != strf.sizes["freq"] or recording.n_neurons != strf.sizes["neuron"]:
        raise InputError(
            f"recording: expected {strf.sizes['neuron']} neurons and {strf.sizes['freq']} "
            f"frequencies like the fit, found {recording.n_neurons} and {recording.n_freq}"
        )


def _map_draws(function, draws: dict, data) -> np.ndarray:
    """``function(draw, data)`` for every draw, ``CHUNK`` at a time, in one compiled program
    that takes the data (design, counts) as its argument: closed over, a large lag matrix
    would be baked into the program as a constant."""
    def mapped(draws, data):
        return jax.lax.map(lambda draw: function(draw, data), draws, batch_size=CHUNK)

    return np.asarray(jax.jit(mapped)(draws, data))


def predict(fit: xr.DataTree, recording: Recording, *, max_draws: int | None = 200
            ) -> xr.DataArray:
    """Posterior draws of the rate (spikes per bin) for every bin of ``recording``.

    Parameters
    ----------
    fit : DataTree from `bayesstrf.fit`
    recording : Recording
        Same neurons and frequency axis as the fitted one; its counts are not used.
    max_draws : int or None
        Evenly thinned posterior draws (None: all).

    Returns
    -------
    xarray.DataArray (sample, neuron, time)
        With a ``segment`` coordinate on ``time``.
    """
    _check(fit, recording)
    family = activations.get(fit.attrs["activation"])
    design = make_design(recording.spectrograms, fit["posterior"]["strf"].sizes["lag"])
    draws, _ = _draws(fit, max_draws)

    def rate(draw, design):
        values = {name: draw[name] for name in family.params}
        return lnp_rate(family, draw["strf"], draw["intercept"], values, design)

    return xr.DataArray(
        _map_draws(rate, draws, design),
        dims=("sample", "neuron", "time"),
        coords={"neuron": recording.neuron_ids,
                "segment": ("time", np.repeat(recording.segment_ids, recording.segment_lengths))},
        name="rate",
    )


def units(recording: Recording, block_bins: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    """The unit of every bin for a summed log-likelihood: its segment, or with ``block_bins``
    a block of at most that many consecutive bins within its segment.

    Returns
    -------
    index : int array (T,), labels : str array (U,), dim : "segment" or "block"
    """
    if block_bins is None:
        index = np.repeat(np.arange(recording.n_segments), recording.segment_lengths)
        return index, recording.segment_ids, "segment"
    if isinstance(block_bins, bool) or not isinstance(block_bins, int) or block_bins < 1:
        raise InputError(f"block_bins: expected a positive integer, found {block_bins!r}")
    index_parts: list[np.ndarray] = []
    labels: list[str] = []
    for segment, length in zip(recording.segment_ids, recording.segment_lengths, strict=True):
        blocks = -(-int(length) // block_bins)
        index_parts.append(len(labels) + np.arange(length) // block_bins)
        labels += [f"{segment}:{k}" for k in range(blocks)]
    return np.concatenate(index_parts), np.array(labels), "block"


def log_likelihood(fit: xr.DataTree, recording: Recording, *, block_bins: int | None = None
                   ) -> xr.DataArray:
    """Log-likelihood of ``recording``'s counts for every posterior draw, summed per segment
    (or per block of at most ``block_bins`` bins within a segment).

    Returns
    -------
    xarray.DataArray (chain, draw, neuron, segment) or (chain, draw, neuron, block)
    """
    _check(fit, recording)
    family = activations.get(fit.attrs["activation"])
    design = make_design(recording.spectrograms, fit["posterior"]["strf"].sizes["lag"])
    counts = count_statistics(recording.counts)
    index, labels, dim = units(recording, block_bins)
    draws, shape = _draws(fit, None)

    def per_unit(draw, data):
        return unit_log_likelihood(family, draw, *data, n_units=len(labels))

    values = _map_draws(per_unit, draws, (design, counts, index))
    return xr.DataArray(
        values.reshape(shape + values.shape[1:]),
        dims=("chain", "draw", "neuron", dim),
        coords={"chain": np.arange(shape[0]), "draw": np.arange(shape[1]),
                "neuron": recording.neuron_ids, dim: labels},
        name="counts",
    )


def unit_log_likelihood(family: activations.Activation, draw: dict, design, counts, index,
                        n_units: int):
    """One draw's Poisson log-likelihood summed per unit (`units`): ``(neuron, n_units)``.

    ``draw`` holds ``strf`` and ``intercept`` in spectrogram units and the family's raw
    parameters, each with a leading neuron axis.
    """
    values = {name: draw[name] for name in family.params}
    rate = lnp_rate(family, draw["strf"], draw["intercept"], values, design)
    per_bin = poisson_log_likelihood(rate, counts)
    return jax.ops.segment_sum(per_bin.T, index, num_segments=n_units).T
