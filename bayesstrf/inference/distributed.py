"""`fit_distributed`: fit a population in chunks of neurons on many workers, then merge.

Every parameter of the model is per neuron and the likelihood is a sum over neurons, so
chunks of neurons are independent fits. Each chunk is one task on an executor (a Dask
``distributed.Client`` or any ``concurrent.futures.Executor``); the task calls `fit` and
writes the chunk's fit at once, atomically, to ``out/chunk-<first>-<last>.nc`` (neuron
indices, inclusive). ``out`` must therefore be a folder that the workers and the caller
share. ``out/job.json`` records a fingerprint of the recording and of the settings, so that
a rerun with the same ``out`` skips the chunks already on disk, and refuses another job's
folder. `merge_fits` joins the chunk fits along ``neuron``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import pickle
import queue
import sys
import threading
import traceback
from pathlib import Path
from typing import NamedTuple, cast

import numpy as np
import xarray as xr

from bayesstrf.data import checks
from bayesstrf.data.io import load_fit, save_fit
from bayesstrf.data.recording import Recording
from bayesstrf.data.recording_files import hash_arrays
from bayesstrf.errors import InputError, InputTypeError
from bayesstrf.files import write_text
from bayesstrf.inference.merge import merge_fits

logger = logging.getLogger(__name__)

#: Format tag of ``out/job.json``.
JOB_SCHEMA = "bayesstrf.fit_distributed/1"
#: `fit` arguments that `fit_distributed` sets itself or refuses.
NOT_PASSED = ("progress", "checkpoint", "checkpoint_every")
#: One fit at a time per process: NumPyro's effect handlers live on a process-global stack,
#: so fits traced at once in two threads corrupt each other.
_FIT_LOCK = threading.Lock()


class _Chunk(NamedTuple):
    """Neurons ``first .. last`` (indices into the recording, inclusive)."""

    first: int
    last: int

    @property
    def name(self) -> str:
        return f"chunk-{self.first}-{self.last}.nc"


class _ChunkError(NamedTuple):
    """What a task returns when `fit` itself raised: the error and its worker traceback."""

    error: BaseException
    traceback: str


def _fit_chunk(recording: Recording, path: str, fit_kwargs: dict) -> str | _ChunkError:
    """The task run on a worker: fit one chunk and save it atomically to ``path``.

    Returns ``path``, or a `_ChunkError` when `fit` raised (the fit is deterministic, so the
    executor must not retry it). Errors of the machinery (a failed write, a lost worker)
    raise, and `fit_distributed` retries them. Threads of one process fit one at a time.
    """
    from bayesstrf.inference.fit import fit

    if Path(path).exists():  # a rerun of a task whose first run saved the fit
        return path
    try:
        with _FIT_LOCK:
            tree = fit(recording, **fit_kwargs, progress=False)
    except Exception as error:
        trace = traceback.format_exc()
        try:
            pickle.dumps(error)
        except Exception:
            error = RuntimeError(f"{type(error).__name__}: {error}")
        return _ChunkError(error, trace)
    save_fit(tree, path, overwrite=True)
    return path


def fit_distributed(
    recording: Recording,
    out: str | os.PathLike,
    *,
    executor,
    neurons_per_chunk: int = 8,
    retries: int = 3,
    **fit_kwargs,
) -> xr.DataTree:
    """Fit a population in chunks of neurons on an executor's workers; merge the chunk fits.

    Parameters
    ----------
    recording : Recording
        Spectrograms ``(F, T_s)`` and counts ``(N, R_s, T_s)`` per segment.
    out : path
        Folder (created if missing) shared by the workers and the caller: each chunk's fit is
        written there as soon as it is done, to ``chunk-<first>-<last>.nc``, next to
        ``job.json`` (the job's fingerprint). Rerun with the same ``out`` to finish an
        interrupted job: chunks already there are not fitted again.
    executor : distributed.Client or concurrent.futures.Executor
        Runs the chunks: a Dask client (``Client("tcp://scheduler:8786")``, or a
        ``LocalCluster``'s), a ``ProcessPoolExecutor`` (with the ``"spawn"`` start method:
        JAX does not survive ``fork``), or any object whose ``submit`` returns
        ``concurrent.futures.Future``-like objects. Chunks run in parallel only in separate
        processes: threads of one process fit one at a time (NumPyro's effect handlers are
        process-global), which keeps a ``ThreadPoolExecutor`` or a multi-threaded Dask
        worker safe but no faster.
    neurons_per_chunk : int
        Neurons per task; the last chunk may hold fewer.
    retries : int
        Times a chunk is submitted again after its task failed for a reason other than an
        error raised by `fit` (a lost worker, a failed write). With Dask it is also passed to
        ``Client.submit``; Dask reschedules the task of a worker that died by itself, up to
        its ``distributed.scheduler.allowed-failures`` times, then reports ``KilledWorker``.
    **fit_kwargs
        Passed to `fit` (``activation``, ``strf``, ``n_lags``, ``chains``, ``warmup``,
        ``draws``, ``seed`` ...), the same for every chunk, seed included. Progress bars are
        off in the workers; ``checkpoint`` is refused (chunks are the unit of restart).

    Returns
    -------
    xarray.DataTree
        The chunk fits merged by `merge_fits`: a fit of the whole recording, neurons in the
        recording's order. Each neuron's posterior is exactly what `fit` on its chunk alone
        gives.

    Raises
    ------
    ValueError
        When ``out`` holds another job (other data, settings or ``neurons_per_chunk``).
    Exception
        The error `fit` raised in a chunk, at once (with the worker's traceback as a note);
        chunks still running go on and are saved. ``RuntimeError`` when a chunk failed more
        than ``retries`` times for other reasons.
    """
    checks.recording(recording)
    submit = getattr(executor, "submit", None)
    if not callable(submit):
        raise InputTypeError(
            "executor: expected a dask.distributed.Client or a concurrent.futures.Executor "
            f"(an object with a submit method), found {type(executor).__name__}"
        )
    neurons_per_chunk = checks.positive_int(neurons_per_chunk, "neurons_per_chunk")
    if isinstance(retries, bool) or not isinstance(retries, int | np.integer) or retries < 0:
        raise InputError(f"retries: expected a non-negative integer, found {retries!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"out: expected a folder (created if missing), found a file {str(out)!r}")
    settings = _settings(recording, fit_kwargs)
    chunks = [_Chunk(first, min(first + neurons_per_chunk, recording.n_neurons) - 1)
              for first in range(0, recording.n_neurons, neurons_per_chunk)]
    out.mkdir(parents=True, exist_ok=True)
    _claim(out, {"schema": JOB_SCHEMA, "recording": _recording_digest(recording),
                 "neuron_ids": recording.neuron_ids.tolist(),
                 "neurons_per_chunk": neurons_per_chunk, "settings": settings})

    todo = [chunk for chunk in chunks if not (out / chunk.name).exists()]
    logger.info("%d of %d chunks to fit in %s", len(todo), len(chunks), out)
    _run(executor, recording, todo, out, fit_kwargs, retries)
    for stale in out.glob(".chunk-*.nc.*.nc"):  # temporary files of killed workers
        stale.unlink(missing_ok=True)

    fits = [load_fit(out / chunk.name) for chunk in chunks]
    tree = merge_fits(fits, names=[chunk.name for chunk in chunks])
    found = cast(xr.DataArray, tree["posterior"]["neuron"]).values.astype(str).tolist()
    if found != recording.neuron_ids.tolist():
        raise RuntimeError(
            f"out: the chunk files in {str(out)!r} hold neurons {found}, expected the "
            f"recording's {recording.neuron_ids.tolist()}; were chunk files replaced?"
        )
    return tree


def _settings(recording: Recording, fit_kwargs: dict) -> dict:
    """`fit`'s settings with defaults applied, as JSON (for the job's fingerprint); checks
    the names and the activation and STRF prior before any task starts."""
    from bayesstrf.inference.fit import fit
    from bayesstrf.model import activations
    from bayesstrf.model import strf as strf_priors
    from bayesstrf.model.lnp import describe_priors

    refused = sorted(set(fit_kwargs) & {"checkpoint", "checkpoint_every"})
    if refused:
        raise InputError(
            f"fit_kwargs: fit_distributed does not pass {refused} to fit: each chunk is saved "
            "when done, and a rerun with the same out skips the saved chunks"
        )
    try:
        bound = inspect.signature(fit).bind(recording, **fit_kwargs)
    except TypeError as error:
        raise InputTypeError(f"fit_kwargs: not arguments of bayesstrf.fit: {error}") from None
    bound.apply_defaults()
    settings = {k: v for k, v in bound.arguments.items()
                if k not in ("recording", *NOT_PASSED)}
    settings["activation"] = activations.get(settings["activation"]).name
    settings["strf"] = strf_priors.get(settings["strf"]).spec()
    if settings["priors"] is not None:
        settings["priors"] = describe_priors(settings["priors"])
    return json.loads(json.dumps(settings, default=repr))


def _recording_digest(recording: Recording) -> str:
    """SHA-256 of the recording's arrays, ids, frequencies and bin width."""
    digest = hashlib.sha256(json.dumps([
        recording.dt, recording.neuron_ids.tolist(), recording.segment_ids.tolist(),
        np.asarray(recording.freqs, float).tolist(),
    ]).encode())
    hash_arrays(digest, recording)
    return digest.hexdigest()


def _claim(out: Path, job: dict) -> None:
    """Write ``out/job.json``, or check that the one there describes the same job."""
    path = out / "job.json"
    if not path.exists():
        if any(out.glob("chunk-*.nc")):
            raise InputError(
                f"out: {str(out)!r} holds chunk files but no job.json, so they cannot be "
                "checked to belong to this job; use another folder or remove them"
            )
        write_text(path, json.dumps(job, indent=1))
        return
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"out: cannot read {str(path)!r}: {error}") from None
    if saved == job:
        return
    if not isinstance(saved, dict) or saved.get("schema") != JOB_SCHEMA:
        problems = [f"schema {saved.get('schema') if isinstance(saved, dict) else None!r}"]
    else:
        problems = []
        if (saved["recording"], saved["neuron_ids"]) != (job["recording"], job["neuron_ids"]):
            problems.append("another recording")
        if saved["neurons_per_chunk"] != job["neurons_per_chunk"]:
            problems.append(f"neurons_per_chunk={saved['neurons_per_chunk']}")
        old, new = saved["settings"], job["settings"]
        problems += [f"{key}={old.get(key)!r} (now {new.get(key)!r})"
                     for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    raise InputError(
        f"out: {str(out)!r} holds another job ({path.name}: {', '.join(problems)}); use "
        "another folder, or remove this one to start over"
    )


def _is_dask(executor) -> bool:
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(executor, distributed.Client)


class _Completed:
    """Futures as they finish, for ``concurrent.futures``; like ``distributed.as_completed``,
    more can be added while iterating."""

    def __init__(self):
        self._done, self._pending = queue.SimpleQueue(), 0

    def add(self, future) -> None:
        self._pending += 1
        future.add_done_callback(self._done.put)

    def __iter__(self):
        while self._pending:
            future = self._done.get()
            self._pending -= 1
            yield future


def _run(executor, recording: Recording, todo: list[_Chunk], out: Path, fit_kwargs: dict,
         retries: int) -> None:
    """Submit every chunk of ``todo``, resubmit failed ones, raise `fit`'s own errors."""
    if not todo:
        return
    dask = _is_dask(executor)
    if dask:
        from distributed import as_completed

        completed: as_completed | _Completed = as_completed()
    else:
        completed = _Completed()
    kwargs = {k: v for k, v in fit_kwargs.items() if k != "progress"}
    futures, attempts = {}, dict.fromkeys(todo, 0)

    def submit(chunk: _Chunk) -> None:
        args = (recording.select_neurons(range(chunk.first, chunk.last + 1)),
                str(out / chunk.name), kwargs)
        try:
            future = (executor.submit(_fit_chunk, *args, pure=False, retries=retries) if dask
                      else executor.submit(_fit_chunk, *args))
        except RuntimeError as error:  # shut down, or a broken process pool
            raise RuntimeError(
                f"executor: cannot submit {chunk.name} ({error}); the chunks done so far are "
                f"saved in out={str(out)!r}: rerun with a working executor to finish"
            ) from error
        if not dask and not callable(getattr(future, "add_done_callback", None)):
            raise InputTypeError(
                "executor: expected submit to return a concurrent.futures.Future, found "
                f"{type(future).__name__}"
            )
        futures[future] = chunk
        attempts[chunk] += 1
        completed.add(future)

    try:
        for chunk in todo:
            submit(chunk)
        done = 0
        for future in completed:
            chunk = futures.pop(future)
            try:
                result = future.result()
            except Exception as error:
                if attempts[chunk] > retries:
                    raise RuntimeError(
                        f"{chunk.name}: failed {attempts[chunk]} times (retries={retries}); "
                        f"last error: {type(error).__name__}: {error}"
                    ) from error
                logger.warning("%s failed (%s: %s); submitting it again", chunk.name,
                               type(error).__name__, error)
                submit(chunk)
                continue
            if isinstance(result, _ChunkError):
                result.error.add_note(
                    f"raised by bayesstrf.fit for {chunk.name} (neurons {chunk.first}.."
                    f"{chunk.last}) on a worker:\n{result.traceback}"
                )
                raise result.error
            done += 1
            logger.info("%s saved (%d of %d)", chunk.name, done, len(todo))
    finally:
        for future in futures:  # on error or Ctrl-C: cancel what has not run yet
            future.cancel()
