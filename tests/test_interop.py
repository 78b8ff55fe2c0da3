"""deepSTRF interop: the exported state_dict computes bayesstrf's rate, and imports back."""

import sys

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from bayesstrf.model import activations
from bayesstrf.model.design import make_design
from bayesstrf.model.interop import (
    BIAS,
    BN,
    BN_COUNT,
    BN_EPS,
    NAMES,
    PREFIX,
    WEIGHT,
    from_deepstrf,
    to_deepstrf,
)
from bayesstrf.model.lnp import lnp_rate

N, F, L = 2, 4, 3


def fake_fit(family: str, n_neurons: int = N, seed: int = 0) -> xr.DataTree:
    """A posterior of random float32 draws (2 chains x 5 draws) shaped like a fit's."""
    rng = np.random.default_rng(seed)
    draws = (2, 5)
    spec = activations.get(family)
    data = {
        "strf": (("chain", "draw", "neuron", "freq", "lag"),
                 rng.normal(0, 0.3, (*draws, n_neurons, F, L))),
        "intercept": (("chain", "draw", "neuron"), rng.normal(0.2, 0.3, (*draws, n_neurons))),
    } | {name: (("chain", "draw", "neuron"), rng.normal(0.5, 0.5, (*draws, n_neurons)))
         for name in spec.params}
    posterior = xr.Dataset({k: (dims, v.astype(np.float32)) for k, (dims, v) in data.items()})
    tree = xr.DataTree()
    tree["posterior"] = xr.DataTree(posterior)
    tree.attrs["activation"] = spec.name
    return tree


def posterior_mean(fit: xr.DataTree) -> dict[str, np.ndarray]:
    posterior = fit["posterior"].to_dataset()
    family = activations.get(fit.attrs["activation"])
    return {name: posterior[name].mean(("chain", "draw")).values.astype(np.float32)
            for name in ("strf", "intercept", *family.params)}


def softplus(x):
    return np.logaddexp(0.0, x)


def deepstrf_rate(state: dict, family: str, spectrogram: np.ndarray) -> np.ndarray:
    """deepSTRF's LN forward written from its documentation: causal correlation of the
    zero-padded spectrogram with the (oldest-to-newest) kernel plus bias, the readout's
    BatchNorm in evaluation mode (when its keys are there), then the activation formula of
    the reference text. Returns (N, T), float64."""
    kernel = state[WEIGHT][:, 0].astype(float)  # (N, F, T_k), index T_k - 1 = current frame
    n_taps = kernel.shape[-1]
    padded = np.concatenate([np.zeros((spectrogram.shape[0], n_taps - 1)), spectrogram], 1)
    n_time = spectrogram.shape[1]
    x = np.stack([
        np.einsum("nfj,fj->n", kernel, padded[:, t : t + n_taps]) for t in range(n_time)
    ], axis=1) + state[BIAS].astype(float)[:, None]
    if BN[0] in state:
        gamma, beta, mean, var = (state[key].astype(float)[:, None] for key in BN)
        x = (x - mean) / np.sqrt(var + BN_EPS) * gamma + beta
    p = {key[len(PREFIX):]: state[key].astype(float)[:, None]
         for key in state if key.startswith(PREFIX)}
    if family == "sigmoid":
        return softplus(p["_raw_b"]) / (1 + np.exp(-(x - p["c"]) / p["d"])) + softplus(p["_raw_a"])
    if family == "double_exponential":
        return softplus(p["_raw_a"]) * np.exp(-np.exp(p["k"] * x - p["s"])) + softplus(p["_raw_b"])
    beta = softplus(p["_raw_beta"])
    return softplus(beta * x) / beta + softplus(p["_raw_b"])


def bayesstrf_rate(values: dict, family: str, spectrograms: list) -> np.ndarray:
    design = make_design(spectrograms, values["strf"].shape[-1])
    spec = activations.get(family)
    raw = {name: jnp.asarray(values[name]) for name in spec.params}
    return np.asarray(lnp_rate(spec, jnp.asarray(values["strf"], jnp.float32),
                               jnp.asarray(values["intercept"], jnp.float32), raw, design))


