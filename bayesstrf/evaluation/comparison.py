"""`compare`: rank activation families (or priors) by held-out predictive accuracy.

Time bins are not exchangeable, so the unit left out is a stretch of stimulus: a block of at most
`BLOCK_BINS` consecutive bins within a segment (a whole segment when shorter), with the
log-likelihood summed over the block. ``method="loo"`` uses PSIS-LOO (ArviZ) over these units,
pooled over neurons and per neuron, with stacking weights and Pareto-k checks; the default
``method="auto"`` moment matches the first-ranked model's units whose Pareto k is too high
(`bayesstrf.evaluation.moment_matching`; again for a new first model, if matching changed the
order), which makes most estimates reliable without refitting, then scores the first-ranked model's
few remaining ones by exact refits; ``method="kfold"`` refits on K folds of whole segments.
`Comparison.verdict` says the result in one sentence.
"""

from __future__ import annotations

import copy
import logging
import time

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from bayesstrf.data.recording import Recording
from bayesstrf.errors import InputError, InputTypeError
from bayesstrf.evaluation.moment_matching import holds_every_site, loo_moment_matched
from bayesstrf.evaluation.scores import (
    Comparison,
    from_pointwise,
    held_out_metrics,
    loo_table,
    loo_tree,
    neuron_part,
    pointwise_loo,
)
from bayesstrf.inference.fit import fit as fit_model
from bayesstrf.model.activations import FAMILIES
from bayesstrf.model.prediction import log_likelihood

#: Block length of the LOO unit: 100 bins (0.5 s at 5 ms), long compared with STRF lags, short
#: enough that leaving one out rarely moves the posterior far (Pareto k); 1000-bin blocks gave
#: k > 1.5 on the demo data.
BLOCK_BINS = 100
PARETO_K_MAX = 0.7
#: ``method="auto"``: at most this many units of the first-ranked model, still above
#: `PARETO_K_MAX` after moment matching, are scored by exact refits (one fit each).
MAX_REFITS = 4

__all__ = ["BLOCK_BINS", "Comparison", "compare", "held_out_metrics", "loo_tree",
           "pointwise_loo"]

logger = logging.getLogger(__name__)


