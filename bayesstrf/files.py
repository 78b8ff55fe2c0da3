"""Files written atomically: into a temporary file beside the target, flushed to disk, then
renamed over the target, so that a reader, or the file system after a crash, sees the old
file or the new one and never part of one. Every file bayesstrf writes goes through here; so
do the values of the JSON it writes or prints (`plain`)."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """A temporary path in ``path``'s folder to write to: on leaving without an error it is
    flushed to disk (``fsync``) and renamed to ``path``; on an error it is removed and
    ``path`` is left as it was.

    Parameters
    ----------
    path : path-like
        The file to write; its folder must exist.
    suffix : str, optional
        The temporary file's suffix (default: ``path``'s), for writers that choose the
        format by suffix.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                suffix=path.suffix if suffix is None else suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _sync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _sync_folder(folder: Path) -> None:
    """Flush the folder's entry of the renamed file to disk, where the system allows it."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows: folders cannot be opened
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def plain(value):
    """``value`` in JSON types: containers recursively, numpy arrays as lists, numpy scalars as
    Python numbers, NaN and infinities as ``None`` (strict JSON has neither), paths as
    strings."""
    import numpy as np

    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value
