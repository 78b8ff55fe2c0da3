"""`write_report`: one self-contained HTML file (figures embedded) plus CSV/JSON summaries.

Up to `MAX_DETAILED_NEURONS` neurons, the report draws each neuron's STRF, nonlinearity and PSTH
for every model, and each activation parameter's intervals per chain (with the chains of the
worst parameter where r_hat failed); above it, population summaries per model instead (all
STRFs in one grid, per-neuron elpd differences, r_hat and ESS per neuron), and the per-neuron
figures only of the neurons asked for (``neurons=``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path

import pandas as pd
from PIL import Image

from bayesstrf.data.recording import Recording
from bayesstrf.errors import InputError, InputTypeError
from bayesstrf.evaluation.diagnostics import ESS_PER_CHAIN_MIN, diagnose
from bayesstrf.evaluation.scores import Comparison, held_out_metrics
from bayesstrf.files import plain, write_text
from bayesstrf.viz import plotting

OUTPUTS = ("report.html", "summary.csv", "diagnostics.json")
#: Recordings with more neurons than this get population summary figures, and per-neuron
#: figures only for the neurons asked for: 3 figures per neuron and model would make a report
#: of 100 neurons over 10 MB.
MAX_DETAILED_NEURONS = 12

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
.warning { background: #fff3cd; border-left: 4px solid #e0a800; padding: 0.4em 0.8em; }
.ok { color: #1b7f3b; } img { max-width: 100%; }
figure { display: inline-block; margin: 0.3em; width: 48%; vertical-align: top; }
figure.wide { width: 98%; } figcaption { font-size: 0.85em; color: #555; }
"""


