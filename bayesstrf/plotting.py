"""Figures of a fit: STRF, output nonlinearity, PSTH against prediction, model comparison;
summaries of a population (all STRFs, per-neuron elpd differences, r_hat and ESS); and the
rank histograms of a simulation-based calibration.

Every function builds a `matplotlib.figure.Figure` directly (no pyplot state is touched, no
window is opened) and returns it; save it with ``fig.savefig(path)``. Rates are shown in
spikes per second (spikes per bin divided by the fit's bin width ``dt``), lags in ms and
time in s. Neurons and segments are chosen by index or by id.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from bayesstrf import activations, checks
from bayesstrf.data import Recording
from bayesstrf.design import make_design, strf_drive
from bayesstrf.diagnostics import RHAT_MAX
from bayesstrf.errors import InputError, InputTypeError
from bayesstrf.metrics import cc_norm, cc_raw
from bayesstrf.prediction import predict

__all__ = [
    "plot_strf", "plot_nonlinearity", "plot_psth", "plot_comparison", "plot_prior_predictive",
    "plot_strf_grid", "plot_elpd_differences", "plot_convergence", "plot_sbc",
]


# ---- argument checks -------------------------------------------------------------------------
def _pick(item, ids: np.ndarray, name: str) -> int:
    """Index of ``item`` (an id in ``ids`` or an index, negative allowed) or a ValueError."""
    names = [str(i) for i in np.asarray(ids)]
    if isinstance(item, str | np.str_) and str(item) in names:
        return names.index(str(item))
    if (isinstance(item, int | np.integer) and not isinstance(item, bool | np.bool_)
            and -len(names) <= item < len(names)):
        return int(item) % len(names)
    raise InputError(
        f"{name}: expected one of the {name} ids {names} or an index 0..{len(names) - 1}, "
        f"found {item!r}"
    )


def _prob(prob) -> float:
    if isinstance(prob, bool) or not isinstance(prob, int | float | np.number) or not (
        0 < prob < 1
    ):
        raise InputError(f"prob: expected a probability strictly between 0 and 1, found {prob!r}")
    return float(prob)


def _max_draws(max_draws) -> int | None:
    if max_draws is None:
        return None
    if isinstance(max_draws, bool) or not isinstance(max_draws, int | np.integer) or (
        max_draws < 1
    ):
        raise InputError(f"max_draws: expected a positive integer or None, found {max_draws!r}")
    return int(max_draws)


def _posterior(fit) -> xr.Dataset:
    if not isinstance(fit, xr.DataTree) or "posterior" not in fit.children:
        raise InputTypeError(
            f"fit: expected the xarray.DataTree of bayesstrf.fit, found {type(fit).__name__}"
        )
    return fit["posterior"].to_dataset()


def _check_recording(fit, recording) -> None:
    """The recording must have the fit's neurons, frequency axis and bin width."""
    checks.recording(recording)
    strf = fit["posterior"]["strf"]
    neurons = [str(i) for i in strf["neuron"].values]
    problems = []
    if recording.n_freq != strf.sizes["freq"]:
        problems.append(f"{strf.sizes['freq']} frequencies, found {recording.n_freq}")
    if [str(i) for i in recording.neuron_ids] != neurons:
        problems.append(f"neurons {neurons}, found {list(recording.neuron_ids)}")
    if not np.isclose(recording.dt, float(fit.attrs["dt"])):
        problems.append(f"dt = {fit.attrs['dt']} s, found {recording.dt}")
    if problems:
        raise InputError("recording: expected the fit's " + "; ".join(problems))


def _thin(values: np.ndarray, max_draws: int | None) -> np.ndarray:
    """``(chain, draw, ...)`` flattened to ``(sample, ...)`` and thinned evenly like
    `bayesstrf.prediction.predict`."""
    flat = values.reshape((-1, *values.shape[2:]))
    if max_draws is not None and max_draws < flat.shape[0]:
        flat = flat[np.linspace(0, flat.shape[0] - 1, max_draws).round().astype(int)]
    return flat


