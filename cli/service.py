"""The traffic that plan, compare, check and demo read: trace files or a steady rate.

Kept in one place so that every command selects and scales traces the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from themis.common.errors import InputError
from themis.planner.traces import Trace, load_trace

CONSTANT_LOAD_S = 600.0
"""Length of the synthetic steady load checked with `--peak-rps`."""


def load_trace_or_rate(
    traces: Sequence[Path] | None,
    peak_rps: float | None,
    *,
    scale: float = 1.0,
    interval_s: float = 60.0,
    seed: int = 0,
    function: str | None = None,
    top: int | None = None,
) -> Trace:
    """The trace(s) given (selected and scaled), or a steady load at `peak_rps`."""
    if scale <= 0:
        raise InputError(f"must be positive, got {scale:g}", option="--scale")
    if peak_rps is not None:
        if peak_rps <= 0:
            raise InputError(f"must be positive, got {peak_rps:g}", option="--peak-rps")
        intervals = int(CONSTANT_LOAD_S // interval_s) or 1
        counts = np.full(intervals, round(peak_rps * scale * interval_s), dtype=np.int64)
        return Trace(f"steady {peak_rps * scale:g} rps", "constant", None, interval_s, counts)
    if not traces:
        raise InputError("give a traffic trace (--trace FILE) or a load (--peak-rps N)", option="--trace")
    trace = load_trace(list(traces) if len(traces) > 1 else traces[0], function=function, top=top)
    return trace.scaled(scale, seed=seed) if scale != 1.0 else trace
