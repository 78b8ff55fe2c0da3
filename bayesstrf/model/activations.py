"""Output activations: deepSTRF's three parametric families plus the exponential baseline.

The rate functions follow the formulas of deepSTRF's ``ParametricSigmoid``,
``ParametricDoubleExponential`` and ``ParametricSoftplus`` (parameter names, raw storage and
the ``raw -> softplus`` mapping included), written anew in JAX. Parameters are per neuron,
shape ``(N,)``, broadcasting against the last axis of the drive.

Identifiability
---------------
As written, the families have exact symmetries with the linear STRF stage: the STRF bias
trades against ``c`` (sigmoid) or ``s`` (double exponential); the STRF scale and sign trade
against ``d`` or ``k``. bayesstrf removes them by convention (see ``Activation.fixed``):

- sigmoid: ``d = 1`` and the drive has no free intercept (``c`` carries it); the STRF is in
  units of the sigmoid's input;
- double exponential: ``k = -1`` (so a positive STRF weight excites) and no free intercept
  (``s`` carries it);
- softplus and exponential: the drive keeps a free intercept (there is no ``c``).

Every deepSTRF parameter is still reported, the fixed ones as constants, so the export to
deepSTRF is a deterministic map.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.nn import sigmoid as _sigmoid
from jax.nn import softplus as _softplus

from bayesstrf.data import checks
from bayesstrf.errors import InputError, InputTypeError

#: clip for the inner exponent of the double exponential: exp(-exp(30)) is 0 in float32
#: and float64 alike, so clipping changes no value and keeps gradients finite.
_DEXP_CLIP = 30.0


def inverse_softplus(y: np.ndarray | float) -> np.ndarray:
    """Inverse of softplus, ``log(expm1(y))``, stable for small and large ``y > 0``."""
    y = np.asarray(y, dtype=float)
    return np.where(y > 20.0, y, np.log(np.expm1(np.minimum(y, 20.0))))


def _positive(raw, non_negative_output: bool):
    return _softplus(raw) if non_negative_output else raw


def sigmoid(x, c, d, raw_b, raw_a, *, non_negative_output: bool = True):
    """Parametric sigmoid (Willmore et al. 2016): ``b * sigmoid((x - c) / d) + a``.

    Parameters
    ----------
    x : array (..., N)
        Drive.
    c, d, raw_b, raw_a : array (N,)
        Inflection, reciprocal gain, raw dynamic range and raw baseline; ``b`` and ``a`` are
        ``softplus`` of the raw values when ``non_negative_output``.
    """
    b = _positive(raw_b, non_negative_output)
    a = _positive(raw_a, non_negative_output)
    return b * _sigmoid((x - c) / d) + a


def double_exponential(x, k, s, raw_a, raw_b, *, non_negative_output: bool = True):
    """Parametric double exponential (Thorson et al. 2015): ``a * exp(-exp(k x - s)) + b``.

    The inner exponent is clipped at 30, where the value is already exactly 0, so values and
    gradients stay finite for any drive.
    """
    a = _positive(raw_a, non_negative_output)
    b = _positive(raw_b, non_negative_output)
    inner = jnp.minimum(k * x - s, _DEXP_CLIP)
    return a * jnp.exp(-jnp.exp(inner)) + b


def softplus(x, raw_beta, raw_b, *, non_negative_output: bool = True):
    """Parametric softplus: ``softplus(beta x) / beta + b`` with ``beta = softplus(raw_beta)``.

    ``beta`` is always softplus-mapped, as in deepSTRF; ``b`` only when ``non_negative_output``.
    """
    beta = _softplus(raw_beta)
    return _softplus(beta * x) / beta + _positive(raw_b, non_negative_output)


def exponential(x):
    """Canonical Poisson-GLM link ``exp(x)`` (no parameters): the baseline family."""
    return jnp.exp(x)


def _range_and_floor(mean_rate: np.ndarray) -> tuple[dist.Normal, dist.Normal]:
    """Raw-scale priors of a dynamic range centred at 4x the mean rate and a baseline at 1/4
    of it (for small values ``softplus(raw) ~ exp(raw)``: close to log-normal priors)."""
    rate = np.asarray(mean_rate, dtype=float)
    return (dist.Normal(inverse_softplus(4.0 * rate), 1.5),
            dist.Normal(inverse_softplus(0.25 * rate), 2.0))


def sigmoid_priors(mean_rate: np.ndarray) -> dict[str, dist.Distribution]:
    """Sigmoid: inflection ``c ~ N(0, 2)`` in drive units, range and baseline from the rate."""
    range_, floor = _range_and_floor(mean_rate)
    return {"c": dist.Normal(np.zeros_like(mean_rate, dtype=float), 2.0), "raw_b": range_,
            "raw_a": floor}


def double_exponential_priors(mean_rate: np.ndarray) -> dict[str, dist.Distribution]:
    """Double exponential: shift ``s ~ N(0, 2)``, range and baseline from the rate."""
    range_, floor = _range_and_floor(mean_rate)
    return {"s": dist.Normal(np.zeros_like(mean_rate, dtype=float), 2.0), "raw_a": range_,
            "raw_b": floor}


def softplus_priors(mean_rate: np.ndarray) -> dict[str, dist.Distribution]:
    """Softplus: deepSTRF's initial sharpness, ``raw_beta ~ N(5.5, 2)``; baseline from the
    rate; the drive at the mean stimulus ``drive_offset ~ N(mean_rate, 1)`` (spikes per bin)."""
    _, floor = _range_and_floor(mean_rate)
    return {"raw_beta": dist.Normal(np.full(np.shape(mean_rate), 5.5), 2.0), "raw_b": floor,
            "drive_offset": dist.Normal(mean_rate, 1.0)}


def exponential_priors(mean_rate: np.ndarray) -> dict[str, dist.Distribution]:
    """Exponential GLM: the drive at the mean stimulus ``drive_offset ~ N(log mean_rate, 2)``."""
    return {"drive_offset": dist.Normal(np.log(mean_rate), 2.0)}


@dataclass(frozen=True)
class Activation:
    """One output family: its rate function, parameters, conventions and default priors.

    A family of your own works everywhere a built-in one does once `register`-ed (fits
    saved to disk name their family, and are read back by that name).

    Attributes
    ----------
    name : str
        Registry name.
    function : callable
        ``function(drive, **fixed, **params) -> rate`` (spikes per bin), in JAX.
    params : tuple of str
        Sampled parameters, on deepSTRF's raw scale, each shape ``(N,)``.
    fixed : dict
        deepSTRF parameters fixed by the identifiability convention.
    constrained : dict
        Constrained name -> raw name, for the deterministic ``softplus`` views.
    free_intercept : bool
        Whether the drive carries its own sampled intercept.
    target_accept : float
        NUTS's target acceptance in `bayesstrf.fit` by default (the larger of the family's and
        the STRF prior's).
    priors : callable, optional
        ``priors(mean_rate (N,)) -> {site: numpyro Distribution}``: raw-scale default priors
        of ``params`` (and ``drive_offset``, the drive at the mean stimulus, with a free
        intercept), centred from each neuron's mean rate (spikes per bin). Without it, `fit`
        needs ``priors=`` for each of them.
    """

    name: str
    function: Callable
    params: tuple[str, ...]
    fixed: dict[str, float] = field(default_factory=dict)
    constrained: dict[str, str] = field(default_factory=dict)
    free_intercept: bool = True
    target_accept: float = 0.8
    priors: Callable[[np.ndarray], dict[str, dist.Distribution]] | None = None

    def rate(self, drive, values: Mapping[str, jnp.ndarray | np.ndarray]):
        """Rate in spikes per bin for a drive ``(..., N)`` and raw parameters by name."""
        fixed = {name: jnp.asarray(value) for name, value in self.fixed.items()}
        return self.function(drive, **fixed, **{name: values[name] for name in self.params})

    def default_priors(self, mean_rate: np.ndarray) -> dict[str, dist.Distribution]:
        """Raw-scale default priors, shape ``(N,)``, centred from each neuron's mean rate
        (``priors``; none without it).

        The built-in families follow deepSTRF's initialisation ranges, moved to spike counts
        per bin (`sigmoid_priors`, `double_exponential_priors`, `softplus_priors`).
        """
        return {} if self.priors is None else dict(self.priors(np.asarray(mean_rate, float)))


REGISTRY: dict[str, Activation] = {
    "sigmoid": Activation(
        "sigmoid", sigmoid, ("c", "raw_b", "raw_a"), fixed={"d": 1.0},
        constrained={"b": "raw_b", "a": "raw_a"}, free_intercept=False, priors=sigmoid_priors,
    ),
    "double_exponential": Activation(
        "double_exponential", double_exponential, ("s", "raw_a", "raw_b"), fixed={"k": -1.0},
        constrained={"a": "raw_a", "b": "raw_b"}, free_intercept=False,
        priors=double_exponential_priors,
    ),
    "softplus": Activation(
        "softplus", softplus, ("raw_beta", "raw_b"),
        constrained={"beta": "raw_beta", "b": "raw_b"},
        # softplus's baseline and sharpness have long tails (b -> 0, beta -> a ReLU) where a
        # step adapted to 0.8 diverges: measured 3 divergent transitions of 400 at 0.8, 0 at
        # 0.9 for 14% more leapfrogs (tests/test_recovery.py's small fit); 19 of 1000 at 0.8 on
        # the benchmark's white-stimulus fit
        target_accept=0.9, priors=softplus_priors,
    ),
    "exponential": Activation("exponential", exponential, (), priors=exponential_priors),
}
BUILT_IN = frozenset(REGISTRY)


def register(activation: Activation) -> Activation:
    """Make a family of your own available by name (to `fit`, `compare`, saved fits).

    Built-in names cannot be replaced; registering the same name again replaces your earlier
    family.
    """
    if not isinstance(activation, Activation):
        raise InputTypeError(
            f"activation: expected a bayesstrf.model.activations.Activation, found "
            f"{type(activation).__name__}")
    REGISTRY[checks.new_name(activation.name, BUILT_IN, "activation.name")] = activation
    return activation


#: The three deepSTRF families, in the order reports list them.
FAMILIES: tuple[str, ...] = ("sigmoid", "double_exponential", "softplus")


def get(name: str | Activation) -> Activation:
    """Look up an activation by name; unknown names list the valid ones and the closest."""
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str) or name not in REGISTRY:
        close = difflib.get_close_matches(str(name), REGISTRY, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InputError(
            f"activation: expected one of {sorted(REGISTRY)}, found {name!r}{hint}"
        )
    return REGISTRY[name]