def spectrograms(seed: int = 1, lengths=(40, 25)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(1.0, 1.0, (F, n)) for n in lengths]


def assert_one_line(error: pytest.ExceptionInfo, argument: str) -> None:
    message = str(error.value)
    assert message.startswith(f"{argument}") and "\n" not in message, message


# ---- export -----------------------------------------------------------------------------------
@pytest.mark.parametrize("family", sorted(NAMES))
def test_keys_shapes_dtypes_and_lag_order(family):
    fit = fake_fit(family)
    state = to_deepstrf(fit)
    expected = {WEIGHT, BIAS, *BN} | {PREFIX + key for key in NAMES[family].values()}
    assert set(state) == expected | {BN_COUNT}
    assert all(state[key].dtype == np.float32 for key in expected)
    assert state[BN_COUNT].dtype == np.int64 and state[BN_COUNT].shape == ()
    assert state[WEIGHT].shape == (N, 1, F, L)
    assert all(state[key].shape == (N,) for key in expected - {WEIGHT})
    mean = posterior_mean(fit)
    np.testing.assert_array_equal(state[WEIGHT][:, 0, :, -1], mean["strf"][:, :, 0])
    np.testing.assert_array_equal(state[WEIGHT][:, 0, :, 0], mean["strf"][:, :, -1])
    fixed = {"sigmoid": ("d", 1.0), "double_exponential": ("k", -1.0)}.get(family)
    if fixed:
        np.testing.assert_array_equal(state[PREFIX + fixed[0]], fixed[1])


@pytest.mark.parametrize("family", sorted(NAMES))
def test_round_trip_gives_back_the_posterior_mean_exactly(family):
    fit = fake_fit(family, seed=2)
    back = from_deepstrf(to_deepstrf(fit), family)
    mean = posterior_mean(fit)
    assert set(back) == set(mean)
    for name, value in mean.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)


def test_round_trip_of_a_real_fit(tiny_fit):
    back = from_deepstrf(to_deepstrf(tiny_fit), "softplus")
    for name, value in posterior_mean(tiny_fit).items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)


@pytest.mark.parametrize("family", sorted(NAMES))
def test_exported_weights_reproduce_the_posterior_mean_rate(family):
    fit = fake_fit(family, seed=3)
    specs = spectrograms()
    state = to_deepstrf(fit)
    expected = bayesstrf_rate(posterior_mean(fit), family, specs)
    # deepSTRF sees one segment per forward pass, padded with zeros like bayesstrf's design
    got = np.concatenate([deepstrf_rate(state, family, spec) for spec in specs], axis=1)
    assert got.shape == expected.shape == (N, sum(s.shape[1] for s in specs))
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6)


def test_exported_real_fit_reproduces_lnp_rate(tiny_fit, tiny_simulation):
    recording = tiny_simulation.recording
    state = to_deepstrf(tiny_fit)
    expected = bayesstrf_rate(posterior_mean(tiny_fit), "softplus", recording.spectrograms)
    got = np.concatenate(
        [deepstrf_rate(state, "softplus", spec) for spec in recording.spectrograms], axis=1)
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6)


def test_median_and_draw_index():
    fit = fake_fit("softplus", seed=4)
    posterior = fit["posterior"].to_dataset()
    median = to_deepstrf(fit, stat="median")
    np.testing.assert_array_equal(
        median[BIAS], posterior["intercept"].median(("chain", "draw")).values)
    one = to_deepstrf(fit, stat=7)  # chain 1, draw 2 (5 draws per chain)
    np.testing.assert_array_equal(one[WEIGHT][:, 0], posterior["strf"].values[1, 2][..., ::-1])
    np.testing.assert_array_equal(one[PREFIX + "_raw_beta"], posterior["raw_beta"].values[1, 2])


