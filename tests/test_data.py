"""Tests of `bayesstrf.data.recording.Recording`: validation, selection, split, and file round
trips."""

import gc
import os
import warnings
import zipfile
from importlib.util import find_spec

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from bayesstrf.data.recording import Recording
from bayesstrf.data.recording_files import SCHEMA

# h5netcdf >= 1.8 does not pull in h5py (pyproject lists it separately): without h5py a .nc
# file can be neither written nor read, so the tests that touch .nc files need it.
needs_h5py = pytest.mark.skipif(
    find_spec("h5py") is None, reason="h5py (h5netcdf's HDF5 backend) is not installed"
)


# --- helpers ---------------------------------------------------------------------------------


def make_parts(seed=0, lengths=(10, 7, 4), trials=(3, 2, 4), n_neurons=2, n_freq=3):
    """Spectrograms and Poisson counts of several segments of different lengths and trials."""
    rng = np.random.default_rng(seed)
    specs = [rng.normal(size=(n_freq, t)) for t in lengths]
    counts = [
        rng.poisson(2.0, size=(n_neurons, r, t)).astype(float)
        for r, t in zip(trials, lengths, strict=True)
    ]
    return specs, counts


def make_recording(**kwargs):
    """Three segments, NaN-marked missing trials (one neuron only) and one missing bin."""
    specs, counts = make_parts()
    counts[1][1, 0] = np.nan  # neuron 1 misses trial 0 of segment 1
    counts[2][0, 3] = np.nan  # neuron 0 misses trial 3 of segment 2
    counts[2][1, 1, 2] = np.nan  # one missing bin
    defaults = dict(
        freqs=[250.0, 1000.0, 4000.0],
        neuron_ids=["unit_a", "unit_b"],
        segment_ids=["song", "noise", "speech"],
    )
    return Recording(specs, counts, 0.005, **(defaults | kwargs))


def assert_recordings_equal(a: Recording, b: Recording):
    assert a.n_segments == b.n_segments
    for x, y in zip(a.spectrograms, b.spectrograms, strict=True):
        assert x.shape == y.shape
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.counts, b.counts, strict=True):
        assert x.shape == y.shape
        np.testing.assert_array_equal(np.isnan(x), np.isnan(y))
        np.testing.assert_array_equal(x, y)  # NaN == NaN here
    np.testing.assert_array_equal(a.freqs, b.freqs)
    assert a.neuron_ids.tolist() == b.neuron_ids.tolist()
    assert a.segment_ids.tolist() == b.segment_ids.tolist()
    assert a.dt == b.dt


def good_single():
    rng = np.random.default_rng(1)
    return rng.normal(size=(3, 10)), rng.poisson(1.0, size=(2, 3, 10)).astype(float)


# --- construction: invalid input ---------------------------------------------------------------


def _case(spec=None, counts=None, dt=0.01, **kwargs):
    """Arguments for Recording: a valid single segment with the given parts replaced."""
    s, c = good_single()
    return (s if spec is None else spec, c if counts is None else counts, dt, kwargs)


def _nan_spec():
    s, _ = good_single()
    s[1, 4] = np.nan
    return s


def _inf_spec(value):
    s, _ = good_single()
    s[2, 0] = value
    return s


def _counts_with(index, value):
    _, c = good_single()
    c[index] = value
    return c


def _no_complete_trial():
    _, c = good_single()
    c[1, :, 0] = np.nan  # every trial of neuron 1 misses bin 0
    return c


