"""`fit`: the posterior of a linear-nonlinear-Poisson STRF model, sampled by NUTS.

Steps, each a small function below: check the arguments; prepare the design and the count
statistics; set the priors; find the MAP (L-BFGS on the potential) and its Laplace
covariance; warm up in two stages, each with a fixed dense metric and an adapted step size:
first the Laplace covariance, starting every chain at the MAP with a small jitter, then the
covariance of the second half of the first stage's draws, pooled over chains, with its
correlations shrunk towards the Laplace's (`bayesstrf.mass_matrix.draws_covariance`);
sample; compute the log-likelihood summed per segment; return an ``xarray.DataTree``. Given
a previous fit of the same model (``start``, e.g. for a refit without a few counts), warmup
is one stage from its last draws, with the covariance of its draws as the metric
(`warm_start`).

Why not NumPyro's own dense adaptation: its windows estimate a ``D x D`` covariance from 25,
50, 100 ... draws of one chain, far fewer than ``D`` (~200 for a 16 x 12 STRF), and the
sampler pays for those poor metrics with deep trees. The Laplace metric is right for the
near-Gaussian STRF block from the first iteration; pooling chains gives the second stage
enough draws to capture the curved activation-parameter directions the Laplace misses.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import NamedTuple

import arviz_base as azb
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

from bayesstrf import activations, checks, mass_matrix, nuts
from bayesstrf import checkpoint as checkpoints
from bayesstrf import sampler as sampling
from bayesstrf import strf as strf_priors
from bayesstrf.data import Recording
from bayesstrf.errors import InputError, InputTypeError
from bayesstrf.model import Problem, build_problem, describe_priors
from bayesstrf.prediction import log_likelihood

logger = logging.getLogger(__name__)

def choose_chain_method(chains: int) -> str:
    """``parallel`` (lanes split over devices) with a GPU per chain, else ``vectorized``: all
    lanes in one program, each leapfrog's drive one matrix product over chains and neurons
    (`bayesstrf.design`). On a CPU, 4 chains split over 4 host devices sampled at 0.58x the
    rate of one vectorised program (demo recording, 2 cores, 2026-12-07)."""
    gpus = [device for device in jax.devices() if device.platform == "gpu"]
    if chains > 1 and len(gpus) >= chains:
        return "parallel"
    return "vectorized" if chains > 1 else "sequential"


def find_map(model, model_args: tuple, key, max_iter: int = 1000,
             model_kwargs: dict | None = None):
    """MAP in the unconstrained space by L-BFGS, started at the prior medians.

    Returns
    -------
    point : dict of site name -> unconstrained value
    potential : jax.tree_util.Partial
        The potential energy (negative log density) of a flat unconstrained vector. The data
        are its leaves, so compiled functions take it as an argument (`bayesstrf.mass_matrix`).
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

    def energy(args, kwargs, x):
        return potential_energy(model, args, kwargs, unravel(x))

    return start, jax.tree_util.Partial(energy, model_args, model_kwargs), unravel


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


def chain_starts(point: dict, chains: int, key, jitter: float = 0.02) -> dict:
    """``chains`` copies of an unconstrained point, each moved by N(0, jitter^2) noise."""
    flat, unravel = ravel_pytree(point)
    noise = jitter * jax.random.normal(key, (chains, flat.shape[0]), flat.dtype)
    return jax.vmap(unravel)(flat + noise)