@pytest.mark.parametrize("stat", ["mode", True, -1, 10, 1.5, None])
def test_bad_stat(stat):
    with pytest.raises(ValueError) as error:
        to_deepstrf(fake_fit("softplus"), stat=stat)
    assert_one_line(error, "stat:")


def test_bad_fit():
    with pytest.raises(TypeError) as error:
        to_deepstrf({"posterior": {}})
    assert_one_line(error, "fit:")
    exponential = fake_fit("softplus")
    exponential.attrs["activation"] = "exponential"
    with pytest.raises(ValueError) as error:
        to_deepstrf(exponential)
    assert_one_line(error, "fit:")
    lacking = fake_fit("softplus")
    lacking["posterior"] = xr.DataTree(lacking["posterior"].to_dataset().drop_vars("raw_b"))
    with pytest.raises(ValueError) as error:
        to_deepstrf(lacking)
    assert_one_line(error, "fit:")


def test_exported_batchnorm_is_the_identity_in_float32():
    # deepSTRF's readout has an nn.BatchNorm1d between the STRF and the activation; torch
    # evaluates it as x * (weight / sqrt(running_var + eps)) + (bias - running_mean * scale)
    state = to_deepstrf(fake_fit("softplus"))
    gamma, beta, mean, var = (state[key] for key in BN)
    scale = gamma / np.sqrt(var + np.float32(BN_EPS))
    assert scale.dtype == np.float32 and (scale == 1).all()
    assert (beta == 0).all() and (mean == 0).all() and state[BN_COUNT] == 0


# ---- import -----------------------------------------------------------------------------------
def test_import_folds_a_trained_batchnorm():
    specs = spectrograms(seed=11)
    rng = np.random.default_rng(12)
    for family in sorted(NAMES):
        state = to_deepstrf(fake_fit(family, seed=13))
        state[BN[0]] = rng.uniform(0.5, 2.0, N).astype(np.float32) * [1, -1]
        state[BN[1]] = rng.normal(0, 0.5, N).astype(np.float32)
        state[BN[2]] = rng.normal(0, 1.0, N).astype(np.float32)
        state[BN[3]] = rng.uniform(0.2, 3.0, N).astype(np.float32)
        state[BN_COUNT] = np.array(1234)
        values = from_deepstrf(state, family)
        expected = np.concatenate([deepstrf_rate(state, family, s) for s in specs], axis=1)
        np.testing.assert_allclose(bayesstrf_rate(values, family, specs), expected,
                                   rtol=2e-5, atol=1e-6, err_msg=family)


def test_import_without_batchnorm_keys():
    fit = fake_fit("sigmoid", seed=14)
    state = {k: v for k, v in to_deepstrf(fit).items() if not k.startswith("readout.bn.")}
    back = from_deepstrf(state, "sigmoid")
    for name, value in posterior_mean(fit).items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)
    with pytest.raises(ValueError) as error:  # some BatchNorm keys but not all
        from_deepstrf(state | {BN_COUNT: np.array(0)}, "sigmoid")
    assert_one_line(error, "state_dict_or_path:")
    assert BN[0] in str(error.value)
    for eps in (-1.0, "1e-5", True):
        with pytest.raises(ValueError) as error:
            from_deepstrf(state, "sigmoid", bn_eps=eps)
        assert_one_line(error, "bn_eps:")
    bad = to_deepstrf(fit) | {BN[3]: np.array([1.0, -1.0], np.float32)}
    with pytest.raises(ValueError) as error:
        from_deepstrf(bad, "sigmoid")
    assert_one_line(error, "state_dict_or_path[")


def test_import_folds_d_and_k_exactly():
    specs = spectrograms(seed=5)
    for family, name, value in [("sigmoid", "d", [2.0, -0.5]),
                                ("double_exponential", "k", [0.7, -2.0])]:
        state = to_deepstrf(fake_fit(family, seed=6))
        state[PREFIX + name] = np.array(value, dtype=np.float32)
        values = from_deepstrf(state, family)
        assert name not in values
        expected = np.concatenate([deepstrf_rate(state, family, s) for s in specs], axis=1)
        np.testing.assert_allclose(bayesstrf_rate(values, family, specs), expected,
                                   rtol=2e-5, atol=1e-6)


