"""Held-out prediction metrics for neural response models.

``observed`` holds the spike counts of one neuron for one stimulus segment, shape
``(n_trials, n_time)``, NaN marking missing data (whole trials or single bins); counts are
non-negative, and integer-valued for the Poisson metrics. ``prediction`` is the predicted
rate in spikes per bin, shape ``(n_time,)``. Variances and covariances are over time with
``ddof=0`` throughout, signal power included. :func:`cc_norm_draws` applies ``cc_norm`` to
every posterior draw of an :class:`xarray.DataArray` at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike
from scipy import stats
from scipy.special import gammaln, logsumexp, xlogy

from bayesstrf.errors import InputError


def _as_observed(observed: ArrayLike, *, counts: bool = False) -> np.ndarray:
    y = np.asarray(observed, dtype=float)
    if y.ndim != 2:
        raise InputError(f"observed: expected a 2-D array (n_trials, n_time), found {y.shape}")
    if y.size == 0 or np.isnan(y).all():
        raise InputError(f"observed: expected some non-missing counts, found none in {y.shape}")
    valid = y[~np.isnan(y)]
    if np.isinf(valid).any():
        raise InputError("observed: expected finite counts or NaN, found inf")
    if valid.min() < 0:
        raise InputError(f"observed: expected non-negative counts, found minimum {valid.min()}")
    if counts and (valid != np.round(valid)).any():
        raise InputError("observed: expected integer-valued counts, found non-integer values")
    return y


def _as_rates(x: ArrayLike, n_time: int, *, name: str, ndim: int, shape: str,
              non_negative: bool = False) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != ndim:
        raise InputError(f"{name}: expected a {ndim}-D array {shape}, found shape {x.shape}")
    if x.shape[-1] != n_time:
        raise InputError(f"{name}: expected n_time = {n_time} as observed, found {x.shape[-1]}")
    if not np.isfinite(x).all():
        raise InputError(f"{name}: expected finite values, found NaN or inf")
    if non_negative and x.size and x.min() < 0:
        raise InputError(f"{name}: expected non-negative rates, found minimum {x.min()}")
    return x


def _complete_trials(y: np.ndarray) -> np.ndarray:
    complete = y[~np.isnan(y).any(axis=1)]
    if complete.shape[0] < 2:
        msg = f"expected at least 2 complete (non-NaN) trials, found {complete.shape[0]}"
        raise InputError(f"observed: {msg}")
    return complete


def _signal_power(y: np.ndarray) -> float:
    r = y.shape[0]
    return float((r * y.mean(axis=0).var() - y.var(axis=1).mean()) / (r - 1))


def _corr(x: np.ndarray, target: np.ndarray, target_var: float | None = None) -> np.ndarray:
    """Correlation of ``x`` (..., T) with ``target`` (T,); ``target_var`` replaces Var(target)
    (CCnorm when it is the signal power). NaN for constant ``x`` or non-positive ``target_var``.
    """
    xc = x - x.mean(axis=-1, keepdims=True)
    tc = target - target.mean()
    cov = xc @ tc / tc.size
    var_x = np.einsum("...t,...t->...", xc, xc) / tc.size
    var_t: float | np.ndarray = target_var if target_var is not None else (
        tc @ tc / tc.size if np.ptp(target) > 0 else 0.0)
    ok = (np.ptp(x, axis=-1) > 0) & (var_t > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, cov / np.sqrt(var_x * var_t), np.nan)


def signal_power(observed: ArrayLike) -> float:
    """Signal power of repeated trials (Sahani & Linden 2003).

    ``SP = (Var(sum_r y_r) - sum_r Var(y_r)) / (R (R - 1))
    = (R Var(PSTH) - mean_r Var(y_r)) / (R - 1)``, variances over time (``ddof=0``), an
    unbiased estimate of the variance over time of the true mean response.

    Parameters
    ----------
    observed : array (n_trials, n_time)
        Spike counts; trials with any NaN are dropped.

    Returns
    -------
    float
        In (spikes/bin)^2; may be negative for very noisy data.
    """
    return _signal_power(_complete_trials(_as_observed(observed)))


def cc_raw(prediction: ArrayLike, observed: ArrayLike) -> float:
    """Pearson correlation between ``prediction`` and the PSTH.

    The PSTH is the per-bin mean over non-missing trials; bins missing in every trial are
    left out. NaN when the prediction or the PSTH is constant.

    Parameters
    ----------
    prediction : array (n_time,)
    observed : array (n_trials, n_time)
    """
    y = _as_observed(observed)
    x = _as_rates(prediction, y.shape[1], name="prediction", ndim=1, shape="(n_time,)")
    n = (~np.isnan(y)).sum(axis=0)
    psth = np.nansum(y, axis=0)[n > 0] / n[n > 0]
    return float(_corr(x[n > 0], psth))


def cc_norm(prediction: ArrayLike, observed: ArrayLike) -> float:
    """Normalised correlation coefficient (Schoppe et al. 2016).

    ``CCnorm = Cov(prediction, PSTH) / sqrt(Var(prediction) SP)`` with ``SP`` from
    :func:`signal_power`. PSTH and ``SP`` both use the complete (non-NaN) trials only.
    Invariant to positive affine transforms of ``prediction``.

    Parameters
    ----------
    prediction : array (n_time,)
    observed : array (n_trials, n_time)
        At least 2 complete trials.

    Returns
    -------
    float
        NaN when ``SP <= 0`` (no detectable signal) or the prediction is constant (0/0).
    """
    y = _complete_trials(_as_observed(observed))
    x = _as_rates(prediction, y.shape[1], name="prediction", ndim=1, shape="(n_time,)")
    return float(_corr(x, y.mean(axis=0), _signal_power(y)))


def cc_max(observed: ArrayLike, *, n_splits: int | None = None, seed: int = 0) -> float:
    """Ceiling on the correlation with the PSTH from split halves (Hsu, Borst & Theunissen 2004).

    With per-trial noise-to-signal variance ratio ``k``, the PSTHs of two disjoint halves of
    ``a`` and ``b`` trials correlate as ``CC_half = 1 / sqrt((1 + k/a)(1 + k/b))``; solving
    for ``k`` and evaluating the correlation of the true mean response with the PSTH of all
    ``R = a + b`` trials gives ``CCmax = 1 / sqrt(1 + k/R)``. For ``a = b`` this is
    ``sqrt(2 / (1 + 1/CC_half))`` (Spearman-Brown); unequal halves (odd ``R``) are handled
    exactly.

    Parameters
    ----------
    observed : array (n_trials, n_time)
        Spike counts; only complete (non-NaN) trials are used, at least 2.
    n_splits : int, optional
        None (default): one deterministic split, even-indexed versus odd-indexed complete
        trials. Otherwise ``CC_half`` is averaged over this many random splits before the
        correction.
    seed : int
        Seed of the random splits; unused when ``n_splits`` is None.

    Returns
    -------
    float
        0 when ``CC_half <= 0`` (no detectable signal); NaN when a half-PSTH is constant.
    """
    y = _complete_trials(_as_observed(observed))
    r = y.shape[0]
    a, b = (r + 1) // 2, r // 2
    if n_splits is None:
        splits = [np.concatenate([np.arange(0, r, 2), np.arange(1, r, 2)])]
    elif n_splits < 1:
        raise InputError(f"n_splits: expected a positive integer or None, found {n_splits}")
    else:
        rng = np.random.default_rng(seed)
        splits = [rng.permutation(r) for _ in range(n_splits)]
    cc_half = np.mean([_corr(y[s[:a]].mean(axis=0), y[s[a:]].mean(axis=0)) for s in splits])
    if np.isnan(cc_half):
        return np.nan
    if cc_half <= 0:
        return 0.0
    k = (np.sqrt((a - b) ** 2 + 4 * a * b / cc_half**2) - r) / 2
    return float(1 / np.sqrt(1 + k / r))


def cc_norm_segments(predictions: Sequence[ArrayLike], observeds: Sequence[ArrayLike]) -> float:
    """CCnorm over several stimulus segments, computed per segment and length-weighted.

    ``sum_i T_i CCnorm_i / sum_i T_i`` over the segments whose CCnorm is defined (not NaN).

    Parameters
    ----------
    predictions : sequence of arrays (n_time_i,)
    observeds : sequence of arrays (n_trials_i, n_time_i)

    Returns
    -------
    float
        NaN when no segment has a defined CCnorm.
    """
    if len(predictions) != len(observeds) or len(predictions) == 0:
        raise InputError(
            "predictions: expected a non-empty sequence as long as observeds "
            f"({len(observeds)}), found {len(predictions)}"
        )
    values = np.array([cc_norm(x, y) for x, y in zip(predictions, observeds, strict=True)])
    lengths = np.array([np.shape(y)[1] for y in observeds], dtype=float)
    ok = ~np.isnan(values)
    if not ok.any():
        return np.nan
    return float(values[ok] @ lengths[ok] / lengths[ok].sum())


def _poisson_terms(rates: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``sum_{r,t} (y_rt log rate_t - rate_t)`` over non-missing entries, per row of ``rates``."""
    present = ~np.isnan(y)
    return xlogy(np.nansum(y, axis=0), rates).sum(axis=-1) - rates @ present.sum(axis=0)


