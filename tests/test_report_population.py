"""write_report on a population: summary figures above MAX_DETAILED_NEURONS, per-neuron figures
only for the neurons asked for (``neurons=``, ``--neurons``), a page that stays small."""

import base64
import re

import numpy as np
import pandas as pd
import pytest

from bayesstrf import compare, fit, save_fit, simulate
from bayesstrf.cli.main import build_parser, main
from bayesstrf.evaluation.comparison import Comparison
from bayesstrf.viz.plotting import plot_convergence, plot_elpd_differences, plot_strf_grid
from bayesstrf.viz.report import MAX_DETAILED_NEURONS, detail_neurons, write_report
from tests.conftest import TINY_FIT

N_NEURONS = 40
#: The target: a report of 100 neurons under 10 MB; scaled to this population.
MAX_BYTES = 10_000_000 * N_NEURONS // 100
IMAGE = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"')


@pytest.fixture(scope="module")
def population():
    """40 neurons, two families, very short chains (the figures, not the fits, are tested)."""
    sim = simulate("softplus", seed=5, n_neurons=N_NEURONS, n_freq=4, n_lags=3, n_time=300,
                   n_trials=2, n_segments=3)
    settings = dict(TINY_FIT, warmup=20, draws=15, max_tree_depth=5)
    fits = {family: fit(sim.recording, family, **settings)
            for family in ("softplus", "double_exponential")}
    return sim.recording, compare(fits, recording=sim.recording, method="loo", block_bins=100)


def _images(page: str) -> dict[str, bytes]:
    return {alt: base64.b64decode(data) for alt, data in IMAGE.findall(page)}


def test_population_report_shows_summaries_not_neurons(population, tmp_path):
    recording, comparison = population
    assert N_NEURONS > MAX_DETAILED_NEURONS
    path = write_report(comparison, recording, tmp_path)
    page = path.read_text()
    images = _images(page)
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in images.values())
    first = comparison.table.index[0]
    expected = {"elpd of each model", f"histogram of per-neuron elpd differences against {first}"}
    for family in ("softplus", "double_exponential"):
        expected |= {f"posterior-mean STRFs of all neurons ({family})",
                     f"r_hat and bulk ESS per neuron ({family})"}
    assert set(images) == expected  # 6 figures in all, none of a single neuron
    assert page.count("<img") == len(expected)
    assert "<h2>Population</h2>" in page and "class='neuron'" not in page
    assert "each tile on its own colour scale symmetric about 0" in page
    assert f"{N_NEURONS} neurons: more than {MAX_DETAILED_NEURONS}" in page
    assert path.stat().st_size < MAX_BYTES
    summary = pd.read_csv(tmp_path / "summary.csv", index_col=[0, 1])
    assert len(summary) == 2 * N_NEURONS  # the numbers of every neuron stay in the CSV


def test_neurons_adds_the_detail_of_exactly_those(population, tmp_path):
    recording, comparison = population
    page = write_report(comparison, recording, tmp_path, neurons=["n17", "n3"]).read_text()
    sections = re.findall(r"<section class='neuron' data-neuron='([^']+)'>", page)
    assert sections == ["n3", "n17"]  # in the recording's order
    detail = {alt for alt in _images(page) if " of n" in alt}
    assert detail == {f"{figure} of {neuron} ({family})"
                      for figure in ("STRF", "nonlinearity", "PSTH") for neuron in ("n3", "n17")
                      for family in ("softplus", "double_exponential")}
    assert "posterior-mean STRFs of all neurons (softplus)" in page  # summaries stay
    assert (tmp_path / "report.html").stat().st_size < MAX_BYTES


def test_unknown_or_malformed_neurons_are_refused_before_writing(tiny_simulation, tmp_path):
    recording = tiny_simulation.recording  # 2 neurons: every one is detailed by default
    assert detail_neurons(recording, None) == ["n0", "n1"]
    empty = Comparison(pd.DataFrame(), pd.DataFrame(), "", {})
    with pytest.raises(ValueError, match=r"neurons: expected ids of the recording's 2 neurons "
                                         r"\(n0, n1\), found unknown \['n7'\]"):
        write_report(empty, recording, tmp_path / "out", neurons=["n0", "n7"])
    with pytest.raises(TypeError, match="neurons: expected a list of neuron ids, found str"):
        write_report(empty, recording, tmp_path / "out", neurons="n0")
    assert not (tmp_path / "out").exists()


