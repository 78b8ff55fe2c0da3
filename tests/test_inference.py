"""fit: the DataTree contract, per-segment log-likelihood, reproducibility, bad arguments."""

import json

import numpy as np
import pytest
import xarray as xr
from scipy.stats import poisson

import bayesstrf
from bayesstrf import fit
from bayesstrf.inference.fit import choose_chain_method
from bayesstrf.model import activations as act
from bayesstrf.model.design import lag_matrix
from bayesstrf.model.strf import Ridge, Smooth
from tests.conftest import TINY_FIT


def test_datatree_contract(tiny_fit, tiny_simulation):
    rec = tiny_simulation.recording
    post = tiny_fit["posterior"].to_dataset()
    assert post["strf"].dims == ("chain", "draw", "neuron", "freq", "lag")
    assert post["strf"].shape == (2, 40, 2, 4, 3)
    for name in ("raw_beta", "raw_b", "beta", "b", "intercept", "drive_offset", "strf_scale"):
        assert post[name].dims == ("chain", "draw", "neuron"), name
    np.testing.assert_allclose(post["b"], np.logaddexp(0, post["raw_b"]), rtol=1e-5)
    np.testing.assert_allclose(post["beta"], np.logaddexp(0, post["raw_beta"]), rtol=1e-5)
    assert list(post["neuron"].values) == list(rec.neuron_ids)

    stats = tiny_fit["sample_stats"].to_dataset()
    for name in ("diverging", "energy", "n_steps", "tree_depth", "reached_max_treedepth",
                 "reached_max_tree_depth", "acceptance_rate", "step_size", "lp"):
        # two neurons: one NUTS each, so every statistic is per neuron
        assert stats[name].dims == ("chain", "draw", "neuron"), name
    np.testing.assert_array_equal(
        stats["tree_depth"], np.ceil(np.log2(stats["n_steps"].values + 1))
    )

    loglik = tiny_fit["log_likelihood"]["counts"]
    assert loglik.dims == ("chain", "draw", "neuron", "segment")
    assert list(loglik["segment"].values) == list(rec.segment_ids)
    observed = tiny_fit["observed_data"]["counts"]
    assert observed.dims == ("neuron", "trial", "time") and observed.shape == (2, 2, 600)

    attrs = tiny_fit.attrs
    assert attrs["bayesstrf_version"] == bayesstrf.__version__ and attrs["seed"] == 3
    assert "command_line" not in attrs  # the library records no sys.argv; the CLI does
    assert attrs["activation"] == "softplus" and attrs["dt"] == rec.dt
    assert json.loads(attrs["strf_prior"])["name"] == "ridge"
    assert attrs["sampler_chains"] == 2 and attrs["sampler_drive"] in ("lag_matrix", "conv")
    constant = tiny_fit["constant_data"].to_dataset()
    sites = {v.attrs["site"] for v in constant.data_vars.values() if "site" in v.attrs}
    assert sites == {"raw_beta", "raw_b", "drive_offset"}
    mean_rate = [np.nanmean(np.concatenate([c[n].ravel() for c in rec.counts])) for n in (0, 1)]
    np.testing.assert_allclose(constant["mean_rate"].values, mean_rate, rtol=1e-6)
    assert constant["mean_rate"].dims == ("neuron",)
    assert constant["prior_raw_b_loc"].dims == ("neuron",)


def test_segment_log_likelihood_matches_scipy(tiny_fit, tiny_simulation):
    """Recompute one draw's per-segment log-likelihood with a lag matrix and scipy."""
    rec = tiny_simulation.recording
    post = tiny_fit["posterior"].to_dataset().isel(chain=1, draw=7)
    strf = post["strf"].values
    family = act.get("softplus")
    values = {name: post[name].values for name in family.params}
    got = tiny_fit["log_likelihood"]["counts"].isel(chain=1, draw=7).values
    for s, (spec, counts) in enumerate(zip(rec.spectrograms, rec.counts, strict=True)):
        drive = lag_matrix(spec, 3) @ strf.reshape(2, -1).T + post["intercept"].values
        rate = np.asarray(family.rate(drive, values)).T  # (N, T)
        expected = poisson.logpmf(counts, rate[:, None, :]).sum(axis=(1, 2))
        np.testing.assert_allclose(got[:, s], expected, rtol=1e-4)


def test_same_seed_same_draws(tiny_fit, tiny_simulation):
    again = fit(tiny_simulation.recording, "softplus", **TINY_FIT)
    for name in ("strf", "raw_beta", "intercept"):
        np.testing.assert_array_equal(again["posterior"][name], tiny_fit["posterior"][name])


