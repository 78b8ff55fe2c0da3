"""Checkpoints: chunked and resumed fits give the draws of one uninterrupted fit; a fit killed
with SIGKILL or stopped with Ctrl-C (SIGINT) resumes from its last checkpoint."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bayesstrf import Recording, fit
from bayesstrf.cli.main import main
from bayesstrf.data.io import load_fit

SETTINGS = dict(n_lags=3, chains=1, warmup=30, draws=1500, seed=5, progress=False)
CLI = ["--lags", "3", "--chains", "1", "--warmup", "30", "--draws", "1500", "--seed", "5",
       "--quiet", "--chain-method", "sequential"]


@pytest.fixture(scope="module")
def recording_path(tmp_path_factory, tiny_simulation):
    path = tmp_path_factory.mktemp("checkpoint") / "rec.npz"
    tiny_simulation.recording.select_neurons([0]).save(path)
    return path


@pytest.fixture(scope="module")
def uninterrupted(recording_path):
    return fit(Recording.load(recording_path), "softplus", **SETTINGS)


def same_draws(a, b) -> None:
    for group in ("posterior", "sample_stats"):
        for name, values in a[group].data_vars.items():
            np.testing.assert_array_equal(values.values, b[group][name].values, err_msg=name)


def test_chunked_fit_and_finished_checkpoint_give_identical_draws(recording_path,
                                                                  uninterrupted, tmp_path):
    recording = Recording.load(recording_path)
    path = tmp_path / "run.ckpt.npz"
    chunked = fit(recording, "softplus", checkpoint=path, checkpoint_every=100, **SETTINGS)
    same_draws(chunked, uninterrupted)
    again = fit(recording, "softplus", checkpoint=path, checkpoint_every=100, **SETTINGS)
    same_draws(again, uninterrupted)  # a finished checkpoint is returned, not resampled
    with pytest.raises(ValueError, match=r"checkpoint: .* was written for another fit"):
        fit(recording, "softplus", checkpoint=path, **{**SETTINGS, "seed": 6})
    with pytest.raises(ValueError, match=r"checkpoint: .* was written for another fit"):
        fit(recording, "softplus", checkpoint=path, drive="conv", **SETTINGS)  # lag matrix
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"checkpoint: expected a bayesstrf checkpoint"):
        fit(recording, "softplus", checkpoint=tmp_path / "junk.npz", **SETTINGS)


def draws_saved(path) -> int:
    try:
        with np.load(path) as data:
            return int(data["draws_done"])
    except (OSError, ValueError, KeyError, EOFError):
        return -1


def interrupt_mid_sampling(recording_path, out, sig) -> tuple[int, str]:
    """Start `bayesstrf fit` with checkpoints every 15 draws; send ``sig`` once one chunk of
    draws is saved and before the last chunk starts. Returns the exit status and stderr."""
    checkpoint = out.with_name(out.name + ".ckpt.npz")
    process = subprocess.Popen(
        [sys.executable, "-m", "bayesstrf.cli.main", "fit", str(recording_path), "--out", str(out),
         "--checkpoint-every", "15", *CLI], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    deadline = time.monotonic() + 300
    while not 15 <= draws_saved(checkpoint) < 1485:
        assert process.poll() is None, "fit ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(process.pid, sig)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def test_sigkill_then_resume_gives_the_uninterrupted_draws(recording_path, uninterrupted,
                                                           tmp_path):
    out = tmp_path / "fit.nc"
    status, _ = interrupt_mid_sampling(recording_path, out, signal.SIGKILL)
    assert status == -signal.SIGKILL and not out.exists()
    assert main(["fit", str(recording_path), "--out", str(out), "--resume", *CLI]) == 0
    same_draws(load_fit(out), uninterrupted)


def test_sigint_stops_cleanly_and_keeps_a_usable_checkpoint(recording_path, uninterrupted,
                                                             tmp_path):
    out = tmp_path / "fit.nc"
    status, stderr = interrupt_mid_sampling(recording_path, out, signal.SIGINT)
    assert status == 130, stderr
    assert "continue with --resume" in stderr and "Traceback" not in stderr
    assert not out.exists()
    assert main(["fit", str(recording_path), "--out", str(out), *CLI]) == 2  # kept, not lost
    assert main(["fit", str(recording_path), "--out", str(out), "--resume", *CLI]) == 0
    same_draws(load_fit(out), uninterrupted)


def test_the_file_format_names_itself_as_before():
    """Checkpoints written by earlier versions (same format) keep resuming: the format tag is
    data written into every file, not a module path, and moved with no module."""
    from bayesstrf.inference.checkpoint import SCHEMA

    assert SCHEMA == "bayesstrf.checkpoint/2"
