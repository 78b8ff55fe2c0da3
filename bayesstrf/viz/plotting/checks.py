"""Figures of the checks before and around fitting: prior predictive draws, SBC rank
histograms."""

from __future__ import annotations

from typing import cast

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from bayesstrf.errors import InputError, InputTypeError
from bayesstrf.viz.plotting._common import _arviz_figure, _pick


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
def plot_sbc(result, *, title: str = "", level: float = 0.99) -> Figure:
    """The SBC ranks' PIT Delta-ECDFs (`arviz_plots.plot_ecdf_pit`), one panel per checked
    parameter.

    Each replicate's rank ``r`` in ``0 .. n_ranks - 1`` becomes the PIT value
    ``(r + 1/2) / n_ranks``; under a calibrated posterior these are uniform and the curve (the
    ECDF minus the uniform CDF) stays near 0.

    Parameters
    ----------
    result : bayesstrf.evaluation.validate.SBC
    title : str
        Figure title.
    level : float
        ArviZ's uniformity test runs at significance ``1 - level``: its p-value is written in
        each panel and the PIT values that contribute most to a rejection are marked.

    Returns
    -------
    Figure
        One axes per parameter, titled with its name (the chi-square p-values of
        ``result.p_values`` are the test `sbc` itself reports).
    """
    import arviz_plots

    from bayesstrf.evaluation.calibration import SBC

    if not isinstance(result, SBC):
        raise InputTypeError(
            f"result: expected a bayesstrf.evaluation.validate.SBC, found {type(result).__name__}")
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise InputError(f"level: expected a probability strictly between 0 and 1, found {level!r}")
    pit = xr.Dataset({str(name): ("replicate", (result.ranks[name].to_numpy(float) + 0.5)
                                  / result.n_ranks) for name in result.ranks.columns})
    fig = _arviz_figure(arviz_plots.plot_ecdf_pit, xr.DataTree.from_dict({"prior_sbc": pit}),
                        sample_dims=["replicate"], envelope_prob=level,
                        figure_kwargs={"layout": "constrained"})
    if title:
        fig.suptitle(title)
    return fig