def log_predictive_density(prediction_draws: ArrayLike, observed: ArrayLike) -> float:
    """Poisson log predictive density of held-out counts over posterior draws.

    ``log (1/S) sum_s prod_{r,t} Poisson(y_rt | lambda_st)``, computed with ``logsumexp``;
    missing (NaN) entries are skipped.

    Parameters
    ----------
    prediction_draws : array (n_draws, n_time)
        Predicted rates (spikes/bin), one row per posterior draw, non-negative.
    observed : array (n_trials, n_time)
        Integer spike counts.

    Returns
    -------
    float
        Log predictive density in nats (``-inf`` if every draw gives the data probability 0).
    """
    y = _as_observed(observed, counts=True)
    lam = _as_rates(prediction_draws, y.shape[1], name="prediction_draws", ndim=2,
                    shape="(n_draws, n_time)", non_negative=True)
    if lam.shape[0] == 0:
        raise InputError("prediction_draws: expected at least one draw, found 0")
    log_lik = _poisson_terms(lam, y) - gammaln(y[~np.isnan(y)] + 1).sum()
    return float(logsumexp(log_lik) - np.log(lam.shape[0]))


def bits_per_spike(prediction: ArrayLike, observed: ArrayLike,
                   baseline_rate: float | None = None) -> float:
    """Poisson log-likelihood gain over a constant-rate model, in bits per spike.

    ``(LL(prediction) - LL(baseline_rate)) / (n_spikes ln 2)`` with
    ``LL(lambda) = sum_{r,t} y_rt log lambda_t - lambda_t - log y_rt!`` over non-missing
    entries. A constant prediction equal to ``baseline_rate`` scores exactly 0.

    Parameters
    ----------
    prediction : array (n_time,)
        Predicted rate (spikes/bin), non-negative.
    observed : array (n_trials, n_time)
        Integer spike counts.
    baseline_rate : float, optional
        Rate (spikes/bin) of the constant model, e.g. the training-set mean; default the
        mean count per non-missing bin of ``observed``.

    Returns
    -------
    float
        NaN when ``observed`` holds no spike.
    """
    y = _as_observed(observed, counts=True)
    x = _as_rates(prediction, y.shape[1], name="prediction", ndim=1, shape="(n_time,)",
                  non_negative=True)
    n_spikes = np.nansum(y)
    if n_spikes == 0:
        return np.nan
    if baseline_rate is None:
        baseline_rate = n_spikes / (~np.isnan(y)).sum()
    elif not (np.isfinite(baseline_rate) and baseline_rate > 0):
        raise InputError(f"baseline_rate: expected a positive finite rate, found {baseline_rate}")
    gain = _poisson_terms(x, y) - _poisson_terms(np.full_like(x, baseline_rate), y)
    return float(gain / (n_spikes * np.log(2)))


