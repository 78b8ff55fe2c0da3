"""fit_distributed: chunks on executors, resume, job fingerprint, merge, lost Dask workers."""

import importlib.util
import json
import multiprocessing
import os
import shutil
import signal
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import bayesstrf
from bayesstrf.inference import distributed
from bayesstrf.inference.distributed import fit_distributed
from bayesstrf.inference.merge import merge_fits

SIM = dict(n_neurons=5, n_freq=6, n_lags=4, n_time=1500)
FIT = dict(n_lags=4, chains=1, warmup=20, draws=20, seed=1)
CHUNKS = ["chunk-0-2.nc", "chunk-3-4.nc"]  # 5 neurons, 3 per chunk

needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="dask.distributed is not installed (pip install bayesstrf[distributed])",
)


class Counting(Executor):
    """Delegates to ``inner``, recording the chunk file of every submitted task."""

    def __init__(self, inner, fail_first: int = 0):
        self.inner, self.submitted, self.fail_first = inner, [], fail_first

    def submit(self, fn, /, *args, **kwargs):
        self.submitted.append(Path(args[1]).name)
        if len(self.submitted) <= self.fail_first:  # a lost worker, as the executor reports it
            future = Future()
            future.set_exception(ConnectionError("worker lost"))
            return future
        return self.inner.submit(fn, *args, **kwargs)


@pytest.fixture(scope="module")
def recording():
    return bayesstrf.simulate("softplus", seed=2, **SIM).recording


@pytest.fixture(scope="module")
def first_run(recording, tmp_path_factory):
    out = tmp_path_factory.mktemp("job") / "out"
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        executor = Counting(pool)
        tree = fit_distributed(recording, out, executor=executor, neurons_per_chunk=3, **FIT)
    return out, tree, executor.submitted


def test_merged_fit_has_every_neuron_once_in_order(recording, first_run):
    out, tree, submitted = first_run
    assert sorted(submitted) == CHUNKS
    assert sorted(p.name for p in out.iterdir()) == [*CHUNKS, "job.json"]
    ids = recording.neuron_ids.tolist()
    for group in ("posterior", "log_likelihood", "observed_data", "sample_stats",
                  "constant_data"):
        assert tree[group]["neuron"].values.tolist() == ids, group
    assert tree["sample_stats"]["diverging"].dims == ("chain", "draw", "neuron")
    np.testing.assert_array_equal(tree["observed_data"]["counts"].values,
                                  recording.counts[0])
    chunks = [bayesstrf.load_fit(out / name) for name in CHUNKS]
    for chunk in chunks:
        neurons = chunk["posterior"]["neuron"].values
        for group in ("posterior", "log_likelihood", "observed_data", "sample_stats",
                      "constant_data"):
            part, alone = tree[group].to_dataset().sel(neuron=neurons), chunk[group].to_dataset()
            if "neuron" not in alone.dims:  # stats shared by the chunk's neurons: repeated
                alone = alone.expand_dims(neuron=neurons).transpose("chain", "draw", "neuron")
            xr.testing.assert_equal(part, alone)
    assert not {"hyperparameters", "priors"} & set(tree.attrs)  # data, not JSON strings
    assert tree.attrs["map_seconds"] == pytest.approx(sum(c.attrs["map_seconds"] for c in chunks))
    assert [c["neurons"] for c in json.loads(tree.attrs["chunks"])] == [ids[:3], ids[3:]]


def test_chunk_is_the_fit_of_its_neurons(recording, first_run):
    _, tree, _ = first_run
    alone = bayesstrf.fit(recording.select_neurons([3, 4]), progress=False, **FIT)
    part = tree["posterior"].to_dataset().isel(neuron=[3, 4])
    xr.testing.assert_equal(part, alone["posterior"].to_dataset())


