"""Iteration-level simulation of continuous batching on LLM replicas, compiled with numba.

The rules are those of `themis.planner.llm.service` (router, vLLM V1-style scheduler,
KV-cache blocks, preemption, ties); `tests/support/simpy_llm_reference.py` is the plain
SimPy model of the same rules and the correctness reference.

Replicas come and go. Each is a *slot* of one replica type (an iteration-time model and its
server limits: `ReplicaType`), asked for at some time, ready at another (a cold start
later) and possibly removed later still. The router sends requests only to ready replicas
that are not being removed; when there is none, requests wait at the router (FCFS) and the
first replica to become ready takes them all at once (its first batch is built from all of
them). A removed replica takes no new requests, finishes every request already routed to
it (waiting or running) and is gone when it has none left; one removed while booting never
serves. At equal times: iteration ends (lowest slot first), then replica events (a slot
becoming ready or being removed; lowest slot first), then arrivals.

`LlmFleet` is the steppable form: `run(until_s)` processes every event before `until_s`,
so a controller (the queue-metric HPA) can look at the replicas and add or remove slots
between runs; `simulate_llm` and `simulate_fleet` are the one-shot forms.

The compiled loop works on named state: `_Requests` (one entry per request), `_Replicas`
(one row per slot, columns named by the `_R_*` constants, and each slot's running list),
`_Types` (per replica type: iteration-time coefficients and scheduler limits) and `_Limits`
(what every type shares), all numba-friendly named tuples of arrays and numbers. Each
replica's waiting queue, and the router's, is a linked list threaded through
`_Requests.next`, so admission, preemption (back to the head) and arrivals (to the tail)
cost O(1). The next event is the earliest iteration end or replica event (a scan over
slots, which are few) or the next arrival.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba
import numpy as np
import pandas as pd

from themis.common import SCHEMA_VERSION
from themis.planner.errors import PlanInputError
from themis.planner.llm.iteration import IterationTimeModel
from themis.planner.llm.service import LlmRequests, LlmSlo, ServerConfig

# columns of the int replica table
(_R_RUNNING, _R_HEAD, _R_TAIL, _R_OUTSTANDING, _R_KV_BLOCKS, _R_SCHEDULED, _R_BUSY, _R_ITERATIONS, _R_TYPE,
 _R_STATE) = range(10)
_R_COLUMNS = 10
# columns of the float replica table
_RF_END_S, _RF_BUSY_S, _RF_READY_S, _RF_REMOVE_S, _RF_GONE_S = range(5)
_RF_COLUMNS = 5
# replica states
_BOOTING, _READY, _DRAINING, _GONE = range(4)
# the global ints: next arrival, the router's waiting queue, slots in use
_G_NEXT_ARRIVAL, _G_ROUTER_HEAD, _G_ROUTER_TAIL, _G_ROUTER_LEN, _G_SLOTS = range(5)


class _Requests(NamedTuple):
    arrival_s: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    computed: np.ndarray
    """Tokens in the KV cache."""
    generated: np.ndarray
    scheduled: np.ndarray
    """Tokens scheduled in the running iteration."""
    next: np.ndarray
    """Next request in the same waiting queue (-1: last)."""
    replica: np.ndarray
    """-1: rejected, still at the router, or not yet arrived."""
    first_s: np.ndarray
    last_s: np.ndarray
    preemptions: np.ndarray


class _Replicas(NamedTuple):
    ints: np.ndarray
    floats: np.ndarray
    running: np.ndarray
    """running[r, :ints[r, _R_RUNNING]]: slot r's running requests in admission order."""


class _Types(NamedTuple):
    coef_ms: np.ndarray
    """[type, 5]: the iteration-time coefficients."""
    kv_blocks: np.ndarray
    max_num_seqs: np.ndarray
    max_num_batched_tokens: np.ndarray


class _Limits(NamedTuple):
    block_tokens: int
    chunked_prefill: bool
    max_model_len: int


# ----------------------------------------------------------------------------- compiled core

