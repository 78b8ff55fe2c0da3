"""Moment matching of high-k LOO units: the model it rebuilds is the one that was sampled, and
it moves the LOO estimate of a hard unit towards the exact refit's."""


import jax
import numpy as np
import pytest
from arviz_stats.base import array_stats
from numpyro.infer.util import potential_energy
from scipy.special import logsumexp

from bayesstrf import fit, simulate
from bayesstrf.data.recording import Recording
from bayesstrf.evaluation.comparison import _refit_units, loo_tree, pointwise_loo
from bayesstrf.evaluation.moment_matching import (
    fitted_model,
    holds_every_site,
    loo_moment_matched,
    unconstrained_draws,
)
from bayesstrf.model.prediction import log_likelihood

BLOCK = 100


def _log_mean_exp_se(draws: np.ndarray) -> float:
    """Monte Carlo standard error of ``log mean exp(draws)``, draws ``(chain, draw)``: the
    delta method with the weights' effective sample size."""
    weights = np.exp(draws - draws.max())
    ess = array_stats.ess(weights, chain_axis=-2, draw_axis=-1)
    return float(weights.std() / weights.mean() / np.sqrt(ess))


def test_rebuilt_model_gives_the_samplers_log_density(tiny_simulation, tiny_fit):
    model, args, kwargs, _ = fitted_model(tiny_fit, tiny_simulation.recording)
    flat, unravel = unconstrained_draws(tiny_fit, model, args)
    log_density = jax.vmap(lambda x: -potential_energy(model, args, kwargs, unravel(x)))(flat)
    # NUTS recorded each neuron's log density (one NUTS per neuron): they sum to the joint
    recorded = tiny_fit["sample_stats"]["lp"].sum("neuron").values.ravel()
    np.testing.assert_allclose(np.asarray(log_density), recorded, rtol=1e-4)


def test_another_recording_is_refused(tiny_fit):
    other = simulate("softplus", n_neurons=2, n_freq=4, n_lags=3, n_time=600, n_trials=2,
                     n_segments=3, seed=99)
    with pytest.raises(ValueError, match="recording: expected the recording the fits"):
        fitted_model(tiny_fit, other.recording)


def test_moment_matching_moves_a_hard_unit_to_its_exact_leave_one_out_value():
    sim = simulate("softplus", n_neurons=1, n_freq=4, n_lags=3, n_time=1600, n_trials=2,
                   n_segments=2, seed=7)
    counts = [np.array(c) for c in sim.recording.counts]
    # an outlying block, a spike added to every other bin of one trial: PSIS's k is ~1.0
    counts[0][0, 0, :BLOCK:2] += 1
    recording = Recording(sim.recording.spectrograms, counts, sim.recording.dt)
    settings = dict(n_lags=3, chains=4, warmup=200, draws=250, seed=0, progress=False)
    full = fit(recording, "softplus", **settings)
    tree = loo_tree(full, log_likelihood(full, recording, block_bins=BLOCK))
    loo = pointwise_loo(tree)
    assert int(np.argmax(loo.pareto_k.values)) == 0 and float(loo.pareto_k[0]) > 0.7
    matched = loo_moment_matched(full, recording, tree, loo, BLOCK, 0.7)

    # exact LOO: refit without the block, predict it (the priors, centred on the mean rate,
    # move a little too: a small bias left to both methods)
    refit = fit(recording.without(0, 0, slice(0, BLOCK)), "softplus", **settings)
    draws = log_likelihood(refit, recording, block_bins=BLOCK).values[..., 0, 0]
    exact = logsumexp(draws) - np.log(draws.size)
    psis_error = abs(float(loo.elpd_i[0]) - exact)
    matched_error = abs(float(matched.elpd_i[0]) - exact)
    assert float(matched.pareto_k[0]) < 0.7
    # over seeds 0-3 (2026-12-07) matching removed 45-58% of PSIS's error, the exact value's
    # own Monte Carlo SE being 0.18-0.46, the size of that error (with warmup trees capped
    # at depth 7, tried on 2026-12-07, seed 0 gave PSIS 0.38 and matching 0.58 from the exact
    # value, whose SE was 0.41). With the lag matrix stored (T, F L) (other rounding, other
    # draws) it removed 16%, 96% and 41% over seeds 0-2. Matching must not leave the estimate
    # further from the exact value than PSIS's, or agree with it within 3 of its standard errors
    bound = max(psis_error, 3 * _log_mean_exp_se(draws))
    assert matched_error < bound, (exact, float(loo.elpd_i[0]), float(matched.elpd_i[0]))

    # compare's last resort, `_refit_units`, scores that unit by a refit warm-started from the
    # full fit (one warmup stage of 100 iterations): the same exact elpd within Monte Carlo
    # error (4 standard errors of the two log-mean-exp estimates, by the delta method)
    ll = tree["log_likelihood"]["counts"]
    lpd = logsumexp(ll.values, axis=(0, 1)) - np.log(ll.sizes["chain"] * ll.sizes["draw"])
    scored = _refit_units(loo, lpd, np.array([0]), ll, recording, full, BLOCK, settings)
    warm = fit(recording.without(0, 0, slice(0, BLOCK)), "softplus",
               **settings | {"warmup": 100, "start": full})
    warm_draws = log_likelihood(warm, recording, block_bins=BLOCK).values[..., 0, 0]
    np.testing.assert_allclose(float(scored.elpd_i[0]),
                               logsumexp(warm_draws) - np.log(warm_draws.size), rtol=1e-6)
    error = np.hypot(_log_mean_exp_se(draws), _log_mean_exp_se(warm_draws))
    assert abs(float(scored.elpd_i[0]) - exact) < 4 * error, (float(scored.elpd_i[0]), exact)
    assert warm.attrs["sampler_init"].startswith("previous fit")
    assert float(scored.pareto_k[0]) == 0.0
    np.testing.assert_array_equal(scored.elpd_i.values[1:], loo.elpd_i.values[1:])
    np.testing.assert_allclose(scored.elpd, float(scored.elpd_i.sum()), rtol=1e-9)


def test_a_low_rank_fit_is_not_matched_and_its_refits_start_from_scratch(tiny_simulation,
                                                                          tiny_fit):
    """A low-rank STRF prior drops its unidentified sampler sites from the posterior, so
    neither moment matching nor a warm start can rebuild its draws: `compare` leaves it to
    PSIS (and refits it from scratch)."""
    recording = tiny_simulation.recording
    low_rank = fit(recording, "softplus", strf="lowrank:1", n_lags=3, chains=1, warmup=20,
                   draws=10, progress=False)
    assert not holds_every_site(low_rank, recording)
    assert holds_every_site(tiny_fit, recording)
