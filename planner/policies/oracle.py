"""`oracle`: the offline optimum with perfect knowledge of the future, the cost floor.

For every interval it takes the cheapest allocation that holds the SLO *in simulation* on
the requests that really arrive in it: replayed on the allocation (`themis.planner.model.
replay`: from a second before the interval, so that the queue it inherits counts, on the
replicas serving then, resized at its start to the allocation's size, which lands a resize
delay later), at most 1 - q of them (1 % for p99) may exceed the SLO. Candidates are every replica size and batch of the
stage with any number of replicas; they are tried cheapest first (a replica count can
never be below the interval's mean load over one replica's capacity), so the search
replays a handful of allocations per interval. An interval with no request keeps the
cheapest single replica (the service stays up).

Replicas needed at interval t are requested a cold start ahead (at t - cold_steps) and
held, so they are ready in time; while they wait they are kept at the smallest size and
resized in place when they start serving. When an interval needs more replicas than the
one before, the oracle grows the replicas already there instead (a resize needs no cold
start) wherever an allocation on them holds for less than the new replicas and their
boot. Growing beats booting for one interval and booting once beats growing for a run of
them, which an interval-by-interval choice cannot see: the trace is sized both ways and
the cheaper whole plan kept. Every online policy is compared against this floor.

A pipeline of several stages has no per-stage share of the SLO to replay against, so its
oracle keeps the queueing estimate at each interval's real peak instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from themis.planner.model import replay
from themis.planner.model.serving import Group
from themis.planner.optimise.loop import Allocations, Policy, PolicySetup, StepContext, choose
from themis.planner.optimise.space import StageSpace

LEAD_S = 10.0
"""Each interval's replay starts this long before it, on the replicas and batch of the
interval before, so that the queue a transition carries over is counted (not the
lead-in's own requests): long enough for the queue of an interval run near its capacity
to build up as it really does."""


@dataclass(frozen=True)
class OracleState:
    """The allocation of every interval, found up front from the real arrivals (None: a
    pipeline, sized by the estimate at each interval's peak)."""

    replayed: tuple[Allocations, ...] | None = None


def initial_state(setup: PolicySetup) -> OracleState:
    solver = setup.solver
    if len(solver.spaces) != 1 or setup.arrivals_s is None:
        return OracleState()
    (space,) = solver.spaces
    interval_s = setup.config.interval_s
    arrivals = np.asarray(setup.arrivals_s, dtype=float)
    edges = np.searchsorted(arrivals, np.arange(len(setup.planning_loads_rps) + 1) * interval_s)
    cold_steps = math.ceil(setup.config.cold_start_s / interval_s - 1e-9)
    # growing in place beats booting for one interval, booting once beats growing for a
    # run of them: the interval-by-interval choice cannot see which, so both are sized and
    # the cheaper whole plan (with the replicas booted ahead) is kept
    sized = [_sizes(setup, space, arrivals, edges, cold_steps, grow=grow) for grow in (True, False)]
    chosen = min(sized, key=lambda c: _plan_cost(space, c, cold_steps))
    out = []
    for i, (k, r) in enumerate(chosen):
        peak = float(setup.actual_peaks_rps[i]) if setup.actual_peaks_rps is not None else (edges[i + 1] - edges[i]) / interval_s
        out.append((space.allocation(k, r, peak),))
    return OracleState(tuple(out))


def _sizes(
    setup: PolicySetup, space: StageSpace, arrivals: np.ndarray, edges: np.ndarray, cold_steps: int, *, grow: bool
) -> list[tuple[int, int]]:
    """(candidate, replicas) per interval, each the cheapest that holds on its arrivals;
    with `grow`, the replicas already there are grown instead of booting new ones wherever
    that is cheaper for the interval."""
    interval_s = setup.config.interval_s
    quantile = setup.config.percentile / 100.0
    smallest_price = float(space.cost_per_hour[:, 0].min())
    smallest = min(o.cores for o in space.options)
    chosen: list[tuple[int, int]] = []
    searches: list[Search] = []
    previous: list[int] = []  # cores of the replicas serving as an interval starts, largest first
    previous_batch: int | None = None
    for i in range(len(edges) - 1):
        window = arrivals[edges[i] : edges[i + 1]] - i * interval_s
        lead = arrivals[(arrivals >= i * interval_s - LEAD_S) & (arrivals < i * interval_s)] - i * interval_s
        search = Search(
            space, window, lead, interval_s, setup.solver.slo_ms, quantile, previous, setup.config.resize_s, smallest, previous_batch
        )
        k, r = search.cheapest()
        if grow and previous and r > len(previous):
            # growing the replicas already there needs no cold start: take that when it is
            # cheaper than the new replicas plus their boot, asked for a cold start ahead at
            # the smallest size (the opening allocation needs none: it is running already)
            grown = search.cheapest(max_replicas=len(previous))
            boot = smallest_price * min(cold_steps, i) * (r - len(previous))
            if grown is not None and space.cost_per_hour[grown[0], grown[1] - 1] < space.cost_per_hour[k, r - 1] + boot:
                k, r = grown
        previous, previous_batch = [int(space.k_cores[k])] * r, int(space.k_batch[k])
        chosen.append((k, r))
        searches.append(search)
    return _with_replicas_ahead(space, chosen, searches, cold_steps, smallest_price)


def _plan_cost(space: StageSpace, chosen: list[tuple[int, int]], cold_steps: int) -> float:
    """Price of a sizing as `decide` runs it: each interval's allocation plus the replicas
    waiting, at the smallest size, for a later interval within a cold start."""
    smallest_price = float(space.cost_per_hour[:, 0].min())
    total = 0.0
    for i, (k, r) in enumerate(chosen):
        wanted = max(n for _, n in chosen[i : i + cold_steps + 1])
        total += float(space.cost_per_hour[k, r - 1]) + smallest_price * (wanted - r)
    return total


def _with_replicas_ahead(
    space: StageSpace, chosen: list[tuple[int, int]], searches: list[Search], cold_steps: int, smallest_price: float
) -> list[tuple[int, int]]:
    """Replicas a later interval needs are there a cold start ahead anyway (`decide` boots
    them at the smallest size): where an interval holds on that many replicas for less
    than its own choice plus the waiting ones, serve it on them all."""
    out = list(chosen)
    for i, (k, r) in enumerate(chosen):
        wanted = max(n for _, n in chosen[i : i + cold_steps + 1])
        if wanted <= r or wanted > space.max_replicas:
            continue
        cost = float(space.cost_per_hour[k, r - 1]) + smallest_price * (wanted - r)
        for kk in np.argsort(space.cost_per_hour[:, wanted - 1], kind="stable"):
            if space.cost_per_hour[kk, wanted - 1] >= cost - 1e-12:
                break
            if searches[i].holds(int(kk), wanted):
                out[i] = (int(kk), wanted)
                break
    return out


@dataclass
class Search:
    """One interval's search: its arrivals, and the replicas serving as it starts (their
    resizes to the chosen size land a resize delay later; replicas booted ahead wait at
    the smallest size)."""

    space: StageSpace
    arrivals_s: np.ndarray
    lead_s: np.ndarray
    """Arrivals of the last `LEAD_S` before the interval (times < 0): the queue it inherits."""
    interval_s: float
    slo_ms: float
    quantile: float
    previous: list[int]
    resize_s: float
    smallest: int
    previous_batch: int | None = None
    """The batch cap of the interval before (None: the first interval, no lead-in)."""

    def holds(self, k: int, replicas: int) -> bool:
        space = self.space
        after = np.tile(space.k_service_ms[k], (replicas, 1))
        cores_before = (self.previous + [self.smallest] * replicas)[:replicas] if self.previous else [int(space.k_cores[k])] * replicas
        before = np.array([space.options[space.option_of[(space.options[space.k_option[k]].device, c)]].service_ms for c in cores_before])
        allowed = math.floor((1.0 - self.quantile) * self.arrivals_s.size + 1e-9)
        arrivals = np.concatenate([self.lead_s, self.arrivals_s]) + LEAD_S
        served = replay.violations_after_resize(
            arrivals, int(space.k_batch[k]), before, after, LEAD_S + self.resize_s, self.slo_ms, LEAD_S, self.previous_batch
        )
        return served <= allowed

    def cheapest(self, max_replicas: int | None = None) -> tuple[int, int] | None:
        return cheapest_holding(self.space, self.arrivals_s, self.interval_s, self.holds, max_replicas=max_replicas)


def cheapest_holding(
    space: StageSpace,
    arrivals_s: np.ndarray,
    interval_s: float,
    holds: Callable[[int, int], bool],
    *,
    max_replicas: int | None = None,
) -> tuple[int, int] | None:
    """(candidate, replicas): the cheapest allocation that `holds` (ties: more capacity),
    tried cheapest first from the replicas the mean load needs. With no arrival, the
    cheapest single replica; when nothing holds, the most capacity there is (None when
    `max_replicas` is given and nothing within it holds)."""
    limit = space.max_replicas if max_replicas is None else max_replicas
    price = space.cost_per_hour[:, 0]
    if arrivals_s.size == 0:
        return int(np.lexsort((-space.capacity_rps[:, 0], price))[0]), 1
    rate = arrivals_s.size / interval_s
    floor = np.maximum(1, np.ceil(rate / space.capacity_rps[:, 0] - 1e-9)).astype(int)
    best: tuple[float, float, int, int] | None = None  # (cost, -capacity, k, r)
    for k in np.lexsort((-space.capacity_rps[:, 0], price * floor)):
        low = int(floor[k])
        if low > limit or (best is not None and (price[k] * low, 0.0) > best[:2]):
            continue
        r = _fewest_replicas(lambda n, k=k: holds(k, n), low, limit)
        if r is None:
            continue
        key = (float(price[k] * r), -float(space.capacity_rps[k, r - 1]), int(k), r)
        if best is None or key < best:
            best = key
    if best is None and max_replicas is not None:
        return None
    if best is None:
        k, r = np.unravel_index(int(np.argmax(space.capacity_rps)), space.capacity_rps.shape)
        return int(k), int(r) + 1
    return best[2], best[3]


def _fewest_replicas(holds, low: int, high: int) -> int | None:
    """The fewest replicas in [low, high] that hold, by galloping up then bisecting (more
    replicas never hurt a fixed set of arrivals); None if even `high` does not."""
    step, last_bad, r = 1, low - 1, low
    while r <= high:
        if holds(r):
            break
        last_bad, r, step = r, min(high, r + step), step * 2
        if last_bad == high:
            return None
    else:
        return None
    good = r
    while good - last_bad > 1:
        mid = (good + last_bad) // 2
        good, last_bad = (mid, last_bad) if holds(mid) else (good, mid)
    return good


def decide(ctx: StepContext, state: OracleState) -> tuple[Allocations, OracleState]:
    last = ctx.step + ctx.cold_steps + 1
    if state.replayed is not None:
        window = state.replayed[ctx.step : last]
        now, ahead = window[0], window[1:]
        load = float(ctx.future_peaks_rps[0])
    else:
        peaks = ctx.future_peaks_rps[: ctx.cold_steps + 1]
        now = choose(ctx, float(peaks[0]))
        ahead = [choose(ctx, float(p)) for p in peaks[1:]]
        load = float(peaks[0])
    out = []
    for j, alloc in enumerate(now):
        wanted = max([alloc.replicas] + [a[j].replicas for a in ahead])
        extra = wanted - alloc.replicas
        if extra == 0:
            out.append(alloc)
            continue
        space = ctx.solver.spaces[j]
        smallest = min(o.cores for o in space.options if o.device == alloc.device)
        (group,) = alloc.groups
        groups = (Group(wanted, smallest),) if group.cores == smallest else (group, Group(extra, smallest))
        out.append(ctx.solver.describe(j, groups, alloc.batch, alloc.device, load))
    return tuple(out), state


POLICY = Policy("oracle", offline=True, initial_state=initial_state, decide=decide)