def _figure(fig, alt: str, caption: str = "", wide: bool = False) -> str:
    """``fig`` in a ``<figure>``, embedded as a PNG of 90 dpi reduced to 256 colours (under half
    the bytes of full colour; colour bars have 256 levels anyway)."""
    rendered = io.BytesIO()
    fig.savefig(rendered, format="png", dpi=90, bbox_inches="tight")
    palette = Image.open(rendered).convert("RGB").quantize(256, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    palette.save(buffer, format="png", optimize=True)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    kind = " class='wide'" if wide else ""
    return (f'<figure{kind}><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f"{text}</figure>")


def detail_neurons(recording: Recording, neurons, *, name: str = "neurons") -> list[str]:
    """The ids of the neurons whose figures `write_report` draws one by one.

    Parameters
    ----------
    recording : Recording
    neurons : sequence of str or None
        Neuron ids of ``recording``; None: all of them up to `MAX_DETAILED_NEURONS` neurons,
        none above.
    name : str
        The argument named in errors (the command line passes ``"--neurons"``).

    Returns
    -------
    list of str
        In the recording's order, each once.
    """
    ids = [str(i) for i in recording.neuron_ids]
    if neurons is None:
        return ids if len(ids) <= MAX_DETAILED_NEURONS else []
    if isinstance(neurons, str | bytes) or not hasattr(neurons, "__iter__"):
        raise InputTypeError(
            f"{name}: expected a list of neuron ids, found {type(neurons).__name__}")
    asked = {str(neuron) for neuron in neurons}
    unknown = sorted(asked.difference(ids))
    if unknown:
        known = ", ".join(ids) if len(ids) <= 8 else f"{', '.join(ids[:3])}, ..., {ids[-1]}"
        raise InputError(f"{name}: expected ids of the recording's {len(ids)} neurons ({known}), "
                         f"found unknown {unknown}")
    return [i for i in ids if i in asked]


def write_report(
    comparison: Comparison,
    recording: Recording,
    out_dir: str | os.PathLike,
    *,
    test: Recording | None = None,
    overwrite: bool = False,
    truth: str | None = None,
    neurons=None,
    diagnostics: dict | None = None,
) -> Path:
    """Write ``report.html``, ``summary.csv`` and ``diagnostics.json`` into ``out_dir``.

    Parameters
    ----------
    comparison : Comparison
        From `bayesstrf.compare`.
    recording : Recording
        The data the fits were made on.
    test : Recording, optional
        Held-out segments: adds prediction metrics and held-out PSTH figures.
    overwrite : bool
        Replace existing outputs; otherwise an existing one raises FileExistsError.
    truth : str, optional
        For a simulated recording, the family it was simulated with: stated in the verdict.
    neurons : sequence of str, optional
        Ids of the neurons whose STRF, nonlinearity and PSTH are drawn for every model.
        Default: all neurons up to `MAX_DETAILED_NEURONS`, none above (the report then shows
        population summaries; they are shown above it whatever ``neurons``).
    diagnostics : dict of name -> Diagnostics, optional
        `bayesstrf.diagnose` of every fit of ``comparison``, when already computed (it takes
        seconds per fit for a population); computed otherwise.

    Returns
    -------
    pathlib.Path
        The HTML report.
    """
    if not isinstance(comparison, Comparison):
        raise InputTypeError(
            f"comparison: expected a Comparison, found {type(comparison).__name__}")
    detail = detail_neurons(recording, neurons)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        if (out / name).exists() and not overwrite:
            raise FileExistsError(f"out_dir: {str(out / name)!r} exists; pass overwrite=True")

    if diagnostics is None:
        diagnostics = {name: diagnose(tree) for name, tree in comparison.fits.items()}
    elif not isinstance(diagnostics, dict) or set(diagnostics) != set(comparison.fits):
        found = sorted(diagnostics) if isinstance(diagnostics, dict) else type(
            diagnostics).__name__
        raise InputError(f"diagnostics: expected the diagnose() of each fit "
                         f"{sorted(comparison.fits)}, found {found}")
    metrics = {name: held_out_metrics(tree, test) for name, tree in comparison.fits.items()
               } if test is not None else {}
    summary = _summary(comparison, diagnostics, metrics)
    page = _html(comparison, recording, test, diagnostics, metrics, truth, detail)

    write_text(out / "summary.csv", summary.to_csv())
    write_text(out / "diagnostics.json", json.dumps(
        {name: diagnostics_record(d) for name, d in diagnostics.items()}, indent=2))
    write_text(out / "report.html", page)
    return out / "report.html"


def diagnostics_record(report) -> dict:
    """A `Diagnostics` as plain JSON types (NaN, e.g. r_hat of one chain, as ``None``):
    ``ok``, ``divergences``, ``tree_depth_saturated``, ``ebfmi``, ``warnings`` and
    ``neurons`` (neuron id -> its row of ``report.table``)."""
    return {"ok": report.ok, "divergences": int(report.divergences),
            "tree_depth_saturated": int(report.saturated),
            "ebfmi": [plain(float(v)) for v in report.ebfmi], "warnings": list(report.warnings),
            "neurons": {str(neuron): {str(k): plain(v) for k, v in row.items()}
                        for neuron, row in report.table.iterrows()}}


def _summary(comparison, diagnostics, metrics) -> pd.DataFrame:
    """One row per (model, neuron): LOO, diagnostics and held-out metrics."""
    frame = comparison.per_neuron[["elpd", "se", "elpd_diff", "dse"]].swaplevel().sort_index()
    frame.index.names = ["model", "neuron"]
    diag = pd.concat({name: d.table[["max_rhat", "min_ess_bulk", "min_ess_tail"]]
                      for name, d in diagnostics.items()}, names=["model", "neuron"])
    frame = frame.join(diag)
    if metrics:
        frame = frame.join(pd.concat(metrics, names=["model", "neuron"]))
    return frame


def _folded(summary: str, body: str) -> str:
    return f"<details><summary>{html.escape(summary)}</summary>{body}</details>"


def _chain_figures(name: str, fit, report) -> str:
    """Each activation parameter's intervals per neuron and chain; where r_hat failed, the
    chains of the worst parameter of the worst neuron."""
    parts = [_figure(plotting.plot_parameter_forest(fit, variable),
                     alt=f"{variable} per neuron and chain ({name})",
                     caption=f"{name}: {variable}, 89% and 94% intervals of each chain.")
             for variable in plotting.activation_variables(fit)]
    if report.table.max_rhat.notna().any() and not report.table.rhat_ok.all():  # >= 2 chains
        neuron = report.table.max_rhat.idxmax()
        variable = report.table.worst_rhat[neuron]
        parts.append(_figure(plotting.plot_chains(fit, variable, neuron),
                             alt=f"chains of {variable} of {neuron} ({name})", wide=True,
                             caption=f"{name}: the largest r_hat, {variable} of {neuron}: each "
                                     "chain's distribution and rank ECDF; they should overlap."))
    return "".join(parts)


def _html(comparison, recording, test, diagnostics, metrics, truth, detail) -> str:
    esc = html.escape
    population = recording.n_neurons > MAX_DETAILED_NEURONS
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>bayesstrf report</title>"
             f"<style>{_STYLE}</style></head><body><h1>bayesstrf model comparison</h1>"]
    failed = [name for name, report in diagnostics.items() if not report.ok]
    checks = ("every fit passed its diagnostics (r_hat, ESS, divergences, tree depth, E-BFMI)"
              if not failed else f"diagnostics failed for {', '.join(failed)}: see below before "
              "trusting the ranking")
    verdict = comparison.verdict()
    parts.append(f"<h2>Verdict</h2><p class='verdict'>{esc(verdict[0].upper() + verdict[1:])}"
                 f" ({esc(comparison.method.split(';')[0])}); {esc(checks)}.</p>")
    if truth is not None:
        found = "ranked first" if truth == comparison.table.index[0] else "not ranked first"
        parts.append(f"<p>Simulated with {esc(truth)}: the true family is {found}.</p>")
    parts += [f"<p class='warning'>{esc(w)}</p>" for w in comparison.warnings]
    parts.append("<h2>Data</h2><p>" + esc(repr(recording)) + "</p>")
    if test is not None:
        parts.append("<p>held out: " + esc(repr(test)) + "</p>")

    parts.append("<h2>Diagnostics</h2>")
    for name, report in diagnostics.items():
        status = "<span class='ok'>all checks passed</span>" if report.ok else ""
        table = report.table.to_html(float_format="%.3f")
        warned = "".join(f"<p class='warning'>{esc(w)}</p>" for w in report.warnings)
        parts.append(f"<h3>{esc(name)} {status}</h3>")
        if population:
            chains = comparison.fits[name]["posterior"].sizes["chain"]
            parts.append(_figure(
                plotting.plot_convergence(report.table, ess_min=ESS_PER_CHAIN_MIN * chains),
                alt=f"r_hat and bulk ESS per neuron ({name})",
                caption=f"{name}: worst r_hat and smallest bulk ESS of each neuron; red: "
                        "beyond the threshold (dashed).", wide=True))
            parts.append(_folded(f"{name}: table per neuron ({recording.n_neurons} rows) and "
                                 f"{len(report.warnings)} warnings", table + warned))
        else:
            parts.append(table + warned + _chain_figures(name, comparison.fits[name], report))

    parts.append(f"<h2>Comparison</h2><p>{esc(comparison.method)}</p>")
    parts.append(comparison.table.to_html(float_format="%.2f"))
    parts += [f"<p>note: {esc(n)}</p>" for n in comparison.notes]
    parts.append(_figure(plotting.plot_comparison(comparison.table), alt="elpd of each model"))
    per_neuron = comparison.per_neuron.to_html(float_format="%.2f")
    first = str(comparison.table.index[0])
    if population and len(comparison.table) > 1:
        parts.append(_figure(
            plotting.plot_elpd_differences(comparison.per_neuron, first),
            alt=f"histogram of per-neuron elpd differences against {first}",
            caption=f"Per neuron: elpd of each model minus that of {first}, ranked first over "
                    "all neurons.", wide=True))
    parts.append("<h3>Per neuron</h3>" + (_folded(
        f"table per neuron and model ({len(comparison.per_neuron)} rows)", per_neuron)
        if population else per_neuron))

    if metrics:
        parts.append("<h2>Held-out prediction</h2>")
        parts.append(pd.concat(metrics, names=["model"]).to_html(float_format="%.3f"))

    if population:
        parts.append("<h2>Population</h2>")
        for name, tree in comparison.fits.items():
            parts.append(f"<h3>{esc(name)}</h3>")
            parts.append(_figure(
                plotting.plot_strf_grid(tree), alt=f"posterior-mean STRFs of all neurons ({name})",
                caption=f"{name}: posterior-mean STRF of each neuron, each tile on its own colour "
                        "scale symmetric about 0 (red positive, blue negative).", wide=True))

    parts.append("<h2>Neurons</h2>")
    if population:
        parts.append(f"<p>{recording.n_neurons} neurons: more than {MAX_DETAILED_NEURONS}, so "
                     f"figures one neuron at a time are drawn only for those asked for "
                     f"(write_report(..., neurons=[...]), bayesstrf compare/report --neurons): "
                     f"{esc(', '.join(detail)) if detail else 'none'}.</p>")
    shown = test if test is not None else recording
    for neuron in detail:
        parts.append(f"<section class='neuron' data-neuron='{esc(neuron)}'><h3>{esc(neuron)}</h3>")
        for name, tree in comparison.fits.items():
            parts.append(f"<h4>{esc(name)}</h4>")
            parts.append(_figure(plotting.plot_strf(tree, neuron),
                                 alt=f"STRF of {neuron} ({name})"))
            parts.append(_figure(plotting.plot_nonlinearity(tree, recording, neuron),
                                 alt=f"nonlinearity of {neuron} ({name})"))
            parts.append(_figure(plotting.plot_psth(tree, shown, neuron, segment=0),
                                 alt=f"PSTH of {neuron} ({name})"))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
