"""Peak memory of one `bayesstrf.fit` per problem size, each in a fresh process.

Run from the repository root::

    python -m benchmarks.memory                       # small and medium sizes
    python -m benchmarks.memory --sizes small --quick # a smoke run

For each size, one simulated softplus neuron (natural-like stimulus, 4 trials) is fitted with
4 chains and short warmup and sampling (peak memory is set by the data, the design and the
compiled programs, not by the number of draws, which only adds ``4 x draws x (F L + 4)``
floats), in a new Python process, whose peak resident set size (``ru_maxrss``) is read when it
ends. A second process only imports JAX and bayesstrf and simulates the same recording: the
difference is what the fit itself takes. The drive engine `bayesstrf.fit` chose and the size
of its lag matrix (``4 F L T`` bytes for float32) are listed beside it. Results go to
``docs/memory.md`` and ``.json`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from benchmarks.environment import ROOT, environment, write_atomic

SIZES = {
    "small": dict(n_freq=16, n_lags=12, n_time=20_000),
    "medium": dict(n_freq=32, n_lags=20, n_time=100_000),
}

#: The child process: simulate, optionally fit, print a JSON line.
CHILD = textwrap.dedent("""
    import json, sys, time
    import bayesstrf
    size, fit_it, warmup, draws = json.loads(sys.argv[1])
    sim = bayesstrf.simulate("softplus", n_neurons=1, n_trials=4, seed=0, **size)
    found = {}
    if fit_it:
        start = time.perf_counter()
        tree = bayesstrf.fit(sim.recording, "softplus", n_lags=size["n_lags"], chains=4,
                             warmup=warmup, draws=draws, seed=0, progress=False)
        found = {"drive": str(tree.attrs["sampler_drive"]),
                 "fit_seconds": time.perf_counter() - start}
    print(json.dumps(found))
""")


def peak(size: dict, fit: bool, warmup: int, draws: int) -> dict:
    """Run `CHILD` in a new process; its output and peak RSS (MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps([size, fit, warmup, draws])],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if after <= before:
        raise RuntimeError("a child's peak RSS is hidden by an earlier, larger child: run the "
                           "sizes in increasing order")
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"rss_mib": after / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=list(SIZES))
    parser.add_argument("--quick", action="store_true", help="warmup 10, draws 10")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "memory.md")
    args = parser.parse_args(argv)
    warmup, draws = (10, 10) if args.quick else (50, 50)
    rows = []
    for name in args.sizes:  # increasing: ru_maxrss of children is a running maximum
        size = SIZES[name]
        start = time.perf_counter()
        base = peak(size, False, warmup, draws)
        fitted = peak(size, True, warmup, draws)
        lag_mib = 4 * size["n_freq"] * size["n_lags"] * size["n_time"] / 2**20
        rows.append({"size": name, **size, "drive": fitted["drive"],
                     "lag_matrix_mib": lag_mib, "baseline_rss_mib": base["rss_mib"],
                     "fit_rss_mib": fitted["rss_mib"], "fit_seconds": fitted["fit_seconds"],
                     "seconds": time.perf_counter() - start})
        print(json.dumps(rows[-1]), flush=True)
    env = environment("benchmarks.memory", ("jax", "jaxlib", "numpyro"))
    lines = [
        "# Peak memory of one fit", "",
        f"Written by `python -m benchmarks.memory {' '.join(argv or sys.argv[1:])}` on "
        f"{env['date']} (commit {env['commit']}). Machine: {env['machine']}.", "",
        f"One softplus neuron, 4 trials, 4 chains x ({warmup} + {draws}), each fit in a fresh "
        "process (`benchmarks/memory.py`). RSS = peak resident memory of that process; "
        "baseline = the same process without the fit (JAX, bayesstrf, the simulated "
        "recording).", "",
        "| size | F x L x T | drive | lag matrix MiB | baseline RSS MiB | fit RSS MiB | fit adds "
        "MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['n_freq']} x {r['n_lags']} x {r['n_time']} | {r['drive']} | "
            f"{r['lag_matrix_mib']:.0f} | {r['baseline_rss_mib']:.0f} | {r['fit_rss_mib']:.0f} | "
            f"{r['fit_rss_mib'] - r['baseline_rss_mib']:.0f} |")
    out = args.out
    write_atomic(out, "\n".join(lines) + "\n")
    write_atomic(out.with_suffix(".json"), json.dumps({"environment": env, "rows": rows},
                                                      indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
