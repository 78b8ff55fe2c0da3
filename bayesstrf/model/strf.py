"""STRF priors: model fragments that sample the weights of ``N`` neurons.

Each prior samples its latents and returns a `Kernel`: the STRF ``(N, F, L)`` in the model's
internal basis (the stimulus centred per frequency and divided by its standard deviation, see
`bayesstrf.model.lnp`), so that prior scales are unit-free, and for low-rank priors its factors,
from which the drive costs O(T r (F + L)). The model turns the weights back into the ``strf``
site in the units of the recording's spectrogram.

``drive_scale`` sets every prior's overall scale: with a standardised white stimulus, the
prior sd of the drive is about ``drive_scale`` (in the activation's input units).

- `Ridge`: i.i.d. Gaussian weights with a learned per-neuron variance.
- `Smooth`: a Gaussian process over frequency and lag (Matern-3/2, learned length-scales),
  in the spirit of ASD (Sahani & Linden 2003).
- `Localized`: Gaussian weights under a Gaussian envelope with a learned centre and width in
  frequency and lag, ALD's space-domain prior (Park & Pillow 2011).
- `Sparse`: the regularized horseshoe (Piironen & Vehtari 2017).
- `LowRank`: ``sum_i g_i u_i v_i^T`` over ``rank`` unit-norm spectral and temporal factors,
  reported as the singular value decomposition of each draw.

`Ridge`, `Smooth` and `Localized` share one form: a white latent ``Z`` with a per-neuron
variance ``v ~ InverseGamma(df / 2, df s^2 / 2)``, mapped linearly to the weights. `Ridge` and
`Localized` marginalise ``v`` analytically (`IsotropicStudentT`) and draw it from its exact
conditional after sampling (``completed``); `Smooth` samples ``sqrt(v)`` (see its docstring).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass
from typing import ClassVar, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayesstrf.data import checks
from bayesstrf.errors import InputError, InputTypeError
from bayesstrf.model.strf_laws import (
    IsotropicStudentT,
    ShellDirection,
    cosine_basis,
    inverse_gamma,
    smooth_spectrum,
)


class Kernel(NamedTuple):
    """An STRF in the internal basis, and its factors when it has low rank.

    Attributes
    ----------
    weights : array (N, F, L)
    spectral : array (N, r, F) or None
        Spectral factors scaled by their gains.
    temporal : array (N, r, L) or None
    """

    weights: jnp.ndarray
    spectral: jnp.ndarray | None = None
    temporal: jnp.ndarray | None = None


def _check_positive(prior, *names: str) -> None:
    for name in names:
        value = getattr(prior, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise InputError(
                f"strf: expected {type(prior).__name__}({name} > 0), found {name}={value!r}"
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


@dataclass(frozen=True)
class Sparse:
    """Regularized horseshoe (Piironen & Vehtari 2017), non-centred.

    ``W = tau lambda~ Z0``, ``lambda~^2 = c^2 lambda^2 / (c^2 + tau^2 lambda^2)``,
    ``Z0 ~ N(0, 1)``, local ``lambda ~ HalfCauchy(1)``, global ``tau_n ~ HalfCauchy(tau0)``,
    slab ``c_n^2 ~ InverseGamma(slab_df / 2, slab_df drive_scale^2 / 2)``. The global scale's
    centre is ``tau0 = p0 / (D - p0) * drive_scale`` with ``p0 = expected_nonzero`` weights
    of ``D = F L``, the paper's recipe with the slab scale in place of the noise scale.

    Parameters
    ----------
    drive_scale : float
        Slab scale: the prior scale of one large weight's contribution to the drive.
    expected_nonzero : float or None
        Prior guess of the number of relevant weights; None: a tenth of them.
    slab_df : float
    """

    drive_scale: float = 1.0
    expected_nonzero: float | None = None
    slab_df: float = 4.0
    name = "sparse"
    target_accept = 0.8
    dims = {"strf_white": ("neuron", "freq", "lag"), "strf_local": ("neuron", "freq", "lag"),
            "strf_global": ("neuron",), "strf_slab": ("neuron",)}

    def __post_init__(self):
        _check_positive(self, "drive_scale", "slab_df")
        if self.expected_nonzero is not None:
            _check_positive(self, "expected_nonzero")

    def sample(self, n_neurons: int, n_freq: int, n_lags: int) -> Kernel:
        """Sample the latents; return the internal-basis `Kernel`."""
        dim = n_freq * n_lags
        nonzero = min(self.expected_nonzero or max(dim / 10, 1.0), dim - 0.5)
        shape = (n_neurons, n_freq, n_lags)
        white = numpyro.sample("strf_white", dist.Normal(0, 1).expand(shape).to_event(3))
        local = numpyro.sample("strf_local", dist.HalfCauchy(1.0).expand(shape).to_event(3))
        tau = numpyro.sample("strf_global", dist.HalfCauchy(
            nonzero / (dim - nonzero) * self.drive_scale).expand((n_neurons,)).to_event(1))
        slab = numpyro.sample("strf_slab", dist.InverseGamma(
            self.slab_df / 2, self.slab_df * self.drive_scale**2 / 2
        ).expand((n_neurons,)).to_event(1))
        tau, slab = tau[:, None, None], slab[:, None, None]
        shrunk = jnp.sqrt(slab * local**2 / (slab + tau**2 * local**2))
        return Kernel(tau * shrunk * white)

    def completed(self, samples: dict, key) -> dict:
        """The draws as sampled: every latent is sampled and identified."""
        return samples

    def spec(self) -> dict:
        """JSON-able description, stored in the fit's attrs."""
        return {"name": self.name} | asdict(self)


