"""NWB reading: a small file written with pynwb reads back as the expected Recording."""

import sys
from datetime import UTC, datetime

import numpy as np
import pytest

from bayesstrf import Recording

RATE = 100.0  # stimulus frames per second
F = 3


@pytest.fixture
def write_nwb(tmp_path):
    """Write an NWB file: a (time, freq) stimulus TimeSeries, a Units table, optional trials."""
    pynwb = pytest.importorskip("pynwb")

    def write(frames, spikes, trials=None, *, name="spectrogram", timestamps=False,
              column="stimulus_name"):
        nwbfile = pynwb.NWBFile(session_description="bayesstrf test", identifier="t",
                                session_start_time=datetime(2026, 1, 1, tzinfo=UTC))
        times = dict(timestamps=np.arange(len(frames)) / RATE + 0.5) if timestamps else dict(
            rate=RATE, starting_time=0.5)
        nwbfile.add_stimulus(pynwb.TimeSeries(name=name, data=frames, unit="dB", **times))
        for unit_id, unit_spikes in spikes.items():
            nwbfile.add_unit(spike_times=unit_spikes, id=unit_id)
        if trials is not None:
            if column:
                nwbfile.add_trial_column(column, "stimulus shown")
            for start, stop, label in trials:
                nwbfile.add_trial(start_time=start, stop_time=stop,
                                  **({column: label} if column else {}))
        path = tmp_path / "session.nwb"
        with pynwb.NWBHDF5IO(str(path), mode="w") as io:
            io.write(nwbfile)
        return path

    return write


def stimulus_frames():
    """Frames (time, freq) at 100 Hz from 0.5 s: A (10 frames), B (6), A again (10)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(10, F)), rng.normal(size=(6, F))
    return np.concatenate([a, b, a]), a, b


def test_trials_grouped_into_segments_with_repeats(write_nwb):
    frames, a, b = stimulus_frames()
    # bins of 10 ms from 0.5 s; spikes mid-bin: unit 7 in bins 0, 0, 3 of the first A,
    # bin 2 of B (starting at 0.60 s), bin 9 of the second A (starting at 0.66 s)
    spikes = {7: [0.503, 0.507, 0.535, 0.625, 0.755], 9: [0.665]}
    trials = [(0.5, 0.6, "A"), (0.6, 0.66, "B"), (0.66, 0.76, "A")]
    recording = Recording.from_nwb(write_nwb(frames, spikes, trials))
    assert recording.dt == pytest.approx(0.01)
    assert recording.segment_ids.tolist() == ["A", "B"]
    assert recording.neuron_ids.tolist() == ["7", "9"]
    np.testing.assert_allclose(recording.spectrograms[0], a.T)
    np.testing.assert_allclose(recording.spectrograms[1], b.T)
    expected_a = np.zeros((2, 2, 10))
    expected_a[0, 0, [0, 3]] = [2, 1]
    expected_a[0, 1, 9] = 1
    expected_a[1, 1, 0] = 1
    expected_b = np.zeros((2, 1, 6))
    expected_b[0, 0, 2] = 1
    np.testing.assert_array_equal(recording.counts[0], expected_a)
    np.testing.assert_array_equal(recording.counts[1], expected_b)


def test_without_trials_one_segment_and_coarser_bins(write_nwb):
    frames, _, _ = stimulus_frames()  # 26 frames -> 13 bins of 20 ms
    path = write_nwb(frames, {0: [0.505, 0.515, 0.745, 0.9]})
    recording = Recording.from_nwb(path, dt=0.02, freqs=[1e3, 2e3, 4e3])
    assert recording.dt == pytest.approx(0.02)
    assert recording.segment_ids.tolist() == ["spectrogram"]
    np.testing.assert_allclose(recording.spectrograms[0],
                               frames.reshape(13, 2, F).mean(axis=1).T)
    expected = np.zeros((1, 1, 13))
    expected[0, 0, [0, 12]] = [2, 1]  # 0.9 s lies past the stimulus
    np.testing.assert_array_equal(recording.counts[0], expected)
    np.testing.assert_array_equal(recording.freqs, [1e3, 2e3, 4e3])


def test_timestamps_units_selection_and_ungrouped_trials(write_nwb):
    frames, _, _ = stimulus_frames()
    path = write_nwb(frames, {3: [0.505], 4: [0.615]}, [(0.5, 0.6, "A"), (0.6, 0.66, "B")],
                     timestamps=True, column=None)
    recording = Recording.from_nwb(path, units=[4])
    assert recording.neuron_ids.tolist() == ["4"]
    assert recording.segment_ids.tolist() == ["trial0", "trial1"]
    assert [c.shape for c in recording.counts] == [(1, 1, 10), (1, 1, 6)]
    assert recording.counts[1][0, 0, 1] == 1 and recording.counts[1].sum() == 1


@pytest.mark.parametrize("kwargs, argument", [
    ({"units": [5]}, "units:"),
    ({"units": []}, "units:"),
    ({"stimulus": "sound"}, "stimulus:"),
    ({"stimulus": 3}, "stimulus:"),
    ({"dt": 0.015}, "dt:"),
    ({"dt": -1}, "dt:"),
])
def test_bad_arguments(write_nwb, kwargs, argument):
    frames, _, _ = stimulus_frames()
    path = write_nwb(frames, {0: [0.505]}, [(0.5, 0.6, "A")])
    with pytest.raises((ValueError, TypeError)) as error:
        Recording.from_nwb(path, **kwargs)
    message = str(error.value)
    assert message.startswith(argument) and "\n" not in message, message


def test_bad_trials(write_nwb):
    frames, _, _ = stimulus_frames()
    differing = write_nwb(frames, {0: [0.505]}, [(0.5, 0.6, "A"), (0.6, 0.66, "A")])
    with pytest.raises(ValueError, match="^trials: .*same spectrogram"):
        Recording.from_nwb(differing)
    outside = write_nwb(frames, {0: [0.505]}, [(0.5, 0.9, "A")])
    with pytest.raises(ValueError, match="^trials: expected trial 0"):
        Recording.from_nwb(outside)


def test_bad_paths(tmp_path):
    pytest.importorskip("pynwb")
    with pytest.raises(ValueError, match="^path: expected an existing"):
        Recording.from_nwb(tmp_path / "absent.nwb")
    junk = tmp_path / "junk.nwb"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="^path: cannot read"):
        Recording.from_nwb(junk)
    h5py = pytest.importorskip("h5py")
    plain = tmp_path / "plain.nwb"
    with h5py.File(plain, "w") as handle:
        handle["a"] = 1
    with pytest.raises(ValueError, match="^path: cannot read .*not a valid NWB"):
        Recording.from_nwb(plain)


def test_missing_pynwb_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynwb", None)
    with pytest.raises(ImportError, match=r"bayesstrf\[nwb\]"):
        Recording.from_nwb(tmp_path / "session.nwb")


def test_file_without_units(write_nwb):
    frames, _, _ = stimulus_frames()
    with pytest.raises(ValueError, match="^path: expected a Units table"):
        Recording.from_nwb(write_nwb(frames, {}))