INVALID = [
    # shapes across arguments and segments
    pytest.param(
        _case(counts=np.zeros((2, 3, 9))), ValueError,
        r"counts\[0\]: expected 10 time bins like spectrogram\[0\], found 9", id="time-mismatch",
    ),
    pytest.param(
        ([np.zeros((3, 5)), np.zeros((4, 5))], [np.zeros((1, 1, 5))] * 2, 0.01, {}),
        ValueError, r"spectrogram\[1\]: expected 3 frequency rows.*found 4", id="n-freq-mismatch",
    ),
    pytest.param(
        ([np.zeros((3, 5)), np.zeros((3, 4))], [np.zeros((1, 1, 5)), np.zeros((1, 1, 3))],
         0.01, {}),
        ValueError, r"counts\[1\]: expected 4 time bins like spectrogram\[1\], found 3",
        id="time-mismatch-second-segment",
    ),
    pytest.param(
        ([np.zeros((3, 5))] * 2, [np.zeros((2, 1, 5)), np.zeros((3, 1, 5))], 0.01, {}),
        ValueError, r"counts\[1\]: expected 2 neurons like segment 0, found 3",
        id="n-neurons-mismatch",
    ),
    pytest.param(
        ([np.zeros((3, 5))] * 2, [np.zeros((1, 1, 5))], 0.01, {}), ValueError,
        r"counts: expected one array per spectrogram segment \(2\), found 1",
        id="segment-count-mismatch",
    ),
    pytest.param(
        ([], [], 0.01, {}), ValueError,
        r"spectrogram: expected at least one segment, found an empty list", id="empty-list",
    ),
    pytest.param(
        ([np.zeros((3, 5))], [], 0.01, {}), ValueError,
        r"counts: expected at least one segment, found an empty list", id="empty-counts-list",
    ),
    pytest.param(
        _case(spec=np.zeros((3, 0)), counts=np.zeros((2, 3, 0))), ValueError,
        r"spectrogram\[0\]: expected frequency rows and time bins, found shape \(3, 0\)",
        id="empty-time-axis",
    ),
    # spectrogram values
    pytest.param(_case(spec=_nan_spec()), ValueError,
                 r"spectrogram\[0\]: expected finite values, found NaN", id="spec-nan"),
    pytest.param(_case(spec=_inf_spec(np.inf)), ValueError,
                 r"spectrogram\[0\]: expected finite values, found NaN/Inf", id="spec-inf"),
    pytest.param(_case(spec=_inf_spec(-np.inf)), ValueError,
                 r"spectrogram\[0\]: expected finite values, found NaN/Inf", id="spec-neg-inf"),
    # count values
    pytest.param(_case(counts=_counts_with((0, 1, 2), -1.0)), ValueError,
                 r"counts\[0\]: expected non-negative counts, found minimum -1", id="negative"),
    pytest.param(_case(counts=_counts_with((1, 0, 3), 0.5)), ValueError,
                 r"counts\[0\]: expected integer spike counts.*0\.5", id="non-integer"),
    pytest.param(_case(counts=_counts_with((0, 2, 9), np.inf)), ValueError,
                 r"counts\[0\]: expected finite counts.*found Inf", id="inf-counts"),
    pytest.param(_case(counts=_counts_with((0, 2, 9), -np.inf)), ValueError,
                 r"counts\[0\]: expected finite counts.*found Inf", id="neg-inf-counts"),
    pytest.param(_case(counts=np.zeros((0, 3, 10))), ValueError,
                 r"counts\[0\]: expected at least one neuron.*found shape \(0, 3, 10\)",
                 id="no-neurons"),
    pytest.param(_case(counts=np.zeros((2, 0, 10))), ValueError,
                 r"counts\[0\]: expected .*one trial, found shape \(2, 0, 10\)", id="no-trials"),
    pytest.param(_case(counts=_no_complete_trial()), ValueError,
                 r"counts: expected at least one complete trial per neuron.*neuron index 1",
                 id="no-complete-trial"),
    pytest.param(_case(counts=np.full((2, 3, 10), np.nan)), ValueError,
                 r"counts: expected at least one complete trial per neuron.*neuron index 0",
                 id="all-missing"),
    # dt
    pytest.param(_case(dt=0.0), ValueError, r"dt: expected a bin width in seconds > 0, found 0",
                 id="dt-zero"),
    pytest.param(_case(dt=-0.01), ValueError, r"dt: .*> 0, found -0\.01", id="dt-negative"),
    pytest.param(_case(dt=float("nan")), ValueError, r"dt: .*> 0, found nan", id="dt-nan"),
    pytest.param(_case(dt=np.float32("inf")), ValueError, r"dt: .*> 0, found", id="dt-inf"),
    pytest.param(_case(dt="0.01"), ValueError, r"dt: .*> 0, found '0\.01'", id="dt-string"),
    pytest.param(_case(dt=None), ValueError, r"dt: .*> 0, found None", id="dt-none"),
    # ndim
    pytest.param(_case(spec=np.zeros(10)), ValueError,
                 r"spectrogram: expected a 2-D array, found shape \(10,\)", id="spec-1d"),
    pytest.param(_case(spec=np.zeros((1, 3, 10))), ValueError,
                 r"spectrogram: expected a 2-D array, found shape \(1, 3, 10\)", id="spec-3d"),
    pytest.param(([np.zeros((3, 5)), np.zeros(5)], [np.zeros((1, 1, 5))] * 2, 0.01, {}),
                 ValueError, r"spectrogram\[1\]: expected a 2-D array", id="spec-1d-in-list"),
    pytest.param(_case(counts=np.zeros((3, 10))), ValueError,
                 r"counts: expected a 3-D array, found shape \(3, 10\)", id="counts-2d"),
    pytest.param(_case(counts=np.zeros((1, 2, 3, 10))), ValueError,
                 r"counts: expected a 3-D array, found shape \(1, 2, 3, 10\)", id="counts-4d"),
    # dtypes
    pytest.param(_case(spec=np.zeros((3, 10), dtype=object)), TypeError,
                 r"spectrogram: expected a real numeric array, found dtype object",
                 id="spec-object"),
    pytest.param(_case(spec=np.zeros((3, 10), dtype=complex)), TypeError,
                 r"spectrogram: expected a real numeric array, found dtype complex128",
                 id="spec-complex"),
    pytest.param(_case(spec=np.zeros((3, 10), dtype=bool)), TypeError,
                 r"spectrogram: expected a real numeric array, found dtype bool", id="spec-bool"),
    pytest.param(_case(spec=np.full((3, 10), "1")), TypeError,
                 r"spectrogram: expected a real numeric array, found dtype <U1", id="spec-str"),
    pytest.param(_case(counts=np.zeros((2, 3, 10), dtype=object)), TypeError,
                 r"counts: expected a real numeric array, found dtype object", id="counts-object"),
    pytest.param(_case(counts=np.zeros((2, 3, 10), dtype=np.complex64)), TypeError,
                 r"counts: expected a real numeric array, found dtype complex64",
                 id="counts-complex"),
    pytest.param(_case(counts=np.zeros((2, 3, 10), dtype=bool)), TypeError,
                 r"counts: expected a real numeric array, found dtype bool", id="counts-bool"),
    pytest.param(([np.zeros((3, 5))] * 2, [np.zeros((1, 1, 5)), np.zeros((1, 1, 5), bool)],
                  0.01, {}), TypeError, r"counts\[1\]: expected a real numeric array.*bool",
                 id="counts-bool-in-list"),
    # freqs and ids
    pytest.param(_case(freqs=[1.0, 2.0]), ValueError,
                 r"freqs: expected 3 finite values, found shape \(2,\)", id="freqs-short"),
    pytest.param(_case(freqs=np.ones((3, 1))), ValueError,
                 r"freqs: expected 3 finite values, found shape \(3, 1\)", id="freqs-2d"),
    pytest.param(_case(freqs=[1.0, np.nan, 3.0]), ValueError,
                 r"freqs: expected 3 finite values", id="freqs-nan"),
    pytest.param(_case(neuron_ids=["a", "a"]), ValueError,
                 r"neuron_ids: expected unique ids, found duplicates", id="neuron-ids-dup"),
    pytest.param(_case(neuron_ids=["a", "b", "c"]), ValueError,
                 r"neuron_ids: expected 2 ids, found shape \(3,\)", id="neuron-ids-count"),
    pytest.param(_case(neuron_ids="ab"), ValueError,
                 r"neuron_ids: expected 2 ids, found shape \(\)", id="neuron-ids-string"),
    pytest.param(([np.zeros((3, 5))] * 2, [np.zeros((1, 1, 5))] * 2, 0.01,
                  {"segment_ids": ["x", "x"]}), ValueError,
                 r"segment_ids: expected unique ids, found duplicates", id="segment-ids-dup"),
    pytest.param(_case(segment_ids=["x", "y"]), ValueError,
                 r"segment_ids: expected 1 ids, found shape \(2,\)", id="segment-ids-count"),
]


