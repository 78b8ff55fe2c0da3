"""Malformed input, end to end, as a new user would meet it: through the Python API and the CLI.

Every row of `CASES` is one mistake. Its API path must raise a ValueError or TypeError whose
message is one line naming the offending argument or field; its CLI path (`bayesstrf.cli.main.main`)
must return 2 with exactly that kind of line on stderr, no traceback, and write nothing (no
output file, no temporary file). Validation must refuse the input before any sampling: the
`no_sampling` fixture makes sampling itself an error, so every case stays fast.

Recording-level mistakes are written to a file with `np.savez` (bypassing `Recording.save`'s
validation) for the CLI. Malformed fit files are made from a small synthetic tree, never from
a real fit. The `Recording` constructor's own table lives in tests/test_data.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpyro.distributions as dist
import pytest
import xarray as xr

import bayesstrf.inference.warmup
from bayesstrf import Recording, fit
from bayesstrf.cli.main import main
from bayesstrf.data.io import load_fit, read_recording, save_fit
from bayesstrf.data.recording_files import SCHEMA

F, T, LAGS = 3, 30, 3
SAMPLER = dict(n_lags=LAGS, chains=1, warmup=20, draws=10, progress=False)
CLI_SAMPLER = ["--lags", str(LAGS), "--chains", "1", "--warmup", "20", "--draws", "10",
               "--quiet"]


@pytest.fixture(autouse=True)
def no_sampling(monkeypatch):
    """Every case must be refused before the MAP search, i.e. before any sampling."""

    def refuse(*args, **kwargs):
        raise AssertionError("validation let the input through: the MAP search started")

    monkeypatch.setattr(bayesstrf.inference.warmup, "find_map", refuse)


# --- valid parts and file writers --------------------------------------------------------------


def parts(n_segments=2):
    """Valid arrays of a tiny recording: spectrograms (F, T) and counts (1, 2, T) per segment."""
    rng = np.random.default_rng(0)
    specs = [rng.normal(size=(F, T)) for _ in range(n_segments)]
    counts = [rng.poisson(1.0, size=(1, 2, T)).astype(float) for _ in range(n_segments)]
    return specs, counts


def npz_content(specs=None, counts=None, **keys) -> dict:
    """The ``.npz`` schema's arrays for ``specs``/``counts`` (default: `parts`), ``keys``
    replacing (or, when None, removing) entries."""
    default_specs, default_counts = parts()
    specs = default_specs if specs is None else specs
    counts = default_counts if counts is None else counts
    content = {
        "schema": np.array(SCHEMA), "dt": np.array(0.01), "freqs": np.arange(F, dtype=float),
        "neuron_ids": np.array(["n0"]),
        "segment_ids": np.array([f"s{i}" for i in range(len(specs))]),
    }
    for i, (spec, count) in enumerate(zip(specs, counts, strict=True)):
        content[f"spectrogram_{i}"] = np.asarray(spec)
        content[f"counts_{i}"] = np.asarray(count)
    content.update(keys)
    return {key: value for key, value in content.items() if value is not None}


def write_npz(path: Path, **content) -> Path:
    np.savez(path, **npz_content(**content))
    return path


def valid_file(tmp_path: Path) -> Path:
    return Recording(*parts(), 0.01).save(tmp_path / "rec.npz")


class Unpickled:
    """Unpickling this object creates the file ``sentinel``: proof that a loader unpickled."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return (Path.touch, (self.sentinel,))


def fake_fit(schema: str | None = None, groups=("posterior", "sample_stats",
                                               "log_likelihood", "observed_data")):
    """A small DataTree with the fit's groups (no sampling), ``schema`` (when given) in the root
    attrs; `save_fit` stamps the current one."""
    dims = ("chain", "draw", "neuron", "freq", "lag")
    content = {
        "posterior": xr.Dataset({"strf": (dims, np.zeros((1, 4, 1, F, LAGS)))}),
        "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), np.zeros((1, 4), bool))}),
        "log_likelihood": xr.Dataset(
            {"counts": (("chain", "draw", "neuron", "segment"), np.zeros((1, 4, 1, 2)))}
        ),
        "observed_data": xr.Dataset({"counts": (("neuron", "trial", "time"), np.zeros((1, 2, T)))}),
    }
    tree = xr.DataTree.from_dict({f"/{g}": content[g] for g in groups})
    if schema is not None:
        tree.attrs["schema"] = schema
    return tree


