"""Seeded recovery of known truths: the default fit is converged, efficient and calibrated.

The full-size checks (1 neuron, F=16, L=12, T=20000, natural-like stimulus, the default fit:
4 chains x (500 warmup + 1000 draws)) are `slow`; a small version runs in the fast lane so that
CI exercises NUTS end to end.
"""

import arviz_stats as azs
import numpy as np
import pytest

from bayesstrf import diagnose, fit, simulate
from bayesstrf.model import activations as act


def coverage(tree, truth: np.ndarray, prob: float = 0.9) -> float:
    """Fraction of STRF weights whose central ``prob`` interval contains the truth."""
    tail = (1 - prob) / 2
    lower, upper = tree["posterior"]["strf"].quantile([tail, 1 - tail], dim=("chain", "draw"))
    return float(((truth >= lower.values) & (truth <= upper.values)).mean())


def test_small_recovery(tmp_path):
    sim = simulate("softplus", n_neurons=1, n_freq=6, n_lags=4, n_time=8000, n_trials=2, seed=2)
    tree = fit(sim.recording, "softplus", n_lags=4, chains=2, warmup=300, draws=200, seed=1,
               progress=False)
    report = diagnose(tree)
    # under 1% of the 400 draws (the validation's criterion): over sampler seeds 1-4 this fit
    # diverged 0, 2, 0, 0 times with the lag matrix stored (F L, T) and 2, 0, 1, 2 times stored
    # (T, F L) (2026-12-07): the same model, other rounding; seed 1 went from 0 to 2
    assert report.divergences < 0.01 * 400
    assert report.table["max_rhat"].max() < 1.05
    assert coverage(tree, sim.truth["strf"]) >= 0.75
    mean = tree["posterior"]["strf"].mean(("chain", "draw")).values.ravel()
    assert np.corrcoef(mean, sim.truth["strf"].ravel())[0, 1] > 0.8


@pytest.mark.slow
@pytest.mark.parametrize("family", act.FAMILIES)
def test_default_fit_recovers_the_truth(family):
    sim = simulate(family, n_neurons=1, n_freq=16, n_lags=12, n_time=20000, seed=1)
    tree = fit(sim.recording, family, n_lags=12, chains=4, seed=0,
               progress=False)
    posterior = tree["posterior"].to_dataset()
    rhat = azs.rhat(posterior).to_array().max()
    assert float(rhat) < 1.01
    assert diagnose(tree).divergences == 0
    ess = azs.ess(posterior[list(act.get(family).params)], method="bulk")
    assert float(ess.to_array().min()) > 400
    assert coverage(tree, sim.truth["strf"]) >= 0.8