@pytest.mark.parametrize(("args", "error", "pattern"), INVALID)
def test_invalid_input_is_refused_naming_the_argument(args, error, pattern):
    spec, counts, dt, kwargs = args
    with pytest.raises(error, match=pattern):
        Recording(spec, counts, dt, **kwargs)


def test_non_numeric_freqs_are_refused_naming_freqs():
    spec, counts = good_single()
    with pytest.raises((ValueError, TypeError), match=r"freqs"):
        Recording(spec, counts, 0.01, freqs=["low", "mid", "high"])


def test_spectrogram_without_frequency_rows_is_refused():
    with pytest.raises(ValueError, match=r"spectrogram"):
        Recording(np.zeros((0, 5)), np.ones((1, 1, 5)), 0.01)


# --- construction: valid input ---------------------------------------------------------------


def test_defaults_and_shape_summary():
    specs, counts = make_parts()
    rec = Recording(specs, counts, 0.01)
    assert rec.n_freq == 3
    assert rec.n_neurons == 2
    assert rec.n_segments == 3
    assert rec.segment_lengths.tolist() == [10, 7, 4]
    assert rec.n_time == 21
    assert isinstance(rec.n_time, int)
    assert rec.dt == 0.01
    np.testing.assert_array_equal(rec.freqs, [0.0, 1.0, 2.0])
    assert rec.neuron_ids.tolist() == ["n0", "n1"]
    assert rec.segment_ids.tolist() == ["s0", "s1", "s2"]
    assert repr(rec) == "Recording(neurons=2, freqs=3, segments=3, bins=21, dt=0.01)"


