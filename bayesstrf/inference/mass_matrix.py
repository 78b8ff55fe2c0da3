"""NUTS metrics (inverse mass matrices): the Laplace covariance at the MAP and the covariance
of pooled warmup draws shrunk towards it, for one joint posterior or for each neuron of a
recording.

Per neuron, the unconstrained sites of a model over ``N`` neurons all lead with the neuron
axis, so a point is also an ``(N, D)`` matrix: `neuron_rows` (sites in sorted order, each
flattened, as ``ravel_pytree`` orders a one-neuron point). Independent neurons make the
Hessian block diagonal, so ``D`` Hessian-vector products (coordinate ``j`` of every neuron at
once) recover all ``N`` blocks, where the joint Hessian would need ``N D``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree


def positive_inverse(hessian: np.ndarray) -> np.ndarray:
    """Inverse of a symmetrised Hessian ``(..., D, D)``, eigenvalues clipped to be positive."""
    values, vectors = np.linalg.eigh((hessian + np.swapaxes(hessian, -1, -2)) / 2)
    values = np.abs(values)
    floor = 1e-8 * values.max(-1, keepdims=True) + 1e-12
    values = np.maximum(values, floor)
    return (vectors / values[..., None, :]) @ np.swapaxes(vectors, -1, -2)


def laplace_covariance(potential, point: jnp.ndarray) -> np.ndarray:
    """Inverse Hessian of the potential at a flat ``point`` ``(D,)``, made positive definite.

    ``potential`` is a ``jax.tree_util.Partial`` (see `bayesstrf.inference.warmup.find_map`). The
    Hessian is built one Hessian-vector product at a time (memory O(D T), not O(D^2 T)).
    """
    return positive_inverse(np.asarray(_hessian(potential, point), dtype=float))


@jax.jit
def _hessian(potential, point):
    dim = point.shape[0]

    def hvp(vector):
        return jax.jvp(jax.grad(potential), (point,), (vector,))[1]

    return jax.lax.map(hvp, jnp.eye(dim, dtype=point.dtype), batch_size=min(dim, 32))


def draws_covariance(draws: np.ndarray, laplace: np.ndarray) -> np.ndarray:
    """Covariance of pooled warmup draws ``(..., n, D)``: their variances, and their
    correlations shrunk towards those of the Laplace covariance ``(..., D, D)`` by
    ``D / (n + D)``.

    Each variance is estimated from all ``n`` draws, and the draws see the curved directions
    the Laplace misses; ``D (D - 1) / 2`` correlations are noisy when ``n`` is near ``D``,
    and the Laplace keeps the stimulus' correlations (shrinking towards the diagonal lost
    them). Measured on the 2-core CPU, 4 chains x (250 + 250 warmup, 300 draws), ``n = 500``:
    one NS1 neuron (``D = 513``) sampled with 15 leapfrogs per draw at 0.028 ESS per gradient
    (the whole covariance shrunk towards the Laplace: 31 and 0.020; the Laplace alone: 15 and
    0.023; towards the diagonal, warmup 50 + 50, 100 draws took over 4 minutes); a simulated
    softplus neuron (``D = 195``) 15 leapfrogs per draw at 0.035 (towards the diagonal: 62 at
    0.016).
    """
    n, dim = draws.shape[-2:]
    sample = _sample_covariance(draws)
    weight = dim / (n + dim)
    return (1 - weight) * sample + weight * _rescaled(laplace, _sd(sample))


def posterior_covariance(draws: np.ndarray) -> np.ndarray:
    """Covariance of a fit's draws ``(..., n, D)`` as a metric: the sample covariance when
    ``n > 2 D``; from fewer draws, `draws_covariance` with the draws' own variances as the
    prior guess (correlations shrunk towards none by ``D / (n + D)``).

    No shrinkage where the draws suffice: the STRF weights of a natural stimulus are strongly
    correlated, and shrinking a correlation of 0.99 to 0.93 widens that direction's
    conditional spread 7-fold (measured on the demo's softplus neurons, refits from the full
    fit: 15 -> 19-23 leapfrogs per draw with the draws' correlations shrunk by 6%).
    """
    n, dim = draws.shape[-2:]
    sample = _sample_covariance(draws)
    if n > 2 * dim:
        return sample
    return draws_covariance(draws, np.diagonal(sample, axis1=-2, axis2=-1)[..., None]
                            * np.eye(dim))


def _sample_covariance(draws: np.ndarray) -> np.ndarray:
    """Sample covariance of draws ``(..., n, D)`` -> ``(..., D, D)``."""
    centred = draws - draws.mean(-2, keepdims=True)
    return np.swapaxes(centred, -1, -2) @ centred / max(draws.shape[-2] - 1, 1)


def _sd(covariance: np.ndarray) -> np.ndarray:
    return np.sqrt(np.diagonal(covariance, axis1=-2, axis2=-1))


def _rescaled(covariance: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """``covariance``'s correlations with standard deviations ``sd``."""
    scale = sd / _sd(covariance)
    return covariance * scale[..., :, None] * scale[..., None, :]


def neuron_rows(point: dict, batch_ndim: int = 0) -> jnp.ndarray:
    """Sites ``(*batch, N, ...)`` -> ``(*batch, N, D)``: each neuron's flat coordinates."""
    parts = []
    for name in sorted(point):
        value = jnp.asarray(point[name])
        lead = value.shape[:batch_ndim + 1]
        parts.append(value.reshape(*lead, -1))
    return jnp.concatenate(parts, axis=-1)


def neuron_point(rows: jnp.ndarray, like: dict) -> dict:
    """Inverse of `neuron_rows` (no batch axes): ``(N, D)`` -> sites shaped like ``like``."""
    point, start = {}, 0
    for name in sorted(like):
        shape = jnp.shape(like[name])
        size = int(np.prod(shape[1:], dtype=int))
        point[name] = rows[:, start:start + size].reshape(shape)
        start += size
    return point


def neuron_laplace_covariances(potential, point: dict) -> np.ndarray:
    """Laplace covariance of each neuron, ``(N, D, D)``, from the joint potential (a
    ``jax.tree_util.Partial``) of a flat vector (``ravel_pytree`` order of ``point``) whose
    neurons are independent."""
    hessians = np.moveaxis(np.asarray(_neuron_hessian_columns(potential, point), dtype=float),
                           0, -1)
    return positive_inverse(hessians)


@jax.jit
def _neuron_hessian_columns(potential, point: dict):
    flat, unravel = ravel_pytree(point)
    rows = neuron_rows(point)
    dim = rows.shape[1]

    def column(j):
        basis = neuron_point(jnp.zeros_like(rows).at[:, j].set(1.0), point)
        product = jax.jvp(jax.grad(potential), (flat,), (ravel_pytree(basis)[0],))[1]
        return neuron_rows(unravel(product))

    return jax.lax.map(column, jnp.arange(dim), batch_size=min(dim, 32))
