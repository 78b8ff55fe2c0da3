"""`bayesstrf.inference.nuts` on a model: lanes for chains and neurons, stages run in chunks with a
progress bar, draws returned as the model's sites.

A joint model (one neuron, or neurons pooled) has one lane per chain, its position the flat
unconstrained vector of all sites (``ravel_pytree`` order, the metric's order). Independent
neurons have one lane per chain and neuron (chain-major), each with its own potential, metric,
step size and trajectories: the posterior factorises, so each neuron's NUTS is the NUTS of
a one-neuron fit, and all of them run in one compiled program whose gradient is one batched
call. A lane's position is then its neuron's row (`bayesstrf.inference.mass_matrix.neuron_rows`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.flatten_util import ravel_pytree
from jax.tree_util import Partial
from numpyro.infer.util import constrain_fn, potential_energy
from tqdm import tqdm

from bayesstrf.inference import mass_matrix, nuts
from bayesstrf.model.lnp import Counts, base_distribution

#: How chains run: all lanes in one program, one chain after the other, or the lanes split
#: over devices (as many as divide them; `bayesstrf.inference.fit.choose_chain_method`).
CHAIN_METHODS = ("vectorized", "sequential", "parallel")

#: Draws the fastest lane records per call of `bayesstrf.inference.nuts.advance` (between progress
#: updates); every stage runs the same compiled program, whose record buffers are this long.
BUFFER = 50


class Sampler(NamedTuple):
    """How a problem's chains and neurons map to lanes (see the module docstring)."""

    potential: Callable
    data: Any
    chains: int
    neurons: int
    unravel: Callable
    target_accept: float
    max_tree_depth: int
    chain_method: str = "vectorized"

    @property
    def neuronwise(self) -> bool:
        return self.neurons > 0

    def lanes(self, rows: np.ndarray | jnp.ndarray) -> jnp.ndarray:
        """Per-chain values ``(chains, ...)`` (with ``N`` after the chain axis for
        independent neurons) -> per-lane ``(lanes, ...)``."""
        rows = jnp.asarray(rows, jnp.float32)
        return rows.reshape(-1, *rows.shape[2:]) if self.neuronwise else rows

    def per_lane(self, values) -> jnp.ndarray:
        """A value per neuron ``(N, ...)`` (or one for a joint model) repeated per chain."""
        values = jnp.asarray(values, jnp.float32)
        if self.neuronwise:
            return jnp.tile(values, (self.chains,) + (1,) * (values.ndim - 1))
        return jnp.broadcast_to(values, (self.chains, *values.shape))

    def by_chain(self, records: np.ndarray) -> np.ndarray:
        """Per-lane records ``(lanes, draw, ...)`` -> ``(chain, draw, ...)``, the neuron axis
        after the draw axis for independent neurons."""
        if not self.neuronwise:
            return records
        records = records.reshape(self.chains, self.neurons, *records.shape[1:])
        return np.moveaxis(records, 1, 2)


def make_sampler(problem, point: dict, potential: Callable, chains: int, target_accept: float,
                 max_tree_depth: int, chain_method: str = "vectorized") -> Sampler:
    """The `Sampler` of a `bayesstrf.model.lnp.Problem`, given a point of its sites (e.g. the
    MAP) and the joint potential of flat vectors (`bayesstrf.inference.warmup.find_map`)."""
    if problem.single_model is None:
        _, unravel = ravel_pytree(point)
        return Sampler(Partial(_joint_energy, potential), {}, chains, 0, unravel,
                       target_accept, max_tree_depth, chain_method)
    n_neurons = problem.counts.total.shape[0]
    like = {name: jnp.zeros((1, *np.shape(value)[1:])) for name, value in point.items()}
    classes, parameters = prior_parameters(problem.priors, n_neurons)
    counts = Counts(*(jnp.asarray(part)[:, None] for part in problem.counts))
    energy = Partial(functools.partial(_neuron_energy, problem.single_model, classes, like),
                     problem.design)
    data = jax.tree.map(lambda x: jnp.tile(x, (chains,) + (1,) * (x.ndim - 1)),
                        (counts, parameters))
    return Sampler(energy, data, chains, n_neurons, functools.partial(
        _neuron_unravel, like=point), target_accept, max_tree_depth, chain_method)


