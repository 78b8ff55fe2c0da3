"""``bayesstrf`` command line: a thin shell over the Python API.

stdout carries the result (tables, files written), or with ``--json`` one JSON object and
nothing else; stderr carries progress bars, progress lines and warnings (none with
``--quiet``) and errors. Exit codes: see `EPILOG`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import math
import os
import shlex
import sys
import traceback
from pathlib import Path
from typing import Any

from bayesstrf.errors import InputError

#: What the user can fix: bayesstrf's input checks and the files named on the command line.
#: Anything else is a bug and keeps its traceback.
USER_ERRORS = (InputError, FileExistsError, FileNotFoundError, IsADirectoryError,
               NotADirectoryError, PermissionError)

EPILOG = """\
output:
  stdout  the result: tables and the files written; with --json one JSON object only
  stderr  progress bars, progress lines and warnings (none with --quiet), errors

exit codes:
  0    success
  2    bad input or usage (bayesstrf.errors.InputError, or a file that cannot be
       read or written): one line on stderr naming the argument; nothing written
  130  interrupted (Ctrl-C); fit --checkpoint-every keeps its checkpoint: --resume
  1    any other error: a missing optional package (one line), or a bug (the
       traceback, then one line: please report it)
"""


class _Console:
    """Where a command writes. ``result`` is the human-readable result: stdout, or stderr with
    ``--json`` (dropped with ``--quiet`` too); ``info`` is chatter on stderr (dropped with
    ``--quiet``); ``emit`` prints the JSON record on stdout with ``--json``."""

    def __init__(self, as_json: bool, quiet: bool):
        self.as_json, self.quiet = as_json, quiet

    def result(self, text: str) -> None:
        if not self.as_json:
            print(text)
        elif not self.quiet:
            print(text, file=sys.stderr)

    def info(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr)

    def emit(self, record: dict) -> None:
        if self.as_json:
            print(json.dumps(_plain(record), indent=2, allow_nan=False))


def _plain(value):
    """``value`` in JSON types: numpy scalars as Python numbers, NaN and infinities as None,
    paths as strings."""
    import numpy as np

    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


class _Formatter(logging.Formatter):
    """Progress lines (INFO) as they are, other records prefixed by their level."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno == logging.INFO else f"{record.levelname}: {message}"


@contextlib.contextmanager
def _logging(quiet: bool):
    """Log records and Python warnings to stderr while a command runs: bayesstrf's progress
    lines and everyone's warnings, or only errors with ``--quiet``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root, package = logging.getLogger(), logging.getLogger("bayesstrf")
    levels = root.level, package.level
    root.addHandler(handler)
    root.setLevel(logging.ERROR if quiet else logging.WARNING)
    package.setLevel(logging.ERROR if quiet else logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(levels[0])
        package.setLevel(levels[1])


class _UsageError(Exception):
    """A command line that argparse cannot parse; `main` prints it as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the usage too, then exit
        raise _UsageError(message)


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, found {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, found {text!r}") from None


def _truth_path(recording: Path) -> Path:
    """Where `bayesstrf simulate` writes the truth of a simulated recording."""
    return recording.with_name(recording.name + ".truth.json")


def _check_output(path: Path, force: bool, suffixes: tuple[str, ...] = ()) -> None:
    """Refuse an output before any work: wrong suffix, a file in the way of its folder, or an
    existing file without ``--force``."""
    if suffixes and path.suffix not in suffixes:
        raise InputError(
            f"--out: expected a {' or '.join(suffixes)} file name{_WHAT.get(suffixes, '')}, "
            f"found {path.name!r}"
        )
    folder = next((p for p in path.parents if p.exists()), Path("."))
    if not folder.is_dir():
        raise InputError(f"--out: expected a folder to write into, found the file {str(folder)!r}")
    if path.exists() and not force:
        raise FileExistsError(f"--out: {str(path)!r} exists; pass --force to overwrite it")


_WHAT: dict[tuple[str, ...], str] = {(".nc",): " for the fit"}


def _sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sampler_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lags", type=_integer, default=12, help="STRF lags (default 12)")
    parser.add_argument("--strf", default="ridge", help="STRF prior: ridge (default), smooth, "
                        "localized, sparse or lowrank:<rank>")
    parser.add_argument("--chains", type=_integer, default=4)
    parser.add_argument("--warmup", type=_integer, default=500)
    parser.add_argument("--draws", type=_integer, default=1000)
    parser.add_argument("--seed", type=_integer, default=0)
    parser.add_argument("--chain-method", default=None,
                        choices=("parallel", "vectorized", "sequential"),
                        help="how chains run (default: vectorized, all chains and neurons in "
                             "one program; parallel splits them over several GPUs); "
                             "draws are reproducible for a given seed and chain method")
    parser.add_argument("--pooling", default="none", choices=("none", "activation"),
                        help="none (default): independent neurons, one NUTS each, vectorised; "
                             "activation: partially pool the activation across neurons")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")


def _output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars, progress lines or warnings: stderr stays empty "
                             "unless the command fails")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON summary of the result on stdout, and everything "
                             "else on stderr")


