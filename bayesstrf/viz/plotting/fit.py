"""Figures of one fit: its STRF, output nonlinearity and PSTH against the prediction."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from bayesstrf.data.recording import Recording
from bayesstrf.evaluation.metrics import cc_norm, cc_raw
from bayesstrf.model import activations
from bayesstrf.model.design import make_design, strf_drive
from bayesstrf.model.prediction import predict
from bayesstrf.viz.plotting._common import (
    _check_recording,
    _interval,
    _max_draws,
    _pick,
    _posterior,
    _prob,
    _thin,
)


def plot_strf(fit: xr.DataTree, neuron: int | str = 0, *, prob: float = 0.95) -> Figure:
    """Posterior mean and standard deviation of one neuron's STRF.

    Parameters
    ----------
    fit : DataTree from `bayesstrf.fit`
    neuron : int or str
        Index or id of the neuron.
    prob : float
        Weights whose central ``prob`` posterior interval excludes 0 are marked with
        dots (white, black edge) on the mean panel.

    Returns
    -------
    Figure
        ``fig.axes``: the mean panel, the sd panel, then their two colorbars. Images are
        ``(freq, lag)``: frequency on y (labelled with the fit's frequency values), lag on x
        in ms. The mean uses a diverging colormap with limits symmetric about 0.
    """
    post = _posterior(fit)
    prob = _prob(prob)
    index = _pick(neuron, post["neuron"].values, "neuron")
    name = str(post["neuron"].values[index])
    draws = post["strf"].isel(neuron=index).transpose("chain", "draw", "freq", "lag").values
    draws = draws.reshape((-1, *draws.shape[2:]))
    mean, sd = draws.mean(axis=0), draws.std(axis=0)
    lower, upper = _interval(draws, prob)
    excludes = (lower > 0) | (upper < 0)

    freqs = np.asarray(post["freq"].values, dtype=float)
    n_freq, n_lags = mean.shape
    ms = float(fit.attrs["dt"]) * 1e3
    extent = (-0.5 * ms, (n_lags - 0.5) * ms, -0.5, n_freq - 0.5)
    limit = float(np.abs(mean).max()) or 1.0

    def freq_label(value, _position):
        i = int(round(value))
        return f"{freqs[i]:g}" if 0 <= i < n_freq and abs(value - i) < 1e-6 else ""

    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax_mean, ax_sd = fig.subplots(1, 2, sharey=True)
    image = ax_mean.imshow(mean, origin="lower", aspect="auto", extent=extent, cmap="RdBu_r",
                           vmin=-limit, vmax=limit, interpolation="nearest")
    fig.colorbar(image, ax=ax_mean, label="mean weight")
    rows, cols = np.nonzero(excludes)
    ax_mean.scatter(cols * ms, rows, s=24, facecolors="w", edgecolors="k", linewidths=1,
                    label=f"{prob:.0%} interval excludes 0")
    ax_mean.set_title(f"{name}: posterior mean ({excludes.sum()} marked, {prob:.0%})")
    spread = ax_sd.imshow(sd, origin="lower", aspect="auto", extent=extent, cmap="viridis",
                          vmin=0, interpolation="nearest")
    fig.colorbar(spread, ax=ax_sd, label="sd of weight")
    ax_sd.set_title(f"{name}: posterior sd")
    for ax in (ax_mean, ax_sd):
        ax.set_xlabel("lag (ms)")
        ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(freq_label))
    ax_mean.set_ylabel("frequency")
    return fig


# ---- nonlinearity ----------------------------------------------------------------------------
def plot_nonlinearity(fit: xr.DataTree, recording: Recording, neuron: int | str = 0, *,
                      prob: float = 0.9, max_draws: int | None = 200) -> Figure:
    """Output nonlinearity of one neuron over the histogram of its drive on ``recording``.

    The drive is ``strf * stimulus + intercept`` with the posterior-mean STRF and intercept;
    the curve is the pointwise posterior mean of the activation (spikes/s) over at most
    ``max_draws`` evenly thinned draws, with a central ``prob`` band.

    Parameters
    ----------
    fit : DataTree from `bayesstrf.fit`
    recording : Recording
        Same neurons, frequency axis and ``dt`` as the fit.
    neuron : int or str
        Index or id of the neuron.
    prob : float
        Probability of the band.
    max_draws : int or None
        Posterior draws evaluated (None: all).

    Returns
    -------
    Figure
        ``fig.axes``: the curve axes (x: drive, y: rate in spikes/s) and its twin holding the
        histogram of the drive (right axis: number of time bins).
    """
    post = _posterior(fit)
    prob, max_draws = _prob(prob), _max_draws(max_draws)
    index = _pick(neuron, post["neuron"].values, "neuron")
    _check_recording(fit, recording)
    name = str(post["neuron"].values[index])
    family = activations.get(fit.attrs["activation"])
    dt = float(fit.attrs["dt"])

    strf = post["strf"].transpose("chain", "draw", "neuron", "freq", "lag")
    weights = strf.mean(("chain", "draw")).values[index : index + 1]
    intercept = float(post["intercept"].isel(neuron=index).mean())
    design = make_design(recording.spectrograms, strf.sizes["lag"])
    drive = np.asarray(strf_drive(np.asarray(weights, np.float32), design), np.float64)[0]
    drive = drive + intercept

    span = float(np.ptp(drive)) or 1.0
    grid = np.linspace(drive.min() - 0.1 * span, drive.max() + 0.1 * span, 200)
    values = {p: _thin(post[p].isel(neuron=index).values, max_draws) for p in family.params}
    n_draws = (next(iter(values.values())).shape[0] if values
               else _thin(post["intercept"].isel(neuron=index).values, max_draws).shape[0])
    curves = np.asarray(
        family.rate(np.tile(grid[:, None], (1, n_draws)).astype(np.float32), values), np.float64
    ) / dt  # (grid, draw)
    lower, upper = _interval(curves, prob, axis=1)

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    twin = ax.twinx()
    twin.hist(drive, bins=30, color="0.8", label="drive")
    twin.set_ylabel("time bins")
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.fill_between(grid, lower, upper, color="C0", alpha=0.3, linewidth=0,
                    label=f"{prob:.0%} interval")
    ax.plot(grid, curves.mean(axis=1), color="C0", label="posterior mean")
    ax.set_xlabel("drive (posterior-mean STRF)")
    ax.set_ylabel("rate (spikes/s)")
    ax.set_title(f"{name}: {family.name} activation")
    ax.legend(loc="upper left")
    return fig


# ---- PSTH ------------------------------------------------------------------------------------
def plot_psth(fit: xr.DataTree, recording: Recording, neuron: int | str = 0, *,
              segment: int | str = 0, prob: float = 0.9, max_draws: int | None = 200) -> Figure:
    """Observed PSTH against the predicted rate for one neuron and one segment.

    The PSTH is, per bin, the mean count over the trials not missing there (a gap where all are
    missing); the prediction is the posterior mean of `bayesstrf.model.prediction.predict` with a
    central ``prob`` band. Both in spikes/s against time in s (bin centres). The title gives CCnorm
    (`bayesstrf.evaluation.metrics.cc_norm`) when the segment has at least 2 complete trials, else
    CCraw.

    Parameters
    ----------
    fit, recording, prob, max_draws
        As in `plot_nonlinearity`.
    neuron, segment : int or str
        Index or id of the neuron and of the recording's segment.

    Returns
    -------
    Figure
        With one axes holding the lines ``observed`` and ``predicted`` and the band.
    """
    post = _posterior(fit)
    prob, max_draws = _prob(prob), _max_draws(max_draws)
    index = _pick(neuron, post["neuron"].values, "neuron")
    _check_recording(fit, recording)
    seg = _pick(segment, recording.segment_ids, "segment")
    name, seg_name = str(post["neuron"].values[index]), str(recording.segment_ids[seg])
    dt = recording.dt

    observed = recording.counts[seg][index]  # (R, T)
    present = (~np.isnan(observed)).sum(axis=0)
    totals = np.nansum(observed, axis=0)
    psth = np.full(observed.shape[1], np.nan)
    psth[present > 0] = totals[present > 0] / present[present > 0]

    # predict only this segment; its counts may lack complete trials, and predict ignores them
    alone = Recording([recording.spectrograms[seg]],
                      [np.zeros((recording.n_neurons, 1, observed.shape[1]))], dt,
                      freqs=recording.freqs, neuron_ids=recording.neuron_ids,
                      segment_ids=[seg_name])
    rates = predict(fit, alone, max_draws=max_draws)
    draws = rates.isel(neuron=index).values  # (sample, T), spikes per bin
    mean = draws.mean(axis=0)
    lower, upper = _interval(draws, prob)

    complete = int((~np.isnan(observed).any(axis=1)).sum())
    if complete >= 2:
        score = f"CCnorm = {cc_norm(mean, observed):.3f}"
    elif (present > 0).any():
        score = f"CCraw = {cc_raw(mean, observed):.3f}"
    else:
        score = "no observed counts"

    time = (np.arange(observed.shape[1]) + 0.5) * dt
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(time, psth / dt, color="0.3", linewidth=1,
            label=f"observed ({observed.shape[0]} trials)")
    ax.fill_between(time, lower / dt, upper / dt, color="C1", alpha=0.3, linewidth=0,
                    label=f"{prob:.0%} interval")
    ax.plot(time, mean / dt, color="C1", linewidth=1.5, label="predicted (posterior mean)")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("rate (spikes/s)")
    ax.set_title(f"{name}, segment {seg_name}: {score}")
    ax.legend(loc="upper right")
    return fig


# ---- model comparison ------------------------------------------------------------------------