def test_rerun_refits_only_missing_chunks(recording, first_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(first_run[0], out)
    (out / "chunk-3-4.nc").unlink()
    kept = (out / "chunk-0-2.nc").stat().st_mtime_ns
    with ThreadPoolExecutor(2) as pool:
        executor = Counting(pool)
        tree = fit_distributed(recording, out, executor=executor, neurons_per_chunk=3, **FIT)
    assert executor.submitted == ["chunk-3-4.nc"]
    assert (out / "chunk-0-2.nc").stat().st_mtime_ns == kept
    xr.testing.assert_equal(tree["posterior"].to_dataset(),
                            first_run[1]["posterior"].to_dataset())


def test_nothing_left_to_fit_submits_nothing(recording, first_run):
    executor = Counting(None)
    tree = fit_distributed(recording, first_run[0], executor=executor, neurons_per_chunk=3,
                           **FIT)
    assert executor.submitted == []
    assert tree["posterior"]["neuron"].values.tolist() == recording.neuron_ids.tolist()


@pytest.mark.parametrize("change, message", [
    (dict(draws=21), "draws=20"),
    (dict(neurons_per_chunk=2), "neurons_per_chunk=3"),
    (dict(activation="sigmoid"), "activation='softplus'"),
])
def test_other_job_in_out_is_refused(recording, first_run, change, message):
    settings = FIT | dict(neurons_per_chunk=3) | change
    with pytest.raises(ValueError, match=f"^out: .*another job .*{message}"):
        fit_distributed(recording, first_run[0], executor=Counting(None), **settings)


def test_other_recording_in_out_is_refused(recording, first_run):
    other = bayesstrf.simulate("softplus", seed=3, **SIM).recording
    with pytest.raises(ValueError, match="^out: .*another recording"):
        fit_distributed(other, first_run[0], executor=Counting(None), neurons_per_chunk=3,
                        **FIT)


def test_failed_tasks_are_resubmitted(recording, first_run, tmp_path, monkeypatch):
    def copy_chunk(chunk_recording, path, fit_kwargs):
        shutil.copy(first_run[0] / Path(path).name, path)
        return path

    monkeypatch.setattr(distributed, "_fit_chunk", copy_chunk)
    with ThreadPoolExecutor(1) as pool:
        executor = Counting(pool, fail_first=1)
        tree = fit_distributed(recording, tmp_path / "a", executor=executor, retries=1,
                               neurons_per_chunk=3, **FIT)
        assert sorted(executor.submitted) == sorted([CHUNKS[0], *CHUNKS])
        assert tree["posterior"]["neuron"].size == recording.n_neurons
        with pytest.raises(RuntimeError, match="chunk-0-2.nc: failed 2 times"):
            fit_distributed(recording, tmp_path / "b", executor=Counting(pool, fail_first=3),
                            retries=1, neurons_per_chunk=3, **FIT)


def test_error_of_fit_raises_at_once(recording, tmp_path):
    with ThreadPoolExecutor(1) as pool:
        executor = Counting(pool)
        with pytest.raises(ValueError, match="^n_lags: expected every segment") as caught:
            fit_distributed(recording, tmp_path / "out", executor=executor,
                            neurons_per_chunk=3, **FIT | dict(n_lags=2000))
    assert len(executor.submitted) <= 2  # not retried
    assert any("chunk-" in note for note in caught.value.__notes__)


def test_bad_arguments_are_named(recording, tmp_path):
    with pytest.raises(TypeError, match="^executor: .*found object"):
        fit_distributed(recording, tmp_path, executor=object())
    with pytest.raises(ValueError, match="^neurons_per_chunk: expected a positive integer"):
        fit_distributed(recording, tmp_path, executor=Counting(None), neurons_per_chunk=0)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="^out: expected a folder .*found a file"):
        fit_distributed(recording, tmp_path / "file", executor=Counting(None))
    with pytest.raises(TypeError, match="^fit_kwargs: .*chians"):
        fit_distributed(recording, tmp_path, executor=Counting(None), chians=2)
    with pytest.raises(ValueError, match="^fit_kwargs: .*checkpoint"):
        fit_distributed(recording, tmp_path, executor=Counting(None), checkpoint="a.npz")
    with pytest.raises(TypeError, match="^recording: expected a bayesstrf.Recording"):
        fit_distributed("rec.npz", tmp_path, executor=Counting(None))
    assert not list(tmp_path.glob("*.json"))


