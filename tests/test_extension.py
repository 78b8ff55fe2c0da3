"""Extension points: an output family and an STRF prior of the user's own, used like built-ins."""

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from scipy import stats

import bayesstrf
from bayesstrf.errors import InputError
from bayesstrf.model import activations
from bayesstrf.model import strf as strf_priors
from bayesstrf.model.strf import Kernel

SETTINGS = dict(n_lags=3, chains=2, warmup=30, draws=20, seed=2, progress=False)


@dataclass(frozen=True)
class FixedGaussian:
    """Gaussian STRF weights of a fixed prior sd: the simplest `StrfPrior`."""

    sd: float = 0.3

    name = "fixed_gaussian"
    target_accept = 0.8
    dims = {"strf_weights": ("neuron", "freq", "lag")}

    def sample(self, n_neurons: int, n_freq: int, n_lags: int) -> Kernel:
        law = dist.Normal(0.0, self.sd).expand((n_neurons, n_freq, n_lags)).to_event(3)
        return Kernel(numpyro.sample("strf_weights", law))

    def completed(self, samples: dict, key) -> dict:
        return samples

    def spec(self) -> dict:
        return {"name": self.name} | asdict(self)


@pytest.fixture
def registry():
    """Leave the registries as they were."""
    saved = dict(activations.REGISTRY), dict(strf_priors.REGISTRY)
    yield
    for table, old in zip((activations.REGISTRY, strf_priors.REGISTRY), saved, strict=True):
        table.clear()
        table.update(old)


def test_a_registered_family_samples_what_the_same_built_in_family_does(tiny_simulation,
                                                                        registry):
    """The exponential GLM rebuilt from its public parts under another name: the same draws."""
    mine = activations.register(activations.Activation(
        "my_exponential", activations.exponential, (), priors=activations.exponential_priors))
    recording = tiny_simulation.recording
    ours = bayesstrf.fit(recording, "my_exponential", **SETTINGS)
    built_in = bayesstrf.fit(recording, "exponential", **SETTINGS)
    assert ours.attrs["activation"] == mine.name
    np.testing.assert_array_equal(ours["posterior"]["strf"].values,
                                  built_in["posterior"]["strf"].values)
    rates = bayesstrf.predict(ours, recording, max_draws=10)  # found again by its name
    assert np.isfinite(rates.values).all() and (rates.values > 0).all()


def test_a_family_without_default_priors_needs_them_by_name(tiny_simulation, registry):
    family = activations.Activation("scaled_exp", lambda x, raw_g: np.exp(x) * raw_g,
                                    ("raw_g",), free_intercept=False)
    activations.register(family)
    with pytest.raises(InputError, match=r"no default prior for \['raw_g'\]"):
        bayesstrf.fit(tiny_simulation.recording, "scaled_exp", **SETTINGS)


def test_built_in_names_cannot_be_replaced(registry):
    with pytest.raises(InputError, match="activation.name"):
        activations.register(activations.Activation("softplus", activations.exponential, ()))
    with pytest.raises(InputError, match="prior_class.name"):
        strf_priors.register(type("Ridge2", (), {"name": "ridge"}))
    with pytest.raises(TypeError, match="activation: expected"):
        activations.register("softplus")


def test_a_prior_of_ones_own_draws_its_law(tiny_simulation):
    """Prior draws of a user's `StrfPrior` follow its law (Kolmogorov-Smirnov vs scipy)."""
    prior = FixedGaussian(sd=0.3)
    assert isinstance(prior, strf_priors.StrfPrior) and strf_priors.get(prior) is prior
    draws = bayesstrf.prior_predictive(tiny_simulation.recording, "softplus", strf=prior,
                                       n_lags=3, draws=300, seed=1)
    weights = draws["prior"]["strf_weights"].values.ravel()
    assert stats.kstest(weights, stats.norm(scale=0.3).cdf).pvalue > 1e-3
    assert stats.kstest(weights, stats.norm(scale=0.4).cdf).pvalue < 1e-6  # the test can fail


def test_a_registered_prior_is_rebuilt_from_a_saved_fits_spec(registry):
    strf_priors.register(FixedGaussian)
    assert strf_priors.from_spec(FixedGaussian(0.2).spec()) == FixedGaussian(0.2)
    assert strf_priors.get("fixed_gaussian") == FixedGaussian()
    with pytest.raises(InputError, match="register it"):
        strf_priors.from_spec({"name": "unknown_prior"})
    with pytest.raises(InputError, match="StrfPrior"):
        strf_priors.get(object())


def test_the_how_to_examples_run_as_written(tiny_simulation, registry, monkeypatch):
    """The code of docs/howto/priors-and-activations.md's extension sections, with short
    chains: each fit samples its own sites and predicts positive rates."""
    text = (Path(__file__).parents[1] / "docs" / "howto" / "priors-and-activations.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text[text.index("## Bring your own"):], re.S)
    fits = []
    real_fit = bayesstrf.fit
    monkeypatch.setattr(bayesstrf, "fit", lambda recording, activation="softplus", **kwargs:
                        fits.append(real_fit(recording, activation, **kwargs | SETTINGS)))
    for block in blocks:
        exec(block, {"bayesstrf": bayesstrf, "recording": tiny_simulation.recording})
    assert [fit.attrs["activation"] for fit in fits] == ["power_law", "softplus"]
    assert {"raw_g", "raw_p"} <= set(fits[0]["posterior"].data_vars)
    assert "strf_weights" in fits[1]["posterior"].data_vars
    for fit in fits:
        rates = bayesstrf.predict(fit, tiny_simulation.recording, max_draws=5).values
        assert np.isfinite(rates).all() and (rates > 0).all()