_compiled = numba.njit(cache=True, _nrt=False)
"""The compiled loop allocates nothing, so it runs without numba's reference counting:
with it, every call into a helper increfs and decrefs each array of the named tuples,
which made an iteration 6x slower (measured: ~300 ns against ~50 ns)."""


@_compiled
def _blocks(tokens, block_tokens):
    return (tokens + block_tokens - 1) // block_tokens


@_compiled
def _push_tail(req, rep, r, q):
    req.next[q] = -1
    tail = rep.ints[r, _R_TAIL]
    if tail < 0:
        rep.ints[r, _R_HEAD] = q
    else:
        req.next[tail] = q
    rep.ints[r, _R_TAIL] = q


@_compiled
def _push_head(req, rep, r, q):
    req.next[q] = rep.ints[r, _R_HEAD]
    rep.ints[r, _R_HEAD] = q
    if rep.ints[r, _R_TAIL] < 0:
        rep.ints[r, _R_TAIL] = q


@_compiled
def _pop_head(req, rep, r):
    q = rep.ints[r, _R_HEAD]
    rep.ints[r, _R_HEAD] = req.next[q]
    if req.next[q] < 0:
        rep.ints[r, _R_TAIL] = -1
    return q


@_compiled
def _preempt_last(req, rep, r, lim):
    """Preempt slot r's most recently admitted running request; returns it."""
    n = rep.ints[r, _R_RUNNING] - 1
    q = rep.running[r, n]
    rep.ints[r, _R_RUNNING] = n
    rep.ints[r, _R_KV_BLOCKS] -= _blocks(req.computed[q], lim.block_tokens)
    req.computed[q] = 0
    req.preemptions[q] += 1
    _push_head(req, rep, r, q)
    return q


@_compiled
def _schedule_running(req, rep, r, typ, lim):
    """Step 1: running requests in order, preempting the newest while their tokens do not fit.
    Returns (requests scheduled, token budget left, whether anyone was preempted)."""
    k = rep.ints[r, _R_TYPE]
    budget = typ.max_num_batched_tokens[k]
    kv_blocks = typ.kv_blocks[k]
    preempted = False
    i = 0
    while i < rep.ints[r, _R_RUNNING] and budget > 0:
        q = rep.running[r, i]
        n = min(req.prompt[q] + req.generated[q] - req.computed[q], budget)
        need = _blocks(req.computed[q] + n, lim.block_tokens) - _blocks(req.computed[q], lim.block_tokens)
        while need > kv_blocks - rep.ints[r, _R_KV_BLOCKS]:
            preempted = True
            if _preempt_last(req, rep, r, lim) == q:
                return i, budget, preempted
        rep.ints[r, _R_KV_BLOCKS] += need
        budget -= n
        req.scheduled[q] = n
        i += 1
    return i, budget, preempted


@_compiled
def _admit_waiting(req, rep, r, typ, lim, budget):
    """Step 2: waiting requests from the head (FCFS) while budget, sequences and KV blocks allow;
    returns how many were admitted (appended to the running list)."""
    k = rep.ints[r, _R_TYPE]
    admitted = 0
    while rep.ints[r, _R_HEAD] >= 0 and budget > 0 and rep.ints[r, _R_RUNNING] < typ.max_num_seqs[k]:
        q = rep.ints[r, _R_HEAD]
        n = req.prompt[q] + req.generated[q]  # nothing cached: the prompt, plus tokens made before a preemption
        if n > budget:
            if not lim.chunked_prefill:
                break
            n = budget
        need = _blocks(n, lim.block_tokens)
        if need > typ.kv_blocks[k] - rep.ints[r, _R_KV_BLOCKS]:
            break
        _pop_head(req, rep, r)
        rep.running[r, rep.ints[r, _R_RUNNING]] = q
        rep.ints[r, _R_RUNNING] += 1
        rep.ints[r, _R_KV_BLOCKS] += need
        budget -= n
        req.scheduled[q] = n
        admitted += 1
    return admitted


