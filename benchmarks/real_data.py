"""Held-out validation on real recordings: NS1 (ferret A1), the songbird neuron, the TORC unit.

Run from the repository root, one page per dataset::

    python -m benchmarks.real_data --datasets ns1        # docs/validation-ns1.md, .json, .png
    python -m benchmarks.real_data --quick --out /tmp/validation.md   # ~1 minute smoke run

Each recording is split by stimulus (NS1: deepSTRF's 4 test sounds,
`bayesstrf.data.datasets.ns1_test_segments`; songbird: the last 4 songs; TORC: every fifth TORC, 6
of 30, both phases of three ripple densities). On the training sounds each activation family
is fitted by NUTS with each STRF prior, every neuron of the dataset in one `bayesstrf.fit`
call (the population path), and, for comparison, by a point estimate of the same model: the
MAP (L-BFGS in the unconstrained space, `bayesstrf.inference.warmup.find_map`) under the ridge
prior, evaluated on the test sounds with the same prediction code as a one-draw posterior.
Held-out metrics come from `bayesstrf.evaluation.comparison.held_out_metrics` (CCnorm with a 90%
posterior interval, bits per spike, log predictive density, PSTH coverage); convergence from
`bayesstrf.diagnose`; ``--kfold K`` adds the families' k-fold comparison by sound.

Results are written after every fit call (the JSON and figures next to the markdown file), so
a long run that stops keeps what it has; ``--resume`` skips the fits already in that JSON. The
data live outside the repository (``../shared/data`` by default, ``--data`` otherwise) and are
never copied into it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.environment import atomic, settings_and_out, write_atomic
from benchmarks.environment import environment as describe_environment

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FAMILIES = ("sigmoid", "double_exponential", "softplus")
PRIORS = ("ridge", "smooth")
DATASETS = ("ns1", "songbird", "torc")
#: What each page's held-out stimuli are, and what that asks of the model.
SPLITS = {
    "ns1": "Held out: deepSTRF's 4 test sounds (`ns1_test_segments`); trained on the other 16.",
    "songbird": "Held out: the last 4 songs; trained on the others.",
    "torc": "Held out: every fifth TORC (6 of 30: TORCs 5, 10, ..., 30), i.e. both phases of "
            "three ripple densities (0.6, -0.4 and -1.4 cyc/oct, the last at the edge of the "
            "range). Each TORC carries one ripple density, so the held-out "
            "responses probe spectral modulations absent from the training stimuli: a linear "
            "STRF fitted on the other densities predicts them only through what its prior "
            "says about how the STRF's 2-D spectrum varies between densities (nothing, for "
            "`ridge`). Low held-out CCnorm here measures that extrapolation, not the fit.",
}

#: Full-run settings. NS1: 15 lags of 5 ms (75 ms; the design notes' tuned MAP LN used 15);
#: songbird: 2 ms bins summed in pairs (`Recording.rebin`), 12 lags of 4 ms (48 ms), 16
#: bands (at 2 ms x 30 lags x 31 bands, NUTS needed 255-511 steps per draw at 5-7 ms each:
#: hours per fit on a 2-core CPU); TORC: all 30 channels (1/6 octave), 20 lags of 5 ms
#: (100 ms; the unit's STA peaks at 15 ms).
FULL = dict(chains=4, warmup=500, draws=1000, ns1_lags=15, ns1_freq=34, songbird_lags=12,
            songbird_freq=16, songbird_rebin=2, torc_lags=20, torc_freq=30, neurons=None,
            families=FAMILIES, priors=PRIORS, kfold=0)
#: --quick: one neuron per dataset, one family, one prior, few draws, smaller problems.
QUICK = dict(chains=2, warmup=20, draws=20, ns1_lags=8, ns1_freq=12, songbird_lags=8,
             songbird_freq=8, songbird_rebin=2, torc_lags=8, torc_freq=10, neurons=1,
             families=("softplus",), priors=("ridge",), kfold=0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_data",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings (1 neuron, 1 family, few draws), about a minute")
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown file to write, the JSON next to it (default: "
                        "docs/validation.md; with --quick a file in the temporary folder)")
    parser.add_argument("--data", type=Path, default=DATA,
                        help="folder holding ns1/, songbird-auditory/ and ferret-a1-torc/")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=None,
                        help=f"activation families (full: {' '.join(FAMILIES)})")
    parser.add_argument("--priors", nargs="+", default=None,
                        help=f"STRF priors, e.g. ridge smooth lowrank:2 (full: {' '.join(PRIORS)})")
    parser.add_argument("--progress", action="store_true",
                        help="progress bars of each fit on stderr")
    parser.add_argument("--render", action="store_true",
                        help="no fits: rewrite the markdown and figures from the JSON next to "
                        "--out")
    parser.add_argument("--resume", action="store_true",
                        help="keep the fits already in the JSON next to --out")
    for name in ("chains", "warmup", "draws", "ns1_lags", "ns1_freq", "songbird_lags",
                 "songbird_freq", "songbird_rebin", "torc_lags", "torc_freq", "neurons", "kfold"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None,
                            help=f"override (full: {FULL[name]}, quick: {QUICK[name]})")
    args = parser.parse_args(argv)
    settings_and_out(parser, args, FULL, QUICK, "validation-" + "-".join(args.datasets))
    from bayesstrf.model import strf as strf_priors
    for prior in args.settings["priors"]:
        try:
            strf_priors.get(prior)
        except ValueError as error:
            parser.error(f"--priors: {error}")
    if not args.data.is_dir():
        parser.error(f"--data: expected the shared data folder, found {str(args.data)!r}")
    return args


# ---- recordings ------------------------------------------------------------------------------

def load_datasets(args) -> dict:
    """``name -> (recording, test segment ids, n_lags)`` for the requested datasets."""
    from bayesstrf.data.datasets import load_ferret_torc, load_ns1, load_songbird, ns1_test_segments

    s = args.settings
    out = {}
    if "ns1" in args.datasets:
        recording = load_ns1(args.data / "ns1", n_freq=s["ns1_freq"])
        out["ns1"] = (recording, ns1_test_segments(), s["ns1_lags"])
    if "songbird" in args.datasets:
        recording = load_songbird(args.data / "songbird-auditory", n_freq=s["songbird_freq"])
        if s["songbird_rebin"] > 1:
            recording = recording.rebin(s["songbird_rebin"])
        out["songbird"] = (recording, recording.segment_ids[-4:].tolist(), s["songbird_lags"])
    if "torc" in args.datasets:
        recording = load_ferret_torc(args.data / "ferret-a1-torc", n_freq=s["torc_freq"])
        out["torc"] = (recording, recording.segment_ids[4::5].tolist(), s["torc_lags"])
    return out


# ---- fits --------------------------------------------------------------------------------------

def which_nonlinearity(dataset: str, train, n_lags: int, s: dict,
                       progress: bool = False) -> list[dict]:
    """The families compared on every neuron's training sounds by k-fold over sounds
    (`bayesstrf.compare`, ``method="kfold"``, ridge prior; all neurons in each fit): one row per
    neuron and family."""
    import bayesstrf

    start = time.perf_counter()
    comparison = bayesstrf.compare(train, s["families"], method="kfold", folds=s["kfold"],
                                   strf="ridge", n_lags=n_lags, chains=s["chains"],
                                   warmup=s["warmup"], draws=s["draws"], seed=0,
                                   progress=progress)
    seconds = time.perf_counter() - start
    return [{"dataset": dataset, "neuron": str(neuron), "family": family, "method": "kfold",
             "folds": min(s["kfold"], train.n_segments), "rank": int(row["rank"]),
             "elpd": float(row["elpd"]), "se": float(row["se"]),
             "elpd_diff": float(row["elpd_diff"]), "dse": float(row["dse"]),
             "seconds": seconds, "n_lags": n_lags, "n_freq": train.n_freq, "dt": train.dt}
            for (neuron, family), row in comparison.per_neuron.iterrows()]


def map_fit(train, family_name: str, n_lags: int, seed: int = 0):
    """MAP of the LN model under the ridge prior, every neuron at once, as a one-chain,
    one-draw DataTree that the prediction code (`held_out_metrics`) reads like a posterior."""
    import jax
    import numpy as np
    import xarray as xr
    from numpyro.infer.util import constrain_fn

    from bayesstrf.inference.warmup import find_map
    from bayesstrf.model import activations
    from bayesstrf.model import strf as strf_priors
    from bayesstrf.model.lnp import build_problem

    family = activations.get(family_name)
    problem = build_problem(train, family, strf_priors.get("ridge"), n_lags)
    args = (problem.design, problem.counts)
    point, _, _ = find_map(problem.model, args, jax.random.PRNGKey(seed))
    values = constrain_fn(problem.model, args, {}, point, return_deterministic=True)
    dims = {"strf": ("neuron", "freq", "lag")}
    posterior = xr.Dataset({
        name: (("chain", "draw", *dims.get(name, ("neuron",))),
               np.asarray(values[name], dtype=float)[None, None])
        for name in ("strf", "intercept", *family.params)
    }, coords={"neuron": train.neuron_ids})
    constant = xr.Dataset({"mean_rate": ("neuron", problem.mean_rate)},
                          coords={"neuron": train.neuron_ids})
    tree = xr.DataTree.from_dict({"posterior": posterior, "constant_data": constant})
    tree.attrs = {"activation": family.name}
    return tree


def evaluate(dataset: str, train, test, n_lags: int, family: str, method: str,
             s: dict, progress: bool = False) -> list[dict]:
    """One fit of every neuron of ``train`` (a single `bayesstrf.fit` call, or one MAP), its
    held-out metrics and diagnostics: one flat row per neuron."""
    import numpy as np

    import bayesstrf
    from bayesstrf.evaluation.comparison import held_out_metrics

    start = time.perf_counter()
    if method == "map":
        fit = map_fit(train, family, n_lags)
    else:
        fit = bayesstrf.fit(train, family, strf=method, n_lags=n_lags, chains=s["chains"],
                            warmup=s["warmup"], draws=s["draws"], seed=0, progress=progress)
    seconds = time.perf_counter() - start
    metrics = held_out_metrics(fit, test)
    posterior = fit["posterior"]
    strf_mean = posterior["strf"].mean(("chain", "draw")).values
    if method != "map":
        diagnostics = bayesstrf.diagnose(fit)
        stats = fit["sample_stats"]
        per_neuron = "neuron" in stats["diverging"].dims
    rows = []
    for n, neuron in enumerate(train.neuron_ids):
        row = {"dataset": dataset, "neuron": str(neuron), "family": family, "method": method,
               "n_lags": n_lags, "n_freq": train.n_freq, "dt": train.dt,
               "neurons_in_fit": train.n_neurons, "seconds": seconds,
               "strf_mean": np.round(strf_mean[n], 5).tolist()}
        row |= {key: float(metrics.loc[neuron, key]) for key in
                ("cc_norm", "cc_norm_lower", "cc_norm_upper", "cc_raw", "bits_per_spike", "lpd",
                 "coverage")}
        if family == "softplus":  # the sharpness: ReLU as beta -> infinity (question 4)
            beta = np.logaddexp(0.0, posterior["raw_beta"].isel(neuron=n).values.ravel())
            row |= {"beta_median": float(np.median(beta)),
                    "beta_lower": float(np.quantile(beta, 0.05)),
                    "beta_upper": float(np.quantile(beta, 0.95))}
        if method != "map":
            table = diagnostics.table.iloc[n]
            mine = {"neuron": n} if per_neuron else {}
            row |= {key: float(fit.attrs[key]) for key in
                    ("map_seconds", "warmup_seconds", "sampling_seconds")}
            row |= {"max_rhat": float(table.max_rhat), "worst_rhat": str(table.worst_rhat),
                    "min_ess_bulk": float(table.min_ess_bulk),
                    "min_ess_tail": float(table.min_ess_tail),
                    "divergences": int(stats["diverging"].isel(mine).sum()),
                    "draws_total": int(stats["diverging"].isel(mine).size),
                    "converged": bool(table.rhat_ok and table.ess_ok
                                      and stats["diverging"].isel(mine).mean() < 0.01),
                    "n_steps_mean": float(stats["n_steps"].isel(mine).mean())}
        rows.append(row)
    return rows


# ---- report ------------------------------------------------------------------------------------

def failed(setting: dict, neurons: list[str], family: str, method: str, error) -> list[dict]:
    """One row per neuron saying which fit failed and why."""
    return [setting | {"neuron": neuron, "family": family, "method": method,
                       "error": f"{type(error).__name__}: {error}"} for neuron in neurons]


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def _max(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return max(values) if values else None


def environment() -> dict:
    """This run's machine, versions and command (`benchmarks.environment`)."""
    packages = ("bayesstrf", "jax", "jaxlib", "numpyro", "arviz-stats", "numpy", "scipy", "xarray")
    return describe_environment("benchmarks.real_data", packages)


