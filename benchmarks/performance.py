"""Performance benchmark: bayesstrf's `fit` against plain NumPyro and Stan on the same data.

Run from the repository root::

    python -m benchmarks.performance                  # default sizes; docs/benchmarks.md + .json
    python -m benchmarks.performance --sizes small --activations softplus
    python -m benchmarks.performance --quick          # ~1 minute smoke run, temporary output

In ONE process, for every size, stimulus and activation family, one recording is simulated
(`bayesstrf.simulate`: ``natural``-like 1/f log-normal stimulus, where plain NUTS struggles, or
``white`` independent log-normal bins, where it mixes well; 1 neuron, 1 trial) and sampled by

- ``numpyro``: the same LN-Poisson model written plainly, as a user would: materialised lag
  matrix ``(T, F*L)`` with z-scored columns, ``Normal(0, 1)`` priors on the weights, the
  activation functions of `bayesstrf.model.activations` with bayesstrf's fixed constants and its
  default activation (and intercept) priors, NUTS with NumPyro's defaults (diagonal mass
  matrix, random initialisation in (-2, 2), chains one after the other: NumPyro's
  ``parallel`` default falls back to that on one device), 1000 warmup iterations;
- ``bayesstrf``: `bayesstrf.fit` with its defaults (ridge STRF prior, MAP + Laplace metric,
  two-stage dense warmup of 500 iterations);
- ``stan``: the ``numpyro`` model in Stan (pystan, ``pip install .[bench]``), Stan's defaults
  (diagonal metric, 1000 warmup iterations), when ``import stan`` works.

All methods draw the same number of draws per chain. Reported per method: wall time (JAX
trace+lower+compile seconds from `jax.monitoring`, or Stan's C++ build; warmup; sampling;
total, everything from the data to the draws), the minimum bulk ESS over every model
parameter in common units (STRF weights in spectrogram units, intercept, raw activation
parameters), ESS per second of total wall time, ESS per gradient evaluation of the sampling
phase (sum of leapfrog steps over the kept draws), max rank-normalised r_hat, divergences,
the correlation of the posterior-mean STRF with the true one, and the process's peak resident
memory so far; then the ratios bayesstrf/numpyro and bayesstrf/stan.

Results are written after every method (markdown and a JSON next to it, each atomically), so
a run that is stopped keeps what it has.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import resource
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path

import numpy as np

from benchmarks.environment import environment as describe_environment
from benchmarks.environment import settings_and_out, write_atomic

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("softplus", "sigmoid", "double_exponential")
METHODS = ("bayesstrf", "numpyro", "stan")

#: Problem sizes of issue 4; ``gpu_only`` sizes are skipped on a CPU backend.
SIZES = {
    "small": dict(n_freq=16, n_lags=12, n_time=20_000, gpu_only=False),
    "medium": dict(n_freq=32, n_lags=20, n_time=100_000, gpu_only=False),
    "large": dict(n_freq=32, n_lags=25, n_time=1_000_000, gpu_only=True),
}
QUICK_SIZE = dict(n_freq=8, n_lags=6, n_time=4000, gpu_only=False)

#: Sampler settings: ``warmup`` is bayesstrf's, ``baseline_warmup`` that of numpyro and stan.
FULL = dict(chains=4, warmup=500, baseline_warmup=1000, draws=1000)
QUICK = dict(chains=2, warmup=100, baseline_warmup=200, draws=200)

#: JAX compile events summed as compile time (tracing, lowering, XLA compilation).
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)

#: Draws per chain of one block of the baseline's sampling under ``--baseline-cap``.
BASELINE_BLOCK = 25

#: Prior sd of the baseline's weights on the z-scored lag matrix.
WEIGHT_SD = 1.0


class CompileClock:
    """Running total of JAX compile seconds, fed by a `jax.monitoring` listener."""

    def __init__(self) -> None:
        self.total = 0.0

    def __call__(self, event: str, duration: float, **kwargs) -> None:
        if event in COMPILE_EVENTS:
            self.total += duration


CLOCK = CompileClock()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.performance",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=list(SIZES),
                        help="problem sizes (default: all; 'large' runs only on a GPU)")
    parser.add_argument("--activations", nargs="+", choices=FAMILIES, default=list(FAMILIES),
                        help="activation families (default: all three)")
    parser.add_argument("--stimuli", nargs="+", choices=("natural", "white"),
                        default=["natural"], help="simulated stimuli (default: natural)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="samplers, run in this order (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="one tiny size (F=8, L=6, T=4000), 2 chains, 200 draws: ~1 minute "
                        "per family")
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown file to write, the JSON next to it (default: "
                        "docs/benchmarks.md; with --quick a file in the temporary folder)")
    parser.add_argument("--seed", type=int, default=0, help="data and sampler seed")
    parser.add_argument("--note", action="append", default=[],
                        help="a line for the report's notes (e.g. the machine was shared)")
    parser.add_argument("--baseline-cap", type=float, default=None, metavar="SECONDS",
                        help="stop the numpyro baseline's sampling once its warmup and "
                        "sampling have run this long, and report the ESS/s of the draws it "
                        "has (default: no cap)")
    for name in ("chains", "warmup", "baseline_warmup", "draws"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None,
                            help=f"override (full: {FULL[name]}, quick: {QUICK[name]})")
    args = parser.parse_args(argv)
    settings_and_out(parser, args, FULL, QUICK, "benchmarks")
    return args


# ---- data --------------------------------------------------------------------------------------

def make_problem(size: dict, family: str, seed: int, stimulus: str = "natural") -> dict:
    """Simulated recording (1 neuron, 1 trial) and its truth."""
    import bayesstrf

    sim = bayesstrf.simulate(family, n_neurons=1, n_freq=size["n_freq"], n_lags=size["n_lags"],
                             n_time=size["n_time"], stimulus=stimulus, seed=seed)
    recording = sim.recording
    return {"recording": recording, "spectrogram": np.asarray(recording.spectrograms[0]),
            "counts": np.asarray(recording.counts[0][0, 0], dtype=np.int64),
            "truth_strf": np.asarray(sim.truth["strf"][0]), "n_lags": size["n_lags"]}


def user_design(problem: dict) -> dict:
    """The plain user's design: lag matrix ``(T, F*L)``, columns z-scored."""
    from bayesstrf.model.design import lag_matrix

    lagged = lag_matrix(problem["spectrogram"], problem["n_lags"])
    mean, sd = lagged.mean(0), lagged.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return {"X": ((lagged - mean) / sd).astype(np.float32), "mean": mean, "sd": sd}


