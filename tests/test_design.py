"""Tests of `bayesstrf.model.design`: both drive engines against the lag-matrix reference."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayesstrf.model import design as designs
from bayesstrf.model.design import lag_matrix, lowrank_drive, make_design, strf_drive

ENGINES = ("lag_matrix", "conv")

# --- references -------------------------------------------------------------------------------


def loop_drive(weights: np.ndarray, spectrograms) -> np.ndarray:
    """z[n, t] = sum_{f,l} W[n, f, l] S[f, t - l] per segment (zero before it starts), by loops."""
    n_neurons, n_freq, n_lags = weights.shape
    out = []
    for spec in spectrograms:
        drive = np.zeros((n_neurons, spec.shape[1]))
        for t in range(spec.shape[1]):
            for lag in range(min(n_lags, t + 1)):
                drive[:, t] += weights[:, :, lag] @ spec[:, t - lag]
        out.append(drive)
    return np.concatenate(out, axis=1)


def lag_matrix_drive(weights: np.ndarray, spectrograms) -> np.ndarray:
    """The documented reference: X @ W.reshape(N, -1).T per segment, concatenated."""
    n_neurons, _, n_lags = weights.shape
    flat = weights.reshape(n_neurons, -1)
    return np.concatenate([(lag_matrix(s, n_lags) @ flat.T).T for s in spectrograms], axis=1)


def assert_close32(actual, expected):
    """float32 tolerance: rtol 1e-4 and atol 1e-4 of the largest magnitude."""
    expected = np.asarray(expected, dtype=float)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=1e-4, atol=1e-4 * scale)


def random_problem(seed, lengths, n_neurons, n_lags, n_freq=3):
    rng = np.random.default_rng(seed)
    specs = [rng.normal(size=(n_freq, t)) for t in lengths]
    weights = rng.normal(size=(n_neurons, n_freq, n_lags)).astype(np.float32)
    return specs, weights


# --- lag_matrix ------------------------------------------------------------------------------


def test_lag_matrix_hand_built_example():
    spec = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    expected = np.array(
        [  # columns: (f0, l0), (f0, l1), (f1, l0), (f1, l1)
            [1.0, 0.0, 4.0, 0.0],
            [2.0, 1.0, 5.0, 4.0],
            [3.0, 2.0, 6.0, 5.0],
        ]
    )
    np.testing.assert_array_equal(lag_matrix(spec, 2), expected)
    np.testing.assert_array_equal(lag_matrix(spec, 1), spec.T)


def test_lag_matrix_hand_built_segment_shorter_than_lags():
    spec = np.array([[1.0, 2.0], [3.0, 4.0]])
    expected = np.array(
        [
            [1.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0],
            [2.0, 1.0, 0.0, 0.0, 4.0, 3.0, 0.0, 0.0],
        ]
    )
    np.testing.assert_array_equal(lag_matrix(spec, 4), expected)


@pytest.mark.parametrize(("n_time", "n_lags"), [(3, 5), (4, 7), (5, 7)])
def test_lag_matrix_of_a_segment_shorter_than_lags(n_time, n_lags):
    spec = np.arange(1.0, 2 * n_time + 1).reshape(2, n_time)
    expected = np.zeros((n_time, 2, n_lags))
    for t in range(n_time):
        for lag in range(min(t + 1, n_lags)):
            expected[t, :, lag] = spec[:, t - lag]
    np.testing.assert_array_equal(lag_matrix(spec, n_lags), expected.reshape(n_time, -1))


@pytest.mark.parametrize("n_lags", [1, 2, 5])
def test_lag_matrix_drive_equals_loop_reference(n_lags):
    specs, weights = random_problem(0, [9, 1, 2], 2, n_lags)
    np.testing.assert_allclose(
        lag_matrix_drive(weights, specs), loop_drive(weights, specs), rtol=1e-12, atol=1e-12
    )


# --- strf_drive against the references ------------------------------------------------------

# Segment lengths around n_lags (1..7): shorter, equal and longer segments side by side.
SAFE_LENGTHS = (2, 6, 1, 11)
CRASH_LENGTHS = (3, 9, 4)  # once crashed the reference (lag > T gave a negative slice stop)


def _drive_cases():
    # Every n_lags 1..7 on both sets of lengths; N cycles through 1..3 with n_lags (each new
    # shape costs a JAX compilation, so the full N x L product would be slow).
    for lengths in (SAFE_LENGTHS, CRASH_LENGTHS):
        for n_lags in range(1, 8):
            n_neurons = 1 + (n_lags - 1) % 3
            yield pytest.param(
                lengths, n_neurons, n_lags,
                id=f"T{'-'.join(map(str, lengths))}-N{n_neurons}-L{n_lags}",
            )


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("lengths", "n_neurons", "n_lags"), list(_drive_cases()))
def test_strf_drive_equals_lag_matrix_reference(lengths, n_neurons, n_lags, engine):
    specs, weights = random_problem(n_lags, lengths, n_neurons, n_lags)
    reference = lag_matrix_drive(weights, specs)
    design = make_design(specs, n_lags, engine)
    assert (design.lagged is not None) == (engine == "lag_matrix")
    drive = strf_drive(jnp.asarray(weights), design)
    assert drive.shape == (n_neurons, sum(lengths))
    assert_close32(drive, reference)


@pytest.mark.parametrize(
    ("lengths", "n_neurons", "n_lags"),
    [
        # where lag_matrix cannot serve as the reference (segments of 3 and 4 bins)
        (CRASH_LENGTHS, 2, 5),
        (CRASH_LENGTHS, 3, 6),
        (CRASH_LENGTHS, 1, 7),
        ((1,), 3, 3),
        ((40,), 3, 3),
        ((1, 1, 1), 3, 3),
    ],
)
def test_strf_drive_equals_loop_reference(lengths, n_neurons, n_lags):
    specs, weights = random_problem(n_lags, lengths, n_neurons, n_lags)
    for engine in ENGINES:
        drive = strf_drive(jnp.asarray(weights), make_design(specs, n_lags, engine))
        assert drive.shape == (n_neurons, sum(lengths))
        assert_close32(drive, loop_drive(weights, specs))


def test_lag_matrix_over_the_memory_budget_is_refused_or_replaced(monkeypatch, caplog):
    specs, weights = random_problem(0, [50, 30], 2, 4)
    monkeypatch.setattr(designs, "LAG_MATRIX_BYTES", 3 * 4 * 80 * 4 - 1)  # F L T floats, -1
    with pytest.raises(ValueError, match=r"drive: the lag matrix would take 0 MiB, over the "
                                         r"budget .*use drive='conv' or 'auto'"):
        make_design(specs, 4, "lag_matrix")
    with caplog.at_level("INFO", logger="bayesstrf.model.design"):
        design = make_design(specs, 4, "auto")
    assert design.lagged is None and "convolution drive" in caplog.text
    assert_close32(strf_drive(jnp.asarray(weights), design), lag_matrix_drive(weights, specs))
    monkeypatch.setattr(designs, "LAG_MATRIX_BYTES", 3 * 4 * 80 * 4)
    assert make_design(specs, 4, "auto").lagged.shape == (80, 12)
    with pytest.raises(ValueError, match=r"drive: expected one of \('auto', 'lag_matrix', "
                                         r"'conv'\), found 'fft'"):
        make_design(specs, 4, "fft")


def test_strf_drive_refuses_weights_with_more_lags_than_the_design():
    specs, weights = random_problem(0, [4, 3], 1, 5, n_freq=2)
    design = make_design(specs, 3)
    with pytest.raises(ValueError, match=r"n_lags|weights"):
        strf_drive(jnp.asarray(weights), design)


# --- causality and lag convention -------------------------------------------------------------


@st.composite
def perturbations(draw):
    lengths = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))
    n_lags = draw(st.integers(1, 6))
    segment = draw(st.integers(0, len(lengths) - 1))
    t = draw(st.integers(0, lengths[segment] - 1))
    seed = draw(st.integers(0, 2**32 - 1))
    return lengths, n_lags, segment, t, seed


@settings(max_examples=20, deadline=None)
@given(perturbations())
def test_changing_the_stimulus_at_t_changes_only_t_to_t_plus_lags(case):
    lengths, n_lags, segment, t, seed = case
    rng = np.random.default_rng(seed)
    specs = [rng.normal(size=(2, n)) for n in lengths]
    weights = jnp.asarray(rng.uniform(0.5, 1.5, size=(2, 2, n_lags)), dtype=jnp.float32)
    changed = [s.copy() for s in specs]
    changed[segment][:, t] += 1.0
    diff = np.asarray(strf_drive(weights, make_design(changed, n_lags))) - np.asarray(
        strf_drive(weights, make_design(specs, n_lags))
    )
    start = sum(lengths[:segment])
    affected = np.zeros(sum(lengths), dtype=bool)
    affected[start + t : start + min(t + n_lags, lengths[segment])] = True
    # every weight is >= 0.5 and the change is +1 at both frequencies: >= 1 where affected
    assert (diff[:, affected] > 0.5).all()
    np.testing.assert_allclose(diff[:, ~affected], 0.0, atol=1e-5)


@pytest.mark.parametrize("lag", [0, 1, 2, 3])
@pytest.mark.parametrize("freq", [0, 2])
def test_single_weight_at_freq_and_lag_shifts_the_stimulus(freq, lag):
    lengths, n_lags = (4, 2, 6), 4
    rng = np.random.default_rng(7)
    specs = [rng.normal(size=(3, n)) for n in lengths]
    weights = np.zeros((2, 3, n_lags), dtype=np.float32)
    weights[1, freq, lag] = 1.0
    drive = np.asarray(strf_drive(jnp.asarray(weights), make_design(specs, n_lags)))
    expected = np.concatenate(
        [
            np.concatenate([np.zeros(min(lag, n)), s[freq, : max(n - lag, 0)]])
            for s, n in zip(specs, lengths, strict=True)
        ]
    ).astype(np.float32)
    np.testing.assert_array_equal(drive[1], expected)
    np.testing.assert_array_equal(drive[0], 0.0)


def test_lag_zero_is_the_current_bin():
    spec = np.array([[1.0, 2.0, 3.0, 4.0]])
    weights = jnp.asarray([[[1.0, 0.0, 0.0]]])
    drive = strf_drive(weights, make_design([spec], 3))
    np.testing.assert_array_equal(np.asarray(drive), [[1.0, 2.0, 3.0, 4.0]])
    weights = jnp.asarray([[[0.0, 0.0, 1.0]]])
    drive = strf_drive(weights, make_design([spec], 3))
    np.testing.assert_array_equal(np.asarray(drive), [[0.0, 0.0, 1.0, 2.0]])


# --- make_design ------------------------------------------------------------------------------


@pytest.mark.parametrize("n_lags", [1, 2, 5])
def test_make_design_mean_and_scale_match_numpy(n_lags):
    rng = np.random.default_rng(3)
    specs = [rng.normal(loc=[[1.0], [-2.0], [5.0]], scale=[[0.5], [2.0], [1.0]], size=(3, n))
             for n in (7, 3, 12)]
    design = make_design(specs, n_lags)
    everything = np.concatenate(specs, axis=1)
    mean = everything.mean(axis=1)
    assert design.mean.shape == (3,)
    assert design.mean.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(design.mean), mean, rtol=1e-6, atol=1e-6)
    # one scale for the whole stimulus: the std of all centred values (not per frequency)
    assert design.scale.shape == ()
    np.testing.assert_allclose(
        float(design.scale), np.std(everything - mean[:, None]), rtol=1e-6
    )
    assert design.n_lags == n_lags


def test_make_design_of_a_constant_stimulus_has_unit_scale():
    design = make_design([np.full((2, 5), 3.0), np.full((2, 2), 3.0)], 2)
    np.testing.assert_array_equal(np.asarray(design.mean), [3.0, 3.0])
    assert float(design.scale) == 1.0


@pytest.mark.parametrize("n_lags", [1, 3])
def test_make_design_layout(n_lags):
    lengths = (4, 1, 3)
    rng = np.random.default_rng(0)
    specs = [rng.normal(size=(2, n)) for n in lengths]
    design = make_design(specs, n_lags)
    pad = n_lags - 1
    assert design.padded.shape == (2, sum(lengths) + len(lengths) * pad)
    assert design.padded.dtype == jnp.float32
    padded, valid = np.asarray(design.padded), np.asarray(design.valid)
    expected_valid = np.concatenate(
        [np.arange(n) + sum(lengths[:i]) + (i + 1) * pad for i, n in enumerate(lengths)]
    )
    np.testing.assert_array_equal(valid, expected_valid)
    np.testing.assert_array_equal(np.asarray(design.segment), [0, 0, 0, 0, 1, 2, 2, 2])
    np.testing.assert_array_equal(
        padded[:, valid], np.concatenate(specs, axis=1).astype(np.float32)
    )
    others = np.setdiff1d(np.arange(padded.shape[1]), valid)
    assert others.size == len(lengths) * pad
    np.testing.assert_array_equal(padded[:, others], 0.0)


@pytest.mark.parametrize("engine", ENGINES)
def test_lowrank_drive_equals_the_drive_of_the_product(engine):
    rng = np.random.default_rng(4)
    specs = [rng.normal(size=(5, 30)), rng.normal(size=(5, 9))]
    design = make_design(specs, 4, engine)
    spectral, temporal = rng.normal(size=(3, 2, 5)), rng.normal(size=(3, 2, 4))
    weights = np.einsum("nrf,nrl->nfl", spectral, temporal)
    assert_close32(lowrank_drive(jnp.asarray(spectral, jnp.float32),
                                 jnp.asarray(temporal, jnp.float32), design),
                   lag_matrix_drive(weights, specs))
    with pytest.raises(ValueError, match=r"temporal: expected 4 lags"):
        lowrank_drive(jnp.asarray(spectral), jnp.asarray(temporal[..., :3]), design)