def _cell(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _rhat(row: dict) -> str:
    """Max r_hat, with the parameter it belongs to when over 1.01 (where known)."""
    worst = row.get("worst_rhat")
    failed = (row.get("max_rhat") or 0) >= 1.01 and isinstance(worst, str)
    return _cell(row.get("max_rhat")) + (f" ({worst})" if failed else "")


def markdown(rows: list[dict], env: dict, settings: dict) -> str:
    import pandas as pd

    lines = [
        "# Held-out validation on real recordings",
        "",
        f"Written by `{env['command']}` on {env['date']} (commit {env['commit']}).",
        f"Machine: {env['machine']}; JAX devices: {env['jax_devices']}; Python {env['python']}; "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + ".",
        "",
        f"NUTS: {settings['chains']} chains x ({settings['warmup']} warmup + "
        f"{settings['draws']} draws), seed 0. `map` = MAP of the same model under the ridge "
        "prior (L-BFGS), predicted as a single draw (no interval). Metrics on the held-out "
        "stimuli only: CCnorm (Schoppe et al. 2016) with its 90% posterior interval, bits per "
        "spike relative to the training mean rate, log predictive density (nats, summed), "
        "coverage = share of held-out bins whose PSTH lies in its 90% posterior predictive "
        "interval (repeats summed per bin, randomised PIT for discrete counts: "
        "`bayesstrf.evaluation.metrics.psth_coverage`; 0.90 when calibrated; the MAP's interval is "
        "Poisson noise alone). Softplus sharpness `beta = softplus(raw_beta)`: posterior "
        "median [90%] (ReLU as beta grows). Diagnostics: max r_hat, min bulk ESS, divergences. "
        "STRF / MAP: the norm of the posterior-mean STRF over the norm of the same family's MAP "
        "STRF, median over neurons (above 1: the posterior mean is shrunk less than the mode).",
        "",
    ]
    commits = sorted({r.get("commit", env["commit"]) for r in rows})
    if len(commits) > 1:  # --resume kept rows of earlier runs
        lines += [f"Rows come from commits {', '.join(commits)} (`--resume`): each row's "
                  "commit is in the JSON.", ""]
    frame = _with_norm_ratio(
        pd.DataFrame([r for r in rows if "error" not in r and r["method"] != "kfold"]))
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        part = frame[frame.dataset == dataset] if len(frame) else frame
        first = next(r for r in rows if r["dataset"] == dataset)
        lines += [f"## {dataset} ({first['n_freq']} bands x {first['n_lags']} lags of "
                  f"{1000 * first.get('dt', float('nan')):g} ms)", "", SPLITS[dataset], ""]
        done = {(r["family"], r["method"]) for r in rows
                if r["dataset"] == dataset and "error" not in r}
        wanted = [(f, m) for m in ("map", *settings["priors"]) for f in settings["families"]]
        if any(pair not in done for pair in wanted):
            lines += ["**Not run yet** (the run stopped; `--resume` continues it): "
                      + ", ".join(f"{f} {m}" for f, m in wanted if (f, m) not in done) + ".",
                      ""]
        if len(part):
            lines += ["Average over neurons:", "",
                      "| family | method | neurons | CCnorm | bits/spike | lpd | coverage "
                      "| converged | STRF / MAP |", "|---|---|---|---|---|---|---|---|---|"]
            for (family, method), group in part.groupby(["family", "method"], sort=False):
                converged = ("–" if method == "map" else
                             f"{int(group.converged.sum())}/{len(group)}")
                lines.append(
                    f"| {family} | {method} | {len(group)} | {_cell(group.cc_norm.mean())} | "
                    f"{_cell(group.bits_per_spike.mean())} | {_cell(group.lpd.mean(), 1)} | "
                    f"{_cell(group.get('coverage', pd.Series(dtype=float)).mean())} | "
                    f"{converged} | {_cell(group.strf_norm_ratio.median(), 2)} |")
            lines += ["", "Per neuron:", "",
                      "| neuron | family | method | CCnorm [90%] | bits/spike | lpd | coverage "
                      "| beta [90%] | r_hat | ESS bulk | div. | fit s |",
                      "|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for r in part.to_dict("records"):
                interval = ("" if r["method"] == "map" else
                            f" [{_cell(r['cc_norm_lower'])}, {_cell(r['cc_norm_upper'])}]")
                median = r.get("beta_median")
                beta = ("–" if median is None or median != median else
                        f"{_cell(r['beta_median'], 2)}" + ("" if r["method"] == "map" else
                        f" [{_cell(r['beta_lower'], 2)}, {_cell(r['beta_upper'], 2)}]"))
                lines.append(
                    f"| {r['neuron']} | {r['family']} | {r['method']} | "
                    f"{_cell(r['cc_norm'])}{interval} | {_cell(r['bits_per_spike'])} | "
                    f"{_cell(r['lpd'], 1)} | {_cell(r.get('coverage'))} | {beta} | "
                    f"{_rhat(r)} | "
                    f"{_cell(r.get('min_ess_bulk'), 0)} | {_cell(r.get('divergences'), 0)} | "
                    f"{_cell(r['seconds'], 0)} |")
        lines += kfold_markdown([r for r in rows if r["dataset"] == dataset
                                 and r["method"] == "kfold" and "error" not in r])
        errors = [r for r in rows if r["dataset"] == dataset and "error" in r]
        lines += [""] + [f"- failed: {r['neuron']} {r['family']} {r['method']}: {r['error']}"
                         for r in errors]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _with_norm_ratio(frame):
    """``frame`` with ``strf_norm_ratio``: each fit's posterior-mean STRF norm over the norm of
    the MAP STRF of the same dataset, neuron and family (NaN without one; 1 for the MAP)."""
    import numpy as np

    if not len(frame) or "strf_mean" not in frame:
        return frame.assign(strf_norm_ratio=np.nan)
    key = ["dataset", "neuron", "family"]
    normed = frame[key + ["method"]].assign(norm=frame.strf_mean.map(
        lambda w: float(np.linalg.norm(w)) if isinstance(w, list) else np.nan))
    maps = normed[normed.method == "map"][key + ["norm"]].rename(columns={"norm": "of_map"})
    merged = normed.merge(maps, on=key, how="left")  # keeps frame's row order
    return frame.assign(strf_norm_ratio=(merged.norm / merged.of_map).to_numpy())


def kfold_markdown(rows: list[dict]) -> list[str]:
    """The section answering "which nonlinearity": per neuron, the k-fold ranking."""
    if not rows:
        return []
    neurons = dict.fromkeys(r["neuron"] for r in rows)
    lines = ["", f"Which nonlinearity: k-fold by sound ({rows[0]['folds']} folds of the training "
             "sounds, ridge prior, the same NUTS settings), elpd difference to the first-ranked "
             "family and its SE (`bayesstrf.compare(..., method='kfold')`):", "",
             "| neuron | first | second (diff +- SE) | third (diff +- SE) | second > 2 SE "
             "behind | s |", "|---|---|---|---|---|---|"]
    clear = 0
    for neuron in neurons:
        ranked = sorted((r for r in rows if r["neuron"] == neuron), key=lambda r: r["rank"])
        behind = [f"{r['family']} ({r['elpd_diff']:.1f} +- {r['dse']:.1f})" for r in ranked[1:]]
        decided = len(ranked) > 1 and -ranked[1]["elpd_diff"] > 2 * ranked[1]["dse"]
        clear += decided
        cells = [neuron, ranked[0]["family"], *behind, *["–"] * (2 - len(behind)),
                 "yes" if decided else "no", _cell(ranked[0]["seconds"], 0)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"{clear} of {len(neurons)} neuron(s) prefer one family by more than 2 SE "
              "over the second.", ""]
    return lines


def best_fits(rows: list[dict]) -> tuple[str, str] | None:
    """The (family, prior) of NUTS fits with the highest mean held-out CCnorm."""
    import pandas as pd

    frame = pd.DataFrame([r for r in rows if "error" not in r
                          and r["method"] not in ("map", "kfold")])
    if not len(frame):
        return None
    return frame.groupby(["family", "method"]).cc_norm.mean().idxmax()


def figures(out: Path, rows: list[dict]) -> list[str]:
    """``<out>.png``: held-out CCnorm of each NUTS fit against the MAP's, one point per neuron
    and fit; ``<out>-strfs.png``: the posterior-mean STRFs of every neuron under the best
    (family, prior). Written atomically; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    good = [r for r in rows if "error" not in r and r["method"] != "kfold"]
    maps = {(r["dataset"], r["neuron"], r["family"]): r["cc_norm"] for r in good
            if r["method"] == "map"}
    pairs = [(maps[key], r) for r in good if r["method"] != "map"
             and (key := (r["dataset"], r["neuron"], r["family"])) in maps]
    names = []
    if pairs:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        markers = {"ridge": "o", "smooth": "s"}
        colours = dict(zip(FAMILIES, ("tab:blue", "tab:orange", "tab:green"), strict=True))
        for (family, method) in dict.fromkeys((r["family"], r["method"]) for _, r in pairs):
            x, y = zip(*[(m, r["cc_norm"]) for m, r in pairs
                         if (r["family"], r["method"]) == (family, method)], strict=True)
            ax.scatter(x, y, s=18, marker=markers.get(method, "^"),
                       color=colours.get(family, "k"), label=f"{family}, {method}", alpha=0.8)
        low = np.nanmin([min(m, r["cc_norm"]) for m, r in pairs] + [0.0])
        ax.plot([low, 1], [low, 1], color="0.6", lw=0.8)
        ax.set(xlabel="MAP held-out CCnorm", ylabel="posterior-mean held-out CCnorm",
               title="Bayesian vs MAP, one point per neuron")
        ax.legend(fontsize=7)
        names.append(save_figure(fig, out.with_suffix(".png")))
    best = best_fits(rows)
    strfs = [r for r in good if best and (r["family"], r["method"]) == best and "strf_mean" in r]
    if strfs:
        columns = min(5, len(strfs))
        lines = -(-len(strfs) // columns)
        fig, axes = plt.subplots(lines, columns, figsize=(2.2 * columns, 2.4 * lines),
                                 squeeze=False)
        for ax, r in zip(axes.flat, strfs, strict=False):
            w = np.asarray(r["strf_mean"])
            limit = np.abs(w).max() or 1.0
            ax.imshow(w, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit,
                      extent=(-0.5 * r["dt"] * 1e3, (w.shape[1] - 0.5) * r["dt"] * 1e3,
                              -0.5, w.shape[0] - 0.5))
            ax.set_title(f"{r['neuron'].replace('/', ' ')}\nCCnorm {r['cc_norm']:.2f}",
                         fontsize=6)
            ax.set_xlabel("lag (ms)", fontsize=7)
            ax.tick_params(labelsize=6)
        for ax in list(axes.flat)[len(strfs):]:
            ax.set_visible(False)
        fig.suptitle(f"posterior-mean STRFs ({best[0]}, {best[1]}); rows: frequency bands",
                     fontsize=8)
        names.append(save_figure(fig, out.with_name(out.stem + "-strfs.png")))
    return names


def save_figure(fig, path: Path) -> str:
    """Save a matplotlib figure atomically as PNG and close it; returns the file name."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path.name


def write(out: Path, rows: list[dict], env: dict, settings: dict) -> None:
    """Write the JSON, the figures and the markdown, each atomically."""
    payload = {"environment": env, "settings": {k: list(v) if isinstance(v, tuple) else v
                                                 for k, v in settings.items()},
               "rows": rows}
    write_atomic(out.with_suffix(".json"), json.dumps(payload, indent=1))
    images = figures(out, rows)
    write_atomic(out, markdown(rows, env, settings)
                 + "".join(f"\n![{name}]({name})\n" for name in images))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        saved = json.loads(args.out.with_suffix(".json").read_text())
        write(args.out, saved["rows"], saved["environment"], saved["settings"])
        print(f"wrote {args.out} from {args.out.with_suffix('.json')}")
        return 0
    s = args.settings
    env = environment()
    done, rows = set(), []
    if args.resume and args.out.with_suffix(".json").is_file():
        rows = [r for r in json.loads(args.out.with_suffix(".json").read_text())["rows"]
                if "error" not in r]
        done = {(r["dataset"], r["neuron"], r["family"], r["method"]) for r in rows}
        done |= {(r["dataset"], r["neuron"], "kfold") for r in rows if r["method"] == "kfold"}
    started = time.perf_counter()
    for dataset, (recording, test_ids, n_lags) in load_datasets(args).items():
        if s["neurons"] is not None:
            recording = recording.select_neurons(range(min(s["neurons"], recording.n_neurons)))
        train, test = recording.split(test_ids)
        neurons = [str(n) for n in recording.neuron_ids]
        setting = {"dataset": dataset, "n_lags": n_lags, "n_freq": train.n_freq, "dt": train.dt}

        # the MAPs first (minutes), then one prior at a time over the families
        for method, family in [("map", f) for f in s["families"]] + [
            (m, f) for m in s["priors"] for f in s["families"]]:
            if all((dataset, neuron, family, method) in done for neuron in neurons):
                continue
            try:
                found = evaluate(dataset, train, test, n_lags, family, method, s,
                                 args.progress)
            except Exception as error:  # keep a long run going; the table says why
                found = failed(setting, neurons, family, method, error)
            rows += [row | {"commit": env["commit"]} for row in found]
            write(args.out, rows, env, s)
            print(f"[{time.perf_counter() - started:6.0f} s] {dataset} {family} {method} "
                  f"({len(neurons)} neurons): mean CCnorm "
                  f"{_cell(_mean(found, 'cc_norm'))}, max r_hat "
                  f"{_cell(_max(found, 'max_rhat'))} {found[0].get('error', '')}",
                  flush=True)
        if s["kfold"] and not all((dataset, neuron, "kfold") in done for neuron in neurons):
            try:
                found = which_nonlinearity(dataset, train, n_lags, s, args.progress)
            except Exception as error:  # keep a long run going; the table says why
                found = failed(setting, neurons, "all", "kfold", error)
            rows += [row | {"commit": env["commit"]} for row in found]
            write(args.out, rows, env, s)
            print(f"[{time.perf_counter() - started:6.0f} s] {dataset} k-fold done", flush=True)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')} "
          f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
