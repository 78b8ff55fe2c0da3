"""``bayesstrf`` command line: a thin shell over the Python API.

Exit codes: 0 success; 2 bad input (one line on stderr, no traceback, nothing written);
130 interrupted by Ctrl-C (``fit --checkpoint-every`` keeps its checkpoint: continue with
``--resume``); 1 an unexpected error.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from pathlib import Path

FAMILIES = ("sigmoid", "double_exponential", "softplus")


def _use_cores(chains: int) -> None:
    """One host device per chain, so that chains run in parallel on the CPU cores (JAX's
    threads share them when chains outnumber cores); must run before JAX starts."""
    count = max(1, chains)
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


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


def _check_output(path: Path, force: bool, suffixes: tuple[str, ...] = ()) -> None:
    """Refuse an output before any work: wrong suffix, a file in the way of its folder, or an
    existing file without ``--force``."""
    if suffixes and path.suffix not in suffixes:
        raise ValueError(
            f"--out: expected a {' or '.join(suffixes)} file name{_WHAT.get(suffixes, '')}, "
            f"found {path.name!r}"
        )
    folder = next((p for p in path.parents if p.exists()), Path("."))
    if not folder.is_dir():
        raise ValueError(f"--out: expected a folder to write into, found the file {str(folder)!r}")
    if path.exists() and not force:
        raise FileExistsError(f"--out: {str(path)!r} exists; pass --force to overwrite it")


_WHAT = {(".nc",): " for the fit"}


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
                        help="how chains run (default: parallel with one CPU device per chain); "
                             "draws are reproducible for a given seed and chain method")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _fit_kwargs(args) -> dict:
    return dict(strf=args.strf, n_lags=args.lags, chains=args.chains, warmup=args.warmup,
                draws=args.draws, seed=args.seed, progress=not args.quiet,
                chain_method=args.chain_method)


def cmd_simulate(args) -> None:
    from bayesstrf.simulation import simulate

    out = Path(args.out)
    _check_output(out, args.force, (".npz", ".nc"))
    out.parent.mkdir(parents=True, exist_ok=True)
    sim = simulate(args.activation, n_neurons=args.neurons, n_freq=args.freqs,
                   n_lags=args.lags, n_time=args.time, n_trials=args.trials,
                   n_segments=args.segments, stimulus=args.stimulus, seed=args.seed)
    sim.recording.save(out)
    print(f"wrote {out}: {sim.recording}")


def cmd_fit(args) -> None:
    from bayesstrf.diagnostics import diagnose
    from bayesstrf.inference import fit
    from bayesstrf.io import read_recording, save_fit

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
    try:
        tree = fit(recording, args.activation, **kwargs)
    except KeyboardInterrupt:
        if checkpoint.exists():
            print(f"bayesstrf fit: interrupted; the checkpoint {checkpoint} is kept, continue "
                  "with --resume", file=sys.stderr)
        raise
    tree.attrs["input_sha256"] = _sha256(args.data)
    save_fit(tree, out, overwrite=args.force)
    print(diagnose(tree))
    print(f"time: {_seconds(tree):.1f} s")
    print(f"wrote {out}")


def _seconds(tree) -> float:
    """Wall time of a fit: MAP, warmup and sampling (compilation included)."""
    return sum(float(tree.attrs[k]) for k in ("map_seconds", "warmup_seconds", "sampling_seconds"))


def _print_diagnostics(fits: dict) -> None:
    from bayesstrf.diagnostics import diagnose

    print(f"{'family':<20} {'neuron':<8} {'r_hat':>7} {'ess_bulk':>9} {'ess_tail':>9} "
          f"{'div':>6} {'sat':>6} {'time_s':>8}")
    for family, tree in fits.items():
        report = diagnose(tree)
        for neuron, row in report.table.iterrows():
            print(f"{family:<20} {neuron:<8} {row.max_rhat:>7.3f} {row.min_ess_bulk:>9.0f} "
                  f"{row.min_ess_tail:>9.0f} {report.divergences:>6d} {report.saturated:>6d} "
                  f"{_seconds(tree):>8.1f}")
        for warning in report.warnings:
            logging.getLogger("bayesstrf").warning("%s: %s", family, warning)


def cmd_compare(args) -> None:
    from bayesstrf.comparison import compare
    from bayesstrf.io import read_recording, save_fit
    from bayesstrf.report import OUTPUTS, write_report

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: expected a results folder, found the file {str(out)!r}")
    targets = {family: out / f"fit_{family}.nc" for family in args.activations}
    for target in [*targets.values(), *(out / name for name in OUTPUTS),
                   out / "train.npz", out / "test.npz"]:
        _check_output(target, args.force)
    recording = read_recording(args.data)
    train, test = recording.split(args.test_segments) if args.test_segments else (recording, None)
    print(f"data: {train}" + (f"; held out: {test}" if test else ""))
    result = compare(train, tuple(args.activations), method=args.method, **_fit_kwargs(args))
    out.mkdir(parents=True, exist_ok=True)
    digest = _sha256(args.data)
    for family, tree in result.fits.items():
        tree.attrs["input_sha256"] = digest
        save_fit(tree, targets[family], overwrite=args.force)
    train.save(out / "train.npz")
    if test is not None:
        test.save(out / "test.npz")
    _print_diagnostics(result.fits)
    print(result)
    report = write_report(result, train, out, test=test, overwrite=args.force)
    print(f"wrote {', '.join(str(t) for t in targets.values())}")
    print(f"report: {report}")


def cmd_report(args) -> None:
    from bayesstrf.comparison import compare
    from bayesstrf.io import load_fit, read_recording
    from bayesstrf.report import write_report

    folder = Path(args.results)
    paths = sorted(folder.glob("fit_*.nc"))
    if len(paths) < 2 or not (folder / "train.npz").is_file():
        raise ValueError(
            f"results: expected a folder written by 'bayesstrf compare' (train.npz and at least "
            f"two fit_*.nc), found {len(paths)} fits in {str(folder)!r}"
        )
    fits = {path.stem.removeprefix("fit_"): load_fit(path) for path in paths}
    train = read_recording(folder / "train.npz")
    test = read_recording(folder / "test.npz") if (folder / "test.npz").is_file() else None
    result = compare(fits, recording=train)
    print(result)
    print(f"report: {write_report(result, train, folder, test=test, overwrite=True)}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bayesstrf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write a simulated recording (.npz or .nc)")
    sim.add_argument("--out", required=True)
    sim.add_argument("--activation", default="softplus")
    sim.add_argument("--neurons", type=_integer, default=1)
    sim.add_argument("--freqs", type=_integer, default=16)
    sim.add_argument("--lags", type=_integer, default=12)
    sim.add_argument("--time", type=_integer, default=20000, help="bins in all")
    sim.add_argument("--trials", type=_integer, default=1)
    sim.add_argument("--segments", type=_integer, default=1)
    sim.add_argument("--stimulus", default="natural", choices=("natural", "white"))
    sim.add_argument("--seed", type=_integer, default=0)
    sim.add_argument("--force", action="store_true")
    sim.set_defaults(run=cmd_simulate)

    fit = sub.add_parser("fit", help="sample the posterior of one activation family")
    fit.add_argument("data", help="recording (.npz schema or .nc)")
    fit.add_argument("--activation", default="softplus")
    fit.add_argument("--out", required=True, help="fit file (.nc)")
    _sampler_args(fit)
    fit.add_argument("--checkpoint-every", type=_integer, default=None, metavar="DRAWS",
                     help="save the sampler state to OUT.ckpt.npz every DRAWS draws")
    fit.add_argument("--resume", action="store_true",
                     help="continue from OUT.ckpt.npz (same data and options)")
    fit.set_defaults(run=cmd_fit)

    compare = sub.add_parser("compare", help="fit every activation family and compare them")
    compare.add_argument("data", help="recording (.npz schema or .nc)")
    compare.add_argument("--out", required=True, help="results folder")
    compare.add_argument("--activations", nargs="+", default=list(FAMILIES))
    compare.add_argument("--test-segments", nargs="+", default=None,
                         help="segment ids held out for prediction metrics")
    compare.add_argument("--method", default="loo", choices=("loo", "kfold"))
    _sampler_args(compare)
    compare.set_defaults(run=cmd_compare)

    report = sub.add_parser("report", help="rewrite the HTML report of a compare folder")
    report.add_argument("results", help="folder written by 'bayesstrf compare'")
    report.set_defaults(run=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as error:
        command = next((word for word in argv if not word.startswith("-")), "")
        print(_one_line(f"bayesstrf {command}".strip() + f": error: {error}"), file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    _use_cores(args.chains if isinstance(getattr(args, "chains", None), int) else 1)
    try:
        args.run(args)
    except (ValueError, TypeError, OSError) as error:  # OSError: FileExistsError, permissions
        print(_one_line(f"bayesstrf {args.command}: error: {error}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":
    sys.exit(main())
