"""Activations against hand-computed values (scipy.special), broadcasting, stability."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import expit, log1p

from bayesstrf.model import activations as act


def softplus_ref(x):
    return np.logaddexp(0.0, x)


X = np.linspace(-4, 4, 17)[:, None] * np.ones((1, 3))  # (T, N=3)
C, D = np.array([-0.3, 0.0, 0.7]), np.array([0.5, 1.0, 1.7])
RAW1, RAW2 = np.array([-1.0, 0.2, 1.4]), np.array([-3.0, -0.5, 0.3])


def test_sigmoid_matches_formula():
    expected = softplus_ref(RAW1) * expit((X - C) / D) + softplus_ref(RAW2)
    got = act.sigmoid(X, C, D, RAW1, RAW2)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_double_exponential_matches_formula():
    k, s = np.array([-1.0, 0.5, 2.0]), np.array([0.3, -1.0, 0.0])
    expected = softplus_ref(RAW1) * np.exp(-np.exp(k * X - s)) + softplus_ref(RAW2)
    np.testing.assert_allclose(act.double_exponential(X, k, s, RAW1, RAW2), expected, rtol=1e-5)


def test_softplus_matches_formula():
    beta = softplus_ref(RAW1 + 5)
    expected = log1p(np.exp(beta * X)) / beta + softplus_ref(RAW2)
    np.testing.assert_allclose(act.softplus(X, RAW1 + 5, RAW2), expected, rtol=1e-5)


def test_signed_output_mode_uses_raw_values_directly():
    got = act.sigmoid(X, C, D, RAW1, RAW2, non_negative_output=False)
    np.testing.assert_allclose(got, RAW1 * expit((X - C) / D) + RAW2, rtol=1e-5)
    got = act.softplus(X, RAW1, RAW2, non_negative_output=False)
    beta = softplus_ref(RAW1)  # beta is always softplus-mapped, as in deepSTRF
    np.testing.assert_allclose(got, softplus_ref(beta * X) / beta + RAW2, rtol=1e-5)


@pytest.mark.parametrize("name", act.FAMILIES)
def test_broadcasting_over_leading_axes(name):
    family = act.get(name)
    rng = np.random.default_rng(0)
    values = {p: jnp.asarray(rng.normal(size=4)) for p in family.params}
    drive = jnp.asarray(rng.normal(size=(2, 5, 4)))
    out = family.rate(drive, values)
    assert out.shape == (2, 5, 4)
    one = family.rate(drive[1, 3], values)
    np.testing.assert_allclose(out[1, 3], one, rtol=1e-6)


@pytest.mark.parametrize("name", act.FAMILIES)
def test_non_negative_and_finite_with_gradients_far_into_saturation(name):
    family = act.get(name)
    drive = jnp.linspace(-1e3, 1e3, 2001, dtype=jnp.float32)[:, None]
    values = {p: jnp.full((1,), 0.3, jnp.float32) for p in family.params}
    rate = family.rate(drive, values)
    assert rate.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(rate))) and bool(jnp.all(rate >= 0))

    def total(x, v):
        return jnp.sum(jnp.log(family.rate(x, v)))

    grad_x, grad_v = jax.grad(total, argnums=(0, 1))(drive, values)
    assert bool(jnp.all(jnp.isfinite(grad_x)))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grad_v.values())


def test_fixed_conventions_reproduce_deepstrf_forms():
    drive = jnp.asarray(X)
    sig = act.get("sigmoid").rate(drive, {"c": C, "raw_b": RAW1, "raw_a": RAW2})
    np.testing.assert_allclose(sig, act.sigmoid(X, C, 1.0, RAW1, RAW2), rtol=1e-6)
    dexp = act.get("double_exponential").rate(drive, {"s": C, "raw_a": RAW1, "raw_b": RAW2})
    np.testing.assert_allclose(dexp, act.double_exponential(X, -1.0, C, RAW1, RAW2), rtol=1e-6)
    # k = -1: a larger drive never lowers the rate
    assert bool(jnp.all(jnp.diff(dexp, axis=0) >= 0))


def test_inverse_softplus_roundtrip():
    y = np.array([1e-6, 0.01, 0.5, 3.0, 30.0, 300.0])
    np.testing.assert_allclose(softplus_ref(act.inverse_softplus(y)), y, rtol=1e-9)


def test_unknown_name_lists_valid_ones_and_suggests():
    with pytest.raises(ValueError, match=r"activation: .*found 'softplu'.*did you mean"):
        act.get("softplu")


@pytest.mark.parametrize("name", act.FAMILIES)
def test_default_priors_are_raw_scale_normals_per_neuron(name):
    family = act.get(name)
    priors = family.default_priors(np.array([0.05, 0.2]))
    offset = {"drive_offset"} if family.free_intercept else set()
    assert set(priors) == set(family.params) | offset
    for prior in priors.values():
        assert prior.batch_shape == (2,)
        assert bool(jnp.all(jnp.isfinite(prior.log_prob(jnp.zeros(2)))))
