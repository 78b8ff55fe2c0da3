"""Synthetic recordings with known truth: stimuli, STRFs and spikes from the fitted model itself."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
from numpyro import handlers

from bayesstrf.data import checks
from bayesstrf.data.recording import Recording
from bayesstrf.errors import InputError
from bayesstrf.model import activations as act
from bayesstrf.model.activations import inverse_softplus
from bayesstrf.model.design import make_design, strf_drive
from bayesstrf.model.lnp import build_priors, make_model
from bayesstrf.model.strf import Ridge

#: Per family: sd of the standardised drive, and true parameter values (constrained scale)
#: chosen so that the drive sweeps the curved part of each nonlinearity, up to saturation for
#: sigmoid and double exponential. Rates are in spikes per bin.
_TRUTH: dict[str, dict[str, float]] = {
    "sigmoid": dict(drive_sd=1.5, c=1.0, b=0.6, a=0.02),
    "double_exponential": dict(drive_sd=1.5, s=-1.0, a=0.6, b=0.02),
    "softplus": dict(drive_sd=0.15, drive_offset=-0.05, beta=5.5, b=0.01),
    "exponential": dict(drive_sd=0.7, drive_offset=float(np.log(0.05))),
}


@dataclass(frozen=True)
class Simulation:
    """A simulated recording and the values that generated it.

    Attributes
    ----------
    recording : Recording
    truth : dict of str -> ndarray
        True value of every model site by name (raw and constrained activation parameters,
        ``strf`` ``(N, F, L)`` in spectrogram units, ``intercept``, latents).
    activation : str
    n_lags : int
    """

    recording: Recording
    truth: dict
    activation: str
    n_lags: int


def natural_spectrogram(n_freq: int, n_time: int, rng: np.random.Generator) -> np.ndarray:
    """Natural-sound-like spectrogram ``(n_freq, n_time)``: a Gaussian field with a 1/f
    amplitude spectrum over time and frequency, exponentiated (log-normal level)."""
    kf = np.fft.fftfreq(n_freq)[:, None]
    kt = np.fft.rfftfreq(n_time)[None, :] * 20.0  # modulations are slower in time than in freq
    amplitude = 1.0 / np.maximum(np.hypot(kf, kt), 1.0 / max(n_freq, 8))
    noise = rng.standard_normal((n_freq, kt.shape[1])) + 1j * rng.standard_normal(
        (n_freq, kt.shape[1])
    )
    field = np.fft.irfft2(noise * amplitude, s=(n_freq, n_time))
    field = (field - field.mean()) / field.std()
    return np.exp(0.5 * field)


def strf_shape(n_freq: int, n_lags: int, rng: np.random.Generator) -> np.ndarray:
    """A typical auditory STRF ``(F, L)``: an excitatory blob at a random best frequency and
    short latency, with delayed inhibition at a neighbouring frequency; unit norm."""
    f = np.arange(n_freq)[:, None]
    lag = np.arange(n_lags)[None, :]
    best = rng.uniform(0.3, 0.7) * (n_freq - 1)
    side = best + rng.choice([-1, 1]) * max(2.0, n_freq / 6)
    latency = rng.uniform(1.5, 2.5) * n_lags / 12
    width_f, width_l = max(1.0, n_freq / 12), max(1.0, n_lags / 8)
    excite = np.exp(-((f - best) / width_f) ** 2 / 2 - ((lag - latency) / width_l) ** 2 / 2)
    inhibit = np.exp(-((f - side) / width_f) ** 2 / 2 - ((lag - 2 * latency) / width_l) ** 2 / 2)
    shape = excite - 0.6 * inhibit
    return shape / np.linalg.norm(shape)


def simulate(
    activation: str = "softplus",
    *,
    n_neurons: int = 1,
    n_freq: int = 16,
    n_lags: int = 12,
    n_time: int = 20000,
    n_trials: int = 1,
    n_segments: int = 1,
    stimulus: str = "natural",
    drive_sd: float | None = None,
    strf: np.ndarray | None = None,
    seed: int = 0,
) -> Simulation:
    """Simulate a recording from the bayesstrf model with a known STRF and activation.

    Parameters
    ----------
    activation : {"sigmoid", "double_exponential", "softplus", "exponential"}
    n_neurons, n_freq, n_lags, n_time, n_trials, n_segments : int
        Sizes; ``n_time`` bins in all, split into ``n_segments`` equal segments (stimuli),
        each repeated ``n_trials`` times.
    stimulus : {"natural", "white"}
        1/f log-normal spectrogram, or independent log-normal bins.
    drive_sd : float, optional
        Standard deviation of the drive before the activation; the default, per family,
        sweeps the curved part of the nonlinearity (up to saturation for the sigmoid and the
        double exponential, into the linear range for the softplus with about 0.4).
    strf : array (n_neurons, n_freq, n_lags), optional
        Shape of the true STRFs, rescaled to ``drive_sd``; default: a smooth excitatory bump
        with a delayed inhibitory side band per neuron (rank 2).
    seed : int

    Returns
    -------
    Simulation
    """
    family = act.get(activation)
    for name, value in dict(n_neurons=n_neurons, n_freq=n_freq, n_lags=n_lags,
                            n_time=n_time, n_trials=n_trials, n_segments=n_segments).items():
        if not isinstance(value, int | np.integer) or value < 1:
            raise InputError(f"{name}: expected a positive integer, found {value!r}")
    if n_time // n_segments < n_lags:
        raise InputError(
            f"n_segments: expected segments of at least n_lags={n_lags} bins, "
            f"found {n_time // n_segments}"
        )
    if stimulus not in ("natural", "white"):
        raise InputError(f"stimulus: expected 'natural' or 'white', found {stimulus!r}")
    rng = np.random.default_rng(seed)
    length = n_time // n_segments
    if stimulus == "natural":
        specs = [natural_spectrogram(n_freq, length, rng) for _ in range(n_segments)]
    else:
        specs = [np.exp(0.5 * rng.standard_normal((n_freq, length))) for _ in range(n_segments)]
    design = make_design(specs, n_lags)

    values = dict(_TRUTH[family.name])
    if drive_sd is not None:
        if not checks.is_real(drive_sd) or drive_sd <= 0:
            raise InputError(f"drive_sd: expected a positive number, found {drive_sd!r}")
        values["drive_sd"] = float(drive_sd)
    if strf is None:
        shapes = np.stack([strf_shape(n_freq, n_lags, rng) for _ in range(n_neurons)])
    else:
        shapes = np.asarray(strf, dtype=float)
        if shapes.shape != (n_neurons, n_freq, n_lags) or not np.isfinite(shapes).all():
            raise InputError(
                f"strf: expected finite values of shape {(n_neurons, n_freq, n_lags)}, found "
                f"shape {shapes.shape}"
            )
    standard = np.asarray(strf_drive(shapes * float(design.scale), design))  # unit-STRF drive
    weights_std = shapes * (values.pop("drive_sd") / standard.std(axis=1))[:, None, None]
    truth = {"strf_std": weights_std, "strf_scale": weights_std.std(axis=(1, 2))}
    for name, number in values.items():
        raw = family.constrained.get(name, name)
        truth[raw] = np.full(n_neurons, inverse_softplus(number) if raw != name else number)

    priors = build_priors(family, np.full(n_neurons, 0.1))  # placeholders: all conditioned
    model = make_model(family, Ridge(), priors, n_neurons)
    truth32 = {name: np.asarray(value, np.float32) for name, value in truth.items()}
    conditioned = handlers.condition(model, truth32)
    trace = handlers.trace(handlers.seed(conditioned, jax.random.PRNGKey(seed))).get_trace(
        design, None, n_trials
    )
    sites = {name: np.asarray(site["value"], dtype=float) for name, site in trace.items()
             if site["type"] in ("sample", "deterministic")}
    counts = sites.pop("counts")
    bounds = np.cumsum([0] + [length] * n_segments)
    recording = Recording(
        specs,
        [counts[:, :, a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
        dt=0.005,
        segment_ids=[f"stim{i}" for i in range(n_segments)],
    )
    return Simulation(recording, sites, family.name, n_lags)
