"""STRF priors: the marginal ridge prior against scipy, its sampler, names."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro import handlers
from scipy.stats import invgamma, multivariate_t

from bayesstrf import strf
from bayesstrf.strf import IsotropicStudentT, Ridge


def test_marginal_prior_matches_scipy_multivariate_t():
    scales = np.array([0.3, 0.7])
    prior = IsotropicStudentT(4.0, jnp.asarray(scales), (2, 3, 2))
    x = np.random.default_rng(0).normal(size=(2, 3, 2))
    expected = sum(
        multivariate_t(loc=np.zeros(6), shape=np.eye(6) * s**2, df=4).logpdf(x[i].ravel())
        for i, s in enumerate(scales)
    )
    np.testing.assert_allclose(prior.log_prob(jnp.asarray(x)), expected, rtol=1e-5)


def test_marginal_prior_samples_have_the_scale_mixture_variance():
    prior = IsotropicStudentT(6.0, jnp.array([0.5]), (1, 4, 3))
    draws = np.asarray(prior.sample(jax.random.PRNGKey(1), (40000,)))
    # t_6 with scale s: variance s^2 * 6 / 4
    np.testing.assert_allclose(draws.var(), 0.25 * 1.5, rtol=0.05)


def test_reported_scale_is_the_conditional_posterior_mean_of_the_variance():
    prior = Ridge(drive_scale=2.0, df=4.0)
    trace = handlers.trace(handlers.seed(lambda: prior.sample(2, 3, 4), 0)).get_trace()
    weights = np.asarray(trace["strf_std"]["value"])
    s2 = (2.0 / np.sqrt(12)) ** 2
    conditional = invgamma(4.0 / 2 + 12 / 2, scale=4.0 * s2 / 2 + (weights**2).sum((1, 2)) / 2)
    np.testing.assert_allclose(trace["strf_scale"]["value"] ** 2, conditional.mean(), rtol=1e-5)


def test_names_and_bad_priors():
    assert isinstance(strf.get("ridge"), Ridge)
    custom = Ridge(drive_scale=3.0)
    assert strf.get(custom) is custom
    with pytest.raises(ValueError, match=r"strf: .*did you mean 'ridge'"):
        strf.get("ridgee")
    with pytest.raises(ValueError, match=r"strf: expected Ridge\(drive_scale > 0\)"):
        Ridge(drive_scale=-1.0)
    with pytest.raises(ValueError, match=r"strf: expected Ridge\(df > 0\)"):
        Ridge(df=0)
