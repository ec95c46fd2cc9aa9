"""The compiled core of the request-level simulator: an event heap and replica tables.

The Python driver (`driver.SimulationState`) calls `advance` up to each controller
decision, `observe` for what the controller sees and `apply` for what it asks; everything
in between runs here, in numba, so a day of traffic at thousands of requests per second
simulates in seconds. The rules are those of `driver`'s docstring (SPEC, "Serving model"),
which also walks through the state below.

The state is numpy structured arrays (one record per replica, stage and event), grouped in
two NamedTuples: `EngineState` (what the loop changes) and `EngineInputs` (what a run is
given). Numba compiles record fields to plain loads and stores, and `cache=True` keeps the
machine code between processes; a numba jitclass would read the same, but numba cannot
cache it or the functions that take it, so every process would compile it again.

Passing the two tuples through a real call costs about as much as the work of a small
helper (they travel as some hundred scalars: not inlined, the loop ran ~40 % slower), so
every private helper is inlined into the four public entry points (`inline="always"`).
The first compile takes about 10 s of CPU; `cache=True` keeps it for later processes.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numba
import numpy as np


class Phase(IntEnum):
    """What a replica is doing."""

    BOOTING = 0
    """Added, serving from `ready_at_s` (the cold start); charged already."""
    IDLE = 1
    """Ready, waiting for work."""
    BUSY = 2
    """Serving a batch (maybe removed: it leaves once the batch is done)."""
    GONE = 3
    """Removed: no longer serves or costs."""


class EventKind(IntEnum):
    """What an event on the heap does to its replica."""

    BATCH_DONE = 0
    """The replica's batch completes: its requests move on, it takes more work or leaves."""
    READY = 1
    """The replica's cold start is over: it serves from now."""
    RESIZE = 2
    """A resize lands: the replica serves (and is charged) at its new cores from now."""


class ActionKind(IntEnum):
    """What the driver asks of the engine when a controller changes an allocation."""

    ADD = 0
    """Start a replica: target = stage; it boots for the cold start."""
    ADD_READY = 1
    """Start a replica ready at once (the opening allocation): target = stage."""
    REMOVE = 2
    """Remove a replica: target = slot; a busy one finishes its batch first."""
    RESIZE = 3
    """Resize a replica: target = slot; lands a resize delay later."""


REPLICA = np.dtype(
    [
        ("stage", np.int64),
        ("phase", np.int64),  # a Phase
        ("cores_idx", np.int64),  # index into EngineInputs.cores: what it serves and is charged at now
        ("removed", np.bool_),  # takes no new work; a busy one goes once its batch is done
        ("batch_first", np.int64),  # its batch: queues[stage, batch_first : batch_first + batch_size]
        ("batch_size", np.int64),
        ("idle_order", np.int64),  # Counters.idle_seq when it last became idle: smallest = idle longest
        ("target_cores_idx", np.int64),  # cores index it has, or will have once its latest resize lands
        ("resize_token", np.int64),  # resizes asked so far; only the latest one lands
        ("busy_since_s", np.float64),  # when its current batch started
        ("charged_until_s", np.float64),  # its core-seconds are in its stage's core_s up to here
        ("ready_at_s", np.float64),  # when it serves (or served) first
    ],
    align=True,
)
"""One replica ever started (a "slot": slots are never reused)."""

STAGE = np.dtype(
    [
        ("queue_head", np.int64),  # queues[stage, queue_head:queue_tail] wait; those before were taken
        ("queue_tail", np.int64),
        ("batch", np.int64),  # the most requests a replica takes at once
        ("live", np.int64),  # live[stage, :live] are the slots of its replicas not removed
        ("ready_cores", np.int64),  # cores of its idle and busy replicas not removed
        ("ready_core_s", np.float64),  # ready_cores integrated over time up to ready_since_s
        ("ready_since_s", np.float64),
        ("busy_core_s", np.float64),  # cores x time of its finished batches
        ("core_s", np.float64),  # core-seconds charged (the cost), up to the horizon
    ],
    align=True,
)
"""One stage: its queue, its live replicas and its running totals."""