def pooled_draws(samples: dict, model, model_args: tuple, neuronwise: bool,
                 first: int = 0) -> np.ndarray:
    """Draws ``(chain, draw, ...)`` of the model's latent sites from draw ``first`` on,
    unconstrained and pooled over chains: ``(n, D)`` in ``ravel_pytree`` order, or per neuron
    ``(N, n, D)`` in `bayesstrf.mass_matrix.neuron_rows` order."""
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
    """Lanes warmed up and ready to draw (`bayesstrf.sampler`): the sampler, the lanes, their
    metric and momentum factors, and the warmup iterations of their stage."""

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
    neuronwise = problem.single_model is not None
    start = time.perf_counter()
    logger.info("MAP and Laplace metric")
    point, potential, _ = find_map(problem.model, problem.args, key_map,
                                   model_kwargs=problem.kwargs)
    laplace = (mass_matrix.neuron_laplace_covariances(potential, point) if neuronwise
               else mass_matrix.laplace_covariance(potential, ravel_pytree(point)[0]))
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
    """Warm up from a previous fit of the same model, e.g. on the same recording with a few
    counts left out: one stage of ``warmup`` iterations (no MAP, no Laplace stage), its metric
    the covariance of the previous draws (`bayesstrf.mass_matrix.posterior_covariance`), its first
    step size the previous mean, each chain starting from the last draw of the same chain.
    Returns like `map_and_warmup`."""
    start = time.perf_counter()
    posterior = previous["posterior"]
    sites = latent_supports(problem.model, problem.args)
    samples = {name: posterior[name].values for name in sites}
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
    chains (`bayesstrf.sampler.shared_step`)."""
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


def sample_draws(warmed: Warmed, problem: Problem, draws: int, so_far: checkpoints.Checkpoint,
                 checkpoint, checkpoint_every: int | None, key: str, progress: bool):
    """Draw until ``draws`` per chain, continuing ``so_far``; with a ``checkpoint`` path, in
    chunks of ``checkpoint_every``, saving after each.

    Each chunk starts from the previous chunk's lanes, RNG keys included, so a resumed run
    gives exactly the draws of the run it resumes, and for one neuron those of a run without
    checkpoints too. (Independent neurons' lanes move to narrower programs as neurons finish
    each chunk, `bayesstrf.sampler.run`, so chunked and unchunked runs round differently in
    the last bits: the same posterior, other draws.)

    Returns
    -------
    samples, records : dict of name -> array (chain, draw, ...)
        The model's sites, and the per-draw NUTS records (`bayesstrf.nuts.RECORDS`).
    timings : dict
    """
    records, done, timings = [so_far.records], so_far.draws_done, dict(so_far.timings)
    chunk = checkpoint_every if checkpoint else draws
    lanes = warmed.lanes
    with _stop_after_chunk_on_ctrl_c(checkpoint is not None) as interrupted:
        while done < draws:
            if interrupted:
                raise KeyboardInterrupt
            until = min(done + chunk, draws)
            logger.info("sampling: draws %d-%d of %d x %d chains", done + 1, until, draws,
                        warmed.sampler.chains)
            start = time.perf_counter()
            lanes, new = sampling.run(warmed.sampler, lanes, warmed.metric, warmed.factor,
                                      warmed.warmup + done, warmed.warmup + until,
                                      warmed.warmup, "sampling", progress)
            timings["sampling"] += time.perf_counter() - start
            records.append(new)
            done = until
            if checkpoint:
                so_far = checkpoints.Checkpoint([], _join(records), done, so_far.metric,
                                                timings)
                records = [so_far.records]
                checkpoints.save(checkpoint, key, lanes, so_far)
    records = _join(records)
    samples = sampling.constrained(warmed.sampler, problem, records.pop("z"))
    return samples, records, timings


@contextlib.contextmanager
def _stop_after_chunk_on_ctrl_c(active: bool):
    """While checkpointing, a first Ctrl-C (SIGINT) only asks to stop: the current chunk of
    draws finishes and is saved, then `sample_draws` raises KeyboardInterrupt. (Raised in the
    middle of a JAX dispatch, the interrupt would surface as another error.) A second Ctrl-C
    interrupts at once."""
    requested: list[bool] = []
    if not active or threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def request_stop(signum, frame):
        if requested:
            raise KeyboardInterrupt
        requested.append(True)
        logger.warning("interrupted: stopping after the current chunk of draws is saved "
                       "(Ctrl-C again to stop now)")

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)


def _join(parts: list[dict]) -> dict:
    """Concatenate per-chunk dicts of ``(chain, draw, ...)`` arrays along draws."""
    parts = [part for part in parts if part]
    if not parts:
        return {}
    return {name: np.concatenate([part[name] for part in parts], axis=1) for name in parts[0]}


def sample_stats(records: dict, max_tree_depth: int) -> dict:
    """Per-draw NUTS statistics under ArviZ's names (both tree-depth-saturation spellings)."""
    steps = np.asarray(records["num_steps"])
    depth = np.ceil(np.log2(steps + 1)).astype(int)
    saturated = steps >= 2**max_tree_depth - 1
    return {
        "diverging": np.asarray(records["diverging"]),
        "energy": np.asarray(records["energy"]),
        "lp": -np.asarray(records["potential_energy"]),
        "n_steps": steps,
        "tree_depth": depth,
        "reached_max_treedepth": saturated,
        "reached_max_tree_depth": saturated,
        "acceptance_rate": np.asarray(records["accept_prob"]),
        "step_size": np.asarray(records["step_size"]),
    }


