"""When a cell's measurement has settled: the last k window medians agree within a tolerance.

The criterion of Triton's perf_analyzer, per cell and per worker process: time the cell
in windows (interleaved with the other cells of the worker), and call it stable once the
medians of its last `k` windows lie within `tolerance` of each other, relative to their
median. A cell that has not settled after `max_windows` windows is recorded `unstable`,
with the spread it saw.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from themis.profiler.errors import BadOptionError


@dataclass(frozen=True)
class Stability:
    """The stability criterion (`--stability`)."""

    k: int = 3  # windows whose medians must agree
    tolerance: float = 0.05  # (max - min) / median of those k medians
    max_windows: int = 10  # per cell and process; after these the cell is `unstable`
    window_calls: int = 10  # timed calls per window at least (so a window median means something)
    enabled: bool = True  # `--stability off`: stop on budget and samples alone

    def spread(self, medians: Sequence[float]) -> float:
        """Relative spread of the last k window medians (NaN with fewer than k windows)."""
        return window_spread(medians[-self.k:]) if len(medians) >= self.k else math.nan

    def is_stable(self, medians: Sequence[float]) -> bool:
        if not self.enabled:
            return True
        spread = self.spread(medians)
        return not math.isnan(spread) and spread <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stability:
        return cls(**data)


def window_spread(medians: Sequence[float]) -> float:
    """(max - min) / median of `medians`: 0 when they agree exactly."""
    if not medians:
        return math.nan
    middle = statistics.median(medians)
    return (max(medians) - min(medians)) / middle if middle > 0 else math.inf


_KEYS = {"k": "k", "tol": "tolerance", "tolerance": "tolerance", "windows": "max_windows", "max_windows": "max_windows", "calls": "window_calls"}


def parse_stability(text: str) -> Stability:
    """`5%`, `k=3,tol=5%`, `k=4,tol=0.02,windows=12,calls=20` or `off` -> `Stability`.

    Unnamed values are the tolerance; what is not given keeps its default.
    """
    text = str(text).strip().lower()
    if text in ("off", "none", "no"):
        return Stability(enabled=False)
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.rpartition("=")
        field = _KEYS.get(name.strip() or "tol")
        if field is None:
            raise BadOptionError(f"unknown stability setting {name!r}; use k=, tol=, windows=, calls= (e.g. k=3,tol=5%)", option="--stability")
        values[field] = _fraction(value) if field == "tolerance" else _count(value, name)
    stability = Stability(**values)
    if stability.k < 2 or stability.max_windows < stability.k or stability.window_calls < 1 or not 0 < stability.tolerance < 1:
        raise BadOptionError(
            f"{text!r}: need k >= 2, windows >= k, calls >= 1 and 0 < tol < 100%", option="--stability"
        )
    return stability


def _fraction(value: str) -> float:
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%?)\s*", value)
    if not match:
        raise BadOptionError(f"cannot read {value!r} as a tolerance (e.g. 5% or 0.05)", option="--stability")
    return float(match.group(1)) / (100.0 if match.group(2) else 1.0)


def _count(value: str, name: str) -> int:
    if not value.strip().isdigit():
        raise BadOptionError(f"{name}={value!r} is not a whole number", option="--stability")
    return int(value)
