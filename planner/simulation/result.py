"""The outcome of one simulation: every request's latency and the SPEC summary metrics.

With a warm-up (`warmup_s`), requests arriving before it were served but are not counted:
`requests`, `violations`, the percentiles and `dropped` cover the requests arriving from
`warmup_s` on, and the driver integrates `unit_seconds_by_device` and counts
`scale_actions` from `warmup_s` on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from themis.common import SCHEMA_VERSION
from themis.common.jsonvalues import finite_or_none
from themis.planner.model.cost import Prices, cost


@dataclass
class SimulationResult:
    """Per-request outcome of a simulation and its SPEC summary."""

    policy: str
    slo_ms: float
    trace_start: str | None
    arrivals_s: np.ndarray
    latencies_ms: np.ndarray
    unit_seconds_by_device: dict[str, float]
    """Cores (GPUs on a GPU stage) held x time from `warmup_s` on, per device, booting replicas included."""
    scale_actions: int
    """Scale actions decided from `warmup_s` on."""
    prices: Prices = field(default_factory=Prices)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    """One row per applied decision and stage: t_s, stage, replicas, total_cores, batch (warm-up included)."""
    warmup_s: float = 0.0

    @property
    def counted(self) -> np.ndarray:
        """Which requests count: those arriving from the end of the warm-up on."""
        return self.arrivals_s >= self.warmup_s

    @property
    def counted_latencies_ms(self) -> np.ndarray:
        return self.latencies_ms[self.counted] if self.warmup_s > 0 else self.latencies_ms

    @property
    def requests(self) -> int:
        return int(self.counted_latencies_ms.size)

    @property
    def dropped(self) -> int:
        return int(np.isinf(self.counted_latencies_ms).sum())

    @property
    def violations(self) -> int:
        return int((self.counted_latencies_ms > self.slo_ms).sum())

    @property
    def violation_rate(self) -> float:
        return self.violations / self.requests if self.requests else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.requests:
            return float("nan")
        return float(np.percentile(self.counted_latencies_ms, q, method="inverted_cdf"))

    @property
    def core_seconds(self) -> float:
        """Unit-seconds over every device (a GPU counts as one unit)."""
        return float(sum(self.unit_seconds_by_device.values()))

    @property
    def cost(self) -> float:
        """Money, by the one pricing rule (`themis.planner.model.cost`)."""
        return cost(self.unit_seconds_by_device, self.prices)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "simulation",
            "policy": self.policy,
            "trace_start": self.trace_start,
            "slo_ms": self.slo_ms,
            "warmup_s": self.warmup_s,
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
            "p50_ms": finite_or_none(self.percentile_ms(50)),
            "p95_ms": finite_or_none(self.percentile_ms(95)),
            "p99_ms": finite_or_none(self.percentile_ms(99)),
            "core_seconds": self.core_seconds,
            "core_hours": self.core_seconds / 3600.0,
            "cost": self.cost,
            "scale_actions": self.scale_actions,
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per request: arrival, latency, whether it violated the SLO and whether it
        counts (arrived after the warm-up)."""
        return pd.DataFrame(
            {
                "arrival_s": self.arrivals_s,
                "latency_ms": self.latencies_ms,
                "violated": self.latencies_ms > self.slo_ms,
                "counted": self.counted,
                "slo_ms": self.slo_ms,
            }
        )
