"""plotting: each figure shows the numbers it claims, checked against independent computations."""

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.figure import Figure

from bayesstrf import simulate
from bayesstrf.data.recording import Recording
from bayesstrf.evaluation.metrics import cc_norm, cc_raw
from bayesstrf.model.design import lag_matrix
from bayesstrf.model.prediction import predict
from bayesstrf.viz.plotting import plot_comparison, plot_nonlinearity, plot_psth, plot_strf


def softplus(x):
    return np.logaddexp(0.0, x)


def flat_draws(fit, name, neuron):
    """``(chain * draw, ...)`` values of one posterior variable for one neuron."""
    values = fit["posterior"][name].isel(neuron=neuron).values
    return values.reshape((-1, *values.shape[2:]))


def band_range(ax, x):
    """Lowest and highest y of the (only) fill_between polygon of ``ax`` at each ``x``."""
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    vertices = band.get_paths()[0].vertices
    ys = [vertices[np.isclose(vertices[:, 0], value), 1] for value in x]
    return np.array([y.min() for y in ys]), np.array([y.max() for y in ys])


def line(ax, label_start):
    (found,) = [ln for ln in ax.lines if ln.get_label().startswith(label_start)]
    return found


def test_plot_strf_mean_sd_and_marked_weights(tiny_fit, tmp_path):
    fig = plot_strf(tiny_fit, neuron="n1", prob=0.8)
    assert isinstance(fig, Figure) and len(fig.axes) == 4  # two panels, two colorbars
    ax_mean, ax_sd = fig.axes[:2]
    draws = flat_draws(tiny_fit, "strf", 1)  # (S, F, L)
    (mean_image,), (sd_image,) = ax_mean.images, ax_sd.images
    np.testing.assert_allclose(mean_image.get_array(), draws.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sd_image.get_array(), draws.std(0), rtol=1e-5, atol=1e-7)
    low, high = mean_image.get_clim()
    assert low == pytest.approx(-high) and high == pytest.approx(np.abs(draws.mean(0)).max())

    lower, upper = np.quantile(draws, [0.1, 0.9], axis=0)
    excludes = (lower > 0) | (upper < 0)
    (marks,) = [c for c in ax_mean.collections if isinstance(c, PathCollection)]
    offsets = np.asarray(marks.get_offsets())
    assert offsets.shape[0] == excludes.sum() > 0
    dt_ms = tiny_fit.attrs["dt"] * 1e3
    rows, cols = np.nonzero(excludes)
    np.testing.assert_allclose(offsets, np.c_[cols * dt_ms, rows])
    n_lags = draws.shape[-1]
    np.testing.assert_allclose(mean_image.get_extent()[:2],
                               [-0.5 * dt_ms, (n_lags - 0.5) * dt_ms])
    labels = [t.get_text() for t in ax_mean.get_yticklabels() if t.get_text()]
    freqs = tiny_fit["posterior"]["freq"].values
    assert labels and set(labels) <= {f"{f:g}" for f in freqs}

    # index and id select the same neuron; a wider interval marks no more weights
    same = plot_strf(tiny_fit, neuron=-1, prob=0.8)
    np.testing.assert_array_equal(same.axes[0].images[0].get_array(), mean_image.get_array())
    wide = plot_strf(tiny_fit, neuron=1, prob=0.99)
    assert len(wide.axes[0].collections[0].get_offsets()) <= offsets.shape[0]
    fig.savefig(tmp_path / "strf.png")
    assert (tmp_path / "strf.png").stat().st_size > 0


def test_plot_nonlinearity_curve_band_and_drive_histogram(tiny_fit, tiny_simulation, tmp_path):
    rec = tiny_simulation.recording
    fig = plot_nonlinearity(tiny_fit, rec, neuron=0, prob=0.9)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    ax, twin = fig.axes
    dt = rec.dt

    # drive with a lag matrix and the posterior-mean STRF and intercept
    strf = flat_draws(tiny_fit, "strf", 0).mean(0)
    intercept = flat_draws(tiny_fit, "intercept", 0).mean()
    drive = np.concatenate([lag_matrix(s, strf.shape[-1]) @ strf.ravel() for s in
                            rec.spectrograms]) + intercept
    heights = np.array([p.get_height() for p in twin.patches])
    edges = np.r_[[p.get_x() for p in twin.patches], twin.patches[-1].get_x()
                  + twin.patches[-1].get_width()]
    assert heights.sum() == rec.n_time
    np.testing.assert_allclose(edges[[0, -1]], [drive.min(), drive.max()], rtol=1e-4, atol=1e-4)
    assert np.abs(heights - np.histogram(drive, edges)[0]).sum() <= 2  # float32 at the edges

    # curve: pointwise posterior mean of the softplus activation over all 80 draws, spikes/s
    curve = line(ax, "posterior mean")
    x, y = curve.get_xdata(), curve.get_ydata()
    assert x.min() < drive.min() and x.max() > drive.max()
    beta = softplus(flat_draws(tiny_fit, "raw_beta", 0))
    base = softplus(flat_draws(tiny_fit, "raw_b", 0))
    rates = (softplus(beta * x[:, None]) / beta + base) / dt  # (grid, draw)
    np.testing.assert_allclose(y, rates.mean(1), rtol=1e-4)
    low, high = band_range(ax, x)
    np.testing.assert_allclose(low, np.quantile(rates, 0.05, axis=1), rtol=1e-4)
    np.testing.assert_allclose(high, np.quantile(rates, 0.95, axis=1), rtol=1e-4)
    assert (low <= y).all() and (y <= high).all()
    assert "spikes/s" in ax.get_ylabel()

    thinned = plot_nonlinearity(tiny_fit, rec, neuron="n1", max_draws=7)
    assert len(thinned.axes) == 2
    fig.savefig(tmp_path / "nonlinearity.png")


