"""A fit's draws and NUTS records as an ArviZ ``xarray.DataTree``."""

from __future__ import annotations

import hashlib

import arviz_base as azb
import numpy as np
import xarray as xr

from bayesstrf.data.recording import Recording


def sample_stats(records: dict, max_tree_depth: int) -> dict:
    """Per-draw NUTS statistics under ArviZ's names (both tree-depth-saturation spellings)."""
    steps = np.asarray(records["num_steps"])
    depth = np.ceil(np.log2(steps + 1)).astype(int)
    saturated = steps >= 2**max_tree_depth - 1
    return {
        "diverging": np.asarray(records["diverging"]),
        "energy": np.asarray(records["energy"]),
        "lp": -np.asarray(records["potential_energy"]),
        "n_steps": steps,
        "tree_depth": depth,
        "reached_max_treedepth": saturated,
        "reached_max_tree_depth": saturated,
        "acceptance_rate": np.asarray(records["accept_prob"]),
        "step_size": np.asarray(records["step_size"]),
    }


def draws_digest(tree: xr.DataTree) -> str:
    """Short digest of a fit's posterior draws (identifies a ``start`` in checkpoints)."""
    digest = hashlib.sha256()
    for name in sorted(tree["posterior"].data_vars):
        digest.update(np.ascontiguousarray(tree["posterior"][name].values).tobytes())
    return digest.hexdigest()[:16]


def to_datatree(samples, stats, recording: Recording, strf_prior, attrs) -> xr.DataTree:
    """Assemble the ArviZ DataTree (posterior, sample_stats, observed_data) with named dims."""
    cube = ("neuron", "freq", "lag")
    dims = ({name: ("neuron",) for name, value in samples.items() if np.ndim(value) > 2}
            | {"strf": cube} | dict(strf_prior.dims)
            | {name: ("neuron",) for name, value in stats.items() if np.ndim(value) == 3})
    n_lags = samples["strf"].shape[-1]
    tree = azb.from_dict(
        {
            "posterior": samples,
            "sample_stats": stats,
        },
        dims=dims,
        coords={
            "neuron": recording.neuron_ids, "freq": recording.freqs,
            "lag": np.arange(n_lags), "segment": recording.segment_ids,
        },
        attrs={"/": attrs},
    )
    observed = recording.to_dataset()
    tree["observed_data"] = xr.DataTree(
        xr.Dataset({"counts": observed["counts"]}, attrs={"dt": recording.dt})
    )
    return tree
