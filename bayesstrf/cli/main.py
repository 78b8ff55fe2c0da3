"""``bayesstrf`` command line: a thin shell over the Python API.

stdout carries the result (tables, files written), or with ``--json`` one JSON object and
nothing else; stderr carries progress bars, progress lines and warnings (none with
``--quiet``) and errors. Exit codes: see `EPILOG`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import traceback
from typing import Any

from bayesstrf.cli.commands import cmd_compare, cmd_fit, cmd_report, cmd_simulate
from bayesstrf.cli.console import _Console, _integer, _logging, _number, _Parser, _UsageError
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
