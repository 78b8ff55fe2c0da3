"""The STRF priors with structure beyond a Gaussian: `Sparse`, the regularized horseshoe, and
`LowRank`, a sum of unit-norm spectral and temporal factors (`bayesstrf.model.strf` lists every
prior).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayesstrf.errors import InputError
from bayesstrf.model.strf_kernel import Kernel, _check_positive
from bayesstrf.model.strf_laws import ShellDirection, cosine_basis, smooth_spectrum


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
