"""The linear-nonlinear-Poisson model as a NumPyro model function.

``drive = strf * stimulus + intercept``, ``rate = activation(drive)`` (spikes per bin), and
counts are Poisson. Internally the STRF prior works on the stimulus centred per frequency and
divided by its standard deviation, ``x = (S - mean) / scale``; the model reports the STRF in
the recording's own units, ``strf = strf_std / scale``, and the matching deepSTRF bias,
``intercept = drive_offset - sum(strf_std * mean) / scale``, so that
``drive = sum(strf * S) + intercept`` exactly (zero padding included).

Repeats enter through sufficient statistics: for the ``R`` observed trials of a bin,
``sum_r log Poisson(y_r | lam) = Y log(lam) - R lam - sum_r log(y_r!)`` with ``Y = sum_r y_r``.
This is the exact per-trial likelihood (not merely proportional to it), at the cost of one
term per bin whatever the number of repeats; missing (NaN) trials are left out of ``Y`` and
``R``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import NamedTuple, cast

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.nn import softplus
from jax.scipy.special import xlogy
from scipy.special import gammaln

from bayesstrf.data.recording import Recording
from bayesstrf.errors import InputError, InputTypeError
from bayesstrf.model.activations import Activation
from bayesstrf.model.design import Design, lowrank_drive, make_design, strf_drive


class Counts(NamedTuple):
    """Sufficient statistics of the counts over trials, each ``(N, T)``.

    Attributes
    ----------
    total : spikes summed over observed trials
    trials : number of observed (non-NaN) trials
    log_factorial : ``sum_r log(y_r!)`` over observed trials
    """

    total: jnp.ndarray
    trials: jnp.ndarray
    log_factorial: jnp.ndarray


def count_statistics(counts: list[np.ndarray]) -> Counts:
    """Sum repeats of per-segment counts ``(N, R_s, T_s)`` into `Counts` over all bins."""
    stats = []
    for count in counts:
        observed = ~np.isnan(count)
        clean = np.where(observed, count, 0.0)
        stats.append(
            (clean.sum(1), observed.sum(1), np.where(observed, gammaln(clean + 1.0), 0.0).sum(1))
        )
    total, trials, log_factorial = (
        np.concatenate(part, axis=1) for part in zip(*stats, strict=True)
    )
    return Counts(
        jnp.asarray(total, jnp.float32),
        jnp.asarray(trials, jnp.float32),
        jnp.asarray(log_factorial, jnp.float32),
    )


def poisson_log_likelihood(rate: jnp.ndarray, counts: Counts) -> jnp.ndarray:
    """Per-bin log-likelihood of all observed trials, ``(N, T)``; exact, repeats included."""
    return xlogy(counts.total, rate) - counts.trials * rate - counts.log_factorial


def base_distribution(prior: dist.Distribution) -> dist.Distribution:
    """The univariate family inside a prior of `build_priors` (``Independent(Expanded(.))``)."""
    base = prior.base_dist if isinstance(prior, dist.Independent) else prior
    return base.base_dist if isinstance(base, dist.ExpandedDistribution) else base


def _normal_parts(prior: dist.Distribution) -> dist.Normal | None:
    """The Normal inside a prior of `build_priors`, or None for another family."""
    base = base_distribution(prior)
    return base if isinstance(base, dist.Normal) else None


def check_poolable(activation: Activation, priors: Mapping[str, dist.Distribution]) -> None:
    """Partial pooling builds on each activation parameter's Normal prior: check there is one."""
    for name in activation.params:
        if _normal_parts(priors[name]) is None:
            raise InputError(
                f"priors[{name!r}]: pooling='activation' expected a Normal prior (the "
                f"population is pooled around it), found {type(priors[name]).__name__}"
            )


def pooled_sample(name: str, prior: dist.Distribution, n_neurons: int) -> jnp.ndarray:
    """A raw activation parameter under partial pooling, non-centred:
    ``value_n = centre + shift + spread * z_n`` with ``z_n ~ N(0, 1)``.

    ``centre`` and ``scale`` are the population averages of the neurons' default
    (data-centred) Normal prior locations and scales; the population's
    ``shift ~ N(0, scale)`` and ``spread ~ HalfNormal(scale)`` are learned, so that every
    neuron is drawn towards the others, and neurons with few spikes borrow strength from the
    rest.
    """
    normal = cast(dist.Normal, _normal_parts(prior))  # check_poolable: a Normal
    centre = jnp.mean(jnp.broadcast_to(normal.loc, (n_neurons,)))
    scale = jnp.mean(jnp.broadcast_to(normal.scale, (n_neurons,)))
    shift = numpyro.sample(f"{name}_pop_shift", dist.Normal(0.0, scale))
    spread = numpyro.sample(f"{name}_pop_sd", dist.HalfNormal(scale))
    z = numpyro.sample(f"{name}_z", dist.Normal(jnp.zeros(n_neurons), 1.0).to_event(1))
    return numpyro.deterministic(name, centre + shift + spread * z)