def prior_parameters(priors: Mapping[str, dist.Distribution], n_neurons: int) -> tuple[dict, dict]:
    """Split priors with event shape ``(N,)`` into their classes and per-neuron parameters.

    Returns
    -------
    classes : dict of name -> distribution class
    parameters : dict of name -> dict of argument -> array ``(N, 1)``
        Row ``n`` rebuilds neuron ``n``'s prior with event shape ``(1,)``.
    """
    classes, parameters = {}, {}
    for name, prior in priors.items():
        base = base_distribution(prior)
        classes[name] = type(base)
        parameters[name] = {
            arg: jnp.broadcast_to(jnp.asarray(getattr(base, arg), jnp.float32),
                                  (n_neurons,))[:, None]
            for arg in base.arg_constraints
        }
    return classes, parameters


def _joint_energy(potential, z, data):
    return potential(z)


def _neuron_energy(single_model, classes, like, design, z, data):
    counts, parameters = data
    priors = {name: classes[name](**args).to_event(1) for name, args in parameters.items()}
    return potential_energy(single_model, (design, counts), {"priors": priors},
                            mass_matrix.neuron_point(z[None], like))


def _neuron_unravel(rows, like):
    return mass_matrix.neuron_point(rows, like)


def positions(sampler: Sampler, points: dict) -> jnp.ndarray:
    """Unconstrained points with a leading chain axis -> lane positions ``(lanes, D)``."""
    if sampler.neuronwise:
        return sampler.lanes(mass_matrix.neuron_rows(points, batch_ndim=1))
    return jax.vmap(lambda point: ravel_pytree(point)[0])(points)


def start(sampler: Sampler, z, metric: np.ndarray | jnp.ndarray, step_size, key) -> tuple:
    """Lanes at ``z`` beginning a stage with ``metric`` (``(D, D)``, or ``(N, D, D)`` for
    independent neurons) and first step size ``step_size`` (one, or one per neuron).
    Returns ``(lanes, metric, factor)``, the last two per lane."""
    metric = sampler.per_lane(metric)
    factor = jnp.asarray(nuts.momentum_factors(np.asarray(metric)), jnp.float32)
    step = sampler.per_lane(jnp.broadcast_to(jnp.asarray(step_size, jnp.float32),
                                             (max(sampler.neurons, 1),)))
    if not sampler.neuronwise:
        step = step[:, 0]
    lanes = nuts.init(sampler.potential, sampler.data, z, metric, factor, step, key,
                      max_tree_depth=sampler.max_tree_depth)
    return lanes, metric, factor


