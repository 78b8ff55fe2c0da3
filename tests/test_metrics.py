"""Tests of bayesstrf.evaluation.metrics against brute-force references, scipy and closed forms."""

import numpy as np
import pytest
import xarray as xr
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from bayesstrf.evaluation.metrics import (
    bits_per_spike,
    cc_max,
    cc_norm,
    cc_norm_draws,
    cc_norm_segments,
    cc_raw,
    draws_interval,
    log_predictive_density,
    psth_coverage,
    signal_power,
)


def poisson_trials(seed: int = 0, n_trials: int = 8, n_time: int = 300):
    """A non-constant rate and Poisson counts drawn from it."""
    rng = np.random.default_rng(seed)
    rate = 2.0 + 1.5 * np.sin(np.linspace(0, 12 * np.pi, n_time)) + rng.uniform(0, 1, n_time)
    return rate, rng.poisson(rate, size=(n_trials, n_time)).astype(float)


def with_missing_trial(y: np.ndarray) -> np.ndarray:
    return np.insert(y, 1, np.nan, axis=0)


# --- closed forms --------------------------------------------------------------------------


def test_noise_free_repeats_give_cc_norm_one():
    psth = np.array([0, 1, 3, 2, 5, 4, 1, 0, 2, 6], dtype=float)
    y = np.tile(psth, (5, 1))
    # identical trials: SP = Var(PSTH), so CCnorm is the plain correlation.
    assert signal_power(y) == pytest.approx(psth.var())
    for prediction in (psth, 3.0 * psth + 2.0, 0.01 * psth - 7.0):
        assert cc_norm(prediction, y) == pytest.approx(1.0, abs=1e-12)
    assert cc_norm(-psth, y) == pytest.approx(-1.0, abs=1e-12)


def test_constant_prediction_gives_zero_bits_per_spike():
    _, y = poisson_trials()
    y[1, 5:9] = np.nan
    mean_rate = np.nanmean(y)
    assert bits_per_spike(np.full(y.shape[1], mean_rate), y) == 0.0
    assert bits_per_spike(np.full(y.shape[1], 1.7), y, baseline_rate=1.7) == 0.0
    # any other constant is worse than the maximum-likelihood constant
    assert bits_per_spike(np.full(y.shape[1], 1.3 * mean_rate), y) < 0


def test_bits_per_spike_matches_scipy_poisson():
    rate, y = poisson_trials(1)
    ll = stats.poisson.logpmf(y, rate).sum() - stats.poisson.logpmf(y, 1.5).sum()
    expected = ll / (y.sum() * np.log(2))
    assert bits_per_spike(rate, y, baseline_rate=1.5) == pytest.approx(expected, rel=1e-12)
    assert bits_per_spike(rate, y) > 0


def test_bits_per_spike_without_spikes_is_nan():
    assert np.isnan(bits_per_spike(np.ones(4), np.zeros((3, 4))))


# --- signal power --------------------------------------------------------------------------


def test_signal_power_matches_brute_force_definition():
    _, y = poisson_trials(2, n_trials=6, n_time=50)
    r = y.shape[0]
    total = np.zeros(y.shape[1])
    for trial in y:
        total = total + trial
    var_sum = np.mean((total - total.mean()) ** 2)
    sum_var = sum(np.mean((trial - trial.mean()) ** 2) for trial in y)
    assert signal_power(y) == pytest.approx((var_sum - sum_var) / (r * (r - 1)), rel=1e-12)


def test_signal_power_recovers_true_signal_variance():
    # SP is unbiased for Var_t(rate). Over 200 seeds of this design its relative sd is
    # 1.1 %, so a 5 % tolerance is about 4.5 sd.
    n_time = 4000
    rate = 3.0 + 2.0 * np.sin(np.linspace(0, 40 * np.pi, n_time)) ** 3
    y = np.random.default_rng(3).poisson(rate, size=(20, n_time)).astype(float)
    assert signal_power(y) == pytest.approx(rate.var(), rel=0.05)
    # the PSTH variance alone is inflated by the noise
    assert y.mean(axis=0).var() > 1.05 * rate.var()


# --- correlations --------------------------------------------------------------------------


def test_cc_raw_equals_pearsonr():
    rate, y = poisson_trials(4)
    prediction = rate + np.random.default_rng(5).normal(0, 0.5, rate.size)
    expected = stats.pearsonr(prediction, y.mean(axis=0)).statistic
    assert cc_raw(prediction, y) == pytest.approx(expected, rel=1e-12)