def _report_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--neurons", nargs="+", default=None, metavar="ID",
                        help="neuron ids whose STRF, nonlinearity and PSTH the report draws "
                             "(default: every neuron up to 12, none above: population "
                             "summaries instead)")


def _timings(tree) -> dict:
    seconds = {k: float(tree.attrs[f"{k}_seconds"]) for k in ("map", "warmup", "sampling")}
    return seconds | {"total": sum(seconds.values())}


def _records(frame, index: str) -> list[dict]:
    """Rows of a table as dicts, its index (named ``index`` when it has no name) included."""
    frame = frame.rename_axis(index) if frame.index.nlevels == 1 else frame
    return frame.reset_index().to_dict(orient="records")


def _fit_kwargs(args) -> dict:
    return dict(strf=args.strf, n_lags=args.lags, chains=args.chains, warmup=args.warmup,
                draws=args.draws, seed=args.seed, progress=not args.quiet,
                chain_method=args.chain_method,
                pooling=None if args.pooling == "none" else args.pooling)


def cmd_simulate(args) -> None:
    import numpy as np

    from bayesstrf.data.io import write_text_atomic
    from bayesstrf.model.simulation import simulate

    out = Path(args.out)
    _check_output(out, args.force, (".npz", ".nc"))
    _check_output(_truth_path(out), args.force)
    out.parent.mkdir(parents=True, exist_ok=True)
    sim = simulate(args.activation, n_neurons=args.neurons, n_freq=args.freqs,
                   n_lags=args.lags, n_time=args.time, n_trials=args.trials,
                   n_segments=args.segments, stimulus=args.stimulus, drive_sd=args.drive_sd,
                   seed=args.seed)
    sim.recording.save(out)
    recording = sim.recording
    truth = {"activation": sim.activation, "seed": args.seed, "drive_sd": args.drive_sd,
             "parameters": {name: np.asarray(value).tolist() for name, value in sim.truth.items()}}
    write_text_atomic(_truth_path(out), json.dumps(truth))
    args.console.result(f"wrote {out}: {recording}; its truth ({sim.activation}) in "
                        f"{_truth_path(out)}")
    args.console.emit({
        "command": "simulate", "out": out, "bytes": out.stat().st_size,
        "activation": sim.activation, "seed": args.seed, "neurons": recording.n_neurons,
        "freqs": recording.n_freq, "lags": sim.n_lags, "segments": recording.n_segments,
        "bins": recording.n_time, "segment_bins": recording.segment_lengths,
        "trials": [counts.shape[1] for counts in recording.counts], "dt": recording.dt,
    })


