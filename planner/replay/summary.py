"""What a replay's requests add up to: latency percentiles, SLO violations, errors, sender lag.

Latency is measured from each request's scheduled time, so a slow server cannot hide
queueing behind a late sender (no coordinated omission). As in the simulator, a request
that failed counts as a violation with infinite latency: a percentile that falls on
failures is infinite (null in JSON). The sender's lag (sent - scheduled) is reported
apart, so a late sender is visible rather than silently added to the server's latency.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from themis.planner.replay.request_log import OK, STATUSES, RequestLog


@dataclass(frozen=True)
class ReplaySummary:
    """The SPEC metrics of one replay, plus what the sender itself managed."""

    scheduled: int
    """Requests in the trace."""
    requests: int
    """Requests that finished (ok or not); fewer than `scheduled` only when interrupted."""
    ok: int
    failed: int
    violations: int
    violation_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    sender_lag_p50_ms: float | None
    sender_lag_p99_ms: float | None
    sender_lag_max_ms: float | None
    offered_rps: float
    """Requests scheduled per second over the span of the trace."""
    statuses: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def latencies_ms(log: RequestLog) -> np.ndarray:
    """Latency of every finished request in request order, failures as +inf."""
    done = log.done_mask()
    values = (log.completed_s[done] - log.scheduled_s[done]) * 1000.0
    return np.where(log.status[done] == OK, values, np.inf)


def summarize(log: RequestLog, slo_ms: float | None) -> ReplaySummary:
    """Summary of the finished requests; without an SLO only failures are violations."""
    done = log.done_mask()
    latency = latencies_ms(log)
    violations = int((np.isinf(latency) | (latency > (np.inf if slo_ms is None else slo_ms))).sum())
    sent = ~np.isnan(log.sent_s)
    lag_ms = (log.sent_s[sent] - log.scheduled_s[sent]) * 1000.0
    span_s = float(log.scheduled_s[-1] - log.scheduled_s[0]) if log.total > 1 else 0.0
    counts = np.bincount(log.status[done].astype(np.int64), minlength=len(STATUSES))
    n = int(done.sum())
    return ReplaySummary(
        scheduled=log.total,
        requests=n,
        ok=int(counts[OK]),
        failed=n - int(counts[OK]),
        violations=violations,
        violation_rate=violations / n if n else 0.0,
        p50_ms=_percentile(latency, 50),
        p95_ms=_percentile(latency, 95),
        p99_ms=_percentile(latency, 99),
        max_ms=_percentile(latency, 100),
        sender_lag_p50_ms=_percentile(lag_ms, 50),
        sender_lag_p99_ms=_percentile(lag_ms, 99),
        sender_lag_max_ms=_percentile(lag_ms, 100),
        offered_rps=log.total / span_s if span_s > 0 else 0.0,
        statuses={name: int(c) for name, c in zip(STATUSES, counts) if c},
    )


def _percentile(values: np.ndarray, q: float) -> float | None:
    """The q-th percentile (the simulator's method), None when empty or infinite."""
    if values.size == 0:
        return None
    value = float(np.percentile(values, q, method="inverted_cdf"))
    return value if np.isfinite(value) else None
