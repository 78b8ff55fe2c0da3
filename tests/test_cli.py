"""Command line at tiny sizes: outputs, --json and --quiet, exit codes, one-line errors, no
overwrite."""

import contextlib
import hashlib
import io
import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayesstrf import Recording, simulate
from bayesstrf.cli.main import main
from bayesstrf.data.io import load_fit
from bayesstrf.errors import InputError
from bayesstrf.evaluation.diagnostics import diagnose

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
    # the command that wrote it, from the command line itself (the library reads no sys.argv)
    assert tree.attrs["command_line"] == shlex.join(
        ["bayesstrf", "fit", str(data), "--activation", "sigmoid", "--strf", "lowrank:2",
         "--out", str(out), *SAMPLER])


@pytest.fixture(scope="module")
def json_fit(data, tmp_path_factory):
    """``fit --json --quiet`` (seed 4, 30 draws as PSIS-LOO needs): the fit file and what went
    to stdout and stderr."""
    out = tmp_path_factory.mktemp("fit") / "fit.nc"
    stdout, stderr = io.StringIO(), io.StringIO()
    argv = ["fit", str(data), "--out", str(out), "--seed", "4", "--json", *SAMPLER,
            "--draws", "30"]
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    assert code == 0, stderr.getvalue()
    return out, stdout.getvalue(), stderr.getvalue()


def test_same_seed_gives_identical_draws_through_cli_and_api(data, json_fit):
    from bayesstrf import fit

    api = fit(Recording.load(data), "softplus", n_lags=3, chains=1, warmup=20, draws=30,
              seed=4, progress=False)
    np.testing.assert_array_equal(load_fit(json_fit[0])["posterior"]["strf"],
                                  api["posterior"]["strf"])


def same(a, b) -> bool:
    """JSON value ``a`` equals ``b``, NaN written as null."""
    return a is None and math.isnan(b) if isinstance(b, float) and math.isnan(b) else a == b


def test_fit_json_matches_the_fit_file(data, json_fit):
    out, stdout, stderr = json_fit
    assert stderr == ""  # --quiet
    record = json.loads(stdout)  # stdout holds the JSON object and nothing else
    tree = load_fit(out)
    assert record["command"] == "fit" and record["out"] == str(out)
    assert record["data"] == str(data) and record["checkpoint"] is None
    assert record["bytes"] == out.stat().st_size
    assert record["input_sha256"] == tree.attrs["input_sha256"]
    assert record["activation"] == tree.attrs["activation"] == "softplus"
    assert record["strf_prior"] == json.loads(tree.attrs["strf_prior"])
    assert record["sampler"] == {name.removeprefix("sampler_"): value for name, value
                                 in tree.attrs.items() if name.startswith("sampler_")}
    assert record["sampler"]["chains"] == 1 and record["sampler"]["draws"] == 30
    assert record["seed"] == 4 and record["n_lags"] == 3
    seconds = {k: float(tree.attrs[f"{k}_seconds"]) for k in ("map", "warmup", "sampling")}
    assert {k: record["seconds"][k] for k in seconds} == seconds
    assert record["seconds"]["total"] == pytest.approx(sum(seconds.values()))
    report = diagnose(tree)
    got = record["diagnostics"]
    assert got["divergences"] == report.divergences
    assert got["tree_depth_saturated"] == report.saturated
    assert got["warnings"] == report.warnings and got["ok"] == report.ok
    assert list(got["neurons"]) == [str(n) for n in report.table.index]
    for neuron, row in report.table.iterrows():
        for column in ("max_rhat", "min_ess_bulk", "min_ess_tail"):
            assert same(got["neurons"][str(neuron)][column], row[column]), (neuron, column)