def _with_stats_layout(chunk: xr.DataTree, neuronwise: bool) -> xr.DataTree:
    """``chunk`` with NUTS statistics per neuron ``(chain, draw, neuron)`` (independent NUTS
    per neuron) or shared ``(chain, draw)`` (joint NUTS), whichever `fit` wrote."""
    stats, neurons = chunk["sample_stats"].to_dataset(), chunk["posterior"]["neuron"].values
    if neuronwise and "neuron" not in stats.dims:
        stats = stats.expand_dims(neuron=neurons).transpose("chain", "draw", "neuron")
    elif not neuronwise and "neuron" in stats.dims:
        stats = stats.isel(neuron=0, drop=True)
    chunk = chunk.copy()
    chunk["sample_stats"] = xr.DataTree(stats)
    return chunk


@pytest.mark.parametrize("layouts", [(True, True), (False, False), (False, True)])
def test_merge_joins_stats_with_and_without_a_neuron_dim(first_run, layouts):
    fits = [_with_stats_layout(bayesstrf.load_fit(first_run[0] / name), neuronwise)
            for name, neuronwise in zip(CHUNKS, layouts, strict=True)]
    expected = xr.concat(
        [_with_stats_layout(f, True)["sample_stats"].to_dataset() for f in fits], "neuron")
    merged = merge_fits(fits)
    xr.testing.assert_equal(merged["sample_stats"].to_dataset(), expected)
    assert merged["sample_stats"]["diverging"].dims == ("chain", "draw", "neuron")
    with pytest.raises(ValueError, match="^fits: expected each neuron in one fit only"):
        merge_fits([fits[0], fits[0]])


def _kill_a_worker_mid_fit(client, out: Path, killed: list, deadline: float) -> None:
    """SIGKILL a worker that has been fitting a chunk for a second, while chunks remain.

    (Waiting for a finer moment, such as one chunk saved with both workers busy, races with
    the chunks' similar durations: on a loaded machine that moment may never be seen.)"""
    busy_since = {}
    while time.monotonic() < deadline:
        now = time.monotonic()
        busy = [worker for worker, keys in client.processing().items() if keys]
        busy_since = {worker: busy_since.get(worker, now) for worker in busy}
        saved = sorted(p.name for p in out.glob("chunk-*.nc"))
        if len(saved) >= 3:
            return
        fitting = [worker for worker, since in busy_since.items() if now - since > 1.0]
        if fitting:
            pid = client.run(os.getpid, workers=fitting[:1])[fitting[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append((pid, saved))
            return
        time.sleep(0.2)


@needs_dask
def test_dask_job_survives_a_killed_worker(recording, tmp_path):
    from distributed import Client, LocalCluster

    small = recording.select_neurons([0, 1, 2])
    out, killed = tmp_path / "out", []
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                     dashboard_address=":0") as cluster,  # any free port
        Client(cluster) as client,
    ):
        killer = threading.Thread(target=_kill_a_worker_mid_fit,
                                  args=(client, out, killed, time.monotonic() + 600))
        killer.start()
        tree = fit_distributed(small, out, executor=client, neurons_per_chunk=1, **FIT)
        killer.join()
    assert killed, "no worker was seen fitting a chunk"
    assert tree["posterior"]["neuron"].values.tolist() == small.neuron_ids.tolist()
    assert sorted(p.name for p in out.glob("chunk-*.nc")) == [f"chunk-{i}-{i}.nc"
                                                              for i in range(3)]
