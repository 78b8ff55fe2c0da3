"""Scores of fits, without fitting: `Comparison` (what `bayesstrf.compare` returns), the
pieces of a pointwise PSIS-LOO over blocks of time, rankings from pointwise scores, and
`held_out_metrics` (CCnorm & co. of a fit's predictions on held-out segments). Reports and
figures read these without importing the sampler.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from bayesstrf.data.recording import Recording
from bayesstrf.errors import InputError
from bayesstrf.evaluation.metrics import (
    bits_per_spike,
    cc_norm_segments,
    cc_raw,
    draws_interval,
    log_predictive_density,
    psth_coverage,
)
from bayesstrf.model.prediction import predict


@dataclass
class Comparison:
    """Result of `compare`.

    Attributes
    ----------
    table : pandas.DataFrame
        Pooled over neurons, one row per model, best first: ``elpd``, ``se``, ``elpd_diff``,
        ``dse``, ``weight`` (stacking; NaN for k-fold), ``pareto_k_max``.
    per_neuron : pandas.DataFrame
        The same per neuron (index: neuron, model).
    method : str
        How the held-out accuracy was estimated, in words.
    fits : dict of name -> DataTree
    warnings : list of str
        What could change the ranking: an unreliable estimate for the first-ranked model.
    notes : list of str
        Unreliable estimates that cannot: lower-ranked models with a high Pareto k.
    """

    table: pd.DataFrame
    per_neuron: pd.DataFrame
    method: str
    fits: dict
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def verdict(self) -> str:
        """The ranking in one sentence: the first model and its lead over the second."""
        first = self.table.index[0]
        if len(self.table) < 2:
            return f"ranked first: {first}"
        second = self.table.index[1]
        lead, se = abs(self.table.loc[second, "elpd_diff"]), self.table.loc[second, "dse"]
        ratio = lead / se if se > 0 else np.inf
        how = "clearly ahead of" if ratio > 2 else "not clearly (within 2 SE) ahead of"
        return (f"ranked first: {first}, {how} {second} by {lead:.1f} +- {se:.1f} elpd "
                f"({ratio:.1f} SE)")

    def __str__(self) -> str:
        lines = [f"verdict: {self.verdict()}", f"method: {self.method}",
                 self.table.to_string(float_format=lambda v: f"{v:.2f}")]
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings]
                         + [f"note: {n}" for n in self.notes])


def loo_tree(fit: xr.DataTree, log_lik: xr.DataArray) -> xr.DataTree:
    """A DataTree for ArviZ's LOO: the fit's posterior (for relative efficiency) and a
    log-likelihood ``(chain, draw, ...)`` flattened to one ``unit`` dim (its neuron and block
    or segment as coordinates, not a multi-index: ArviZ stacks the observation dims again)."""
    return xr.DataTree.from_dict({
        "posterior": fit["posterior"].to_dataset(),
        "log_likelihood": xr.Dataset({"counts": log_lik.stack(unit=log_lik.dims[2:])
                                      .reset_index("unit")}),
    })


def pointwise_loo(tree: xr.DataTree) -> azs.ELPDData:
    """PSIS-LOO of a `loo_tree`, pointwise (Pareto k is reported per model instead of warned)."""
    draws = tree["log_likelihood"]["counts"]
    if draws.sizes["chain"] * draws.sizes["draw"] < 30:
        raise InputError(
            f"draws: PSIS-LOO needs at least 30 posterior draws in all, found "
            f"{draws.sizes['chain'] * draws.sizes['draw']}"
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Estimated shape parameter of Pareto", UserWarning)
        return azs.loo(tree, pointwise=True)


def neuron_part(loo: azs.ELPDData, lpd: np.ndarray, mine: np.ndarray) -> azs.ELPDData:
    """The units ``mine`` (one neuron's) of a pointwise LOO, as an ELPDData of their own (PSIS
    weighs each unit by its own log-likelihood: this equals a LOO of those units alone)."""
    part = copy.deepcopy(loo)
    part.elpd_i, part.pareto_k = loo.elpd_i[mine], loo.pareto_k[mine]
    part.n_data_points = int(mine.sum())
    part.elpd = float(part.elpd_i.sum())
    part.se = float(np.sqrt(part.n_data_points * part.elpd_i.var()))
    part.p = float((lpd[mine] - part.elpd_i).sum())
    return part


def loo_table(loos: dict[str, azs.ELPDData]) -> pd.DataFrame:
    """Ranking of models from their pointwise LOO results (same units for every model)."""
    table = azs.compare(loos, round_to="none")
    table["pareto_k_max"] = [float(loos[name].pareto_k.max()) for name in table.index]
    return table[["rank", "elpd", "se", "elpd_diff", "dse", "weight", "pareto_k_max"]]


def kfold_table(pointwise: dict[str, np.ndarray]) -> pd.DataFrame:
    """Ranking from held-out log predictive densities per unit (same units for every model)."""
    names = sorted(pointwise, key=lambda n: -pointwise[n].sum())
    best = pointwise[names[0]]
    rows = []
    for rank, name in enumerate(names):
        values, diff = pointwise[name], pointwise[name] - best  # ArviZ's sign: <= 0
        rows.append({
            "rank": rank, "elpd": values.sum(), "se": np.sqrt(values.size * values.var()),
            "elpd_diff": diff.sum(), "dse": np.sqrt(diff.size * diff.var()),
            "weight": np.nan, "pareto_k_max": np.nan,
        })
    return pd.DataFrame(rows, index=names)


def from_pointwise(pointwise, fits, neuron_ids, folds) -> Comparison:
    table = kfold_table({n: v.ravel() for n, v in pointwise.items()})
    per_neuron = pd.concat(
        {nid: kfold_table({n: v[i] for n, v in pointwise.items()})
         for i, nid in enumerate(neuron_ids)},
        names=["neuron", "model"],
    )
    return Comparison(table, per_neuron, f"{folds}-fold cross-validation over segments", fits)


def held_out_metrics(fit: xr.DataTree, recording: Recording, *, prob: float = 0.9,
                     max_draws: int = 200) -> pd.DataFrame:
    """Prediction metrics of a fit on (held-out) segments, per neuron.

    CCnorm (Schoppe et al. 2016) and CCraw are computed per segment and length-weighted, for
    the posterior-mean prediction and, as a ``prob`` interval, for each posterior draw
    (CCnorm is NaN without at least 2 complete trials in every segment); bits
    per spike are relative to the fit's training mean rate; ``lpd`` is the log predictive
    density summed over segments (nats); ``coverage`` is the share of bins whose PSTH lies in
    its central ``prob`` posterior predictive interval
    (`bayesstrf.evaluation.metrics.psth_coverage`),
    length-weighted over segments.

    Returns
    -------
    pandas.DataFrame
        Index: neuron; columns ``cc_norm``, ``cc_norm_lower``, ``cc_norm_upper``, ``cc_raw``,
        ``bits_per_spike``, ``lpd``, ``coverage``.
    """
    rates = predict(fit, recording, max_draws=max_draws).values  # (sample, neuron, time)
    bounds = np.cumsum([0, *recording.segment_lengths])
    pieces = list(zip(bounds[:-1], bounds[1:], strict=True))
    baseline = fit["constant_data"].to_dataset()["mean_rate"].values
    rows = {}
    for n, neuron in enumerate(recording.neuron_ids):
        observed = [counts[n] for counts in recording.counts]
        draws = [rates[:, n, a:b] for a, b in pieces]
        mean = [d.mean(0) for d in draws]
        repeated = all((~np.isnan(y).any(axis=1)).sum() >= 2 for y in observed)
        per_draw = [cc_norm_segments([d[i] for d in draws], observed) if repeated else np.nan
                    for i in range(rates.shape[0])]
        _, lower, upper = draws_interval(per_draw, prob)
        spikes = np.array([np.nansum(y) for y in observed])
        bits = [bits_per_spike(m, y, baseline[n]) if s else 0.0
                for m, y, s in zip(mean, observed, spikes, strict=True)]
        lengths = recording.segment_lengths
        rows[neuron] = {
            "cc_norm": cc_norm_segments(mean, observed) if repeated else np.nan,
            "cc_norm_lower": lower, "cc_norm_upper": upper,
            "cc_raw": float(np.average([cc_raw(m, y) for m, y in zip(mean, observed, strict=True)],
                                       weights=lengths)),
            "bits_per_spike": float(np.dot(bits, spikes) / max(spikes.sum(), 1)),
            "lpd": float(sum(log_predictive_density(d, y)
                             for d, y in zip(draws, observed, strict=True))),
            "coverage": float(np.average([psth_coverage(d, y, prob) for d, y in
                                          zip(draws, observed, strict=True)], weights=lengths)),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("neuron")
