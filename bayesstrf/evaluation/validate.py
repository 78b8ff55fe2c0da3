"""Simulation-based calibration (Talts et al. 2018) of `bayesstrf.fit`.

Each replicate draws every parameter from the prior, simulates counts from the model on one
fixed natural-like stimulus, fits them with the same priors and records, for a set of
parameters, the rank of the true value among ``n_ranks - 1`` evenly thinned posterior draws.
If the sampler and the model agree, every rank is uniform on ``0 .. n_ranks - 1``; a
chi-square test on ``bins`` equal bins checks it per parameter.

The default activation priors are centred from the data's mean rate; SBC needs a prior that
does not look at the data, so both the simulation and the fits use the defaults at a fixed
nominal ``mean_rate``, passed to `fit` as explicit ``priors``.

The replicates share the stimulus, so they are fitted together as the neurons of one
recording: `fit` gives each neuron its own NUTS (step size, metric, trajectories) in one
compiled program, so a run compiles once instead of once per replicate, and SBC checks that
neuronwise sampler as well.
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
from numpyro.infer import Predictive
from scipy.stats import chisquare

from bayesstrf.data import checks
from bayesstrf.data.recording import Recording
from bayesstrf.errors import InputError
from bayesstrf.evaluation.calibration import SBC, rank_histogram, rank_of_truth
from bayesstrf.inference.fit import fit
from bayesstrf.model import activations
from bayesstrf.model import strf as strf_priors
from bayesstrf.model.design import make_design
from bayesstrf.model.lnp import base_distribution, build_priors, make_model
from bayesstrf.model.simulation import natural_spectrogram


def sbc(
    activation: str = "softplus",
    strf: str | object = "ridge",
    *,
    replicates: int = 100,
    n_freq: int = 4,
    n_lags: int = 3,
    n_time: int = 1000,
    n_trials: int = 2,
    mean_rate: float = 0.2,
    n_weights: int = 3,
    n_ranks: int = 100,
    bins: int = 10,
    seed: int = 0,
    **fit_kwargs,
) -> SBC:
    """Simulation-based calibration on a small problem.

    Parameters
    ----------
    activation, strf
        Model to check, as in `bayesstrf.fit`.
    replicates : int
    n_freq, n_lags, n_time, n_trials : int
        Problem size: each replicate is one neuron; all share one stimulus segment.
    mean_rate : float
        Nominal rate (spikes per bin) at which the default priors are centred.
    n_weights : int
        STRF weights checked (evenly spaced over the flattened STRF), besides the activation
        parameters and, for priors with one, ``strf_scale``.
    n_ranks, bins : int
        Posterior draws are thinned to ``n_ranks - 1``; ranks are binned into ``bins``.
    seed : int
    **fit_kwargs
        Passed to `bayesstrf.fit` (chains, warmup, draws, ...); enough draws per fit for
        ``n_ranks - 1`` nearly independent ones.

    Returns
    -------
    SBC
        Its ``divergences`` are per replicate.
    """
    family, strf_prior = activations.get(activation), strf_priors.get(strf)
    replicates = checks.positive_int(replicates, "replicates")
    n_ranks = checks.positive_int(n_ranks, "n_ranks")
    if checks.positive_int(bins, "bins") > n_ranks or n_ranks % bins:
        raise InputError(f"bins: expected a divisor of n_ranks={n_ranks}, found {bins!r}")
    rng = np.random.default_rng(seed)
    spectrogram = natural_spectrogram(n_freq, n_time, rng)
    design = make_design([spectrogram], n_lags)
    priors = build_priors(family, np.full(replicates, mean_rate))
    explicit = {name: base_distribution(prior) for name, prior in priors.items()}
    model = make_model(family, strf_prior, priors, replicates)
    key_truth, key_completed = jax.random.split(jax.random.PRNGKey(seed))
    truth = {name: np.asarray(value[0]) for name, value in Predictive(model, num_samples=1)(
        key_truth, design, None, n_trials).items()}
    completed = strf_prior.completed({name: value[None, None] for name, value in truth.items()},
                                     key_completed)
    truth |= {name: np.asarray(value)[0, 0] for name, value in completed.items()}
    recording = Recording([spectrogram], [truth["counts"].astype(float)], dt=0.005)
    tree = fit(recording, family.name, strf=strf_prior, n_lags=n_lags, priors=explicit,
               seed=seed, progress=False, **fit_kwargs)

    posterior = tree["posterior"].to_dataset().transpose("neuron", "chain", "draw", ...)
    names = [*family.params, *(["strf_scale"] if "strf_scale" in posterior else [])]
    weight_index = np.linspace(0, n_freq * n_lags - 1, n_weights).round().astype(int)
    strf_draws = posterior["strf"].values.reshape(replicates, -1, n_freq * n_lags)
    strf_truth = truth["strf"].reshape(replicates, n_freq * n_lags)
    rows = []
    for replicate in range(replicates):
        checked = {name: (posterior[name].values[replicate].reshape(-1),
                          float(truth[name][replicate])) for name in names}
        for index in weight_index:
            checked[f"strf[{index // n_lags},{index % n_lags}]"] = (
                strf_draws[replicate, :, index], float(strf_truth[replicate, index]))
        rows.append({name: rank_of_truth(draws, value, n_ranks) for name, (draws, value) in
                     checked.items()})
    diverging = tree["sample_stats"]["diverging"]
    divergences = (diverging.sum(("chain", "draw")).values if "neuron" in diverging.dims
                   else [int(diverging.sum())])

    ranks = pd.DataFrame(rows).rename_axis("replicate")
    p_values = pd.Series({
        name: float(chisquare(rank_histogram(ranks[name], n_ranks, bins)).pvalue)
        for name in ranks
    }, name="p_value")
    return SBC(ranks, p_values, n_ranks, bins, pd.Series(divergences, name="divergences"))


__all__ = ["SBC", "rank_histogram", "sbc"]