def test_import_bad_keys_and_activation():
    state = to_deepstrf(fake_fit("sigmoid"))
    for bad in [
        {k: v for k, v in state.items() if k != BIAS},
        state | {"prefiltering.weight": np.ones(2, np.float32)},
    ]:
        with pytest.raises(ValueError) as error:
            from_deepstrf(bad, "sigmoid")
        assert_one_line(error, "state_dict_or_path:")
    with pytest.raises(ValueError) as error:
        from_deepstrf(state, "softplus")  # a sigmoid's keys
    assert_one_line(error, "state_dict_or_path:")
    for name in ("exponential", "softpuls"):
        with pytest.raises(ValueError) as error:
            from_deepstrf(state, name)
        assert_one_line(error, "activation:")
    with pytest.raises(TypeError) as error:
        from_deepstrf([1, 2], "sigmoid")
    assert_one_line(error, "state_dict_or_path:")


@pytest.mark.parametrize("key, value", [
    (WEIGHT, np.ones((N, F, L))),
    (WEIGHT, np.ones((N, 2, F, L))),
    (BIAS, np.ones(N + 1)),
    (PREFIX + "_raw_beta", np.ones((N, 1))),
    (PREFIX + "_raw_b", np.array([0.0, np.nan])),
    (BIAS, np.array(["a", "b"])),
])
def test_import_bad_shapes_and_values(key, value):
    state = to_deepstrf(fake_fit("softplus")) | {key: value}
    with pytest.raises((ValueError, TypeError)) as error:
        from_deepstrf(state, "softplus")
    assert_one_line(error, "state_dict_or_path[")


def test_import_zero_d_refused():
    state = to_deepstrf(fake_fit("sigmoid"))
    state[PREFIX + "d"] = np.array([1.0, 0.0], np.float32)
    with pytest.raises(ValueError) as error:
        from_deepstrf(state, "sigmoid")
    assert_one_line(error, "state_dict_or_path[")


# ---- files ------------------------------------------------------------------------------------
def test_npz_file_round_trip_is_atomic(tmp_path):
    fit = fake_fit("double_exponential", seed=7)
    path = tmp_path / "ln.npz"
    state = to_deepstrf(fit, path=path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ln.npz"]
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == set(state)
    back = from_deepstrf(path, "double_exponential")
    for name, value in posterior_mean(fit).items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)
    assert from_deepstrf(str(path), "double_exponential").keys() == back.keys()


def test_bad_paths(tmp_path, monkeypatch):
    fit = fake_fit("softplus")
    with pytest.raises(ValueError) as error:
        to_deepstrf(fit, path=tmp_path / "ln.pt")
    assert_one_line(error, "path:")
    with pytest.raises(ValueError) as error:
        to_deepstrf(fit, path=tmp_path / "missing" / "ln.npz")
    assert_one_line(error, "path:")
    with pytest.raises(ValueError) as error:
        from_deepstrf(tmp_path / "absent.npz", "softplus")
    assert_one_line(error, "state_dict_or_path:")
    (tmp_path / "ln.json").write_text("{}")
    with pytest.raises(ValueError) as error:
        from_deepstrf(tmp_path / "ln.json", "softplus")
    assert_one_line(error, "state_dict_or_path:")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{WEIGHT: np.array([object()], dtype=object)})
    with pytest.raises(ValueError, match="never unpickles"):
        from_deepstrf(pickled, "softplus")


def test_missing_optional_packages_name_the_path(tmp_path, monkeypatch):
    for module in ("safetensors", "safetensors.numpy", "torch"):
        monkeypatch.setitem(sys.modules, module, None)
    target = tmp_path / "ln.safetensors"
    with pytest.raises(ImportError) as error:
        to_deepstrf(fake_fit("softplus"), path=target)
    assert_one_line(error, "path:")
    assert str(target) in str(error.value) and not target.exists()
    for name in ("ln.safetensors", "ln.pt"):
        (tmp_path / name).write_bytes(b"not read")
        with pytest.raises(ImportError) as error:
            from_deepstrf(tmp_path / name, "softplus")
        assert_one_line(error, "state_dict_or_path:")
        assert name in str(error.value)


