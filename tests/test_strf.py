"""STRF priors against closed forms: the marginal ridge prior (scipy), the low-rank factors'
shell (numerical integration), the smooth prior's
kernel (Matern-3/2), the localized envelope, the horseshoe's cap, low-rank structure,
the per-chain sign convention, names and bad arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro import handlers
from scipy import integrate
from scipy.stats import f as f_dist
from scipy.stats import invgamma, kstest, multivariate_t, norm

from bayesstrf.model import strf
from bayesstrf.model.strf import Localized, LowRank, Ridge, Smooth, Sparse
from bayesstrf.model.strf_laws import (
    IsotropicStudentT,
    ShellDirection,
    cosine_basis,
    smooth_spectrum,
)


def test_marginal_prior_matches_scipy_multivariate_t():
    scales = np.array([0.3, 0.7])
    prior = IsotropicStudentT(4.0, jnp.asarray(scales), (2, 3, 2))
    x = np.random.default_rng(0).normal(size=(2, 3, 2))
    expected = sum(
        multivariate_t(loc=np.zeros(6), shape=np.eye(6) * s**2, df=4).logpdf(x[i].ravel())
        for i, s in enumerate(scales)
    )
    np.testing.assert_allclose(prior.log_prob(jnp.asarray(x)), expected, rtol=1e-5)


def test_shell_direction_density_integrates_to_one_and_matches_its_sampler():
    shell = ShellDirection(0.2, (1, 1, 2))
    density = lambda y, x: float(jnp.exp(shell.log_prob(jnp.array([[[x, y]]]))))  # noqa: E731
    total, _ = integrate.dblquad(density, -2.5, 2.6, -2.5, 2.6, epsabs=1e-7)  # off the origin
    assert abs(total - 1.0) < 1e-4
    draws = np.asarray(ShellDirection(0.1, (2, 3, 5)).sample(jax.random.PRNGKey(0), (4000,)))
    radius = np.linalg.norm(draws, axis=-1).ravel()
    assert kstest(radius, norm(1.0, 0.1).cdf).pvalue > 0.01
    direction = (draws / np.linalg.norm(draws, axis=-1, keepdims=True)).reshape(-1, 5)
    # uniform on the sphere: mean 0, covariance I / D
    np.testing.assert_allclose(direction.mean(0), 0.0, atol=0.02)
    np.testing.assert_allclose(np.cov(direction.T), np.eye(5) / 5, atol=0.01)


def test_marginal_prior_samples_have_the_scale_mixture_variance():
    prior = IsotropicStudentT(6.0, jnp.array([0.5]), (1, 4, 3))
    draws = np.asarray(prior.sample(jax.random.PRNGKey(1), (40000,)))
    # t_6 with scale s: variance s^2 * 6 / 4
    np.testing.assert_allclose(draws.var(), 0.25 * 1.5, rtol=0.05)


def test_fisher_normal_has_the_laws_fisher_information():
    """The precision of `fisher_normal` is the variance of the score under the t itself
    (Monte Carlo), far below the t's curvature at its mode, ``(df + D) / (df s^2)``."""
    prior = IsotropicStudentT(4.0, jnp.array([0.5]), (1, 4, 3))
    draws = prior.sample(jax.random.PRNGKey(2), (40000,))
    scores = np.asarray(jax.vmap(jax.grad(prior.log_prob))(draws))
    fisher = scores.reshape(len(scores), -1).var(0).mean()
    precision = 1 / float(prior.fisher_normal().base_dist.scale[0, 0, 0]) ** 2
    np.testing.assert_allclose(precision, fisher, rtol=0.03)
    assert precision < (4.0 + 12) / (4.0 * 0.25) / 3


def test_scale_draws_follow_the_conditional_inverse_gamma():
    prior = Ridge(drive_scale=2.0, df=4.0)
    weights = np.random.default_rng(3).normal(0, 0.4, size=(1, 3, 4))
    samples = {"strf_std": jnp.broadcast_to(weights, (1, 4000, 1, 3, 4))}
    draws = prior.completed(samples, jax.random.PRNGKey(0))["strf_scale"][0]
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



