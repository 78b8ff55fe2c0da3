"""Interoperability with deepSTRF: export a fit as an LN ``state_dict``, import one back.

deepSTRF's ``LinearNonlinear`` model keeps all its parameters in its readout: a causal STRF
convolution (``readout.strf.kernel``, an ``nn.Conv2d`` whose input is zero-padded with
``T - 1`` frames on the left), a per-neuron ``nn.BatchNorm1d`` (``readout.bn``), then a
per-neuron output activation (``readout.activation``). In evaluation mode (``model.eval()``)
bayesstrf's model is the same function of the stimulus, so a fit maps onto that
``state_dict`` deterministically; the formulas come from deepSTRF's activations
(``ParametricSigmoid``, ``ParametricDoubleExponential``, ``ParametricSoftplus``, with their
defaults ``bias=True`` and ``non_negative_output=True``). Checked against deepSTRF 0.1.0::

    model = LinearNonlinear(n_frequency_bands=F, temporal_window_size=L, out_neurons=N,
                            output_activation=ParametricSoftplus(N))  # or Sigmoid(N), ...
    model.load_state_dict({k: torch.from_numpy(v) for k, v in to_deepstrf(fit).items()})
    x = torch.from_numpy(spectrogram.astype("float32"))[None, None]  # (1, 1, F, T), one segment
    rate = model.eval()(x)[0, :, 0]                                  # (1, N, 1, T) -> (N, T)

Mapping (``N`` neurons, ``F`` frequencies, ``L`` lags)
------------------------------------------------------

=====================================  ================  =====================================
deepSTRF key                           shape             bayesstrf value
=====================================  ================  =====================================
``readout.strf.kernel.weight``         (N, 1, F, L)      ``strf[:, None, :, ::-1]``
``readout.strf.kernel.bias``           (N,)              ``intercept``
``readout.bn.weight``, ``.bias``       (N,)              1, 0 (identity, see below)
``readout.bn.running_mean``            (N,)              0
``readout.bn.running_var``             (N,)              ``1 - eps`` (``eps = 1e-5``)
``readout.bn.num_batches_tracked``     ()                0 (int64)
``readout.activation.c``               (N,)              sigmoid ``c``
``readout.activation.d``               (N,)              sigmoid ``d``, fixed at 1
``readout.activation._raw_b``          (N,)              sigmoid ``raw_b`` (dynamic range)
``readout.activation._raw_a``          (N,)              sigmoid ``raw_a`` (baseline)
``readout.activation.k``               (N,)              double exponential ``k``, fixed at -1
``readout.activation.s``               (N,)              double exponential ``s``
``readout.activation._raw_a``          (N,)              double exponential ``raw_a`` (ceiling)
``readout.activation._raw_b``          (N,)              double exponential ``raw_b`` (baseline)
``readout.activation._raw_beta``       (N,)              softplus ``raw_beta``
``readout.activation._raw_b``          (N,)              softplus ``raw_b`` (baseline)
=====================================  ================  =====================================

- Time axis: bayesstrf's lag 0 is the current bin; deepSTRF's kernel runs oldest to newest
  (index ``L - 1`` multiplies the current frame), so the lag axis is reversed.
- ``strf`` and ``intercept`` are in the spectrogram's own units (see `bayesstrf.model.lnp`), so the
  exported model takes the same spectrogram as the fit, one segment per forward pass (both pad
  each segment with zeros on the left).
- Raw parameters keep their raw (pre-softplus) values: ``b = softplus(_raw_b)`` in both.
- Fixed parameters: bayesstrf removes exact symmetries by fixing sigmoid ``d = 1`` and double
  exponential ``k = -1`` (`bayesstrf.model.activations`); they are exported as constant arrays so
  the ``state_dict`` is complete. On import, any ``d != 0`` or ``k`` is folded back exactly: ``(x -
  c) / d = x / d - c / d`` gives ``strf / d``, ``intercept / d``, ``c / d``, and ``k x - s = -(-k x)
  - s`` gives ``-k strf``, ``-k intercept``.
- BatchNorm: in evaluation mode it maps the drive ``x`` to
  ``(x - running_mean) / sqrt(running_var + eps) * weight + bias``. The export makes it the
  exact identity in float32 (``running_var + eps`` rounds to 1; deepSTRF's default
  ``running_var = 1`` would scale the drive by ``1 / sqrt(1 + 1e-5)``). On import a trained
  BatchNorm is folded into ``strf`` and ``intercept`` (scale and shift rounded to float32, as
  torch evaluates them); a ``state_dict`` without the ``readout.bn.*`` keys is read as having
  none. Training mode normalises by batch statistics instead: use ``model.eval()``.
- The exponential family has no deepSTRF counterpart and is refused.

Files: ``.npz`` (``np.savez``, read back without pickle), ``.safetensors`` (needs the
``safetensors`` package), and on import ``.pt``/``.pth`` read only with
``torch.load(path, weights_only=True)`` (needs ``torch``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from bayesstrf.data import checks
from bayesstrf.data.recording_files import read_npz
from bayesstrf.errors import InputError, InputTypeError
from bayesstrf.files import atomic_path
from bayesstrf.model import activations

WEIGHT = "readout.strf.kernel.weight"
BIAS = "readout.strf.kernel.bias"
PREFIX = "readout.activation."
#: the readout's ``nn.BatchNorm1d``: affine parameters and running statistics, then its counter
BN = tuple(f"readout.bn.{name}" for name in ("weight", "bias", "running_mean", "running_var"))
BN_COUNT = "readout.bn.num_batches_tracked"
#: ``nn.BatchNorm1d``'s default ``eps``, which deepSTRF's readout keeps
BN_EPS = 1e-5

#: bayesstrf parameter name -> deepSTRF attribute, per family (fixed ones included)
NAMES: dict[str, dict[str, str]] = {
    "sigmoid": {"c": "c", "d": "d", "raw_b": "_raw_b", "raw_a": "_raw_a"},
    "double_exponential": {"k": "k", "s": "s", "raw_a": "_raw_a", "raw_b": "_raw_b"},
    "softplus": {"raw_beta": "_raw_beta", "raw_b": "_raw_b"},
}

_SUFFIXES = (".npz", ".safetensors")

#: running variance of the exported BatchNorm: ``float32(var + eps) == 1``, so that with unit
#: weight and zero mean and bias the evaluation-mode BatchNorm is the identity in float32
_IDENTITY_VAR = np.float32(1) - np.float32(BN_EPS)


def _family(name, argument: str) -> activations.Activation:
    family = activations.get(name)
    if family.name not in NAMES:
        raise InputError(
            f"{argument}: expected one of deepSTRF's families {sorted(NAMES)}, found "
            f"{family.name!r}, which deepSTRF does not have"
        )
    return family


def _summary(fit: xr.DataTree, stat) -> tuple[activations.Activation, dict[str, np.ndarray]]:
    """The family of ``fit`` and its parameters reduced over ``(chain, draw)`` by ``stat``."""
    if not isinstance(fit, xr.DataTree) or "posterior" not in fit.children:
        raise InputTypeError(
            f"fit: expected a DataTree from bayesstrf.fit with a posterior group, "
            f"found {type(fit).__name__}"
        )
    family = _family(fit.attrs.get("activation"), "fit")
    posterior = fit["posterior"].to_dataset()
    names = ("strf", "intercept", *family.params)
    missing = [name for name in names if name not in posterior]
    if missing:
        raise InputError(f"fit: expected posterior variables {list(names)}, lacking {missing}")
    n_samples = posterior.sizes["chain"] * posterior.sizes["draw"]
    if isinstance(stat, int | np.integer) and not isinstance(stat, bool):
        if not 0 <= stat < n_samples:
            raise InputError(
                f"stat: expected a draw index in 0..{n_samples - 1} (chains x draws, "
                f"chain-major), found {stat}"
            )
        reduce = lambda a: a.values.reshape((n_samples, *a.shape[2:]))[int(stat)]  # noqa: E731
    elif stat in ("mean", "median"):
        reduce = lambda a: getattr(a, stat)(("chain", "draw")).values  # noqa: E731
    else:
        raise InputError(
            f"stat: expected 'mean', 'median' or an integer draw index, found {stat!r}"
        )
    return family, {name: np.asarray(reduce(posterior[name])) for name in names}


def to_deepstrf(fit: xr.DataTree, stat: str | int = "mean",
                path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """A fit as the ``state_dict`` of deepSTRF's ``LinearNonlinear`` model (see module doc).

    Parameters
    ----------
    fit : DataTree from `bayesstrf.fit`
        Of a sigmoid, double exponential or softplus family (any STRF prior).
    stat : {"mean", "median"} or int
        Posterior summary, or one draw by its index over ``(chain, draw)`` flattened
        chain-major (``chain * n_draws + draw``).
    path : str or path, optional
        Also write the arrays to ``.npz`` or ``.safetensors``, atomically.

    Returns
    -------
    dict of str -> array
        The complete ``state_dict`` (``load_state_dict(..., strict=True)`` accepts it):
        ``readout.strf.kernel.weight`` (N, 1, F, L) oldest lag first,
        ``readout.strf.kernel.bias`` (N,), ``readout.bn.*`` (N,) making the BatchNorm the
        identity, ``readout.activation.<name>`` (N,), all float32, and
        ``readout.bn.num_batches_tracked`` (), int64.
    """
    family, values = _summary(fit, stat)
    strf = values.pop("strf")
    n_neurons = strf.shape[0]
    out = {
        WEIGHT: np.ascontiguousarray(strf[:, None, :, ::-1], dtype=np.float32),
        BIAS: np.asarray(values.pop("intercept"), dtype=np.float32),
    }
    identity = zip(BN, (1.0, 0.0, 0.0, _IDENTITY_VAR), strict=True)
    out |= {key: np.full(n_neurons, value, np.float32) for key, value in identity}
    out[BN_COUNT] = np.array(0, dtype=np.int64)
    fixed = {name: np.full(n_neurons, value) for name, value in family.fixed.items()}
    for name, key in NAMES[family.name].items():
        value = fixed[name] if name in fixed else values[name]
        out[PREFIX + key] = np.asarray(value, dtype=np.float32)
    if path is not None:
        _save(out, path)
    return out


def _save(arrays: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix not in _SUFFIXES:
        raise InputError(f"path: expected a file name ending in .npz or .safetensors, "
                         f"found {path.name!r}")
    if not path.parent.is_dir():
        raise InputError(f"path: expected an existing folder, found {str(path.parent)!r}")
    if path.suffix == ".safetensors":
        try:
            from safetensors.numpy import save_file
        except ImportError:
            raise ImportError(
                f"path: writing {str(path)!r} needs the safetensors package "
                "(pip install safetensors), or use a .npz file name"
            ) from None
    with atomic_path(path) as tmp:
        if path.suffix == ".npz":
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)  # type: ignore[arg-type]  # stub: allow_pickle
        else:
            save_file(arrays, str(tmp))
    return path


def _load(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"state_dict_or_path: expected an existing file, found {str(path)!r}")
    if path.suffix == ".npz":
        return read_npz(path)
    if path.suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise ImportError(
                f"state_dict_or_path: reading {str(path)!r} needs the safetensors package "
                "(pip install safetensors)"
            ) from None
        return load_file(path)
    if path.suffix in (".pt", ".pth"):
        try:
            import torch
        except ImportError:
            raise ImportError(
                f"state_dict_or_path: reading {str(path)!r} needs torch; or save the "
                "state_dict as .npz or .safetensors"
            ) from None
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(loaded, Mapping):
            raise InputError(
                f"state_dict_or_path: expected {str(path)!r} to hold a state_dict (a dict of "
                f"tensors), found {type(loaded).__name__}"
            )
        return dict(loaded)
    raise InputError(
        "state_dict_or_path: expected a dict of arrays or a .npz, .safetensors, .pt or .pth "
        f"file, found {path.name!r}"
    )


def _array(value, key: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise InputTypeError(
            f"state_dict_or_path[{key!r}]: expected a real numeric array, found dtype "
            f"{array.dtype}"
        )
    if not np.isfinite(array).all():
        raise InputError(f"state_dict_or_path[{key!r}]: expected finite values, found NaN/Inf")
    return array.astype(np.float64)


def from_deepstrf(state_dict_or_path, activation: str, *,
                  bn_eps: float = BN_EPS) -> dict[str, np.ndarray]:
    """bayesstrf values from a deepSTRF ``LinearNonlinear`` ``state_dict`` (inverse of
    `to_deepstrf`): starting points or prior centres for a fit.

    Parameters
    ----------
    state_dict_or_path : dict of str -> array or tensor, or str or path
        The keys of the module docstring's table for ``activation``, nothing else; the
        ``readout.bn.*`` keys may be left out together (a ``.npz``, ``.safetensors``, or a
        ``.pt``/``.pth`` read with ``weights_only=True``). deepSTRF must have used one input
        channel, ``bias=True`` and ``non_negative_output``.
    activation : {"sigmoid", "double_exponential", "softplus"}
    bn_eps : float
        The ``eps`` of the readout's BatchNorm (not in a ``state_dict``; deepSTRF keeps
        torch's default).

    Returns
    -------
    dict of str -> float64 array
        ``strf`` (N, F, L), lag 0 = current bin, and ``intercept`` (N,), both in the
        spectrogram's units, and the family's sampled raw parameters (N,) by bayesstrf name,
        with the evaluation-mode BatchNorm and deepSTRF's ``d`` or ``k`` folded into them
        (module docstring).
    """
    family = _family(activation, "activation")
    if not checks.is_real(bn_eps) or not bn_eps >= 0:
        raise InputError(f"bn_eps: expected a non-negative number, found {bn_eps!r}")
    if isinstance(state_dict_or_path, str | os.PathLike):
        state = _load(Path(state_dict_or_path))
    elif isinstance(state_dict_or_path, Mapping):
        state = dict(state_dict_or_path)
    else:
        raise InputTypeError(
            "state_dict_or_path: expected a dict of arrays or a file path, found "
            f"{type(state_dict_or_path).__name__}"
        )
    expected = [WEIGHT, BIAS, *(PREFIX + key for key in NAMES[family.name].values())]
    if any(key in state for key in (*BN, BN_COUNT)):
        expected[2:2] = BN
    missing = [key for key in expected if key not in state]
    extra = sorted(set(map(str, state)) - set(expected) - {BN_COUNT})
    if missing or extra:
        raise InputError(
            f"state_dict_or_path: expected exactly the keys {expected} of a {family.name} "
            f"LinearNonlinear model, found missing {missing} and unexpected {extra}"
        )
    arrays = {key: _array(state[key], key) for key in expected}
    weight = arrays[WEIGHT]
    if weight.ndim != 4 or weight.shape[1] != 1 or 0 in weight.shape:
        raise InputError(
            f"state_dict_or_path[{WEIGHT!r}]: expected shape (N, 1, F, T) with one input "
            f"channel, found {weight.shape}"
        )
    n_neurons = weight.shape[0]
    for key in expected[1:]:
        if arrays[key].shape != (n_neurons,):
            raise InputError(
                f"state_dict_or_path[{key!r}]: expected shape ({n_neurons},) like the kernel's "
                f"neurons, found {arrays[key].shape}"
            )
    raw = {name: arrays[PREFIX + key] for name, key in NAMES[family.name].items()}
    strf, intercept = weight[:, 0, :, ::-1].copy(), arrays[BIAS]
    if BN[0] in arrays:
        gamma, beta, mean, var = (arrays[key] for key in BN)
        if (var + bn_eps <= 0).any():
            raise InputError(
                f"state_dict_or_path[{BN[3]!r}]: expected running variances above -bn_eps, "
                f"found {float(var.min())}"
            )
        # torch evaluates the BatchNorm as x * scale + shift, both in float32
        scale = (gamma / np.sqrt(var + bn_eps)).astype(np.float32).astype(np.float64)
        shift = (beta - mean * scale).astype(np.float32).astype(np.float64)
        strf, intercept = strf * scale[:, None, None], intercept * scale + shift
    if family.name == "sigmoid":
        d = raw.pop("d")
        if (d == 0).any():
            raise InputError(
                f"state_dict_or_path[{PREFIX + 'd'!r}]: expected non-zero reciprocal gains, "
                f"found 0 for neuron index {int(np.argmax(d == 0))}"
            )
        strf, intercept, raw["c"] = strf / d[:, None, None], intercept / d, raw["c"] / d
    elif family.name == "double_exponential":
        gain = -raw.pop("k")
        strf, intercept = strf * gain[:, None, None], intercept * gain
    return {"strf": strf, "intercept": intercept} | {name: raw[name] for name in family.params}
