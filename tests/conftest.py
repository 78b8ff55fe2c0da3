"""Shared fixtures: tiny simulated recordings and fits, made once per session."""

import pytest

from bayesstrf import fit, simulate

TINY = dict(n_neurons=2, n_freq=4, n_lags=3, n_time=600, n_trials=2, n_segments=3)
TINY_FIT = dict(n_lags=3, chains=2, warmup=60, draws=40, seed=3, progress=False)


@pytest.fixture(scope="session")
def tiny_simulation():
    return simulate("softplus", seed=5, **TINY)


@pytest.fixture(scope="session")
def tiny_fit(tiny_simulation):
    return fit(tiny_simulation.recording, "softplus", **TINY_FIT)