def write_fit(path: Path, kind: str) -> Path:
    """A malformed fit file of ``kind``."""
    if kind in ("newer-schema", "foreign-schema"):
        schema = "bayesstrf.fit/3" if kind == "newer-schema" else None
        fake_fit(schema).to_netcdf(path, engine="h5netcdf")
        return path
    if kind == "no-posterior":  # save_fit refuses to write it: written as another tool might
        fake_fit("bayesstrf.fit/2", groups=("sample_stats", "log_likelihood", "observed_data")
                 ).to_netcdf(path, engine="h5netcdf")
        return path
    good = save_fit(fake_fit(), path).read_bytes()
    if kind == "truncated":
        data = good[: len(good) // 2]
    elif kind == "corrupt-header":
        data = bytes(range(64)) + good[64:]
    elif kind == "text":
        data = b"posterior,strf\n1,2\n"
    else:
        raise AssertionError(kind)
    path.write_bytes(data)
    return path


def report_folder(tmp_path: Path, kind: str) -> Path:
    """A folder as 'bayesstrf compare' writes it, whose two fits are malformed by ``kind``."""
    folder = tmp_path / "results"
    folder.mkdir()
    Recording(*parts(), 0.01).save(folder / "train.npz")
    for family in ("sigmoid", "softplus"):
        write_fit(folder / f"fit_{family}.nc", kind)
    return folder


# --- the table ---------------------------------------------------------------------------------


class Case(NamedTuple):
    id: str
    pattern: str  # regex the one-line message must match (names the field)
    api: Callable[[Path], object] | None  # raises for the API path
    cli: Callable[[Path], tuple[list[str], Path]] | None  # -> (argv, output that must not exist)


def recording_case(id, pattern, n_lags=LAGS, **content) -> Case:
    """A malformed recording: the API builds it and fits; the CLI fits it from an .npz."""

    def api(tmp_path):
        data = npz_content(**content)
        n = len(data["segment_ids"])
        recording = Recording([data[f"spectrogram_{i}"] for i in range(n)],
                              [data[f"counts_{i}"] for i in range(n)], data["dt"].item(),
                              freqs=data["freqs"], neuron_ids=data["neuron_ids"],
                              segment_ids=data["segment_ids"])
        fit(recording, **(SAMPLER | {"n_lags": n_lags}))

    def cli(tmp_path):
        data = write_npz(tmp_path / "rec.npz", **content)
        out = tmp_path / "fit.nc"
        return ["fit", str(data), "--out", str(out), *CLI_SAMPLER, "--lags", str(n_lags)], out

    return Case(id, pattern, api, cli)


def file_case(id, pattern, make: Callable[[Path], Path]) -> Case:
    """A recording file that cannot be read: `read_recording` and ``bayesstrf fit`` refuse it."""

    def api(tmp_path):
        read_recording(make(tmp_path))

    def cli(tmp_path):
        out = tmp_path / "fit.nc"
        return ["fit", str(make(tmp_path)), "--out", str(out), *CLI_SAMPLER], out

    return Case(id, pattern, api, cli)


def argument_case(id, pattern, api_kwargs: dict | None, cli_args: list[str] | None) -> Case:
    """A bad `fit` argument on valid data (None: that path has no such argument)."""

    def api(tmp_path):
        fit(Recording(*parts(), 0.01), **(SAMPLER | api_kwargs))

    def cli(tmp_path):
        out = tmp_path / "fit.nc"
        return ["fit", str(valid_file(tmp_path)), "--out", str(out), *CLI_SAMPLER,
                *cli_args], out

    return Case(id, pattern, api if api_kwargs is not None else None,
                cli if cli_args is not None else None)


def output_case(id, pattern, out_name: str, command: str = "fit") -> Case:
    """A bad --out for the CLI (the API equivalent is `save_fit` / `Recording.save`)."""

    def cli(tmp_path):
        (tmp_path / "taken").write_text("a file, not a folder")
        out = tmp_path / out_name
        if command == "fit":
            return ["fit", str(valid_file(tmp_path)), "--out", str(out), *CLI_SAMPLER], out
        return ["simulate", "--out", str(out), "--time", "60", "--freqs", "3", "--lags", "3"], out

    return Case(id, pattern, None, cli)


def fit_file_case(id, pattern, kind: str) -> Case:
    """A malformed fit file: `load_fit` and ``bayesstrf report`` refuse it."""

    def api(tmp_path):
        load_fit(write_fit(tmp_path / "fit.nc", kind))

    def cli(tmp_path):
        folder = report_folder(tmp_path, kind)
        return ["report", str(folder)], folder / "report.html"

    return Case(id, pattern, api, cli)


def spec_with(value, index=(1, 4)):
    specs, _ = parts()
    specs[0][index] = value
    return specs


def counts_with(value, index=(0, 1, 7)):
    _, counts = parts()
    counts[1][index] = value
    return counts


def pickled_npz(tmp_path):
    sentinel = tmp_path / "unpickled"
    path = tmp_path / "evil.npz"
    content = npz_content()
    content["counts_0"] = np.array([Unpickled(sentinel)], dtype=object)
    np.savez(path, allow_pickle=True, **content)
    return path


def text_named_npz(tmp_path):
    path = tmp_path / "rec.npz"
    path.write_text("freq,time,value\n0,0,1.5\n")
    return path


def truncated_npz(tmp_path):
    good = valid_file(tmp_path).read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(good[: len(good) // 2])
    return path


def csv_file(tmp_path):
    path = tmp_path / "rec.csv"
    path.write_text("1,2\n")
    return path


def directory_npz(tmp_path):
    path = tmp_path / "folder.npz"
    path.mkdir()
    return path


def fit_as_recording(tmp_path):
    return save_fit(fake_fit(), tmp_path / "a_fit.nc")


def text_named_nc(tmp_path):
    path = tmp_path / "rec.nc"
    path.write_text("not netCDF")
    return path


def short_segment():
    specs, counts = parts()
    return [specs[0], specs[1][:, :5]], [counts[0], counts[1][..., :5]]


def empty_segment():
    specs, counts = parts()
    return [specs[0], specs[1][:, :0]], [counts[0], counts[1][..., :0]]


_short_specs, _short_counts = short_segment()
_empty_specs, _empty_counts = empty_segment()
_specs, _counts = parts()
FIELD = r"(\[\d\])?"  # "spectrogram" or "spectrogram[1]"

CASES = [
    # -- recordings: values ---------------------------------------------------------------------
    recording_case("spec-nan", rf"spectrogram{FIELD}: expected finite values, found NaN",
                   specs=spec_with(np.nan)),
    recording_case("spec-inf", rf"spectrogram{FIELD}: expected finite values, found NaN/Inf",
                   specs=spec_with(np.inf)),
    recording_case("spec-beyond-float32", rf"spectrogram{FIELD}: expected values within",
                   specs=spec_with(1e39)),
    recording_case("counts-negative", rf"counts{FIELD}: expected non-negative counts",
                   counts=counts_with(-1.0)),
    recording_case("counts-fractional", rf"counts{FIELD}: expected integer spike counts.*0\.5",
                   counts=counts_with(0.5)),
    recording_case("counts-huge", rf"counts{FIELD}: expected counts of at most",
                   counts=counts_with(1e12)),
    recording_case("counts-inf", rf"counts{FIELD}: expected finite counts",
                   counts=counts_with(np.inf)),
    # -- recordings: shapes and dtypes ------------------------------------------------------------
    recording_case("spec-transposed", r"counts\[0\]: expected 3 time bins like spectrogram",
                   specs=[s.T for s in _specs]),
    recording_case("counts-without-trial-axis", r"counts\[0\]: expected a 3-D array",
                   counts=[c[:, 0] for c in _counts]),
    recording_case("spec-1d", r"spectrogram\[0\]: expected a 2-D array",
                   specs=[s[0] for s in _specs]),
    recording_case("counts-time-mismatch", r"counts\[1\]: expected 30 time bins.*found 29",
                   counts=[_counts[0], _counts[1][..., :29]]),
    recording_case("freqs-mismatch-between-segments",
                   r"spectrogram\[1\]: expected 3 frequency rows like segment 0, found 2",
                   specs=[_specs[0], _specs[1][:2]]),
    recording_case("segment-empty", r"spectrogram\[1\]: expected frequency rows and time bins",
                   specs=_empty_specs, counts=_empty_counts),
    recording_case("segment-shorter-than-lags", r"n_lags: expected every segment .*5 bins",
                   n_lags=12, specs=_short_specs, counts=_short_counts),
    recording_case("spec-strings", r"spectrogram\[0\]: expected a real numeric array",
                   specs=[s.astype(str) for s in _specs]),
    recording_case("counts-complex", r"counts\[1\]: expected a real numeric array",
                   counts=[_counts[0], _counts[1].astype(complex)]),
    recording_case("dt-zero", r"dt: expected a bin width in seconds > 0, found 0\.0",
                   dt=np.array(0.0)),
    recording_case("freqs-too-few", r"freqs: expected 3 finite values, found shape \(2,\)",
                   freqs=np.array([1.0, 2.0])),
    # -- recording files ---------------------------------------------------------------------------
    file_case("file-missing", r"path: expected an existing .npz or .nc file",
              lambda tmp_path: tmp_path / "missing.npz"),
    file_case("file-is-a-directory", r"path: expected an existing .npz or .nc file",
              directory_npz),
    file_case("file-text-named-npz", r"path: cannot read .*rec\.npz' as \.npz", text_named_npz),
    file_case("file-truncated-npz", r"path: .*cut\.npz", truncated_npz),
    file_case("file-pickled-object-array", r"path: .*evil\.npz.*never unpickles", pickled_npz),
    file_case("file-newer-recording-schema",
              r"path: expected schema 'bayesstrf\.recording/1'.*'bayesstrf\.recording/2'",
              lambda tmp_path: write_npz(tmp_path / "r.npz",
                                         schema=np.array("bayesstrf.recording/2"))),
    file_case("file-missing-key", r"path: r\.npz lacks the keys \['counts_1'\]",
              lambda tmp_path: write_npz(tmp_path / "r.npz", counts_1=None)),
    file_case("file-extra-segment-key", r"path: r\.npz holds keys .*'spectrogram_2'",
              lambda tmp_path: write_npz(tmp_path / "r.npz", spectrogram_2=np.zeros((F, T)),
                                         counts_2=np.zeros((1, 1, T)))),
    file_case("file-dt-not-a-number", r"dt: expected a bin width in seconds.*'fast'",
              lambda tmp_path: write_npz(tmp_path / "r.npz", dt=np.array("fast"))),
    file_case("file-dt-array", r"dt: expected a bin width in seconds.*shape \(2,\)",
              lambda tmp_path: write_npz(tmp_path / "r.npz", dt=np.array([0.01, 0.02]))),
    file_case("file-segment-ids-scalar", r"segment_ids: expected a 1-D array of names",
              lambda tmp_path: write_npz(tmp_path / "r.npz", segment_ids=np.array("s0"))),
    file_case("file-nc-is-a-fit",
              r"path: .*schema 'bayesstrf\.recording/1', found 'bayesstrf\.fit/2'",
              fit_as_recording),
    file_case("file-text-named-nc", r"path: cannot read .*rec\.nc' as a recording", text_named_nc),
    file_case("file-wrong-suffix", r"path: expected a .npz or .nc file, found 'rec\.csv'",
              csv_file),
    # -- fit arguments --------------------------------------------------------------------------
    argument_case("activation-unknown", r"activation: expected one of .*did you mean 'softplus'",
                  {"activation": "softplux"}, ["--activation", "softplux"]),
    argument_case("activation-capitalised", r"activation: .*did you mean 'sigmoid'",
                  {"activation": "Sigmoid"}, ["--activation", "Sigmoid"]),
    argument_case("strf-prior-unknown", r"strf: expected one of \[.*'ridge'.*did you mean 'ridge'",
                  {"strf": "ridg"}, ["--strf", "ridg"]),
    argument_case("chains-zero", r"chains: expected a positive integer, found 0",
                  {"chains": 0}, ["--chains", "0"]),
    argument_case("chains-negative", r"chains: expected a positive integer, found -2",
                  {"chains": -2}, ["--chains", "-2"]),
    argument_case("chains-fractional", r"chains: expected (a positive|an) integer, found '?2\.5",
                  {"chains": 2.5}, ["--chains", "2.5"]),
    argument_case("draws-zero", r"draws: expected a positive integer, found 0",
                  {"draws": 0}, ["--draws", "0"]),
    argument_case("warmup-negative", r"warmup: expected a positive integer, found -5",
                  {"warmup": -5}, ["--warmup", "-5"]),
    argument_case("warmup-too-short", r"warmup: expected at least 10 iterations",
                  {"warmup": 4}, ["--warmup", "4"]),
    argument_case("lags-zero", r"n_lags: expected a positive integer, found 0",
                  {"n_lags": 0}, ["--lags", "0"]),
    argument_case("seed-negative", r"seed: expected a non-negative integer, found -1",
                  {"seed": -1}, ["--seed", "-1"]),
    argument_case("seed-not-a-number", r"seed: expected (a non-negative|an) integer, found 'abc'",
                  {"seed": "abc"}, ["--seed", "abc"]),
    argument_case("chain-method-unknown", r"chain.method: (expected|invalid choice).*'fast'",
                  {"chain_method": "fast"}, ["--chain-method", "fast"]),
    argument_case("priors-not-a-distribution",
                  r"priors\['raw_beta'\]: expected a numpyro distribution, found float",
                  {"priors": {"raw_beta": 3.0}}, None),
    argument_case("priors-wrong-batch-shape",
                  r"priors\['raw_beta'\]: expected a univariate distribution with batch shape "
                  r"\(\) or \(1,\), found batch \(5,\)",
                  {"priors": {"raw_beta": dist.Normal(np.zeros(5), 1.0)}}, None),
    argument_case("priors-multivariate",
                  r"priors\['raw_beta'\]: expected a univariate distribution.*event \(2,\)",
                  {"priors": {"raw_beta": dist.MultivariateNormal(np.zeros(2), np.eye(2))}},
                  None),
    argument_case("priors-unknown-name", r"priors: expected names among .*did you mean 'raw_beta'",
                  {"priors": {"raw_betta": dist.Normal(0.0, 1.0)}}, None),
    argument_case("priors-not-a-dict", r"priors: expected a dict of name -> distribution",
                  {"priors": [dist.Normal(0.0, 1.0)]}, None),
    # -- outputs ------------------------------------------------------------------------------
    output_case("out-not-nc", r"--out: expected a \.nc file name for the fit, found 'fit\.txt'",
                "fit.txt"),
    output_case("out-under-a-file", r"--out: expected a folder .*taken", "taken/fit.nc"),
    output_case("simulate-out-wrong-suffix",
                r"--out: expected a \.npz or \.nc file name, found 'sim\.csv'", "sim.csv",
                "simulate"),
    # -- fit files -------------------------------------------------------------------------------
    fit_file_case("fit-truncated", r"path: cannot read .*fit\w*\.nc' as a netCDF fit",
                  "truncated"),
    fit_file_case("fit-corrupt-header", r"path: cannot read .*fit\w*\.nc' as a netCDF fit",
                  "corrupt-header"),
    fit_file_case("fit-text-file", r"path: cannot read .*fit\w*\.nc' as a netCDF fit", "text"),
    fit_file_case("fit-newer-schema",
                  r"path: .*fit\w*\.nc' has schema 'bayesstrf\.fit/3', newer than .*upgrade",
                  "newer-schema"),
    fit_file_case("fit-foreign-netcdf", r"path: .*fit\w*\.nc' is not a bayesstrf fit",
                  "foreign-schema"),
    fit_file_case("fit-without-posterior", r"path: .*fit\w*\.nc' lacks the group.*posterior",
                  "no-posterior"),
]

API_CASES = [pytest.param(case, id=case.id) for case in CASES if case.api is not None]
CLI_CASES = [pytest.param(case, id=case.id) for case in CASES if case.cli is not None]


def test_the_table_is_large_and_covers_both_paths():
    assert len({case.id for case in CASES}) == len(CASES) >= 30
    assert len(API_CASES) >= 30 and len(CLI_CASES) >= 30


@pytest.mark.parametrize("case", API_CASES)
def test_api_refuses_with_one_line_naming_the_field(case, tmp_path):
    with pytest.raises((ValueError, TypeError)) as info:
        case.api(tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(case.pattern, message), message
    assert not (tmp_path / "unpickled").exists()


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_exits_2_with_one_line_and_writes_nothing(case, tmp_path, capsys):
    argv, out = case.cli(tmp_path)
    folder = out.parent if out.parent.is_dir() else tmp_path
    before = sorted(p.name for p in folder.iterdir())
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith(f"bayesstrf {argv[0]}: error: "), lines[0]
    assert re.search(case.pattern, lines[0]), lines[0]
    assert not out.exists()
    assert sorted(p.name for p in folder.iterdir()) == before  # no partial or temp file
    assert not (tmp_path / "unpickled").exists()