@_compiled
def _iteration_ms(req, rep, r, scheduled, coef):
    """T of the batch running[r, :scheduled] (decodes and prefill chunks told apart as in `service`)."""
    prefill_tokens = 0.0
    decode_seqs = 0.0
    decode_context = 0.0
    pairs = 0.0
    for i in range(scheduled):
        q = rep.running[r, i]
        n = req.scheduled[q]
        s = req.computed[q]
        if req.generated[q] >= 1 and s == req.prompt[q] + req.generated[q] - 1:
            decode_seqs += 1.0
            decode_context += s + 1.0
        else:
            prefill_tokens += n
            pairs += n * s + n * (n + 1.0) / 2.0
    return coef[0] + coef[1] * prefill_tokens + coef[2] * decode_seqs + coef[3] * decode_context + coef[4] * pairs


@_compiled
def _start_iteration(t, r, req, rep, typ, lim):
    """Build slot r's next batch and start it at t; False if there is no work.

    The batch is always a prefix of the running list: running requests scheduled in
    order, then (only when step 1 scheduled them all) the newly admitted ones at the end.
    """
    scheduled, budget, preempted = _schedule_running(req, rep, r, typ, lim)
    if not preempted and scheduled == rep.ints[r, _R_RUNNING]:
        scheduled += _admit_waiting(req, rep, r, typ, lim, budget)
    if scheduled == 0:
        return False
    duration_s = _iteration_ms(req, rep, r, scheduled, typ.coef_ms[rep.ints[r, _R_TYPE]]) / 1000.0
    rep.ints[r, _R_SCHEDULED] = scheduled
    rep.ints[r, _R_BUSY] = 1
    rep.ints[r, _R_ITERATIONS] += 1
    rep.floats[r, _RF_END_S] = t + duration_s
    rep.floats[r, _RF_BUSY_S] += duration_s
    return True


@_compiled
def _finish_iteration(t, r, req, rep, lim):
    """Apply the ended iteration: emit tokens, retire finished requests, free their blocks."""
    kept = 0
    n_running = rep.ints[r, _R_RUNNING]
    for i in range(n_running):
        q = rep.running[r, i]
        done = False
        if i < rep.ints[r, _R_SCHEDULED]:
            req.computed[q] += req.scheduled[q]
            req.scheduled[q] = 0
            if req.computed[q] == req.prompt[q] + req.generated[q]:
                req.generated[q] += 1
                if req.generated[q] == 1:
                    req.first_s[q] = t
                req.last_s[q] = t
                done = req.generated[q] == req.output[q]
        if done:
            rep.ints[r, _R_KV_BLOCKS] -= _blocks(req.computed[q], lim.block_tokens)
            rep.ints[r, _R_OUTSTANDING] -= 1
        else:
            rep.running[r, kept] = q
            kept += 1
    rep.ints[r, _R_RUNNING] = kept
    rep.ints[r, _R_SCHEDULED] = 0
    rep.ints[r, _R_BUSY] = 0


@_compiled
def _retire_if_drained(t, r, rep):
    """A slot being removed is gone once it is idle with nothing routed to it."""
    if rep.ints[r, _R_STATE] == _DRAINING and rep.ints[r, _R_BUSY] == 0 and rep.ints[r, _R_OUTSTANDING] == 0:
        rep.ints[r, _R_STATE] = _GONE
        rep.floats[r, _RF_GONE_S] = t


@_compiled
def _route(rep, n_slots):
    """The ready slot with the fewest unfinished requests (lowest index on a tie); -1: none ready."""
    best = -1
    for r in range(n_slots):
        if rep.ints[r, _R_STATE] == _READY and (best < 0 or rep.ints[r, _R_OUTSTANDING] < rep.ints[best, _R_OUTSTANDING]):
            best = r
    return best


@_compiled
def _assign(t, q, r, req, rep, typ, lim):
    """Queue request q at slot r; an idle slot starts at once."""
    req.replica[q] = r
    rep.ints[r, _R_OUTSTANDING] += 1
    _push_tail(req, rep, r, q)
    if rep.ints[r, _R_BUSY] == 0:
        _start_iteration(t, r, req, rep, typ, lim)