def test_cc_raw_psth_uses_non_missing_trials_per_bin():
    rate, y = poisson_trials(6)
    y[0, :40] = np.nan
    y[3, 100:] = np.nan
    y[:, 7] = np.nan  # a bin missing everywhere is left out
    keep = np.arange(y.shape[1]) != 7
    psth = np.array([np.mean(col[~np.isnan(col)]) for col in y[:, keep].T])
    expected = stats.pearsonr(rate[keep], psth).statistic
    assert cc_raw(rate, y) == pytest.approx(expected, rel=1e-12)


def test_cc_norm_near_one_for_true_rate_while_cc_raw_is_not():
    # Over 200 seeds of this design: CCnorm = 1.000 (sd 0.0016), CCraw = 0.945 (sd 0.0014).
    n_time = 4000
    rate = 3.0 + 2.0 * np.sin(np.linspace(0, 40 * np.pi, n_time)) ** 3
    y = np.random.default_rng(7).poisson(rate, size=(20, n_time)).astype(float)
    assert cc_norm(rate, y) == pytest.approx(1.0, abs=0.01)
    assert cc_raw(rate, y) < 0.96


def test_cc_norm_undefined_cases_are_nan():
    _, y = poisson_trials(8)
    for constant in (2.0, 0.1, 1 / 3):
        assert np.isnan(cc_norm(np.full(y.shape[1], constant), y))
        assert np.isnan(cc_raw(np.full(y.shape[1], constant), y))
    noise = np.random.default_rng(9).poisson(2.0, size=(4, 6)).astype(float)
    noise[:, 0] = [0, 0, 9, 9]  # large trial-to-trial variance, PSTH nearly flat
    assert signal_power(noise) <= 0
    assert np.isnan(cc_norm(np.arange(6.0), noise))


@pytest.mark.parametrize(("n_trials", "noise_sd"), [(10, 2.0), (9, 2.0), (4, 1.0)])
def test_cc_max_matches_gaussian_analytic_value(n_trials, noise_sd):
    # y_r = s + noise: corr(s, PSTH) = 1 / sqrt(1 + noise_var / (R Var(s))). Over 100 seeds
    # (R = 9) the estimator's sd is 0.002; the tolerance 0.01 is 5 sd. Counts are offset to
    # stay non-negative (correlations ignore the offset). Odd R checks the unequal halves.
    n_time = 20000
    rng = np.random.default_rng(n_trials)
    s = rng.normal(size=n_time)
    y = 20.0 + s + noise_sd * rng.normal(size=(n_trials, n_time))
    analytic = 1 / np.sqrt(1 + noise_sd**2 / (n_trials * s.var()))
    assert cc_max(y) == pytest.approx(analytic, abs=0.01)
    assert cc_max(y, n_splits=20, seed=1) == pytest.approx(analytic, abs=0.01)
    # Schoppe et al.'s SP-based ceiling and CCraw / CCmax agree with it
    assert np.sqrt(signal_power(y) / y.mean(axis=0).var()) == pytest.approx(analytic, abs=0.01)
    assert cc_raw(s, y) / cc_max(y) == pytest.approx(cc_norm(s, y), abs=0.01)


def orthogonal_trials(n_trials: int, noise_ratio: float, n_time: int = 64):
    """Signal ``s`` and trials ``s + n_r`` whose centred parts are exactly orthogonal, with
    Var(s) = 1 and Var(n_r) = noise_ratio, so sample moments equal the model's exactly."""
    m = np.random.default_rng(n_trials).normal(size=(n_time, n_trials + 2))
    m[:, 0] = 1.0
    q = np.linalg.qr(m)[0][:, 1:] * np.sqrt(n_time)  # orthonormal, orthogonal to constants
    s = q[:, 0]
    y = 30.0 + s + np.sqrt(noise_ratio) * q[:, 1:].T
    return 30.0 + s, y


@pytest.mark.parametrize("n_trials", [2, 3, 4, 7])
def test_exact_moments_give_closed_forms(n_trials):
    # SP = 1; corr(s, PSTH) = 1 / sqrt(1 + k/R); halves of a and b trials correlate as
    # 1 / sqrt((1 + k/a)(1 + k/b)) for every split, from which cc_max must recover it.
    k = 3.0
    s, y = orthogonal_trials(n_trials, k)
    ceiling = 1 / np.sqrt(1 + k / n_trials)
    assert signal_power(y) == pytest.approx(1.0, rel=1e-9)
    assert cc_norm(s, y) == pytest.approx(1.0, rel=1e-9)
    assert cc_raw(s, y) == pytest.approx(ceiling, rel=1e-9)
    assert cc_max(y) == pytest.approx(ceiling, rel=1e-9)
    assert cc_max(y, n_splits=3, seed=0) == pytest.approx(ceiling, rel=1e-9)