#: Radial sd of the low-rank factors' latents (`ShellDirection`): a cone of opening ratio
#: (1 + 2 w) / (1 - 2 w) = 1.5 over +-2 sd, against 2.4 for ``Normal(0, I_12)``.
FACTOR_SHELL_WIDTH = 0.1


@dataclass(frozen=True)
class LowRank:
    """Low-rank STRF ``W[n] = sum_i g_i u_i v_i^T`` with unit-norm factors.

    ``u_i = a_i / |a_i|`` (spectral, ``F``) and ``v_i = b_i / |b_i|`` (temporal, ``L``),
    directed like Gaussian vectors: i.i.d. (``factors="ridge"``) or smooth with learned
    length-scales (``factors="smooth"``, as in `Smooth`). Only the directions of the latents
    matter, so they are sampled on a thin shell (`ShellDirection`): the same prior on the
    STRF, without the cone a Gaussian latent gives the posterior. The gains are ordered,
    ``g_i = sum_{j >= i} step_j`` with ``step_j ~ HalfNormal(drive_scale)``. The drive costs
    O(T r (F + L)), not O(T F L).

    These sampler coordinates are not identified: signs, and for ``rank >= 2`` any mixing of
    the components that keeps the product, change nothing, so chains may wander or settle
    apart in them. They are therefore not reported. What is reported (`completed`) is
    identified: the product ``strf`` and its singular value decomposition per draw, ``gain``
    (singular values, decreasing), ``spectral`` and ``temporal`` (orthonormal singular
    vectors), each pair's sign chosen to agree with the decomposition of the posterior-mean
    STRF, so that chains cannot report mirrored modes.

    Parameters
    ----------
    rank : int
        Number of components, 1 to 4.
    factors : {"ridge", "smooth"}
    drive_scale : float
    """

    rank: int = 1
    factors: str = "ridge"
    drive_scale: float = 1.0
    name = "lowrank"
    target_accept = 0.8

    def __post_init__(self):
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or not (
                1 <= self.rank <= 4):
            raise InputError(f"strf: expected LowRank(rank in 1..4), found rank={self.rank!r}")
        if self.factors not in ("ridge", "smooth"):
            raise InputError(
                f"strf: expected LowRank(factors='ridge' or 'smooth'), found {self.factors!r}"
            )
        _check_positive(self, "drive_scale")

    @property
    def dims(self) -> dict:
        """Dims of each reported site after ``(chain, draw)``."""
        out = {"gain": ("neuron", "component"), "spectral": ("neuron", "component", "freq"),
               "temporal": ("neuron", "component", "lag")}
        if self.factors == "smooth":
            out |= {"length_freq": ("neuron",), "length_lag": ("neuron",)}
        return out

    def _factor(self, axis: str, n_neurons: int, size: int) -> jnp.ndarray:
        raw = numpyro.sample(f"{axis}_raw",
                             ShellDirection(FACTOR_SHELL_WIDTH, (n_neurons, self.rank, size)))
        if self.factors == "smooth":
            length = numpyro.sample(
                "length_freq" if axis == "spectral" else "length_lag",
                dist.LogNormal(math.log(2.0), 0.75).expand((n_neurons,)).to_event(1))
            raw = jnp.einsum("xi,nri->nrx", cosine_basis(size),
                             raw * jnp.sqrt(smooth_spectrum(length, size))[:, None, :])
        return numpyro.deterministic(axis, raw / jnp.linalg.norm(raw, axis=-1, keepdims=True))

    def sample(self, n_neurons: int, n_freq: int, n_lags: int) -> Kernel:
        """Sample the latents; return the internal-basis `Kernel` with its factors."""
        steps = numpyro.sample("gain_step", dist.HalfNormal(self.drive_scale).expand(
            (n_neurons, self.rank)).to_event(2))
        gain = numpyro.deterministic("gain", jnp.cumsum(steps[:, ::-1], axis=1)[:, ::-1])
        spectral = self._factor("spectral", n_neurons, n_freq) * gain[..., None]
        temporal = self._factor("temporal", n_neurons, n_lags)
        return Kernel(jnp.einsum("nrf,nrl->nfl", spectral, temporal), spectral, temporal)

    def completed(self, samples: dict, key) -> dict:
        """Without the unidentified sampler coordinates; ``gain``, ``spectral`` and
        ``temporal`` from the SVD of each draw of ``strf (chain, draw, N, F, L)``."""
        strf = np.asarray(samples["strf"], dtype=float)
        spectral, gain, temporal = np.linalg.svd(strf, full_matrices=False)
        spectral = np.swapaxes(spectral[..., :self.rank], -1, -2)  # (..., r, F)
        gain, temporal = gain[..., :self.rank], temporal[..., :self.rank, :]
        mean = strf.reshape(-1, *strf.shape[2:]).mean(0)
        ref_spectral, _, ref_temporal = np.linalg.svd(mean, full_matrices=False)
        agreement = (np.einsum("...nrf,nfr->...nr", spectral, ref_spectral[..., :self.rank])
                     + np.einsum("...nrl,nrl->...nr", temporal, ref_temporal[:, :self.rank]))
        sign = np.where(agreement < 0, -1.0, 1.0)[..., None]
        hidden = ("gain_step", "spectral_raw", "temporal_raw")
        return ({name: value for name, value in samples.items() if name not in hidden}
                | {"gain": gain, "spectral": spectral * sign, "temporal": temporal * sign})

    def spec(self) -> dict:
        """JSON-able description, stored in the fit's attrs."""
        return {"name": self.name} | asdict(self)


