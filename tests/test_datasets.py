"""Real recordings from ../shared/data (skipped, with the reason, when that folder is absent)."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from bayesstrf.cli.main import main
from bayesstrf.data.datasets import (
    NS1_SOUNDS,
    load_ferret_torc,
    load_ns1,
    load_songbird,
    ns1_metadata,
    ns1_spectrogram,
    ns1_test_segments,
)
from bayesstrf.data.io import load_fit
from bayesstrf.viz.plotting import activation_variables

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"real recordings not found at {DATA} (../shared is absent)"
)


@needs_shared
def test_songbird_layout_matches_its_notes():
    recording = load_songbird(DATA / "songbird-auditory")
    assert (recording.n_neurons, recording.n_freq, recording.n_segments) == (1, 31, 20)
    assert recording.dt == 0.002 and recording.counts[0].shape[1] == 10
    assert recording.segment_ids[0] == "stim1"
    mean = np.mean([np.nanmean(c) for c in recording.counts])
    assert 0.01 < mean < 0.03  # NOTES: 0.0188 spikes per 2 ms bin per trial


@needs_shared
def test_band_averaging_keeps_the_mean_level():
    full = load_ferret_torc(DATA / "ferret-a1-torc")
    coarse = load_ferret_torc(DATA / "ferret-a1-torc", n_freq=5)
    assert coarse.n_freq == 5 and coarse.n_segments == full.n_segments == 30
    np.testing.assert_allclose(coarse.spectrograms[0].mean(), full.spectrograms[0].mean())
    with pytest.raises(ValueError, match=r"n_freq: expected an integer in 1..30"):
        load_ferret_torc(DATA / "ferret-a1-torc", n_freq=31)


@needs_shared
def test_real_data_torc_split_holds_out_both_phases_of_three_torcs():
    from benchmarks.real_data import load_datasets, parse_args

    args = parse_args(["--quick", "--datasets", "torc"])
    recording, test_ids, n_lags = load_datasets(args)["torc"]
    assert (recording.n_freq, n_lags) == (10, 8)
    # NOTES: TORCs 16-30 are TORCs 1-15 with every phase shifted by 180 degrees
    numbers = sorted(int(name.split("_")[3]) for name in test_ids)
    assert numbers == [5, 10, 15, 20, 25, 30]
    train, test = recording.split(test_ids)
    assert (train.n_segments, test.n_segments) == (24, 6)


@needs_shared
def test_cli_compare_on_songbird_writes_a_report(tmp_path, capsys):
    data = tmp_path / "songbird.npz"
    load_songbird(DATA / "songbird-auditory", n_freq=6).select_segments(range(6)).save(data)
    out = tmp_path / "results"
    code = main(["compare", str(data), "--out", str(out), "--test-segments", "stim5",
                 "--lags", "8", "--chains", "1", "--warmup", "30", "--draws", "30", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "report:" in printed
    page = (out / "report.html").read_text()
    # the comparison; per family, a forest per activation parameter (one chain: no r_hat, so no
    # chain figure); per family, STRF, nonlinearity and PSTH of the one neuron
    forests = sum(len(activation_variables(tree)) for tree in map(load_fit, out.glob("fit_*.nc")))
    assert forests == 2 + 3 + 3  # softplus beta, b; double exponential s, a, b; sigmoid c, b, a
    assert "Held-out prediction" in page
    assert page.count("data:image/png") == 1 + forests + 3 * 3
    assert sorted(p.name for p in out.glob("fit_*.nc")) == [
        "fit_double_exponential.nc", "fit_sigmoid.nc", "fit_softplus.nc"]
    # report regenerates from the folder alone
    assert main(["report", str(out)]) == 0


# ---- NS1 (facts from ../shared/data/ns1/NOTES.md) ---------------------------------------------

NS1 = DATA / "ns1"


@pytest.fixture(scope="module")
def ns1():
    return load_ns1(NS1)


def _raw_spike_times(file):
    """Spike times (ms) per natural sound and repeat, read as NOTES.md's prose says."""
    sets = scipy.io.loadmat(file)["data"][0, 0]["set"][0]
    return [[r["t"].ravel() for r in sets[j]["repeats"][0]] for j in range(20)]


