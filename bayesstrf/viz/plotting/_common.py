"""Argument checks and small helpers shared by the figures."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from bayesstrf.data import checks
from bayesstrf.errors import InputError, InputTypeError


def _pick(item, ids: np.ndarray, name: str) -> int:
    """Index of ``item`` (an id in ``ids`` or an index, negative allowed) or a ValueError."""
    names = [str(i) for i in np.asarray(ids)]
    if isinstance(item, str | np.str_) and str(item) in names:
        return names.index(str(item))
    if (isinstance(item, int | np.integer) and not isinstance(item, bool | np.bool_)
            and -len(names) <= item < len(names)):
        return int(item) % len(names)
    raise InputError(
        f"{name}: expected one of the {name} ids {names} or an index 0..{len(names) - 1}, "
        f"found {item!r}"
    )


def _prob(prob) -> float:
    if isinstance(prob, bool) or not isinstance(prob, int | float | np.number) or not (
        0 < prob < 1
    ):
        raise InputError(f"prob: expected a probability strictly between 0 and 1, found {prob!r}")
    return float(prob)


def _max_draws(max_draws) -> int | None:
    if max_draws is None:
        return None
    if isinstance(max_draws, bool) or not isinstance(max_draws, int | np.integer) or (
        max_draws < 1
    ):
        raise InputError(f"max_draws: expected a positive integer or None, found {max_draws!r}")
    return int(max_draws)


def _posterior(fit) -> xr.Dataset:
    if not isinstance(fit, xr.DataTree) or "posterior" not in fit.children:
        raise InputTypeError(
            f"fit: expected the xarray.DataTree of bayesstrf.fit, found {type(fit).__name__}"
        )
    return fit["posterior"].to_dataset()


def _check_recording(fit, recording) -> None:
    """The recording must have the fit's neurons, frequency axis and bin width."""
    checks.recording(recording)
    strf = fit["posterior"]["strf"]
    neurons = [str(i) for i in strf["neuron"].values]
    problems = []
    if recording.n_freq != strf.sizes["freq"]:
        problems.append(f"{strf.sizes['freq']} frequencies, found {recording.n_freq}")
    if [str(i) for i in recording.neuron_ids] != neurons:
        problems.append(f"neurons {neurons}, found {list(recording.neuron_ids)}")
    if not np.isclose(recording.dt, float(fit.attrs["dt"])):
        problems.append(f"dt = {fit.attrs['dt']} s, found {recording.dt}")
    if problems:
        raise InputError("recording: expected the fit's " + "; ".join(problems))


def _thin(values: np.ndarray, max_draws: int | None) -> np.ndarray:
    """``(chain, draw, ...)`` flattened to ``(sample, ...)`` and thinned evenly like
    `bayesstrf.model.prediction.predict`."""
    flat = values.reshape((-1, *values.shape[2:]))
    if max_draws is not None and max_draws < flat.shape[0]:
        flat = flat[np.linspace(0, flat.shape[0] - 1, max_draws).round().astype(int)]
    return flat


def _interval(draws: np.ndarray, prob: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Central ``prob`` interval of ``draws`` along ``axis`` (numpy's linear quantiles)."""
    lower, upper = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=axis)
    return lower, upper


# ---- tables and ArviZ figures ----------------------------------------------------------------
def _check_table(table, columns: tuple[str, ...]) -> None:
    """Refuse a ``table`` argument that is not a DataFrame with every one of ``columns``."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise InputTypeError(f"table: expected a pandas DataFrame, found {type(table).__name__}")
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise InputError(
            f"table: expected columns {', '.join(map(repr, columns))}, missing {missing} "
            f"(found {list(table.columns)})"
        )


def _arviz_figure(plot, *args, **kwargs) -> Figure:
    """Draw with an `arviz_plots` function on its matplotlib backend and return the figure,
    released from pyplot (so nothing accumulates in pyplot's registry and a notebook shows it
    once, as the returned value)."""
    from matplotlib import pyplot

    collection = plot(*args, backend="matplotlib", **kwargs)
    figure = collection.viz["figure"].item()
    pyplot.close(figure)
    return figure


# ---- population summaries --------------------------------------------------------------------