def test_nan_marks_missing_trials_and_is_kept():
    rec = make_recording()
    assert [c.shape for c in rec.counts] == [(2, 3, 10), (2, 2, 7), (2, 4, 4)]
    assert np.isnan(rec.counts[1][1, 0]).all()
    assert not np.isnan(rec.counts[1][0]).any()
    assert np.isnan(rec.counts[2][0, 3]).all()
    assert np.isnan(rec.counts[2][1, 1, 2])
    assert np.isnan(rec.counts[2]).sum() == 4 + 1
    assert not np.isnan(rec.counts[0]).any()


def test_a_neuron_missing_from_a_whole_segment_is_accepted():
    specs, counts = make_parts()
    counts[1][0] = np.nan  # neuron 0 absent throughout segment 1, present elsewhere
    rec = Recording(specs, counts, 0.01)
    assert np.isnan(rec.counts[1][0]).all()


@pytest.mark.parametrize(
    "dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.float32, np.float64]
)
def test_integer_valued_counts_of_any_real_dtype_are_accepted_as_float(dtype):
    spec, counts = good_single()
    rec = Recording(spec, counts.astype(dtype), 0.01)
    assert rec.counts[0].dtype == np.float64
    np.testing.assert_array_equal(rec.counts[0], counts)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.float32])
def test_spectrogram_of_any_real_dtype_is_stored_as_float64(dtype):
    spec, counts = good_single()
    spec = (10 * spec).astype(dtype)
    rec = Recording(spec, counts, 0.01)
    assert rec.spectrograms[0].dtype == np.float64
    np.testing.assert_array_equal(rec.spectrograms[0], spec.astype(float))


@pytest.mark.parametrize("dt", [1, 0.001, np.float32(0.5), np.int64(2)])
def test_numeric_dt_is_stored_as_float(dt):
    spec, counts = good_single()
    rec = Recording(spec, counts, dt)
    assert type(rec.dt) is float
    assert rec.dt == float(dt)


def test_single_array_equals_one_element_list_and_tuple():
    spec, counts = good_single()
    single = Recording(spec, counts, 0.01)
    assert_recordings_equal(single, Recording([spec], [counts], 0.01))
    assert_recordings_equal(single, Recording((spec,), (counts,), 0.01))
    assert single.n_segments == 1


def test_inputs_are_copied_not_aliased():
    spec, counts = good_single()
    rec = Recording(spec, counts, 0.01)
    spec[:] = 99.0
    counts[:] = 7.0
    assert not (rec.spectrograms[0] == 99.0).any()
    assert not (rec.counts[0] == 7.0).any()


def test_ids_are_stored_as_strings():
    spec, counts = good_single()
    rec = Recording(spec, counts, 0.01, neuron_ids=[3, 4], segment_ids=("only",))
    assert rec.neuron_ids.tolist() == ["3", "4"]
    assert rec.segment_ids.tolist() == ["only"]


# --- selections and split ---------------------------------------------------------------------


def four_segments():
    specs, counts = make_parts(seed=3, lengths=(5, 6, 7, 8), trials=(1, 2, 3, 4))
    counts[2][1, 0] = np.nan
    return Recording(specs, counts, 0.002, freqs=[1.0, 2.0, 3.0],
                     neuron_ids=["u", "v"], segment_ids=["a", "b", "c", "d"])