def psth_coverage(prediction_draws: ArrayLike, observed: ArrayLike, prob: float = 0.9) -> float:
    """Share of bins whose observed PSTH lies in its central ``prob`` posterior predictive interval.

    Repeats enter through the summed count: the PSTH of bin ``t`` is ``K_t / R_t``, ``K_t`` the
    count summed over its ``R_t`` non-missing trials, whose posterior predictive is the mixture
    over draws of ``Poisson(R_t lambda_st)``, with CDF ``F_t``. Counts are discrete, so a plain
    interval covers more than ``prob``; here each bin counts the share of its randomised PIT
    ``U ~ Uniform(F_t(K_t - 1), F_t(K_t))`` that falls in ``[(1 - prob) / 2, (1 + prob) / 2]``:
    exactly ``prob`` on average when the data come from the predictive.

    Parameters
    ----------
    prediction_draws : array (n_draws, n_time)
        Predicted rates (spikes/bin), one row per posterior draw, non-negative.
    observed : array (n_trials, n_time)
        Integer spike counts (NaN: missing).
    prob : float
        Interval mass, in (0, 1).

    Returns
    -------
    float
        Mean over bins with at least one trial; NaN if there is none.
    """
    if not 0 < prob < 1:
        raise InputError(f"prob: expected a probability in (0, 1), found {prob}")
    y = _as_observed(observed, counts=True)
    lam = _as_rates(prediction_draws, y.shape[1], name="prediction_draws", ndim=2,
                    shape="(n_draws, n_time)", non_negative=True)
    if lam.shape[0] == 0:
        raise InputError("prediction_draws: expected at least one draw, found 0")
    trials = (~np.isnan(y)).sum(axis=0)
    seen = trials > 0
    if not seen.any():
        return np.nan
    total = np.nansum(y, axis=0)[seen]
    mean = lam[:, seen] * trials[seen]
    below = stats.poisson.cdf(total - 1, mean).mean(axis=0)
    upto = stats.poisson.cdf(total, mean).mean(axis=0)
    low, high = (1 - prob) / 2, (1 + prob) / 2
    width = upto - below  # 0 only for a count the predictive gives no mass: U = F(K) then
    inside = np.clip(np.minimum(upto, high) - np.maximum(below, low), 0, None)
    share = np.where(width > 0, inside / np.where(width > 0, width, 1),
                     (low <= upto) & (upto <= high))
    return float(np.mean(share))