EVENT = np.dtype(
    [("t_s", np.float64), ("seq", np.int64), ("kind", np.int64), ("slot", np.int64), ("token", np.int64)],
    align=True,
)
"""A pending replica event: at t_s, `kind` (an EventKind) happens to `slot`. `seq` is the
order it was scheduled in (ties at equal t_s go in that order); `token` is the replica's
resize_token when a RESIZE was asked for."""

COUNTERS = np.dtype(
    [
        ("next_arrival", np.int64),  # the first request not yet arrived
        ("events", np.int64),  # events[:events] is the heap
        ("event_seq", np.int64),  # events ever scheduled
        ("idle_seq", np.int64),  # times a replica became idle
        ("slots", np.int64),  # replicas[:slots] were ever started
    ],
    align=True,
)
"""The engine's scalar counters (one record, so the compiled code can update them)."""

ACTION = np.dtype([("kind", np.int64), ("target", np.int64), ("cores_idx", np.int64)], align=True)
"""One replica action (`ActionKind`) the driver hands to `apply`."""


class EngineState(NamedTuple):
    """Everything the compiled loop changes. Arrays grow (driver) but are never bounds-checked here."""

    arrivals_s: np.ndarray
    """float64[request], sorted."""
    done_s: np.ndarray
    """float64[request]: when it left the last stage (inf: not yet, or never)."""
    queues: np.ndarray
    """int64[stage, position]: the requests that reached each stage, in the order they did."""
    live: np.ndarray
    """int64[stage, i]: slots of each stage's replicas not removed (the first `STAGE.live`)."""
    replicas: np.ndarray
    """REPLICA[slot]."""
    stages: np.ndarray
    """STAGE[stage]."""
    events: np.ndarray
    """EVENT[i]: a binary min-heap on (t_s, seq) over the first `COUNTERS.events`."""
    counters: np.ndarray
    """COUNTERS[1]."""


class EngineInputs(NamedTuple):
    """What one run is given; never changes."""

    cores: np.ndarray
    """int64[cores_idx]: cores per replica of each cores option."""
    service_ms: np.ndarray
    """float64[stage, batch, cores_idx]: median time to serve a batch (`ServiceTables`)."""
    quantile_ms: np.ndarray
    """float64[stage, batch, cores_idx, knot]: the batch's latency at each knot (sampled only)."""
    knots: np.ndarray
    """float64[knot]: the probabilities `quantile_ms` is given at."""
    uniforms: np.ndarray
    """float64[stage, request]: the uniform draw that picks a sampled service time."""
    sampled: bool
    cold_start_s: float
    resize_s: float
    horizon_s: float
    """Cost is charged up to here."""


# ----------------------------------------------------------------------------- event heap


@numba.njit(cache=True, inline="always")
def _earlier(a, b):
    """Whether event record a comes before event record b."""
    return a.t_s < b.t_s or (a.t_s == b.t_s and a.seq < b.seq)


@numba.njit(cache=True, inline="always")
def _schedule(state, t_s, kind, slot, token):
    """Push an event; events at equal times run in the order they were scheduled."""
    counters = state.counters[0]
    events = state.events
    seq = counters.event_seq
    counters.event_seq = seq + 1
    i = counters.events
    counters.events = i + 1
    while i > 0:
        parent = (i - 1) >> 1
        if events[parent].t_s < t_s or (events[parent].t_s == t_s and events[parent].seq < seq):
            break
        events[i] = events[parent]
        i = parent
    event = events[i]
    event.t_s = t_s
    event.seq = seq
    event.kind = kind
    event.slot = slot
    event.token = token


@numba.njit(cache=True, inline="always")
def _pop_first(state):
    """Remove the earliest event (read its fields first)."""
    counters = state.counters[0]
    events = state.events
    n = counters.events - 1
    counters.events = n
    if n == 0:
        return
    last = events[n]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and _earlier(events[child + 1], events[child]):
            child += 1
        if _earlier(last, events[child]):
            break
        events[i] = events[child]
        i = child
    events[i] = last


