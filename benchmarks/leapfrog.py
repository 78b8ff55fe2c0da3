"""What one NUTS leapfrog step costs against one gradient, inside the compiled loop.

Run from the repository root::

    python -m benchmarks.leapfrog                     # small and medium sizes
    python -m benchmarks.leapfrog --sizes small --drives lag_matrix conv

For each size, drive engine (`bayesstrf.model.design`) and chain method, on one simulated softplus
neuron (natural-like stimulus):

- ``gradient``: value and gradient of bayesstrf's potential for ``chains`` chains at once
  (``jax.vmap``) inside a compiled ``lax.fori_loop``, as NUTS calls it; seconds per iteration
  divided by ``chains``: the cost of one chain-gradient.
- ``leapfrog``: bayesstrf's lane-wise NUTS (`bayesstrf.inference.nuts`; fixed dense metric and step
  size from a short warmup, no adaptation) drawing ``draws`` per chain; wall seconds divided
  by the leapfrog steps summed over chains: the cost of one chain-leapfrog, tree bookkeeping
  and (vectorised chains) the lockstep included.
- ``lockstep``: for vectorised chains, the leapfrogs of the busiest chain over the mean: the
  lanes wait for each other at the end of the run only.

Every timing is taken after a first compiled call, with ``jax.block_until_ready``. Results go
to ``docs/leapfrog.md`` and ``.json`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.environment import ROOT, environment, write_atomic

SIZES = {
    "small": dict(n_freq=16, n_lags=12, n_time=20_000),
    "medium": dict(n_freq=32, n_lags=20, n_time=100_000),
}


def timed(function, *args) -> float:
    """Seconds of one call of a compiled ``function``, after a first (compiling) call."""
    import jax

    jax.block_until_ready(function(*args))
    start = time.perf_counter()
    jax.block_until_ready(function(*args))
    return time.perf_counter() - start


def measure(size: dict, drive: str, chains: int, draws: int, loops: int) -> list[dict]:
    import jax
    from jax.flatten_util import ravel_pytree

    import bayesstrf
    from bayesstrf.inference import mass_matrix
    from bayesstrf.inference import sampler as sampling
    from bayesstrf.inference.warmup import chain_starts, find_map
    from bayesstrf.model import activations, strf
    from bayesstrf.model.lnp import build_problem

    sim = bayesstrf.simulate("softplus", n_neurons=1, seed=0, **size)
    problem = build_problem(sim.recording, activations.get("softplus"), strf.get("ridge"),
                            size["n_lags"], drive=drive)
    key = jax.random.PRNGKey(0)
    point, potential, _ = find_map(problem.model, problem.args, key,
                                   model_kwargs=problem.kwargs)
    flat = ravel_pytree(point)[0]
    metric = mass_matrix.laplace_covariance(potential, flat)
    starts = flat + 0.01 * jax.random.normal(key, (chains, flat.shape[0]))

    @jax.jit
    def gradients(potential, starts):
        def body(_, x):
            value, grad = jax.vmap(jax.value_and_grad(potential))(x)
            return x - 1e-6 * grad + 0.0 * value[:, None]
        return jax.lax.fori_loop(0, loops, body, starts)

    gradient = timed(gradients, potential, starts) / loops / chains
    rows = []
    for method in ("vectorized", "sequential"):
        sampler = sampling.make_sampler(problem, point, potential, chains, 0.8, 10, method)
        z = sampling.positions(sampler, chain_starts(point, chains, key))
        lanes, lane_metric, factor = sampling.start(sampler, z, metric, 1.0, key)
        lanes, _ = sampling.run(sampler, lanes, lane_metric, factor, 0, 100, 100, "", False)
        lanes = sampling.shared_step(sampler, lanes)
        start = time.perf_counter()  # the program is compiled: warmup ran it
        _, records = sampling.run(sampler, lanes, lane_metric, factor, 100, 100 + draws, 100,
                                  "", False)
        seconds = time.perf_counter() - start
        steps = np.asarray(records["num_steps"], float)  # (chain, draw)
        leapfrog = seconds / steps.sum()
        rows.append({
            "n_freq": size["n_freq"], "n_lags": size["n_lags"], "n_time": size["n_time"],
            "drive": drive, "chain_method": method, "chains": chains,
            "gradient_ms": 1e3 * gradient, "leapfrog_ms": 1e3 * leapfrog,
            "leapfrog_over_gradient": leapfrog / gradient,
            "steps_per_draw": float(steps.mean()),
            "step_size": float(np.asarray(records["step_size"]).mean()),
            # the lanes wait for each other at the end of the run only
            "lockstep": (float(steps.sum(1).max() / steps.sum(1).mean())
                         if method == "vectorized" else 1.0),
        })
        print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(rows: list[dict], env: dict) -> str:
    lines = [
        "# NUTS leapfrog cost against the gradient, inside the compiled loop",
        "",
        f"{env['date']}, {env['machine']}; JAX {env['versions']['jax']} ({env['jax_backend']}),"
        f" NumPyro {env['versions']['numpyro']}; commit {env['commit']}; load average at the"
        f" start {env['load_average'][0]:.2f}. Command: `{env['command']}`.",
        "",
        "One simulated softplus neuron (natural-like stimulus); per chain: `gradient` is one",
        "value-and-gradient of the potential with all chains vmapped inside a `fori_loop`;",
        "`leapfrog` is the lane-wise NUTS's wall time over the leapfrog steps summed over",
        "chains (tree bookkeeping and lockstep included); `lockstep` is the leapfrogs of the",
        "busiest chain over the mean (1 for sequential chains).",
        "",
        "| F x L x T | drive | chains | gradient ms | leapfrog ms | leapfrog / gradient |"
        " steps per draw | lockstep |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n_freq']} x {r['n_lags']} x {r['n_time']} | {r['drive']} |"
            f" {r['chains']} {r['chain_method']} | {r['gradient_ms']:.3f} |"
            f" {r['leapfrog_ms']:.3f} | {r['leapfrog_over_gradient']:.2f} |"
            f" {r['steps_per_draw']:.1f} | {r['lockstep']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.leapfrog",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=list(SIZES))
    parser.add_argument("--drives", nargs="+", choices=("lag_matrix", "conv"),
                        default=["lag_matrix", "conv"])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=50)
    parser.add_argument("--loops", type=int, default=50, help="gradients timed per chain")
    parser.add_argument("--out", default=str(ROOT / "docs" / "leapfrog.md"))
    args = parser.parse_args(argv)
    env = environment("benchmarks.leapfrog", ("jax", "jaxlib", "numpyro"))
    rows = []
    for name in args.sizes:
        for drive in args.drives:
            rows += measure(SIZES[name], drive, args.chains, args.draws, args.loops)
    out = Path(args.out)
    write_atomic(out, markdown(rows, env))
    write_atomic(out.with_suffix(".json"), json.dumps({"environment": env, "rows": rows},
                                                      indent=1))


if __name__ == "__main__":
    main()
