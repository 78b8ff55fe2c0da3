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

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist


@dataclass(frozen=True)
class Ridge:
    """Gaussian (ridge) prior with a per-neuron scale learned from the data.

    ``strf_scale[n] ~ HalfNormal(drive_scale / sqrt(F L))`` and
    ``strf_std[n, f, l] ~ Normal(0, strf_scale[n])`` (centred: with thousands of bins the
    likelihood pins the weights down and the centred form has the easier geometry). With a
    standardised white stimulus the prior sd of the drive is then about ``drive_scale``.

    Parameters
    ----------
    drive_scale : float
        Prior scale of the drive, in the activation's input units.
    """

    drive_scale: float = 1.0
    name: str = "ridge"

    def __post_init__(self):
        if not (isinstance(self.drive_scale, int | float) and self.drive_scale > 0):
            raise ValueError(
                f"strf: expected Ridge(drive_scale > 0), found drive_scale={self.drive_scale!r}"
            )

    #: dims of each latent site, after the leading (chain, draw)
    dims = {"strf_scale": ("neuron",), "strf_std": ("neuron", "freq", "lag")}

    def sample(self, n_neurons: int, n_freq: int, n_lags: int) -> jnp.ndarray:
        """Sample the latents; return internal-basis weights ``(N, F, L)``."""
        hyper = self.drive_scale / math.sqrt(n_freq * n_lags)
        scale = numpyro.sample(
            "strf_scale", dist.HalfNormal(hyper * jnp.ones(n_neurons)).to_event(1)
        )
        return numpyro.sample(
            "strf_std",
            dist.Normal(0.0, jnp.broadcast_to(scale[:, None, None], (n_neurons, n_freq, n_lags)))
            .to_event(3),
        )

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