def fit(
    recording: Recording,
    activation: str = "softplus",
    *,
    strf: str | object = "ridge",
    n_lags: int = 12,
    chains: int = 4,
    warmup: int = 500,
    draws: int = 1000,
    seed: int = 0,
    progress: bool = True,
    priors: dict | None = None,
    target_accept: float | None = None,
    max_tree_depth: int = 10,
    chain_method: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 100,
    pooling: str | None = None,
    drive: str = "auto",
    start: xr.DataTree | None = None,
) -> xr.DataTree:
    """Sample the posterior of an LN-Poisson STRF model with NUTS.

    Parameters
    ----------
    recording : Recording
        Spectrograms ``(F, T_s)`` and counts ``(N, R_s, T_s)`` per segment.
    activation : {"softplus", "sigmoid", "double_exponential", "exponential"}
        Output nonlinearity (deepSTRF's families, or the exponential GLM baseline).
    strf : str or prior object
        STRF prior, by name (``"ridge"``, ``"smooth"``, ``"localized"``, ``"sparse"``,
        ``"lowrank"`` or ``"lowrank:<rank>"``) or instance (see `bayesstrf.strf`).
    n_lags : int
        Lags of the STRF, lag 0 = current bin.
    chains, warmup, draws : int
        NUTS chains, adaptation iterations and kept draws per chain. 1000 draws (Stan's
        default): with 500 (simulated neurons, F=16, L=12, T=20000, 4 chains), the slowest
        direction, the STRF's norm, left r_hat at 1.012 (double exponential) and a bulk ESS
        of 367 (softplus).
    seed : int
        The only source of randomness: the same seed, ``chain_method`` and machine give
        bitwise the same draws (chains run in parallel or in sequence differ in the last bits,
        which NUTS amplifies: the posteriors agree, the draws do not).
    progress : bool
        Progress bars during warmup and sampling.
    priors : dict of name -> numpyro Distribution, optional
        Raw-scale priors replacing the defaults (see `bayesstrf.model.build_priors`).
    target_accept, max_tree_depth, chain_method
        NUTS settings; ``target_accept`` defaults to the larger of the STRF prior's and the
        activation's (0.8; ``smooth`` and ``softplus`` 0.9),
        ``chain_method`` to `choose_chain_method`.
    checkpoint : path, optional
        Checkpoint file (``.npz``; see `bayesstrf.checkpoint`), rewritten atomically after
        warmup and every ``checkpoint_every`` draws. If it exists, the fit resumes from it
        (it must have been written by the same call: data, settings and seed) and gives the
        draws the interrupted run would have given (`sample_draws`).
    checkpoint_every : int
        Draws per chain between checkpoints.
    pooling : {None, "activation"}
        None: neurons are independent, and each gets its own NUTS (step size, metric,
        trajectories), all lanes of one compiled program (`bayesstrf.sampler`).
        ``"activation"``: a hierarchical model whose raw activation parameters are partially
        pooled across neurons (`bayesstrf.model.pooled_sample`), sampled by one joint NUTS.
    drive : {"auto", "lag_matrix", "conv"}
        How the drive is computed (`bayesstrf.design`): ``"auto"`` materialises the lag
        matrix when it fits `bayesstrf.design.LAG_MATRIX_BYTES`, else convolves.
    start : DataTree, optional
        A fit of the same model (activation, STRF prior, lags, chains, neurons), e.g. to
        the same recording with some counts left out: warmup skips the MAP and the Laplace
        stage and runs one stage of ``warmup`` iterations from its last draws, with the
        covariance of its draws as the metric (`warm_start`). For exact leave-out refits.

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` (``strf (chain, draw, neuron, freq, lag)``, ``intercept``, raw and
        constrained activation parameters, latents), ``sample_stats``, ``log_likelihood``
        (``counts (chain, draw, neuron, segment)``), ``observed_data``; attrs hold the
        version, seed, specs, priors and data-derived hyperparameters.
    """
    checks.recording(recording)
    family = activations.get(activation)
    strf_prior = strf_priors.get(strf)
    n_lags, chains = checks.positive_int(n_lags, "n_lags"), checks.positive_int(chains, "chains")
    warmup, draws = checks.positive_int(warmup, "warmup"), checks.positive_int(draws, "draws")
    if warmup < 10:
        raise InputError(f"warmup: expected at least 10 iterations (two stages), found {warmup}")
    max_tree_depth = checks.positive_int(max_tree_depth, "max_tree_depth")
    checkpoint_every = checks.positive_int(checkpoint_every, "checkpoint_every")
    if checkpoint is not None and not str(checkpoint).endswith(".npz"):
        raise InputError(f"checkpoint: expected a path ending in .npz, found {str(checkpoint)!r}")
    seed = checks.seed(seed)
    if target_accept is None:
        target_accept = max(strf_prior.target_accept, family.target_accept)
    if not checks.is_real(target_accept) or not 0 < target_accept < 1:
        raise InputError(f"target_accept: expected a value in (0, 1), found {target_accept!r}")
    shortest = int(recording.segment_lengths.min())
    if shortest < n_lags:
        raise InputError(
            f"n_lags: expected every segment to be at least n_lags={n_lags} bins long, found a "
            f"segment of {shortest} bins "
            f"({recording.segment_ids[recording.segment_lengths.argmin()]})"
        )
    chain_method = chain_method or choose_chain_method(chains)
    if chain_method not in sampling.CHAIN_METHODS:
        raise InputError(f"chain_method: expected one of {', '.join(sampling.CHAIN_METHODS)}, "
                         f"found {chain_method!r}")

    if pooling not in (None, "activation"):
        raise InputError(f"pooling: expected None or 'activation', found {pooling!r}")
    neuronwise = recording.n_neurons > 1 and pooling is None
    problem = build_problem(recording, family, strf_prior, n_lags, priors,
                            neuronwise=neuronwise, pooling=pooling, drive=drive)
    design, mean_rate, prior_set = problem.design, problem.mean_rate, problem.priors
    engine = "lag_matrix" if design.lagged is not None else "conv"

    key_warmup, key_scale = jax.random.split(jax.random.PRNGKey(seed))
    nuts_settings = dict(target_accept=target_accept, max_tree_depth=max_tree_depth,
                         chain_method=chain_method)
    settings = {"activation": family.name, "strf": strf_prior.spec(), "n_lags": n_lags,
                "chains": chains, "warmup": warmup, "draws": draws, "seed": int(seed),
                "neuronwise": neuronwise, "pooling": pooling,
                "drive": engine,
                "priors": describe_priors(prior_set), **nuts_settings, "progress": None}
    if start is not None:
        _check_start(start, settings, recording)
        settings["start"] = _draws_digest(start)
    key = checkpoints.fingerprint(recording, settings) if checkpoint else ""
    if checkpoint and Path(checkpoint).exists():
        progress_so_far = checkpoints.load(checkpoint, key)
        warmed = resume(problem, progress_so_far, chains, nuts_settings,
                        warmup if start is not None else warmup - warmup // 2)
    else:
        warmed, metric, timings = (
            map_and_warmup(problem, key_warmup, warmup, chains, nuts_settings, progress)
            if start is None
            else warm_start(problem, start, key_warmup, warmup, chains, nuts_settings,
                            progress))
        progress_so_far = checkpoints.Checkpoint([], {}, 0, metric, timings)
        if checkpoint:
            checkpoints.save(checkpoint, key, warmed.lanes, progress_so_far)
    samples, records, timings = sample_draws(warmed, problem, draws, progress_so_far, checkpoint,
                                           checkpoint_every, key, progress)
    map_seconds, warmup_seconds, sampling_seconds = (
        timings["map"], timings["warmup"], timings["sampling"])
    samples = strf_prior.completed(samples, key_scale)

    attrs = {
        "bayesstrf_version": version("bayesstrf"),
        "seed": int(seed),
        "dt": recording.dt,
        "activation": family.name,
        "activation_fixed": json.dumps(family.fixed),
        "strf_prior": json.dumps(strf_prior.spec()),
        "priors": json.dumps(describe_priors(prior_set)),
        "hyperparameters": json.dumps({
            "mean_rate": mean_rate.tolist(),
            "stimulus_mean": np.asarray(design.mean).tolist(),
            "stimulus_scale": float(design.scale),
        }),
        "n_lags": n_lags,
        "pooling": json.dumps(pooling),
        "sampler": json.dumps({
            "chains": chains, "warmup": warmup, "draws": draws, "chain_method": chain_method,
            "drive": engine,
            "target_accept": target_accept, "max_tree_depth": max_tree_depth,
            "metric": "dense: Laplace at the MAP, then warmup draws" if start is None
                      else "dense: the previous fit's draws",
            "init": "map+jitter" if start is None else f"previous fit {settings['start']}",
            "nuts": "one per neuron and chain, lane-wise in one program" if neuronwise
                    else "joint, lane-wise in one program",
        }),
        "map_seconds": map_seconds,
        "warmup_seconds": warmup_seconds,
        "sampling_seconds": sampling_seconds,
        "command_line": " ".join(sys.argv),
    }
    tree = to_datatree(samples, sample_stats(records, max_tree_depth), recording, strf_prior, attrs)
    tree["log_likelihood"] = xr.DataTree(log_likelihood(tree, recording).to_dataset())
    return tree


def _check_start(start, settings: dict, recording: Recording) -> None:
    """Refuse a ``start`` fit of another model, naming what differs."""
    if not isinstance(start, xr.DataTree) or not {"posterior", "sample_stats"} <= set(
            start.children):
        raise InputTypeError(f"start: expected a DataTree from bayesstrf.fit, found "
                        f"{type(start).__name__}")
    attrs, posterior = start.attrs, start["posterior"]
    found = {
        "activation": attrs.get("activation"),
        "strf": json.loads(attrs.get("strf_prior", "null")),
        "n_lags": attrs.get("n_lags"),
        "pooling": json.loads(attrs.get("pooling", "null")),
        "chains": posterior.sizes.get("chain"),
        "neurons": [str(n) for n in posterior["neuron"].values] if "neuron" in posterior.coords
                   else None,
    }
    expected = json.loads(json.dumps({name: settings.get(name) for name in found})) | {
        "neurons": [str(n) for n in recording.neuron_ids]}
    for name, value in found.items():
        if value != expected[name]:
            raise InputError(f"start: expected a fit with {name} {expected[name]!r} like this "
                             f"one, found {value!r}")


def _draws_digest(tree: xr.DataTree) -> str:
    """Short digest of a fit's posterior draws (identifies a ``start`` in checkpoints)."""
    digest = hashlib.sha256()
    for name in sorted(tree["posterior"].data_vars):
        digest.update(np.ascontiguousarray(tree["posterior"][name].values).tobytes())
    return digest.hexdigest()[:16]


def to_datatree(samples, stats, recording: Recording, strf_prior, attrs) -> xr.DataTree:
    """Assemble the ArviZ DataTree (posterior, sample_stats, observed_data) with named dims."""
    cube = ("neuron", "freq", "lag")
    dims = ({name: ("neuron",) for name, value in samples.items() if np.ndim(value) > 2}
            | {"strf": cube} | dict(strf_prior.dims)
            | {name: ("neuron",) for name, value in stats.items() if np.ndim(value) == 3})
    n_lags = samples["strf"].shape[-1]
    tree = azb.from_dict(
        {
            "posterior": samples,
            "sample_stats": stats,
        },
        dims=dims,
        coords={
            "neuron": recording.neuron_ids, "freq": recording.freqs,
            "lag": np.arange(n_lags), "segment": recording.segment_ids,
        },
        attrs={"/": attrs},
    )
    observed = recording.to_dataset()
    tree["observed_data"] = xr.DataTree(
        xr.Dataset({"counts": observed["counts"]}, attrs={"dt": recording.dt})
    )
    return tree