def test_plot_psth_observed_predicted_band_and_ccnorm(tiny_fit, tiny_simulation, tmp_path):
    rec = tiny_simulation.recording
    fig = plot_psth(tiny_fit, rec, neuron=1, segment="stim2", prob=0.9, max_draws=20)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    (ax,) = fig.axes
    counts = rec.counts[2][1]  # (R, T)
    time = (np.arange(counts.shape[1]) + 0.5) * rec.dt
    observed = line(ax, "observed")
    np.testing.assert_allclose(observed.get_xdata(), time)
    np.testing.assert_allclose(observed.get_ydata(), counts.mean(0) / rec.dt)

    rates = predict(tiny_fit, rec, max_draws=20).isel(neuron=1)
    rates = rates.values[:, rates["segment"].values == "stim2"]  # (S, T), spikes per bin
    predicted = line(ax, "predicted")
    np.testing.assert_allclose(predicted.get_ydata(), rates.mean(0) / rec.dt, rtol=1e-5)
    low, high = band_range(ax, time)
    np.testing.assert_allclose(low, np.quantile(rates, 0.05, 0) / rec.dt, rtol=1e-5)
    np.testing.assert_allclose(high, np.quantile(rates, 0.95, 0) / rec.dt, rtol=1e-5)
    assert (low <= predicted.get_ydata()).all() and (predicted.get_ydata() <= high).all()
    score = cc_norm(rates.mean(0), counts)
    assert ax.get_title().endswith(f"CCnorm = {score:.3f}")
    fig.savefig(tmp_path / "psth.png")


def test_plot_psth_missing_trials_use_present_ones_and_ccraw(tiny_fit, tiny_simulation):
    rec = tiny_simulation.recording
    counts = [c.copy() for c in rec.counts]
    counts[0][0, 1, :] = np.nan  # neuron 0 keeps one complete trial in segment 0
    counts[0][0, 0, :5] = np.nan  # and its first 5 bins are missing everywhere
    holed = Recording(rec.spectrograms, counts, rec.dt, freqs=rec.freqs,
                      neuron_ids=rec.neuron_ids, segment_ids=rec.segment_ids)
    fig = plot_psth(tiny_fit, holed, segment=0, max_draws=10)
    (ax,) = fig.axes
    y = line(ax, "observed").get_ydata()
    assert np.isnan(y[:5]).all()
    np.testing.assert_allclose(y[5:], counts[0][0, 0, 5:] / rec.dt)
    prediction = line(ax, "predicted").get_ydata() * rec.dt
    assert ax.get_title().endswith(f"CCraw = {cc_raw(prediction, counts[0][0]):.3f}")


def test_plot_comparison_orders_best_on_top(tmp_path):
    table = pd.DataFrame(
        {"elpd": [-120.0, -100.0, -150.0], "se": [5.0, 4.0, 6.0],
         "elpd_diff": [-20.0, 0.0, -50.0], "dse": [3.0, 0.0, 7.0]},
        index=["sigmoid", "softplus", "exponential"],
    )
    open_figures = plt.get_fignums()
    fig = plot_comparison(table)
    assert plt.get_fignums() == open_figures  # released from pyplot: nothing accumulates
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    (ax,) = fig.axes
    ticks = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
    assert sorted(ticks, key=ticks.get, reverse=True) == ["softplus", "sigmoid", "exponential"]
    (points,) = ax.collections
    by_y = {y: x for x, y in points.get_offsets()}
    assert [by_y[ticks[name]] for name in ("softplus", "sigmoid", "exponential")] == [
        0.0, -20.0, -50.0]
    # the error bars span the difference +- its se
    bars = {tuple(line.get_xdata()) for line in ax.lines if len(set(line.get_ydata())) == 1}
    assert {(-23.0, -17.0), (-57.0, -43.0)} <= bars
    fig.savefig(tmp_path / "comparison.png")


