"""The commands ``simulate``, ``fit``, ``compare`` and ``report``: each checks its outputs
before any work, calls the Python API and reports the result through its console."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from bayesstrf.cli.console import _Console
from bayesstrf.errors import InputError


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

    from bayesstrf.files import write_text
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
    write_text(_truth_path(out), json.dumps(truth))
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
        "sampler": {str(name).removeprefix("sampler_"): value
                    for name, value in tree.attrs.items() if str(name).startswith("sampler_")},
        "seconds": seconds,
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
