"""Files: recordings in and fits out, written atomically, read with clear errors.

A fit is a netCDF4 file of the ``xarray.DataTree`` (one netCDF group per ArviZ group),
readable without bayesstrf by ``xarray.open_datatree(path)``. Its root carries
``schema = "bayesstrf.fit/1"``.
"""

from __future__ import annotations

import os
import tempfile
from importlib import metadata
from pathlib import Path

import xarray as xr

from bayesstrf.data.recording import Recording
from bayesstrf.errors import InputError, InputTypeError

FIT_SCHEMA = "bayesstrf.fit/1"


def read_recording(path: str | os.PathLike) -> Recording:
    """Read a recording from the ``.npz`` schema or netCDF (see `bayesstrf.data.recording`)."""
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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".nc")
    os.close(fd)
    try:
        tree.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
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
    if schema != FIT_SCHEMA:
        raise InputError(f"path: {str(path)!r} {_schema_problem(schema)}")
    if "posterior" not in tree.children or "strf" not in tree["posterior"].data_vars:
        raise InputError(
            f"path: {str(path)!r} lacks the group 'posterior' with variable 'strf' that every "
            f"bayesstrf fit holds; found groups {sorted(tree.children)}"
        )
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


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, renamed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