def test_bad_arguments(tiny_fit, tiny_simulation):
    rec = tiny_simulation.recording
    with pytest.raises(ValueError, match=r"neuron: .*\['n0', 'n1'\].*found 'nX'"):
        plot_strf(tiny_fit, neuron="nX")
    with pytest.raises(ValueError, match="neuron: .*found 2"):
        plot_psth(tiny_fit, rec, neuron=2)
    with pytest.raises(ValueError, match="neuron: .*found True"):
        plot_nonlinearity(tiny_fit, rec, neuron=True)
    with pytest.raises(ValueError, match=r"segment: .*\['stim0', 'stim1', 'stim2'\].*found 3"):
        plot_psth(tiny_fit, rec, segment=3)
    with pytest.raises(ValueError, match="segment: .*found 'train'"):
        plot_psth(tiny_fit, rec, segment="train")
    with pytest.raises(ValueError, match="prob"):
        plot_strf(tiny_fit, prob=1.0)
    with pytest.raises(ValueError, match="max_draws"):
        plot_psth(tiny_fit, rec, max_draws=0)
    other = simulate("softplus", n_neurons=2, n_freq=5, n_lags=3, n_time=60, n_trials=2,
                     seed=1).recording
    with pytest.raises(ValueError, match="recording: .*5"):
        plot_nonlinearity(tiny_fit, other)
    coarse = Recording(rec.spectrograms, rec.counts, rec.dt * 2, freqs=rec.freqs,
                       neuron_ids=rec.neuron_ids, segment_ids=rec.segment_ids)
    with pytest.raises(ValueError, match="recording: .*dt"):
        plot_psth(tiny_fit, coarse)
    with pytest.raises(TypeError, match="recording"):
        plot_psth(tiny_fit, rec.counts)
    with pytest.raises(ValueError, match=r"table: .*missing \['elpd_diff', 'dse'\]"):
        plot_comparison(pd.DataFrame({"elpd": [1.0], "se": [0.1]}, index=["a"]))
    with pytest.raises(ValueError, match="table: expected finite values"):
        plot_comparison(pd.DataFrame({"elpd": [np.nan], "elpd_diff": [0.0], "dse": [0.0]},
                                     index=["a"]))
    with pytest.raises(TypeError, match="table"):
        plot_comparison({"elpd": [1.0], "se": [0.1]})


def test_plot_parameter_forest_draws_each_chains_intervals(tiny_fit):
    from bayesstrf.viz.plotting import activation_variables, plot_parameter_forest

    assert activation_variables(tiny_fit) == ["beta", "b"]
    post = tiny_fit["posterior"]
    for variable in ("beta", "b"):
        (ax,) = [a for a in plot_parameter_forest(tiny_fit, variable, prob=0.5).axes if a.lines]
        drawn = {tuple(np.round(line.get_xdata(), 6)) for line in ax.lines
                 if len(line.get_xdata()) == 2 and len(set(line.get_ydata())) == 1}
        for neuron in range(post.sizes["neuron"]):
            for chain in range(post.sizes["chain"]):
                draws = post[variable].isel(neuron=neuron, chain=chain).values
                for prob in (0.5, 0.94):
                    interval = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2])
                    assert tuple(np.round(interval, 6)) in drawn
    with pytest.raises(ValueError, match=r"variable: expected a per-neuron parameter, .*'strf'"):
        plot_parameter_forest(tiny_fit, "strf")


def test_plot_chains_shows_the_element_with_the_largest_rhat(tiny_fit):
    from bayesstrf.viz.plotting import plot_chains

    tree = tiny_fit.copy()
    strf = tree["posterior"]["strf"].copy()
    neuron, freq, lag = 1, 2, 1
    strf[{"chain": 0, "neuron": neuron, "freq": freq, "lag": lag}] += 10.0  # chains disagree
    tree["posterior"]["strf"] = strf
    fig = plot_chains(tree, "strf", neuron)
    freq_id, lag_id = strf["freq"].values[freq], strf["lag"].values[lag]
    title = fig.get_suptitle()
    assert f"freq={freq_id}" in title and f"lag={lag_id}" in title
    assert f"neuron={strf['neuron'].values[neuron]}" in title
    chains = tree["posterior"].sizes["chain"]
    assert all(len([line for line in ax.lines if len(line.get_xdata()) > 2]) == chains
               for ax in fig.axes if ax.lines)
    with pytest.raises(ValueError, match="variable: expected one of"):
        plot_chains(tiny_fit, "nope")
