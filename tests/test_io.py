"""Fit files: atomic netCDF round trip, readable by plain xarray, clear errors."""

import numpy as np
import pytest
import xarray as xr

from bayesstrf.data.io import FIT_SCHEMA, load_fit, save_fit


def test_round_trip_and_plain_xarray(tiny_fit, tmp_path):
    path = save_fit(tiny_fit, tmp_path / "fit.nc")
    loaded = load_fit(path)
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data"):
        xr.testing.assert_allclose(loaded[group].to_dataset(), tiny_fit[group].to_dataset())
    assert loaded.attrs["schema"] == FIT_SCHEMA
    assert loaded.attrs["priors"] == tiny_fit.attrs["priors"]
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
    with pytest.raises(ValueError, match=r"schema 'bayesstrf.fit/1', found None"):
        load_fit(foreign)
    with pytest.raises(ValueError, match=r"path: expected a .nc file name"):
        save_fit(tiny_fit, tmp_path / "fit.h5")
