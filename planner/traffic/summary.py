"""Size, span, rate percentiles, burstiness and (LLM traces) tokens of a trace (`themis trace inspect`)."""

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
    tokens: TokenSummary | None = None
    """Token distributions and rates, for a trace that records tokens (an LLM trace)."""

    def to_dict(self) -> dict[str, Any]:
        data = {"schema_version": SCHEMA_VERSION, "kind": "trace_summary", **self.__dict__}
        data["tokens"] = self.tokens.to_dict() if self.tokens is not None else None
        return data

    def to_frame(self) -> pd.DataFrame:
        row = {k: v for k, v in self.__dict__.items() if k not in ("sparkline_rps", "tokens")}
        if self.tokens is not None:
            row.update(self.tokens.flat())
        return pd.DataFrame([row])


TOKEN_PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class TokenStats:
    """Distribution of one token count over the requests."""

    mean: float
    p50: float
    p90: float
    p99: float
    max: float
    total: int

    @classmethod
    def of(cls, values: np.ndarray) -> TokenStats:
        p50, p90, p99 = (float(v) for v in np.percentile(values, TOKEN_PERCENTILES))
        return cls(float(values.mean()), p50, p90, p99, float(values.max()), int(values.sum(dtype=np.int64)))


@dataclass(frozen=True)
class TokenSummary:
    """Prompt and output tokens per request, and tokens per second over the trace.

    Rates are per `interval_s` bin: mean over the trace's duration, and the busiest bin.
    """

    prompt: TokenStats
    output: TokenStats
    mean_prompt_tokens_per_s: float
    mean_output_tokens_per_s: float
    max_prompt_tokens_per_s: float
    max_output_tokens_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt.__dict__, "output": self.output.__dict__,
            "mean_prompt_tokens_per_s": self.mean_prompt_tokens_per_s, "mean_output_tokens_per_s": self.mean_output_tokens_per_s,
            "max_prompt_tokens_per_s": self.max_prompt_tokens_per_s, "max_output_tokens_per_s": self.max_output_tokens_per_s,
        }

    def flat(self) -> dict[str, float]:
        """One column per figure (`prompt_tokens_p99`, ...), for CSV and Parquet."""
        out = {f"{name}_tokens_{key}": value for name, stats in (("prompt", self.prompt), ("output", self.output))
               for key, value in stats.__dict__.items()}
        out.update({k: v for k, v in self.to_dict().items() if k.endswith("_per_s")})
        return out


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
        tokens=token_summary(trace, interval_s) if trace.has_tokens and trace.requests else None,
    )


def token_summary(trace: Trace, interval_s: float) -> TokenSummary:
    """Token distributions of `trace` and its prompt/output tokens per second per `interval_s` bin."""
    n = int(np.ceil(trace.duration_s / interval_s - 1e-9))
    bins = (trace.arrivals_s // interval_s).astype(np.int64)
    per_s = [np.bincount(bins, weights=tokens, minlength=n)[:n] / interval_s for tokens in (trace.prompt_tokens, trace.output_tokens)]
    return TokenSummary(
        prompt=TokenStats.of(trace.prompt_tokens),
        output=TokenStats.of(trace.output_tokens),
        mean_prompt_tokens_per_s=float(per_s[0].mean()),
        mean_output_tokens_per_s=float(per_s[1].mean()),
        max_prompt_tokens_per_s=float(per_s[0].max()),
        max_output_tokens_per_s=float(per_s[1].max()),
    )