def test_cli_neurons_option(population, tmp_path, monkeypatch, capsys):
    import bayesstrf.evaluation.comparison

    recording, comparison = population
    folder = tmp_path / "results"
    folder.mkdir()
    recording.save(folder / "train.npz")
    for family, tree in comparison.fits.items():
        save_fit(tree, folder / f"fit_{family}.nc")

    def refuse(*args, **kwargs):
        raise AssertionError("the neuron ids must be checked before any comparison or fit")

    monkeypatch.setattr(bayesstrf.evaluation.comparison, "compare", refuse)
    monkeypatch.setattr(bayesstrf.evaluation.comparison, "fit_model", refuse)
    assert main(["report", str(folder), "--neurons", "n5", "n99", "--quiet"]) == 2
    assert main(["compare", str(folder / "train.npz"), "--out", str(tmp_path / "new"),
                 "--neurons", "n99", "--quiet"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2
    assert all("error: --neurons: expected ids of the recording's 40 neurons" in line
               and "found unknown ['n99']" in line for line in errors)
    assert not (folder / "report.html").exists() and not (tmp_path / "new").exists()

    monkeypatch.setattr(bayesstrf.evaluation.comparison, "compare",
                        lambda *args, **kwargs: comparison)
    assert main(["report", str(folder), "--neurons", "n5", "--quiet"]) == 0
    page = (folder / "report.html").read_text()
    assert re.findall(r"data-neuron='([^']+)'", page) == ["n5"]


def test_cli_help_states_the_threshold(capsys):
    for command in ("compare", "report"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--neurons ID [ID ...]" in text
        assert f"every neuron up to {MAX_DETAILED_NEURONS}, none above" in text


def test_strf_grid_shows_each_neurons_mean_on_its_own_scale(population):
    tree = population[1].fits["softplus"]
    strf = tree["posterior"]["strf"].transpose("chain", "draw", "neuron", "freq", "lag").values
    mean = strf.mean(axis=(0, 1))
    ax = plot_strf_grid(tree, columns=7).axes[0]
    assert len(ax.images) == N_NEURONS
    assert [text.get_text() for text in ax.texts] == [f"n{i}" for i in range(N_NEURONS)]
    for k, image in enumerate(ax.images):
        np.testing.assert_allclose(image.get_array(), mean[k] / np.abs(mean[k]).max(), rtol=1e-5)
        assert image.get_clim() == (-1, 1) and image.origin == "lower"
        left, _, _, top = image.get_extent()
        assert (left, top) == (k % 7, -(k // 7))  # row by row, 7 tiles a row
    with pytest.raises(ValueError, match="columns: expected a positive integer, found 0"):
        plot_strf_grid(tree, columns=0)


def test_elpd_differences_are_against_the_reference():
    neurons, models = ["a", "b", "c", "d", "e"], ["m1", "m2", "m3"]
    elpd = np.array([[-10, -12, -9], [-20, -19, -25], [-5, -6, -7], [-8, -8.5, -3],
                     [-1, -4, -2]])
    per_neuron = pd.DataFrame(
        {"elpd": elpd.ravel(), "se": 1.0},
        index=pd.MultiIndex.from_product([neurons, models], names=["neuron", "model"]))
    axes = plot_elpd_differences(per_neuron, "m1").axes
    for ax, model, column in zip(axes, ["m2", "m3"], [1, 2], strict=True):
        diff = elpd[:, column] - elpd[:, 0]
        bars = ax.patches
        edges = [bar.get_x() for bar in bars] + [bars[-1].get_x() + bars[-1].get_width()]
        assert edges[0] <= diff.min() and edges[-1] >= diff.max()
        np.testing.assert_array_equal([bar.get_height() for bar in bars],
                                      np.histogram(diff, bins=edges)[0])
        assert ax.get_title() == f"{model} - m1: higher for {(diff > 0).sum()} of 5 neurons"
    with pytest.raises(ValueError, match="reference: expected one of at least two models"):
        plot_elpd_differences(per_neuron, "m9")
    with pytest.raises(ValueError, match="per_neuron: expected index levels"):
        plot_elpd_differences(per_neuron.reset_index(), "m1")


def test_convergence_marks_neurons_beyond_the_thresholds():
    table = pd.DataFrame({"max_rhat": [1.0, 1.02, 1.005, 1.3], "min_ess_bulk": [500, 50, 300, 150]},
                         index=["a", "b", "c", "d"])
    ax_rhat, ax_ess = plot_convergence(table, ess_min=200).axes
    for ax, bad, ok in ((ax_rhat, [[1, 1.02], [3, 1.3]], [[0, 1.0], [2, 1.005]]),
                        (ax_ess, [[1, 50], [3, 150]], [[0, 500], [2, 300]])):
        first, second = (collection.get_offsets() for collection in ax.collections)
        np.testing.assert_allclose(first, ok)
        np.testing.assert_allclose(second, bad)
    assert ax_rhat.get_title() == "worst r_hat: 2 of 4 neurons >= 1.01"
    assert ax_ess.get_title() == "smallest bulk ESS: 2 of 4 neurons < 200"
    assert ax_rhat.lines[0].get_ydata()[0] == 1.01 and ax_ess.lines[0].get_ydata()[0] == 200
    with pytest.raises(ValueError, match="ess_min: expected a positive number, found 0"):
        plot_convergence(table, ess_min=0)
    with pytest.raises(ValueError, match=r"table: expected columns .* missing \['min_ess_bulk'\]"):
        plot_convergence(table[["max_rhat"]], ess_min=200)
