"""STRF priors: model fragments that sample the weights of ``N`` neurons.

Each prior samples its latents and returns the STRF ``(N, F, L)`` in the model's internal
basis: the stimulus centred per frequency and divided by its standard deviation (see
`bayesstrf.model`), so that prior scales are unit-free. The model turns it back into the
``strf`` site in the units of the recording's spectrogram.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import gammaln
from numpyro.distributions import constraints


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


@dataclass(frozen=True)
class Ridge:
    """Gaussian (ridge) prior whose per-neuron variance is learned, marginalised analytically.

    ``strf_std[n] | v_n ~ Normal(0, v_n I)``, ``v_n ~ InverseGamma(df / 2, df s^2 / 2)`` with
    ``s = drive_scale / sqrt(F L)``, so that with a standardised white stimulus the prior sd of
    the drive is about ``drive_scale``. The sampler sees the marginal multivariate-t prior
    (`IsotropicStudentT`): no funnel between the scale and 200-odd weights. After sampling,
    `scale_draws` draws ``strf_scale = sqrt(v_n)`` from its exact conditional posterior
    ``InverseGamma(df / 2 + D / 2, df s^2 / 2 + |strf_std[n]|^2 / 2)``, one per draw, which
    completes a draw of the joint posterior (as NumPyro's ``infer_discrete`` does for
    marginalised discrete sites).

    Parameters
    ----------
    drive_scale : float
        Prior scale of the drive, in the activation's input units.
    df : float
        Degrees of freedom of the inverse-gamma hyperprior (4: weakly informative, heavy tail).
    """

    drive_scale: float = 1.0
    df: float = 4.0
    name: str = "ridge"

    def __post_init__(self):
        for field_name in ("drive_scale", "df"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(
                    f"strf: expected Ridge({field_name} > 0), found {field_name}={value!r}"
                )

    #: dims of each latent site, after the leading (chain, draw)
    dims = {"strf_scale": ("neuron",), "strf_std": ("neuron", "freq", "lag")}

    def sample(self, n_neurons: int, n_freq: int, n_lags: int) -> jnp.ndarray:
        """Sample the latents; return internal-basis weights ``(N, F, L)``."""
        scale = self.drive_scale / math.sqrt(n_freq * n_lags) * jnp.ones(n_neurons)
        return numpyro.sample(
            "strf_std", IsotropicStudentT(self.df, scale, (n_neurons, n_freq, n_lags))
        )

    def scale_draws(self, weights, key) -> jnp.ndarray:
        """Posterior draws of ``strf_scale (..., N)`` given draws of ``strf_std (..., N, F, L)``."""
        dim = weights.shape[-2] * weights.shape[-1]
        prior_rate = self.df * (self.drive_scale / math.sqrt(dim)) ** 2 / 2
        posterior = dist.InverseGamma(
            self.df / 2 + dim / 2, prior_rate + jnp.sum(jnp.square(weights), axis=(-2, -1)) / 2
        )
        return jnp.sqrt(posterior.sample(key))

    def spec(self) -> dict:
        """JSON-able description, stored in the fit's attrs."""
        return asdict(self)


REGISTRY = {"ridge": Ridge}


def get(prior) -> Ridge:
    """An STRF prior from a name or an instance; unknown names suggest the closest."""
    if isinstance(prior, str) and prior in REGISTRY:
        return REGISTRY[prior]()
    if isinstance(prior, tuple(REGISTRY.values())):
        return prior
    close = difflib.get_close_matches(str(prior), REGISTRY, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"strf: expected one of {sorted(REGISTRY)} or a prior object, found {prior!r}{hint}"
    )
