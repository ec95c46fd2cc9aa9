"""Parsers for the option values every command shares: durations, fractions, lists, prices.

Each raises `InputError` naming the option, so a typo costs one line and exit 2.
"""

from __future__ import annotations

import re

from themis.common.errors import InputError

_SECONDS_PER_UNIT = {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)"


def parse_duration_s(text: str, option: str, default_unit: str = "s") -> float:
    """'200ms', '30s', '1.5m', '1h' or a bare number (in `default_unit`) -> seconds."""
    match = re.fullmatch(rf"\s*{_NUMBER}\s*([a-z]*)\s*", str(text).lower())
    unit = (match.group(2) or default_unit) if match else ""
    if not match or unit not in _SECONDS_PER_UNIT:
        raise InputError(f"cannot read {text!r} as a duration (e.g. 200ms, 30s, 2m)", option=option)
    return float(match.group(1)) * _SECONDS_PER_UNIT[unit]


def parse_duration_ms(text: str, option: str) -> float:
    """Like `parse_duration_s`, but a bare number means milliseconds (SLOs: `--slo 200`)."""
    return parse_duration_s(text, option, default_unit="ms") * 1000.0


def parse_fraction(text: str, option: str) -> float:
    """'10%' or '0.1' -> 0.1 (a non-negative fraction)."""
    match = re.fullmatch(rf"\s*{_NUMBER}\s*(%?)\s*", str(text))
    if not match:
        raise InputError(f"cannot read {text!r} as a fraction (e.g. 10% or 0.1)", option=option)
    value = float(match.group(1)) / (100.0 if match.group(2) else 1.0)
    return value


def parse_int_list(text: str, option: str) -> tuple[int, ...]:
    """'1,2,4,8' -> (1, 2, 4, 8): positive integers, sorted, without repeats."""
    parts = [part.strip() for part in str(text).split(",")]
    if not all(part.isdigit() and int(part) > 0 for part in parts):
        raise InputError(f"{text!r} is not a comma-separated list of positive whole numbers", option=option)
    return tuple(sorted({int(part) for part in parts}))


def parse_prices(text: str | None, option: str = "--price") -> tuple[float, dict[str, float]]:
    """'cpu=0.05,a100=2.5' -> (price per core-hour, {device name: price per GPU-hour}).

    A bare number is the CPU price per core-hour.
    """
    if not text:
        return 0.0, {}
    cpu, gpus = 0.0, {}
    for part in str(text).split(","):
        name, _, value = part.rpartition("=")
        try:
            price = float(value)
        except ValueError:
            raise InputError(f"cannot read {part!r} as DEVICE=PRICE", option=option) from None
        if price < 0:
            raise InputError(f"price {price:g} must not be negative", option=option)
        if name.strip().lower() in ("", "cpu"):
            cpu = price
        else:
            gpus[name.strip()] = price
    return cpu, gpus
