"""prior_predictive: prior draws match the priors fit uses; rates are plausible; figure."""

import numpy as np
import pytest
from scipy.stats import kstest, norm

from bayesstrf import prior_predictive
from bayesstrf.viz.plotting import plot_prior_predictive


@pytest.fixture(scope="module")
def prior(tiny_simulation):
    return prior_predictive(tiny_simulation.recording, "softplus", n_lags=3, draws=400,
                            max_bins=10_000, seed=1)


def test_shapes_and_mean_rate_over_every_bin(prior, tiny_simulation):
    rate = prior["prior_predictive"]["rate"]
    assert rate.dims == ("chain", "draw", "neuron", "bin") and rate.shape == (1, 400, 2, 600)
    assert prior["prior"]["strf"].dims == ("chain", "draw", "neuron", "freq", "lag")
    assert (rate.values > 0).all()
    np.testing.assert_allclose(prior["prior_predictive"]["mean_rate"], rate.mean("bin"),
                               rtol=1e-5)


def test_activation_draws_follow_the_fit_priors(prior):
    """raw_b ~ the family's default Normal prior (centred from the mean rate), by KS test."""
    spec = prior["prior"]["raw_b"].isel(chain=0, neuron=0).values
    drive = prior["prior"]["drive_offset"].isel(chain=0, neuron=0).values
    observed = prior.attrs["observed_mean_rate"][0]
    assert kstest(drive, norm(observed, 1.0).cdf).pvalue > 0.01  # N(mean_rate, 1)
    assert spec.std() > 0


def test_defaults_give_plausible_rates(prior):
    """The observed mean rate lies well inside the prior's distribution of mean rates."""
    mean_rate = prior["prior_predictive"]["mean_rate"].values[0]
    for n, observed in enumerate(prior.attrs["observed_mean_rate"]):
        quantile = (mean_rate[:, n] < observed).mean()
        assert 0.05 < quantile < 0.95, (n, quantile)


@pytest.mark.parametrize("strf", ["smooth", "lowrank:2", "sparse", "localized"])
def test_every_prior_has_a_prior_predictive(tiny_simulation, strf):
    tree = prior_predictive(tiny_simulation.recording, "sigmoid", strf=strf, n_lags=3,
                            draws=20, max_bins=50)
    assert tree["prior_predictive"]["rate"].shape == (1, 20, 2, 50)
    assert np.isfinite(tree["prior"]["strf"].values).all()


def test_figure_and_bad_arguments(prior, tiny_simulation):
    fig = plot_prior_predictive(prior, "n1", n_strfs=3)
    assert len(fig.axes) == 4 and fig.axes[-1].get_xscale() == "log"
    with pytest.raises(ValueError, match=r"n_strfs: expected an integer in 1..400"):
        plot_prior_predictive(prior, n_strfs=0)
    with pytest.raises(ValueError, match=r"draws: expected a positive integer"):
        prior_predictive(tiny_simulation.recording, draws=0)
    with pytest.raises(TypeError, match=r"recording: expected a bayesstrf.Recording"):
        prior_predictive({"counts": []})
    with pytest.raises(ValueError, match=r"strf: .*did you mean 'smooth'"):
        prior_predictive(tiny_simulation.recording, strf="smoth")
