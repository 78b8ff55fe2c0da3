"""Simulation-based calibration of every activation family and STRF prior (issues 5 and 6).

Run from the repository root::

    python -m benchmarks.sbc            # full: writes docs/validation-sbc.md, .json and .png
    python -m benchmarks.sbc --quick --out /tmp/sbc.md   # a smoke run, about a minute

Each run is `bayesstrf.evaluation.validate.sbc` on a tiny problem (one natural-like stimulus, F=4,
L=3, T=1000, 2 trials): the three activation families under the default ``ridge`` prior, then every
other STRF prior under ``softplus``. The replicates of a run are fitted together as the neurons of
one recording, each by its own NUTS, so a run compiles once. Every run's ranks are tested for
uniformity per parameter by a chi-square test; a run passes when every p >= 0.01. The files are
rewritten after each run, atomically. ``--add`` keeps the rows already in the JSON (replacing only a
run repeated with the same settings), so a run can be repeated with other settings next to the
first.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.environment import atomic, settings_and_out, write_atomic
from benchmarks.environment import environment as describe_environment

FAMILIES = ("softplus", "sigmoid", "double_exponential")
PRIORS = ("smooth", "localized", "sparse", "lowrank:1", "lowrank:2")

#: Full run: 200 replicates per family (ridge), 100 per other prior (softplus); 2 chains x
#: 400 draws thinned to 99 (ranks 0..99, 10 bins). With 200 draws, double_exponential/ridge
#: fell to p = 0.008 (docs/validation-sbc.md keeps both runs).
FULL = dict(family_replicates=200, prior_replicates=100, chains=2, warmup=200, draws=400,
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
    parser.add_argument("--add", action="store_true",
                        help="keep the runs already in the JSON next to --out")
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


def run_one(run: str, s: dict, env: dict) -> dict:
    """One SBC run as a JSON row (its settings, ranks and summaries)."""
    from bayesstrf.evaluation.validate import sbc

    activation, strf = run.split("/")
    replicates = s["family_replicates"] if strf == "ridge" else s["prior_replicates"]
    start = time.perf_counter()
    result = sbc(activation, strf, replicates=replicates, n_ranks=s["n_ranks"], bins=s["bins"],
                 chains=s["chains"], warmup=s["warmup"], draws=s["draws"], seed=0)
    divergent = result.divergences.to_numpy()
    row = {"run": run, "settings": s, "date": env["date"], "commit": env["commit"],
           "replicates": replicates, "seconds": time.perf_counter() - start,
           "passes": result.passes(0.01), "min_p": float(result.p_values.min()),
           "p_values": result.p_values.round(4).to_dict(),
           "divergent_fraction": float(divergent.sum() / (replicates * s["chains"] * s["draws"])),
           "replicates_with_divergences": int((divergent > 0).sum()),
           "divergences": divergent.tolist(), "ranks": result.ranks.to_dict(orient="list")}
    return row


def result_of(row: dict):
    """The `bayesstrf.evaluation.validate.SBC` result stored in a JSON row."""
    import pandas as pd

    from bayesstrf.evaluation.validate import SBC

    return SBC(pd.DataFrame(row["ranks"]).rename_axis("replicate"),
               pd.Series(row["p_values"], name="p_value"), row["settings"]["n_ranks"],
               row["settings"]["bins"], pd.Series(row["divergences"], name="divergences"))


def label(row: dict) -> str:
    s = row["settings"]
    return f"{row['run']} ({s['chains']} x {s['draws']} draws)"


def markdown(rows: list[dict], env: dict, figure: str) -> str:
    lines = [
        "# Simulation-based calibration",
        "",
        "Written by `python -m benchmarks.sbc` (see its docstring); do not edit by hand.",
        "",
        f"- Machine: {env['machine']}; JAX backend {env['jax_backend']}",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in env['versions'].items())}",
        "- Problem: one neuron per replicate, F=4 frequencies, L=3 lags, T=1000 bins, 2 trials, "
        "priors at a nominal 0.2 spikes/bin; the replicates fitted together, one NUTS each; "
        "draws thinned evenly to `n_ranks - 1`, ranks in `bins` equal bins.",
        "- A run passes when the chi-square test of uniform ranks has p >= 0.01 for every "
        "checked parameter (activation raw parameters, `strf_scale` where the prior has one, "
        "three STRF weights).",
        "",
        "| run (activation/strf) | replicates | chains x draws (warmup) | n_ranks/bins | passes "
        "| min p | p per parameter | divergent draws | replicates with divergences | seconds "
        "| date, commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = r["settings"]
        p = ", ".join(f"{k} {v:.2f}" for k, v in r["p_values"].items())
        lines.append(
            f"| {r['run']} | {r['replicates']} | {s['chains']} x {s['draws']} ({s['warmup']}) "
            f"| {s['n_ranks']}/{s['bins']} | {'yes' if r['passes'] else '**no**'} | "
            f"{r['min_p']:.3f} | {p} | {100 * r['divergent_fraction']:.2f}% | "
            f"{r['replicates_with_divergences']} | {r['seconds']:.0f} | "
            f"{r['date'][:10]}, {r['commit']} |")
    lines += ["", "Ranks at either end (the truth below or above every kept draw), where more "
              "than three times the uniform expectation (2 / n_ranks of the replicates): "
              + ("; ".join(edge_excess(rows)) or "none") + ". The chi-square test's 10 bins "
              "dilute such a pile-up; ArviZ's PIT-ECDF test in each panel (p-value, suspicious "
              "points in orange) sees it.",
              "", f"![PIT Delta-ECDF of the SBC ranks per parameter "
              f"(arviz_plots.plot_ecdf_pit)]({figure})", ""]
    return "\n".join(lines)


def edge_excess(rows: list[dict]) -> list[str]:
    """'run (draws) parameter: k of n at an end, e expected' for each pile-up at the ends."""
    found = []
    for row in rows:
        n_ranks = row["settings"]["n_ranks"]
        for name, ranks in row["ranks"].items():
            at_end = sum(rank in (0, n_ranks - 1) for rank in ranks)
            expected = 2 * len(ranks) / n_ranks
            if at_end > 3 * expected:
                found.append(f"{label(row)} `{name}`: {at_end} of {len(ranks)}, "
                             f"{expected:.0f} expected")
    return found


def figure(rows: list[dict], path: Path) -> None:
    """All runs' PIT Delta-ECDFs in one PNG, one block of panels per run, stacked."""
    import io

    from PIL import Image

    from bayesstrf.viz.plotting import plot_sbc

    blocks = []
    for row in rows:
        rendered = io.BytesIO()
        plot_sbc(result_of(row), title=label(row)).savefig(rendered, format="png", dpi=80)
        blocks.append(Image.open(rendered).convert("RGB"))
    stacked = Image.new("RGB", (max(b.width for b in blocks), sum(b.height for b in blocks)),
                        "white")
    top = 0
    for block in blocks:
        stacked.paste(block, (0, top))
        top += block.height
    with atomic(path) as tmp:
        stacked.quantize(64, dither=Image.Dither.NONE).save(tmp, format="png", optimize=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = describe_environment("benchmarks.sbc", ("jax", "numpyro", "arviz-base", "arviz-stats"))
    json_path, png = args.out.with_suffix(".json"), args.out.with_suffix(".png")
    rows = (json.loads(json_path.read_text())["rows"] if args.add and json_path.is_file()
            else [])
    passed = []
    for run in args.runs:
        row = run_one(run, args.settings, env)
        rows = [r for r in rows if (r["run"], r["settings"]) != (run, args.settings)] + [row]
        passed.append(row["passes"])
        print(f"{label(row)}: passes={row['passes']} min p={row['min_p']:.3f} "
              f"({row['seconds']:.0f} s)", flush=True)
        payload = json.dumps({"environment": env, "rows": rows}, indent=1)
        write_atomic(json_path, payload)
        figure(rows, png)
        write_atomic(args.out, markdown(rows, env, png.name))
    print(f"wrote {args.out}, {json_path} and {png}")
    return 0 if all(passed) else 1


if __name__ == "__main__":
    raise SystemExit(main())