# ----------------------------------------------------------------------------- bookkeeping


@numba.njit(cache=True, inline="always")
def _charge(state, inputs, slot, t_s):
    """Add the replica's core-seconds up to t_s (clamped to the horizon) to its stage's cost."""
    replica = state.replicas[slot]
    since = replica.charged_until_s
    until = min(t_s, inputs.horizon_s)
    if until > since:
        state.stages[replica.stage].core_s += inputs.cores[replica.cores_idx] * (until - since)
    replica.charged_until_s = max(since, until)


@numba.njit(cache=True, inline="always")
def _add_ready_cores(stage, t_s, delta_cores):
    """Change a stage's ready cores at t_s, integrating the old value up to t_s first."""
    stage.ready_core_s += stage.ready_cores * (t_s - stage.ready_since_s)
    stage.ready_since_s = t_s
    stage.ready_cores += delta_cores


@numba.njit(cache=True, inline="always")
def _become_idle(state, replica):
    replica.phase = Phase.IDLE
    counters = state.counters[0]
    replica.idle_order = counters.idle_seq
    counters.idle_seq += 1


@numba.njit(cache=True, inline="always")
def _longest_idle(state, s):
    """The slot of stage s's live replica idle the longest, or -1 if none is idle."""
    best = -1
    best_order = 0
    for i in range(state.stages[s].live):
        slot = state.live[s, i]
        replica = state.replicas[slot]
        if replica.phase == Phase.IDLE and (best < 0 or replica.idle_order < best_order):
            best = slot
            best_order = replica.idle_order
    return best


@numba.njit(cache=True, inline="always")
def _service_s(inputs, s, k, cores_idx, request):
    """Time to serve a batch of k at stage s: the median, or a draw (by the batch's first
    request) interpolated between the measured percentiles."""
    if not inputs.sampled:
        return inputs.service_ms[s, k, cores_idx] / 1000.0
    u = inputs.uniforms[s, request]
    knots = inputs.knots
    for m in range(1, knots.size):
        if u <= knots[m]:
            lo = inputs.quantile_ms[s, k, cores_idx, m - 1]
            hi = inputs.quantile_ms[s, k, cores_idx, m]
            return (lo + (hi - lo) * (u - knots[m - 1]) / (knots[m] - knots[m - 1])) / 1000.0
    return inputs.quantile_ms[s, k, cores_idx, knots.size - 1] / 1000.0


@numba.njit(cache=True, inline="always")
def _dispatch(state, inputs, s, t_s):
    """Give stage s's queued requests to its idle replicas, the longest idle first."""
    stage = state.stages[s]
    while stage.queue_tail > stage.queue_head:
        slot = _longest_idle(state, s)
        if slot < 0:
            return
        replica = state.replicas[slot]
        head = stage.queue_head
        k = min(stage.queue_tail - head, stage.batch)
        service_s = _service_s(inputs, s, k, replica.cores_idx, state.queues[s, head])
        replica.phase = Phase.BUSY
        replica.batch_first = head
        replica.batch_size = k
        replica.busy_since_s = t_s
        stage.queue_head = head + k
        _schedule(state, t_s + service_s, EventKind.BATCH_DONE, slot, 0)


# ----------------------------------------------------------------------------- events


@numba.njit(cache=True, inline="always")
def _arrive(state, inputs, t_s):
    """The next request arrives at the first stage."""
    counters = state.counters[0]
    first = state.stages[0]
    state.queues[0, first.queue_tail] = counters.next_arrival
    first.queue_tail += 1
    counters.next_arrival += 1
    _dispatch(state, inputs, 0, t_s)