@_compiled
def _replica_event(t, r, req, rep, typ, lim, g):
    """Slot r becomes ready (taking every request waiting at the router), or is removed."""
    state = rep.ints[r, _R_STATE]
    if state == _BOOTING and rep.floats[r, _RF_REMOVE_S] <= rep.floats[r, _RF_READY_S]:
        rep.ints[r, _R_STATE] = _GONE  # removed before it was ready: it never serves
        rep.floats[r, _RF_GONE_S] = t
    elif state == _BOOTING:
        rep.ints[r, _R_STATE] = _READY
        while g[_G_ROUTER_HEAD] >= 0:  # the backlog goes out first; the batch is built from all of it
            q = g[_G_ROUTER_HEAD]
            g[_G_ROUTER_HEAD] = req.next[q]
            g[_G_ROUTER_LEN] -= 1
            target = _route(rep, g[_G_SLOTS])
            req.replica[q] = target
            rep.ints[target, _R_OUTSTANDING] += 1
            _push_tail(req, rep, target, q)
        g[_G_ROUTER_TAIL] = -1
        for other in range(g[_G_SLOTS]):
            if rep.ints[other, _R_STATE] == _READY and rep.ints[other, _R_BUSY] == 0 and rep.ints[other, _R_HEAD] >= 0:
                _start_iteration(t, other, req, rep, typ, lim)
    else:  # removal of a ready slot
        rep.ints[r, _R_STATE] = _DRAINING
        _retire_if_drained(t, r, rep)


@_compiled
def _run(req, rep, typ, lim, g, until_s):
    """Process every arrival, iteration and replica event before `until_s` (inf: until all work is done)."""
    n_req = req.arrival_s.size
    while True:
        n_slots = g[_G_SLOTS]
        r_end = -1
        t_end = np.inf
        r_event = -1
        t_event = np.inf
        for r in range(n_slots):
            state = rep.ints[r, _R_STATE]
            if state == _GONE:
                continue
            if rep.ints[r, _R_BUSY] == 1 and rep.floats[r, _RF_END_S] < t_end:
                t_end = rep.floats[r, _RF_END_S]
                r_end = r
            if state == _BOOTING:
                t = min(rep.floats[r, _RF_READY_S], rep.floats[r, _RF_REMOVE_S])
            elif state == _READY:
                t = rep.floats[r, _RF_REMOVE_S]
            else:
                t = np.inf
            if t < t_event:
                t_event = t
                r_event = r
        ptr = g[_G_NEXT_ARRIVAL]
        t_arrival = req.arrival_s[ptr] if ptr < n_req else np.inf
        t_next = min(t_end, t_event, t_arrival)
        if t_next == np.inf or t_next >= until_s:
            return
        if r_end >= 0 and t_end == t_next:
            _finish_iteration(t_end, r_end, req, rep, lim)
            _start_iteration(t_end, r_end, req, rep, typ, lim)
            _retire_if_drained(t_end, r_end, rep)
        elif r_event >= 0 and t_event == t_next:
            _replica_event(t_event, r_event, req, rep, typ, lim, g)
        else:
            q = ptr
            g[_G_NEXT_ARRIVAL] = ptr + 1
            if req.prompt[q] + req.output[q] > lim.max_model_len:
                continue
            r = _route(rep, n_slots)
            if r >= 0:
                _assign(t_arrival, q, r, req, rep, typ, lim)
            else:  # nobody ready: wait at the router
                req.next[q] = -1
                if g[_G_ROUTER_TAIL] < 0:
                    g[_G_ROUTER_HEAD] = q
                else:
                    req.next[g[_G_ROUTER_TAIL]] = q
                g[_G_ROUTER_TAIL] = q
                g[_G_ROUTER_LEN] += 1


# ----------------------------------------------------------------------------- Python side


