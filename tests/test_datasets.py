"""Real recordings from ../shared/data (skipped, with the reason, when that folder is absent)."""

from pathlib import Path

import numpy as np
import pytest

from bayesstrf.cli import main
from bayesstrf.datasets import load_ferret_torc, load_songbird

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
    assert "Held-out prediction" in page and page.count("data:image/png") == 1 + 3 * 3
    assert sorted(p.name for p in out.glob("fit_*.nc")) == [
        "fit_double_exponential.nc", "fit_sigmoid.nc", "fit_softplus.nc"]
    # report regenerates from the folder alone
    assert main(["report", str(out)]) == 0