def rate_and_sites(
    activation: Activation, strf_prior, priors: Mapping[str, dist.Distribution],
    design: Design, n_neurons: int, pooling: str | None = None,
) -> jnp.ndarray:
    """Sample every latent site and return the rate ``(N, T)`` in spikes per bin."""
    n_freq = design.padded.shape[0]
    kernel = strf_prior.sample(n_neurons, n_freq, design.n_lags)
    weights = numpyro.deterministic("strf", kernel.weights / design.scale)
    offset = numpyro.sample("drive_offset", priors["drive_offset"]) if (
        activation.free_intercept
    ) else 0.0
    intercept = numpyro.deterministic(
        "intercept", offset - jnp.einsum("nfl,f->n", kernel.weights, design.mean) / design.scale
    )
    values = {
        name: pooled_sample(name, priors[name], n_neurons) if pooling == "activation"
        else numpyro.sample(name, priors[name])
        for name in activation.params
    }
    for name, raw in activation.constrained.items():
        numpyro.deterministic(name, softplus(values[raw]))
    if kernel.spectral is None:
        drive = strf_drive(weights, design)
    else:
        drive = lowrank_drive(kernel.spectral / design.scale, kernel.temporal, design)
    return activation.rate((drive + intercept[:, None]).T, values).T


def lnp_rate(
    activation: Activation, strf: jnp.ndarray, intercept: jnp.ndarray,
    values: Mapping[str, jnp.ndarray], design: Design,
) -> jnp.ndarray:
    """Rate ``(N, T)`` from an STRF ``(N, F, L)`` and intercept ``(N,)`` in spectrogram units
    and raw activation parameters ``(N,)``: the model's mean, free of its internal basis."""
    drive = strf_drive(strf, design) + intercept[:, None]
    return activation.rate(drive.T, values).T


def make_model(
    activation: Activation, strf_prior, priors: Mapping[str, dist.Distribution], n_neurons: int,
    pooling: str | None = None,
) -> Callable:
    """Build the NumPyro model for one activation family, STRF prior and set of priors.

    Parameters
    ----------
    activation : Activation
    strf_prior : STRF prior object (see `bayesstrf.model.strf`)
    priors : dict of name -> numpyro Distribution
        Raw-scale priors with event shape ``(N,)`` for every activation parameter (and
        ``drive_offset`` when the family has a free intercept).
    n_neurons : int
    pooling : {None, "activation"}
        ``"activation"``: raw activation parameters partially pooled across neurons
        (`pooled_sample`); None: independent neurons.

    Returns
    -------
    callable ``model(design, counts=None, n_trials=1, priors=priors)``
        With ``counts`` (`Counts`) it conditions on data; with ``counts=None`` it is
        generative and samples ``counts`` of shape ``(N, n_trials, T)``. ``priors`` may be
        passed at call time (same names and shapes), so that one model serves many neurons
        under ``jax.vmap`` (see `bayesstrf.inference.sampler`).
    """
    default_priors = priors

    def model(design: Design, counts: Counts | None = None, n_trials: int = 1,
              priors: Mapping[str, dist.Distribution] = default_priors):
        rate = rate_and_sites(activation, strf_prior, priors, design, n_neurons, pooling)
        if counts is None:
            shape = (n_neurons, n_trials, rate.shape[-1])
            expected = jnp.broadcast_to(rate[:, None], shape)
            numpyro.sample("counts", dist.Poisson(expected).to_event(3))
        else:
            log_lik = dist.Unit(poisson_log_likelihood(rate, counts).sum())
            # numpyro.factor spelled out: it reaches Unit through the attribute
            # numpyro.distributions.distribution, which importing arviz_base before numpyro
            # leaves unset (arviz-base 1.3, numpyro 0.22)
            numpyro.sample("log_likelihood", log_lik, obs=log_lik.sample(None),
                           infer={"is_auxiliary": True})

    return model


