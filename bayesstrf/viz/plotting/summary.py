"""Summaries of a comparison and of a population: the elpd of each model, all STRFs on
one grid, per-neuron elpd differences, r_hat and ESS per neuron."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bayesstrf.errors import InputError, InputTypeError
from bayesstrf.evaluation.diagnostics import RHAT_MAX
from bayesstrf.viz.plotting._common import _check_table, _posterior


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
        `bayesstrf.evaluation.comparison.Comparison.per_neuron`: index levels ``neuron`` and
        ``model``,
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
        The bulk ESS required (`bayesstrf.evaluation.diagnostics` asks 100 per chain).
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