def assert_part(part: Recording, whole: Recording, indices):
    assert part.segment_ids.tolist() == [whole.segment_ids[i] for i in indices]
    assert part.segment_lengths.tolist() == [whole.segment_lengths[i] for i in indices]
    for j, i in enumerate(indices):
        assert part.counts[j].shape == whole.counts[i].shape
        np.testing.assert_array_equal(part.spectrograms[j], whole.spectrograms[i])
        np.testing.assert_array_equal(part.counts[j], whole.counts[i])
    np.testing.assert_array_equal(part.freqs, whole.freqs)
    assert part.neuron_ids.tolist() == whole.neuron_ids.tolist()
    assert part.dt == whole.dt


@pytest.mark.parametrize(
    ("test_segments", "expected_test"),
    [
        (["d", "b"], [1, 3]),
        (["b", "d"], [1, 3]),
        ([3, 1], [1, 3]),
        ([-1, 1], [1, 3]),
        ([np.int64(1), "d"], [1, 3]),
        (["b", 1, "b"], [1]),
        ("c", [2]),
        (2, [2]),
        (np.int32(0), [0]),
        (("a", "b", "c"), [0, 1, 2]),
    ],
)
def test_split_by_ids_and_indices(test_segments, expected_test):
    rec = four_segments()
    train, test = rec.split(test_segments)
    expected_train = [i for i in range(4) if i not in expected_test]
    assert_part(train, rec, expected_train)
    assert_part(test, rec, expected_test)
    assert train.n_time + test.n_time == rec.n_time


def test_split_leaves_the_original_unchanged():
    rec = four_segments()
    before = [c.copy() for c in rec.counts]
    rec.split(["a"])
    assert rec.segment_ids.tolist() == ["a", "b", "c", "d"]
    for x, y in zip(before, rec.counts, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    ("test_segments", "pattern"),
    [
        ("zz", r"test_segments: expected segment ids .*found 'zz'"),
        (["a", "zz"], r"test_segments: .*found 'zz'"),
        (4, r"test_segments: .*indices 0\.\.3, found 4"),
        (-5, r"test_segments: .*found -5"),
        ([1.0], r"test_segments: .*found 1\.0"),
        ([None], r"test_segments: .*found None"),
    ],
)
def test_split_with_unknown_segment_is_refused(test_segments, pattern):
    with pytest.raises(ValueError, match=pattern):
        four_segments().split(test_segments)


@pytest.mark.parametrize("test_segments", [["a", "b", "c", "d"], [0, 1, 2, 3], [0, "b", -2, 3]])
def test_split_holding_out_everything_is_refused(test_segments):
    with pytest.raises(ValueError, match=r"test_segments: expected to leave at least one training"):
        four_segments().split(test_segments)


def test_split_of_a_single_segment_is_refused():
    spec, counts = good_single()
    with pytest.raises(ValueError, match=r"test_segments: expected to leave at least one"):
        Recording(spec, counts, 0.01).split(0)


def test_split_holding_out_nothing_is_refused_naming_test_segments():
    with pytest.raises(ValueError, match=r"test_segments"):
        four_segments().split([])


def test_select_neurons():
    rec = make_recording()
    one = rec.select_neurons([1])
    assert one.neuron_ids.tolist() == ["unit_b"]
    for x, y in zip(one.counts, rec.counts, strict=True):
        np.testing.assert_array_equal(x, y[[1]])


