"""Lane-wise NUTS: every chain and neuron follows its own trajectories in one program.

NumPyro's NUTS under ``jax.vmap`` builds each draw's tree in a loop that runs until the longest tree
of the batch ends: every chain pays for the deepest trajectory of every draw (measured: 1.27x for 4
chains, and on a CPU neurons had to run one after the other). Here one iteration of the program's
loop is one leapfrog step of every lane (a chain of a neuron): the tree building is a small state
machine per lane, and a lane whose trajectory ends records its draw and starts the next one at the
following step. Lanes wait for each other only at the end of a stage; a lane that has finished its
stage idles, and `bayesstrf.inference.sampler` then runs the lanes still going in a smaller program.
The gradient of all lanes is one batched call, so the drive of every leapfrog is one matrix product
over chains and neurons (`bayesstrf.model.design`).

The transition is NumPyro's and Stan's multinomial NUTS (Betancourt 2017, appendix A):
uniform sampling within a subtree, biased progressive sampling when a subtree joins the tree,
the generalised no-U-turn criterion on every subtree through momentum checkpoints, divergence
at an energy error above 1000, a fixed dense metric and one dual averaging of the step size
over each warmup stage (Hoffman and Gelman 2014; the averaged step is kept for the rest).
Positions are flat unconstrained vectors; ``potential(z, data)`` gives one lane's negative
log density, ``data`` being that lane's slice of the per-lane data.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

#: Energy error above which a trajectory counts as divergent (NumPyro's and Stan's).
MAX_DELTA_ENERGY = 1000.0

#: Per-draw records returned by `advance`.
RECORDS = ("z", "potential_energy", "energy", "num_steps", "accept_prob", "diverging",
           "step_size")


class Leaf(NamedTuple):
    """A point of a trajectory: position, momentum, gradient of the potential."""

    z: jax.Array
    r: jax.Array
    grad: jax.Array


class Candidate(NamedTuple):
    """A point that may become the next draw."""

    z: jax.Array
    potential: jax.Array
    grad: jax.Array
    energy: jax.Array


class Tree(NamedTuple):
    """The trajectory so far: its two ends, sampled point, log weight and momentum sum."""

    left: Leaf
    right: Leaf
    candidate: Candidate
    weight: jax.Array
    r_sum: jax.Array
    depth: jax.Array
    accept_sum: jax.Array
    steps: jax.Array


class Subtree(NamedTuple):
    """The doubling being built: its newest leaf (``edge``), sampled point, log weight,
    momentum sum, and the momentum checkpoints of the iterative no-U-turn check."""

    edge: Leaf
    candidate: Candidate
    weight: jax.Array
    r_sum: jax.Array
    accept_sum: jax.Array
    steps: jax.Array
    r_ckpts: jax.Array
    v_ckpts: jax.Array
    r_sum_ckpts: jax.Array


class Adaptation(NamedTuple):
    """Dual averaging of the log step size (NumPyro's ``t0=10, kappa=0.75, gamma=0.05``)."""

    log_step: jax.Array
    x: jax.Array
    x_avg: jax.Array
    g_avg: jax.Array
    t: jax.Array
    mu: jax.Array


class Lane(NamedTuple):
    """One lane's sampler state (under `advance`, every field has a leading lane axis)."""

    key: jax.Array
    iteration: jax.Array
    position: Candidate
    adaptation: Adaptation
    energy0: jax.Array
    going_right: jax.Array
    tree: Tree
    subtree: Subtree


def momentum_factors(metric: np.ndarray) -> np.ndarray:
    """``A`` with ``A A^T`` the mass matrix (the inverse of ``metric``): momenta ``A @ e``,
    ``e ~ N(0, I)``. ``metric`` is ``(..., D, D)``."""
    lower = np.linalg.cholesky(np.asarray(metric, dtype=float))
    eye = np.broadcast_to(np.eye(lower.shape[-1]), lower.shape)
    return np.swapaxes(np.linalg.solve(lower, eye), -1, -2)


def init(potential, data, z: jax.Array, metric: jax.Array, factor: jax.Array,
         step_size: jax.Array, key: jax.Array, *, max_tree_depth: int) -> Lane:
    """Lanes at positions ``z`` ``(lanes, D)`` starting a warmup stage, each with its
    ``metric`` ``(lanes, D, D)`` (and `momentum_factors`), its step size found from
    ``step_size`` ``(lanes,)`` by NumPyro's heuristic (halve or double until one leapfrog's
    acceptance crosses 0.8) and a dual averaging centred on ten times that."""
    return _init(potential, data, jnp.asarray(z, jnp.float32), jnp.asarray(metric, jnp.float32),
                 jnp.asarray(factor, jnp.float32), jnp.asarray(step_size, jnp.float32),
                 jax.random.split(key, z.shape[0]), max_tree_depth=max_tree_depth)


@functools.partial(jax.jit, static_argnames="max_tree_depth")
def _init(potential, data, z, metric, factor, step_size, keys, *, max_tree_depth):
    def one(data, z, metric, factor, step_size, key):
        value, grad = jax.value_and_grad(potential)(z, data)
        key, step_key, start_key = jax.random.split(key, 3)
        position = Candidate(z, value, grad, value)
        log_step = _reasonable_log_step(potential, data, position, metric, factor,
                                        jnp.log(step_size), step_key)
        adaptation = Adaptation(log_step, *jnp.zeros((3,)), jnp.array(0, jnp.int32),
                                log_step + jnp.log(10.0))
        lane = Lane(key, jnp.array(0, jnp.int32), position, adaptation, value, jnp.array(True),
                    _empty_tree(position), _empty_subtree(position, max_tree_depth))
        return _new_trajectory(lane, position, metric, factor, start_key)

    return jax.vmap(one)(data, z, metric, factor, step_size, keys)


@functools.partial(jax.jit, static_argnames=("buffer", "max_tree_depth"))
def advance(potential, data, lanes: Lane, metric, factor, until, n_warmup, target_accept,
            narrow_at=0, *, buffer: int, max_tree_depth: int):
    """Run every lane towards ``until`` completed iterations of its stage, until one lane has
    recorded ``buffer`` draws, or only ``narrow_at`` lanes are still going (or none).

    Iterations before ``n_warmup`` adapt the step size; the last of them sets it to the
    average. No lane waits for another: a call ends when the fastest lane's buffer is full.
    Returns the lanes and the records (`RECORDS`) of the iterations each lane completed in
    this call (from its ``iteration`` on entry), each ``(lanes, buffer, ...)``.
    """
    dim = lanes.position.z.shape[-1]
    n_lanes = lanes.iteration.shape[0]
    records = {
        "z": jnp.zeros((n_lanes, buffer, dim), jnp.float32),
        "potential_energy": jnp.zeros((n_lanes, buffer), jnp.float32),
        "energy": jnp.zeros((n_lanes, buffer), jnp.float32),
        "num_steps": jnp.zeros((n_lanes, buffer), jnp.int32),
        "accept_prob": jnp.zeros((n_lanes, buffer), jnp.float32),
        "diverging": jnp.zeros((n_lanes, buffer), bool),
        "step_size": jnp.zeros((n_lanes, buffer), jnp.float32),
    }
    step = functools.partial(_step, potential, max_tree_depth, until, n_warmup, target_accept)
    start = lanes.iteration

    def body(carry):
        lanes, records = carry
        return jax.vmap(step)(data, metric, factor, start, lanes, records)

    def running(carry):
        iteration = carry[0].iteration
        going = jnp.sum(iteration < until)
        return (going > narrow_at) & jnp.all(iteration - start < buffer)

    return jax.lax.while_loop(running, body, (lanes, records))


def _step(potential, max_depth, until, n_warmup, target_accept, data, metric, factor, start,
          lane: Lane, records: dict):
    """One leapfrog of one lane, and the bookkeeping of its tree (see the module docstring)."""
    key, choose_key, join_key, direction_key, next_key = jax.random.split(lane.key, 5)
    sub, tree = lane.subtree, lane.tree
    step_size = jnp.exp(lane.adaptation.log_step)

    # the leapfrog, from the newest leaf outwards
    signed = jnp.where(lane.going_right, step_size, -step_size)
    r_half = sub.edge.r - 0.5 * signed * sub.edge.grad
    z = sub.edge.z + signed * (metric @ r_half)
    value, grad = jax.value_and_grad(potential)(z, data)
    r = r_half - 0.5 * signed * grad
    v = metric @ r
    energy = value + 0.5 * v @ r
    delta = energy - lane.energy0
    delta = jnp.where(jnp.isnan(delta), jnp.inf, delta)
    diverging = delta > MAX_DELTA_ENERGY
    leaf, candidate = Leaf(z, r, grad), Candidate(z, value, grad, energy)

    # the leaf joins the subtree: uniform sampling within it
    first = sub.steps == 0
    take = first | jax.random.bernoulli(choose_key, jax.nn.sigmoid(-delta - sub.weight))
    sub_candidate = _where(take, candidate, sub.candidate)
    sub_weight = jnp.where(first, -delta, jnp.logaddexp(sub.weight, -delta))
    sub_r_sum = jnp.where(first, r, sub.r_sum + r)
    sub_accept = jnp.where(first, 0.0, sub.accept_sum) + jnp.minimum(jnp.exp(-delta), 1.0)
    index = sub.steps
    low, high = _checkpoint_range(index)
    even = index % 2 == 0
    r_ckpts = jnp.where(even, sub.r_ckpts.at[high].set(r), sub.r_ckpts)
    v_ckpts = jnp.where(even, sub.v_ckpts.at[high].set(v), sub.v_ckpts)
    r_sum_ckpts = jnp.where(even, sub.r_sum_ckpts.at[high].set(sub_r_sum), sub.r_sum_ckpts)
    # every subtree ending at this leaf whose start is a checkpoint: low ... high
    spans = sub_r_sum - r_sum_ckpts + r_ckpts - 0.5 * (r_ckpts + r)
    turns = (jnp.sum(v_ckpts * spans, -1) <= 0) | (spans @ v <= 0)
    in_range = (jnp.arange(max_depth) >= low) & (jnp.arange(max_depth) <= high)
    sub_turning = jnp.any(turns & in_range)
    steps = index + 1
    sub_done = (steps == 2 ** tree.depth) | sub_turning | diverging

    # a finished subtree joins the tree: biased progressive sampling
    join = jax.random.bernoulli(join_key, jnp.where(
        sub_turning | diverging, 0.0, jnp.minimum(jnp.exp(sub_weight - tree.weight), 1.0)))
    left = _where(sub_done & ~lane.going_right, leaf, tree.left)
    right = _where(sub_done & lane.going_right, leaf, tree.right)
    r_sum = jnp.where(sub_done, tree.r_sum + sub_r_sum, tree.r_sum)
    joined = Tree(
        left, right, _where(sub_done & join, sub_candidate, tree.candidate),
        jnp.where(sub_done, jnp.logaddexp(tree.weight, sub_weight), tree.weight), r_sum,
        tree.depth + sub_done, tree.accept_sum + jnp.where(sub_done, sub_accept, 0.0),
        tree.steps + jnp.where(sub_done, steps, 0),
    )
    centred = r_sum - 0.5 * (left.r + right.r)
    tree_turning = sub_turning | ((metric @ left.r) @ centred <= 0) | (
        (metric @ right.r) @ centred <= 0)
    done = sub_done & (tree_turning | diverging | (joined.depth >= max_depth))

    # the next subtree doubles the tree in a random direction
    going_right = jnp.where(sub_done, jax.random.bernoulli(direction_key), lane.going_right)
    new_edge = _where(going_right, joined.right, joined.left)
    subtree = Subtree(_where(sub_done, new_edge, leaf), sub_candidate, sub_weight, sub_r_sum,
                      sub_accept, jnp.where(sub_done, 0, steps), r_ckpts, v_ckpts, r_sum_ckpts)
    growing = lane._replace(key=key, going_right=going_right, tree=joined, subtree=subtree)

    # or the trajectory ends: record the draw, adapt the step size, start the next one
    accept = joined.accept_sum / joined.steps
    adaptation = _adapt(lane.adaptation, target_accept - accept, lane.iteration, n_warmup)
    drawn = joined.candidate
    finished = _new_trajectory(
        lane._replace(key=key, iteration=lane.iteration + 1, position=drawn,
                      adaptation=adaptation), drawn, metric, factor, next_key)
    active = lane.iteration < until
    new_lane = _where(active, _where(done, finished, growing), lane)

    row = jnp.clip(lane.iteration - start, 0, records["z"].shape[0] - 1)
    record = {"z": drawn.z, "potential_energy": drawn.potential, "energy": drawn.energy,
              "num_steps": joined.steps, "accept_prob": accept, "diverging": diverging,
              "step_size": step_size}
    write = active & done
    records = {name: values.at[row].set(jnp.where(write, record[name], values[row]))
               for name, values in records.items()}
    return new_lane, records


def _new_trajectory(lane: Lane, position: Candidate, metric, factor, key) -> Lane:
    """A lane at ``position`` with a fresh momentum and an empty tree."""
    momentum_key, direction_key = jax.random.split(key)
    r = factor @ jax.random.normal(momentum_key, position.z.shape, position.z.dtype)
    energy = position.potential + 0.5 * (metric @ r) @ r
    start = Leaf(position.z, r, position.grad)
    candidate = position._replace(energy=energy)
    tree = Tree(start, start, candidate, jnp.zeros(()), r, jnp.array(0, jnp.int32),
                jnp.zeros(()), jnp.array(0, jnp.int32))
    subtree = lane.subtree._replace(edge=start, steps=jnp.array(0, jnp.int32))
    return lane._replace(position=candidate, energy0=energy, tree=tree, subtree=subtree,
                         going_right=jax.random.bernoulli(direction_key))


def _empty_tree(position: Candidate) -> Tree:
    leaf = Leaf(position.z, jnp.zeros_like(position.z), position.grad)
    zero, none = jnp.zeros(()), jnp.array(0, jnp.int32)
    return Tree(leaf, leaf, position, zero, leaf.r, none, zero, none)


def _empty_subtree(position: Candidate, max_depth: int) -> Subtree:
    leaf = Leaf(position.z, jnp.zeros_like(position.z), position.grad)
    zero = jnp.zeros(())
    ckpts = jnp.zeros((max_depth, position.z.shape[0]), position.z.dtype)
    return Subtree(leaf, position, zero, leaf.r, zero, jnp.array(0, jnp.int32), ckpts, ckpts,
                   ckpts)


def _checkpoint_range(n):
    """NumPyro's checkpoint indices for leaf ``n`` of a subtree: the checks at this leaf
    cover the checkpoints ``low`` ... ``high`` (none for ``n = 0``)."""
    high = jax.lax.population_count(n >> 1)
    trailing_ones = jax.lax.population_count((~n & (n + 1)) - 1)
    return high - trailing_ones + 1, high


def _adapt(adaptation: Adaptation, g, iteration, n_warmup) -> Adaptation:
    """One dual averaging update during warmup; at its last iteration, the averaged step."""
    t = adaptation.t + 1
    g_avg = (1 - 1 / (t + 10)) * adaptation.g_avg + g / (t + 10)
    x = adaptation.mu - jnp.sqrt(t.astype(jnp.float32)) / 0.05 * g_avg
    weight = t.astype(jnp.float32) ** -0.75
    x_avg = (1 - weight) * adaptation.x_avg + weight * x
    log_step = jnp.where(iteration == n_warmup - 1, x_avg, x)
    finfo = jnp.finfo(jnp.float32)
    log_step = jnp.clip(log_step, jnp.log(finfo.tiny), jnp.log(finfo.max))
    updated = Adaptation(log_step, x, x_avg, g_avg, t, adaptation.mu)
    return _where(iteration < n_warmup, updated, adaptation)


def _reasonable_log_step(potential, data, position: Candidate, metric, factor, log_step, key):
    """Double or halve the step until one leapfrog's acceptance crosses 0.8 (NumPyro's
    ``find_reasonable_step_size``)."""
    def energy_error(log_step, key):
        r = factor @ jax.random.normal(key, position.z.shape, position.z.dtype)
        step = jnp.exp(log_step)
        r_half = r - 0.5 * step * position.grad
        z = position.z + step * (metric @ r_half)
        value, grad = jax.value_and_grad(potential)(z, data)
        r_new = r_half - 0.5 * step * grad
        return (value + 0.5 * (metric @ r_new) @ r_new) - (
            position.potential + 0.5 * (metric @ r) @ r)

    def body(state):
        log_step, _, direction, key, count = state
        key, momentum_key = jax.random.split(key)
        log_step = log_step + direction * jnp.log(2.0)
        new = jnp.where(jnp.log(0.8) < -energy_error(log_step, momentum_key), 1, -1)
        return log_step, direction, new, key, count + 1

    def going(state):
        _, last, direction, _, count = state
        return ((last == 0) | (direction == last)) & (count < 60)

    state = (log_step, 0, 0, key, 0)
    return jax.lax.while_loop(going, body, state)[0]


def _where(condition, new, old):
    """``new`` where ``condition`` else ``old``, leaf by leaf."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)