def test_cosine_basis_is_orthonormal_and_spectrum_keeps_the_constant_mode():
    basis = cosine_basis(7)
    np.testing.assert_allclose(basis.T @ basis, np.eye(7), atol=1e-12)
    spectrum = np.asarray(smooth_spectrum(jnp.array([0.5, 3.0]), 7))
    np.testing.assert_allclose(spectrum[:, 0], 1.0)
    assert (np.diff(spectrum[1]) < 0).all()  # longer length-scale: power falls with frequency


def test_smooth_prior_covariance_approximates_a_matern_kernel():
    """The weights' prior correlation between channels at distance d is Matern-3/2's
    (1 + sqrt(3) d / l) exp(-sqrt(3) d / l) away from the edges (the cosine basis is exact up
    to boundary effects and aliasing)."""
    size, length = 40, 3.0
    spectrum = np.asarray(smooth_spectrum(jnp.array(length), size))
    basis = cosine_basis(size)
    kernel = basis @ np.diag(spectrum) @ basis.T
    centre = size // 2
    correlation = kernel[centre] / kernel[centre, centre]
    distance = np.arange(size) - centre
    scaled = np.sqrt(3) * np.abs(distance[centre - 8:centre + 9]) / length
    np.testing.assert_allclose(correlation[centre - 8:centre + 9],
                               (1 + scaled) * np.exp(-scaled), atol=0.01)


def test_smooth_prior_is_ridge_with_tiny_length_scales():
    white = np.random.default_rng(1).normal(size=(2, 6, 5))
    scale = np.array([0.5, 2.0])
    tiny = {"length_freq": jnp.full(2, 1e-3), "length_lag": jnp.full(2, 1e-3),
            "strf_white": jnp.asarray(white), "strf_scale": jnp.asarray(scale)}
    with handlers.condition(data=tiny), handlers.seed(rng_seed=0):
        out = Smooth().sample(2, 6, 5)
    # white spectrum: an orthonormal change of basis of a white latent, i.e. the ridge prior
    expected = scale[:, None, None] * np.einsum("fi,nij,lj->nfl", cosine_basis(6), white,
                                                cosine_basis(5))
    np.testing.assert_allclose(out.weights, expected, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(out.weights, axis=(1, 2)),
                               scale * np.linalg.norm(white, axis=(1, 2)), rtol=1e-5)


def test_smooth_prior_weights_have_ridges_multivariate_t_law():
    # Smooth samples sqrt(v) where Ridge marginalises it; the weights' law must not change:
    # for W ~ t_df(0, s^2 I_D), |W|^2 / (D s^2) ~ F(D, df)
    prior, n, size = Smooth(drive_scale=1.5, df=4.0), 4000, (6, 5)
    tiny = {"length_freq": jnp.full(n, 1e-3), "length_lag": jnp.full(n, 1e-3)}
    with handlers.condition(data=tiny), handlers.seed(rng_seed=3):
        weights = np.asarray(prior.sample(n, *size).weights)
    dim = size[0] * size[1]
    statistic = (weights**2).sum(axis=(1, 2)) / (dim * (1.5 / np.sqrt(dim)) ** 2)
    assert kstest(statistic, f_dist(dim, 4.0).cdf).pvalue > 0.01


def test_localized_envelope_is_one_at_its_centre():
    fixed = {"strf_white": jnp.ones((1, 9, 7)), "centre_freq": jnp.array([2.0]),
             "centre_lag": jnp.array([4.0]), "width_freq": jnp.array([1.5]),
             "width_lag": jnp.array([1.0])}
    with handlers.condition(data=fixed), handlers.seed(rng_seed=0):
        envelope = np.asarray(Localized().sample(1, 9, 7).weights[0])
    assert np.unravel_index(envelope.argmax(), envelope.shape) == (2, 4)
    np.testing.assert_allclose(envelope[2, 4], 1.0)
    np.testing.assert_allclose(envelope[3, 5], 1 / ((1 + 1 / 1.5**2) * (1 + 1)), rtol=1e-5)


def test_sparse_prior_caps_each_weight_scale_at_the_slab():
    """Regularized horseshoe: tau * lambda~ <= c whatever lambda and tau."""
    fixed = {"strf_white": jnp.ones((1, 3, 2)), "strf_local": jnp.full((1, 3, 2), 1e6),
             "strf_global": jnp.array([10.0]), "strf_slab": jnp.array([0.25])}
    with handlers.condition(data=fixed), handlers.seed(rng_seed=0):
        weights = np.asarray(Sparse().sample(1, 3, 2).weights)
    np.testing.assert_allclose(weights, 0.5, rtol=1e-4)  # sqrt(c^2) with c^2 = 0.25
    fixed["strf_local"] = jnp.full((1, 3, 2), 1e-3)
    with handlers.condition(data=fixed), handlers.seed(rng_seed=0):
        small = np.asarray(Sparse().sample(1, 3, 2).weights)
    np.testing.assert_allclose(small, 10.0 * 1e-3, rtol=1e-3)  # tau lambda when far below c


