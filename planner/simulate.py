"""Request-level discrete-event simulation of SPEC's serving model, compiled with numba.

What is simulated (SPEC, "Serving model"; `tests/planner/simpy_reference.py` is the plain
SimPy model of the same rules and the correctness reference):

- Every request visits every stage in order; each stage has one FIFO queue.
- A free, ready replica takes min(queue length, batch) requests at once and serves them in
  `service_ms[k, cores]` (the median of the profile, or a draw between its measured
  percentiles with `service="sampled"`). No batching timeout: an idle replica starts at
  once with what is queued.
- When several replicas are idle, the one idle the longest takes the work (a shared queue
  that workers pull from).
- A replica added at t serves from t + cold_start_s (it is charged from t). Replicas of
  the very first decision are the opening provisioning and are ready at once.
- A resize asked for at t takes effect at t + resize_s; a batch already running finishes
  at the speed it started with.
- A removed replica takes no new work; a running batch finishes first (and is charged).
- Equal times: a controller decision at t comes before the events at t; replica events
  (completions, readiness, resizes) come before arrivals at the same time, in the order
  they were scheduled.
- A controller asks for allocations (groups of replicas x cores, and a batch per stage);
  the live replicas are matched to it (`_State._match`): when growing, running replicas
  take the largest sizes (resized in place) and new ones boot at the rest; otherwise
  replicas already at a wanted size stay, others are resized, surplus ones are removed.
  `scale_actions` counts the (decision, stage) pairs that changed any replica or batch.
- Latency = completion of the last stage - arrival. A request never served (no replica
  left) is dropped and counts as a violation with infinite latency.
- core_seconds integrates each replica's cores over [0, horizon_s] (booting included;
  a resize changes the charge when it takes effect).
- Utilisation (what `hpa` reads) is CPU-like: busy core-seconds / ready core-seconds of
  the stage over the window since the controller's previous decision.

The event loop (`_advance`) runs in numba on plain arrays; the Python side only calls it
between controller decisions, so closed-loop controllers see exactly the simulated state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numba
import numpy as np
import pandas as pd

from themis.common import SCHEMA_VERSION
from themis.planner.errors import PlanInputError
from themis.planner.serving import Group, StageAllocation

SERVICE_MODES = ("median", "sampled")
QUANTILE_KNOTS = np.array([0.0, 0.5, 0.9, 0.95, 0.99, 1.0])
"""Probabilities at which `quantile_ms` tables hold latencies (min, p50, p90, p95, p99, max)."""

# replica states
_BOOTING, _IDLE, _BUSY, _GONE = 0, 1, 2, 3
# event kinds
_EV_DONE, _EV_READY, _EV_RESIZE = 0, 1, 2
# action kinds (Python -> numba)
ACT_ADD, ACT_ADD_READY, ACT_REMOVE, ACT_RESIZE = 0, 1, 2, 3
# columns of the float replica table
_F_BUSY_START, _F_COST_SINCE, _F_READY_AT = 0, 1, 2
# columns of the int replica table
_I_STAGE, _I_CIDX, _I_STATE, _I_REMOVING, _I_QSTART, _I_K, _I_IDLE_SEQ, _I_COST_CIDX, _I_TOKEN, _I_PENDING = range(10)
# global counters
_G_PTR, _G_HEAP_N, _G_SEQ, _G_IDLE_SEQ, _G_NSLOTS = range(5)
# per-stage float stats
_S_BUSY_CORE_S, _S_READY_CORE_S, _S_READY_LAST, _S_CORE_S = range(4)
# per-stage int stats
_SI_HEAD, _SI_TAIL, _SI_BATCH, _SI_READY_CORES, _SI_LIVE_N = range(5)


@dataclass(frozen=True)
class ServiceTables:
    """Service times per stage as lookup tables, so the compiled loop never calls Python.

    `service_ms[stage, k, j]` is the time to serve a batch of k on `cores_options[j]` cores
    (row 0 unused); `quantile_ms[stage, k, j, :]` holds the latency at `QUANTILE_KNOTS`
    for `service="sampled"`.
    """

    cores_options: tuple[int, ...]
    service_ms: np.ndarray
    quantile_ms: np.ndarray | None = None

    @property
    def stages(self) -> int:
        return int(self.service_ms.shape[0])

    @property
    def max_batch(self) -> int:
        return int(self.service_ms.shape[1] - 1)

    def cores_index(self, cores: int) -> int:
        try:
            return self.cores_options.index(int(cores))
        except ValueError:
            raise PlanInputError(f"{cores} cores per replica has no service time (known: {self.cores_options})") from None

    @classmethod
    def from_models(
        cls, models: list[Any], max_batch: int, cores_options: tuple[int, ...], *, sampled: bool = False
    ) -> ServiceTables:
        """Build the tables from one `LatencyModel` per stage (`service_table_ms`, `percentile_ms`)."""
        cores_options = tuple(sorted({int(c) for c in cores_options}))
        service = np.stack([np.asarray(m.service_table_ms(max_batch, cores_options), dtype=np.float64) for m in models])
        quantiles = None
        if sampled:
            quantiles = np.zeros(service.shape + (len(QUANTILE_KNOTS),))
            for s, model in enumerate(models):
                for k in range(1, max_batch + 1):
                    for j, cores in enumerate(cores_options):
                        q = [float(model.percentile_ms(k, cores, 100.0 * p)) for p in QUANTILE_KNOTS]
                        quantiles[s, k, j] = np.maximum.accumulate(q)
        return cls(cores_options, service, quantiles)


@dataclass(frozen=True)
class SimConfig:
    """Delays, SLO and randomness of one simulation run."""

    cold_start_s: float = 30.0
    resize_s: float = 1.0
    slo_ms: float = 200.0
    seed: int = 0
    service: str = "median"
    horizon_s: float | None = None
    """End of the cost window; default: the last arrival (or the controller's horizon)."""

    def __post_init__(self) -> None:
        if self.service not in SERVICE_MODES:
            raise PlanInputError(f"service must be one of {', '.join(SERVICE_MODES)}, not {self.service!r}", option="--service")
        if self.cold_start_s < 0 or self.resize_s < 0 or self.slo_ms <= 0:
            raise PlanInputError("cold_start_s and resize_s must be >= 0 and slo_ms > 0")


@dataclass(frozen=True)
class StageView:
    """What a controller sees of one stage: the requested replicas and what the system shows."""

    groups: tuple[Group, ...]
    batch: int
    ready_replicas: int
    queue_len: int
    utilisation: float
    """Busy core-seconds / ready core-seconds since the previous decision (NaN if none ready)."""


@dataclass(frozen=True)
class Observation:
    """The state handed to a controller at a decision time."""

    now_s: float
    window_s: float
    arrivals: int
    """External arrivals in (now_s - window_s, now_s]."""
    stages: tuple[StageView, ...]

    @property
    def arrival_rate_rps(self) -> float:
        return self.arrivals / self.window_s if self.window_s > 0 else 0.0


class Controller(Protocol):
    """Decides allocations during the simulation (see `themis.planner.control`)."""

    policy: str

    def first_time_s(self) -> float: ...

    def decide(self, obs: Observation) -> tuple[list[StageAllocation | None], float]:
        """Targets per stage (None = keep) and the time of the next decision (inf = none)."""
        ...


@dataclass
class SimulationResult:
    """Per-request outcome of a simulation and its SPEC summary."""

    policy: str
    slo_ms: float
    trace_start: str | None
    arrivals_s: np.ndarray
    latencies_ms: np.ndarray
    core_seconds: float
    scale_actions: int
    price_per_core_hour: float = 0.0
    timeline: list[dict[str, Any]] = field(default_factory=list)
    """One row per applied decision and stage: t_s, stage, replicas, total_cores, batch."""

    @property
    def requests(self) -> int:
        return int(self.latencies_ms.size)

    @property
    def dropped(self) -> int:
        return int(np.isinf(self.latencies_ms).sum())

    @property
    def violations(self) -> int:
        return int((self.latencies_ms > self.slo_ms).sum())

    @property
    def violation_rate(self) -> float:
        return self.violations / self.requests if self.requests else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.requests:
            return float("nan")
        return float(np.percentile(self.latencies_ms, q, method="inverted_cdf"))

    @property
    def cost(self) -> float:
        return self.core_seconds / 3600.0 * self.price_per_core_hour

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "simulation",
            "policy": self.policy,
            "trace_start": self.trace_start,
            "slo_ms": self.slo_ms,
            **self.summary(),
            "timeline": self.timeline,
        }

    def summary(self) -> dict[str, Any]:
        """The SPEC metrics, as plain JSON values (an infinite percentile becomes null)."""
        return {
            "requests": self.requests,
            "violations": self.violations,
            "violation_rate": self.violation_rate,
            "dropped": self.dropped,
            "p50_ms": _finite_or_none(self.percentile_ms(50)),
            "p95_ms": _finite_or_none(self.percentile_ms(95)),
            "p99_ms": _finite_or_none(self.percentile_ms(99)),
            "core_seconds": self.core_seconds,
            "core_hours": self.core_seconds / 3600.0,
            "cost": self.cost,
            "scale_actions": self.scale_actions,
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per request: arrival, latency and whether it violated the SLO."""
        return pd.DataFrame(
            {
                "arrival_s": self.arrivals_s,
                "latency_ms": self.latencies_ms,
                "violated": self.latencies_ms > self.slo_ms,
                "slo_ms": self.slo_ms,
            }
        )


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


# ----------------------------------------------------------------------------- compiled core


@numba.njit(cache=True)
def _push(ht, hi, g, t, kind, slot, token):
    n = g[_G_HEAP_N]
    seq = g[_G_SEQ]
    g[_G_SEQ] = seq + 1
    i = n
    g[_G_HEAP_N] = n + 1
    while i > 0:
        parent = (i - 1) >> 1
        if ht[parent] < t or (ht[parent] == t and hi[parent, 0] < seq):
            break
        ht[i] = ht[parent]
        hi[i, :] = hi[parent, :]
        i = parent
    ht[i] = t
    hi[i, 0] = seq
    hi[i, 1] = kind
    hi[i, 2] = slot
    hi[i, 3] = token


@numba.njit(cache=True)
def _pop(ht, hi, g):
    """Remove the heap top (its fields must have been read before)."""
    n = g[_G_HEAP_N] - 1
    g[_G_HEAP_N] = n
    if n == 0:
        return
    t = ht[n]
    seq = hi[n, 0]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and (ht[child + 1] < ht[child] or (ht[child + 1] == ht[child] and hi[child + 1, 0] < hi[child, 0])):
            child += 1
        if ht[child] > t or (ht[child] == t and hi[child, 0] > seq):
            break
        ht[i] = ht[child]
        hi[i, :] = hi[child, :]
        i = child
    ht[i] = t
    hi[i, :] = hi[n, :]


@numba.njit(cache=True)
def _charge(rf, ri, sf, cores_values, slot, t, horizon):
    """Add the replica's core-seconds up to t (clamped to the horizon)."""
    since = rf[slot, _F_COST_SINCE]
    until = min(t, horizon)
    if until > since:
        sf[ri[slot, _I_STAGE], _S_CORE_S] += cores_values[ri[slot, _I_COST_CIDX]] * (until - since)
    rf[slot, _F_COST_SINCE] = max(since, until)


@numba.njit(cache=True)
def _ready_change(sf, si, s, t, delta_cores):
    sf[s, _S_READY_CORE_S] += si[s, _SI_READY_CORES] * (t - sf[s, _S_READY_LAST])
    sf[s, _S_READY_LAST] = t
    si[s, _SI_READY_CORES] += delta_cores


@numba.njit(cache=True)
def _drop_live(si, live, s, slot):
    n = si[s, _SI_LIVE_N]
    for i in range(n):
        if live[s, i] == slot:
            live[s, i] = live[s, n - 1]
            si[s, _SI_LIVE_N] = n - 1
            return


@numba.njit(cache=True)
def _service_s(s, k, cidx, first_req, n_req, service, quant, knots, uniforms, sampled):
    if not sampled:
        return service[s, k, cidx] / 1000.0
    u = uniforms[s * n_req + first_req]
    for m in range(1, knots.size):
        if u <= knots[m]:
            lo = quant[s, k, cidx, m - 1]
            hi = quant[s, k, cidx, m]
            return (lo + (hi - lo) * (u - knots[m - 1]) / (knots[m] - knots[m - 1])) / 1000.0
    return quant[s, k, cidx, knots.size - 1] / 1000.0


@numba.njit(cache=True)
def _dispatch(s, t, queues, si, rf, ri, live, ht, hi, g, cores_values, service, quant, knots, uniforms, sampled, n_req):
    """Give queued requests of stage s to idle ready replicas, longest idle first."""
    while si[s, _SI_TAIL] > si[s, _SI_HEAD]:
        best = -1
        best_seq = 0
        for i in range(si[s, _SI_LIVE_N]):
            slot = live[s, i]
            if ri[slot, _I_STATE] == _IDLE and (best < 0 or ri[slot, _I_IDLE_SEQ] < best_seq):
                best = slot
                best_seq = ri[slot, _I_IDLE_SEQ]
        if best < 0:
            return
        head = si[s, _SI_HEAD]
        k = min(si[s, _SI_TAIL] - head, si[s, _SI_BATCH])
        svc = _service_s(s, k, ri[best, _I_CIDX], queues[s, head], n_req, service, quant, knots, uniforms, sampled)
        ri[best, _I_STATE] = _BUSY
        ri[best, _I_QSTART] = head
        ri[best, _I_K] = k
        rf[best, _F_BUSY_START] = t
        si[s, _SI_HEAD] = head + k
        _push(ht, hi, g, t + svc, _EV_DONE, best, 0)


@numba.njit(cache=True)
def _advance(
    t_until, horizon, arrivals, queues, done, si, sf, rf, ri, live, ht, hi, g,
    cores_values, service, quant, knots, uniforms, sampled,
):
    """Process every event strictly before t_until (replica events before arrivals on ties)."""
    n_req = arrivals.size
    n_stages = si.shape[0]
    while True:
        th = ht[0] if g[_G_HEAP_N] > 0 else np.inf
        ptr = g[_G_PTR]
        ta = arrivals[ptr] if ptr < n_req else np.inf
        if th <= ta:
            t = th
            if t >= t_until or t == np.inf:
                return
            kind = hi[0, 1]
            slot = hi[0, 2]
            token = hi[0, 3]
            _pop(ht, hi, g)
            s = ri[slot, _I_STAGE]
            if kind == _EV_DONE:
                cores = cores_values[ri[slot, _I_CIDX]]
                sf[s, _S_BUSY_CORE_S] += cores * (t - rf[slot, _F_BUSY_START])
                q0 = ri[slot, _I_QSTART]
                for j in range(q0, q0 + ri[slot, _I_K]):
                    req = queues[s, j]
                    if s + 1 < n_stages:
                        queues[s + 1, si[s + 1, _SI_TAIL]] = req
                        si[s + 1, _SI_TAIL] += 1
                    else:
                        done[req] = t
                if ri[slot, _I_REMOVING] == 1:
                    _charge(rf, ri, sf, cores_values, slot, t, horizon)
                    ri[slot, _I_STATE] = _GONE
                else:
                    ri[slot, _I_STATE] = _IDLE
                    ri[slot, _I_IDLE_SEQ] = g[_G_IDLE_SEQ]
                    g[_G_IDLE_SEQ] += 1
                    _dispatch(s, t, queues, si, rf, ri, live, ht, hi, g, cores_values, service, quant, knots, uniforms, sampled, n_req)
                if s + 1 < n_stages:
                    _dispatch(s + 1, t, queues, si, rf, ri, live, ht, hi, g, cores_values, service, quant, knots, uniforms, sampled, n_req)
            elif kind == _EV_READY:
                if ri[slot, _I_STATE] == _BOOTING:
                    ri[slot, _I_STATE] = _IDLE
                    ri[slot, _I_IDLE_SEQ] = g[_G_IDLE_SEQ]
                    g[_G_IDLE_SEQ] += 1
                    _ready_change(sf, si, s, t, cores_values[ri[slot, _I_CIDX]])
                    _dispatch(s, t, queues, si, rf, ri, live, ht, hi, g, cores_values, service, quant, knots, uniforms, sampled, n_req)
            else:  # _EV_RESIZE
                if token == ri[slot, _I_TOKEN] and ri[slot, _I_STATE] != _GONE and ri[slot, _I_REMOVING] == 0:
                    _charge(rf, ri, sf, cores_values, slot, t, horizon)
                    old = ri[slot, _I_CIDX]
                    new = ri[slot, _I_PENDING]
                    ri[slot, _I_CIDX] = new
                    ri[slot, _I_COST_CIDX] = new
                    if ri[slot, _I_STATE] != _BOOTING:
                        _ready_change(sf, si, s, t, cores_values[new] - cores_values[old])
        else:
            t = ta
            if t >= t_until:
                return
            queues[0, si[0, _SI_TAIL]] = ptr
            si[0, _SI_TAIL] += 1
            g[_G_PTR] = ptr + 1
            _dispatch(0, t, queues, si, rf, ri, live, ht, hi, g, cores_values, service, quant, knots, uniforms, sampled, n_req)


@numba.njit(cache=True)
def _apply(t, acts, cold_start_s, resize_s, horizon, si, sf, rf, ri, live, ht, hi, g, cores_values):
    """Apply controller actions at time t: rows (kind, stage or slot, cores index)."""
    for a in range(acts.shape[0]):
        kind = acts[a, 0]
        if kind == ACT_ADD or kind == ACT_ADD_READY:
            s = acts[a, 1]
            slot = g[_G_NSLOTS]
            g[_G_NSLOTS] = slot + 1
            ri[slot, _I_STAGE] = s
            ri[slot, _I_CIDX] = acts[a, 2]
            ri[slot, _I_COST_CIDX] = acts[a, 2]
            ri[slot, _I_REMOVING] = 0
            ri[slot, _I_TOKEN] = 0
            rf[slot, _F_COST_SINCE] = min(t, horizon)
            live[s, si[s, _SI_LIVE_N]] = slot
            si[s, _SI_LIVE_N] += 1
            if kind == ACT_ADD_READY or cold_start_s == 0.0:
                ri[slot, _I_STATE] = _IDLE
                ri[slot, _I_IDLE_SEQ] = g[_G_IDLE_SEQ]
                g[_G_IDLE_SEQ] += 1
                rf[slot, _F_READY_AT] = t
                _ready_change(sf, si, s, t, cores_values[acts[a, 2]])
            else:
                ri[slot, _I_STATE] = _BOOTING
                rf[slot, _F_READY_AT] = t + cold_start_s
                _push(ht, hi, g, t + cold_start_s, _EV_READY, slot, 0)
        elif kind == ACT_REMOVE:
            slot = acts[a, 1]
            s = ri[slot, _I_STAGE]
            _drop_live(si, live, s, slot)
            ri[slot, _I_REMOVING] = 1
            state = ri[slot, _I_STATE]
            if state != _BOOTING:
                _ready_change(sf, si, s, t, -cores_values[ri[slot, _I_CIDX]])
            if state != _BUSY:
                _charge(rf, ri, sf, cores_values, slot, t, horizon)
                ri[slot, _I_STATE] = _GONE
        else:  # ACT_RESIZE
            slot = acts[a, 1]
            ri[slot, _I_TOKEN] += 1
            ri[slot, _I_PENDING] = acts[a, 2]
            _push(ht, hi, g, t + resize_s, _EV_RESIZE, slot, ri[slot, _I_TOKEN])


@numba.njit(cache=True)
def _busy_core_s(t, s, sf, rf, ri, g, cores_values):
    """Busy core-seconds of stage s up to t, counting batches still running."""
    total = sf[s, _S_BUSY_CORE_S]
    for slot in range(g[_G_NSLOTS]):
        if ri[slot, _I_STAGE] == s and ri[slot, _I_STATE] == _BUSY:
            total += cores_values[ri[slot, _I_CIDX]] * (t - rf[slot, _F_BUSY_START])
    return total


# ----------------------------------------------------------------------------- Python driver


class _State:
    """The arrays the compiled loop works on, and the per-stage targets controllers asked for."""

    def __init__(self, arrivals_s: np.ndarray, tables: ServiceTables, config: SimConfig, horizon_s: float) -> None:
        n, n_stages = arrivals_s.size, tables.stages
        self.arrivals = np.ascontiguousarray(arrivals_s, dtype=np.float64)
        self.tables = tables
        self.config = config
        self.horizon_s = horizon_s
        self.queues = np.zeros((n_stages, max(n, 1)), dtype=np.int64)
        self.done = np.full(n, np.inf)
        self.si = np.zeros((n_stages, 5), dtype=np.int64)
        self.si[:, _SI_BATCH] = 1
        self.sf = np.zeros((n_stages, 4))
        self.g = np.zeros(5, dtype=np.int64)
        self.cores_values = np.asarray(tables.cores_options, dtype=np.int64)
        self.service = np.ascontiguousarray(tables.service_ms, dtype=np.float64)
        sampled = config.service == "sampled"
        if sampled and tables.quantile_ms is None:
            raise PlanInputError("service='sampled' needs percentile tables (quantile_ms)", option="--service")
        self.sampled = sampled
        self.quant = tables.quantile_ms if sampled else np.zeros((1, 1, 1, 1))
        self.knots = QUANTILE_KNOTS.copy()
        rng = np.random.default_rng(config.seed)
        self.uniforms = rng.random(n_stages * n) if sampled else np.zeros(1)
        self._alloc(16)
        self.batch = [1] * n_stages
        self.last_decision_s = 0.0
        self.last_ptr = 0
        self.last_busy = np.zeros(n_stages)
        self.last_ready = np.zeros(n_stages)

    def _alloc(self, capacity: int) -> None:
        """(Re)size the replica tables to `capacity` slots, keeping what is there."""
        n_stages = self.tables.stages
        rf, ri = np.zeros((capacity, 3)), np.zeros((capacity, 10), dtype=np.int64)
        live = np.zeros((n_stages, capacity), dtype=np.int64)
        if hasattr(self, "ri"):
            used = self.g[_G_NSLOTS]
            rf[:used], ri[:used] = self.rf[:used], self.ri[:used]
            live[:, : self.live.shape[1]] = self.live
        else:
            self.ht, self.hi = np.zeros(0), np.zeros((0, 4), dtype=np.int64)
        self.rf, self.ri, self.live = rf, ri, live

    def _reserve_heap(self, size: int) -> None:
        """Keep room for every event that can be pending: one completion and one readiness
        per replica, plus resizes (the compiled loop does not bounds-check)."""
        if size <= self.ht.size:
            return
        size = max(size, 2 * self.ht.size)
        n_heap = self.g[_G_HEAP_N]
        ht, hi = np.zeros(size), np.zeros((size, 4), dtype=np.int64)
        ht[:n_heap], hi[:n_heap] = self.ht[:n_heap], self.hi[:n_heap]
        self.ht, self.hi = ht, hi

    def advance(self, t_until: float) -> None:
        _advance(
            t_until, self.horizon_s, self.arrivals, self.queues, self.done, self.si, self.sf, self.rf, self.ri,
            self.live, self.ht, self.hi, self.g, self.cores_values, self.service, self.quant, self.knots,
            self.uniforms, self.sampled,
        )

    def live_slots(self, s: int) -> list[int]:
        return [int(x) for x in self.live[s, : self.si[s, _SI_LIVE_N]]]

    def target_cidx(self, slot: int) -> int:
        """Cores index the replica has or will have once its pending resize lands."""
        pending = self.ri[slot, _I_TOKEN] > 0 and self.ri[slot, _I_PENDING] != self.ri[slot, _I_CIDX]
        return int(self.ri[slot, _I_PENDING] if pending else self.ri[slot, _I_CIDX])

    def observe(self, now_s: float) -> Observation:
        views = []
        ptr = int(self.g[_G_PTR])
        for s in range(self.tables.stages):
            slots = self.live_slots(s)
            counts: dict[int, int] = {}
            for slot in slots:
                cores = self.tables.cores_options[self.target_cidx(slot)]
                counts[cores] = counts.get(cores, 0) + 1
            busy = _busy_core_s(now_s, s, self.sf, self.rf, self.ri, self.g, self.cores_values)
            ready = self.sf[s, _S_READY_CORE_S] + self.si[s, _SI_READY_CORES] * (now_s - self.sf[s, _S_READY_LAST])
            d_ready = ready - self.last_ready[s]
            util = (busy - self.last_busy[s]) / d_ready if d_ready > 0 else float("nan")
            self.last_busy[s], self.last_ready[s] = busy, ready
            ready_n = sum(1 for slot in slots if self.ri[slot, _I_STATE] in (_IDLE, _BUSY))
            views.append(
                StageView(
                    groups=tuple(Group(n, c) for c, n in sorted(counts.items())),
                    batch=self.batch[s],
                    ready_replicas=ready_n,
                    queue_len=int(self.si[s, _SI_TAIL] - self.si[s, _SI_HEAD]),
                    utilisation=float(util),
                )
            )
        obs = Observation(now_s, now_s - self.last_decision_s, ptr - self.last_ptr, tuple(views))
        self.last_decision_s, self.last_ptr = now_s, ptr
        return obs

    def apply(self, now_s: float, targets: list[StageAllocation | None], *, opening: bool) -> bool:
        """Turn target allocations into replica actions; True if anything changed per stage."""
        rows: list[tuple[int, int, int]] = []
        changed = []
        for s, target in enumerate(targets):
            if target is None:
                changed.append(False)
                continue
            batch_changed = target.batch != self.batch[s]
            if not 1 <= target.batch <= self.tables.max_batch:
                raise PlanInputError(f"batch {target.batch} outside the service table (1..{self.tables.max_batch})")
            self.batch[s] = int(target.batch)
            self.si[s, _SI_BATCH] = int(target.batch)
            before = len(rows)
            rows += self._match(s, target, opening=opening)
            changed.append(batch_changed or len(rows) > before)
        needed = int(self.g[_G_NSLOTS]) + sum(r[0] in (ACT_ADD, ACT_ADD_READY) for r in rows)
        if needed > self.ri.shape[0]:
            self._alloc(max(2 * self.ri.shape[0], needed))
        self._reserve_heap(int(self.g[_G_HEAP_N]) + len(rows) + 2 * needed + 16)
        acts = np.array(rows, dtype=np.int64).reshape(-1, 3)
        _apply(
            now_s, acts, self.config.cold_start_s, self.config.resize_s, self.horizon_s,
            self.si, self.sf, self.rf, self.ri, self.live, self.ht, self.hi, self.g, self.cores_values,
        )
        for s in range(self.tables.stages):  # new capacity takes queued work at once
            self._dispatch(s, now_s)
        return changed

    def _dispatch(self, s: int, now_s: float) -> None:
        _dispatch(
            s, now_s, self.queues, self.si, self.rf, self.ri, self.live, self.ht, self.hi, self.g,
            self.cores_values, self.service, self.quant, self.knots, self.uniforms, self.sampled, self.arrivals.size,
        )

    def _match(self, s: int, target: StageAllocation, *, opening: bool) -> list[tuple[int, int, int]]:
        """Actions turning stage s's live replicas into `target`.

        Growing (more replicas wanted than live): the live replicas, ready ones first and
        largest first, take the largest wanted sizes (resized in place where they differ),
        so capacity arrives now; new replicas (cold start) take the rest. This is how a
        themis surge step reads: the running replicas go fast, the new ones boot at the
        efficient size. Otherwise: replicas already at a wanted size stay (ready first),
        the other wanted sizes are resized onto the remaining replicas in the same order,
        and what is left over is removed (booting first, then idle, then busy).
        """
        wanted = sorted((self.tables.cores_index(g.cores) for g in target.groups for _ in range(g.replicas)), reverse=True)
        cidx = {slot: self.target_cidx(slot) for slot in self.live_slots(s)}
        order = sorted(cidx, key=lambda slot: (int(self.ri[slot, _I_STATE] == _BOOTING), -cidx[slot], slot))
        rows: list[tuple[int, int, int]] = []
        if len(wanted) > len(order):
            pairs = list(zip(order, wanted))
            added = wanted[len(order):]
            extra: list[int] = []
        else:
            pairs, rest, unmatched = [], list(order), []
            for c in wanted:
                hit = next((slot for slot in rest if cidx[slot] == c), None)
                if hit is None:
                    unmatched.append(c)
                else:
                    rest.remove(hit)
                    pairs.append((hit, c))
            pairs += list(zip(rest, unmatched))
            extra, added = rest[len(unmatched):], []
        rows += [(ACT_RESIZE, slot, c) for slot, c in pairs if cidx[slot] != c]
        kind = ACT_ADD_READY if opening else ACT_ADD
        rows += [(kind, s, c) for c in added]
        removal_rank = {_BOOTING: 0, _IDLE: 1, _BUSY: 2}
        extra = sorted(extra, key=lambda slot: (removal_rank[int(self.ri[slot, _I_STATE])], slot))
        rows += [(ACT_REMOVE, slot, 0) for slot in extra]
        return rows


def simulate_tables(
    arrivals_s: np.ndarray,
    controller: Controller,
    tables: ServiceTables,
    config: SimConfig,
    *,
    trace_start: str | None = None,
    price_per_core_hour: float = 0.0,
) -> SimulationResult:
    """Simulate `arrivals_s` under `controller` with service times from `tables`."""
    arrivals_s = np.asarray(arrivals_s, dtype=np.float64)
    if arrivals_s.size and np.any(np.diff(arrivals_s) < 0):
        raise PlanInputError("arrival times must be sorted")
    horizon = config.horizon_s
    if horizon is None:
        horizon = max(float(arrivals_s[-1]) if arrivals_s.size else 0.0, float(getattr(controller, "horizon_s", 0.0)))
    state = _State(arrivals_s, tables, config, horizon)
    timeline: list[dict[str, Any]] = []
    scale_actions = 0
    t = float(controller.first_time_s())
    opening = True
    while np.isfinite(t):
        state.advance(t)
        targets, t_next = controller.decide(state.observe(t))
        if len(targets) != tables.stages:
            raise PlanInputError(f"controller gave {len(targets)} stage targets for {tables.stages} stages")
        changed = state.apply(t, targets, opening=opening)
        scale_actions += 0 if opening else sum(changed)
        for s, target in enumerate(targets):
            if target is not None and (opening or changed[s]):
                timeline.append(
                    {"t_s": t, "stage": s, "replicas": target.replicas, "total_cores": target.total_cores, "batch": target.batch}
                )
        opening = False
        if t_next <= t:
            raise PlanInputError(f"controller asked for a decision at {t_next} s, not after {t} s")
        t = float(t_next)
    state.advance(np.inf)
    for slot in range(int(state.g[_G_NSLOTS])):
        if state.ri[slot, _I_STATE] != _GONE:
            _charge(state.rf, state.ri, state.sf, state.cores_values, slot, horizon, horizon)
    latencies_ms = (state.done - arrivals_s) * 1000.0
    return SimulationResult(
        policy=controller.policy,
        slo_ms=config.slo_ms,
        trace_start=trace_start,
        arrivals_s=arrivals_s,
        latencies_ms=latencies_ms,
        core_seconds=float(state.sf[:, _S_CORE_S].sum()),
        scale_actions=scale_actions,
        price_per_core_hour=price_per_core_hour,
        timeline=timeline,
    )


def simulate(
    arrivals_s: np.ndarray,
    plan: Any,
    models: Any,
    config: SimConfig,
    *,
    trace_start: str | None = None,
    cores_options: tuple[int, ...] = (1, 2, 4, 8, 16),
) -> SimulationResult:
    """Simulate a plan (a `Schedule`, replayed; themis plans also react to surges) or any
    `Controller` over `arrivals_s`, with service times from the fitted latency models.

    `models` maps model name -> `LatencyModel` (stages are looked up by `Stage.model`) or
    is a list with one model per stage. A controller that is not built from a schedule
    must carry its `stages`.
    """
    from themis.planner.control import controller_for  # control builds on this module

    controller = controller_for(plan)
    stages = controller.stages
    if isinstance(models, dict):
        missing = [s.model for s in stages if s.model not in models]
        if missing:
            raise PlanInputError(f"no profile for model {missing[0]!r} (have: {', '.join(sorted(models))})", option="--profile")
        stage_models = [models[s.model] for s in stages]
    else:
        stage_models = list(models)
    wanted_cores, max_batch = controller.resources()
    tables = ServiceTables.from_models(
        stage_models, max_batch, tuple(sorted(set(cores_options) | wanted_cores)), sampled=config.service == "sampled"
    )
    schedule = getattr(controller, "schedule", None)
    price = schedule.price_per_core_hour if schedule is not None else getattr(controller, "price_per_core_hour", 0.0)
    if trace_start is None and schedule is not None:
        trace_start = schedule.trace_start
    return simulate_tables(arrivals_s, controller, tables, config, trace_start=trace_start, price_per_core_hour=price)