def test_cc_max_even_odd_split_is_spearman_brown():
    _, y = poisson_trials(20, n_trials=6)
    c = stats.pearsonr(y[0::2].mean(axis=0), y[1::2].mean(axis=0)).statistic
    assert cc_max(y) == pytest.approx(np.sqrt(2 * c / (1 + c)), rel=1e-12)
    noise = np.random.default_rng(21).poisson(3.0, size=(6, 300)).astype(float)
    c = stats.pearsonr(noise[0::2].mean(axis=0), noise[1::2].mean(axis=0)).statistic
    assert c < 0 and cc_max(noise) == 0.0


def test_cc_max_deterministic_and_seeded():
    _, y = poisson_trials(10)
    assert cc_max(y) == cc_max(y)
    assert cc_max(y, n_splits=5, seed=3) == cc_max(y, n_splits=5, seed=3)
    assert cc_max(np.tile(np.arange(5.0), (4, 1))) == pytest.approx(1.0)


def test_cc_norm_segments_is_length_weighted():
    segments = [poisson_trials(seed, n_time=n) for seed, n in [(11, 100), (12, 300)]]
    predictions = [rate for rate, _ in segments]
    observeds = [y for _, y in segments]
    each = [cc_norm(x, y) for x, y in segments]
    expected = (100 * each[0] + 300 * each[1]) / 400
    assert cc_norm_segments(predictions, observeds) == pytest.approx(expected, rel=1e-12)
    # a segment with undefined CCnorm (constant prediction) is left out
    flat = np.full(50, 1.0)
    assert cc_norm_segments([*predictions, flat], [*observeds, observeds[0][:, :50]]) == (
        pytest.approx(expected, rel=1e-12)
    )


# --- log predictive density ----------------------------------------------------------------


def test_log_predictive_density_single_draw_is_poisson_log_likelihood():
    rate, y = poisson_trials(13)
    y[2, 10:20] = np.nan
    expected = np.nansum(stats.poisson.logpmf(y, rate))
    assert log_predictive_density(rate[None], y) == pytest.approx(expected, rel=1e-12)
    twice = log_predictive_density(np.stack([rate, rate]), y)
    assert twice == pytest.approx(expected, rel=1e-12)


def test_log_predictive_density_averages_likelihoods_over_draws():
    rate, y = poisson_trials(14, n_trials=2, n_time=5)
    draws = np.stack([rate, 0.8 * rate, rate + 0.3])
    lik = [np.prod(stats.poisson.pmf(y, d)) for d in draws]
    assert log_predictive_density(draws, y) == pytest.approx(np.log(np.mean(lik)), rel=1e-12)


# --- missing data ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metric",
    [
        lambda rate, y: signal_power(y),
        cc_raw,
        cc_norm,
        lambda rate, y: cc_max(y),
        lambda rate, y: cc_max(y, n_splits=4, seed=0),
        lambda rate, y: log_predictive_density(np.stack([rate, 1.1 * rate]), y),
        bits_per_spike,
    ],
)
def test_all_nan_trial_is_skipped(metric):
    rate, y = poisson_trials(15)
    assert metric(rate, with_missing_trial(y)) == pytest.approx(metric(rate, y), rel=1e-12)


# --- bad inputs ------------------------------------------------------------------------------


