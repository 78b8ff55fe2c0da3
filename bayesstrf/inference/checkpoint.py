"""Checkpoints of a fit's sampling phase: resume after a crash, SIGKILL or Ctrl-C.

A checkpoint is one ``.npz`` file (no pickled objects), rewritten atomically (temporary file in the
same folder, then renamed) after warmup and after every ``checkpoint_every`` draws. It holds the
sampler state of every lane (positions, adapted step size, trees, RNG keys) as the flattened leaves
of `bayesstrf.inference.nuts.Lane`, the metric, the draws and NUTS statistics so far, the fit's
timings and a fingerprint of everything that determines the draws (data, model, priors, sampler
settings, seed). Sampling continues from the saved state with the saved RNG keys, so a resumed fit
gives exactly the draws of an uninterrupted one with the same seed. A fit interrupted during warmup
restarts from the beginning (warmup is not checkpointed).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from bayesstrf.data.recording_files import hash_arrays
from bayesstrf.errors import InputError
from bayesstrf.files import atomic_path

#: Format tag of checkpoint files (2: the lane-wise NUTS's state; 1 held NumPyro's).
SCHEMA = "bayesstrf.checkpoint/2"


class Checkpoint(NamedTuple):
    """The content of a checkpoint file.

    Attributes
    ----------
    leaves : list of arrays
        Flattened sampler state (``jax.tree.flatten`` of the lanes'
        `bayesstrf.inference.nuts.Lane`).
    records : dict of name -> array (chain, draw, ...)
        The per-draw records so far (`bayesstrf.inference.nuts.RECORDS`: the unconstrained positions
        and the NUTS statistics).
    draws_done : int
    metric : array (D, D) or (N, D, D)
        The dense metric of the sampling stage.
    timings : dict of name -> seconds
    """

    leaves: list
    records: dict
    draws_done: int
    metric: np.ndarray
    timings: dict


def fingerprint(recording, settings: dict) -> str:
    """SHA-256 over the recording's arrays and the JSON of ``settings``: what fixes the draws."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    hash_arrays(digest, recording)
    digest.update(json.dumps([recording.dt, list(map(str, recording.segment_ids))]).encode())
    return digest.hexdigest()


def save(path: str | os.PathLike, key: str, state, checkpoint: Checkpoint) -> None:
    """Write a checkpoint atomically; ``state`` is the lanes' current
    `bayesstrf.inference.nuts.Lane`."""
    path = Path(path)
    arrays: dict[str, Any] = {
        "schema": np.array(SCHEMA), "fingerprint": np.array(key),
        "draws_done": np.array(checkpoint.draws_done), "metric": checkpoint.metric,
        "timings": np.array(json.dumps(checkpoint.timings))}
    arrays |= {f"state/{i}": np.asarray(leaf) for i, leaf in
               enumerate(jax.tree.leaves(state))}
    arrays |= {f"records/{name}": value for name, value in checkpoint.records.items()}
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load(path: str | os.PathLike, key: str) -> Checkpoint:
    """Read a checkpoint written for the fit with fingerprint ``key``.

    Raises
    ------
    ValueError
        Not a readable checkpoint, another format version, or written for another fit.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            content = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(
            f"checkpoint: expected a bayesstrf checkpoint at {str(path)!r}, found an unreadable "
            f"file ({type(error).__name__})"
        ) from None
    schema = str(content.get("schema", "none"))
    if schema != SCHEMA:
        raise InputError(
            f"checkpoint: expected format {SCHEMA!r} at {str(path)!r}, found {schema!r}"
        )
    if str(content["fingerprint"]) != key:
        raise InputError(
            f"checkpoint: {str(path)!r} was written for another fit (different data, model, "
            "priors, sampler settings or seed); remove it or point checkpoint elsewhere"
        )

    def group(prefix: str) -> dict:
        return {name[len(prefix):]: value for name, value in content.items()
                if name.startswith(prefix)}

    state = group("state/")
    return Checkpoint(
        leaves=[state[str(i)] for i in range(len(state))],
        records=group("records/"),
        draws_done=int(content["draws_done"]), metric=content["metric"],
        timings=json.loads(str(content["timings"])),
    )


def restore_state(template, leaves: list):
    """The saved leaves in the tree structure of ``template`` (a state of the same kernel)."""
    expected, treedef = jax.tree.flatten(template)
    matches = len(expected) == len(leaves) and all(
        np.shape(saved)[np.ndim(saved) - np.ndim(leaf):] == np.shape(leaf)
        for saved, leaf in zip(leaves, expected, strict=True))
    if not matches:
        raise InputError("checkpoint: expected a sampler state of this model, found another")
    return jax.tree.unflatten(treedef, [jax.numpy.asarray(leaf) for leaf in leaves])
