"""Fit files: atomic netCDF round trip, readable by plain xarray, clear errors."""

import json

import numpy as np
import pytest
import xarray as xr

from bayesstrf.data.io import FIT_SCHEMA, load_fit, save_fit


def test_round_trip_and_plain_xarray(tiny_fit, tmp_path):
    path = save_fit(tiny_fit, tmp_path / "fit.nc")
    loaded = load_fit(path)
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data",
                  "constant_data"):
        xr.testing.assert_allclose(loaded[group].to_dataset(), tiny_fit[group].to_dataset())
    xr.testing.assert_identical(loaded["constant_data"].to_dataset(),
                                tiny_fit["constant_data"].to_dataset())
    assert loaded.attrs["schema"] == FIT_SCHEMA
    with xr.open_datatree(path, engine="h5netcdf") as plain:
        assert plain["posterior"]["strf"].dims == ("chain", "draw", "neuron", "freq", "lag")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.nc"]  # no temp file left


def test_existing_file_is_not_overwritten(tiny_fit, tmp_path):
    path = tmp_path / "fit.nc"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_fit(tiny_fit, path)
    assert path.read_bytes() == b"precious"


def test_failed_write_leaves_nothing(tiny_fit, tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", broken)
    with pytest.raises(OSError, match="disk full"):
        save_fit(tiny_fit, tmp_path / "fit.nc")
    assert list(tmp_path.iterdir()) == []


def test_truncated_and_foreign_files_give_clear_errors(tiny_fit, tmp_path):
    path = save_fit(tiny_fit, tmp_path / "fit.nc")
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError, match=r"path: cannot read .*truncated.nc"):
        load_fit(truncated)
    with pytest.raises(ValueError, match=r"path: expected an existing fit file"):
        load_fit(tmp_path / "missing.nc")
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("a", np.arange(3))}).to_netcdf(foreign, engine="h5netcdf")
    with pytest.raises(ValueError, match=r"schema 'bayesstrf.fit/2', found None"):
        load_fit(foreign)
    with pytest.raises(ValueError, match=r"path: expected a .nc file name"):
        save_fit(tiny_fit, tmp_path / "fit.h5")


def schema_1(fit: xr.DataTree) -> xr.DataTree:
    """``fit`` as the previous version wrote it: per-neuron settings as JSON attributes."""
    constant = fit["constant_data"].to_dataset()
    priors: dict = {}
    for variable in constant.data_vars.values():
        if "site" in variable.attrs:
            site = priors.setdefault(variable.attrs["site"],
                                     {"distribution": variable.attrs["distribution"]})
            site[variable.attrs["argument"]] = variable.values.tolist()
    old = fit.copy()
    del old["constant_data"]
    sampler = {k.removeprefix("sampler_"): v for k, v in fit.attrs.items()
               if k.startswith("sampler_")}
    old.attrs = {k: v for k, v in fit.attrs.items() if not k.startswith("sampler_")} | {
        "schema": "bayesstrf.fit/1", "sampler": json.dumps(sampler),
        "priors": json.dumps(priors), "hyperparameters": json.dumps({
            "mean_rate": constant["mean_rate"].values.tolist(),
            "stimulus_mean": constant["stimulus_mean"].values.tolist(),
            "stimulus_scale": float(constant["stimulus_scale"])})}
    return old


def test_a_fit_of_schema_1_loads_as_schema_2(tiny_fit, tmp_path):
    path = tmp_path / "old.nc"
    schema_1(tiny_fit).to_netcdf(path, engine="h5netcdf")
    loaded = load_fit(path)
    assert loaded.attrs["schema"] == FIT_SCHEMA == "bayesstrf.fit/2"
    assert not {"priors", "hyperparameters", "sampler"} & set(loaded.attrs)
    assert loaded.attrs["sampler_warmup"] == tiny_fit.attrs["sampler_warmup"]
    xr.testing.assert_allclose(loaded["constant_data"].to_dataset(),
                               tiny_fit["constant_data"].to_dataset())
    for variable in tiny_fit["constant_data"].data_vars:
        assert loaded["constant_data"][variable].attrs == tiny_fit["constant_data"][variable].attrs


def test_a_broken_schema_1_fit_names_what_it_lacks(tiny_fit, tmp_path):
    old = schema_1(tiny_fit)
    del old.attrs["priors"]
    old.to_netcdf(tmp_path / "old.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match=r"fit/1' but lacks its attribute 'priors'"):
        load_fit(tmp_path / "old.nc")
    old = schema_1(tiny_fit)
    old.attrs["hyperparameters"] = "{not json"
    old.to_netcdf(tmp_path / "bad.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match=r"fit/1' but its settings cannot be read \(JSONDecodeErr"):
        load_fit(tmp_path / "bad.nc")
