"""Model: exact likelihood with repeats, internal basis, generative mode, priors."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro import handlers
from scipy.stats import poisson

from bayesstrf.model import activations as act
from bayesstrf.model.design import make_design, strf_drive
from bayesstrf.model.lnp import (
    build_priors,
    count_statistics,
    describe_priors,
    make_model,
    poisson_log_likelihood,
    restore_priors,
)
from bayesstrf.model.strf import Ridge


def counts_with_missing(rng, shape=(2, 5, 30), rate=1.3):
    counts = rng.poisson(rate, size=shape).astype(float)
    counts[0, 1] = np.nan  # a missing trial
    counts[1, 3, 4:9] = np.nan  # missing bins
    return counts


def test_summed_repeats_equal_per_trial_likelihood():
    rng = np.random.default_rng(0)
    counts = [counts_with_missing(rng), counts_with_missing(rng, (2, 4, 20))]
    rates = rng.uniform(0.1, 3.0, size=(2, 50))
    stats = count_statistics(counts)
    got = np.asarray(poisson_log_likelihood(jnp.asarray(rates, jnp.float32), stats))
    expected = np.zeros((2, 50))
    for seg, offset in ((counts[0], 0), (counts[1], 30)):
        for n in range(2):
            for r in range(seg.shape[1]):
                y = seg[n, r]
                ok = ~np.isnan(y)
                bins = np.arange(y.size)[ok] + offset
                expected[n, bins] += poisson.logpmf(y[ok], rates[n, bins])
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-4)


def test_summed_and_per_trial_forms_give_the_same_posterior():
    """Summing R repeats (Poisson with R x rate) differs from per-trial terms by a constant
    only, so the log posterior differs by a constant: same gradient, same posterior."""
    rng = np.random.default_rng(1)
    counts = rng.poisson(0.7, size=(1, 4, 40)).astype(float)
    stats = count_statistics([counts])

    def per_trial(log_rate):
        rate = jnp.exp(log_rate)
        return jnp.sum(counts * log_rate - rate)

    def summed(log_rate):
        return jnp.sum(poisson_log_likelihood(jnp.exp(log_rate)[None], stats))

    for log_rate in (jnp.zeros(40), jnp.linspace(-2, 1, 40)):
        np.testing.assert_allclose(
            jax.grad(summed)(log_rate), jax.grad(per_trial)(log_rate), rtol=1e-5, atol=1e-5
        )
    delta0 = summed(jnp.zeros(40)) - per_trial(jnp.zeros(40))
    delta1 = summed(jnp.linspace(-2, 1, 40)) - per_trial(jnp.linspace(-2, 1, 40))
    np.testing.assert_allclose(delta0, delta1, rtol=1e-5)


@pytest.mark.parametrize("name", ["sigmoid", "double_exponential", "softplus", "exponential"])
def test_model_strf_and_intercept_reproduce_the_internal_drive(name):
    """strf = strf_std / scale and intercept absorb the centring exactly."""
    family = act.get(name)
    rng = np.random.default_rng(2)
    specs = [rng.lognormal(size=(5, 40)), rng.lognormal(size=(5, 25))]
    design = make_design(specs, 4)
    priors = build_priors(family, np.array([0.1, 0.2]))
    model = make_model(family, Ridge(), priors, 2)
    trace = handlers.trace(handlers.seed(model, 3)).get_trace(design, None, 2)
    strf_std = trace["strf_std"]["value"]
    centred = [(s - np.asarray(design.mean)[:, None]) / float(design.scale) for s in specs]
    offset = trace["drive_offset"]["value"] if family.free_intercept else np.zeros(2)
    internal = strf_drive(strf_std, make_design(centred, 4))
    drive = strf_drive(trace["strf"]["value"], design) + trace["intercept"]["value"][:, None]
    # identical except in the first L-1 bins of each segment, where zero padding in
    # spectrogram units differs from zero padding of the centred stimulus
    keep = np.r_[3:40, 43:65]
    np.testing.assert_allclose(
        np.asarray(drive)[:, keep], np.asarray(internal + offset[..., None])[:, keep],
        rtol=1e-4, atol=1e-4,
    )
    assert trace["counts"]["value"].shape == (2, 2, 65)


def test_generative_counts_follow_the_rate():
    family = act.get("exponential")
    rng = np.random.default_rng(4)
    design = make_design([rng.lognormal(size=(3, 4000))], 2)
    priors = build_priors(family, np.array([0.5]))
    model = make_model(family, Ridge(), priors, 1)
    fixed = {"strf_std": np.zeros((1, 3, 2)), "strf_scale": np.ones(1),
             "drive_offset": np.log([0.5])}
    trace = handlers.trace(handlers.seed(handlers.condition(model, fixed), 0)).get_trace(
        design, None, 3
    )
    counts = np.asarray(trace["counts"]["value"])
    assert counts.shape == (1, 3, 4000)
    assert abs(counts.mean() - 0.5) < 4 * np.sqrt(0.5 / counts.size)


def test_build_priors_overrides_and_errors():
    family = act.get("softplus")
    priors = build_priors(family, np.array([0.1, 0.2]), {"raw_beta": dist.Normal(2.0, 0.5)})
    assert set(priors) == {"raw_beta", "raw_b", "drive_offset"}
    assert priors["raw_beta"].event_shape == (2,)
    described = describe_priors(priors)
    assert described["raw_beta"] == {"distribution": "Normal", "loc": [2.0, 2.0],
                                     "scale": [0.5, 0.5]}
    with pytest.raises(ValueError, match=r"priors: .*found 'raw_bta'.*did you mean 'raw_beta'"):
        build_priors(family, np.array([0.1]), {"raw_bta": dist.Normal(0, 1)})
    with pytest.raises(TypeError, match=r"priors\['raw_b'\]: expected a numpyro distribution"):
        build_priors(family, np.array([0.1]), {"raw_b": 3.0})
    with pytest.raises(ValueError, match=r"priors\['raw_b'\]: expected a univariate"):
        build_priors(family, np.array([0.1, 0.2]), {"raw_b": dist.Normal(jnp.zeros(3), 1.0)})
    with pytest.raises(TypeError, match=r"priors: expected a dict"):
        build_priors(family, np.array([0.1]), [dist.Normal(0, 1)])


@pytest.mark.parametrize("family", act.FAMILIES)
def test_restore_priors_inverts_describe_priors(family):
    priors = build_priors(act.get(family), np.array([0.05, 0.3]))
    restored = restore_priors(json.loads(json.dumps(describe_priors(priors))))
    before, after = describe_priors(priors), describe_priors(restored)
    assert after.keys() == before.keys()
    for name, described in before.items():  # the rebuilt parameters are float32
        assert after[name]["distribution"] == described["distribution"]
        for arg, value in described.items():
            if arg != "distribution":
                np.testing.assert_allclose(after[name][arg], value, rtol=1e-6)
    assert all(restored[n].event_shape == (2,) for n in priors)
