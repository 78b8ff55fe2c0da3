"""The lagged drive ``z[n, t] = sum_{f,l} W[n, f, l] S[f, t - l]``: two engines and a reference.

Each segment is preceded by ``n_lags - 1`` zero columns, so the drive is causal, sees zeros
before a segment starts and never crosses from one segment into the next. Two engines compute
it, chosen once per design (`make_design`'s ``drive``):

- ``"lag_matrix"``: the lagged stimulus materialised once, ``(T, F L)`` float32, so that the
  drive of every chain and neuron is one matrix product ``X @ W^T`` with ``W (N, F L)``. Inside
  the compiled NUTS loop it measured 3-10x cheaper per gradient than the convolution on a CPU
  (the convolution runs far slower inside a loop body than alone: jax-ml/jax issue 12868), and
  it batches: chains vectorised over one ``X`` share every read of it. Time runs down the rows:
  stored ``(F L, T)``, the same product cost 6x more per gradient for one chain and 2x for two
  (2026-12-07, 2-core CPU, in the loop), the transposed read of the gradient's ``X^T g``.
- ``"conv"``: one convolution over time with ``F`` input and ``N`` output channels, O(N T)
  memory and no ``(T, F L)`` matrix: the engine for recordings whose lag matrix exceeds the
  memory budget ``LAG_MATRIX_BYTES``.

``"auto"`` takes the lag matrix when it fits the budget. `lag_matrix` is the small, obvious
reference the tests hold both engines to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from bayesstrf.errors import InputError

logger = logging.getLogger(__name__)

#: Largest lag matrix ``(T, F L)`` float32 that ``drive="auto"`` materialises: 1 GiB (the
#: medium size of the benchmarks, F=32, L=20, T=1e5, takes 256 MB).
LAG_MATRIX_BYTES = 1 << 30

DRIVES = ("auto", "lag_matrix", "conv")


@partial(jax.tree_util.register_dataclass,
         data_fields=["padded", "lagged", "valid", "segment", "mean", "scale"],
         meta_fields=["n_lags"])
@dataclass(frozen=True)
class Design:
    """Stimulus prepared for the drive, for one recording and one number of lags.

    A JAX pytree whose arrays are leaves and ``n_lags`` is static, so that a compiled sampler
    takes the design as an argument and serves every recording of the same shapes.

    Attributes
    ----------
    padded : array (F, P)
        Segments concatenated, each preceded by ``n_lags - 1`` zero columns.
    lagged : array (T, F L) or None
        The lag matrix, ``lagged[t, f L + l] = S[f, t - l]`` within each segment, when the
        design uses the ``"lag_matrix"`` engine; None for ``"conv"``.
    valid : int array (T,)
        Column of ``padded`` holding each real time bin (segments in order).
    segment : int array (T,)
        Segment index of each real time bin.
    mean : array (F,)
        Per-frequency stimulus mean over all bins (used to centre the STRF's internal basis).
    scale : float
        Standard deviation of the centred stimulus (used to standardise it).
    n_lags : int
        Number of lags ``L``.
    """

    padded: jnp.ndarray
    lagged: jnp.ndarray | None
    valid: jnp.ndarray
    segment: jnp.ndarray
    mean: jnp.ndarray
    scale: jnp.ndarray
    n_lags: int


def make_design(spectrograms: list[np.ndarray], n_lags: int, drive: str = "auto") -> Design:
    """Pad and concatenate segment spectrograms ``(F, T_s)`` for ``n_lags`` lags.

    Parameters
    ----------
    spectrograms : list of array (F, T_s)
    n_lags : int
    drive : {"auto", "lag_matrix", "conv"}
        The drive's engine (see the module docstring): ``"auto"`` materialises the lag matrix
        when its ``4 F L T`` bytes fit `LAG_MATRIX_BYTES`, else convolves; ``"lag_matrix"``
        refuses a matrix over the budget rather than exhaust memory.
    """
    if isinstance(n_lags, bool) or not isinstance(n_lags, int | np.integer) or n_lags < 1:
        raise InputError(f"n_lags: expected a positive integer, found {n_lags!r}")
    if drive not in DRIVES:
        raise InputError(f"drive: expected one of {DRIVES}, found {drive!r}")
    if not spectrograms:
        raise InputError("spectrograms: expected at least one segment, found none")
    largest = np.finfo(np.float32).max
    for index, spec in enumerate(spectrograms):
        if not (np.abs(spec) <= largest).all():  # also refuses NaN
            raise InputError(
                f"spectrogram[{index}]: expected values within float32 range "
                f"(|x| <= {largest:.3g}), the model computes in float32; found "
                f"max |x| = {np.max(np.abs(spec)):.3g}"
            )
    n_freq = spectrograms[0].shape[0]
    blocks, valid_parts, segment, start = [], [], [], 0
    for index, spec in enumerate(spectrograms):
        blocks += [np.zeros((n_freq, n_lags - 1)), spec]
        start += n_lags - 1
        valid_parts.append(np.arange(start, start + spec.shape[1]))
        segment.append(np.full(spec.shape[1], index))
        start += spec.shape[1]
    everything = np.concatenate(spectrograms, axis=1)
    mean = everything.mean(axis=1)
    scale = float(np.std(everything - mean[:, None])) or 1.0
    padded = np.concatenate(blocks, axis=1).astype(np.float32)
    valid = np.concatenate(valid_parts)
    lagged = None
    if _use_lag_matrix(drive, n_freq * n_lags * valid.size * 4):
        stacked = np.empty((valid.size, n_freq, n_lags), np.float32)
        for lag in range(n_lags):
            stacked[:, :, lag] = padded[:, valid - lag].T
        lagged = jnp.asarray(stacked.reshape(valid.size, n_freq * n_lags))
    return Design(
        padded=jnp.asarray(padded),
        lagged=lagged,
        valid=jnp.asarray(valid),
        segment=jnp.asarray(np.concatenate(segment)),
        mean=jnp.asarray(mean, dtype=jnp.float32),
        scale=jnp.asarray(scale, dtype=jnp.float32),
        n_lags=n_lags,
    )


def _use_lag_matrix(drive: str, size: int) -> bool:
    """Whether a design of ``drive`` engine materialises its ``size``-byte lag matrix."""
    if size <= LAG_MATRIX_BYTES:
        return drive != "conv"
    if drive == "lag_matrix":
        raise InputError(
            f"drive: the lag matrix would take {size / 2**20:.0f} MiB, over the budget of "
            f"{LAG_MATRIX_BYTES / 2**20:.0f} MiB (bayesstrf.model.design.LAG_MATRIX_BYTES); use "
            "drive='conv' or 'auto'"
        )
    if drive == "auto":
        logger.info("lag matrix of %.0f MiB over the %.0f MiB budget: convolution drive",
                    size / 2**20, LAG_MATRIX_BYTES / 2**20)
    return False


def _lags_of(weights: jnp.ndarray | np.ndarray, name: str, design: Design) -> int:
    """The number of lags on ``weights``' last axis, which must be the design's."""
    n_lags = weights.shape[-1]
    if n_lags != design.n_lags:
        raise InputError(f"{name}: expected {design.n_lags} lags like the design, found {n_lags}")
    return n_lags


def strf_drive(weights: jnp.ndarray | np.ndarray, design: Design) -> jnp.ndarray:
    """Drive of every neuron at every real time bin, by the design's engine.

    Parameters
    ----------
    weights : array (N, F, L)
        STRF, lag 0 = current bin; ``L`` must equal ``design.n_lags``.
    design : Design
        From `make_design`.

    Returns
    -------
    array (N, T)
    """
    n_lags = _lags_of(weights, "weights", design)
    if design.lagged is not None:
        return jnp.matmul(design.lagged, weights.reshape(weights.shape[0], -1).T,
                          precision=jax.lax.Precision.HIGHEST).T
    drive = _causal_filter(design.padded[None], weights, groups=1)
    return drive[:, design.valid - (n_lags - 1)]


def lowrank_drive(spectral: jnp.ndarray, temporal: jnp.ndarray, design: Design) -> jnp.ndarray:
    """Drive of a low-rank STRF ``W[n] = sum_i spectral[n, i] temporal[n, i]^T``.

    With the convolution engine, each component's spectral projection of the stimulus is
    filtered by its temporal factor: O(T r (F + L)) work instead of O(T F L). With the lag
    matrix, the full STRF's one matrix product (O(T F L), but at matrix-product speed inside
    the NUTS loop) is the faster of the two.

    Parameters
    ----------
    spectral : array (N, r, F)
    temporal : array (N, r, L)
        ``L`` must equal ``design.n_lags``.
    design : Design

    Returns
    -------
    array (N, T)
    """
    n_lags = _lags_of(temporal, "temporal", design)
    if design.lagged is not None:
        return strf_drive(jnp.einsum("nrf,nrl->nfl", spectral, temporal), design)
    projected = jnp.einsum("nrf,fp->nrp", spectral, design.padded,
                           precision=jax.lax.Precision.HIGHEST)
    n_neurons, rank = spectral.shape[:2]
    drive = _causal_filter(projected.reshape(1, n_neurons * rank, -1), temporal,
                           groups=n_neurons)
    return drive[:, design.valid - (n_lags - 1)]


def _causal_filter(signal: jnp.ndarray, kernel: jnp.ndarray | np.ndarray,
                   groups: int) -> jnp.ndarray:
    """``out[n, p] = sum_{c, l} kernel[n, c, l] signal[0, g(n) c, p + L - 1 - l]`` for
    ``p = 0 .. P - L``: one convolution (channels ``c`` of group ``g(n)``), lag 0 aligned with
    the last column of each window. Full float32 precision (no TF32 on GPUs)."""
    return jax.lax.conv_general_dilated(
        signal, kernel[..., ::-1],  # type: ignore[arg-type]  # jax takes any ArrayLike
        window_strides=(1,), padding="VALID",
        dimension_numbers=("NCH", "OIH", "NCH"), feature_group_count=groups,
        precision=jax.lax.Precision.HIGHEST)[0]


def lag_matrix(spectrogram: np.ndarray, n_lags: int) -> np.ndarray:
    """Reference lagged design of one segment: ``X[t, f * L + l] = S[f, t - l]`` (0 if t < l).

    Parameters
    ----------
    spectrogram : array (F, T)
    n_lags : int

    Returns
    -------
    array (T, F * L)
        So that the drive of STRF ``W (N, F, L)`` is ``X @ W.reshape(N, -1).T``.
    """
    n_freq, n_time = spectrogram.shape
    out = np.zeros((n_time, n_freq, n_lags))
    for lag in range(min(n_lags, n_time)):
        out[lag:, :, lag] = spectrogram[:, : n_time - lag].T
    return out.reshape(n_time, n_freq * n_lags)
