"""Results of simulation-based calibration (`bayesstrf.evaluation.validate.sbc` runs it): the ranks
of
the true values among posterior draws and their uniformity tests. Figures read these without
importing the sampler.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class SBC:
    """Result of `sbc`.

    Attributes
    ----------
    ranks : pandas.DataFrame
        One row per replicate, one column per parameter; values in ``0 .. n_ranks - 1``.
    p_values : pandas.Series
        Chi-square test of uniformity of each parameter's ranks over ``bins`` bins.
    n_ranks, bins : int
    divergences : pandas.Series
        Divergent transitions per replicate (a replicate with many is suspect on its own).
    """

    ranks: pd.DataFrame
    p_values: pd.Series
    n_ranks: int
    bins: int
    divergences: pd.Series

    def passes(self, level: float = 0.01) -> bool:
        """Every parameter's uniformity test has p >= ``level``."""
        return bool((self.p_values >= level).all())


def rank_histogram(ranks: np.ndarray, n_ranks: int, bins: int) -> np.ndarray:
    """Counts of ranks ``0 .. n_ranks - 1`` in ``bins`` equal bins (``bins`` divides
    ``n_ranks``)."""
    return np.bincount(np.asarray(ranks) * bins // n_ranks, minlength=bins)


def rank_of_truth(draws: np.ndarray, truth: float, n_ranks: int) -> int:
    """Rank of ``truth`` among ``n_ranks - 1`` evenly thinned ``draws``."""
    keep = np.linspace(0, draws.size - 1, n_ranks - 1).round().astype(int)
    return int((draws[keep] < truth).sum())