@pytest.mark.parametrize("factors", ["ridge", "smooth"])
def test_lowrank_weights_have_the_rank_unit_factors_and_ordered_gains(factors):
    with handlers.seed(rng_seed=3):
        with handlers.trace() as trace:
            kernel = LowRank(rank=2, factors=factors).sample(3, 8, 6)
    w = np.asarray(kernel.weights)
    assert all(np.linalg.matrix_rank(w[n], tol=1e-5) == 2 for n in range(3))
    gain = np.asarray(trace["gain"]["value"])
    assert (np.diff(gain, axis=1) <= 0).all() and (gain > 0).all()
    for axis in ("spectral", "temporal"):
        np.testing.assert_allclose(np.linalg.norm(trace[axis]["value"], axis=-1), 1, rtol=1e-5)
    expected = np.einsum("nr,nrf,nrl->nfl", gain, trace["spectral"]["value"],
                         trace["temporal"]["value"])
    np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-7)


def test_lowrank_reports_the_identified_svd_of_each_draw_whatever_the_factors():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(2, 5)), rng.normal(size=(2, 4))  # two non-orthogonal components
    mixing = [np.eye(2), np.array([[-1.0, 0.0], [0.3, 1.0]]), -np.eye(2)]  # per chain
    spectral = [np.linalg.inv(m).T @ u for m in mixing]  # same product, other factors
    temporal = [m @ v for m in mixing]
    strf = np.stack([np.broadcast_to(a.T @ b, (3, 1, 5, 4)) for a, b in
                     zip(spectral, temporal, strict=True)])
    strf = strf + 1e-3 * rng.normal(size=strf.shape)  # draws differ a little
    samples = {"strf": strf, "gain_step": np.ones((3, 3, 1, 2)),
               "spectral_raw": np.zeros((3, 3, 1, 2, 5)), "temporal_raw": np.zeros((3, 3, 1, 2, 4))}
    reported = LowRank(rank=2).completed(samples, None)
    assert not {"gain_step", "spectral_raw", "temporal_raw"} & set(reported)
    np.testing.assert_allclose(reported["strf"], strf)
    gain, spec, temp = reported["gain"], reported["spectral"], reported["temporal"]
    assert (np.diff(gain, axis=-1) <= 0).all()
    identity = np.broadcast_to(np.eye(2), (3, 3, 1, 2, 2))
    np.testing.assert_allclose(np.einsum("...rf,...sf->...rs", spec, spec), identity, atol=1e-9)
    np.testing.assert_allclose(np.einsum("...rl,...sl->...rs", temp, temp), identity, atol=1e-9)
    # the rank-2 product is rebuilt, up to the small rank-3,4 remainder of the noise
    rebuilt = np.einsum("...r,...rf,...rl->...fl", gain, spec, temp)
    assert np.abs(rebuilt - strf).max() < 1e-2
    # one sign for all chains and draws: every draw's factors are close to every other's
    flat = temp.reshape(-1, 2, 4)
    np.testing.assert_allclose(flat, np.broadcast_to(flat[0], flat.shape), atol=1e-2)


def test_prior_names_ranks_and_bad_arguments():
    assert isinstance(strf.get("smooth"), Smooth) and isinstance(strf.get("sparse"), Sparse)
    assert strf.get("lowrank:3") == LowRank(rank=3)
    with pytest.raises(ValueError, match=r"did you mean 'smooth'"):
        strf.get("smoth")
    with pytest.raises(ValueError, match=r"strf: expected LowRank\(rank in 1..4\)"):
        LowRank(rank=5)
    with pytest.raises(ValueError, match=r"strf: expected LowRank\(factors="):
        LowRank(factors="sparse")
    with pytest.raises(ValueError, match=r"strf: expected Smooth\(length_freq > 0\)"):
        Smooth(length_freq=0.0)
