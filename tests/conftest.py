"""Shared fixtures: tiny simulated recordings and fits, made once per session."""

import jax
import pytest

from bayesstrf import enable_compilation_cache, fit, simulate

# The suite's fits share programs: the persistent cache (opt-in, `bayesstrf.compilation`)
# compiles each once per machine.
enable_compilation_cache()

TINY = dict(n_neurons=2, n_freq=4, n_lags=3, n_time=600, n_trials=2, n_segments=3)
TINY_FIT = dict(n_lags=3, chains=2, warmup=60, draws=40, seed=3, progress=False)


@pytest.fixture(scope="session")
def tiny_simulation():
    return simulate("softplus", seed=5, **TINY)


@pytest.fixture(scope="session")
def tiny_fit(tiny_simulation):
    return fit(tiny_simulation.recording, "softplus", **TINY_FIT)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Free JAX's compiled executables after each test module. Every fit compiles new
    programs; kept for the whole suite they exhausted the process's memory maps
    (vm.max_map_count) and XLA aborted while compiling."""
    yield
    jax.clear_caches()

