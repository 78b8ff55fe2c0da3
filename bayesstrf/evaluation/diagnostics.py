"""`diagnose`: convergence checks of a fit against written thresholds, with advice.

Thresholds (Vehtari et al. 2021; Betancourt 2017):

- ``r_hat`` (rank-normalised) below 1.01 for every parameter;
- bulk and tail ESS at least 100 per chain for every parameter;
- no divergent transitions;
- no transition that saturates the maximum tree depth (checked on bayesstrf's own
  ``reached_max_tree_depth`` statistic, which ArviZ's check on NumPyro output misses);
- E-BFMI at least 0.3 in every chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from bayesstrf.errors import InputTypeError

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100
EBFMI_MIN = 0.3


@dataclass
class Diagnostics:
    """Result of `diagnose`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per neuron: ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, the worst
        parameter, and whether each check passed.
    divergences, saturated : int
        Divergent transitions and tree-depth-saturated transitions (all chains; with one
        NUTS per neuron, all neurons: the table then also counts them per neuron).
    ebfmi : numpy.ndarray (chain,)
        Per chain; the lowest over neurons with one NUTS per neuron.
    warnings : list of str
        Plain-language problems and what to do about them; empty when all checks pass.
    """

    table: pd.DataFrame
    divergences: int
    saturated: int
    ebfmi: np.ndarray
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings

    def __str__(self) -> str:
        lines = [self.table.to_string(float_format=lambda v: f"{v:.3f}")]
        lines += [f"divergences: {self.divergences}   tree-depth saturated: {self.saturated}   "
                  f"E-BFMI: {', '.join(f'{v:.2f}' for v in self.ebfmi)}"]
        lines += [f"warning: {w}" for w in self.warnings] or ["all checks passed"]
        return "\n".join(lines)


def _per_neuron(stat: xr.Dataset, reduce: str) -> tuple[pd.Series, pd.Series]:
    """Worst value of a statistic per neuron over every parameter, and which parameter.
    Population-level parameters (no ``neuron`` dim, under pooling) count for every neuron."""
    frames = []
    neurons = stat["neuron"].values
    for name, values in stat.data_vars.items():
        other = [d for d in values.dims if d != "neuron"]
        reduced = getattr(values, reduce)(other) if other else values
        if "neuron" not in values.dims:
            reduced = reduced.expand_dims(neuron=neurons)
        frames.append(reduced.to_series().rename(name))
    table = pd.concat(frames, axis=1)
    worst = getattr(table, reduce)(axis=1)
    which = table.apply(
        lambda row: "" if row.isna().all() else (row.idxmax() if reduce == "max" else row.idxmin()),
        axis=1,
    )
    return worst, which


def diagnose(fit: xr.DataTree) -> Diagnostics:
    """Check convergence of a fit per neuron; see the module docstring for the thresholds.

    Parameters
    ----------
    fit : xarray.DataTree
        From `bayesstrf.fit` (or a file written by it).

    Returns
    -------
    Diagnostics
    """
    if not isinstance(fit, xr.DataTree) or "posterior" not in fit or "sample_stats" not in fit:
        raise InputTypeError(
            f"fit: expected a DataTree with posterior and sample_stats groups, "
            f"found {type(fit).__name__}"
        )
    posterior = fit["posterior"].to_dataset()
    if "strf_std" in posterior:  # `Ridge`: strf = strf_std / a constant, the same ranks, r_hat, ESS
        posterior = posterior.drop_vars("strf")
    stats = fit["sample_stats"].to_dataset()
    n_chains = posterior.sizes["chain"]
    ess_min = ESS_PER_CHAIN_MIN * n_chains
    rhat, rhat_var = _per_neuron(azs.rhat(posterior), "max")
    bulk, bulk_var = _per_neuron(azs.ess(posterior, method="bulk"), "min")
    tail, _ = _per_neuron(azs.ess(posterior, method="tail"), "min")
    table = pd.DataFrame({
        "max_rhat": rhat, "worst_rhat": rhat_var, "min_ess_bulk": bulk, "worst_ess": bulk_var,
        "min_ess_tail": tail,
    })
    table["rhat_ok"] = table.max_rhat < RHAT_MAX
    table["ess_ok"] = (table.min_ess_bulk >= ess_min) & (table.min_ess_tail >= ess_min)

    divergences = int(stats["diverging"].sum())
    saturation = stats.get("reached_max_tree_depth", stats.get("reached_max_treedepth"))
    saturated = int(saturation.sum()) if saturation is not None else 0
    energy = stats["energy"].transpose("chain", "draw", ...).values
    neuronwise = energy.ndim == 3
    energy_fraction = np.asarray(
        [azs.bfmi(energy[..., n]) for n in range(energy.shape[-1])] if neuronwise
        else [azs.bfmi(energy)], dtype=float,
    ).min(0)
    n_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
    if neuronwise:
        table["divergences"] = stats["diverging"].sum(("chain", "draw")).to_series()
        n_draws *= energy.shape[-1]

    warnings = []
    if n_chains < 2:
        warnings.append("r_hat needs at least 2 chains: run chains=4 to check convergence")
    for neuron, row in table.iterrows():
        if n_chains >= 2 and not row.rhat_ok:
            warnings.append(
                f"r_hat {row.max_rhat:.3f} >= {RHAT_MAX} for {row.worst_rhat} of neuron "
                f"{neuron}: chains disagree; run longer (more warmup and draws) or check for "
                "multiple modes"
            )
        if not row.ess_ok:
            warnings.append(
                f"ESS {min(row.min_ess_bulk, row.min_ess_tail):.0f} < {ess_min} for "
                f"{row.worst_ess} of neuron {neuron}: draw more samples or use a stronger prior"
            )
    if divergences:
        warnings.append(
            f"{divergences} divergent transitions of {n_draws}: the posterior has regions the "
            "sampler cannot follow; raise target_accept to 0.95 or use a smoother prior"
        )
    if saturated:
        warnings.append(
            f"{saturated} of {n_draws} transitions hit the maximum tree depth: the sampler "
            "is inefficient; raise max_tree_depth or reparameterise (correlated stimulus?)"
        )
    for chain, value in enumerate(energy_fraction):
        if value < EBFMI_MIN:
            warnings.append(
                f"E-BFMI {value:.2f} < {EBFMI_MIN} in chain {chain}: heavy-tailed or funnel-like "
                "posterior; consider a non-centred or stronger prior"
            )
    return Diagnostics(table, divergences, saturated, energy_fraction, warnings)
