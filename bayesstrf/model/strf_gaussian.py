"""The Gaussian STRF priors: `Ridge`, `Smooth` and `Localized` (`bayesstrf.model.strf` lists
every prior).

They share one form: a white latent ``Z`` with a per-neuron variance
``v ~ InverseGamma(df / 2, df s^2 / 2)``, mapped linearly to the weights. `Ridge` and
`Localized` marginalise ``v`` analytically (`IsotropicStudentT`) and draw it from its exact
conditional after sampling (``completed``); `Smooth` samples ``sqrt(v)`` (see its docstring).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayesstrf.model.strf_kernel import Kernel, _check_positive
from bayesstrf.model.strf_laws import (
    IsotropicStudentT,
    cosine_basis,
    inverse_gamma,
    smooth_spectrum,
)


@dataclass(frozen=True)
class _WhiteLatent:
    """Shared by `Ridge`, `Smooth` and `Localized`: ``Z[n] ~ t_df(0, s^2 I)`` (the per-neuron
    variance ``v_n ~ InverseGamma(df / 2, df s^2 / 2)`` marginalised), ``s = drive_scale /
    sqrt(F L)``, the weights a linear map of ``Z``."""

    drive_scale: float = 1.0
    df: float = 4.0

    name: ClassVar[str]
    latent = "strf_white"
    target_accept = 0.8  # NUTS's target acceptance rate in `bayesstrf.fit` by default

    def __post_init__(self):
        _check_positive(self, "drive_scale", "df")

    def _latent_sd(self, dim: int) -> float:
        """``s = drive_scale / sqrt(D)``: the prior scale of each of the ``D`` latents."""
        return self.drive_scale / math.sqrt(dim)

    def _white(self, n_neurons: int, n_freq: int, n_lags: int) -> jnp.ndarray:
        scale = self._latent_sd(n_freq * n_lags) * jnp.ones(n_neurons)
        return numpyro.sample(
            self.latent, IsotropicStudentT(self.df, scale, (n_neurons, n_freq, n_lags))
        )

    def _scale(self, n_neurons: int, n_freq: int, n_lags: int) -> jnp.ndarray:
        """Sample ``strf_scale (N,)``, ``sqrt(v_n)``: the variance that `_white` marginalises."""
        spread = self.df * self._latent_sd(n_freq * n_lags) ** 2
        law = dist.TransformedDistribution(dist.InverseGamma(self.df / 2, spread / 2),
                                           dist.transforms.PowerTransform(0.5))
        return numpyro.sample("strf_scale", law.expand((n_neurons,)).to_event(1))

    def completed(self, samples: dict, key) -> dict:
        """The draws with ``strf_scale (chain, draw, N)``, ``sqrt(v_n)``, from its exact conditional
        ``InverseGamma(df / 2 + D / 2, df s^2 / 2 + |Z[n]|^2 / 2)`` given each draw of ``Z``."""
        white = samples[self.latent]
        dim = white.shape[-2] * white.shape[-1]
        prior_rate = self.df * self._latent_sd(dim) ** 2 / 2
        variance = inverse_gamma(key, self.df / 2 + dim / 2,
                                  prior_rate + jnp.sum(jnp.square(white), axis=(-2, -1)) / 2)
        return samples | {"strf_scale": np.asarray(jnp.sqrt(variance))}

    def spec(self) -> dict:
        """JSON-able description, stored in the fit's attrs."""
        return {"name": self.name} | asdict(self)


@dataclass(frozen=True)
class Ridge(_WhiteLatent):
    """Gaussian (ridge) prior whose per-neuron variance is learned, marginalised analytically.

    ``strf_std[n] | v_n ~ Normal(0, v_n I)``: the sampler sees the marginal multivariate-t
    prior (`IsotropicStudentT`), so there is no funnel between the scale and 200-odd weights;
    ``strf_scale = sqrt(v_n)`` is drawn afterwards from its exact conditional, which completes
    a draw of the joint posterior (as NumPyro's ``infer_discrete`` does for marginalised
    discrete sites).

    Parameters
    ----------
    drive_scale : float
        Prior scale of the drive, in the activation's input units.
    df : float
        Degrees of freedom of the inverse-gamma hyperprior (4: weakly informative, heavy tail).
    """

    name = "ridge"
    latent = "strf_std"
    dims = {"strf_scale": ("neuron",), "strf_std": ("neuron", "freq", "lag")}

    def sample(self, n_neurons: int, n_freq: int, n_lags: int) -> Kernel:
        """Sample the latents; return the internal-basis `Kernel`."""
        return Kernel(self._white(n_neurons, n_freq, n_lags))


