"""PSIS-LOO made reliable where Pareto k is high: importance-weighted moment matching.

A unit (a block of bins of one neuron, `bayesstrf.model.prediction.units`) whose leave-one-out
posterior is far from the full posterior gives PSIS a Pareto k above 0.7: its LOO estimate is
unreliable. Moment matching (Paananen et al. 2021, `arviz_stats.loo_moment_match`) moves the
posterior draws, in the unconstrained space, so that their mean and covariance match the
importance-weighted ones of the leave-one-out posterior, and weights them again: no refit.
It needs the model's log density and the unit's log-likelihood at any unconstrained point;
`loo_moment_matched` rebuilds both from the fit's attrs and the recording it was fitted to.
"""

from __future__ import annotations

import json
import warnings
from typing import cast

import arviz_stats as azs
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.flatten_util import ravel_pytree
from numpyro.distributions.transforms import biject_to
from numpyro.infer.util import constrain_fn, potential_energy

from bayesstrf.data.io import prior_description
from bayesstrf.data.recording import Recording
from bayesstrf.errors import InputError
from bayesstrf.inference.warmup import latent_supports
from bayesstrf.model import activations
from bayesstrf.model import strf as strf_priors
from bayesstrf.model.design import make_design
from bayesstrf.model.lnp import count_statistics, make_model, restore_priors
from bayesstrf.model.prediction import unit_log_likelihood, units

#: Draws evaluated at once (memory ~ CHUNK x N x T floats).
CHUNK = 64


def fitted_model(fit: xr.DataTree, recording: Recording):
    """The fit's NumPyro model, data and priors, rebuilt from its attrs and ``constant_data``
    on ``recording``.

    Returns
    -------
    model, args, kwargs, family

    Raises
    ------
    ValueError
        If ``recording`` is not the one the fit was made on (stimulus normalisation or shapes).
    """
    family = activations.get(fit.attrs["activation"])
    strf_prior = strf_priors.from_spec(json.loads(fit.attrs["strf_prior"]))
    constant = fit["constant_data"].to_dataset()
    priors = restore_priors(prior_description(constant))
    design = make_design(recording.spectrograms, int(fit.attrs["n_lags"]))
    if (recording.n_neurons != fit["posterior"].sizes["neuron"] or not np.allclose(
            np.asarray(design.mean), constant["stimulus_mean"], rtol=1e-5, atol=1e-6)):
        raise InputError(
            "recording: expected the recording the fits were made on (its neurons and "
            "stimulus), found a different one")
    model = make_model(family, strf_prior, priors, recording.n_neurons,
                       json.loads(fit.attrs["pooling"]))
    return model, (design, count_statistics(recording.counts)), {"priors": priors}, family


def holds_every_site(fit: xr.DataTree, recording: Recording) -> bool:
    """Whether the fit's posterior holds every latent site of its model, as moment matching
    and warm-started refits need; a low-rank STRF prior keeps only its identified ones."""
    model, args, _, _ = fitted_model(fit, recording)
    return set(latent_supports(model, args)) <= set(fit["posterior"].data_vars)


def unconstrained_draws(fit: xr.DataTree, model, args: tuple):
    """The fit's draws of the model's latent sites, unconstrained and flattened.

    Returns
    -------
    flat : array (chain * draw, D)
    unravel : callable
        A row of ``flat`` -> dict of sites (one draw, as the model's potential takes it).
    """
    posterior = fit["posterior"]
    latent = {name: biject_to(support).inv(jnp.asarray(posterior[name].values, jnp.float32))
              for name, support in latent_supports(model, args).items()}
    rows = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), latent)
    flat = jax.vmap(lambda point: ravel_pytree(point)[0])(rows)
    return flat, ravel_pytree(jax.tree.map(lambda x: x[0], rows))[1]


def loo_moment_matched(fit: xr.DataTree, recording: Recording, loo_tree: xr.DataTree,
                       loo: azs.ELPDData, block_bins: int, k_max: float) -> azs.ELPDData:
    """``loo`` (pointwise PSIS-LOO over the units of ``loo_tree``) with every unit whose
    Pareto k exceeds ``k_max`` moment matched.

    Parameters
    ----------
    fit : DataTree from `bayesstrf.fit`, made on ``recording``
    recording : Recording
    loo_tree : DataTree
        The fit's posterior and its log-likelihood ``counts (chain, draw, unit)``, ``unit``
        stacking ``(neuron, block)`` as `bayesstrf.evaluation.comparison.loo_tree` builds it.
    loo : ELPDData
        ``arviz_stats.loo(loo_tree, pointwise=True)``.
    block_bins : int
        The units' length (`bayesstrf.model.prediction.units`).
    k_max : float
        Pareto k above which a unit is moment matched.
    """
    model, args, kwargs, family = fitted_model(fit, recording)
    posterior = fit["posterior"]
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    flat, unravel = unconstrained_draws(fit, model, args)
    index, labels, _ = units(recording, block_bins)
    data = (args, kwargs, jnp.asarray(index))

    def log_density(x, data):
        args, kwargs, _ = data
        return -potential_energy(model, args, kwargs, unravel(x))

    def unit_log_lik(x, data):
        args, kwargs, index = data
        draw = constrain_fn(model, args, kwargs, unravel(x), return_deterministic=True)
        return unit_log_likelihood(family, draw, *args, index, n_units=len(labels))

    over_draws = jax.jit(lambda f, x, data: jax.lax.map(lambda v: f(v, data), x,
                                                        batch_size=CHUNK), static_argnums=0)
    neuron_of_unit = loo_tree["log_likelihood"]["counts"]["neuron"].values
    block_of_unit = loo_tree["log_likelihood"]["counts"]["block"].values
    position = {label: k for k, label in enumerate(labels)}
    neurons = list(cast(xr.DataArray, posterior["neuron"]).values)

    def as_draws(values) -> xr.DataArray:
        return xr.DataArray(np.asarray(values, dtype=float).reshape(n_chains, n_draws),
                            dims=("chain", "draw"))

    def flat_of(upars: xr.DataArray):
        return jnp.asarray(upars.transpose("chain", "draw", "parameter").values,
                           jnp.float32).reshape(n_chains * n_draws, -1)

    def log_prob_upars(upars):
        return as_draws(over_draws(log_density, flat_of(upars), data))

    def log_lik_i_upars(upars, i):
        per_unit = over_draws(unit_log_lik, flat_of(upars), data)  # (S, N, U)
        neuron = neurons.index(neuron_of_unit[i])
        return as_draws(per_unit[:, neuron, position[block_of_unit[i]]])

    upars = xr.DataArray(np.asarray(flat, dtype=float).reshape(n_chains, n_draws, -1),
                         dims=("chain", "draw", "parameter"))
    with warnings.catch_warnings():  # what remains above k_max is reported by the caller
        warnings.simplefilter("ignore", UserWarning)
        return azs.loo_moment_match(loo_tree, loo, log_prob_upars_fn=log_prob_upars,
                                    log_lik_i_upars_fn=log_lik_i_upars, upars=upars,
                                    k_threshold=k_max, pointwise=True)