def test_rebin_sums_counts_averages_the_spectrogram_and_reports_the_remainder():
    rng = np.random.default_rng(0)
    spec = rng.normal(size=(3, 7))
    counts = rng.poisson(1.0, size=(2, 2, 7)).astype(float)
    counts[1, 0, 2] = np.nan  # a missing bin makes its coarse bin missing
    rec = Recording([spec, spec[:, :4]], [counts, counts[..., :4]], dt=0.002)
    with pytest.warns(UserWarning, match=rf"last 1 bins .* {np.nansum(counts[..., 6]):g} spikes"):
        coarse = rec.rebin(2)
    assert coarse.dt == pytest.approx(0.004)
    assert coarse.segment_lengths.tolist() == [3, 2]
    np.testing.assert_allclose(coarse.spectrograms[0][:, 1], spec[:, 2:4].mean(1))
    np.testing.assert_array_equal(coarse.counts[0][0, :, 2], counts[0, :, 4] + counts[0, :, 5])
    assert np.isnan(coarse.counts[0][1, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rec.select_segments([1]).rebin(4).n_time == 1  # nothing left out, no warning
    for factor, pattern in [(0, "a positive integer"), (2.0, "a positive integer"),
                            (5, "at most the shortest segment's 4 bins")]:
        with pytest.raises(ValueError, match=rf"factor: expected {pattern}"):
            rec.rebin(factor)


# --- files: round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npz", pytest.param(".nc", marks=needs_h5py)])
def test_save_load_round_trip(tmp_path, suffix):
    rec = make_recording()
    target = tmp_path / f"rec{suffix}"
    returned = rec.save(target)
    assert returned == target
    assert os.listdir(tmp_path) == [target.name]  # no temporary file left behind
    loaded = Recording.load(target)
    assert [c.shape for c in loaded.counts] == [(2, 3, 10), (2, 2, 7), (2, 4, 4)]
    assert_recordings_equal(loaded, rec)
    assert loaded.segment_lengths.tolist() == [10, 7, 4]


@pytest.mark.parametrize("suffix", [".npz", pytest.param(".nc", marks=needs_h5py)])
def test_save_accepts_str_paths_and_overwrites(tmp_path, suffix):
    target = tmp_path / f"rec{suffix}"
    four_segments().save(str(target))
    rec = make_recording()
    rec.save(str(target))
    assert_recordings_equal(Recording.load(str(target)), rec)
    assert os.listdir(tmp_path) == [target.name]


def test_dataset_layout_and_in_memory_round_trip():
    rec = make_recording()
    ds = rec.to_dataset()
    assert ds["spectrogram"].dims == ("freq", "time")
    assert ds["counts"].dims == ("neuron", "trial", "time")
    assert ds["counts"].shape == (2, 4, 21)  # trials padded to the largest segment
    assert ds.attrs == {"schema": SCHEMA, "dt": 0.005}
    assert ds["segment"].values.tolist() == ["song"] * 10 + ["noise"] * 7 + ["speech"] * 4
    assert ds["segment_order"].values.tolist() == ["song", "noise", "speech"]
    np.testing.assert_array_equal(ds["spectrogram"].values, np.concatenate(rec.spectrograms, 1))
    assert np.isnan(ds["counts"].values[:, 2:, 10:17]).all()  # padding of segment "noise"
    assert_recordings_equal(Recording.from_dataset(ds), rec)


def test_dataset_round_trip_keeps_a_trial_missing_for_all_neurons():
    specs, counts = make_parts()
    counts[0][:, 1] = np.nan  # trial 1 of segment 0 missing for every neuron
    rec = Recording(specs, counts, 0.01)
    back = Recording.from_dataset(rec.to_dataset())
    assert back.counts[0].shape == (2, 3, 10)


def test_dataset_round_trip_of_a_segment_with_no_observed_trial():
    specs, counts = make_parts()
    counts[1][:] = np.nan
    rec = Recording(specs, counts, 0.01)
    assert_recordings_equal(Recording.from_dataset(rec.to_dataset()), rec)


def test_from_dataset_refuses_a_wrong_schema():
    ds = make_recording().to_dataset()
    ds.attrs["schema"] = "other/2"
    with pytest.raises(ValueError, match=r"path: expected schema .*found 'other/2'"):
        Recording.from_dataset(ds)


# --- files: refused input ---------------------------------------------------------------------


def test_load_refuses_pickled_object_arrays(tmp_path):
    target = tmp_path / "evil.npz"
    np.savez(
        target, schema=np.array(SCHEMA), segment_ids=np.array(["s0"]),
        payload=np.array([{"a": 1}, None], dtype=object), allow_pickle=True,
    )
    with pytest.raises(ValueError, match=r"path: .*pickle"):
        Recording.load(target)


def test_load_refuses_a_pickle_disguised_as_npz(tmp_path):
    target = tmp_path / "evil.npz"
    target.write_bytes(b"\x80\x04" + b"not a zip")  # pickle protocol header
    with pytest.raises(ValueError, match=r"path: .*pickle"):
        Recording.load(target)


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ({"schema": np.array("other/2")}, r"path: expected schema .*found 'other/2'"),
        ({"x": np.zeros(3)}, r"path: expected schema .*found 'none'"),
        ({"schema": np.array(1.0), "dt": np.array(0.1)}, r"path: expected schema .*found '1\.0'"),
    ],
    ids=["other-schema", "no-schema", "numeric-schema"],
)
def test_load_refuses_a_wrong_schema(tmp_path, content, pattern):
    target = tmp_path / "other.npz"
    np.savez(target, **content)
    with pytest.raises(ValueError, match=pattern):
        Recording.load(target)


