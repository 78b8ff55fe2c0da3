"""Simulation-based calibration (Talts et al. 2018) of `bayesstrf.fit`.

Each replicate draws every parameter from the prior, simulates counts from the model on one
fixed natural-like stimulus, fits them with the same priors and records, for a set of
parameters, the rank of the true value among ``n_ranks - 1`` evenly thinned posterior draws.
If the sampler and the model agree, every rank is uniform on ``0 .. n_ranks - 1``; a
chi-square test on ``bins`` equal bins checks it per parameter.

The default activation priors are centred from the data's mean rate; SBC needs a prior that
does not look at the data, so both the simulation and the fits use the defaults at a fixed
nominal ``mean_rate``, passed to `fit` as explicit ``priors``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
import pandas as pd
from numpyro.infer import Predictive
from scipy.stats import chisquare

from bayesstrf import activations, checks
from bayesstrf import strf as strf_priors
from bayesstrf.data import Recording
from bayesstrf.design import make_design
from bayesstrf.inference import fit
from bayesstrf.model import build_priors, make_model
from bayesstrf.simulation import natural_spectrogram


@dataclass
class SBC:
    """Result of `sbc`.

    Attributes
    ----------
    ranks : pandas.DataFrame
        One row per replicate, one column per parameter; values in ``0 .. n_ranks - 1``.
    p_values : pandas.Series
        Chi-square test of uniformity of each parameter's ranks over ``bins`` bins.
    n_ranks, bins : int
    divergences : pandas.Series
        Divergent transitions per replicate (a replicate with many is suspect on its own).
    """

    ranks: pd.DataFrame
    p_values: pd.Series
    n_ranks: int
    bins: int
    divergences: pd.Series

    def passes(self, level: float = 0.01) -> bool:
        """Every parameter's uniformity test has p >= ``level``."""
        return bool((self.p_values >= level).all())


def rank_histogram(ranks: np.ndarray, n_ranks: int, bins: int) -> np.ndarray:
    """Counts of ranks ``0 .. n_ranks - 1`` in ``bins`` equal bins (``bins`` divides
    ``n_ranks``)."""
    return np.bincount(np.asarray(ranks) * bins // n_ranks, minlength=bins)


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
        Problem size (one neuron, one segment).
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
    """
    family, strf_prior = activations.get(activation), strf_priors.get(strf)
    replicates = checks.positive_int(replicates, "replicates")
    n_ranks = checks.positive_int(n_ranks, "n_ranks")
    if checks.positive_int(bins, "bins") > n_ranks or n_ranks % bins:
        raise ValueError(f"bins: expected a divisor of n_ranks={n_ranks}, found {bins!r}")
    rng = np.random.default_rng(seed)
    spectrogram = natural_spectrogram(n_freq, n_time, rng)
    design = make_design([spectrogram], n_lags)
    priors = build_priors(family, np.array([mean_rate]))
    explicit = {name: prior.base_dist for name, prior in priors.items()}
    model = make_model(family, strf_prior, priors, 1)
    prior_draws = Predictive(model, num_samples=replicates)(
        jax.random.PRNGKey(seed), design, None, n_trials)
    prior_draws = {name: np.asarray(value) for name, value in prior_draws.items()}
    weight_index = np.linspace(0, n_freq * n_lags - 1, n_weights).round().astype(int)

    rows, divergences = [], []
    for replicate in range(replicates):
        truth = {name: value[replicate] for name, value in prior_draws.items()}
        completed = strf_prior.completed({k: v[None, None] for k, v in truth.items()},
                                         jax.random.PRNGKey(seed + replicate))
        truth |= {name: value[0, 0] for name, value in completed.items()}
        recording = Recording([spectrogram], [truth["counts"].astype(float)], dt=0.005)
        tree = fit(recording, family.name, strf=strf_prior, n_lags=n_lags, priors=explicit,
                   seed=seed + replicate, progress=False, **fit_kwargs)
        posterior = tree["posterior"]
        names = [*family.params, *(["strf_scale"] if "strf_scale" in posterior else [])]
        checked = {name: (posterior[name].values.reshape(-1), float(truth[name][0]))
                   for name in names}
        strf_draws = posterior["strf"].values.reshape(-1, n_freq * n_lags)
        for index in weight_index:
            checked[f"strf[{index // n_lags},{index % n_lags}]"] = (
                strf_draws[:, index], float(truth["strf"].reshape(-1)[index]))
        rows.append({name: _rank(draws, value, n_ranks) for name, (draws, value) in
                     checked.items()})
        divergences.append(int(tree["sample_stats"]["diverging"].values.sum()))

    ranks = pd.DataFrame(rows).rename_axis("replicate")
    p_values = pd.Series({
        name: float(chisquare(rank_histogram(ranks[name], n_ranks, bins)).pvalue)
        for name in ranks
    }, name="p_value")
    return SBC(ranks, p_values, n_ranks, bins, pd.Series(divergences, name="divergences"))


def _rank(draws: np.ndarray, truth: float, n_ranks: int) -> int:
    """Rank of ``truth`` among ``n_ranks - 1`` evenly thinned ``draws``."""
    keep = np.linspace(0, draws.size - 1, n_ranks - 1).round().astype(int)
    return int((draws[keep] < truth).sum())