def _interval(draws: np.ndarray, prob: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Central ``prob`` interval of ``draws`` along ``axis`` (numpy's linear quantiles)."""
    lower, upper = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=axis)
    return lower, upper


# ---- STRF ------------------------------------------------------------------------------------
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

    The PSTH is, per bin, the mean count over the trials not missing there (a gap where all
    are missing); the prediction is the posterior mean of `bayesstrf.prediction.predict` with a
    central ``prob`` band. Both in spikes/s against time in s (bin centres). The title gives
    CCnorm (`bayesstrf.metrics.cc_norm`) when the segment has at least 2 complete trials,
    else CCraw.

    Parameters
    ----------
    fit : DataTree from `bayesstrf.fit`
    recording : Recording
        Same neurons, frequency axis and ``dt`` as the fit.
    neuron, segment : int or str
        Index or id of the neuron and of the recording's segment.
    prob : float
        Probability of the band.
    max_draws : int or None
        Posterior draws evaluated (None: all).

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
def plot_comparison(table) -> Figure:
    """ELPD of several models with +-1 se error bars, the best at the top.

    Parameters
    ----------
    table : pandas.DataFrame
        Indexed by model name, with columns ``elpd`` and ``se`` (as from
        `arviz_stats.compare`); when ``elpd_diff`` and ``dse`` are present too, each
        non-best model also gets a grey triangle at ``best elpd - elpd_diff`` with +-``dse``
        (the se of the difference), just below its own point.

    Returns
    -------
    Figure
        With one axes; its first line holds the elpd points, top to bottom in decreasing
        elpd, and the y tick labels are the model names.
    """
    import pandas as pd

    _check_table(table, ("elpd", "se"))
    if table.empty:
        raise InputError("table: expected at least one model, found none")
    elpd = pd.to_numeric(table["elpd"], errors="coerce").to_numpy(float)
    se = pd.to_numeric(table["se"], errors="coerce").to_numpy(float)
    if not np.isfinite(elpd).all():
        raise InputError("table: expected finite values in column 'elpd'")

    order = np.argsort(-elpd, kind="stable")
    names = [str(table.index[i]) for i in order]
    n = len(order)
    y = np.arange(n)[::-1].astype(float)  # best at the top
    fig = Figure(figsize=(6, 1.2 + 0.5 * n), layout="constrained")
    ax = fig.add_subplot()
    ax.errorbar(elpd[order], y, xerr=np.nan_to_num(se[order]), fmt="o", color="k",
                capsize=3, label="elpd +- se")
    ax.axvline(elpd[order[0]], color="0.6", linestyle="--", linewidth=1)
    if {"elpd_diff", "dse"} <= set(table.columns) and n > 1:
        diff = pd.to_numeric(table["elpd_diff"], errors="coerce").to_numpy(float)[order[1:]]
        dse = pd.to_numeric(table["dse"], errors="coerce").to_numpy(float)[order[1:]]
        ax.errorbar(elpd[order[0]] - np.abs(diff), y[1:] - 0.2, xerr=np.nan_to_num(dse),
                    fmt="^", color="0.5", capsize=3, label="difference +- dse")
    ax.set_yticks(y, names)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel("elpd (log scale; higher is better)")
    ax.legend(loc="best", fontsize="small")
    return fig


def _check_table(table, columns: tuple[str, str]) -> None:
    """Refuse a ``table`` argument that is not a DataFrame with both ``columns``."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise InputTypeError(f"table: expected a pandas DataFrame, found {type(table).__name__}")
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise InputError(
            f"table: expected columns '{columns[0]}' and '{columns[1]}', missing {missing} "
            f"(found {list(table.columns)})"
        )


# ---- population summaries --------------------------------------------------------------------
def plot_strf_grid(fit: xr.DataTree, *, columns: int = 10) -> Figure:
    """Posterior-mean STRF of every neuron, one small tile each, in the fit's neuron order.

    Each tile is scaled by its own neuron's largest absolute mean weight, so that every shape
    is visible whatever its amplitude: one diverging colour scale from -1 to 1 serves all.

    Parameters
    ----------
    fit : DataTree from `bayesstrf.fit`
    columns : int
        Tiles per row.

    Returns
    -------
    Figure
        With one axes (then its colorbar) holding one image per neuron, frequency upwards and
        lag to the right, each with the neuron id as a text label above it.
    """
    post = _posterior(fit)
    if isinstance(columns, bool) or not isinstance(columns, int | np.integer) or columns < 1:
        raise InputError(f"columns: expected a positive integer, found {columns!r}")
    mean = post["strf"].mean(("chain", "draw")).transpose("neuron", "freq", "lag").values
    names = [str(i) for i in post["neuron"].values]
    n_neurons, n_freq, n_lags = mean.shape
    columns = min(int(columns), n_neurons)
    rows = -(-n_neurons // columns)
    limit = np.abs(mean).max(axis=(1, 2))
    scaled = mean / np.where(limit > 0, limit, 1.0)[:, None, None]

    fig = Figure(figsize=(0.95 * columns + 1.0, 0.95 * rows + 0.6), layout="constrained")
    ax = fig.add_subplot()
    for k, (tile, name) in enumerate(zip(scaled, names, strict=True)):
        row, column = divmod(k, columns)
        image = ax.imshow(tile, origin="lower", extent=(column, column + 0.9, -row - 0.78, -row),
                          cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.text(column + 0.45, -row + 0.02, name, ha="center", va="bottom", fontsize=6,
                clip_on=True)
    ax.set_xlim(-0.05, columns - 0.05)
    ax.set_ylim(-rows + 0.1, 0.2)
    ax.set_aspect("auto")
    ax.set_axis_off()
    fig.colorbar(image, ax=ax, fraction=0.03, label="weight / neuron's largest |weight|")
    ax.set_title(f"posterior-mean STRFs of {n_neurons} neurons ({n_freq} frequencies up x "
                 f"{n_lags} lags right; each tile on its own symmetric scale)", fontsize=9)
    return fig


def plot_elpd_differences(per_neuron, reference: str) -> Figure:
    """Histogram over neurons of each model's elpd minus that of ``reference``.

    Parameters
    ----------
    per_neuron : pandas.DataFrame
        `bayesstrf.comparison.Comparison.per_neuron`: index levels ``neuron`` and ``model``,
        column ``elpd``.
    reference : str
        The model subtracted, e.g. the first-ranked one (``comparison.table.index[0]``).

    Returns
    -------
    Figure
        One axes per other model (shared x), titled with the number of neurons it predicts
        better than ``reference``; a dashed line marks 0.
    """
    import pandas as pd

    if not isinstance(per_neuron, pd.DataFrame):
        raise InputTypeError(
            f"per_neuron: expected a pandas DataFrame, found {type(per_neuron).__name__}"
        )
    if "elpd" not in per_neuron.columns or list(per_neuron.index.names) != ["neuron", "model"]:
        raise InputError(
            f"per_neuron: expected index levels ['neuron', 'model'] and a column 'elpd', found "
            f"index levels {list(per_neuron.index.names)} and columns {list(per_neuron.columns)}"
        )
    elpd = pd.to_numeric(per_neuron["elpd"], errors="coerce").unstack("model")
    if reference not in elpd.columns or elpd.shape[1] < 2:
        raise InputError(
            f"reference: expected one of at least two models {list(elpd.columns)}, "
            f"found {reference!r}"
        )
    others = [model for model in elpd.columns if model != reference]
    diff = elpd[others].sub(elpd[reference], axis=0)
    finite = diff.to_numpy(float)[np.isfinite(diff.to_numpy(float))]
    edges = np.histogram_bin_edges(finite, bins=min(30, max(5, len(elpd) // 3)))

    fig = Figure(figsize=(7, 0.6 + 1.7 * len(others)), layout="constrained")
    axes = fig.subplots(len(others), 1, sharex=True, squeeze=False)[:, 0]
    for ax, model in zip(axes, others, strict=True):
        values = diff[model].dropna().to_numpy(float)
        ax.hist(values, bins=edges, color="C0")
        ax.axvline(0, color="0.4", linestyle="--", linewidth=1)
        ax.set_title(f"{model} - {reference}: higher for {(values > 0).sum()} of "
                     f"{values.size} neurons", fontsize=9)
        ax.set_ylabel("neurons")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel(f"elpd difference per neuron (model - {reference}; < 0: {reference} "
                        "predicts better)")
    return fig


def plot_convergence(table, *, ess_min: float, rhat_max: float = RHAT_MAX) -> Figure:
    """Worst r_hat and smallest bulk ESS of each neuron, against their thresholds.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per neuron with columns ``max_rhat`` and ``min_ess_bulk``, as
        `bayesstrf.diagnose(...).table`.
    ess_min : float
        The bulk ESS required (`bayesstrf.diagnostics` asks 100 per chain).
    rhat_max : float
        The r_hat allowed.

    Returns
    -------
    Figure
        Two axes: r_hat, then bulk ESS (log scale), each against the neuron's position in
        ``table``; points failing the threshold (the dashed line) in red.
    """

    _check_table(table, ("max_rhat", "min_ess_bulk"))
    for name, value in (("ess_min", ess_min), ("rhat_max", rhat_max)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise InputError(f"{name}: expected a positive number, found {value!r}")
    rhat = table["max_rhat"].to_numpy(float)
    ess = table["min_ess_bulk"].to_numpy(float)
    position = np.arange(len(table))
    fig = Figure(figsize=(10, 2.8), layout="constrained")
    ax_rhat, ax_ess = fig.subplots(1, 2)
    for ax, values, bad, line, label in (
        (ax_rhat, rhat, rhat >= rhat_max, rhat_max, f"r_hat {rhat_max:g}"),
        (ax_ess, ess, ess < ess_min, ess_min, f"bulk ESS {ess_min:g}"),
    ):
        ax.scatter(position[~bad], values[~bad], s=10, color="C0")
        ax.scatter(position[bad], values[bad], s=10, color="C3")
        ax.axhline(line, color="0.4", linestyle="--", linewidth=1, label=label)
        ax.set_xlabel("neuron (position in the recording)")
        ax.legend(loc="best", fontsize="small")
    undefined = "; undefined (1 chain)" if np.isnan(rhat).all() else ""
    ax_rhat.set_title(f"worst r_hat: {(rhat >= rhat_max).sum()} of {len(rhat)} neurons "
                      f">= {rhat_max:g}{undefined}", fontsize=9)
    ax_ess.set_title(f"smallest bulk ESS: {(ess < ess_min).sum()} of {len(ess)} neurons "
                     f"< {ess_min:g}", fontsize=9)
    ax_rhat.set_ylabel("max r_hat")
    ax_ess.set_ylabel("min bulk ESS")
    ax_ess.set_yscale("log")
    return fig


# ---- prior predictive ------------------------------------------------------------------------
def plot_prior_predictive(prior: xr.DataTree, neuron: int | str = 0, *,
                          n_strfs: int = 4) -> Figure:
    """Prior STRF draws and the implied rate distribution of one neuron.

    Parameters
    ----------
    prior : DataTree from `bayesstrf.prior_predictive`
    neuron : int or str
    n_strfs : int
        STRF draws shown (the first ones).

    Returns
    -------
    Figure
        ``fig.axes``: ``n_strfs`` STRF panels (``(freq, lag)``, each with its own symmetric
        colour range), then the histogram of the prior rate (spikes per second, log axis) over
        draws and bins, with the recording's observed mean rate as a vertical line.
    """
    draws = cast(xr.DataArray, prior["prior"]["strf"])
    index = _pick(neuron, draws["neuron"].values, "neuron")
    if isinstance(n_strfs, bool) or not isinstance(n_strfs, int) or not (
            1 <= n_strfs <= draws.sizes["draw"]):
        raise InputError(
            f"n_strfs: expected an integer in 1..{draws.sizes['draw']}, found {n_strfs!r}"
        )
    name = str(draws["neuron"].values[index])
    dt = float(prior.attrs["dt"])
    fig = Figure(figsize=(3 * n_strfs + 4, 3.2), layout="constrained")
    axes = fig.subplots(1, n_strfs + 1, gridspec_kw={"width_ratios": [1] * n_strfs + [1.6]})
    for k, ax in enumerate(axes[:-1]):
        weights = draws.isel(chain=0, draw=k, neuron=index).transpose("freq", "lag").values
        limit = float(np.abs(weights).max()) or 1.0
        ax.imshow(weights, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-limit,
                  vmax=limit, interpolation="nearest")
        ax.set_title(f"prior draw {k}")
        ax.set_xlabel("lag (bins)")
    axes[0].set_ylabel("frequency channel")
    rate = cast(xr.DataArray, prior["prior_predictive"]["rate"]).isel(neuron=index).values
    rate = rate.ravel() / dt
    positive = rate[rate > 0]
    bins = np.geomspace(max(positive.min(), 1e-3), max(positive.max(), 1e-2), 50)
    axes[-1].hist(positive, bins=bins, color="0.6")
    axes[-1].set_xscale("log")
    observed = float(prior.attrs["observed_mean_rate"][index]) / dt
    axes[-1].axvline(observed, color="C3", label=f"observed mean {observed:.3g}/s")
    axes[-1].set_xlabel("prior rate (spikes/s)")
    axes[-1].set_ylabel("draws x bins")
    axes[-1].set_title(f"{name}: implied rates")
    axes[-1].legend(loc="upper left", fontsize="small")
    return fig


# ---- simulation-based calibration ------------------------------------------------------------
def plot_sbc(result, *, title: str = "", level: float = 0.99, fig=None) -> Figure:
    """Rank histograms of an SBC run, one panel per checked parameter.

    Parameters
    ----------
    result : bayesstrf.validate.SBC
    title : str
        Figure title.
    level : float
        Probability of the grey band: where each bin's count falls with that probability
        when ranks are uniform (binomial quantiles).
    fig : Figure or SubFigure, optional
        Where to draw (e.g. one subfigure per run); a new figure by default.

    Returns
    -------
    Figure
        ``fig`` or the new figure: one axes per parameter, titled with its name and
        chi-square p-value.
    """
    from scipy.stats import binom

    from bayesstrf.calibration import SBC, rank_histogram

    if not isinstance(result, SBC):
        raise InputTypeError(
            f"result: expected a bayesstrf.validate.SBC, found {type(result).__name__}")
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise InputError(f"level: expected a probability strictly between 0 and 1, found {level!r}")
    names = list(result.ranks.columns)
    replicates = len(result.ranks)
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    if fig is None:
        fig = Figure(figsize=(2.6 * columns, 2.0 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    low, high = binom.interval(level, replicates, 1 / result.bins)
    for ax, name in zip(axes, names, strict=False):
        counts = rank_histogram(result.ranks[name].to_numpy(int), result.n_ranks, result.bins)
        ax.axhspan(low, high, color="0.85", zorder=0)
        ax.bar(np.arange(result.bins), counts, width=0.9, color="C0")
        ax.set_title(f"{name}\np = {result.p_values[name]:.2f}", fontsize="small")
        ax.set_xticks([])
    for ax in axes[len(names):]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig
