"""STRF priors: the marginal ridge prior against scipy, its sampler, names."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import invgamma, kstest, multivariate_t

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


def test_scale_draws_follow_the_conditional_inverse_gamma():
    prior = Ridge(drive_scale=2.0, df=4.0)
    weights = np.random.default_rng(3).normal(0, 0.4, size=(1, 3, 4))
    draws = np.asarray(prior.scale_draws(jnp.broadcast_to(weights, (4000, 1, 3, 4)),
                                         jax.random.PRNGKey(0)))
    s2 = (2.0 / np.sqrt(12)) ** 2
    conditional = invgamma(4.0 / 2 + 12 / 2, scale=4.0 * s2 / 2 + (weights**2).sum() / 2)
    assert kstest(draws[:, 0] ** 2, conditional.cdf).pvalue > 0.01


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
