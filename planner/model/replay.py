"""Replay of real arrivals on one fixed allocation: how many requests miss the SLO.

The serving model of SPEC for one stage whose replicas are all ready and all of one size,
for a window of arrivals that starts with an empty queue: a free replica takes min(queue,
batch) requests at once and serves them in s(k); when several are free, the one free the
longest takes the work. With equal replicas, the earliest free one starting at
max(its free time, the next arrival) is exactly that rule, so the replay is a loop over
batches (numba, compiled on first use; numba is imported only when a replay is asked for,
so that `themis --help` stays light).

`oracle` uses it to find, interval by interval, the cheapest allocation that holds the
SLO on the arrivals that really come, with the resizes its plan asks for at the interval's
start landing a resize delay later (`violations_after_resize`). `tests/planner/model/test_replay.py` checks it
against the request-level simulator.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_KERNEL: list[Callable[..., int]] = []


def violations(arrivals_s: np.ndarray, replicas: int, batch: int, service_ms: np.ndarray, slo_ms: float) -> int:
    """Requests of `arrivals_s` (sorted, seconds) whose latency exceeds `slo_ms` on
    `replicas` equal replicas at `batch`; service_ms[k] is a batch of k (index 0 unused)."""
    table = np.tile(np.asarray(service_ms, dtype=np.float64), (int(replicas), 1))
    return violations_after_resize(arrivals_s, batch, table, table, 0.0, slo_ms)


def violations_after_resize(
    arrivals_s: np.ndarray,
    batch: int,
    before_ms: np.ndarray,
    after_ms: np.ndarray,
    resize_s: float,
    slo_ms: float,
    counted_from_s: float = 0.0,
    batch_before: int | None = None,
) -> int:
    """The same on replicas that are being resized: replica i serves a batch that starts
    before `resize_s` in before_ms[i, k] and one that starts later in after_ms[i, k] (a
    resize lands `resize_s` after it was asked for; a running batch keeps its speed).
    Rows are replicas, the readiest first. Only requests arriving from `counted_from_s`
    on are counted (earlier ones are a lead-in: the queue an interval inherits); batches
    that start before then take at most `batch_before` (the cap then in force; default
    `batch`), since a new cap applies at once when it is asked for."""
    if not _KERNEL:
        _KERNEL.append(_compile())
    before = np.ascontiguousarray(np.nan_to_num(np.asarray(before_ms, dtype=np.float64)) / 1000.0)
    after = np.ascontiguousarray(np.nan_to_num(np.asarray(after_ms, dtype=np.float64)) / 1000.0)
    arrivals = np.ascontiguousarray(arrivals_s, dtype=np.float64)
    first = int(np.searchsorted(arrivals, counted_from_s))
    cap_before = int(batch if batch_before is None else batch_before)
    return int(_KERNEL[0](arrivals, int(batch), cap_before, float(counted_from_s), before, after, float(resize_s), slo_ms / 1000.0, first))


def _compile() -> Callable[..., int]:
    import numba

    @numba.njit(cache=True)
    def _violations(
        arrivals: np.ndarray, batch: int, batch_before: int, switch_s: float, before: np.ndarray, after: np.ndarray,
        resize_s: float, slo_s: float, first: int,
    ) -> int:
        replicas = before.shape[0]
        free = np.zeros(replicas)
        n = arrivals.size
        i = 0
        bad = 0
        while i < n:
            r = 0
            for j in range(1, replicas):
                if free[j] < free[r]:
                    r = j
            start = max(free[r], arrivals[i])
            cap = batch if start >= switch_s else batch_before
            k = 0
            while i + k < n and k < cap and arrivals[i + k] <= start:
                k += 1
            done = start + (before[r, k] if start < resize_s else after[r, k])
            for m in range(max(i, first), i + k):
                if done - arrivals[m] > slo_s:
                    bad += 1
            free[r] = done
            i += k
        return bad

    return _violations