@numba.njit(cache=True, inline="always")
def _finish_batch(state, inputs, slot, t_s):
    """The replica's batch is done: its requests go on (or are done); it takes more work or leaves."""
    replica = state.replicas[slot]
    s = replica.stage
    stage = state.stages[s]
    has_next = s + 1 < state.stages.size
    stage.busy_core_s += inputs.cores[replica.cores_idx] * (t_s - replica.busy_since_s)
    for j in range(replica.batch_first, replica.batch_first + replica.batch_size):
        request = state.queues[s, j]
        if has_next:
            following = state.stages[s + 1]
            state.queues[s + 1, following.queue_tail] = request
            following.queue_tail += 1
        else:
            state.done_s[request] = t_s
    if replica.removed:
        _charge(state, inputs, slot, t_s)
        replica.phase = Phase.GONE
    else:
        _become_idle(state, replica)
        _dispatch(state, inputs, s, t_s)
    if has_next:
        _dispatch(state, inputs, s + 1, t_s)


@numba.njit(cache=True, inline="always")
def _become_ready(state, inputs, slot, t_s):
    """The replica's cold start is over (unless it was removed meanwhile)."""
    replica = state.replicas[slot]
    if replica.phase == Phase.BOOTING:
        _become_idle(state, replica)
        _add_ready_cores(state.stages[replica.stage], t_s, inputs.cores[replica.cores_idx])
        _dispatch(state, inputs, replica.stage, t_s)


@numba.njit(cache=True, inline="always")
def _land_resize(state, inputs, slot, token, t_s):
    """A resize lands, unless a later one superseded it or the replica was removed."""
    replica = state.replicas[slot]
    if token == replica.resize_token and replica.phase != Phase.GONE and not replica.removed:
        _charge(state, inputs, slot, t_s)
        old = replica.cores_idx
        replica.cores_idx = replica.target_cores_idx
        if replica.phase != Phase.BOOTING:
            _add_ready_cores(state.stages[replica.stage], t_s, inputs.cores[replica.cores_idx] - inputs.cores[old])


@numba.njit(cache=True)
def advance(state, inputs, t_until_s):
    """Process every event strictly before t_until_s: replica events in (t_s, seq) order,
    and at equal times replica events before arrivals."""
    counters = state.counters[0]
    n_requests = state.arrivals_s.size
    while True:
        t_event = state.events[0].t_s if counters.events > 0 else np.inf
        t_arrival = state.arrivals_s[counters.next_arrival] if counters.next_arrival < n_requests else np.inf
        if t_event <= t_arrival:
            if t_event >= t_until_s or t_event == np.inf:
                return
            first = state.events[0]
            kind, slot, token = first.kind, first.slot, first.token
            _pop_first(state)
            if kind == EventKind.BATCH_DONE:
                _finish_batch(state, inputs, slot, t_event)
            elif kind == EventKind.READY:
                _become_ready(state, inputs, slot, t_event)
            else:
                _land_resize(state, inputs, slot, token, t_event)
        else:
            if t_arrival >= t_until_s:
                return
            _arrive(state, inputs, t_arrival)


# ----------------------------------------------------------------------------- actions


@numba.njit(cache=True, inline="always")
def _add_replica(state, inputs, t_s, action):
    counters = state.counters[0]
    slot = counters.slots
    counters.slots = slot + 1
    s = action.target
    replica = state.replicas[slot]
    replica.stage = s
    replica.cores_idx = action.cores_idx
    replica.target_cores_idx = action.cores_idx
    replica.removed = False
    replica.resize_token = 0
    replica.charged_until_s = min(t_s, inputs.horizon_s)
    stage = state.stages[s]
    state.live[s, stage.live] = slot
    stage.live += 1
    if action.kind == ActionKind.ADD_READY or inputs.cold_start_s == 0.0:
        _become_idle(state, replica)
        replica.ready_at_s = t_s
        _add_ready_cores(stage, t_s, inputs.cores[action.cores_idx])
    else:
        replica.phase = Phase.BOOTING
        replica.ready_at_s = t_s + inputs.cold_start_s
        _schedule(state, t_s + inputs.cold_start_s, EventKind.READY, slot, 0)