@needs_shared
def test_ns1_layout_matches_its_notes(ns1):
    assert (ns1.n_neurons, ns1.n_segments, ns1.n_freq, ns1.dt) == (10, 20, 34, 0.005)
    # 5.000-s sounds in 5-ms bins, 20 repeats of every sound for every neuron: no NaN trials
    assert all(c.shape == (10, 20, 1000) for c in ns1.counts)
    assert not any(np.isnan(c).any() for c in ns1.counts)
    # release order = stimulus sets 1-20: source 1 frozen.1..12, then source 2 frozen.1..8
    assert ns1.segment_ids.tolist() == list(NS1_SOUNDS)
    assert ns1.segment_ids[1].endswith("fw.2.frozen.2")
    assert ns1.segment_ids[12] == "source.2.sound.0.snr.0.token.0.fw.1.frozen.1"
    assert ns1.neuron_ids[0] == "dataAC/E1/cluster.02"  # metadata index 4, the most reliable
    meta = ns1_metadata(NS1)
    assert meta["meta_index"].tolist() == [4, 12, 15, 19, 23, 48, 65, 87, 92, 111]
    assert (meta.index == ns1.neuron_ids).all()


@needs_shared
def test_ns1_counts_are_the_raw_spikes_binned(ns1):
    meta = ns1_metadata(NS1)
    total = 0
    for n, file in enumerate(meta["file"]):
        for j, repeats in enumerate(_raw_spike_times(file)):
            got = ns1.counts[j][n]
            assert got.min() >= 0 and (got == np.round(got)).all()
            expected = [np.sum((t >= 0) & (t < 5000.0)) for t in repeats]
            np.testing.assert_array_equal(got.sum(axis=1), expected)
        total += sum(c[n].sum() for c in ns1.counts)
    # NOTES: 244748 natural-sound spikes over the whole 5.2-s windows; ~97% lie in 0-5000 ms
    assert 0.95 * 244748 < total < 244748


@needs_shared
def test_ns1_spectrogram_and_band_centres(ns1):
    for spec in ns1.spectrograms:
        assert spec.shape == (34, 1000) and np.isfinite(spec).all() and spec.min() >= 20.0
    assert np.all(np.diff(ns1.freqs) > 0)
    np.testing.assert_allclose(ns1.freqs[[0, -1]], [500.0, 500.0 * 2**5.5])
    np.testing.assert_allclose(np.diff(np.log2(ns1.freqs)), 1 / 6)
    level = np.concatenate(ns1.spectrograms, axis=1)
    assert 40 < np.median(level) < 60 and level.max() < 110  # dB SPL of 80-dB sounds per band


@needs_shared
def test_ns1_test_split_is_16_train_4_test(ns1):
    train, test = ns1.split(ns1_test_segments())
    assert (train.n_segments, test.n_segments) == (16, 4)
    assert test.segment_ids.tolist() == [NS1_SOUNDS[i] for i in (3, 6, 9, 19)]


@needs_shared
def test_ns1_neuron_selection_by_id_and_index(ns1):
    picked = load_ns1(NS1, neurons=["dataAC/E1/cluster.05", 0, "exp45_1x32/P04-SH.En.C.U/"
                                    "cluster.04.data.mat"], n_freq=8)
    assert picked.neuron_ids.tolist() == [
        "dataAC/E1/cluster.05", "dataAC/E1/cluster.02", "exp45_1x32/P04-SH.En.C.U/cluster.04"]
    assert picked.n_freq == 8
    np.testing.assert_array_equal(picked.counts[5][1], ns1.counts[5][0])
    np.testing.assert_array_equal(picked.counts[5][0], ns1.counts[5][6])


