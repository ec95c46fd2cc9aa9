"""Size, span, rate percentiles and burstiness of a trace (`themis trace inspect`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from themis.common import SCHEMA_VERSION
from themis.planner.traffic.trace import Trace


@dataclass(frozen=True)
class TraceSummary:
    """What `themis trace inspect` reports about a trace.

    Rates are per `interval_s` bins (the trace's native interval unless asked otherwise).
    `span_s` is last arrival - first arrival for per-request traces, else the covered time.
    `cv` is the coefficient of variation of the rate series (std / mean); `peak_to_mean` is
    max / mean. `sparkline_rps` is the rate averaged into at most `SPARKLINE_WIDTH` buckets.
    """

    name: str
    source_format: str
    trace_start: str | None
    interval_s: float
    native_interval_s: float
    duration_s: float
    span_s: float
    requests: int
    per_request: bool
    mean_rps: float
    p50_rps: float
    p99_rps: float
    max_rps: float
    cv: float
    peak_to_mean: float
    sparkline_rps: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "kind": "trace_summary", **self.__dict__}

    def to_frame(self) -> pd.DataFrame:
        row = {k: v for k, v in self.__dict__.items() if k != "sparkline_rps"}
        return pd.DataFrame([row])

SPARKLINE_WIDTH = 48


def summarize(trace: Trace, interval_s: float | None = None) -> TraceSummary:
    """Size, span, rate percentiles and burstiness of `trace` (see `TraceSummary`)."""
    interval_s = float(interval_s or trace.interval_s)
    rates = trace.rate_series(interval_s)
    mean = float(rates.mean()) if rates.size else 0.0
    std = float(rates.std()) if rates.size else 0.0
    arrivals = trace.arrivals_s
    span = float(arrivals[-1] - arrivals[0]) if arrivals is not None and arrivals.size else trace.duration_s
    buckets = np.array_split(rates, min(SPARKLINE_WIDTH, max(rates.size, 1)))
    return TraceSummary(
        name=trace.name,
        source_format=trace.source_format,
        trace_start=trace.trace_start,
        interval_s=interval_s,
        native_interval_s=float(trace.interval_s),
        duration_s=trace.duration_s,
        span_s=span,
        requests=trace.requests,
        per_request=arrivals is not None,
        mean_rps=mean,
        p50_rps=float(np.percentile(rates, 50)) if rates.size else 0.0,
        p99_rps=float(np.percentile(rates, 99)) if rates.size else 0.0,
        max_rps=float(rates.max()) if rates.size else 0.0,
        cv=std / mean if mean > 0 else 0.0,
        peak_to_mean=float(rates.max()) / mean if mean > 0 else 0.0,
        sparkline_rps=[float(b.mean()) if b.size else 0.0 for b in buckets],
    )