@runtime_checkable
class StrfPrior(Protocol):
    """What `bayesstrf.fit` needs from an STRF prior; the built-in ones are examples.

    Attributes
    ----------
    name : str
        Registry name (`register` makes it known, so that fits saved with it load).
    target_accept : float
        NUTS's target acceptance in `bayesstrf.fit` by default.
    dims : dict of site name -> dim names
        The dims of the prior's own sites in the posterior (``"neuron"`` first).
    """

    name: str
    target_accept: float

    @property
    def dims(self) -> dict: ...

    def sample(self, n_neurons: int, n_freq: int, n_lags: int) -> Kernel:
        """Sample the prior's sites (inside a NumPyro model) and return the STRF ``(N, F, L)``
        in the model's internal basis (a standardised stimulus, see the module docstring)."""

    def completed(self, samples: dict, key) -> dict:
        """The posterior draws ``(chain, draw, ...)`` with any sites completed or dropped after
        sampling (return ``samples`` if none)."""

    def spec(self) -> dict:
        """JSON-able ``{"name": ..., **settings}``: ``REGISTRY[name](**settings)`` rebuilds
        the prior (`from_spec`)."""


REGISTRY: dict[str, type] = {prior.name: prior for prior in
                             (Ridge, Smooth, Localized, Sparse, LowRank)}
BUILT_IN = frozenset(REGISTRY)


def register(prior_class: type) -> type:
    """Make an STRF prior class of your own (a `StrfPrior`) known by its ``name``, so that
    `get` finds it by name and saved fits that use it load; usable as a class decorator.
    Built-in names cannot be replaced."""
    name = getattr(prior_class, "name", None)
    if not isinstance(prior_class, type) or not isinstance(name, str):
        raise InputTypeError(f"prior_class: expected a class with a str `name`, found "
                             f"{prior_class!r}")
    REGISTRY[checks.new_name(name, BUILT_IN, "prior_class.name")] = prior_class
    return prior_class


def from_spec(spec: dict):
    """The prior a fit's ``strf_prior`` attr describes (`StrfPrior.spec`)."""
    settings = dict(spec)
    name = settings.pop("name", None)
    if name not in REGISTRY:
        raise InputError(f"strf_prior: expected a registered prior among {sorted(REGISTRY)}, "
                         f"found {name!r} (register it with bayesstrf.model.strf.register)")
    return REGISTRY[name](**settings)


def get(prior):
    """An STRF prior from a name (``"lowrank:2"`` gives rank 2) or an instance of a
    `StrfPrior`; unknown names suggest the closest."""
    if not isinstance(prior, str | type) and isinstance(prior, StrfPrior):
        return prior
    if isinstance(prior, str):
        name, _, rank = prior.partition(":")
        if name in REGISTRY and not rank:
            return REGISTRY[name]()
        if name == "lowrank" and rank.isdigit():
            return LowRank(rank=int(rank))
    close = difflib.get_close_matches(str(prior), REGISTRY, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InputError(
        f"strf: expected one of {sorted(REGISTRY)} (or 'lowrank:<rank>') or a prior object "
        f"(bayesstrf.model.strf.StrfPrior), found {prior!r}{hint}"
    )