def test_sigmoid_fit_reports_fixed_convention(tiny_simulation):
    tree = fit(tiny_simulation.recording, "sigmoid", **{**TINY_FIT, "draws": 10, "warmup": 20})
    post = tree["posterior"].to_dataset()
    assert {"c", "raw_b", "raw_a", "b", "a"} <= set(post.data_vars)
    assert "drive_offset" not in post and json.loads(tree.attrs["activation_fixed"]) == {"d": 1.0}


def test_target_accept_defaults_to_the_larger_of_the_priors_and_the_familys(tiny_fit,
                                                                           tiny_simulation):
    tree = fit(tiny_simulation.recording, "sigmoid", strf="smooth",
               **{**TINY_FIT, "draws": 10, "warmup": 20})
    assert tree.attrs["sampler_target_accept"] == Smooth.target_accept == 0.9
    assert act.get("sigmoid").target_accept == Ridge.target_accept == 0.8
    softplus = tiny_fit.attrs["sampler_target_accept"]  # ridge, softplus
    assert softplus == act.get("softplus").target_accept == 0.9


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"activation": "sigmoidd"}, ValueError, r"activation: .*did you mean 'sigmoid'"),
        ({"strf": "rigde"}, ValueError, r"strf: .*did you mean 'ridge'"),
        ({"chains": 0}, ValueError, r"chains: expected a positive integer, found 0"),
        ({"draws": -5}, ValueError, r"draws: expected a positive integer, found -5"),
        ({"warmup": 2.5}, ValueError, r"warmup: expected a positive integer, found 2.5"),
        ({"n_lags": 500}, ValueError, r"n_lags: expected every segment .* 200 bins"),
        ({"seed": -1}, ValueError, r"seed: expected a non-negative integer"),
        ({"target_accept": 1.5}, ValueError, r"target_accept: expected a value in \(0, 1\)"),
        ({"target_accept": "0.9"}, ValueError, r"target_accept: expected .*found '0.9'"),
        ({"chain_method": "threads"}, ValueError, r"chain_method: expected"),
    ],
)
def test_bad_arguments_are_named(tiny_simulation, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        fit(tiny_simulation.recording, **{**TINY_FIT, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"activation": "sigmoid"}, ValueError,
         r"start: expected a fit with activation 'sigmoid' like this one, found 'softplus'"),
        ({"n_lags": 4}, ValueError, r"start: expected a fit with n_lags 4 .* found 3"),
        ({"chains": 1}, ValueError, r"start: expected a fit with chains 1 .* found 2"),
        ({"strf": "smooth"}, ValueError, r"start: expected a fit with strf"),
    ],
)
def test_a_start_of_another_model_is_refused(tiny_simulation, tiny_fit, kwargs, error,
                                             pattern):
    with pytest.raises(error, match=pattern):
        fit(tiny_simulation.recording, **{**TINY_FIT, **kwargs, "start": tiny_fit})


def test_a_start_that_is_not_a_fit_is_refused(tiny_simulation):
    with pytest.raises(TypeError, match=r"start: expected a DataTree from bayesstrf.fit, "
                                        r"found dict"):
        fit(tiny_simulation.recording, **TINY_FIT, start={})


def test_recording_type_is_checked():
    with pytest.raises(TypeError, match=r"recording: expected a bayesstrf.Recording, found dict"):
        fit({"counts": []})


def test_chain_method_on_cpu():
    assert choose_chain_method(1) == "sequential"
    assert choose_chain_method(64) == "vectorized"


def test_vectorized_and_sequential_chains_sample_the_same_posterior():
    """Chains in one vectorised program (the default) and one after the other: different
    float32 rounding, so different draws, but the same posterior within Monte Carlo error."""
    import arviz_stats as azs

    recording = bayesstrf.simulate("softplus", n_freq=5, n_lags=4, n_time=3000, seed=2).recording
    settings = dict(n_lags=4, chains=3, warmup=150, draws=300, seed=1, progress=False)
    runs = [fit(recording, chain_method=method, **settings)["posterior"]
            for method in ("vectorized", "sequential")]
    for name in ("strf", "intercept", "raw_beta", "raw_b"):
        a, b = (run[name] for run in runs)
        assert not np.allclose(a, b)  # two different runs, not one run twice
        for method, estimate in (("mean", xr.DataArray.mean), ("sd", xr.DataArray.std)):
            gap = abs(estimate(a, ("chain", "draw")) - estimate(b, ("chain", "draw")))
            error = np.hypot(azs.mcse(a, method=method), azs.mcse(b, method=method))
            assert np.all(gap < 6 * error), (name, method, float((gap / error).max()))


def test_fit_is_a_plain_datatree(tiny_fit):
    assert isinstance(tiny_fit, xr.DataTree)
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data"} <= set(
        tiny_fit.children
    )