def test_simulate_json_and_quiet(tmp_path, capfd):
    out = tmp_path / "sim.npz"
    assert main(["simulate", "--out", str(out), *TINY, "--trials", "2", "--json", "--quiet"]) == 0
    captured = capfd.readouterr()
    assert captured.err == ""
    record = json.loads(captured.out)
    recording = Recording.load(out)
    assert record["command"] == "simulate" and record["out"] == str(out)
    assert record["bytes"] == out.stat().st_size
    assert (record["neurons"], record["freqs"], record["segments"], record["bins"]) == (
        recording.n_neurons, recording.n_freq, recording.n_segments, recording.n_time)
    assert record["segment_bins"] == [200, 200] and record["trials"] == [2, 2]
    assert record["lags"] == 3 and record["dt"] == recording.dt


def test_simulate_writes_its_truth_beside_the_recording(tmp_path):
    out = tmp_path / "sim.npz"
    assert main(["simulate", "--out", str(out), *TINY, "--activation", "sigmoid",
                 "--drive-sd", "0.5", "--seed", "4"]) == 0
    truth = json.loads((tmp_path / "sim.npz.truth.json").read_text())
    assert truth["activation"] == "sigmoid" and truth["drive_sd"] == 0.5
    sim = simulate("sigmoid", n_neurons=1, n_freq=4, n_lags=3, n_time=400, n_segments=2,
                   drive_sd=0.5, seed=4)
    np.testing.assert_allclose(truth["parameters"]["strf"], sim.truth["strf"])
    # the truth is an output too: kept without --force
    assert main(["simulate", "--out", str(out), *TINY]) == 2


def test_simulate_without_json_prints_the_result_on_stdout(tmp_path, capsys):
    out = tmp_path / "sim.npz"
    assert main(["simulate", "--out", str(out), *TINY]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"wrote {out}: Recording(") and captured.err == ""
    assert f"its truth (softplus) in {out}.truth.json" in captured.out


@pytest.fixture
def compared(data, json_fit, tmp_path, monkeypatch):
    """``compare`` through the command line without sampling: every family's "fit" is the
    softplus fit of ``json_fit`` (the comparison of equal models is still a comparison)."""
    import bayesstrf.evaluation.comparison

    monkeypatch.setattr(bayesstrf.evaluation.comparison, "fit_model",
                        lambda recording, activation, **kwargs: load_fit(json_fit[0]))

    def run(*options):
        out = tmp_path / "results"
        sampler = [option for option in SAMPLER if option != "--quiet"]
        argv = ["compare", str(data), "--out", str(out), "--activations", "sigmoid",
                "softplus", *sampler, "--force", *options]
        return main(argv), out
    return run


def test_compare_json(compared, capfd):
    code, out = compared("--json")
    captured = capfd.readouterr()
    assert code == 0, captured.err
    record = json.loads(captured.out)
    assert record["command"] == "compare" and record["out"] == str(out)
    assert record["fits"] == {f: str(out / f"fit_{f}.nc") for f in ("sigmoid", "softplus")}
    assert record["report"] == str(out / "report.html")
    for path in [*record["fits"].values(), record["report"], *record["outputs"]]:
        assert Path(path).is_file() and Path(path).parent == out, path
    assert record["method"].startswith("PSIS-LOO")
    assert {row["model"] for row in record["table"]} == {"sigmoid", "softplus"}
    assert all({"elpd", "se", "elpd_diff", "weight"} <= set(row) for row in record["table"])
    assert {(row["neuron"], row["model"]) for row in record["per_neuron"]} == {
        (n, m) for n in ("n0",) for m in ("sigmoid", "softplus")}
    assert set(record["diagnostics"]) == set(record["seconds"]) == {"sigmoid", "softplus"}
    # without --quiet: one line per family started and finished on stderr, and stdout is JSON
    lines = captured.err.splitlines()
    for i, family in enumerate(("sigmoid", "softplus"), 1):
        assert f"fitting {family} ({i} of 2)" in lines
        assert any(line.startswith(f"fitted {family} ({i} of 2) in ") for line in lines)
    assert any(line.startswith("method: PSIS-LOO") for line in lines)  # the result: stderr
    assert any(line.startswith("verdict: ranked first: ") for line in lines)
    # the data were simulated by `bayesstrf simulate`: their truth is stated beside the ranking
    assert record["simulated_with"] == "softplus" and record["verdict"].startswith("ranked first")
    assert any(line.startswith("truth: simulated with softplus") for line in lines)
    assert f"report: {out / 'report.html'}" in lines


