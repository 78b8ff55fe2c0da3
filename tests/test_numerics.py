"""Numerical edge cases of `fit` at tiny sizes, and bitwise reproducibility from a seed.

Each edge case must give a finite posterior (every posterior variable, the log-likelihood and
the sampler's energy finite) or a clear error; divergences are not asserted here: warmups of
40 iterations are far too short to judge the sampler, only its arithmetic.
"""

from __future__ import annotations

import subprocess
import sys

import arviz_stats as azs
import numpy as np
import pytest

from bayesstrf import Recording, fit
from bayesstrf.data.io import load_fit

F, T = 3, 200
TINY = dict(n_lags=3, chains=1, warmup=40, draws=30, progress=False)


def stimulus(seed=0):
    return np.random.default_rng(seed).normal(size=(F, T))


def poisson(mean, seed=1):
    return np.random.default_rng(seed).poisson(mean, size=(1, 2, T)).astype(float)


def assert_finite(tree):
    for group in ("posterior", "log_likelihood"):
        for name, values in tree[group].data_vars.items():
            assert np.isfinite(values.values).all(), f"{group}/{name} holds NaN or Inf"
    assert np.isfinite(tree["sample_stats"]["energy"].values).all()


@pytest.mark.parametrize("activation", ["exponential", "softplus"])
def test_a_neuron_that_never_fires(activation):
    tree = fit(Recording(stimulus(), np.zeros((1, 2, T)), 0.01), activation, **TINY)
    assert_finite(tree)
    # the log-likelihood of all-zero counts is -(summed rate): a low rate is a likely one
    assert (tree["log_likelihood"]["counts"].values < 0).all()


@pytest.mark.parametrize("activation", ["sigmoid"])
def test_a_neuron_firing_in_every_bin(activation):
    counts = 1.0 + poisson(2.0)
    assert_finite(fit(Recording(stimulus(), counts, 0.01), activation, **TINY))


def test_a_stimulus_constant_in_every_channel():
    tree = fit(Recording(np.full((F, T), 3.0), poisson(1.0), 0.01), "softplus", **TINY)
    assert_finite(tree)


def test_a_stimulus_constant_in_one_channel():
    spec = stimulus()
    spec[2] = 5.0
    tree = fit(Recording(spec, poisson(1.0), 0.01), "exponential", **TINY)
    assert_finite(tree)


@pytest.mark.parametrize("activation", ["sigmoid", "double_exponential"])
def test_a_drive_far_into_saturation(activation):
    spec = stimulus()
    counts = np.where(spec[0] > 0, poisson(30.0), 0.0)  # a step: silent or 30 spikes per bin
    assert_finite(fit(Recording(spec, counts, 0.01), activation, **TINY))


# --- reproducibility ---------------------------------------------------------------------------

REPRO = dict(n_lags=3, chains=2, warmup=40, draws=30, seed=11, progress=False,
             chain_method="sequential")


@pytest.fixture(scope="module")
def repro_recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("numerics") / "rec.npz"
    return Recording(stimulus(), poisson(1.5), 0.01).save(path)


@pytest.fixture(scope="module")
def repro_fit(repro_recording):
    return fit(Recording.load(repro_recording), "softplus", **REPRO)


def test_the_same_seed_gives_bitwise_identical_draws(repro_recording, repro_fit):
    again = fit(Recording.load(repro_recording), "softplus", **REPRO)
    for group in ("posterior", "sample_stats", "log_likelihood"):
        for name in repro_fit[group].data_vars:
            np.testing.assert_array_equal(again[group][name].values,
                                          repro_fit[group][name].values, err_msg=name)
    other = fit(Recording.load(repro_recording), "softplus", **(REPRO | {"seed": 12}))
    assert not np.array_equal(other["posterior"]["strf"].values,
                              repro_fit["posterior"]["strf"].values)


def test_the_console_script_gives_the_api_draws(repro_recording, repro_fit, tmp_path):
    """As a user runs it: a fresh process. Draws are bitwise reproducible for one chain method
    only (vectorised and sequential chains compile differently and NUTS amplifies the
    last-bit differences), hence --chain-method."""
    out = tmp_path / "fit.nc"
    subprocess.run(
        [sys.executable, "-m", "bayesstrf.cli.main", "fit", str(repro_recording), "--out", str(out),
         "--activation", "softplus", "--lags", "3", "--chains", "2", "--warmup", "40",
         "--draws", "30", "--seed", "11", "--chain-method", "sequential", "--quiet"],
        check=True, capture_output=True,
    )
    cli = load_fit(out)
    np.testing.assert_array_equal(cli["posterior"]["strf"].values,
                                  repro_fit["posterior"]["strf"].values)


@pytest.mark.slow
def test_chain_methods_give_statistically_equivalent_posteriors(repro_recording):
    """Sequential and vectorized chains differ in the last bits, which NUTS amplifies; their
    posterior means must agree within Monte Carlo error (4 combined MCSE)."""
    settings = dict(n_lags=3, chains=2, warmup=150, draws=300, seed=2, progress=False)
    recording = Recording.load(repro_recording)
    fits = [fit(recording, "softplus", chain_method=method, **settings)
            for method in ("sequential", "vectorized")]
    for name in ("strf", "raw_beta", "raw_b", "drive_offset"):
        means = [f["posterior"][name].mean(("chain", "draw")).values for f in fits]
        errors = [azs.mcse(f["posterior"].to_dataset()[[name]])[name].values for f in fits]
        tolerance = 4 * np.sqrt(errors[0] ** 2 + errors[1] ** 2)
        assert (np.abs(means[0] - means[1]) < tolerance).all(), name
