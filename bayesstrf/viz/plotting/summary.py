"""Summaries of a comparison and of a population: the elpd of each model, all STRFs on
one grid, per-neuron elpd differences, r_hat and ESS per neuron."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bayesstrf.errors import InputError, InputTypeError
from bayesstrf.evaluation.diagnostics import RHAT_MAX
from bayesstrf.viz.plotting._common import _arviz_figure, _check_table, _pick, _posterior, _prob


def plot_comparison(table) -> Figure:
    """Each model's elpd difference to the best, +- the se of that difference
    (`arviz_plots.plot_compare`), the best at the top at 0.

    Parameters
    ----------
    table : pandas.DataFrame
        Indexed by model name, with columns ``elpd``, ``elpd_diff`` (<= 0, ArviZ's sign) and
        ``dse``, as from `bayesstrf.evaluation.comparison.compare` or `arviz_stats.compare`;
        any row order.

    Returns
    -------
    Figure
        With one axes whose y tick labels are the model names, best at the top.
    """
    import arviz_plots
    import pandas as pd

    _check_table(table, ("elpd", "elpd_diff", "dse"))
    if table.empty:
        raise InputError("table: expected at least one model, found none")
    values = table[["elpd", "elpd_diff", "dse"]].apply(pd.to_numeric, errors="coerce")
    if not np.isfinite(values[["elpd", "elpd_diff"]].to_numpy(float)).all():
        raise InputError("table: expected finite values in columns 'elpd' and 'elpd_diff'")
    ranked = values.sort_values("elpd", ascending=False, kind="stable").fillna({"dse": 0.0})
    ranked.index = ranked.index.map(str)
    return _arviz_figure(arviz_plots.plot_compare, ranked, figure_kwargs={
        "figsize": (6, 1.2 + 0.5 * len(ranked)), "layout": "constrained"})


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


# ---- chains ------------------------------------------------------------------------------------
def activation_variables(fit: xr.DataTree) -> list[str]:
    """The fit's activation parameters on their natural scale: the constrained views, and the
    sampled parameters that have none (e.g. sigmoid's ``c``)."""
    from bayesstrf.model import activations

    family = activations.get(fit.attrs["activation"])
    raw = set(family.constrained.values())
    return [name for name in family.params if name not in raw] + list(family.constrained)


def plot_parameter_forest(fit: xr.DataTree, variable: str, *, prob: float = 0.89) -> Figure:
    """One per-neuron parameter's intervals, one line per neuron and chain
    (`arviz_plots.plot_forest`): chains that sampled the same posterior give aligned intervals.

    Parameters
    ----------
    fit : xarray.DataTree
    variable : str
        A posterior variable of dims ``(chain, draw, neuron)``, e.g. one of
        `activation_variables`.
    prob : float
        Probability of the thick equal-tailed interval (the thin one is 0.94).

    Returns
    -------
    Figure
        One row per neuron, one line per chain in each.
    """
    import arviz_plots

    post = _posterior(fit)
    if variable not in post or post[variable].dims != ("chain", "draw", "neuron"):
        per_neuron = [name for name in post.data_vars
                      if post[name].dims == ("chain", "draw", "neuron")]
        raise InputError(f"variable: expected a per-neuron parameter, one of {per_neuron}, "
                         f"found {variable!r}")
    rows = post.sizes["neuron"] * post.sizes["chain"]
    return _arviz_figure(arviz_plots.plot_forest, fit, var_names=[variable], combined=False,
                         ci_kind="eti", ci_probs=(_prob(prob), 0.94), figure_kwargs={
                             "figsize": (5, 0.8 + 0.12 * rows), "layout": "constrained"})


def plot_chains(fit: xr.DataTree, variable: str, neuron: int | str = 0) -> Figure:
    """One parameter's marginal density and rank Delta-ECDF, per chain
    (`arviz_plots.plot_rank_dist`), for a neuron; of a multi-dimensional variable (``strf``)
    the element with the largest r_hat. The figure to read when r_hat fails.

    Parameters
    ----------
    fit : xarray.DataTree
    variable : str
        A posterior variable, e.g. a diagnostics table's ``worst_rhat``.
    neuron : int or str
        Index or id.
    """
    import arviz_plots
    import arviz_stats

    post = _posterior(fit)
    if variable not in post:
        raise InputError(f"variable: expected one of {sorted(map(str, post.data_vars))}, found "
                         f"{variable!r}")
    index = _pick(neuron, post["neuron"].values, "neuron")
    values = post[variable]
    coords = {}
    if "neuron" in values.dims:  # not a population's shared site (pooling="activation")
        values = values.isel(neuron=index)
        coords = {"neuron": post["neuron"].values[index]}
    if values.ndim > 2:
        rhat = arviz_stats.rhat(values)
        worst = np.unravel_index(int(np.nanargmax(rhat.values)), rhat.shape)
        coords |= {dim: rhat[dim].values[i] if dim in rhat.coords else i
                   for dim, i in zip(rhat.dims, worst, strict=True)}
    # the divergences of that neuron's lanes, marked under the densities
    groups = {"posterior": post[[variable]]}
    if "sample_stats" in fit and "diverging" in fit["sample_stats"]:
        diverging = fit["sample_stats"]["diverging"]
        groups["sample_stats"] = xr.Dataset({"diverging": diverging.isel(neuron=index)
                                             if "neuron" in diverging.dims else diverging})
    fig = _arviz_figure(arviz_plots.plot_rank_dist, xr.DataTree.from_dict(groups),
                        var_names=[variable], coords=coords,
                        figure_kwargs={"figsize": (8, 2.6), "layout": "constrained"})
    fig.suptitle(f"{variable} [{', '.join(f'{k}={v}' for k, v in coords.items())}], per chain")
    return fig