def test_compare_quiet_then_report_json(compared, capfd):
    code, out = compared("--quiet")
    captured = capfd.readouterr()
    assert code == 0 and captured.err == ""
    assert "r_hat" in captured.out and "report: " in captured.out
    assert main(["report", str(out), "--json", "--quiet"]) == 0
    captured = capfd.readouterr()
    record = json.loads(captured.out)
    assert captured.err == ""
    assert record["command"] == "report" and record["report"] == str(out / "report.html")
    assert record["fits"] == {f: str(out / f"fit_{f}.nc") for f in ("sigmoid", "softplus")}
    assert {row["model"] for row in record["table"]} == {"sigmoid", "softplus"}


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
    result = subprocess.run([sys.executable, "-m", "bayesstrf.cli.main", "--help"],
                            capture_output=True, text=True, check=True)
    assert "simulate" in result.stdout and "compare" in result.stdout
    assert "exit codes:" in result.stdout


@pytest.mark.parametrize("command", ["simulate", "fit", "compare", "report"])
def test_help_documents_options_and_exit_codes(command, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "--quiet" in text and "--json" in text
    for code in ("0 ", "2 ", "130", "1 "):
        assert f"\n  {code}" in text


@pytest.mark.parametrize("argv", [
    ["simulate"],  # --out missing
    ["simulate", "--out", "x.npz", "--neurons", "two"],
    ["fit", "data.npz", "--out", "f.nc", "--verbose"],
    ["frobnicate"],
])
def test_usage_errors_exit_2_in_one_line(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("bayesstrf")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("error", "code"), [
    (KeyboardInterrupt(), 130),
    (RuntimeError("boom"), 1),
    (ImportError("needs pynwb (pip install bayesstrf[nwb])"), 1),
    (InputError("neurons: expected a positive integer, found 0"), 2),
    (PermissionError("--out: permission denied"), 2),
    (ValueError("operands could not be broadcast together"), 1),  # not an input check: a bug
    (TypeError("unsupported operand"), 1),
])
def test_exit_codes(error, code, tmp_path, monkeypatch, capsys):
    import bayesstrf.model.simulation

    def fail(*args, **kwargs):
        raise error
    monkeypatch.setattr(bayesstrf.model.simulation, "simulate", fail)
    assert main(["simulate", "--out", str(tmp_path / "sim.npz"), "--json"]) == code
    captured = capsys.readouterr()
    assert captured.out == ""  # no JSON without a result
    if code == 1 and not isinstance(error, ImportError):  # a bug: the traceback, one line
        assert "Traceback" in captured.err and f"{type(error).__name__}: {error}" in captured.err
        assert "unexpected error" in captured.err.splitlines()[-1]
    elif code in (1, 2):
        assert captured.err.strip() == f"bayesstrf simulate: error: {error}"


def test_fit_passes_pooling_and_refuses_scheduler_with_checkpoints(data, json_fit, tmp_path,
                                                                    monkeypatch, capsys):
    import bayesstrf.inference.fit

    seen = {}

    def fake_fit(recording, activation, **kwargs):
        seen.update(kwargs)
        return load_fit(json_fit[0])

    monkeypatch.setattr(bayesstrf.inference.fit, "fit", fake_fit)
    out = tmp_path / "pooled.nc"
    assert main(["fit", str(data), "--out", str(out), "--pooling", "activation",
                 *SAMPLER]) == 0
    assert seen["pooling"] == "activation" and out.is_file()
    assert main(["fit", str(data), "--out", str(out), "--force", *SAMPLER]) == 0
    assert seen["pooling"] is None
    capsys.readouterr()
    code = main(["fit", str(data), "--out", str(tmp_path / "d.nc"), "--scheduler",
                 "tcp://127.0.0.1:1", "--checkpoint-every", "10", *SAMPLER])
    assert code == 2
    assert capsys.readouterr().err.startswith("bayesstrf fit: error: --scheduler: expected")