def test_safetensors_round_trip(tmp_path):
    pytest.importorskip("safetensors")
    fit = fake_fit("sigmoid", seed=8)
    path = tmp_path / "ln.safetensors"
    to_deepstrf(fit, path=path)
    back = from_deepstrf(path, "sigmoid")
    for name, value in posterior_mean(fit).items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)


# ---- deepSTRF itself (optional: `make test-deepstrf` builds .venv-deepstrf with it) ---------
LIVE = dict(n_neurons=2, n_freq=6, n_lags=4, n_time=1500, n_segments=2)


def live_model(family: str, n_neurons: int, n_freq: int, n_lags: int):
    """deepSTRF's LinearNonlinear with the family's activation, or skip without deepSTRF."""
    pytest.importorskip("torch", reason="the live deepSTRF check needs torch")
    pytest.importorskip("deepSTRF", reason="deepSTRF is not installed (make test-deepstrf)")
    from deepSTRF.models import activations as acts
    from deepSTRF.models.audio.audio_zoo import LinearNonlinear

    module = {"sigmoid": acts.ParametricSigmoid,
              "double_exponential": acts.ParametricDoubleExponential,
              "softplus": acts.ParametricSoftplus}[family]
    return LinearNonlinear(n_frequency_bands=n_freq, temporal_window_size=n_lags,
                           out_neurons=n_neurons, output_activation=module(n_neurons)).eval()


def live_rate(model, specs: list) -> np.ndarray:
    """deepSTRF's prediction (N, T): one segment per forward pass, input (1, 1, F, T)."""
    import torch

    with torch.no_grad():
        return np.concatenate([
            model(torch.from_numpy(np.asarray(spec, np.float32))[None, None])[0, :, 0].numpy()
            for spec in specs], axis=1)


@pytest.mark.parametrize("family", sorted(NAMES))
def test_deepstrf_linear_nonlinear_predicts_the_posterior_mean_rate(family, tmp_path):
    from bayesstrf import fit as fit_model
    from bayesstrf import simulate

    model = live_model(family, LIVE["n_neurons"], LIVE["n_freq"], LIVE["n_lags"])  # or skip
    import torch

    recording = simulate(family, seed=20, **LIVE).recording
    fit = fit_model(recording, family, n_lags=LIVE["n_lags"], chains=1, warmup=20, draws=20,
                    seed=21, progress=False)
    state = to_deepstrf(fit, stat="mean")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    got = live_rate(model, recording.spectrograms)
    expected = bayesstrf_rate(posterior_mean(fit), family, recording.spectrograms)
    assert got.shape == expected.shape == (LIVE["n_neurons"], LIVE["n_time"])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    torch.save(model.state_dict(), tmp_path / "ln.pt")
    back = from_deepstrf(tmp_path / "ln.pt", family)
    for name, value in posterior_mean(fit).items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)


@pytest.mark.parametrize("family", sorted(NAMES))
def test_deepstrf_trained_model_imports_to_the_same_rate(family):
    model = live_model(family, N, F, L)  # or skip
    import torch

    generator = torch.Generator().manual_seed(22)
    with torch.no_grad():  # a trained model: BatchNorm statistics, d and k away from defaults
        for tensor in model.readout.parameters():
            tensor.copy_(tensor + 0.3 * torch.randn(tensor.shape, generator=generator))
        model.readout.bn.running_mean.normal_(0.0, 1.0, generator=generator)
        model.readout.bn.running_var.uniform_(0.2, 3.0, generator=generator)
    values = from_deepstrf(model.state_dict(), family)
    specs = spectrograms(seed=23)
    np.testing.assert_allclose(bayesstrf_rate(values, family, specs), live_rate(model, specs),
                               rtol=2e-5, atol=1e-6)