def test_load_refuses_an_npz_with_missing_keys(tmp_path):
    target = tmp_path / "partial.npz"
    np.savez(target, schema=np.array(SCHEMA), dt=np.array(0.01))
    with pytest.raises(ValueError, match=r"path"):
        Recording.load(target)


@pytest.mark.parametrize("suffix", [".npz", ".nc"])
def test_load_refuses_a_missing_file(tmp_path, suffix):
    with pytest.raises(ValueError, match=r"path: expected an existing .npz or .nc file.*missing"):
        Recording.load(tmp_path / f"missing{suffix}")


def test_load_refuses_a_directory(tmp_path):
    folder = tmp_path / "dir.npz"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"path: expected an existing"):
        Recording.load(folder)


@pytest.mark.parametrize("name", ["rec.txt", "rec", "rec.NPZ", "rec.npy"])
def test_load_refuses_a_wrong_suffix(tmp_path, name):
    target = tmp_path / name
    make_recording().save(tmp_path / "rec.npz")
    target.write_bytes((tmp_path / "rec.npz").read_bytes())
    with pytest.raises(ValueError, match=r"path: expected a .npz or .nc file, found '"):
        Recording.load(target)


@pytest.mark.parametrize("name", ["rec.txt", "rec", "rec.h5", "rec.npz.tmp"])
def test_save_refuses_a_wrong_suffix(tmp_path, name):
    with pytest.raises(ValueError, match=r"path: expected a .npz or .nc file name"):
        make_recording().save(tmp_path / name)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "content", [b"", b"garbage" * 20], ids=["empty", "not-a-zip"]
)
def test_load_refuses_a_corrupt_npz(tmp_path, content):
    target = tmp_path / "bad.npz"
    target.write_bytes(content)
    with pytest.raises(ValueError, match=r"path: .*bad\.npz"):
        Recording.load(target)


def _saved_bytes(tmp_path):
    source = make_recording().save(tmp_path / "good.npz")
    data = source.read_bytes()
    source.unlink()
    return data


@pytest.mark.parametrize("damage", ["truncated", "crc"])
def test_load_refuses_a_truncated_or_damaged_npz(tmp_path, damage):
    data = _saved_bytes(tmp_path)
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        middle = len(data) // 2
        data = data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 16]) + data[
            middle + 16 :
        ]
    target = tmp_path / "bad.npz"
    target.write_bytes(data)
    with pytest.raises(ValueError, match=r"path: .*bad\.npz"):
        load_closing_leaked_handles(target)