def cmd_fit(args) -> None:
    from bayesstrf.data.io import read_recording, save_fit
    from bayesstrf.evaluation.diagnostics import diagnose
    from bayesstrf.inference.fit import fit
    from bayesstrf.viz.report import diagnostics_record

    out = Path(args.out)
    _check_output(out, args.force, (".nc",))
    recording = read_recording(args.data)
    checkpoint = out.with_name(out.name + ".ckpt.npz")
    if args.resume and not checkpoint.exists():
        raise FileNotFoundError(f"--resume: expected a checkpoint at {str(checkpoint)!r}, "
                                "found none")
    if checkpoint.exists() and not (args.resume or args.force):
        raise FileExistsError(f"--out: checkpoint {str(checkpoint)!r} exists; pass --resume "
                              "to continue it or --force to start again")
    if checkpoint.exists() and not args.resume:
        checkpoint.unlink()
    kwargs = _fit_kwargs(args)
    if args.resume or args.checkpoint_every:
        kwargs |= {"checkpoint": checkpoint, "checkpoint_every": args.checkpoint_every or 100}
    if args.scheduler and (args.resume or args.checkpoint_every or args.pooling != "none"):
        raise InputError("--scheduler: expected independent neurons without checkpoints (chunks "
                         "are the unit of restart), found --resume, --checkpoint-every or "
                         "--pooling activation")
    try:
        tree = (_fit_on_scheduler(recording, out, args, kwargs) if args.scheduler
                else fit(recording, args.activation, **kwargs))
    except KeyboardInterrupt:
        if checkpoint.exists():
            print(f"bayesstrf fit: interrupted; the checkpoint {checkpoint} is kept, continue "
                  "with --resume", file=sys.stderr)
        raise
    tree.attrs |= {"input_sha256": _sha256(args.data), "command_line": args.command_line}
    save_fit(tree, out, overwrite=args.force)
    report = diagnose(tree)
    seconds = _timings(tree)
    args.console.result(str(report))
    args.console.result(f"time: {seconds['total']:.1f} s")
    args.console.result(f"wrote {out}")
    args.console.emit({
        "command": "fit", "data": args.data, "input_sha256": tree.attrs["input_sha256"],
        "out": out, "bytes": out.stat().st_size,
        "checkpoint": checkpoint if checkpoint.exists() else None,
        "activation": tree.attrs["activation"], "strf_prior": json.loads(tree.attrs["strf_prior"]),
        "n_lags": int(tree.attrs["n_lags"]), "seed": int(tree.attrs["seed"]),
        "sampler": json.loads(tree.attrs["sampler"]), "seconds": seconds,
        "diagnostics": diagnostics_record(report),
    })


def _fit_on_scheduler(recording, out: Path, args, kwargs: dict):
    """`fit_distributed` on the Dask scheduler at ``args.scheduler``; chunk fits go to
    ``OUT.chunks/``, so that a rerun finishes an interrupted job."""
    from bayesstrf.inference.distributed import fit_distributed

    try:
        from distributed import Client
    except ImportError as error:
        raise ImportError("--scheduler: needs dask.distributed (pip install "
                          "'bayesstrf[distributed]')") from error
    kwargs = {k: v for k, v in kwargs.items() if k not in ("progress", "pooling")}
    with Client(args.scheduler, timeout=30) as client:
        return fit_distributed(recording, out.with_name(out.name + ".chunks"), executor=client,
                               neurons_per_chunk=args.neurons_per_chunk,
                               activation=args.activation, **kwargs)


def _print_diagnostics(reports: dict, fits: dict, console: _Console) -> None:
    console.result(f"{'family':<20} {'neuron':<8} {'r_hat':>7} {'ess_bulk':>9} {'ess_tail':>9} "
                   f"{'div':>6} {'sat':>6} {'time_s':>8}")
    for family, report in reports.items():
        seconds = _timings(fits[family])["total"]
        for neuron, row in report.table.iterrows():
            console.result(
                f"{family:<20} {neuron:<8} {row.max_rhat:>7.3f} {row.min_ess_bulk:>9.0f} "
                f"{row.min_ess_tail:>9.0f} {report.divergences:>6d} {report.saturated:>6d} "
                f"{seconds:>8.1f}")
    for family, report in reports.items():
        for warning in report.warnings:
            console.result(f"warning: {family}: {warning}")


def _comparison_record(result) -> dict:
    return {"method": result.method, "table": _records(result.table, "model"),
            "per_neuron": _records(result.per_neuron, "index"), "warnings": result.warnings,
            "notes": result.notes, "verdict": result.verdict()}


