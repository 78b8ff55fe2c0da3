"""compare: PSIS-LOO tables against ArviZ, per neuron, k-fold by segment, errors."""


import arviz_stats as azs
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesstrf import compare, fit, simulate
from bayesstrf.evaluation.comparison import held_out_metrics
from bayesstrf.model.activations import FAMILIES
from tests.conftest import TINY_FIT


@pytest.fixture(scope="module")
def sigmoid_fit(tiny_simulation):
    return fit(tiny_simulation.recording, "sigmoid", **TINY_FIT)


@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")
def test_loo_over_fits_matches_arviz(tiny_fit, sigmoid_fit):
    result = compare({"softplus": tiny_fit, "sigmoid": sigmoid_fit})
    assert set(result.table.index) == {"softplus", "sigmoid"}
    assert result.method == "PSIS-LOO over segments"
    ll = tiny_fit["log_likelihood"]["counts"].stack(unit=("neuron", "segment"))
    expected = azs.loo(xr.DataTree.from_dict({
        "posterior": tiny_fit["posterior"].to_dataset(),
        "log_likelihood": xr.Dataset({"counts": ll})}))
    np.testing.assert_allclose(result.table.loc["softplus", "elpd"], expected.elpd, rtol=1e-6)
    assert result.table["elpd"].iloc[0] >= result.table["elpd"].iloc[1]
    np.testing.assert_allclose(result.table["weight"].sum(), 1.0, rtol=1e-6)
    assert set(result.per_neuron.index.get_level_values("neuron")) == {"n0", "n1"}
    pooled = result.per_neuron.xs("softplus", level="model")["elpd"].sum()
    np.testing.assert_allclose(pooled, result.table.loc["softplus", "elpd"], rtol=1e-2)


def test_kfold_refits_by_segment(tiny_simulation):
    result = compare(tiny_simulation.recording, ("softplus", "exponential"), method="kfold",
                     folds=3, **{**TINY_FIT, "warmup": 20, "draws": 10, "chains": 1})
    assert result.method == "3-fold cross-validation over segments"
    assert list(result.table["rank"]) == [0, 1]
    assert np.isfinite(result.table["elpd"]).all()


@pytest.mark.parametrize(
    ("arg", "kwargs", "error", "pattern"),
    [
        ({}, {}, TypeError, r"fits_or_recording: expected a Recording or a dict"),
        (None, {"method": "waic"}, ValueError, r"method: expected 'auto', 'loo' or 'kfold'"),
    ],
)
def test_bad_arguments(tiny_fit, arg, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        compare(arg if arg is not None else {"a": tiny_fit, "b": tiny_fit}, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_compare_ranks_the_true_family_first(family):
    """Issue 3: with each family as the truth (1 neuron, T=20000, drive reaching saturation
    for sigmoid and double exponential, the linear range for softplus), PSIS-LOO over blocks
    ranks it first."""
    sim = simulate(family, n_neurons=1, n_freq=8, n_lags=6, n_time=20000, seed=5,
                   drive_sd=0.4 if family == "softplus" else None)
    result = compare(sim.recording, n_lags=6, chains=2, warmup=300, draws=500, seed=0,
                     progress=False)
    print(f"\ntruth {family}:\n{result}")
    assert result.table.index[0] == family


@pytest.mark.slow
def test_the_demos_comparison_is_right_and_reliable():
    """Issue 22: the recording and settings of `make demo` rank the truth first by more than
    2 SE, with no warning left on the first-ranked model's PSIS-LOO."""
    sim = simulate("softplus", n_neurons=2, n_freq=12, n_lags=8, n_time=8000, n_trials=4,
                   n_segments=4, drive_sd=0.3, seed=0)
    result = compare(sim.recording, n_lags=8, chains=4, warmup=300, draws=400, seed=0,
                     progress=False)
    print(f"\n{result}")
    assert result.table.index[0] == "softplus"
    assert "clearly ahead of" in result.verdict()
    assert result.warnings == []


def truth_as_posterior(sim) -> xr.DataTree:
    """The simulated truth as a one-chain, one-draw fit: what a perfect posterior predicts."""
    posterior = xr.Dataset(
        {name: (("chain", "draw", "neuron", *(("freq", "lag") if name == "strf" else ())),
                np.asarray(sim.truth[name], dtype=float)[None, None])
         for name in ("strf", "intercept", "raw_beta", "raw_b")},
        coords={"neuron": sim.recording.neuron_ids})
    tree = xr.DataTree.from_dict({"posterior": posterior})
    rate = [float(np.nanmean(np.concatenate([c[n].ravel() for c in sim.recording.counts])))
            for n in range(sim.recording.n_neurons)]
    tree["constant_data"] = xr.DataTree(xr.Dataset({"mean_rate": ("neuron", rate)}))
    tree.attrs = {"activation": "softplus"}
    return tree


def test_held_out_metrics_of_the_truth_are_calibrated():
    sim = simulate("softplus", n_neurons=2, n_freq=6, n_lags=4, n_time=20_000, n_trials=4,
                   n_segments=2, seed=3)
    metrics = held_out_metrics(truth_as_posterior(sim), sim.recording)
    # the true rates: 90% intervals cover 90% of 20,000 bins (sd 0.003), CCnorm ~ 1
    np.testing.assert_allclose(metrics["coverage"], 0.9, atol=0.012)
    np.testing.assert_allclose(metrics["cc_norm"], 1.0, atol=0.1)
    assert (metrics["bits_per_spike"] > 0).all()


def test_auto_moment_matches_only_a_first_ranked_model(monkeypatch):
    """Matching the first model's hard units may lower its elpd below the second's: the new
    first is matched too; a model behind the first is never matched (its high k is a note)."""
    from types import SimpleNamespace

    from bayesstrf.evaluation import comparison
    def loo(elpd, k):
        return SimpleNamespace(elpd=elpd, pareto_k=np.array([0.1, k]))

    loos = {"a": loo(-100.0, 0.9), "b": loo(-101.0, 0.8), "c": loo(-150.0, 1.2)}
    monkeypatch.setattr(comparison, "loo_table", lambda loos: pd.DataFrame(
        {"elpd": [v.elpd for v in loos.values()]}, index=list(loos)).sort_values(
        "elpd", ascending=False))
    matched_calls = []

    def matched(fit, recording, tree, loo_, block_bins, k_max):  # matching costs 5 nats
        matched_calls.append(fit)
        return SimpleNamespace(elpd=loo_.elpd - 5.0, pareto_k=np.array([0.1, 0.5]))

    monkeypatch.setattr(comparison, "loo_moment_matched", matched)
    monkeypatch.setattr(comparison, "holds_every_site", lambda fit, recording: True)
    names = {name: name for name in loos}
    assert comparison._match_from_the_first(loos, names, names, None, 100) == ["a", "b"]
    assert matched_calls == ["a", "b"]
    assert (loos["a"].elpd, loos["b"].elpd, loos["c"].elpd) == (-105.0, -106.0, -150.0)
