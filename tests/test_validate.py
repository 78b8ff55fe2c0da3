"""Simulation-based calibration: rank bookkeeping against closed forms; the SBC run (slow)."""

import numpy as np
import pytest
from scipy.stats import chisquare

from bayesstrf.validate import _rank, rank_histogram, sbc


def test_ranks_of_exchangeable_draws_are_uniform():
    """A truth drawn from the same distribution as the posterior draws has a uniform rank."""
    rng = np.random.default_rng(0)
    ranks = [_rank(rng.normal(size=400), rng.normal(), 100) for _ in range(2000)]
    assert min(ranks) >= 0 and max(ranks) <= 99
    counts = rank_histogram(ranks, 100, 10)
    assert counts.sum() == 2000 and chisquare(counts).pvalue > 0.01
    biased = [_rank(rng.normal(size=400), rng.normal(0.5), 100) for _ in range(500)]
    assert chisquare(rank_histogram(biased, 100, 10)).pvalue < 1e-6


def test_rank_histogram_bins_exactly():
    np.testing.assert_array_equal(rank_histogram([0, 9, 10, 99, 99], 100, 10),
                                  [2, 1, 0, 0, 0, 0, 0, 0, 0, 2])


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"bins: expected a divisor of n_ranks=100, found 7"):
        sbc(bins=7)
    with pytest.raises(ValueError, match=r"replicates: expected a positive integer"):
        sbc(replicates=0)


@pytest.mark.slow
def test_sbc_softplus_ridge_is_calibrated():
    """Issue 6 slow lane: 50 replicates, one family, uniform ranks at the 1% level."""
    result = sbc("softplus", "ridge", replicates=50, n_ranks=50, bins=5, chains=2, warmup=200,
                 draws=100)
    print(f"\n{result.p_values}\ndivergences per replicate: {result.divergences.tolist()}")
    assert result.passes(0.01)
