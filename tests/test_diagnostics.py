"""diagnose: thresholds, planted problems, E-BFMI against ArviZ."""

import arviz_stats as azs
import numpy as np
import pytest

from bayesstrf import diagnose


def planted(tree, **changes):
    """A copy of a fit with some sample statistics overwritten."""
    tree = tree.copy()
    stats = tree["sample_stats"].to_dataset().copy(deep=True)
    for name, (chain, draw) in changes.items():
        # the first neuron only: with one NUTS per neuron the statistics are per neuron
        at = (chain, draw, 0) if stats[name].ndim == 3 else (chain, draw)
        stats[name][at] = True
        if name == "reached_max_tree_depth":
            stats["reached_max_treedepth"][at] = True
    tree["sample_stats"] = tree["sample_stats"].from_dict({"/": stats})
    return tree


def test_report_has_a_row_per_neuron(tiny_fit):
    report = diagnose(tiny_fit)
    assert list(report.table.index) == ["n0", "n1"]
    assert {"max_rhat", "min_ess_bulk", "min_ess_tail", "rhat_ok", "ess_ok"} <= set(report.table)
    expected = float(azs.rhat(tiny_fit["posterior"].to_dataset().sel(neuron="n0"))
                     .to_array().max())
    np.testing.assert_allclose(report.table.loc["n0", "max_rhat"], expected)


def test_ridge_strf_carries_the_ranks_of_its_latent(tiny_fit):
    """diagnose skips `strf` under Ridge: it is `strf_std` over a constant per element, so its
    rank-based r_hat and ESS (bulk and tail) are the latent's, up to rounding: the folded
    ranks (``|x - median|``) move with the arithmetic, and the same draws cast to float64
    already change r_hat by 1.3e-3 (seed 3)."""
    strf, latent = tiny_fit["posterior"]["strf"], tiny_fit["posterior"]["strf_std"]
    np.testing.assert_allclose(strf * (latent / strf).mean(), latent, rtol=1e-5)
    np.testing.assert_allclose(azs.rhat(strf), azs.rhat(latent), atol=5e-3)
    for method in ("bulk", "tail"):
        np.testing.assert_allclose(azs.ess(strf, method=method), azs.ess(latent, method=method),
                                   rtol=0.02)


def test_flags_planted_divergence(tiny_fit):
    base = diagnose(tiny_fit)
    draw = int(np.argmin(tiny_fit["sample_stats"]["diverging"].values[0, :, 0]))  # none there
    report = diagnose(planted(tiny_fit, diverging=(0, draw)))
    assert report.divergences == base.divergences + 1
    assert report.table["divergences"].iloc[0] == base.table["divergences"].iloc[0] + 1
    assert any("divergent" in w and "target_accept" in w for w in report.warnings)


def test_flags_planted_tree_depth_saturation(tiny_fit):
    report = diagnose(planted(tiny_fit, reached_max_tree_depth=(1, 2)))
    assert report.saturated >= 1
    assert any("maximum tree depth" in w for w in report.warnings)


def test_short_run_is_not_ok(tiny_fit):
    # 2 chains x 40 draws cannot reach 100 effective draws per chain
    report = diagnose(tiny_fit)
    assert not report.ok and any("ESS" in w for w in report.warnings)


def test_ebfmi_is_betancourts_closed_form(tiny_fit):
    energy = tiny_fit["sample_stats"]["energy"].values.astype(float)
    expected = np.square(np.diff(energy, axis=1)).sum(1) / np.square(
        energy - energy.mean(1, keepdims=True)).sum(1)
    assert energy.ndim == 3  # one NUTS per neuron: the report keeps each chain's worst neuron
    expected = expected.min(-1)
    np.testing.assert_allclose(diagnose(tiny_fit).ebfmi, expected, rtol=1e-5)


def test_rejects_non_fits():
    with pytest.raises(TypeError, match=r"fit: expected a DataTree"):
        diagnose({"posterior": None})