def draws_interval(values: ArrayLike, prob: float = 0.9) -> tuple[float, float, float]:
    """Mean and central (equal-tailed) interval of a metric over posterior draws.

    Parameters
    ----------
    values : array (...)
        Metric values, one per draw; all entries are pooled.
    prob : float
        Interval mass, in (0, 1).

    Returns
    -------
    mean, lower, upper : float
        NaN if any value is NaN.
    """
    if not 0 < prob < 1:
        raise InputError(f"prob: expected a probability in (0, 1), found {prob}")
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise InputError("values: expected at least one value, found an empty array")
    lower, upper = np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2])
    return float(v.mean()), float(lower), float(upper)


def cc_norm_draws(prediction: xr.DataArray, observed: ArrayLike | xr.DataArray, *,
                  time_dim: str = "time") -> xr.DataArray:
    """:func:`cc_norm` of every posterior draw, vectorised.

    Parameters
    ----------
    prediction : DataArray (..., time)
        Predicted rates with any sample dims (e.g. ``chain``, ``draw``).
    observed : array or DataArray (n_trials, n_time)
        Spike counts; a DataArray is put in (other, ``time_dim``) order. Time bins are
        matched by position, not by coordinate.
    time_dim : str
        Name of the time dimension of ``prediction`` (and of ``observed`` if a DataArray).

    Returns
    -------
    DataArray (...)
        CCnorm named ``"cc_norm"``, with the dims of ``prediction`` except ``time_dim``.
    """
    if time_dim not in prediction.dims:
        raise InputError(f"prediction: expected a {time_dim!r} dim, found dims {prediction.dims}")
    if isinstance(observed, xr.DataArray):
        observed = observed.transpose(..., time_dim).values
    y = _complete_trials(_as_observed(observed))
    prediction = prediction.transpose(..., time_dim)
    _as_rates(prediction.values, y.shape[1], name="prediction", ndim=prediction.ndim,
              shape=f"(..., {time_dim})")
    return xr.apply_ufunc(
        _corr, prediction, input_core_dims=[[time_dim]],
        kwargs={"target": y.mean(axis=0), "target_var": _signal_power(y)},
    ).rename("cc_norm")