@needs_shared
def test_ns1_bad_neurons_and_path(tmp_path):
    with pytest.raises(ValueError, match=r"^neurons: expected ids .*did you mean "
                                         r"'dataAC/E1/cluster.0[25]'\?$"):
        load_ns1(NS1, neurons="dataAC/E1/cluster.03")
    with pytest.raises(ValueError, match=r"neurons: expected .* indices 0..9, found 10$"):
        load_ns1(NS1, neurons=[10])
    with pytest.raises(ValueError, match=r"^path: expected an NS1 release folder .*"
                                         r"MetadataSHEnCneurons.mat"):
        load_ns1(tmp_path)
    with pytest.raises(ValueError, match=r"^path: expected an NS1 release folder"):
        load_ns1(DATA / "songbird-auditory")


def test_ns1_bad_path_without_shared_data(tmp_path):
    with pytest.raises(ValueError, match=r"^path: expected an NS1 release folder"):
        load_ns1(tmp_path / "nowhere")


def test_ns1_spectrogram_recipe_on_a_tone():
    rate, dt = 48828.0, 0.005
    time = np.arange(int(rate)) / rate
    tone = np.sqrt(2) * 0.2 * np.sin(2 * np.pi * 2000.0 * time) * (time >= 0.5)  # 80 dB SPL
    spec, centres = ns1_spectrogram(tone, rate, dt=dt, floor_db=-100.0)
    assert spec.shape == (34, 200)
    # bin t covers sound up to the end of bin t, never later: silent until bin 99
    assert spec[:, :100].max() == -100.0 and spec[:, 100].max() > 60
    steady = spec[:, 110:190]
    assert centres[steady.mean(1).argmax()] == pytest.approx(2000.0)
    # the triangles partition the power: the bands add up to the tone's level
    np.testing.assert_allclose(10 * np.log10((10 ** (steady / 10)).sum(0)), 80.0, atol=0.1)


def test_real_data_kfold_section_counts_neurons_decided_by_more_than_two_se():
    from benchmarks.real_data import kfold_markdown

    def rows(neuron, diffs):  # (family, elpd_diff, dse) best first
        return [{"neuron": neuron, "family": family, "rank": rank, "elpd_diff": diff,
                 "dse": dse, "folds": 4, "seconds": 60.0}
                for rank, (family, diff, dse) in enumerate(diffs)]

    lines = kfold_markdown(
        rows("a", [("softplus", 0.0, 0.0), ("sigmoid", -9.0, 4.0), ("double_exponential",
                                                                      -20.0, 5.0)])
        + rows("b", [("sigmoid", 0.0, 0.0), ("softplus", -3.0, 2.0),
                     ("double_exponential", -4.0, 2.5)]))
    table = [line for line in lines if line.startswith("| a") or line.startswith("| b")]
    assert table[0].split(" | ")[1:4] == ["softplus", "sigmoid (-9.0 +- 4.0)",
                                          "double_exponential (-20.0 +- 5.0)"]
    assert table[0].split(" | ")[4] == "yes" and table[1].split(" | ")[4] == "no"
    assert "1 of 2 neuron(s) prefer one family by more than 2 SE" in "\n".join(lines)
    assert kfold_markdown([]) == []


def test_real_data_strf_norm_ratio_is_against_the_same_neurons_and_familys_map():
    import pandas as pd

    from benchmarks.real_data import _with_norm_ratio

    row = dict(dataset="ns1", neuron="a", family="sigmoid")
    frame = _with_norm_ratio(pd.DataFrame([
        row | {"method": "map", "strf_mean": [[3.0, 0.0], [0.0, 4.0]]},       # norm 5
        row | {"method": "ridge", "strf_mean": [[6.0, 0.0], [0.0, 8.0]]},     # norm 10
        row | {"family": "softplus", "method": "ridge", "strf_mean": [[1.0]]},  # no MAP
        row | {"neuron": "b", "method": "ridge", "strf_mean": [[5.0]]},       # no MAP
    ]))
    np.testing.assert_allclose(frame.strf_norm_ratio.to_numpy(), [1.0, 2.0, np.nan, np.nan])