def activation_priors(family: str, counts: np.ndarray) -> dict[str, tuple[float, float]]:
    """bayesstrf's default raw-scale priors (and intercept prior) as ``name -> (loc, sd)``,
    in the order the model samples them."""
    from bayesstrf.model import activations
    from bayesstrf.model.lnp import build_priors, describe_priors

    act = activations.get(family)
    mean_rate = np.array([max(counts.mean(), 0.5 / counts.size)])
    described = describe_priors(build_priors(act, mean_rate))
    names = (("drive_offset",) if act.free_intercept else ()) + act.params
    return {name: (described[name]["loc"][0], described[name]["scale"][0]) for name in names}


def common_draws(strf_std_units, mean, sd, offset, raw: dict, shape) -> dict:
    """Draws in common units from the baseline's z-scored weights ``(chain, draw, F*L)``."""
    weights = np.asarray(strf_std_units) / sd
    intercept = np.asarray(offset) - np.asarray(strf_std_units) @ (mean / sd)
    return {"strf": weights.reshape(*weights.shape[:2], *shape), "intercept": intercept,
            **{name: np.asarray(value) for name, value in raw.items()}}


# ---- summaries ---------------------------------------------------------------------------------

def summarise(draws: dict, steps: np.ndarray, diverging: np.ndarray, truth: np.ndarray) -> dict:
    """Min bulk ESS, max r_hat (over every element), gradients and divergences of draws given
    as ``name -> (chain, draw, ...)`` arrays."""
    import arviz_stats as azs
    import xarray as xr

    data = xr.Dataset({name: (("chain", "draw", *[f"{name}_{i}" for i in range(v.ndim - 2)]),
                              np.asarray(v, dtype=float)) for name, v in draws.items()})
    ess = azs.ess(data, method="bulk")
    rhat = azs.rhat(data)
    worst = min(ess.data_vars, key=lambda name: float(ess[name].min()))
    mean_strf = np.asarray(draws["strf"]).mean((0, 1)).ravel()
    return {
        "min_ess_bulk": float(ess[worst].min()),
        "worst_parameter": str(worst),
        "max_rhat": float(max(float(rhat[name].max()) for name in rhat.data_vars)),
        "gradients_sampling": int(np.sum(steps)),
        "gradients_per_draw": float(np.mean(steps)),
        "divergences": int(np.sum(diverging)),
        "strf_corr_truth": float(np.corrcoef(mean_strf, truth.ravel())[0, 1]),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- methods -----------------------------------------------------------------------------------

def run_bayesstrf(problem: dict, family: str, s: dict, seed: int) -> dict:
    """bayesstrf's default `fit`; phases from its attrs (compile time falls inside them)."""
    import bayesstrf

    compile0, start = CLOCK.total, time.perf_counter()
    fit = bayesstrf.fit(problem["recording"], family, n_lags=problem["n_lags"],
                        chains=s["chains"], warmup=s["warmup"], draws=s["draws"], seed=seed,
                        progress=False)
    total = time.perf_counter() - start
    posterior = fit["posterior"]
    act = bayesstrf.model.activations.get(family)
    draws = {"strf": posterior["strf"].isel(neuron=0).values,
             "intercept": posterior["intercept"].isel(neuron=0).values}
    draws |= {name: posterior[name].isel(neuron=0).values for name in act.params}
    stats = fit["sample_stats"]
    attrs = fit.attrs
    return {
        "compile_s": CLOCK.total - compile0,
        "warmup_s": attrs["map_seconds"] + attrs["warmup_seconds"],
        "sampling_s": attrs["sampling_seconds"],
        "total_s": total,
        "phase_note": "warmup = MAP + Laplace + two-stage warmup; phases include compile",
        **summarise(draws, stats["n_steps"].values, stats["diverging"].values,
                    problem["truth_strf"]),
    }


def baseline_model(X, y, *, family: str, priors: dict):
    """The plain NumPyro LN-Poisson model: ``y ~ Poisson(f(X w + w0))``."""
    import numpyro
    import numpyro.distributions as dist

    from bayesstrf.model import activations
    act = activations.get(family)
    w = numpyro.sample("w", dist.Normal(0.0, WEIGHT_SD).expand([X.shape[1]]).to_event(1))
    offset = (numpyro.sample("drive_offset", dist.Normal(*priors["drive_offset"]))
              if act.free_intercept else 0.0)
    values = {name: numpyro.sample(name, dist.Normal(*priors[name])) for name in act.params}
    rate = act.function(X @ w + offset, **act.fixed, **values)
    numpyro.sample("y", dist.Poisson(rate), obs=y)


def run_numpyro(problem: dict, family: str, s: dict, seed: int) -> dict:
    """Plain NumPyro NUTS: diagonal mass, random init, ``baseline_warmup`` iterations."""
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC, NUTS

    start = time.perf_counter()
    design = user_design(problem)
    priors = activation_priors(family, problem["counts"])
    X, y = jnp.asarray(design["X"]), jnp.asarray(problem["counts"], jnp.float32)
    setup = time.perf_counter() - start

    model = functools.partial(baseline_model, family=family, priors=priors)
    cap = s.get("baseline_cap")
    # under a cap, sample in blocks of draws, each continuing from the last state
    block = s["draws"] if cap is None else min(BASELINE_BLOCK, s["draws"])
    mcmc = MCMC(NUTS(model), num_warmup=s["baseline_warmup"], num_samples=block,
                num_chains=s["chains"], chain_method="sequential",
                progress_bar=False)
    compile0, start = CLOCK.total, time.perf_counter()
    mcmc.warmup(jax.random.PRNGKey(seed), X, y)
    jax.block_until_ready(mcmc.post_warmup_state)
    warmup, compile_warmup = time.perf_counter() - start, CLOCK.total - compile0
    compile0, start = CLOCK.total, time.perf_counter()
    blocks: list[tuple[dict, dict]] = []
    while len(blocks) * block < s["draws"] and (
            cap is None or not blocks or warmup + time.perf_counter() - start < cap):
        if blocks:
            mcmc.post_warmup_state = mcmc.last_state
        mcmc.run(mcmc.post_warmup_state.rng_key, X, y,
                 extra_fields=("num_steps", "diverging"))
        blocks.append((jax.block_until_ready(mcmc.get_samples(group_by_chain=True)),
                       mcmc.get_extra_fields(group_by_chain=True)))
    sampling, compile_sampling = time.perf_counter() - start, CLOCK.total - compile0
    samples, extra = ({key: np.concatenate([np.asarray(part[i][key]) for part in blocks], 1)
                       for key in blocks[0][i]} for i in (0, 1))

    from bayesstrf.model import activations
    act = activations.get(family)
    offset = samples["drive_offset"] if act.free_intercept else 0.0
    draws = common_draws(samples["w"], design["mean"], design["sd"], offset,
                         {name: samples[name] for name in act.params},
                         problem["truth_strf"].shape)
    return {
        "compile_s": compile_warmup + compile_sampling,
        "warmup_s": warmup - compile_warmup,
        "sampling_s": sampling - compile_sampling,
        "total_s": setup + warmup + sampling,
        "phase_note": "compile excluded from warmup and sampling",
        "draws_kept": len(blocks) * block,
        **summarise(draws, np.asarray(extra["num_steps"]), np.asarray(extra["diverging"]),
                    problem["truth_strf"]),
    }


STAN_RATES = {
    "softplus": "log1p_exp(beta * z) / beta + log1p_exp(raw_b)",
    "sigmoid": "log1p_exp(raw_b) * inv_logit(z - c) + log1p_exp(raw_a)",
    "double_exponential": "log1p_exp(raw_a) * exp(-exp(fmin(-z - s, 30))) + log1p_exp(raw_b)",
}


def stan_program(family: str) -> str:
    """The baseline model in Stan (same priors, fixed constants and rate formula)."""
    from bayesstrf.model import activations
    act = activations.get(family)
    names = (("drive_offset",) if act.free_intercept else ()) + act.params
    scalars = "\n".join(f"  real {name};" for name in names)
    priors = "\n".join(f"  {name} ~ normal(loc[{i + 1}], scale[{i + 1}]);"
                       for i, name in enumerate(names))
    offset = " + drive_offset" if act.free_intercept else ""
    beta = "  real beta = log1p_exp(raw_beta);\n" if family == "softplus" else ""
    return f"""
data {{
  int<lower=1> T;
  int<lower=1> P;
  matrix[T, P] X;
  array[T] int<lower=0> y;
  real<lower=0> w_sd;
  vector[{len(names)}] loc;
  vector<lower=0>[{len(names)}] scale;
}}
parameters {{
  vector[P] w;
{scalars}
}}
model {{
  vector[T] z = X * w{offset};
{beta}  w ~ normal(0, w_sd);
{priors}
  y ~ poisson({STAN_RATES[family]});
}}
"""


def run_stan(problem: dict, family: str, s: dict, seed: int) -> dict:
    """pystan: Stan's defaults (diagonal metric, random init), ``baseline_warmup`` iterations.

    httpstan caches compiled models on disk, so ``compile_s`` is near 0 after the first build
    of a family's program. Chains run in parallel processes; Stan's warmup and sampling are
    timed together (``warmup_s`` left empty).
    """
    import stan

    from bayesstrf.model import activations
    act = activations.get(family)
    start = time.perf_counter()
    design = user_design(problem)
    priors = activation_priors(family, problem["counts"])
    data = {"T": int(design["X"].shape[0]), "P": int(design["X"].shape[1]),
            "X": design["X"].astype(float).tolist(), "y": problem["counts"].tolist(),
            "w_sd": WEIGHT_SD, "loc": [p[0] for p in priors.values()],
            "scale": [p[1] for p in priors.values()]}
    setup = time.perf_counter() - start
    start = time.perf_counter()
    posterior = stan.build(stan_program(family), data=data, random_seed=None)
    build = time.perf_counter() - start
    start = time.perf_counter()
    fit = posterior.sample(num_chains=s["chains"], num_warmup=s["baseline_warmup"],
                           num_samples=s["draws"])
    sampling = time.perf_counter() - start

    def by_chain(name: str) -> np.ndarray:
        # fit[name]: (*dims or 1, draws * chains), flat index = draw * chains + chain
        values = np.asarray(fit[name])
        values = values.reshape(*values.shape[:-1], s["draws"], s["chains"])
        values = np.moveaxis(values, (-1, -2), (0, 1))
        return values.reshape(s["chains"], s["draws"], -1).squeeze(-1) if (
            values.shape[2:] == (1,)) else values

    offset = by_chain("drive_offset") if act.free_intercept else 0.0
    draws = common_draws(by_chain("w"), design["mean"], design["sd"], offset,
                         {name: by_chain(name) for name in act.params},
                         problem["truth_strf"].shape)
    return {
        "compile_s": build,
        "warmup_s": None,
        "sampling_s": sampling,
        "total_s": setup + build + sampling,
        "phase_note": "sampling = Stan's warmup + sampling (one call); compile = pystan build",
        **summarise(draws, by_chain("n_leapfrog__"), by_chain("divergent__"),
                    problem["truth_strf"]),
    }


RUNNERS = {"bayesstrf": run_bayesstrf, "numpyro": run_numpyro, "stan": run_stan}


def stan_available() -> str | None:
    """None when pystan imports, else why not."""
    try:
        import stan  # noqa: F401
    except Exception as error:  # ImportError, or a broken httpstan build
        return f"pystan unavailable ({type(error).__name__}: {error}); pip install .[bench]"
    httpstan = tuple(int(part) for part in metadata.version("httpstan").split(".")[:2])
    if sys.version_info >= (3, 13) and httpstan <= (4, 17):
        # its precompiled stan_services.o (pybind11 2.9) calls _PyThreadState_UncheckedGet,
        # gone from CPython 3.13: every model builds, then fails to load
        return (f"httpstan {metadata.version('httpstan')} does not load compiled models on "
                f"Python {platform.python_version()} (undefined symbol "
                "_PyThreadState_UncheckedGet); run under Python 3.12 for the Stan row")
    return None


# ---- report ------------------------------------------------------------------------------------

def environment() -> dict:
    """This run's machine, versions and command (`benchmarks.environment`)."""
    packages = ("bayesstrf", "jax", "jaxlib", "numpyro", "arviz-stats", "pystan", "httpstan")
    return describe_environment("benchmarks.performance", packages)


def _cell(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:.3g}"
    return str(value)


def ratio(rows: list[dict], key: str, other: str) -> float | None:
    """bayesstrf's ``key`` over ``other``'s, from rows of one size and family."""
    found = {r["method"]: r.get(key) for r in rows if "error" not in r}
    if found.get("bayesstrf") and found.get(other):
        return found["bayesstrf"] / found[other]
    return None


def markdown(rows: list[dict], notes: list[str], env: dict, settings: dict) -> str:
    lines = [
        "# Performance benchmark",
        "",
        f"Written by `{env['command']}` on {env['date']}.",
        f"Machine: {env['machine']}; JAX backend {env['jax_backend']} ({env['jax_devices']}); "
        f"Python {env['python']}; " + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        + f". Load average at the start: {', '.join(f'{v:.1f}' for v in env['load_average'])}.",
        "",
        f"Settings: {settings['chains']} chains x {settings['draws']} draws for every method; "
        f"warmup {settings['warmup']} (bayesstrf, its default) and "
        f"{settings['baseline_warmup']} (numpyro, stan). Data: `bayesstrf.simulate` (1 neuron, "
        "1 trial, seed 0; natural-like or white stimulus as headed), the same recording for "
        "every method of a size, stimulus and family. See `benchmarks/performance.py` for "
        "the models and the definitions."
        + (f" The numpyro baseline's warmup and sampling were capped at "
           f"{settings['baseline_cap']:.0f} s: it keeps the draws it had (blocks of "
           f"{BASELINE_BLOCK} per chain; see its row)." if settings.get("baseline_cap")
           else ""),
        "",
        "Populations (neurons per hour, vectorised against a loop of fits) are measured by "
        "`python -m benchmarks.population`: see [population.md](population.md).",
        "",
        "Columns: compile = JAX trace/lower/compile seconds (Stan: pystan build, cached by "
        "httpstan after the first build); warmup and sampling wall seconds (bayesstrf: warmup "
        "= MAP + Laplace + both warmup stages, compile included; numpyro: compile excluded; "
        "stan: one call, shown under sampling); total = data to draws; min ESS = minimum bulk "
        "ESS over the STRF weights (spectrogram units), the intercept and the raw activation "
        "parameters; ESS/s over total; ESS/grad over the leapfrog steps of the kept draws; "
        "corr = correlation of the posterior-mean STRF with the truth; RSS = peak resident "
        "memory of the process so far (MB).",
        "",
    ]
    for note in notes:
        lines.append(f"- {note}")
    if notes:
        lines.append("")
    keys = dict.fromkeys((r["size"], r.get("stimulus", "natural"), r["family"]) for r in rows)
    for size, stimulus, family in keys:
        group = [r for r in rows
                 if (r["size"], r.get("stimulus", "natural"), r["family"]) == (size, stimulus,
                                                                              family)]
        first = group[0]
        lines += [f"## {size}, {stimulus} stimulus: {family} (F={first['n_freq']}, "
                  f"L={first['n_lags']}, T={first['n_time']})", "",
                  "| method | compile s | warmup s | sampling s | total s | min ESS (param) | "
                  "ESS/s | grads | grads/draw | ESS/grad | max r_hat | div. | corr | RSS |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in group:
            if "error" in r:
                lines.append(f"| {r['method']} | failed: {r['error']} |" + " |" * 12)
                continue
            lines.append(
                f"| {r['method']} | {_cell(r['compile_s'], 1)} | {_cell(r['warmup_s'], 1)} | "
                f"{_cell(r['sampling_s'], 1)} | {_cell(r['total_s'], 1)} | "
                f"{_cell(r['min_ess_bulk'], 0)} ({r['worst_parameter']}) | "
                f"{_cell(r['ess_per_s'], 3)} | {r['gradients_sampling']} | "
                f"{_cell(r['gradients_per_draw'], 1)} | {_cell(r['ess_per_gradient'], 4)} | "
                f"{_cell(r['max_rhat'], 3)} | {r['divergences']} | "
                f"{_cell(r['strf_corr_truth'], 3)} | {_cell(r['peak_rss_mb'], 0)} |")
            if r.get("draws_kept", settings["draws"]) < settings["draws"]:
                lines[-1] = lines[-1].replace(f"| {r['method']} |", f"| {r['method']} (capped: "
                                              f"{r['draws_kept']} draws per chain) |", 1)
        lines.append("")
        for other in ("numpyro", "stan"):
            per_s, per_grad = ratio(group, "ess_per_s", other), ratio(group, "ess_per_gradient",
                                                                        other)
            if per_s is not None:
                lines.append(f"- bayesstrf/{other}: ESS/s x{per_s:.2f}, ESS/grad "
                             f"x{per_grad:.2f}" if per_grad else f"- bayesstrf/{other}: ESS/s "
                             f"x{per_s:.2f}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write(out: Path, rows: list[dict], notes: list[str], env: dict, settings: dict) -> None:
    """Write the JSON and the markdown atomically (each via a temporary file)."""
    payload = {"environment": env, "settings": settings, "notes": notes, "rows": rows}
    for path, text in ((out.with_suffix(".json"), json.dumps(payload, indent=1)),
                       (out, markdown(rows, notes, env, settings))):
        write_atomic(path, text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    s = args.settings | {"baseline_cap": args.baseline_cap}
    import jax
    import jax.monitoring

    jax.monitoring.register_event_duration_secs_listener(CLOCK)
    env, rows, notes = environment(), [], list(args.note)
    sizes = {"quick": QUICK_SIZE} if args.quick else {name: SIZES[name] for name in args.sizes}
    methods = list(args.methods)
    if "stan" in methods and (why := stan_available()):
        notes.append(f"stan skipped: {why}")
        methods.remove("stan")
    started = time.perf_counter()
    for size_name, size in sizes.items():
        if size["gpu_only"] and jax.default_backend() == "cpu":
            notes.append(f"size {size_name} skipped: GPU only, and the JAX backend is the CPU")
            write(args.out, rows, notes, env, s)
            continue
        for stimulus, family in ((st, fam) for st in args.stimuli for fam in args.activations):
            problem = make_problem(size, family, args.seed, stimulus)
            for method in methods:
                row = {"size": size_name, "stimulus": stimulus, "family": family,
                       "method": method,
                       **{k: size[k] for k in ("n_freq", "n_lags", "n_time")}}
                try:
                    row |= RUNNERS[method](problem, family, s, args.seed)
                    row["ess_per_s"] = row["min_ess_bulk"] / row["total_s"]
                    row["ess_per_gradient"] = row["min_ess_bulk"] / row["gradients_sampling"]
                except Exception as error:  # keep a long run going; the table says why
                    traceback.print_exc()
                    row["error"] = f"{type(error).__name__}: {error}"
                row["peak_rss_mb"] = peak_rss_mb()
                rows.append(row)
                # every row compiles new programs: kept, they exhausted LLVM's code memory
                # ("Unable to allocate section memory") on the 8th row of a run
                jax.clear_caches()
                write(args.out, rows, notes, env, s)
                summary = (row.get("error") or f"min ESS {row['min_ess_bulk']:.0f}, ESS/s "
                           f"{row['ess_per_s']:.3f}, total {row['total_s']:.0f} s")
                print(f"[{time.perf_counter() - started:6.0f} s] {size_name} {stimulus} {family} "
                      f"{method}: {summary}", flush=True)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