def cmd_compare(args) -> None:
    from bayesstrf.data.io import read_recording, save_fit
    from bayesstrf.evaluation.comparison import compare
    from bayesstrf.evaluation.diagnostics import diagnose
    from bayesstrf.viz.report import OUTPUTS, detail_neurons, diagnostics_record, write_report

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: expected a results folder, found the file {str(out)!r}")
    targets = {family: out / f"fit_{family}.nc" for family in args.activations}
    for target in [*targets.values(), *(out / name for name in OUTPUTS),
                   out / "train.npz", out / "test.npz"]:
        _check_output(target, args.force)
    recording = read_recording(args.data)
    detail_neurons(recording, args.neurons, name="--neurons")  # before the fits, not after
    train, test = recording.split(args.test_segments) if args.test_segments else (recording, None)
    args.console.info(f"data: {train}" + (f"; held out: {test}" if test else ""))
    result = compare(train, tuple(args.activations), method=args.method, **_fit_kwargs(args))
    out.mkdir(parents=True, exist_ok=True)
    digest = _sha256(args.data)
    for family, tree in result.fits.items():
        tree.attrs |= {"input_sha256": digest, "command_line": args.command_line}
        save_fit(tree, targets[family], overwrite=args.force)
    written = [out / "train.npz"]
    train.save(written[0])
    if test is not None:
        written.append(out / "test.npz")
        test.save(written[-1])
    reports = {family: diagnose(tree) for family, tree in result.fits.items()}
    _print_diagnostics(reports, result.fits, args.console)
    args.console.result(str(result))
    truth_file = _truth_path(Path(args.data))
    truth = json.loads(truth_file.read_text())["activation"] if truth_file.exists() else None
    if truth is not None:
        args.console.result(f"truth: simulated with {truth} ({truth_file}); ranked first: "
                            f"{result.table.index[0]}")
    report = write_report(result, train, out, test=test, overwrite=args.force, truth=truth,
                          neurons=args.neurons, diagnostics=reports)
    args.console.result(f"wrote {', '.join(str(t) for t in targets.values())}")
    args.console.result(f"report: {report}")
    args.console.emit({
        "command": "compare", "data": args.data, "input_sha256": digest, "out": out,
        "fits": targets, "report": report,
        "outputs": [*(out / name for name in OUTPUTS if name != "report.html"), *written],
        **_comparison_record(result), "simulated_with": truth,
        "seconds": {family: _timings(tree) for family, tree in result.fits.items()},
        "diagnostics": {family: diagnostics_record(r) for family, r in reports.items()},
    })


def cmd_report(args) -> None:
    from bayesstrf.data.io import load_fit, read_recording
    from bayesstrf.evaluation.comparison import compare
    from bayesstrf.viz.report import detail_neurons, write_report

    folder = Path(args.results)
    paths = sorted(folder.glob("fit_*.nc"))
    if len(paths) < 2 or not (folder / "train.npz").is_file():
        raise InputError(
            f"results: expected a folder written by 'bayesstrf compare' (train.npz and at least "
            f"two fit_*.nc), found {len(paths)} fits in {str(folder)!r}"
        )
    fits = {path.stem.removeprefix("fit_"): load_fit(path) for path in paths}
    train = read_recording(folder / "train.npz")
    detail_neurons(train, args.neurons, name="--neurons")  # before the comparison, not after
    test = read_recording(folder / "test.npz") if (folder / "test.npz").is_file() else None
    result = compare(fits, recording=train)
    report = write_report(result, train, folder, test=test, overwrite=True, neurons=args.neurons)
    args.console.result(str(result))
    args.console.result(f"report: {report}")
    args.console.emit({"command": "report", "results": folder, "report": report,
                       "fits": {path.stem.removeprefix("fit_"): path for path in paths},
                       **_comparison_record(result)})


