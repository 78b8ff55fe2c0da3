"""Simulation-based calibration: rank bookkeeping against closed forms; the SBC run (slow)."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chisquare

from bayesstrf.evaluation.calibration import rank_histogram, rank_of_truth
from bayesstrf.evaluation.validate import sbc


def test_ranks_of_exchangeable_draws_are_uniform():
    """A truth drawn from the same distribution as the posterior draws has a uniform rank."""
    rng = np.random.default_rng(0)
    ranks = [rank_of_truth(rng.normal(size=400), rng.normal(), 100) for _ in range(2000)]
    assert min(ranks) >= 0 and max(ranks) <= 99
    counts = rank_histogram(ranks, 100, 10)
    assert counts.sum() == 2000 and chisquare(counts).pvalue > 0.01
    biased = [rank_of_truth(rng.normal(size=400), rng.normal(0.5), 100) for _ in range(500)]
    assert chisquare(rank_histogram(biased, 100, 10)).pvalue < 1e-6


def test_rank_histogram_bins_exactly():
    np.testing.assert_array_equal(rank_histogram([0, 9, 10, 99, 99], 100, 10),
                                  [2, 1, 0, 0, 0, 0, 0, 0, 0, 2])


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"bins: expected a divisor of n_ranks=100, found 7"):
        sbc(bins=7)
    with pytest.raises(ValueError, match=r"replicates: expected a positive integer"):
        sbc(replicates=0)


def test_sbc_softplus_ridge_is_calibrated():
    """Issue 6: 50 replicates, one family, uniform ranks at the 1% level. The replicates are
    fitted as the neurons of one recording (one compiled program), so this runs in about a
    minute and stays in the fast lane."""
    result = sbc("softplus", "ridge", replicates=50, n_ranks=50, bins=5, chains=2, warmup=200,
                 draws=100)
    print(f"\n{result.p_values}\ndivergences per replicate: {result.divergences.tolist()}")
    assert len(result.ranks) == 50 and len(result.divergences) == 50
    assert set(result.ranks.columns) == {"raw_beta", "raw_b", "strf_scale", "strf[0,0]",
                                         "strf[2,0]", "strf[3,2]"}
    assert result.passes(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("strf", ["smooth", "localized", "sparse", "lowrank:1", "lowrank:2"])
def test_sbc_each_strf_prior_is_calibrated(strf):
    """Issue 5: each STRF prior, 100 replicates on a tiny problem, uniform at the 1% level
    (the settings of `benchmarks.sbc`: 2 x 200 draws thinned to 99; with 2 x 100 draws thinned
    to 49, lowrank:2 once fell below p = 0.01, cause not established)."""
    result = sbc("softplus", strf, replicates=100, n_ranks=100, bins=10, chains=2, warmup=200,
                 draws=200)
    print(f"\n{strf}\n{result.p_values}\ndivergences: {result.divergences.sum()}")
    assert result.passes(0.01)


def test_plot_sbc_draws_the_pit_ecdf_of_each_parameter():
    from bayesstrf.evaluation.validate import SBC
    from bayesstrf.viz.plotting import plot_sbc

    # 'a' exactly uniform over the 10 ranks; 'b' always rank 5: miscalibrated
    ranks = pd.DataFrame({"a": np.tile(np.arange(10), 6), "b": np.full(60, 5)})
    result = SBC(ranks, pd.Series({"a": 1.0, "b": 0.0}), n_ranks=10, bins=5,
                 divergences=pd.Series([0] * 60))
    fig = plot_sbc(result, title="t")
    axes = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in axes] == ["a", "b"]
    for ax, name in zip(axes, "ab", strict=True):
        curve = max(ax.lines, key=lambda line: len(line.get_xdata()))
        x, y = np.asarray(curve.get_xdata(), float), np.asarray(curve.get_ydata(), float)
        pit = (ranks[name].to_numpy() + 0.5) / 10
        ecdf = (pit[:, None] <= x[None, :] + 1e-9).mean(axis=0)
        np.testing.assert_allclose(y, ecdf - x, atol=1e-6)
    flagged = [len(ax.collections[0].get_offsets()) if ax.collections else 0 for ax in axes]
    assert flagged[0] == 0 and flagged[1] > 0
    with pytest.raises(TypeError, match=r"result: expected a bayesstrf.evaluation.validate.SBC"):
        plot_sbc(ranks)
    with pytest.raises(ValueError, match=r"level: expected a probability"):
        plot_sbc(result, level=1.5)
