"""``bayesstrf`` command line: a thin shell over the Python API.

Exit codes: 0 success; 2 bad input (one line on stderr, no traceback, nothing written);
1 an unexpected error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

FAMILIES = ("sigmoid", "double_exponential", "softplus")


def _use_cores(chains: int) -> None:
    """Let parallel chains use the CPU cores; must run before JAX starts its backend."""
    count = max(1, min(chains, os.cpu_count() or 1))
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def _check_output(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise FileExistsError(f"--out: {str(path)!r} exists; pass --force to overwrite it")


def _sampler_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lags", type=int, default=12, help="STRF lags (default 12)")
    parser.add_argument("--strf", default="ridge", help="STRF prior (default ridge)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _fit_kwargs(args) -> dict:
    return dict(strf=args.strf, n_lags=args.lags, chains=args.chains, warmup=args.warmup,
                draws=args.draws, seed=args.seed, progress=not args.quiet)


def cmd_simulate(args) -> None:
    from bayesstrf.simulation import simulate

    out = Path(args.out)
    _check_output(out, args.force)
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
    _check_output(out, args.force)
    recording = read_recording(args.data)
    tree = fit(recording, args.activation, **_fit_kwargs(args))
    save_fit(tree, out, overwrite=args.force)
    print(diagnose(tree))
    print(f"wrote {out}")


def cmd_compare(args) -> None:
    from bayesstrf.diagnostics import diagnose
    from bayesstrf.inference import fit
    from bayesstrf.io import read_recording, save_fit

    out = Path(args.out)
    targets = [out / f"fit_{family}.nc" for family in args.activations]
    for target in targets:
        _check_output(target, args.force)
    recording = read_recording(args.data)
    print(f"data: {recording}")
    rows = []
    for family, target in zip(args.activations, targets, strict=True):
        start = time.perf_counter()
        tree = fit(recording, family, **_fit_kwargs(args))
        seconds = time.perf_counter() - start
        save_fit(tree, target, overwrite=args.force)
        report = diagnose(tree)
        for neuron, row in report.table.iterrows():
            rows.append(f"{family:<20} {neuron:<8} {row.max_rhat:>7.3f} {row.min_ess_bulk:>9.0f} "
                        f"{row.min_ess_tail:>9.0f} {report.divergences:>6d} "
                        f"{report.saturated:>6d} {seconds:>8.1f}")
        for warning in report.warnings:
            logging.getLogger("bayesstrf").warning("%s: %s", family, warning)
    print(f"{'family':<20} {'neuron':<8} {'r_hat':>7} {'ess_bulk':>9} {'ess_tail':>9} "
          f"{'div':>6} {'sat':>6} {'time_s':>8}")
    print("\n".join(rows))
    print(f"wrote {', '.join(str(t) for t in targets)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayesstrf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write a simulated recording (.npz or .nc)")
    sim.add_argument("--out", required=True)
    sim.add_argument("--activation", default="softplus")
    sim.add_argument("--neurons", type=int, default=1)
    sim.add_argument("--freqs", type=int, default=16)
    sim.add_argument("--lags", type=int, default=12)
    sim.add_argument("--time", type=int, default=20000, help="bins in all")
    sim.add_argument("--trials", type=int, default=1)
    sim.add_argument("--segments", type=int, default=1)
    sim.add_argument("--stimulus", default="natural", choices=("natural", "white"))
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--force", action="store_true")
    sim.set_defaults(run=cmd_simulate)

    fit = sub.add_parser("fit", help="sample the posterior of one activation family")
    fit.add_argument("data", help="recording (.npz schema or .nc)")
    fit.add_argument("--activation", default="softplus")
    fit.add_argument("--out", required=True, help="fit file (.nc)")
    _sampler_args(fit)
    fit.set_defaults(run=cmd_fit)

    compare = sub.add_parser("compare", help="fit every activation family and compare them")
    compare.add_argument("data", help="recording (.npz schema or .nc)")
    compare.add_argument("--out", required=True, help="results folder")
    compare.add_argument("--activations", nargs="+", default=list(FAMILIES))
    _sampler_args(compare)
    compare.set_defaults(run=cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    _use_cores(getattr(args, "chains", 1))
    try:
        args.run(args)
    except (ValueError, TypeError, FileExistsError) as error:
        print(f"bayesstrf {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
