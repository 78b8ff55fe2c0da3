"""STRF priors: model fragments that sample the weights of ``N`` neurons.

This module holds the interface: the `StrfPrior` protocol, the registry of priors by name
(`register`, `from_spec`, `get`) and the built-in priors, re-exported from the modules that
define them (`bayesstrf.model.strf_gaussian`, `bayesstrf.model.strf_structured`).

Each prior samples its latents and returns a `Kernel` (`bayesstrf.model.strf_kernel`): the STRF
``(N, F, L)`` in the model's internal basis (the stimulus centred per frequency and divided by
its standard deviation, see `bayesstrf.model.lnp`), so that prior scales are unit-free, and for
low-rank priors its factors, from which the drive costs O(T r (F + L)). The model turns the
weights back into the ``strf`` site in the units of the recording's spectrogram.

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
"""

from __future__ import annotations

import difflib
from typing import Protocol, runtime_checkable

from bayesstrf.data import checks
from bayesstrf.errors import InputError, InputTypeError
from bayesstrf.model.strf_gaussian import Localized, Ridge, Smooth
from bayesstrf.model.strf_kernel import Kernel
from bayesstrf.model.strf_structured import LowRank, Sparse


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