def load_closing_leaked_handles(target):
    """`Recording.load`; if it lets zipfile.BadZipFile escape, the file handle np.load leaves
    open is collected here (its ResourceWarning would otherwise fail the whole session) and a
    fresh BadZipFile is raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            return Recording.load(target)
        except zipfile.BadZipFile as error:
            message = str(error)
        gc.collect()
    raise zipfile.BadZipFile(message)


@needs_h5py
@pytest.mark.parametrize("damage", ["garbage", "truncated", "npz-bytes"])
def test_load_refuses_a_corrupt_nc(tmp_path, damage):
    good = make_recording().save(tmp_path / "good.nc").read_bytes()
    data = {
        "garbage": b"garbage" * 20,
        "truncated": good[: len(good) // 2],
        "npz-bytes": _saved_bytes(tmp_path),
    }[damage]
    target = tmp_path / "bad.nc"
    target.write_bytes(data)
    with pytest.raises(ValueError, match=r"path: cannot read .*bad\.nc"):
        Recording.load(target)


@needs_h5py
def test_load_refuses_an_nc_with_a_wrong_schema(tmp_path):
    target = tmp_path / "other.nc"
    xr.Dataset({"x": ("t", np.zeros(3))}, attrs={"schema": "other/2"}).to_netcdf(
        target, engine="h5netcdf"
    )
    with pytest.raises(ValueError, match=r"path: .*schema"):
        Recording.load(target)


# --- files: atomic save ----------------------------------------------------------------------


class Boom(RuntimeError):
    pass


def test_failed_npz_save_leaves_no_file(tmp_path, monkeypatch):
    def partial_write(handle, **arrays):
        handle.write(b"PK\x03\x04 half a file")
        raise Boom("disk full")

    monkeypatch.setattr(np, "savez_compressed", partial_write)
    with pytest.raises(Boom):
        make_recording().save(tmp_path / "rec.npz")
    assert os.listdir(tmp_path) == []


def test_failed_nc_save_leaves_no_file(tmp_path, monkeypatch):
    def partial_write(self, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"\x89HDF half a file")
        raise Boom("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", partial_write)
    with pytest.raises(Boom):
        make_recording().save(tmp_path / "rec.nc")
    assert os.listdir(tmp_path) == []


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "rec.npz"
    before = make_recording()
    before.save(target)
    old = target.read_bytes()

    def fail(handle, **arrays):
        raise Boom("disk full")

    monkeypatch.setattr(np, "savez_compressed", fail)
    with pytest.raises(Boom):
        four_segments().save(target)
    assert os.listdir(tmp_path) == [target.name]
    assert target.read_bytes() == old
    monkeypatch.undo()
    assert_recordings_equal(Recording.load(target), before)


# --- property ---------------------------------------------------------------------------------


@st.composite
def recordings(draw):
    n_freq = draw(st.integers(1, 6))
    n_neurons = draw(st.integers(1, 3))
    n_segments = draw(st.integers(1, 3))
    lengths = draw(st.lists(st.integers(1, 40), min_size=n_segments, max_size=n_segments))
    trials = draw(st.lists(st.integers(1, 3), min_size=n_segments, max_size=n_segments))
    seed = draw(st.integers(0, 2**32 - 1))
    with_nan = draw(st.booleans())
    rng = np.random.default_rng(seed)
    specs = [rng.normal(size=(n_freq, t)) for t in lengths]
    counts = [rng.poisson(1.5, size=(n_neurons, r, t)).astype(float)
              for r, t in zip(trials, lengths, strict=True)]
    if with_nan:  # missing trials and bins, but trial 0 of segment 0 stays complete
        for s, c in enumerate(counts):
            mask = rng.random(c.shape) < 0.2
            if s == 0:
                mask[:, 0] = False
            c[mask] = np.nan
    return specs, counts, lengths, trials, n_freq, n_neurons


@settings(max_examples=25, deadline=None)
@given(recordings(), st.floats(1e-4, 1.0))
def test_random_valid_recordings_are_consistent_and_round_trip(tmp_path_factory, parts, dt):
    specs, counts, lengths, trials, n_freq, n_neurons = parts
    rec = Recording(specs, counts, dt)
    assert rec.n_freq == n_freq
    assert rec.n_neurons == n_neurons
    assert rec.n_segments == len(lengths)
    assert rec.segment_lengths.tolist() == lengths
    assert rec.n_time == sum(lengths)
    assert [c.shape for c in rec.counts] == [
        (n_neurons, r, t) for r, t in zip(trials, lengths, strict=True)
    ]
    folder = tmp_path_factory.mktemp("prop")
    loaded = Recording.load(rec.save(folder / "r.npz"))
    assert_recordings_equal(loaded, rec)
    assert os.listdir(folder) == ["r.npz"]


def test_without_marks_one_neurons_bins_missing_and_nothing_else():
    rec = four_segments()
    before_call = [c.copy() for c in rec.counts]
    left = rec.without(0, 2, slice(1, 3))
    for index, (before, after) in enumerate(zip(rec.counts, left.counts, strict=True)):
        gone = np.zeros(before.shape, bool)
        if index == 2:
            gone[0, :, 1:3] = True
        assert np.isnan(after[gone]).all()
        np.testing.assert_array_equal(after[~gone], before[~gone])
    for x, y in zip(before_call, rec.counts, strict=True):  # the original is unchanged
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    ("args", "error", "pattern"),
    [
        ((2, 0, slice(0, 1)), ValueError, r"neuron: expected an index in 0\.\.1, found 2"),
        ((0, -1, slice(0, 1)), ValueError, r"segment: expected an index in 0\.\.3, found -1"),
        ((0, 0, 3), TypeError, "bins: expected a slice, found int"),
    ],
)
def test_without_refuses_bad_indices(args, error, pattern):
    with pytest.raises(error, match=pattern):
        four_segments().without(*args)
