"""`prior_predictive`: what the priors say before the data do.

Draws every parameter from the prior that `bayesstrf.fit` would use on the same recording
(activation priors are centred from each neuron's mean rate) and returns the implied STRFs
and rates, so that a user can check that the defaults give plausible rates (spikes per bin)
before fitting. Draws are evaluated one at a time: memory stays O(N T).
"""

from __future__ import annotations

import arviz_base as azb
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import xarray as xr
from numpyro.infer import Predictive

from bayesstrf.data import checks
from bayesstrf.data.recording import Recording
from bayesstrf.model import activations
from bayesstrf.model import strf as strf_priors
from bayesstrf.model.lnp import build_problem, rate_and_sites


def prior_predictive(
    recording: Recording,
    activation: str = "softplus",
    *,
    strf: str | object = "ridge",
    n_lags: int = 12,
    draws: int = 200,
    max_bins: int = 2000,
    seed: int = 0,
    priors: dict | None = None,
) -> xr.DataTree:
    """Prior draws of the model's parameters, STRFs and rates for a recording's stimulus.

    Parameters
    ----------
    recording : Recording
        Its stimulus and mean rates are used (the counts only through their mean).
    activation, strf, n_lags, priors
        As in `bayesstrf.fit`.
    draws : int
        Prior draws.
    max_bins : int
        The per-bin ``rate`` is kept on at most this many evenly spaced bins; ``mean_rate``
        uses every bin.
    seed : int

    Returns
    -------
    xarray.DataTree
        ``prior`` (the fit's posterior variables, ``(chain=1, draw, ...)``) and
        ``prior_predictive`` with ``rate (chain, draw, neuron, bin)`` and ``mean_rate
        (chain, draw, neuron)`` in spikes per bin; attrs ``observed_mean_rate`` (per neuron)
        and ``dt``.
    """
    checks.recording(recording)
    family, strf_prior = activations.get(activation), strf_priors.get(strf)
    n_lags, draws = checks.positive_int(n_lags, "n_lags"), checks.positive_int(draws, "draws")
    max_bins = checks.positive_int(max_bins, "max_bins")
    seed = checks.seed(seed)
    problem = build_problem(recording, family, strf_prior, n_lags, priors)
    n_bins = int(problem.design.valid.shape[0])
    bins = np.unique(np.linspace(0, n_bins - 1, min(max_bins, n_bins)).round().astype(int))

    def generative(design):
        rate = rate_and_sites(family, strf_prior, problem.priors, design, recording.n_neurons)
        numpyro.deterministic("mean_rate", rate.mean(-1))
        numpyro.deterministic("rate", rate[:, bins])

    predictive = Predictive(generative, num_samples=draws, parallel=False)
    sampled = predictive(jax.random.PRNGKey(seed), problem.design)
    samples = {name: np.asarray(value)[None] for name, value in sampled.items()}
    samples = strf_prior.completed(samples, jax.random.PRNGKey(seed + 1))
    predicted = {name: samples.pop(name) for name in ("rate", "mean_rate")}
    cube = ("neuron", "freq", "lag")
    dims = ({name: ("neuron",) for name in samples} | {"strf": cube} | dict(strf_prior.dims)
            | {"rate": ("neuron", "bin"), "mean_rate": ("neuron",)})
    observed = np.asarray(problem.counts.total.sum(1) / problem.counts.trials.sum(1))
    return azb.from_dict(
        {"prior": samples, "prior_predictive": predicted},
        dims=dims,
        coords={"neuron": recording.neuron_ids, "freq": recording.freqs,
                "lag": np.arange(n_lags), "bin": bins},
        attrs={"/": {"activation": family.name, "dt": recording.dt, "n_lags": n_lags,
                     "observed_mean_rate": jnp.asarray(observed).tolist()}},
    )
