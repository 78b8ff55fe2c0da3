"""`fit`: the posterior of a linear-nonlinear-Poisson STRF model, sampled by NUTS.

Steps, each a small function here or in `bayesstrf.inference.warmup` and
`bayesstrf.inference.conversion`:
check the arguments; prepare the design and the count statistics; set the priors; find the
MAP (L-BFGS on the potential) and its Laplace covariance; warm up in two stages, each with a
fixed dense metric and an adapted step size: first the Laplace covariance, starting every
chain at the MAP with a small jitter, then the covariance of the second half of the first
stage's draws, pooled over chains, with its correlations shrunk towards the Laplace's
(`bayesstrf.inference.mass_matrix.draws_covariance`); sample; compute the log-likelihood summed per
segment; return an ``xarray.DataTree``. Given a previous fit of the same model (``start``,
e.g. for a refit without a few counts), warmup is one stage from its last draws, with the
covariance of its draws as the metric (`warm_start`).

Why not NumPyro's own dense adaptation: its windows estimate a ``D x D`` covariance from 25,
50, 100 ... draws of one chain, far fewer than ``D`` (~200 for a 16 x 12 STRF), and the
sampler pays for those poor metrics with deep trees. The Laplace metric is right for the
near-Gaussian STRF block from the first iteration; pooling chains gives the second stage
enough draws to capture the curved activation-parameter directions the Laplace misses.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import cast

import jax
import numpy as np
import xarray as xr

from bayesstrf.data import checks
from bayesstrf.data.io import constant_data
from bayesstrf.data.recording import Recording
from bayesstrf.errors import InputError, InputTypeError
from bayesstrf.inference import checkpoint as checkpoints
from bayesstrf.inference import sampler as sampling
from bayesstrf.inference.conversion import draws_digest, sample_stats, to_datatree
from bayesstrf.inference.warmup import (
    Warmed,
    map_and_warmup,
    resume,
    warm_start,
)
from bayesstrf.model import activations
from bayesstrf.model import strf as strf_priors
from bayesstrf.model.lnp import Problem, build_problem, describe_priors
from bayesstrf.model.prediction import log_likelihood

logger = logging.getLogger(__name__)

def choose_chain_method(chains: int) -> str:
    """``parallel`` (lanes split over devices) with a GPU per chain, else ``vectorized``: all
    lanes in one program, each leapfrog's drive one matrix product over chains and neurons
    (`bayesstrf.model.design`). On a CPU, 4 chains split over 4 host devices sampled at 0.58x the
    rate of one vectorised program (demo recording, 2 cores, 2026-12-07)."""
    gpus = [device for device in jax.devices() if device.platform == "gpu"]
    if chains > 1 and len(gpus) >= chains:
        return "parallel"
    return "vectorized" if chains > 1 else "sequential"


def sample_draws(warmed: Warmed, problem: Problem, draws: int, so_far: checkpoints.Checkpoint,
                 checkpoint, checkpoint_every: int, key: str, progress: bool):
    """Draw until ``draws`` per chain, continuing ``so_far``; with a ``checkpoint`` path, in
    chunks of ``checkpoint_every``, saving after each.

    Each chunk starts from the previous chunk's lanes, RNG keys included, so a resumed run gives
    exactly the draws of the run it resumes, and for one neuron those of a run without checkpoints
    too. (Independent neurons' lanes move to narrower programs as neurons finish each chunk,
    `bayesstrf.inference.sampler.run`, so chunked and unchunked runs round differently in the last
    bits: the same posterior, other draws.)

    Returns
    -------
    samples, records : dict of name -> array (chain, draw, ...)
        The model's sites, and the per-draw NUTS records (`bayesstrf.inference.nuts.RECORDS`).
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
    joined = _join(records)
    samples = sampling.constrained(warmed.sampler, problem, joined.pop("z"))
    return samples, joined, timings


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
        ``"lowrank"`` or ``"lowrank:<rank>"``) or instance (see `bayesstrf.model.strf`).
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
        Raw-scale priors replacing the defaults (see `bayesstrf.model.lnp.build_priors`).
    target_accept, max_tree_depth, chain_method
        NUTS settings; ``target_accept`` defaults to the larger of the STRF prior's and the
        activation's (0.8; ``smooth`` and ``softplus`` 0.9),
        ``chain_method`` to `choose_chain_method`.
    checkpoint : path, optional
        Checkpoint file (``.npz``; see `bayesstrf.inference.checkpoint`), rewritten atomically after
        warmup and every ``checkpoint_every`` draws. If it exists, the fit resumes from it
        (it must have been written by the same call: data, settings and seed) and gives the
        draws the interrupted run would have given (`sample_draws`).
    checkpoint_every : int
        Draws per chain between checkpoints.
    pooling : {None, "activation"}
        None: neurons are independent, and each gets its own NUTS (step size, metric,
        trajectories), all lanes of one compiled program (`bayesstrf.inference.sampler`).
        ``"activation"``: a hierarchical model whose raw activation parameters are partially
        pooled across neurons (`bayesstrf.model.lnp.pooled_sample`), sampled by one joint NUTS.
    drive : {"auto", "lag_matrix", "conv"}
        How the drive is computed (`bayesstrf.model.design`): ``"auto"`` materialises the lag
        matrix when it fits `bayesstrf.model.design.LAG_MATRIX_BYTES`, else convolves.
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
        (``counts (chain, draw, neuron, segment)``), ``observed_data``, ``constant_data``
        (per-neuron priors and data-derived hyperparameters, `bayesstrf.data.io`); attrs
        hold the version, seed, specs and the sampler's settings (``sampler_*``).
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
        settings["start"] = draws_digest(start)
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
        "n_lags": n_lags,
        "pooling": json.dumps(pooling),
        **{f"sampler_{name}": value for name, value in {
            "chains": chains, "warmup": warmup, "draws": draws, "chain_method": chain_method,
            "drive": engine,
            "target_accept": target_accept, "max_tree_depth": max_tree_depth,
            "metric": "dense: Laplace at the MAP, then warmup draws" if start is None
                      else "dense: the previous fit's draws",
            "init": "map+jitter" if start is None else f"previous fit {settings['start']}",
            "nuts": "one per neuron and chain, lane-wise in one program" if neuronwise
                    else "joint, lane-wise in one program",
        }.items()},
        "map_seconds": map_seconds,
        "warmup_seconds": warmup_seconds,
        "sampling_seconds": sampling_seconds,
    }
    tree = to_datatree(samples, sample_stats(records, max_tree_depth), recording, strf_prior, attrs)
    tree["constant_data"] = xr.DataTree(constant_data(
        describe_priors(prior_set), mean_rate, np.asarray(design.mean), float(design.scale),
        recording.neuron_ids, recording.freqs))
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
        "neurons": [str(n) for n in cast(xr.DataArray, posterior["neuron"]).values]
                   if "neuron" in posterior.coords else None,
    }
    expected = json.loads(json.dumps({name: settings.get(name) for name in found})) | {
        "neurons": [str(n) for n in recording.neuron_ids]}
    for name, value in found.items():
        if value != expected[name]:
            raise InputError(f"start: expected a fit with {name} {expected[name]!r} like this "
                             f"one, found {value!r}")
