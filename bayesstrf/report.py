"""`write_report`: one self-contained HTML file (figures embedded) plus CSV/JSON summaries."""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from bayesstrf import plotting
from bayesstrf.comparison import Comparison, held_out_metrics
from bayesstrf.data import Recording
from bayesstrf.diagnostics import diagnose
from bayesstrf.io import write_text_atomic

OUTPUTS = ("report.html", "summary.csv", "diagnostics.json")

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
.warning { background: #fff3cd; border-left: 4px solid #e0a800; padding: 0.4em 0.8em; }
.ok { color: #1b7f3b; } img { max-width: 100%; }
figure { display: inline-block; margin: 0.3em; width: 48%; vertical-align: top; }
"""


def _figure(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="figure" src="data:image/png;base64,{data}"></figure>'


def write_report(
    comparison: Comparison,
    recording: Recording,
    out_dir: str | os.PathLike,
    *,
    test: Recording | None = None,
    overwrite: bool = False,
    truth: str | None = None,
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

    Returns
    -------
    pathlib.Path
        The HTML report.
    """
    if not isinstance(comparison, Comparison):
        raise TypeError(f"comparison: expected a Comparison, found {type(comparison).__name__}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        if (out / name).exists() and not overwrite:
            raise FileExistsError(f"out_dir: {str(out / name)!r} exists; pass overwrite=True")

    diagnostics = {name: diagnose(tree) for name, tree in comparison.fits.items()}
    metrics = {name: held_out_metrics(tree, test) for name, tree in comparison.fits.items()
               } if test is not None else {}
    summary = _summary(comparison, diagnostics, metrics)
    page = _html(comparison, recording, test, diagnostics, metrics, truth)

    write_text_atomic(out / "summary.csv", summary.to_csv())
    write_text_atomic(out / "diagnostics.json", json.dumps(
        {name: diagnostics_record(d) for name, d in diagnostics.items()}, indent=2))
    write_text_atomic(out / "report.html", page)
    return out / "report.html"


def diagnostics_record(report) -> dict:
    """A `Diagnostics` as plain JSON types (NaN, e.g. r_hat of one chain, as ``None``):
    ``ok``, ``divergences``, ``tree_depth_saturated``, ``ebfmi``, ``warnings`` and
    ``neurons`` (neuron id -> its row of ``report.table``)."""
    def plain(value):
        value = value.item() if isinstance(value, np.generic) else value
        return None if isinstance(value, float) and not np.isfinite(value) else value

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


def _html(comparison, recording, test, diagnostics, metrics, truth) -> str:
    esc = html.escape
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
        parts.append(f"<h3>{esc(name)} {status}</h3>" + report.table.to_html(float_format="%.3f"))
        parts += [f"<p class='warning'>{esc(w)}</p>" for w in report.warnings]

    parts.append(f"<h2>Comparison</h2><p>{esc(comparison.method)}</p>")
    parts.append(comparison.table.to_html(float_format="%.2f"))
    parts += [f"<p>note: {esc(n)}</p>" for n in comparison.notes]
    parts.append(_figure(plotting.plot_comparison(comparison.table)))
    parts.append("<h3>Per neuron</h3>" + comparison.per_neuron.to_html(float_format="%.2f"))

    if metrics:
        parts.append("<h2>Held-out prediction</h2>")
        parts.append(pd.concat(metrics, names=["model"]).to_html(float_format="%.3f"))

    parts.append("<h2>Neurons</h2>")
    shown = test if test is not None else recording
    for neuron in recording.neuron_ids:
        parts.append(f"<h3>{esc(str(neuron))}</h3>")
        for name, tree in comparison.fits.items():
            parts.append(f"<h4>{esc(name)}</h4>")
            parts.append(_figure(plotting.plot_strf(tree, neuron)))
            parts.append(_figure(plotting.plot_nonlinearity(tree, recording, neuron)))
            parts.append(_figure(plotting.plot_psth(tree, shown, neuron, segment=0)))
    parts.append("</body></html>")
    return "\n".join(parts)
