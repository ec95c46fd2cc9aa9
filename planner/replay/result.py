"""The result of `themis replay`: its settings, the per-request rows, the summary, and
(with `--serve`) the server's record and the comparison with the simulator.

`to_frame()` is the per-request table (`request_log.COLUMNS`); `to_dict()` the JSON
contract (`kind: replay`); `parquet_metadata()` what the Parquet footer carries besides
the kind and schema version, so a saved table says what produced it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from themis.common import SCHEMA_VERSION
from themis.planner.replay.comparison import ReplayComparison
from themis.planner.replay.request_log import RequestLog
from themis.planner.replay.server import ServerReport
from themis.planner.replay.summary import ReplaySummary, summarize

KIND = "replay"


@dataclass(frozen=True)
class ReplaySettings:
    """What was replayed, where, and how it was reshaped."""

    url: str
    request: str
    """How each request was built (template or protocol, payload)."""
    trace: str
    trace_start: str | None
    slo_ms: float | None
    scale: float
    speedup: float
    seed: int
    timeout_s: float
    serve: list[str] = field(default_factory=list)
    """Models served by the reference server, one per stage (empty with --url)."""
    plan_policy: str | None = None


@dataclass
class ReplayResult:
    settings: ReplaySettings
    log: RequestLog
    interrupted: bool = False
    server: ServerReport | None = None
    comparison: ReplayComparison | None = None

    def summary(self) -> ReplaySummary:
        return summarize(self.log, self.settings.slo_ms)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "trace_start": self.settings.trace_start,
            "settings": asdict(self.settings),
            "interrupted": self.interrupted,
            **self.summary().to_dict(),
        }
        if self.server is not None:
            out["server"] = self.server.to_dict()
        if self.comparison is not None:
            out["comparison"] = self.comparison.to_dict()
        return out

    def to_frame(self) -> pd.DataFrame:
        return self.log.frame()

    def parquet_metadata(self) -> dict[str, str]:
        return {"themis.replay.settings": json.dumps(asdict(self.settings)), "themis.replay.interrupted": json.dumps(self.interrupted)}
