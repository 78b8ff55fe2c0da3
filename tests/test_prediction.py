"""predict and log_likelihood on (new) recordings, against a lag-matrix reference."""

import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import poisson

from bayesstrf import simulate
from bayesstrf.model import activations as act
from bayesstrf.model.design import lag_matrix
from bayesstrf.model.prediction import log_likelihood, predict, units


def reference_rate(post, spec, family):
    drive = lag_matrix(spec, post["strf"].shape[-1]) @ post["strf"].reshape(
        post["strf"].shape[0], -1).T + post["intercept"]
    values = {name: post[name] for name in family.params}
    return np.asarray(family.rate(drive, values)).T


def test_predict_matches_reference_on_new_data(tiny_fit):
    new = simulate("softplus", n_neurons=2, n_freq=4, n_lags=3, n_time=300, n_segments=2,
                   seed=9).recording
    rates = predict(tiny_fit, new, max_draws=5)
    assert rates.dims == ("sample", "neuron", "time") and rates.shape == (5, 2, 300)
    flat = tiny_fit["posterior"].to_dataset().stack(s=("chain", "draw")).transpose("s", ...)
    last = {name: flat[name].values[-1] for name in ("strf", "intercept", "raw_beta", "raw_b")}
    expected = np.concatenate([reference_rate(last, s, act.get("softplus"))
                               for s in new.spectrograms], axis=1)
    np.testing.assert_allclose(rates[-1], expected, rtol=1e-4)  # thinning keeps the last draw


def test_block_log_likelihood_sums_to_segment_totals(tiny_fit, tiny_simulation):
    rec = tiny_simulation.recording
    segments = log_likelihood(tiny_fit, rec)
    np.testing.assert_allclose(segments, tiny_fit["log_likelihood"]["counts"], rtol=1e-5)
    blocks = log_likelihood(tiny_fit, rec, block_bins=60)
    assert blocks.dims[-1] == "block" and blocks.sizes["block"] == 3 * 4  # 200 bins -> 4 blocks
    by_segment = blocks.groupby(xr_segment(blocks)).sum().values
    np.testing.assert_allclose(by_segment, segments.values, rtol=1e-4)


def xr_segment(blocks):
    import xarray as xr

    return xr.DataArray([b.split(":")[0] for b in blocks["block"].values], dims="block",
                        name="seg")


def test_log_likelihood_matches_scipy_for_one_draw(tiny_fit, tiny_simulation):
    rec = tiny_simulation.recording
    post = tiny_fit["posterior"].to_dataset().isel(chain=0, draw=0)
    values = {name: post[name].values for name in ("strf", "intercept", "raw_beta", "raw_b")}
    got = log_likelihood(tiny_fit, rec, block_bins=1000).isel(chain=0, draw=0).values
    for s, (spec, counts) in enumerate(zip(rec.spectrograms, rec.counts, strict=True)):
        rate = reference_rate(values, spec, act.get("softplus"))
        np.testing.assert_allclose(
            got[:, s], poisson.logpmf(counts, rate[:, None]).sum((1, 2)), rtol=1e-4)


def test_mismatched_recording_and_bad_blocks(tiny_fit, tiny_simulation):
    other = simulate("softplus", n_neurons=1, n_freq=4, n_lags=3, n_time=100, seed=1).recording
    with pytest.raises(ValueError, match=r"recording: expected 2 neurons and 4 frequencies"):
        predict(tiny_fit, other)
    with pytest.raises(ValueError, match=r"block_bins: expected a positive integer"):
        units(tiny_simulation.recording, 0)


PEAK_MEMORY_SCRIPT = """
import resource, sys
import numpy as np, xarray as xr
from bayesstrf import Recording
from bayesstrf.model.prediction import log_likelihood

chains, draws, n_time, n_freq, n_lags = 8, int(sys.argv[1]), 10**6, 8, 6
rng = np.random.default_rng(0)
recording = Recording([rng.standard_normal((n_freq, n_time))],
                      [rng.poisson(0.1, (1, 2, n_time)).astype(float)], dt=0.005)
shape = (chains, draws)
posterior = xr.Dataset({
    "strf": (("chain", "draw", "neuron", "freq", "lag"),
             0.01 * rng.standard_normal(shape + (1, n_freq, n_lags))),
    "intercept": (("chain", "draw", "neuron"), np.full(shape + (1,), 0.1)),
    "raw_beta": (("chain", "draw", "neuron"), np.ones(shape + (1,))),
    "raw_b": (("chain", "draw", "neuron"), np.full(shape + (1,), -2.0)),
})
fit = xr.DataTree.from_dict({"posterior": posterior})
fit.attrs["activation"] = "softplus"
ll = log_likelihood(fit, recording, block_bins=100)
assert ll.shape == (chains, draws, 1, n_time // 100) and np.isfinite(ll.values).all()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def test_log_likelihood_memory_does_not_grow_with_draws_times_bins():
    """10^6 bins: 8x more draws (32 vs 256 in all) must add far less than the per-bin
    log-likelihoods of the extra draws would take (the output, draws x blocks, does grow)."""
    def peak_bytes(draws: int) -> int:
        run = subprocess.run([sys.executable, "-c", PEAK_MEMORY_SCRIPT, str(draws)],
                             capture_output=True, text=True, check=True)
        return int(run.stdout.split()[-1])

    small, large = peak_bytes(4), peak_bytes(32)
    grown_floats = 8 * (32 - 4) * 10**6  # per-bin log-likelihoods of the extra draws
    assert large - small < 0.1 * grown_floats * 4, (small, large)