def _refit_units(loo: azs.ELPDData, lpd: np.ndarray, units: np.ndarray, log_lik: xr.DataArray,
                 recording: Recording, full: xr.DataTree, block_bins: int,
                 fit_kwargs: dict) -> azs.ELPDData:
    """``loo`` with the units ``units`` scored exactly: each left out of the recording (its
    counts missing), the model refitted, the unit's log predictive density computed from the
    refit's draws. Their Pareto k becomes 0 (no importance sampling is left).

    Each refit starts from ``full``, the fit to the whole recording (``fit(start=full)``):
    leaving one unit out moves the posterior little, so its draws and their covariance are a
    warmed-up start, and the refit's one warmup stage is as long as ``full``'s second. A fit
    whose posterior lacks sampler sites (a low-rank STRF prior) is refitted from scratch."""
    activation = full.attrs["activation"]
    warmup = int(full.attrs["sampler_warmup"])
    refit_kwargs = fit_kwargs | ({"warmup": warmup - warmup // 2, "start": full}
                                 if holds_every_site(full, recording) else {"warmup": warmup})
    exact = copy.deepcopy(loo)
    elpd_i, pareto_k = exact.elpd_i.values.copy(), exact.pareto_k.values.copy()
    for i in units:
        neuron = list(recording.neuron_ids).index(log_lik["neuron"].values[i])
        label = str(log_lik["block"].values[i])
        segment_id, block = label.rsplit(":", 1)
        segment = list(recording.segment_ids).index(segment_id)
        bins = slice(int(block) * block_bins, (int(block) + 1) * block_bins)
        refit = _fit_logged(recording.without(neuron, segment, bins), activation, refit_kwargs,
                            f"{activation} without unit {label} of neuron {neuron}")
        ll = log_likelihood(refit, recording, block_bins=block_bins)
        draws = ll.isel(neuron=neuron).sel(block=label).values.ravel()
        elpd_i[i], pareto_k[i] = logsumexp(draws) - np.log(draws.size), 0.0
    exact.elpd_i = exact.elpd_i.copy(data=elpd_i)
    exact.pareto_k = exact.pareto_k.copy(data=pareto_k)
    exact.elpd = float(elpd_i.sum())
    exact.se = float(np.sqrt(elpd_i.size * elpd_i.var()))
    exact.p = float((lpd - elpd_i).sum())
    return exact


def _match_from_the_first(loos: dict, fits: dict, trees: dict, recording: Recording,
                          block_bins: int) -> list[str]:
    """Moment match (in place) the first-ranked model's units above `PARETO_K_MAX`, re-rank,
    and again while the first model has unmatched units above it; returns the matched models.

    A lower-ranked model is left as PSIS-LOO scored it: where PSIS fails, it errs towards a
    higher elpd, so matching could only move that model further behind the first (it becomes a
    note, see `compare`)."""
    matched: list[str] = []
    while True:
        first = loo_table(loos).index[0]
        if first in matched or float(loos[first].pareto_k.max()) <= PARETO_K_MAX:
            return matched
        if not holds_every_site(fits[first], recording):
            logger.info("%s: no moment matching (its posterior lacks sampler sites)", first)
            return matched
        logger.info("moment matching %s", first)
        loos[first] = loo_moment_matched(fits[first], recording, trees[first], loos[first],
                                         block_bins, PARETO_K_MAX)
        matched.append(first)


def _fit_logged(recording: Recording, activation: str, fit_kwargs: dict, label: str):
    """`bayesstrf.fit`, with one INFO line when it starts and one when it ends (the command
    line shows them on stderr)."""
    logger.info("fitting %s", label)
    start = time.perf_counter()
    tree = fit_model(recording, activation, **fit_kwargs)
    logger.info("fitted %s in %.1f s", label, time.perf_counter() - start)
    return tree


def _kfold(recording: Recording, models: dict, folds: int, fit_kwargs: dict):
    """Held-out log predictive density per (neuron, segment), refitting on K segment folds."""
    if recording.n_segments < 2:
        raise InputError("method: k-fold needs at least 2 segments; use method='loo'")
    folds = min(folds, recording.n_segments)
    assignment = np.arange(recording.n_segments) % folds
    out = {name: np.zeros((recording.n_neurons, recording.n_segments)) for name in models}
    fits: dict[str, xr.DataTree] = {}
    for fold in range(folds):
        held = np.flatnonzero(assignment == fold)
        train, test = recording.split(held.tolist())
        for name, activation in models.items():
            tree = _fit_logged(train, activation, fit_kwargs,
                               f"{name} on fold {fold + 1} of {folds}")
            ll = log_likelihood(tree, test).values
            flat = ll.reshape(-1, *ll.shape[2:])
            out[name][:, held] = logsumexp(flat, axis=0) - np.log(flat.shape[0])
            fits.setdefault(name, tree)
    return out, fits


def compare(
    fits_or_recording,
    activations: tuple[str, ...] = FAMILIES,
    *,
    method: str = "auto",
    folds: int = 4,
    block_bins: int = BLOCK_BINS,
    recording: Recording | None = None,
    **fit_kwargs,
) -> Comparison:
    """Compare models by held-out predictive accuracy, pooled over neurons and per neuron.

    Parameters
    ----------
    fits_or_recording : Recording or dict of name -> DataTree
        A recording (each of ``activations`` is fitted to it) or fits already made, e.g. of
        different activations or priors (their stored per-segment log-likelihoods are used).
    activations : tuple of str
        Families to fit when given a recording.
    method : {"auto", "loo", "kfold"}
        ``"loo"``: PSIS-LOO over blocks. ``"auto"``: the same, then, if the first-ranked
        model has a unit whose Pareto k exceeds 0.7, moment matching of those units, and of a
        new first model's if the order changed (`bayesstrf.evaluation.moment_matching`; it needs the
        recording, and costs no refit; lower-ranked models are left to notes); given a
        recording, up to `MAX_REFITS` units of the first-ranked model still above 0.7 are
        then scored exactly, by a refit without each. ``"kfold"``: K-fold refits over
        segments (needs a recording; K refits per model).
    folds : int
        Number of folds for ``"kfold"``.
    block_bins : int
        LOO unit length in bins (see module docstring).
    recording : Recording, optional
        With fits: the recording they were made on, so that LOO can use blocks rather than
        the stored per-segment log-likelihoods, and ``"auto"`` can moment match.
    **fit_kwargs
        Passed to `bayesstrf.fit`. Each fit logs an INFO line when it starts and one when it
        ends (logger ``bayesstrf.evaluation.comparison``).

    Returns
    -------
    Comparison
        Its ``method`` says which estimate was used and, for ``"auto"``, why.
    """
    if method not in ("auto", "loo", "kfold"):
        raise InputError(f"method: expected 'auto', 'loo' or 'kfold', found {method!r}")
    if isinstance(fits_or_recording, Recording):
        recording = fits_or_recording
        models = {name: name for name in activations}
        if method == "kfold":
            pointwise, fits = _kfold(recording, models, folds, fit_kwargs)
            return from_pointwise(pointwise, fits, recording.neuron_ids, folds)
        fits = {name: _fit_logged(recording, name, fit_kwargs, f"{name} ({i} of {len(models)})")
                for i, name in enumerate(models, 1)}
    elif isinstance(fits_or_recording, dict) and all(
        isinstance(t, xr.DataTree) for t in fits_or_recording.values()
    ) and len(fits_or_recording) >= 2:
        if method == "kfold":
            raise InputError("method: 'kfold' refits, so it needs a Recording, not fits")
        fits = dict(fits_or_recording)
    else:
        raise InputTypeError(
            "fits_or_recording: expected a Recording or a dict of at least two fits, "
            f"found {type(fits_or_recording).__name__}"
        )
    if recording is None:
        log_liks = {n: t["log_likelihood"]["counts"] for n, t in fits.items()}
        unit = "PSIS-LOO over segments"
    else:
        log_liks = {n: log_likelihood(t, recording, block_bins=block_bins)
                    for n, t in fits.items()}
        unit = f"PSIS-LOO over blocks of at most {block_bins} bins within segments"
    trees = {name: loo_tree(fits[name], ll) for name, ll in log_liks.items()}
    loos = {name: pointwise_loo(tree) for name, tree in trees.items()}
    if method == "auto" and recording is not None:
        matched = _match_from_the_first(loos, fits, trees, recording, block_bins)
        if matched:
            unit += (f"; Pareto k > {PARETO_K_MAX} for {', '.join(matched)}: those units moment "
                     "matched (Paananen et al. 2021)")
    pointwise = {name: tree["log_likelihood"]["counts"] for name, tree in trees.items()}
    lpd = {name: logsumexp(ll.values, axis=(0, 1)) - np.log(ll.sizes["chain"] * ll.sizes["draw"])
           for name, ll in pointwise.items()}
    table = loo_table(loos)
    first = table.index[0]
    bad = np.flatnonzero(loos[first].pareto_k.values > PARETO_K_MAX)
    if method == "auto" and isinstance(fits_or_recording, Recording) and 0 < bad.size <= (
            MAX_REFITS):
        loos[first] = _refit_units(loos[first], lpd[first], bad, pointwise[first],
                                   fits_or_recording, fits[first], block_bins, fit_kwargs)
        unit += f"; {bad.size} unit(s) of {first} still above: refitted without each, exactly"
        table = loo_table(loos)
    neuron_of_unit = next(iter(pointwise.values()))["neuron"].values
    per_neuron = pd.concat(
        {n: loo_table({m: neuron_part(loo, lpd[m], neuron_of_unit == n)
                        for m, loo in loos.items()})
         for n in dict.fromkeys(neuron_of_unit)},
        names=["neuron", "model"],
    )
    advice = ("pass the recording the fits were made on for moment matching, or use "
              "method='kfold'" if recording is None else "use method='kfold'")
    first, warnings, notes = table.index[0], [], []
    for name, row in table.iterrows():
        if not row.pareto_k_max > PARETO_K_MAX:
            continue
        if name == first:
            warnings.append(f"{name}: Pareto k up to {row.pareto_k_max:.2f} > {PARETO_K_MAX}: "
                            f"PSIS-LOO is unreliable for some units of the first-ranked model; "
                            f"{advice}")
        else:  # PSIS errs high where it fails: the gap to the first is if anything larger
            notes.append(f"{name}: Pareto k up to {row.pareto_k_max:.2f} > {PARETO_K_MAX} for "
                         f"some units, whose elpd PSIS-LOO likely overestimates: {name} is if "
                         f"anything further behind {first}; its order among the lower-ranked "
                         "models is uncertain")
    return Comparison(table, per_neuron, unit, fits, warnings, notes)
