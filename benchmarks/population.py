"""Population benchmark (issue 7): neurons per hour, one vectorised `fit` over N neurons
(one NUTS per neuron in one compiled program) against a Python loop of one-neuron fits, in
the same run on the same simulated data.

    python -m benchmarks.population                 # N = 1, 10, 32 -> docs/population.md
    python -m benchmarks.population --neurons 100 1000 --loop-neurons 10   # on a GPU

Each row also gives, per neuron, the worst r_hat, the lowest bulk ESS and the divergences,
so that speed is never bought with worse sampling. ``--loop-neurons K`` times the loop on
the first K neurons only (one-neuron fits cost the same whatever N; the rate is per neuron).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.environment import environment, settings_and_out, write_atomic

FULL = dict(n_freq=16, n_lags=12, n_time=5000, chains=4, warmup=300, draws=500)
QUICK = dict(n_freq=6, n_lags=4, n_time=1000, chains=2, warmup=40, draws=40)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.population",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--neurons", nargs="+", type=int, default=[1, 10, 32],
                        help="population sizes N")
    parser.add_argument("--loop-neurons", type=int, default=None,
                        help="time the loop on the first K neurons only (default: all N)")
    parser.add_argument("--activation", default="softplus")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to write")
    parser.add_argument("--seed", type=int, default=0)
    for name in FULL:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None)
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.neurons):
        parser.error(f"--neurons: expected positive integers, found {args.neurons}")
    if args.loop_neurons is not None and args.loop_neurons < 1:
        parser.error(f"--loop-neurons: expected a positive integer, found {args.loop_neurons}")
    settings_and_out(parser, args, FULL, QUICK, "population")
    return args


def quality(tree) -> dict:
    """Worst r_hat, lowest bulk ESS and divergences over neurons, from `diagnose`."""
    from bayesstrf import diagnose

    report = diagnose(tree)
    return {"max_rhat": float(report.table.max_rhat.max()),
            "min_ess_bulk": float(report.table.min_ess_bulk.min()),
            "divergences": int(report.divergences)}


def run_size(n_neurons: int, args) -> dict:
    """Time a vectorised fit of N neurons and a loop of one-neuron fits on the same data."""
    from bayesstrf import fit, simulate

    s = args.settings
    recording = simulate(args.activation, n_neurons=n_neurons, n_freq=s["n_freq"],
                         n_lags=s["n_lags"], n_time=s["n_time"], seed=args.seed).recording
    sampler = dict(n_lags=s["n_lags"], chains=s["chains"], warmup=s["warmup"],
                   draws=s["draws"], seed=args.seed, progress=False)
    start = time.perf_counter()
    together = fit(recording, args.activation, **sampler)
    vectorised = time.perf_counter() - start
    row = {"neurons": n_neurons, "vectorised_seconds": vectorised,
           "vectorised_per_hour": 3600 * n_neurons / vectorised,
           "vectorised": quality(together)}
    if n_neurons == 1:
        return row | {"loop_neurons": 1, "loop_seconds": vectorised,
                      "loop_per_hour": row["vectorised_per_hour"], "loop": row["vectorised"],
                      "speed_up": 1.0}
    loop_neurons = min(args.loop_neurons or n_neurons, n_neurons)
    start, worst = time.perf_counter(), []
    for n in range(loop_neurons):
        worst.append(quality(fit(recording.select_neurons([n]), args.activation, **sampler)))
    loop = time.perf_counter() - start
    loop_per_hour = 3600 * loop_neurons / loop
    return row | {
        "loop_neurons": loop_neurons, "loop_seconds": loop, "loop_per_hour": loop_per_hour,
        "loop": {"max_rhat": max(w["max_rhat"] for w in worst),
                 "min_ess_bulk": min(w["min_ess_bulk"] for w in worst),
                 "divergences": sum(w["divergences"] for w in worst)},
        "speed_up": row["vectorised_per_hour"] / loop_per_hour,
    }


def markdown(rows: list[dict], env: dict, args) -> str:
    s = args.settings
    lines = [
        "# Population benchmark", "",
        f"`{env['command']}` on {env['date']}: {env['machine']}; JAX {env['jax_backend']} "
        f"({env['jax_devices']}); Python {env['python']}; "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        + f"; commit {env['commit']}; load average at the end "
        f"{', '.join(f'{v:.1f}' for v in env['load_average'])}.", "",
        f"Simulated {args.activation} neurons, natural-like stimulus, F={s['n_freq']}, "
        f"L={s['n_lags']}, T={s['n_time']}; each fit {s['chains']} chains x "
        f"({s['warmup']} warmup + {s['draws']} draws), wall time including compilation. "
        "Vectorised: one `fit` of all N neurons (one NUTS per neuron, vmapped). Loop: one "
        "`fit` per neuron, timed on the first K neurons.", "",
        "| N | vectorised s | neurons/h | loop K | loop s | neurons/h | speed-up | "
        "max r_hat (vec / loop) | min ESS (vec / loop) | divergences (vec / loop) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        v, lp = r["vectorised"], r["loop"]
        lines.append(
            f"| {r['neurons']} | {r['vectorised_seconds']:.0f} | {r['vectorised_per_hour']:.0f} "
            f"| {r['loop_neurons']} | {r['loop_seconds']:.0f} | {r['loop_per_hour']:.0f} | "
            f"{r['speed_up']:.1f}x | {v['max_rhat']:.3f} / {lp['max_rhat']:.3f} | "
            f"{v['min_ess_bulk']:.0f} / {lp['min_ess_bulk']:.0f} | "
            f"{v['divergences']} / {lp['divergences']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = []
    for n in args.neurons:
        rows.append(run_size(n, args))
        print(json.dumps(rows[-1]), flush=True)
        # after every size, so that a run stopped at a time limit keeps the sizes it finished
        env = environment("benchmarks.population", ("jax", "numpyro", "arviz-stats"))
        write_atomic(args.out.with_suffix(".json"), json.dumps(
            {"environment": env, "settings": args.settings, "rows": rows}, indent=1))
        write_atomic(args.out, markdown(rows, env, args))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
