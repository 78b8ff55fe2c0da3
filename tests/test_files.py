"""Atomic writes (`bayesstrf.files`): all or nothing, flushed to disk, no temporary left."""

import os

import pytest

from bayesstrf.files import atomic_path, write_text


def test_a_write_replaces_the_file_flushed_and_leaves_no_temporary(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    target = tmp_path / "out.txt"
    target.write_text("old")
    write_text(target, "new é")
    assert target.read_text(encoding="utf-8") == "new é"
    assert len(synced) == 2  # the file, then its folder's entry
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_an_error_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "out.npz"
    target.write_text("old")
    with pytest.raises(OSError, match="disk full"), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".npz" and tmp.name.startswith(".out")
        tmp.write_text("half")
        raise OSError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]


def test_a_missing_folder_is_an_error_before_anything_is_written(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "no" / "out.txt"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_plain_gives_strict_json_types(tmp_path):
    import json

    import numpy as np

    from bayesstrf.files import plain

    value = {"a": np.float32(1.5), 2: [np.nan, np.inf, np.int64(3)], "p": tmp_path,
             "x": np.array([[1, 2]]), "t": (True, None, "s")}
    assert plain(value) == {"a": 1.5, "2": [None, None, 3], "p": str(tmp_path),
                            "x": [[1, 2]], "t": [True, None, "s"]}
    json.dumps(plain(value), allow_nan=False)  # strict JSON: no NaN token