def build_parser() -> argparse.ArgumentParser:
    from bayesstrf.model.activations import FAMILIES

    text: dict[str, Any] = dict(epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser = _Parser(prog="bayesstrf", description=__doc__.splitlines()[0], **text)
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write a simulated recording (.npz or .nc)", **text)
    sim.add_argument("--out", required=True)
    sim.add_argument("--activation", default="softplus")
    sim.add_argument("--neurons", type=_integer, default=1)
    sim.add_argument("--freqs", type=_integer, default=16)
    sim.add_argument("--lags", type=_integer, default=12)
    sim.add_argument("--time", type=_integer, default=20000, help="bins in all")
    sim.add_argument("--trials", type=_integer, default=1)
    sim.add_argument("--segments", type=_integer, default=1)
    sim.add_argument("--stimulus", default="natural", choices=("natural", "white"))
    sim.add_argument("--drive-sd", type=_number, default=None,
                     help="sd of the drive before the activation (default: per family)")
    sim.add_argument("--seed", type=_integer, default=0)
    sim.add_argument("--force", action="store_true", help="overwrite --out")
    _output_args(sim)
    sim.set_defaults(run=cmd_simulate)

    fit = sub.add_parser("fit", help="sample the posterior of one activation family", **text)
    fit.add_argument("data", help="recording (.npz schema or .nc)")
    fit.add_argument("--activation", default="softplus")
    fit.add_argument("--out", required=True, help="fit file (.nc)")
    _sampler_args(fit)
    fit.add_argument("--checkpoint-every", type=_integer, default=None, metavar="DRAWS",
                     help="save the sampler state to OUT.ckpt.npz every DRAWS draws")
    fit.add_argument("--resume", action="store_true",
                     help="continue from OUT.ckpt.npz (same data and options)")
    fit.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="fit chunks of neurons on the Dask cluster at ADDRESS "
                          "(e.g. tcp://host:8786); chunk fits are kept in OUT.chunks/ and a "
                          "rerun skips those already done")
    fit.add_argument("--neurons-per-chunk", type=_integer, default=8,
                     help="neurons per task with --scheduler (default 8)")
    _output_args(fit)
    fit.set_defaults(run=cmd_fit)

    compare = sub.add_parser("compare", help="fit every activation family and compare them",
                             **text)
    compare.add_argument("data", help="recording (.npz schema or .nc)")
    compare.add_argument("--out", required=True, help="results folder")
    compare.add_argument("--activations", nargs="+", default=list(FAMILIES))
    compare.add_argument("--test-segments", nargs="+", default=None,
                         help="segment ids held out for prediction metrics")
    compare.add_argument("--method", default="auto", choices=("auto", "loo", "kfold"),
                         help="held-out estimate: PSIS-LOO, moment matched where Pareto k > 0.7 "
                         "(auto, default), plain PSIS-LOO, or k-fold refits by segment")
    _report_args(compare)
    _sampler_args(compare)
    _output_args(compare)
    compare.set_defaults(run=cmd_compare)

    report = sub.add_parser("report", help="rewrite the HTML report of a compare folder",
                            **text)
    report.add_argument("results", help="folder written by 'bayesstrf compare'")
    _report_args(report)
    _output_args(report)
    report.set_defaults(run=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return its exit code (see
    `EPILOG`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as error:
        command = next((word for word in argv if not word.startswith("-")), "")
        print(_one_line(f"bayesstrf {command}".strip() + f": error: {error}"), file=sys.stderr)
        return 2
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else 0
    from bayesstrf.compilation import enable_compilation_cache  # imports JAX: not for --help

    enable_compilation_cache()
    args.console = _Console(args.json, args.quiet)
    args.command_line = shlex.join(["bayesstrf", *argv])  # recorded in the fits it writes
    name = f"bayesstrf {args.command}"
    with _logging(args.quiet):
        try:
            args.run(args)
        except USER_ERRORS as error:
            print(_one_line(f"{name}: error: {error}"), file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
        except ImportError as error:  # an optional package this input needs
            print(_one_line(f"{name}: error: {error}"), file=sys.stderr)
            return 1
        except Exception:
            traceback.print_exc()
            print(f"{name}: unexpected error (a bug: please report it with the traceback "
                  "above)", file=sys.stderr)
            return 1
    return 0


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":
    sys.exit(main())
