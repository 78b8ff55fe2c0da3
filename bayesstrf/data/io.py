"""Files: recordings in and fits out, written atomically, read with clear errors.

A fit is a netCDF4 file of the ``xarray.DataTree`` (one netCDF group per ArviZ group),
readable without bayesstrf by ``xarray.open_datatree(path)``. Its root carries
``schema = "bayesstrf.fit/2"``. Per-neuron settings are data, not strings: the group
``constant_data`` (ArviZ's name for a model's fixed inputs) holds ``mean_rate (neuron)``,
``stimulus_mean (freq)``, ``stimulus_scale`` and one variable per prior parameter,
``prior_<site>_<argument> (neuron)``, whose attributes name its site, argument and
distribution (`constant_data`, `prior_description`). Fits of schema 1, which kept these as
JSON in the root's ``hyperparameters`` and ``priors`` attributes, are converted on loading.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

import xarray as xr

from bayesstrf.data.recording import Recording
from bayesstrf.errors import InputError, InputTypeError
from bayesstrf.files import atomic_path

FIT_SCHEMA = "bayesstrf.fit/2"


def read_recording(path: str | os.PathLike) -> Recording:
    """Read a recording from the ``.npz`` schema or netCDF (`bayesstrf.data.recording_files`)."""
    return Recording.load(path)


def save_fit(fit: xr.DataTree, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a fit to netCDF atomically (a temporary file in the same folder, then renamed).

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if not isinstance(fit, xr.DataTree):
        raise InputTypeError(
            f"fit: expected an xarray.DataTree from bayesstrf.fit, found {type(fit).__name__}"
        )
    if "posterior" not in fit.children:
        raise InputError(
            "fit: expected a DataTree with a 'posterior' group, "
            f"found groups {sorted(fit.children)}"
        )
    if path.suffix != ".nc":
        raise InputError(f"path: expected a .nc file name for a fit, found {path.name!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"path: {str(path)!r} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = fit.copy()
    tree.attrs = {**fit.attrs, "schema": FIT_SCHEMA}
    with atomic_path(path) as tmp:
        tree.to_netcdf(tmp, engine="h5netcdf")
    return path


def load_fit(path: str | os.PathLike) -> xr.DataTree:
    """Read a fit written by `save_fit`, fully into memory.

    Raises
    ------
    ValueError
        When the file is missing, unreadable (truncated, corrupt, not netCDF) or of another
        schema version.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"path: expected an existing fit file (.nc), found {str(path)!r}")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            tree = tree.load()
    except Exception as error:  # h5py and h5netcdf raise many types for corrupt files
        message = " ".join(str(error).split())
        raise InputError(
            f"path: cannot read {str(path)!r} as a netCDF fit (truncated or corrupt? {message})"
        ) from None
    schema = tree.attrs.get("schema")
    if schema == "bayesstrf.fit/1":
        try:
            tree, schema = _from_schema_1(tree), FIT_SCHEMA
        except InputError as error:
            raise InputError(f"path: {str(path)!r} {error}") from None
    if schema != FIT_SCHEMA:
        raise InputError(f"path: {str(path)!r} {_schema_problem(schema)}")
    if "posterior" not in tree.children or "strf" not in tree["posterior"].data_vars:
        raise InputError(
            f"path: {str(path)!r} lacks the group 'posterior' with variable 'strf' that every "
            f"bayesstrf fit holds; found groups {sorted(tree.children)}"
        )
    return tree


def constant_data(priors: dict, mean_rate, stimulus_mean, stimulus_scale: float, neurons,
                  freqs) -> xr.Dataset:
    """A fit's ``constant_data`` group: the data-derived hyperparameters and the priors.

    Parameters
    ----------
    priors : dict
        `bayesstrf.model.lnp.describe_priors` of the fit's priors: site -> ``distribution``
        and one list of per-neuron values per argument.
    mean_rate : array (neuron,)
        Mean count per bin of each neuron, over the training bins.
    stimulus_mean : array (freq,)
        The stimulus mean per frequency that the design centred by.
    stimulus_scale : float
        The stimulus scale the design divided by.
    neurons, freqs : array
        Coordinates.
    """
    variables = {
        "mean_rate": xr.DataArray(mean_rate, dims="neuron"),
        "stimulus_mean": xr.DataArray(stimulus_mean, dims="freq"),
        "stimulus_scale": xr.DataArray(float(stimulus_scale)),
    }
    for site, described in priors.items():
        for argument, values in described.items():
            if argument != "distribution":
                variables[f"prior_{site}_{argument}"] = xr.DataArray(
                    values, dims="neuron", attrs={"site": site, "argument": argument,
                                                  "distribution": described["distribution"]})
    return xr.Dataset(variables, coords={"neuron": neurons, "freq": freqs})


def prior_description(constant: xr.Dataset) -> dict:
    """The priors of a fit's ``constant_data`` as `bayesstrf.model.lnp.describe_priors` gives
    them (for `bayesstrf.model.lnp.restore_priors`)."""
    described: dict[str, dict] = {}
    for variable in constant.data_vars.values():
        if "site" in variable.attrs:
            site = described.setdefault(variable.attrs["site"],
                                        {"distribution": variable.attrs["distribution"]})
            site[variable.attrs["argument"]] = variable.values.tolist()
    return described


def _from_schema_1(tree: xr.DataTree) -> xr.DataTree:
    """A schema-1 fit in schema 2: JSON ``hyperparameters`` and ``priors`` attributes become
    the ``constant_data`` group, the JSON ``sampler`` attribute ``sampler_*`` attributes."""
    attrs = dict(tree.attrs)
    missing = [f"attribute {key!r}" for key in ("hyperparameters", "priors", "sampler")
               if key not in attrs] + [f"group {group!r}" for group in ("posterior",)
                                       if group not in tree.children]
    if missing:
        raise InputError(f"has schema 'bayesstrf.fit/1' but lacks its {', '.join(missing)}")
    posterior = tree["posterior"]
    try:
        hyper = json.loads(attrs.pop("hyperparameters"))
        constant = constant_data(
            json.loads(attrs.pop("priors")), hyper["mean_rate"], hyper["stimulus_mean"],
            hyper["stimulus_scale"], posterior["neuron"].values, posterior["freq"].values)
        sampler = {f"sampler_{key}": value
                   for key, value in json.loads(attrs.pop("sampler")).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(f"has schema 'bayesstrf.fit/1' but its settings cannot be read "
                         f"({type(error).__name__}: {error})") from None
    tree = tree.copy()
    tree["constant_data"] = xr.DataTree(constant)
    tree.attrs = attrs | sampler | {"schema": FIT_SCHEMA}
    return tree



def _schema_problem(schema) -> str:
    """Why a fit file's ``schema`` attribute is not one this version reads."""
    name, _, number = str(schema).partition("/")
    current = int(FIT_SCHEMA.partition("/")[2])
    if schema is None or name != FIT_SCHEMA.partition("/")[0]:
        return f"is not a bayesstrf fit: expected schema {FIT_SCHEMA!r}, found {schema!r}"
    if number.isdigit() and int(number) > current:
        return (
            f"has schema {schema!r}, newer than this bayesstrf "
            f"{metadata.version('bayesstrf')} reads ({FIT_SCHEMA!r}): upgrade bayesstrf"
        )
    return f"has schema {schema!r}, incompatible with this bayesstrf's {FIT_SCHEMA!r}"
