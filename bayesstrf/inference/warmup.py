"""From a recording's problem to lanes ready to draw: the MAP and its Laplace covariance, the
two warmup stages (`map_and_warmup`), a warm start from a previous fit (`warm_start`), or the
lanes of a checkpoint (`resume`). See `bayesstrf.inference.fit` for the steps of a fit.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import xarray as xr
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.distributions.transforms import biject_to
from numpyro.infer import init_to_median
from numpyro.infer.util import potential_energy
from numpyro.primitives import Messenger

from bayesstrf.inference import checkpoint as checkpoints
from bayesstrf.inference import mass_matrix, nuts
from bayesstrf.inference import sampler as sampling
from bayesstrf.model.lnp import Problem
from bayesstrf.model.strf_laws import IsotropicStudentT

logger = logging.getLogger(__name__)


def find_map(model, model_args: tuple, key, max_iter: int = 1000,
             model_kwargs: dict | None = None):
    """MAP in the unconstrained space by L-BFGS, started at the prior medians.

    Returns
    -------
    point : dict of site name -> unconstrained value
    potential : jax.tree_util.Partial
        The potential energy (negative log density) of a flat unconstrained vector. The data
        are its leaves, so compiled functions take it as an argument
        (`bayesstrf.inference.mass_matrix`).
    unravel : callable
        Flat vector -> dict of sites.
    """
    start, potential, unravel = joint_potential(model, model_args, key, model_kwargs)
    flat = ravel_pytree(start)[0]

    def objective(x):
        value, grad = _value_and_grad(potential, jnp.asarray(x, flat.dtype))
        return float(value), np.asarray(grad, dtype=float)

    result = scipy.optimize.minimize(
        objective, np.asarray(flat, float), jac=True, method="L-BFGS-B",
        options={"maxiter": max_iter},
    )
    if not np.isfinite(result.fun):
        logger.warning("MAP search ended at a non-finite potential; starting at prior medians")
        return start, potential, unravel
    return unravel(jnp.asarray(result.x, flat.dtype)), potential, unravel


def joint_potential(model, model_args: tuple, key, model_kwargs: dict | None = None):
    """The prior medians and the potential of flat unconstrained vectors: returns like
    `find_map`, without the search."""
    model_kwargs = model_kwargs or {}
    start = _prior_medians(model, key, model_args, model_kwargs)
    _, unravel = ravel_pytree(start)
    return start, flat_potential(model, model_args, model_kwargs, unravel), unravel


def flat_potential(model, model_args: tuple, model_kwargs: dict, unravel):
    """The potential of flat unconstrained vectors, a ``jax.tree_util.Partial`` whose leaves
    are the data."""

    def energy(args, kwargs, x):
        return potential_energy(model, args, kwargs, unravel(x))

    return jax.tree_util.Partial(energy, model_args, model_kwargs)


@functools.partial(jax.jit, static_argnums=0)
def _prior_medians(model, key, args: tuple, kwargs: dict) -> dict:
    """Every latent site at its prior median (NumPyro's `init_to_median`, from 15 prior draws),
    unconstrained; in one compiled program rather than op by op."""
    trace = handlers.trace(handlers.substitute(
        handlers.seed(model, key), substitute_fn=init_to_median)).get_trace(*args, **kwargs)
    return {name: biject_to(site["fn"].support).inv(site["value"])
            for name, site in trace.items() if site["type"] == "sample"
            and not site["is_observed"]}


@jax.jit
def _value_and_grad(potential, x):
    return jax.value_and_grad(potential)(x)


class _FisherCurvature(Messenger):
    """Every `IsotropicStudentT` site seen as the Gaussian of its Fisher information."""

    def process_message(self, msg):
        if msg["type"] == "sample" and isinstance(msg["fn"], IsotropicStudentT):
            msg["fn"] = msg["fn"].fisher_normal()


def laplace_metric(problem: Problem, point: dict) -> np.ndarray:
    """The first warmup stage's metric: the Laplace covariance at ``point`` (the MAP), jointly
    ``(D, D)`` or per neuron ``(N, D, D)`` (``problem.single_model`` set), each Student-t STRF
    prior's curvature taken as its Fisher information rather than at its mode.

    Under `Ridge` the MAP of a weakly driven neuron sits near the t's mode, where its curvature
    is 129 times its Fisher information (34 x 15 weights), and trajectories under that metric
    crawl: 4 chains of 10 NS1 neurons, sigmoid, took 500-900 leapfrogs per iteration at step
    sizes 0.04-0.11 on 4 of the neurons and 27-40 at 0.3-0.5 on the rest
    (`IsotropicStudentT.fisher_normal`).
    """
    flat, unravel = ravel_pytree(point)
    curvature = flat_potential(_FisherCurvature(problem.model), problem.args, problem.kwargs,
                               unravel)
    if problem.single_model is not None:
        return mass_matrix.neuron_laplace_covariances(curvature, point)
    return mass_matrix.laplace_covariance(curvature, flat)


def chain_starts(point: dict, chains: int, key, jitter: float = 0.02) -> dict:
    """``chains`` copies of an unconstrained point, each moved by N(0, jitter^2) noise."""
    flat, unravel = ravel_pytree(point)
    noise = jitter * jax.random.normal(key, (chains, flat.shape[0]), flat.dtype)
    return jax.vmap(unravel)(flat + noise)


def pooled_draws(samples: dict, model, model_args: tuple, neuronwise: bool,
                 first: int = 0) -> np.ndarray:
    """Draws ``(chain, draw, ...)`` of the model's latent sites from draw ``first`` on,
    unconstrained and pooled over chains: ``(n, D)`` in ``ravel_pytree`` order, or per neuron
    ``(N, n, D)`` in `bayesstrf.inference.mass_matrix.neuron_rows` order."""
    unconstrained = {name: biject_to(support).inv(jnp.asarray(samples[name][:, first:],
                                                              jnp.float32))
                     for name, support in latent_supports(model, model_args).items()}
    if neuronwise:
        rows = np.asarray(mass_matrix.neuron_rows(unconstrained, batch_ndim=2), dtype=float)
        return np.moveaxis(rows.reshape(-1, *rows.shape[2:]), 1, 0)
    draws = jax.vmap(jax.vmap(lambda point: ravel_pytree(point)[0]))(unconstrained)
    return np.asarray(draws, dtype=float).reshape(-1, draws.shape[-1])


def latent_supports(model, model_args: tuple) -> dict:
    """The model's latent sample sites and their supports, sorted by name (the metric's
    block order). The model runs on abstract values (``jax.eval_shape``): nothing is drawn
    or compiled."""
    found = {}

    def run(*args):
        trace = handlers.trace(handlers.seed(model, 0)).get_trace(*args)
        found.update({name: site["fn"].support for name, site in trace.items()
                      if site["type"] == "sample" and not site["is_observed"]})

    jax.eval_shape(run, *model_args)
    return dict(sorted(found.items()))


class Warmed(NamedTuple):
    """Lanes warmed up and ready to draw (`bayesstrf.inference.sampler`): the sampler, the lanes,
    their metric and momentum factors, and the warmup iterations of their stage."""

    sampler: sampling.Sampler
    lanes: nuts.Lane
    metric: jnp.ndarray
    factor: jnp.ndarray
    warmup: int


def map_and_warmup(problem: Problem, key, warmup: int, chains: int, nuts_settings: dict,
                   progress: bool):
    """MAP, Laplace metric and the two warmup stages (see the module docstring), jointly or
    per neuron (``problem.single_model`` set).

    Returns
    -------
    warmed : Warmed
    metric : array (D, D) or (N, D, D)
        The second stage's metric.
    timings : dict
        Seconds spent on the MAP and on warmup.
    """
    key_map, key_jitter, key_explore, key_sample = jax.random.split(key, 4)
    start = time.perf_counter()
    logger.info("MAP and Laplace metric")
    point, potential, _ = find_map(problem.model, problem.args, key_map,
                                   model_kwargs=problem.kwargs)
    laplace = laplace_metric(problem, point)
    map_seconds = time.perf_counter() - start

    start = time.perf_counter()
    sampler = sampling.make_sampler(problem, point, potential, chains, **nuts_settings)
    first = warmup // 2
    logger.info("warmup 1/2: %d iterations x %d chains, Laplace metric (MAP took %.1f s)",
                first, chains, map_seconds)
    z = sampling.positions(sampler, chain_starts(point, chains, key_jitter))
    lanes, lane_metric, factor = sampling.start(sampler, z, laplace, 1.0, key_explore)
    lanes, records = sampling.run(sampler, lanes, lane_metric, factor, 0, first, first,
                                  "warmup 1/2", progress)
    logger.info("warmup 2/2: %d iterations x %d chains, metric of the pooled warmup draws",
                warmup - first, chains)
    metric = mass_matrix.draws_covariance(
        sampling.pooled(sampler, records["z"][:, first // 2:]), laplace)
    warmed = last_stage(sampler, key_sample, lanes.position.z, metric,
                        _mean_step_size(np.exp(lanes.adaptation.log_step), metric),
                        warmup - first, "warmup 2/2", progress)
    timings = {"map": map_seconds, "warmup": time.perf_counter() - start, "sampling": 0.0}
    return warmed, metric, timings


def warm_start(problem: Problem, previous: xr.DataTree, key, warmup: int, chains: int,
               nuts_settings: dict, progress: bool):
    """Warm up from a previous fit of the same model, e.g. on the same recording with a few counts
    left out: one stage of ``warmup`` iterations (no MAP, no Laplace stage), its metric the
    covariance of the previous draws (`bayesstrf.inference.mass_matrix.posterior_covariance`), its
    first step size the previous mean, each chain starting from the last draw of the same chain.
    Returns like `map_and_warmup`."""
    start = time.perf_counter()
    posterior = previous["posterior"]
    sites = latent_supports(problem.model, problem.args)
    samples = {name: cast(xr.DataArray, posterior[name]).values for name in sites}
    neuronwise = problem.single_model is not None
    metric = mass_matrix.posterior_covariance(pooled_draws(samples, problem.model, problem.args,
                                                       neuronwise))
    last = {name: biject_to(support).inv(jnp.asarray(samples[name][:, -1], jnp.float32))
            for name, support in sites.items()}
    point, potential, _ = joint_potential(problem.model, problem.args, key,
                                          problem.kwargs)
    sampler = sampling.make_sampler(problem, point, potential, chains, **nuts_settings)
    logger.info("warmup: %d iterations x %d chains from the previous fit's draws and metric",
                warmup, chains)
    step_size = previous["sample_stats"]["step_size"].mean(("chain", "draw")).values
    warmed = last_stage(sampler, key, sampling.positions(sampler, last), metric,
                        _mean_step_size(step_size, metric), warmup, "warmup", progress)
    return warmed, metric, {"map": 0.0, "warmup": time.perf_counter() - start, "sampling": 0.0}


def last_stage(sampler: sampling.Sampler, key, z, metric: np.ndarray, step_size, warmup: int,
               label: str, progress: bool) -> Warmed:
    """The warmup stage that hands its lanes to sampling: ``metric`` fixed, the step size
    adapted from ``step_size`` by one dual averaging over the stage, then shared by the
    chains (`bayesstrf.inference.sampler.shared_step`)."""
    lanes, lane_metric, factor = sampling.start(sampler, z, metric, step_size, key)
    lanes, _ = sampling.run(sampler, lanes, lane_metric, factor, 0, warmup, warmup, label,
                            progress)
    return Warmed(sampler, sampling.shared_step(sampler, lanes), lane_metric, factor, warmup)


def resume(problem: Problem, saved: checkpoints.Checkpoint, chains: int, nuts_settings: dict,
           warmup: int) -> Warmed:
    """The lanes saved in a checkpoint, with their metric; ``warmup`` is their stage's."""
    point, potential, _ = joint_potential(problem.model, problem.args, jax.random.PRNGKey(0),
                                          problem.kwargs)
    sampler = sampling.make_sampler(problem, point, potential, chains, **nuts_settings)
    starts = jax.tree.map(lambda x: jnp.stack([x] * chains), point)
    template, metric, factor = sampling.start(sampler, sampling.positions(sampler, starts),
                                              saved.metric, 1.0, jax.random.PRNGKey(0))
    return Warmed(sampler, checkpoints.restore_state(template, saved.leaves), metric, factor,
                  warmup)


def _mean_step_size(step_size, metric: np.ndarray):
    """Step sizes of a previous stage ``(chain, [N])`` or per lane, averaged over chains: one
    per neuron for a metric ``(N, D, D)``, else one."""
    step_size = np.asarray(step_size, dtype=float)
    if np.ndim(metric) == 3:
        return step_size.reshape(-1, metric.shape[0]).mean(0)
    return float(step_size.mean())
