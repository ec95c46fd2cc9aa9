"""JSON has no NaN or infinity: the one conversion every result uses for its numbers."""

from __future__ import annotations

import math


def finite_or_none(value: object) -> object:
    """`value` unchanged, except a non-finite float (or numpy float), which becomes None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def float_or_nan(value: object) -> float:
    """A JSON number read back: None (a NaN or infinity written out) becomes NaN."""
    return float("nan") if value is None else float(value)  # type: ignore[arg-type]
