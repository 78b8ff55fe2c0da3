"""Compilation cost of one `fit`: a cold and a warm compilation cache, each in a fresh process.

Run from the repository root::

    python -m benchmarks.compile_time            # docs/compile-time.md + .json

A tiny softplus recording (1 neuron, F=8, L=6, T=4000; 2 chains x (20 + 20)) is fitted in a
new Python process three times, with one fresh compilation-cache folder
(``BAYESSTRF_COMPILATION_CACHE``): ``cold`` (empty cache), ``warm`` (the cache the first
run wrote) and ``warm again``. The sampling itself takes well under a second: the fit's wall time
is the price of compilation. Reported per run, from `jax.monitoring` events: the fit's wall
seconds, the XLA compilations and their backend seconds (compiling, or reading the cache),
the tracing and lowering seconds (which no cache saves), and the cache hits.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.environment import ROOT, environment, write_atomic

RUNS = ("cold", "warm", "warm again")

#: One fit in a fresh process, its JAX compile events summed; prints one JSON line.
CHILD = """
import collections, json, time
import jax, jax.monitoring
seconds, counts = collections.Counter(), collections.Counter()
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: seconds.update({event: duration}) or counts.update([event]))
jax.monitoring.register_event_listener(lambda event, **kw: counts.update([event]))
import bayesstrf
bayesstrf.enable_compilation_cache()
sim = bayesstrf.simulate("softplus", n_neurons=1, n_freq=8, n_lags=6, n_time=4000, seed=0)
seconds.clear(); counts.clear()
start = time.perf_counter()
bayesstrf.fit(sim.recording, "softplus", n_lags=6, chains=2, warmup=20, draws=20, seed=0,
              progress=False)
wall = time.perf_counter() - start
event = "/jax/core/compile/"
print(json.dumps({
    "fit_seconds": wall,
    "compilations": counts[event + "backend_compile_duration"],
    "backend_seconds": seconds[event + "backend_compile_duration"],
    "trace_seconds": seconds[event + "jaxpr_trace_duration"],
    "lower_seconds": seconds[event + "jaxpr_to_mlir_module_duration"],
    "cache_hits": counts["/jax/compilation_cache/cache_hits"],
}))
"""


def run_child(cache: Path) -> dict:
    """One fit in a new interpreter with ``cache`` as its compilation cache."""
    env = os.environ | {"BAYESSTRF_COMPILATION_CACHE": str(cache)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(env: dict, rows: dict) -> str:
    lines = [
        "# Compilation cost of one fit",
        "",
        "Written by `python -m benchmarks.compile_time` (see its docstring); do not edit by hand.",
        "",
        f"- Date: {env['date']}; machine: {env['machine']}; JAX backend {env['jax_backend']}; "
        f"load average at the start {env['load_average'][0]:.2f}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        + f"; commit {env['commit']}",
        "- Fit: 1 softplus neuron, F=8, L=6, T=4000, 2 chains x (20 + 20), each run a new "
        "process; `compile s` = tracing + lowering + backend (compiling or reading the cache).",
        "",
        "| cache | fit s | compile s | backend s | tracing s | lowering s | compilations "
        "| cache hits |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        compile_seconds = r["backend_seconds"] + r["trace_seconds"] + r["lower_seconds"]
        lines.append(
            f"| {name} | {r['fit_seconds']:.1f} | {compile_seconds:.1f} "
            f"| {r['backend_seconds']:.1f} | {r['trace_seconds']:.1f} "
            f"| {r['lower_seconds']:.1f} | {r['compilations']} | {r['cache_hits']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compile_time",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "compile-time.md",
                        help="markdown file to write, the JSON next to it")
    args = parser.parse_args(argv)
    env = environment("benchmarks.compile_time", ("jax", "jaxlib", "numpyro"))
    with tempfile.TemporaryDirectory() as cache:
        rows = {}
        for name in RUNS:
            rows[name] = run_child(Path(cache))
            print(name, json.dumps(rows[name]), flush=True)
    write_atomic(args.out.with_suffix(".json"), json.dumps({"environment": env, "runs": rows},
                                                           indent=1))
    write_atomic(args.out, report(env, rows))


if __name__ == "__main__":
    main()
