"""Figures of a fit: STRF, output nonlinearity, PSTH against prediction, model comparison;
summaries of a population (all STRFs, per-neuron elpd differences, r_hat and ESS); the PIT
ECDFs of a simulation-based calibration; per-chain views for convergence checks.

Every function returns a `matplotlib.figure.Figure`; save it with ``fig.savefig(path)``. The
STRF-specific figures are built directly; the comparison, SBC and chain figures come from
`arviz_plots` (``plot_compare``, ``plot_ecdf_pit``, ``plot_forest``, ``plot_rank_dist``),
released from pyplot so that no state accumulates and no window opens. Rates are shown in
spikes per second (spikes per bin divided by the fit's bin width ``dt``), lags in ms and
time in s. Neurons and segments are chosen by index or by id.
"""

from bayesstrf.viz.plotting.checks import plot_prior_predictive, plot_sbc
from bayesstrf.viz.plotting.fit import plot_nonlinearity, plot_psth, plot_strf
from bayesstrf.viz.plotting.summary import (
    activation_variables,
    plot_chains,
    plot_comparison,
    plot_convergence,
    plot_elpd_differences,
    plot_parameter_forest,
    plot_strf_grid,
)

__all__ = [
    "plot_strf", "plot_nonlinearity", "plot_psth", "plot_comparison", "plot_prior_predictive",
    "plot_strf_grid", "plot_elpd_differences", "plot_convergence", "plot_sbc",
    "plot_parameter_forest", "plot_chains", "activation_variables",
]
