"""Command line at tiny sizes: outputs, exit codes, one-line errors, no overwrite."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from bayesstrf import Recording
from bayesstrf.cli import main
from bayesstrf.io import load_fit

TINY = ["--neurons", "1", "--freqs", "4", "--lags", "3", "--time", "400", "--segments", "2"]
SAMPLER = ["--lags", "3", "--chains", "1", "--warmup", "20", "--draws", "10", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "sim.npz"
    assert main(["simulate", "--out", str(path), *TINY]) == 0
    return path


def test_simulate_writes_a_loadable_recording(data):
    recording = Recording.load(data)
    assert recording.n_neurons == 1 and recording.n_freq == 4 and recording.n_segments == 2


def test_fit_writes_a_fit_and_prints_diagnostics(data, tmp_path, capsys):
    out = tmp_path / "fit.nc"
    assert main(["fit", str(data), "--activation", "sigmoid", "--strf", "lowrank:2", "--out",
                 str(out), *SAMPLER]) == 0
    printed = capsys.readouterr().out
    assert "max_rhat" in printed and f"wrote {out}" in printed
    tree = load_fit(out)
    assert tree.attrs["activation"] == "sigmoid"
    assert json.loads(tree.attrs["strf_prior"]) == {"name": "lowrank", "rank": 2,
                                                    "factors": "ridge", "drive_scale": 1.0}
    assert tree["posterior"]["strf"].shape == (1, 10, 1, 4, 3)
    assert tree["posterior"]["gain"].shape == (1, 10, 1, 2)
    assert tree.attrs["input_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()


def test_same_seed_gives_identical_draws_through_cli_and_api(data, tmp_path):
    from bayesstrf import fit

    out = tmp_path / "fit.nc"
    assert main(["fit", str(data), "--out", str(out), "--seed", "4", *SAMPLER]) == 0
    api = fit(Recording.load(data), "softplus", n_lags=3, chains=1, warmup=20, draws=10,
              seed=4, progress=False)
    np.testing.assert_array_equal(load_fit(out)["posterior"]["strf"], api["posterior"]["strf"])


def test_existing_output_is_kept_without_force(data, tmp_path, capsys):
    out = tmp_path / "fit.nc"
    out.write_text("keep me")
    assert main(["fit", str(data), "--out", str(out), *SAMPLER]) == 2
    err = capsys.readouterr().err.strip()
    assert "--force" in err and len(err.splitlines()) == 1
    assert out.read_text() == "keep me"


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["--activation", "softplux"], "did you mean 'softplus'"),
        (["--chains", "0"], "chains: expected a positive integer"),
        (["--strf", "lasso"], "strf: expected one of"),
    ],
)
def test_bad_input_is_one_line_exit_2(data, tmp_path, capsys, argv, pattern):
    out = tmp_path / "fit.nc"
    code = main(["fit", str(data), "--out", str(out), *SAMPLER, *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and pattern in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_unreadable_data_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    assert main(["fit", str(bad), "--out", str(tmp_path / "f.nc"), *SAMPLER]) == 2
    assert "path: " in capsys.readouterr().err


def test_console_script_help_runs():
    result = subprocess.run([sys.executable, "-m", "bayesstrf.cli", "--help"],
                            capture_output=True, text=True, check=True)
    assert "simulate" in result.stdout and "compare" in result.stdout
