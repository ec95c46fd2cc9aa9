"""One row per replayed request: when it was due, sent and answered, and how (the Parquet contract).

Columns (`COLUMNS`), times in seconds from the start of the (reshaped) trace:

- `request`: index of the request in the trace's arrivals (0, 1, ...);
- `scheduled_s`: when the trace says it arrives, the time latency is measured from;
- `sent_s`: when the sender started it (`sent_s - scheduled_s` is the sender's lag);
- `completed_s`: when its answer was read, or when it failed;
- `latency_ms`: `(completed_s - scheduled_s) * 1000`, for failures the time until the failure;
- `status`: `ok` (HTTP 2xx), `http_error` (any other HTTP status), `error` (no HTTP
  answer: refused, reset, closed), `timeout`, or `cancelled` (in flight when the replay was
  interrupted);
- `http_status`: the HTTP status code, 0 when there was none;
- `error`: one line saying what went wrong, empty for `ok`.

A row is written once its request has finished, in request order; requests never sent
(an interrupted replay) have no row. The arrays are preallocated so that recording a
request costs a few stores and a snapshot for a checkpoint is a few array copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

STATUSES = ("ok", "http_error", "error", "timeout", "cancelled")
OK, HTTP_ERROR, ERROR, TIMEOUT, CANCELLED = range(len(STATUSES))
COLUMNS = ("request", "scheduled_s", "sent_s", "completed_s", "latency_ms", "status", "http_status", "error")
_PENDING = -1


@dataclass
class RequestLog:
    """What happened to every request of one replay so far."""

    scheduled_s: np.ndarray
    sent_s: np.ndarray = field(init=False)
    completed_s: np.ndarray = field(init=False)
    status: np.ndarray = field(init=False)
    http_status: np.ndarray = field(init=False)
    errors: dict[int, str] = field(init=False, default_factory=dict)
    sent: int = field(init=False, default=0)
    finished: int = field(init=False, default=0)
    failed: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        n = self.scheduled_s.size
        self.scheduled_s = np.ascontiguousarray(self.scheduled_s, dtype=np.float64)
        self.sent_s = np.full(n, np.nan)
        self.completed_s = np.full(n, np.nan)
        self.status = np.full(n, _PENDING, dtype=np.int8)
        self.http_status = np.zeros(n, dtype=np.int32)

    @property
    def total(self) -> int:
        """Requests in the trace, finished or not."""
        return int(self.scheduled_s.size)

    def mark_sent(self, request: int, t_s: float) -> None:
        self.sent_s[request] = t_s
        self.sent += 1

    def mark_done(self, request: int, t_s: float, status: int, http_status: int = 0, error: str = "") -> None:
        self.completed_s[request] = t_s
        self.status[request] = status
        self.http_status[request] = http_status
        if status != OK:
            self.errors[request] = error
            self.failed += 1
        self.finished += 1

    def done_mask(self) -> np.ndarray:
        return self.status != _PENDING

    def snapshot(self) -> RequestLog:
        """A copy that later updates do not touch (checkpoints are written from another thread)."""
        copy = RequestLog(self.scheduled_s)
        copy.sent_s, copy.completed_s = self.sent_s.copy(), self.completed_s.copy()
        copy.status, copy.http_status = self.status.copy(), self.http_status.copy()
        copy.errors = dict(self.errors)
        copy.sent, copy.finished, copy.failed = self.sent, self.finished, self.failed
        return copy

    def frame(self) -> pd.DataFrame:
        """The finished requests as rows of `COLUMNS`, in request order."""
        index = np.flatnonzero(self.done_mask())
        scheduled, completed = self.scheduled_s[index], self.completed_s[index]
        errors = np.full(self.total, "", dtype=object)
        for request, text in self.errors.items():
            errors[request] = text
        return pd.DataFrame(
            {
                "request": index.astype(np.int64),
                "scheduled_s": scheduled,
                "sent_s": self.sent_s[index],
                "completed_s": completed,
                "latency_ms": (completed - scheduled) * 1000.0,
                "status": pd.Categorical.from_codes(self.status[index], categories=list(STATUSES)).astype(str),
                "http_status": self.http_status[index],
                "error": errors[index],
            },
            columns=list(COLUMNS),
        )