@dataclass(frozen=True)
class Smooth(_WhiteLatent):
    """Gaussian-process prior, smooth over frequency and lag (ASD-like), non-centred.

    ``W[n] = sigma_n Phi_F (sqrt(S_F(l_freq) S_L(l_lag)) * Z0) Phi_L^T`` with orthonormal
    cosine bases ``Phi`` (reduced-rank GP with reflecting ends, every mode kept),
    Matern-3/2 spectral densities ``S`` relative to the constant mode (so ``sigma_n`` is
    the prior sd of the smoothest mode; see `smooth_spectrum` for both choices),
    ``Z0 ~ N(0, I)`` and ``sigma_n = strf_scale`` with `Ridge`'s prior. Length-scales towards 0
    give `Ridge`'s prior exactly. One gradient costs O(N F L (F + L)) on top of the drive.

    Unlike `Ridge`, ``sigma_n`` is sampled (non-centred), not marginalised: the rough modes are
    left to the prior, and under the marginal multivariate t their common radius carries the
    whole spread of ``v_n``, which NUTS crosses slowly (E-BFMI 0.04-0.08, r_hat 1.07 of
    ``strf_scale`` on a 24 x 16 STRF from 5000 bins). Independent ``Z0`` plus one scale is the
    usual form of reduced-rank GPs (as in ``numpyro.contrib.hsgp``).

    Parameters
    ----------
    drive_scale, df : float
        As in `Ridge`.
    length_freq, length_lag : float
        Prior medians of the length-scales, in frequency channels and in time bins; each
        length-scale is ``LogNormal(log(median), length_spread)``.
    length_spread : float
        Log-scale sd of the length-scale priors (0.75: a 95% range of x/4.4 .. x4.4).
    """

    length_freq: float = 2.0
    length_lag: float = 2.0
    length_spread: float = 0.75
    name = "smooth"
    #: smaller steps, as Stan's adapt_delta advice: its SBC (docs/validation-sbc.md) failed
    #: at 0.8 (min p 0.009) and passes at 0.9 (min p 0.109); see docs/model.md
    target_accept = 0.9
    dims = {"strf_scale": ("neuron",), "strf_white": ("neuron", "freq_mode", "lag_mode"),
            "length_freq": ("neuron",), "length_lag": ("neuron",)}

    def __post_init__(self):
        _check_positive(self, "drive_scale", "df", "length_freq", "length_lag", "length_spread")

    def sample(self, n_neurons: int, n_freq: int, n_lags: int) -> Kernel:
        """Sample the latents; return the internal-basis `Kernel`."""
        scale = self._scale(n_neurons, n_freq, n_lags)
        white = numpyro.sample(self.latent, dist.Normal(0.0, 1.0)
                               .expand((n_neurons, n_freq, n_lags)).to_event(3))
        lengths = [
            numpyro.sample(name, dist.LogNormal(math.log(median), self.length_spread)
                           .expand((n_neurons,)).to_event(1))
            for name, median in (("length_freq", self.length_freq),
                                 ("length_lag", self.length_lag))
        ]
        amplitude = (jnp.sqrt(smooth_spectrum(lengths[0], n_freq))[:, :, None]
                     * jnp.sqrt(smooth_spectrum(lengths[1], n_lags))[:, None, :])
        weights = jnp.einsum("fi,nij,lj->nfl", cosine_basis(n_freq), amplitude * white,
                             cosine_basis(n_lags))
        return Kernel(scale[:, None, None] * weights)

    def completed(self, samples: dict, key) -> dict:
        """The draws as they are: ``strf_scale`` is sampled."""
        return samples


@dataclass(frozen=True)
class Localized(_WhiteLatent):
    """Localized prior (after ALD's space-domain form): Gaussian weights under an envelope.

    ``W[n, f, l] = sigma_n e[n, f, l] Z0[n, f, l]``, ``e = 1 / ((1 + ((f - c_f) / w_f)^2)
    (1 + ((l - c_l) / w_l)^2))``: 1 at the centre, so the weights the data pin down keep their
    prior scale and the envelope shrinks the periphery, and Cauchy-shaped rather than ALD's
    Gaussian, so that its log moves boundedly with the widths (see `smooth_spectrum`). The
    centre ``(c_f, c_l)`` is uniform over the STRF, the widths ``LogNormal(log(median), 0.75)``
    in channels and bins; ``Z0 ~ N(0, I)`` and ``sigma_n`` marginalised as in `Ridge`. ALD's joint
    frequency-domain smoothness is left to `Smooth`.

    Parameters
    ----------
    drive_scale, df : float
        As in `Ridge`.
    width_freq, width_lag : float or None
        Prior medians of the envelope widths; None: a quarter of the STRF's extent.
    """

    width_freq: float | None = None
    width_lag: float | None = None
    name = "localized"
    dims = {"strf_scale": ("neuron",), "strf_white": ("neuron", "freq", "lag"),
            "centre_freq": ("neuron",), "centre_lag": ("neuron",),
            "width_freq": ("neuron",), "width_lag": ("neuron",)}

    def __post_init__(self):
        _check_positive(self, "drive_scale", "df")
        if self.width_freq is not None:
            _check_positive(self, "width_freq")
        if self.width_lag is not None:
            _check_positive(self, "width_lag")

    def sample(self, n_neurons: int, n_freq: int, n_lags: int) -> Kernel:
        """Sample the latents; return the internal-basis `Kernel`."""
        white = self._white(n_neurons, n_freq, n_lags)
        log_envelope: float | jax.Array = 0.0
        for axis, size, median in (("freq", n_freq, self.width_freq),
                                   ("lag", n_lags, self.width_lag)):
            median = median or max(size / 4, 0.5)
            centre = numpyro.sample(f"centre_{axis}", dist.Uniform(-0.5, size - 0.5)
                                    .expand((n_neurons,)).to_event(1))
            width = numpyro.sample(f"width_{axis}", dist.LogNormal(math.log(median), 0.75)
                                   .expand((n_neurons,)).to_event(1))
            grid = jnp.arange(size)
            term = -jnp.log1p(((grid - centre[:, None]) / width[:, None]) ** 2)
            log_envelope = log_envelope + (term[:, :, None] if axis == "freq"
                                           else term[:, None, :])
        return Kernel(jnp.exp(log_envelope) * white)
