"""Simulation-based calibration of every activation family and STRF prior (issues 5 and 6).

Run from the repository root::

    python -m benchmarks.sbc            # full: writes docs/validation-sbc.md, .json and .png
    python -m benchmarks.sbc --quick --out /tmp/sbc.md   # a smoke run, about a minute

Each run is `bayesstrf.validate.sbc` on a tiny problem (one natural-like stimulus, F=4, L=3,
T=1000, 2 trials): the three activation families under the default ``ridge`` prior, then
every other STRF prior under ``softplus``. The replicates of a run are fitted together as the
neurons of one recording, each by its own NUTS, so a run compiles once. Every run's ranks are
tested for uniformity per parameter by a chi-square test; a run passes when every p >= 0.01.
The files are rewritten after each run, atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from benchmarks.environment import environment as describe_environment
from benchmarks.environment import settings_and_out

FAMILIES = ("softplus", "sigmoid", "double_exponential")
PRIORS = ("smooth", "localized", "sparse", "lowrank:1", "lowrank:2")

#: Full run: 200 replicates per family (ridge), 100 per other prior (softplus); 2 chains x
#: 200 draws thinned to 99 (ranks 0..99, 10 bins).
FULL = dict(family_replicates=200, prior_replicates=100, chains=2, warmup=200, draws=200,
            n_ranks=100, bins=10)
QUICK = dict(family_replicates=20, prior_replicates=20, chains=2, warmup=50, draws=50,
             n_ranks=20, bins=4)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sbc",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few replicates and draws")
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown file to write, the JSON and PNG next to it (default: "
                        "docs/validation-sbc.md; with --quick a file in the temporary folder)")
    parser.add_argument("--runs", nargs="+", default=None,
                        help="subset of runs, as activation/strf (default: all)")
    for name in FULL:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None,
                            help=f"override (full: {FULL[name]}, quick: {QUICK[name]})")
    args = parser.parse_args(argv)
    settings_and_out(parser, args, FULL, QUICK, "validation-sbc")
    every = [f"{family}/ridge" for family in FAMILIES] + [f"softplus/{p}" for p in PRIORS]
    unknown = sorted(set(args.runs or []) - set(every))
    if unknown:
        parser.error(f"--runs: expected among {every}, found {unknown}")
    args.runs = [run for run in every if run in (args.runs or every)]
    return args


def run_one(run: str, s: dict) -> tuple[dict, object]:
    """One SBC run; returns its JSON row and the `SBC` result."""
    from bayesstrf.validate import sbc

    activation, strf = run.split("/")
    replicates = s["family_replicates"] if strf == "ridge" else s["prior_replicates"]
    start = time.perf_counter()
    result = sbc(activation, strf, replicates=replicates, n_ranks=s["n_ranks"], bins=s["bins"],
                 chains=s["chains"], warmup=s["warmup"], draws=s["draws"], seed=0)
    divergent = result.divergences.to_numpy()
    row = {"run": run, "replicates": replicates, "seconds": time.perf_counter() - start,
           "passes": result.passes(0.01), "min_p": float(result.p_values.min()),
           "p_values": result.p_values.round(4).to_dict(),
           "divergent_fraction": float(divergent.sum() / (replicates * s["chains"] * s["draws"])),
           "replicates_with_divergences": int((divergent > 0).sum()),
           "ranks": result.ranks.to_dict(orient="list")}
    return row, result


def markdown(rows: list[dict], env: dict, settings: dict, figure: str) -> str:
    lines = [
        "# Simulation-based calibration",
        "",
        "Written by `python -m benchmarks.sbc` (see its docstring); do not edit by hand.",
        "",
        f"- Date: {env['date']}; machine: {env['machine']}; JAX backend {env['jax_backend']}",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in env['versions'].items())}; "
        f"commit {env['commit']}",
        f"- Settings: {json.dumps(settings)}",
        "- Problem: one neuron per replicate, F=4 frequencies, L=3 lags, T=1000 bins, 2 trials, "
        "priors at a nominal 0.2 spikes/bin; the replicates fitted together, one NUTS each.",
        "- A run passes when the chi-square test of uniform ranks has p >= 0.01 for every "
        "checked parameter (activation raw parameters, `strf_scale` where the prior has one, "
        "three STRF weights).",
        "",
        "| run (activation/strf) | replicates | passes | min p | p per parameter | "
        "divergent draws | replicates with divergences | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = ", ".join(f"{k} {v:.2f}" for k, v in r["p_values"].items())
        lines.append(
            f"| {r['run']} | {r['replicates']} | {'yes' if r['passes'] else '**no**'} | "
            f"{r['min_p']:.3f} | {p} | {100 * r['divergent_fraction']:.2f}% | "
            f"{r['replicates_with_divergences']} | {r['seconds']:.0f} |")
    lines += ["", f"![Rank histograms; grey: 99% band under uniform ranks]({figure})", ""]
    return "\n".join(lines)


def figure(results: dict, path: Path) -> None:
    """All runs' rank histograms in one PNG, one row of panels per run."""
    from matplotlib.figure import Figure

    from bayesstrf.plotting import plot_sbc

    rows = [-(-len(result.ranks.columns) // 4) for result in results.values()]  # 4 per row
    fig = Figure(figsize=(10.4, 2.0 * sum(rows) + 0.4 * len(rows)), layout="constrained")
    subfigures = fig.subfigures(len(rows), 1, height_ratios=rows, squeeze=False).ravel()
    for sub, (run, result) in zip(subfigures, results.items(), strict=True):
        plot_sbc(result, title=run, fig=sub)
    _atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=80))


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = describe_environment("benchmarks.sbc", ("jax", "numpyro", "arviz"))
    rows, results = [], {}
    png = args.out.with_suffix(".png")
    for run in args.runs:
        row, result = run_one(run, args.settings)
        rows.append(row)
        results[run] = result
        print(f"{run}: passes={row['passes']} min p={row['min_p']:.3f} "
              f"({row['seconds']:.0f} s)", flush=True)
        payload = json.dumps({"environment": env, "settings": args.settings, "rows": rows},
                             indent=1)
        _atomic(args.out.with_suffix(".json"), lambda tmp, text=payload: tmp.write_text(text))
        figure(results, png)
        text = markdown(rows, env, args.settings, png.name)
        _atomic(args.out, lambda tmp, text=text: tmp.write_text(text))
    print(f"wrote {args.out}, {args.out.with_suffix('.json')} and {png}")
    return 0 if all(row["passes"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