def build_priors(
    activation: Activation, mean_rate: np.ndarray, overrides: Mapping | None = None
) -> dict[str, dist.Distribution]:
    """Raw-scale priors with event shape ``(N,)``: the family's defaults, then ``overrides``.

    The defaults are centred from each neuron's mean rate (spikes per bin); families with a
    free intercept also get a prior on ``drive_offset``, the drive at the mean stimulus:
    ``N(mean_rate, 1)`` for softplus (drive in spikes per bin), ``N(log mean_rate, 2)`` for
    the exponential.

    Parameters
    ----------
    activation : Activation
    mean_rate : array (N,)
    overrides : dict of name -> numpyro Distribution, optional
        Univariate priors, batch shape ``()`` or ``(N,)``, replacing defaults by name.
    """
    mean_rate = np.asarray(mean_rate, dtype=float)
    n_neurons = mean_rate.shape[0]
    priors = dict(activation.default_priors(mean_rate))
    if overrides is not None and not isinstance(overrides, Mapping):
        raise InputTypeError(
            f"priors: expected a dict of name -> distribution, found {overrides!r}")
    sites = [*activation.params, *(["drive_offset"] if activation.free_intercept else [])]
    for name, prior in (overrides or {}).items():
        if name not in sites:
            close = difflib.get_close_matches(str(name), sites, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(
                f"priors: expected names among {sorted(sites)} for activation "
                f"{activation.name!r}, found {name!r}{hint}"
            )
        if not isinstance(prior, dist.Distribution):
            raise InputTypeError(
                f"priors[{name!r}]: expected a numpyro distribution, found {type(prior).__name__}"
            )
        if prior.event_shape != () or prior.batch_shape not in ((), (n_neurons,)):
            raise InputError(
                f"priors[{name!r}]: expected a univariate distribution with batch shape () or "
                f"({n_neurons},), found batch {prior.batch_shape}, event {prior.event_shape}"
            )
        priors[name] = prior
    missing = [name for name in sites if name not in priors]
    if missing:
        raise InputError(
            f"priors: activation {activation.name!r} has no default prior for {missing}: "
            f"expected priors={{name: distribution}} for each")
    return {name: prior.expand((n_neurons,)).to_event(1) for name, prior in priors.items()}


def describe_priors(priors: Mapping[str, dist.Distribution]) -> dict:
    """JSON-able description of priors: family and parameters by name (for the fit's attrs)."""
    out = {}
    for name, prior in priors.items():
        base = base_distribution(prior)
        shape = prior.batch_shape + prior.event_shape
        out[name] = {"distribution": type(base).__name__} | {
            arg: np.broadcast_to(np.asarray(getattr(base, arg)), shape).tolist()
            for arg in base.arg_constraints
        }
    return out


def restore_priors(description: Mapping[str, dict]) -> dict[str, dist.Distribution]:
    """The priors that `describe_priors` described, with event shape ``(N,)`` again."""
    priors = {}
    for name, described in description.items():
        arguments = {k: jnp.asarray(v, jnp.float32) for k, v in described.items()
                     if k != "distribution"}
        priors[name] = getattr(dist, described["distribution"])(**arguments).to_event(1)
    return priors


class Problem(NamedTuple):
    """A recording made ready for the model: see `build_problem`."""

    model: Callable
    design: Design
    counts: Counts
    mean_rate: np.ndarray
    priors: dict
    single_model: Callable | None = None

    @property
    def args(self) -> tuple:
        """The model's positional arguments: the data."""
        return (self.design, self.counts)

    @property
    def kwargs(self) -> dict:
        """The model's keyword arguments: the priors, passed at call time so that compiled
        programs take them as arguments (`bayesstrf.compilation`)."""
        return {"priors": self.priors}


def build_problem(recording: Recording, family: Activation, strf_prior,
                  n_lags: int, priors: dict | None = None, *, neuronwise: bool = False,
                  pooling: str | None = None, drive: str = "auto") -> Problem:
    """Design, count statistics, data-centred priors and the NumPyro model for a recording.

    Each neuron's mean rate (spikes per bin per trial; half a spike over all trials for a
    silent neuron) centres the default activation priors. With ``neuronwise``, the problem
    also carries the one-neuron model that `bayesstrf.inference.sampler` runs per neuron (its priors
    are passed per call). ``pooling`` is passed to `bayesstrf.model.lnp.make_model`, ``drive``
    to `bayesstrf.model.design.make_design`.
    """
    design = make_design(recording.spectrograms, n_lags, drive)
    counts = count_statistics(recording.counts)
    mean_rate = np.asarray(counts.total.sum(1) / counts.trials.sum(1), dtype=float)
    mean_rate = np.maximum(mean_rate, 0.5 / np.asarray(counts.trials.sum(1)))
    prior_set = build_priors(family, mean_rate, priors)
    if pooling == "activation":
        check_poolable(family, prior_set)
    model = make_model(family, strf_prior, prior_set, recording.n_neurons, pooling)
    single_model = make_model(family, strf_prior, {}, 1) if neuronwise else None
    return Problem(model, design, counts, mean_rate, prior_set, single_model)