@numba.njit(cache=True, inline="always")
def _remove_replica(state, inputs, t_s, slot):
    replica = state.replicas[slot]
    s = replica.stage
    stage = state.stages[s]
    for i in range(stage.live):  # drop it from the live list (order does not matter)
        if state.live[s, i] == slot:
            state.live[s, i] = state.live[s, stage.live - 1]
            stage.live -= 1
            break
    replica.removed = True
    if replica.phase != Phase.BOOTING:
        _add_ready_cores(stage, t_s, -inputs.cores[replica.cores_idx])
    if replica.phase != Phase.BUSY:
        _charge(state, inputs, slot, t_s)
        replica.phase = Phase.GONE


@numba.njit(cache=True, inline="always")
def _ask_resize(state, inputs, t_s, slot, cores_idx):
    replica = state.replicas[slot]
    replica.resize_token += 1
    replica.target_cores_idx = cores_idx
    _schedule(state, t_s + inputs.resize_s, EventKind.RESIZE, slot, replica.resize_token)


@numba.njit(cache=True)
def apply(state, inputs, t_s, actions):
    """Carry out a decision's ACTION rows at t_s, then let every stage's idle replicas take
    queued work (new capacity serves at once)."""
    for a in range(actions.size):
        action = actions[a]
        if action.kind == ActionKind.ADD or action.kind == ActionKind.ADD_READY:
            _add_replica(state, inputs, t_s, action)
        elif action.kind == ActionKind.REMOVE:
            _remove_replica(state, inputs, t_s, action.target)
        else:
            _ask_resize(state, inputs, t_s, action.target, action.cores_idx)
    for s in range(state.stages.size):
        _dispatch(state, inputs, s, t_s)


# ----------------------------------------------------------------------------- read-outs


class StageTotals(NamedTuple):
    """What `observe` reads of every stage at one time (what controllers are shown)."""

    busy_core_s: np.ndarray
    """float64[stage]: cores x time spent serving so far, batches still running included."""
    ready_core_s: np.ndarray
    """float64[stage]: cores x time of ready (idle or busy) replicas so far."""
    ready_replicas: np.ndarray
    """int64[stage]: live replicas idle or busy."""
    queue_len: np.ndarray
    """int64[stage]: requests waiting."""
    replicas_by_cores: np.ndarray
    """int64[stage, cores_idx]: live replicas by the cores they have or are being resized to."""


@numba.njit(cache=True)
def observe(state, inputs, t_s):
    """Every stage's `StageTotals` at t_s."""
    n_stages = state.stages.size
    busy = np.empty(n_stages)
    ready = np.empty(n_stages)
    ready_replicas = np.zeros(n_stages, dtype=np.int64)
    queue_len = np.empty(n_stages, dtype=np.int64)
    by_cores = np.zeros((n_stages, inputs.cores.size), dtype=np.int64)
    for s in range(n_stages):
        stage = state.stages[s]
        busy[s] = stage.busy_core_s
        ready[s] = stage.ready_core_s + stage.ready_cores * (t_s - stage.ready_since_s)
        queue_len[s] = stage.queue_tail - stage.queue_head
        for i in range(stage.live):
            replica = state.replicas[state.live[s, i]]
            by_cores[s, replica.target_cores_idx] += 1
            if replica.phase == Phase.IDLE or replica.phase == Phase.BUSY:
                ready_replicas[s] += 1
    for slot in range(state.counters[0].slots):  # removed replicas still finishing a batch count too
        replica = state.replicas[slot]
        if replica.phase == Phase.BUSY:
            busy[replica.stage] += inputs.cores[replica.cores_idx] * (t_s - replica.busy_since_s)
    return StageTotals(busy, ready, ready_replicas, queue_len, by_cores)


@numba.njit(cache=True)
def charge_held(state, inputs, t_s):
    """Charge every replica still held up to t_s (clamped to the horizon); later charges
    start from there. At the horizon this closes a run's cost; at the warm-up it gives the
    cost held before it."""
    for slot in range(state.counters[0].slots):
        if state.replicas[slot].phase != Phase.GONE:
            _charge(state, inputs, slot, t_s)