def run(sampler: Sampler, lanes, metric, factor, first: int, last: int, n_warmup: int,
        label: str, progress: bool):
    """Iterations ``first`` ... ``last - 1`` of a stage whose first ``n_warmup`` adapt the
    step size. Returns the lanes and the records (`bayesstrf.inference.nuts.RECORDS`), each
    ``(chain, draw, ...)``.

    Lanes that have finished idle until the last one has; for independent neurons, whose
    trajectories differ in length from neuron to neuron, the lanes still going run in a
    program half as wide (or less) as soon as they fit in one (`_width`). Such a program's
    batched matrix products round in the last bits differently, which NUTS amplifies: the
    draws of a population depend on where its runs start and end (checkpoints), its
    posterior does not.
    """
    parts: list[list[dict[str, Any]]] = [[] for _ in range(lanes.iteration.shape[0])]
    lane_draws = 0
    with tqdm(total=(last - first) * sampler.chains, desc=label, disable=not progress,
              file=sys.stderr, unit="draws") as bar:
        for group in _groups(sampler, lanes):
            while True:
                iteration = np.asarray(lanes.iteration)
                going = group[iteration[group] < last]
                if going.size == 0:
                    break
                chosen = _chosen(group, going, iteration, last, sampler)
                whole = chosen.size == iteration.size
                inputs = (sampler.data, lanes, metric, factor)
                inputs = _place(sampler, inputs if whole else jax.tree.map(
                    lambda x: x[chosen], inputs))  # noqa: B023
                moved, records = nuts.advance(
                    sampler.potential, *inputs, last, n_warmup, sampler.target_accept,
                    _narrow_at(chosen.size, sampler), buffer=BUFFER,
                    max_tree_depth=sampler.max_tree_depth)
                records = jax.device_get(records)  # waits: JAX dispatches asynchronously
                done = np.asarray(moved.iteration) - iteration[chosen]
                for row, lane in enumerate(chosen):
                    if done[row]:
                        parts[lane].append({name: value[row, :done[row]]
                                            for name, value in records.items()})
                lanes = moved if whole else jax.tree.map(
                    lambda every, part: every.at[chosen].set(part), lanes, moved)  # noqa: B023
                lane_draws += int(done.sum())
                bar.update(lane_draws // max(sampler.neurons, 1) - bar.n)
    joined = {name: np.stack([np.concatenate([part[name] for part in lane])
                              for lane in parts]) for name in nuts.RECORDS}
    return lanes, {name: sampler.by_chain(value) for name, value in joined.items()}


def _chosen(group: np.ndarray, going: np.ndarray, iteration: np.ndarray, last: int,
            sampler: Sampler) -> np.ndarray:
    """The lanes of the next call: the whole group, or for independent neurons the lanes
    still going in a narrower program (`_width`), filled up with lanes that have finished
    (which idle)."""
    width = _width(going.size, group.size, sampler)
    if width == group.size:
        return group
    idle = group[iteration[group] >= last][:width - going.size]
    return np.concatenate([going, idle])


def _narrow_at(width: int, sampler: Sampler) -> int:
    """Lanes still going at which a program of ``width`` lanes stops, so that `run` can go on
    in a narrower one (`_width`); 0: never."""
    return width // 2 if _width(width // 2, width, sampler) < width else 0


def _width(going: int, lanes: int, sampler: Sampler) -> int:
    """Lanes per program: all of them, or, for independent neurons, the smallest power of two
    (times the chains) that holds the lanes still going, once that halves the width at least.
    Each width is one more compilation."""
    if not sampler.neuronwise:
        return lanes
    width = lanes
    while width % 2 == 0 and width // 2 >= max(going, sampler.chains):
        width //= 2
    return width


def shared_step(sampler: Sampler, lanes):
    """The lanes with one step size per neuron (the geometric mean over its chains), for
    sampling. Chains with different step sizes take trees of different lengths at every
    draw, and the shortest wait for the longest at the end of each chunk; one step size per
    target keeps the chains' trees alike."""
    log_step = np.asarray(lanes.adaptation.log_step).reshape(sampler.chains, -1)
    shared = np.broadcast_to(log_step.mean(0), log_step.shape).reshape(-1)
    return lanes._replace(adaptation=lanes.adaptation._replace(
        log_step=jnp.asarray(shared, jnp.float32)))


def _groups(sampler: Sampler, lanes) -> list[np.ndarray]:
    """Lanes run together: all, or one chain's at a time (``sequential``)."""
    n_lanes = lanes.iteration.shape[0]
    if sampler.chain_method != "sequential":
        return [np.arange(n_lanes)]
    return list(np.arange(n_lanes).reshape(sampler.chains, -1))


def _place(sampler: Sampler, arrays):
    """With ``parallel``, the lane axis split over as many devices as divide it."""
    devices = jax.devices()
    n_lanes = arrays[1].iteration.shape[0]
    count = max(d for d in range(1, len(devices) + 1) if n_lanes % d == 0)
    if sampler.chain_method != "parallel" or count == 1:
        return arrays
    mesh = jax.sharding.Mesh(np.array(devices[:count]), ("lane",))
    split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("lane"))
    return jax.device_put(arrays, split)


def pooled(sampler: Sampler, z: np.ndarray) -> np.ndarray:
    """Recorded positions ``(chain, draw, [N,] D)`` pooled over chains: ``(n, D)``, or per
    neuron ``(N, n, D)``."""
    if sampler.neuronwise:
        return np.moveaxis(z.reshape(-1, *z.shape[2:]), 1, 0)
    return z.reshape(-1, z.shape[-1])


def constrained(sampler: Sampler, problem, z: np.ndarray) -> dict:
    """Recorded positions ``(chain, draw, [N,] D)`` -> the model's sites, deterministic ones
    included, each ``(chain, draw, ...)``."""
    per_chain = jax.jit(jax.vmap(functools.partial(_constrain, problem.model, sampler.unravel),
                                 in_axes=(0, None, None)))
    values = [jax.device_get(per_chain(jnp.asarray(chain, jnp.float32), problem.args,
                                       problem.kwargs)) for chain in z]
    return {name: np.stack([value[name] for value in values]) for name in values[0]}


def _constrain(model, unravel, z, args, kwargs):
    return constrain_fn(model, args, kwargs, unravel(z), return_deterministic=True)