@dataclass(frozen=True)
class ReplicaType:
    """What one replica is: an iteration-time model (model on a device and core count) and
    its scheduler limits."""

    model: IterationTimeModel
    server: ServerConfig

    @property
    def label(self) -> str:
        """`cpu x2` or the GPU's name."""
        return self.model.label

    @property
    def device(self) -> str:
        """The pricing device: `cpu`, or the GPU's name (`themis.planner.model.cost`)."""
        return "cpu" if self.model.device_kind == "cpu" else self.model.device_name

    @property
    def units(self) -> int:
        """Units a replica holds: its cores on a CPU, one GPU on a GPU."""
        return int(self.model.cores) if self.model.device_kind == "cpu" else 1


@dataclass(frozen=True)
class Slot:
    """One replica's life: its type, when it was asked for, when it serves, when it is removed."""

    type: int
    requested_s: float
    ready_s: float
    remove_s: float = float("inf")


@dataclass(frozen=True)
class LlmSimResult:
    """Token times of every request (inf for one never served) and each replica's work.

    Per replica (slot): `iterations`, `busy_s`, and its `slot_type`, `requested_s`,
    `ready_s` and `gone_s` (inf: still there when the work ran out)."""

    requests: LlmRequests
    replica: np.ndarray
    first_token_s: np.ndarray
    last_token_s: np.ndarray
    preemptions: np.ndarray
    iterations: np.ndarray
    """Per replica."""
    busy_s: np.ndarray
    """Per replica: seconds spent in iterations."""
    slot_type: np.ndarray | None = None
    requested_s: np.ndarray | None = None
    ready_s: np.ndarray | None = None
    gone_s: np.ndarray | None = None

    @property
    def ttft_s(self) -> np.ndarray:
        return self.first_token_s - self.requests.arrival_s

    @property
    def tpot_s(self) -> np.ndarray:
        """(last - first token) / (output tokens - 1); NaN for one-token outputs, inf if rejected."""
        extra = self.requests.output_tokens - 1
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = (self.last_token_s - self.first_token_s) / extra
        tpot[extra == 0] = np.nan
        tpot[~np.isfinite(self.first_token_s)] = np.inf
        return tpot

    @property
    def rejected(self) -> int:
        """Requests never served: longer than max_model_len, or left waiting with no replica."""
        return int((self.replica < 0).sum())

    @property
    def served(self) -> np.ndarray:
        """Per request: True when it got its last token."""
        return np.isfinite(self.last_token_s)

    def tokens_served(self) -> int:
        """Prompt plus output tokens of the requests served to the end."""
        served = self.served
        return int(self.requests.prompt_tokens[served].sum() + self.requests.output_tokens[served].sum())

    def percentile_ms(self, metric: str, q: float) -> float:
        """The q-th percentile of `ttft` or `tpot` in ms (one-token outputs have no TPOT)."""
        values = {"ttft": self.ttft_s, "tpot": self.tpot_s}[metric] * 1000.0
        values = values[~np.isnan(values)]
        return float(np.percentile(values, q, method="inverted_cdf")) if values.size else float("nan")

    def meets(self, slo: LlmSlo) -> np.ndarray:
        """Per request: True when both its TTFT and its TPOT are within the SLO."""
        tpot_ms = self.tpot_s * 1000.0
        return (self.ttft_s * 1000.0 <= slo.ttft_ms) & (np.isnan(tpot_ms) | (tpot_ms <= slo.tpot_ms))

    def slo_met(self, slo: LlmSlo) -> bool:
        """Both percentiles within the SLO (the capacity search's test)."""
        ttft, tpot = self.percentile_ms("ttft", slo.percentile), self.percentile_ms("tpot", slo.percentile)
        return bool(ttft <= slo.ttft_ms and (np.isnan(tpot) or tpot <= slo.tpot_ms))

    def goodput_rps(self, slo: LlmSlo, duration_s: float | None = None) -> float:
        """Requests per second that meet every SLO, over `duration_s` (default: up to the last arrival)."""
        duration = self.requests.duration_s if duration_s is None else float(duration_s)
        return float(self.meets(slo).sum()) / duration if duration > 0 else float("nan")

    def summary(self, slo: LlmSlo) -> dict[str, Any]:
        def finite(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        q = slo.percentile
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "llm_simulation",
            "requests": len(self.requests),
            "rejected": self.rejected,
            "slo": slo.to_dict(),
            "ttft_p50_ms": finite(self.percentile_ms("ttft", 50)),
            f"ttft_p{q:g}_ms": finite(self.percentile_ms("ttft", q)),
            "tpot_p50_ms": finite(self.percentile_ms("tpot", 50)),
            f"tpot_p{q:g}_ms": finite(self.percentile_ms("tpot", q)),
            "slo_attainment": float(self.meets(slo).mean()) if len(self.requests) else float("nan"),
            "goodput_rps": finite(self.goodput_rps(slo)),
            "preemptions": int(self.preemptions.sum()),
            "iterations": int(self.iterations.sum()),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per request."""
        return pd.DataFrame({
            "arrival_s": self.requests.arrival_s, "prompt_tokens": self.requests.prompt_tokens,
            "output_tokens": self.requests.output_tokens, "replica": self.replica,
            "first_token_s": self.first_token_s, "last_token_s": self.last_token_s,
            "ttft_ms": self.ttft_s * 1000.0, "tpot_ms": self.tpot_s * 1000.0, "preemptions": self.preemptions,
        })


class LlmFleet:
    """A steppable simulation of `requests` on replicas that come and go (module docstring).

    Add slots with `add` (before or between runs: a slot asked for at t can be ready at
    t + cold start) and remove them with `remove`; `run(until_s)` processes every event
    before `until_s`. Every type must share `block_tokens` and `chunked_prefill`; the
    longest request accepted is the smallest `max_model_len` of the types.
    """

    def __init__(self, requests: LlmRequests, types: Sequence[ReplicaType]) -> None:
        if not types:
            raise PlanInputError("an LLM fleet needs at least one replica type")
        servers = [t.server for t in types]
        if len({(s.block_tokens, s.chunked_prefill) for s in servers}) > 1:
            raise PlanInputError("replica types of one fleet must share block_tokens and chunked_prefill", option="--profile")
        n = len(requests)
        self.requests = requests
        self.types = tuple(types)
        self._req = _Requests(
            arrival_s=requests.arrival_s, prompt=requests.prompt_tokens, output=requests.output_tokens,
            computed=np.zeros(n, dtype=np.int64), generated=np.zeros(n, dtype=np.int64), scheduled=np.zeros(n, dtype=np.int64),
            next=np.full(n, -1, dtype=np.int64), replica=np.full(n, -1, dtype=np.int64),
            first_s=np.full(n, np.inf), last_s=np.full(n, np.inf), preemptions=np.zeros(n, dtype=np.int64),
        )
        self._typ = _Types(
            np.ascontiguousarray([t.model.coef_ms for t in types], dtype=np.float64).reshape(len(types), 5),
            np.array([s.kv_blocks for s in servers], dtype=np.int64),
            np.array([s.max_num_seqs for s in servers], dtype=np.int64),
            np.array([s.max_num_batched_tokens for s in servers], dtype=np.int64),
        )
        self._lim = _Limits(int(servers[0].block_tokens), bool(servers[0].chunked_prefill), int(min(s.model_len for s in servers)))
        self._g = np.array([0, -1, -1, 0, 0], dtype=np.int64)
        self._max_seqs = int(max(s.max_num_seqs for s in servers))
        self._rep = self._replicas(0)
        self._requested: list[float] = []
        self.now_s = 0.0

    def _replicas(self, capacity: int) -> _Replicas:
        ints = np.zeros((capacity, _R_COLUMNS), dtype=np.int64)
        ints[:, _R_HEAD] = ints[:, _R_TAIL] = -1
        floats = np.zeros((capacity, _RF_COLUMNS))
        floats[:, _RF_REMOVE_S] = floats[:, _RF_GONE_S] = np.inf
        return _Replicas(ints, floats, np.zeros((capacity, self._max_seqs), dtype=np.int64))

    @property
    def slots(self) -> int:
        return int(self._g[_G_SLOTS])

    def add(self, type_index: int, requested_s: float, ready_s: float) -> int:
        """A new replica of `types[type_index]`, serving from `ready_s`; returns its slot."""
        if not 0 <= type_index < len(self.types) or not ready_s >= requested_s:
            raise PlanInputError(f"bad replica slot: type {type_index}, asked for at {requested_s} s, ready at {ready_s} s")
        n = self.slots
        if n == len(self._rep.ints):  # grow the tables, keeping what is there
            more = self._replicas(max(8, n))
            self._rep = _Replicas(*(np.concatenate([old, new]) for old, new in zip(self._rep, more)))
        self._rep.ints[n, _R_TYPE] = type_index
        self._rep.ints[n, _R_STATE] = _BOOTING
        self._rep.floats[n, _RF_READY_S] = ready_s
        self._requested.append(float(requested_s))
        self._g[_G_SLOTS] = n + 1
        return n

    def remove(self, slot: int, at_s: float) -> None:
        """Remove `slot` at `at_s` (booting: it never serves; ready: it drains, then goes)."""
        if self._rep.floats[slot, _RF_REMOVE_S] == np.inf:
            self._rep.floats[slot, _RF_REMOVE_S] = at_s

    def run(self, until_s: float = np.inf) -> None:
        """Process every event before `until_s` (inf: until all work is done)."""
        _run(self._req, self._rep, self._typ, self._lim, self._g, float(until_s))
        self.now_s = float(until_s)

    def waiting(self) -> np.ndarray:
        """Per slot: requests routed to it that are not running (vLLM's `num_requests_waiting`)."""
        n = self.slots
        return self._rep.ints[:n, _R_OUTSTANDING] - self._rep.ints[:n, _R_RUNNING]

    @property
    def router_waiting(self) -> int:
        """Requests waiting at the router because no replica was ready."""
        return int(self._g[_G_ROUTER_LEN])

    def states(self) -> np.ndarray:
        """Per slot: 0 booting, 1 ready, 2 being removed, 3 gone."""
        return self._rep.ints[: self.slots, _R_STATE].copy()

    def slot_types(self) -> np.ndarray:
        return self._rep.ints[: self.slots, _R_TYPE].copy()

    def result(self) -> LlmSimResult:
        n, rep = self.slots, self._rep
        return LlmSimResult(
            requests=self.requests, replica=self._req.replica.copy(), first_token_s=self._req.first_s.copy(),
            last_token_s=self._req.last_s.copy(), preemptions=self._req.preemptions.copy(),
            iterations=rep.ints[:n, _R_ITERATIONS].copy(), busy_s=rep.floats[:n, _RF_BUSY_S].copy(),
            slot_type=rep.ints[:n, _R_TYPE].copy(), requested_s=np.array(self._requested), ready_s=rep.floats[:n, _RF_READY_S].copy(),
            gone_s=rep.floats[:n, _RF_GONE_S].copy(),
        )


def simulate_fleet(requests: LlmRequests, types: Sequence[ReplicaType], slots: Sequence[Slot]) -> LlmSimResult:
    """Serve `requests` on replicas whose comings and goings are known in advance (a plan)."""
    fleet = LlmFleet(requests, types)
    for slot in slots:
        index = fleet.add(slot.type, slot.requested_s, slot.ready_s)
        if slot.remove_s < np.inf:
            fleet.remove(index, slot.remove_s)
    fleet.run()
    return fleet.result()


def simulate_llm(requests: LlmRequests, model: IterationTimeModel, server: ServerConfig, replicas: int = 1) -> LlmSimResult:
    """Serve `requests` on `replicas` replicas of one type, all ready from the start, behind the
    join-shortest-queue router."""
    if replicas < 1:
        raise PlanInputError(f"replicas must be >= 1, not {replicas}", option="--replicas")
    return simulate_fleet(requests, [ReplicaType(model, server)], [Slot(0, 0.0, 0.0)] * replicas)
