"""The probability laws and bases the STRF priors (`bayesstrf.model.strf`) are built from: the
per-neuron multivariate Student-t of a Gaussian STRF with its variance marginalised, the
shell law of a unit direction, and the cosine basis and Matern-3/2 spectrum of the smooth
prior.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.scipy.special import gammaln
from numpyro.distributions import constraints


@jax.jit
def inverse_gamma(key, concentration, rate):
    """Draws of ``InverseGamma(concentration, rate)``, one compiled program (JAX's gamma sampler
    compiles slowly op by op)."""
    return dist.InverseGamma(concentration, rate).sample(key)


class IsotropicStudentT(dist.Distribution):
    """Per-neuron Gaussian STRF prior with its variance marginalised: multivariate Student-t.

    ``W[n] | v ~ Normal(0, v I)`` with ``v ~ InverseGamma(df / 2, df scale[n]^2 / 2)`` gives
    ``W[n] ~ t_df(0, scale[n]^2 I)`` over the ``F x L`` weights of neuron ``n``:
    ``log p = lgamma((df + D) / 2) - lgamma(df / 2) - D / 2 log(df pi s^2)
    - (df + D) / 2 log(1 + |W|^2 / (df s^2))``, ``D = F L``.

    Parameters
    ----------
    df : float
    scale : array (N,)
    shape : tuple (N, F, L)
    """

    support = constraints.independent(constraints.real, 3)

    def __init__(self, df: float, scale, shape: tuple[int, int, int]):
        self.df, self.scale = df, jnp.asarray(scale)
        super().__init__(batch_shape=(), event_shape=shape)

    def sample(self, key, sample_shape=()):
        key_var, key_normal = jax.random.split(key)
        variance = dist.InverseGamma(self.df / 2, self.df * self.scale**2 / 2).sample(
            key_var, sample_shape)
        normal = jax.random.normal(key_normal, sample_shape + self.event_shape)
        return normal * jnp.sqrt(variance)[..., None, None]

    def log_prob(self, value):
        dim = self.event_shape[1] * self.event_shape[2]
        squared = jnp.sum(value**2, axis=(-2, -1))
        spread = self.df * self.scale**2
        per_neuron = (
            gammaln((self.df + dim) / 2) - gammaln(self.df / 2)
            - dim / 2 * jnp.log(jnp.pi * spread)
            - (self.df + dim) / 2 * jnp.log1p(squared / spread)
        )
        return per_neuron.sum(-1)

    def fisher_normal(self) -> dist.Distribution:
        """The Gaussian whose precision is this law's Fisher information (its expected
        curvature), ``(df + D) / ((df + D + 2) s^2)`` per weight. At the mode the t's curvature
        is ``(df + D) / (df s^2)``, ``(df + D + 2) / df`` times larger: 129 times for a 34 x 15
        STRF at ``df = 4``, so a Laplace metric taken there is 11 times too narrow wherever the
        data leave a weight to its prior (`bayesstrf.inference.warmup.laplace_metric`)."""
        dim = self.event_shape[1] * self.event_shape[2]
        sd = self.scale * jnp.sqrt((self.df + dim + 2) / (self.df + dim))
        return dist.Normal(jnp.zeros(self.event_shape),
                           jnp.broadcast_to(sd[..., None, None], self.event_shape)).to_event(3)


class ShellDirection(dist.Distribution):
    """Uniformly distributed direction on a thin shell: ``x = r w``, ``w`` uniform on the unit
    sphere of ``R^D`` (the last axis), radius ``r ~ Normal(1, width)`` (truncated at 0, which
    lies ``1 / width`` sds away: negligible).

    The latent of a factor whose likelihood only sees ``x / |x|``. The radius is a nuisance
    whose law is free; a thin shell makes the posterior of ``x`` close to a slab, where the
    standard ``Normal(0, I)`` makes it a cone (transverse width proportional to ``r``, a
    funnel for NUTS). ``log p = -(D - 1) log r - (r - 1)^2 / (2 width^2) + const``.

    Parameters
    ----------
    width : float
    shape : tuple (N, r, D)
    """

    support = constraints.independent(constraints.real, 3)

    def __init__(self, width: float, shape: tuple[int, int, int]):
        self.width = width
        super().__init__(batch_shape=(), event_shape=shape)

    def sample(self, key, sample_shape=()):
        key_direction, key_radius = jax.random.split(key)
        normal = jax.random.normal(key_direction, sample_shape + self.event_shape)
        radius = jnp.abs(1.0 + self.width * jax.random.normal(
            key_radius, sample_shape + self.event_shape[:-1] + (1,)))
        return normal / jnp.linalg.norm(normal, axis=-1, keepdims=True) * radius

    def log_prob(self, value):
        size = self.event_shape[-1]
        radius = jnp.linalg.norm(value, axis=-1)
        log_sphere_area = math.log(2.0) + size / 2 * math.log(math.pi) - gammaln(size / 2)
        per_vector = (-(size - 1) * jnp.log(radius) - log_sphere_area
                      - 0.5 * ((radius - 1.0) / self.width) ** 2
                      - math.log(self.width * math.sqrt(2 * math.pi)))
        return per_vector.sum((-2, -1))


def cosine_basis(size: int) -> np.ndarray:
    """Orthonormal DCT-II basis ``(size, size)``, columns ordered by frequency: the
    eigenvectors of the Laplacian on a grid with reflecting ends."""
    grid, mode = np.arange(size)[:, None], np.arange(size)[None, :]
    basis = np.cos(np.pi * (grid + 0.5) * mode / size) * np.sqrt(2.0 / size)
    basis[:, 0] /= np.sqrt(2.0)
    return basis


def smooth_spectrum(length: jnp.ndarray, size: int) -> jnp.ndarray:
    """Matern-3/2 spectral density over the cosine modes of a grid of ``size``, for
    length-scales ``(...,)`` in grid steps, relative to the constant mode: ``(..., size)``,
    ``(1 + length^2 omega^2 / 3)^-2``.

    Two choices keep the posterior of (white latent, length-scale) close to a product, which
    NUTS needs. Relative to the constant mode: the smooth modes, which the data pin down, keep
    their prior scale whatever the length-scale, and the length-scale only shrinks the rough
    modes, which the prior governs. Matern-3/2 rather than the squared exponential: the
    log-density of a mode moves with the log length-scale by at most 4, where the squared
    exponential's ``length^2 omega^2`` is unbounded (375 divergent transitions of 600 on a
    24 x 16 STRF).
    """
    frequency = jnp.pi * jnp.arange(size) / size  # radians per grid step
    return (1.0 + (length[..., None] * frequency) ** 2 / 3.0) ** -2
