"""Figures of a fit: STRF, output nonlinearity, PSTH against prediction, model comparison;
summaries of a population (all STRFs, per-neuron elpd differences, r_hat and ESS); and the
rank histograms of a simulation-based calibration.

Every function builds a `matplotlib.figure.Figure` directly (no pyplot state is touched, no
window is opened) and returns it; save it with ``fig.savefig(path)``. Rates are shown in
spikes per second (spikes per bin divided by the fit's bin width ``dt``), lags in ms and
time in s. Neurons and segments are chosen by index or by id.
"""

from bayesstrf.viz.plotting.checks import plot_prior_predictive, plot_sbc
from bayesstrf.viz.plotting.fit import plot_nonlinearity, plot_psth, plot_strf
from bayesstrf.viz.plotting.summary import (
    plot_comparison,
    plot_convergence,
    plot_elpd_differences,
    plot_strf_grid,
)

__all__ = [
    "plot_strf", "plot_nonlinearity", "plot_psth", "plot_comparison", "plot_prior_predictive",
    "plot_strf_grid", "plot_elpd_differences", "plot_convergence", "plot_sbc",
]