_, _Y = poisson_trials(16, n_trials=3, n_time=20)
_RATE = np.ones(20)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: cc_norm(_RATE, _Y[0]), r"observed: expected a 2-D array .*found \(20,\)"),
        (lambda: cc_raw(_RATE[:19], _Y), "prediction: expected n_time = 20"),
        (lambda: cc_raw(np.ones((2, 20)), _Y), "prediction: expected a 1-D array"),
        (lambda: signal_power(_Y[:1]), "observed: expected at least 2 complete"),
        (lambda: signal_power(with_missing_trial(_Y[:1])), "observed: .*found 1"),
        (lambda: cc_max(_Y[:1]), "observed: expected at least 2 complete"),
        (lambda: signal_power(-_Y), "observed: expected non-negative counts"),
        (lambda: bits_per_spike(_RATE, _Y + 0.5), "observed: expected integer-valued"),
        (lambda: bits_per_spike(-_RATE, _Y), "prediction: expected non-negative"),
        (lambda: bits_per_spike(_RATE, _Y, baseline_rate=0.0), "baseline_rate: expected"),
        (lambda: cc_norm(np.full(20, np.nan), _Y), "prediction: expected finite"),
        (lambda: log_predictive_density(_RATE, _Y), "prediction_draws: expected a 2-D"),
        (lambda: log_predictive_density(np.ones((2, 21)), _Y), "prediction_draws: .*21"),
        (lambda: cc_norm_segments([_RATE], []), "predictions: expected a non-empty"),
        (lambda: cc_max(_Y, n_splits=0), "n_splits: expected a positive"),
        (lambda: draws_interval([1.0, 2.0], prob=1.0), "prob: expected"),
        (lambda: psth_coverage(_RATE[None], _Y, prob=0.0), "prob: expected"),
        (lambda: psth_coverage(-_RATE[None], _Y), "prediction_draws: expected non-negative"),
        (lambda: psth_coverage(np.ones((0, 20)), _Y), "prediction_draws: expected at least"),
        (lambda: cc_norm_draws(xr.DataArray(np.ones((2, 20)), dims=("draw", "t")), _Y),
         "prediction: expected a 'time' dim"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- posterior draws ---------------------------------------------------------------------------

def _mixture_recording(seed: int, n_trials: int = 3, n_time: int = 20_000, n_draws: int = 5):
    """Rates from 0.02 to 6 spikes/bin, ``n_draws`` posterior-like draws around them, and counts
    drawn from the posterior predictive: a draw per bin, then Poisson counts per trial."""
    rng = np.random.default_rng(seed)
    rate = np.exp(rng.uniform(np.log(0.02), np.log(6.0), n_time))
    draws = rate * rng.gamma(20.0, 1 / 20.0, size=(n_draws, n_time))
    chosen = draws[rng.integers(n_draws, size=n_time), np.arange(n_time)]
    return draws, rng.poisson(chosen, size=(n_trials, n_time)).astype(float)


@pytest.mark.parametrize("prob", [0.5, 0.9])
def test_psth_coverage_is_prob_when_data_come_from_the_predictive(prob):
    draws, y = _mixture_recording(seed=3)
    # 20,000 bins: the share's sd is below 0.5 / sqrt(20,000) = 0.0035
    assert psth_coverage(draws, y, prob) == pytest.approx(prob, abs=0.012)


def test_psth_coverage_matches_a_randomised_pit_from_scipy():
    draws, y = _mixture_recording(seed=4, n_time=400)
    total, trials = y.sum(0), y.shape[0]
    rng = np.random.default_rng(0)
    hits = []
    for t in range(y.shape[1]):  # the predictive's CDF, one bin at a time
        def cdf(k, t=t):
            return np.mean([stats.poisson(trials * lam).cdf(k) for lam in draws[:, t]])

        pit = rng.uniform(cdf(total[t] - 1), cdf(total[t]), size=4000)
        hits.append(np.mean((pit >= 0.05) & (pit <= 0.95)))
    assert psth_coverage(draws, y) == pytest.approx(np.mean(hits), abs=0.005)


def test_psth_coverage_falls_for_an_overconfident_wrong_prediction():
    draws, y = _mixture_recording(seed=5)
    # the low-rate bins, mostly 0 spikes, stay covered
    assert psth_coverage(draws / 3, y) < 0.75


def test_psth_coverage_skips_missing_trials():
    draws, y = _mixture_recording(seed=6, n_time=500)
    assert psth_coverage(draws, with_missing_trial(y)) == pytest.approx(psth_coverage(draws, y))



def test_cc_norm_draws_matches_per_draw_cc_norm():
    rate, y = poisson_trials(17)
    rng = np.random.default_rng(18)
    values = rate[:, None, None] * rng.lognormal(0, 0.3, size=(rate.size, 2, 50))
    prediction = xr.DataArray(values, dims=("time", "chain", "draw"))
    observed = xr.DataArray(y.T, dims=("time", "trial"))
    result = cc_norm_draws(prediction, observed)
    assert result.dims == ("chain", "draw") and result.name == "cc_norm"
    expected = [[cc_norm(values[:, c, d], y) for d in range(50)] for c in range(2)]
    np.testing.assert_allclose(result.values, expected, rtol=1e-12)
    mean, lower, upper = draws_interval(result.values, prob=0.9)
    assert lower < mean < upper


def test_draws_interval_equal_tailed():
    values = np.arange(101.0).reshape(1, 101)
    assert draws_interval(values, prob=0.9) == pytest.approx((50.0, 5.0, 95.0))
    assert all(np.isnan(draws_interval([1.0, np.nan])))


# --- properties ----------------------------------------------------------------------------------


_RATE_P, _Y_P = poisson_trials(19, n_trials=6, n_time=30)


@settings(max_examples=60, deadline=None)
@given(
    prediction=arrays(np.float64, 30, elements=st.floats(-10, 10)),
    slope=st.floats(0.1, 10),
    offset=st.floats(-100, 100),
)
def test_cc_norm_invariant_to_positive_affine_maps(prediction, slope, offset):
    assume(prediction.std() > 0.1)
    assert cc_norm(slope * prediction + offset, _Y_P) == pytest.approx(
        cc_norm(prediction, _Y_P), abs=1e-9
    )
