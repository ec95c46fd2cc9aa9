"""Options the commands share: their typer declarations and the parsers of their values
(durations, fractions, lists, prices), and the planner settings built from them.

Each parser raises `InputError` naming the option, so a typo costs one line and exit 2.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import typer

from themis.common.errors import InputError
from themis.planner.choices import FORECAST_METHODS

if TYPE_CHECKING:
    from themis.planner.plan import PlanConfig

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


# --- options shared by the planning commands (plan, compare, check) ---

SLO_OPTION = typer.Option(..., "--slo", help="End-to-end latency SLO, e.g. 200ms or 0.5s (a bare number is ms).")
PERCENTILE_OPTION = typer.Option(99.0, "--percentile", help="The SLO percentile.")
INTERVAL_OPTION = typer.Option("60s", "--interval", help="Planning interval.")
COLD_START_OPTION = typer.Option("30s", "--cold-start", help="Time for a new replica to start serving.")
RESIZE_DELAY_OPTION = typer.Option("1s", "--resize-delay", help="Time for an in-place resize to take effect.")
MAX_REPLICAS_OPTION = typer.Option(64, "--max-replicas", help="Most replicas per stage.")
NODE_CORES_OPTION = typer.Option(None, "--max-cores-per-replica", help="Node size: most cores per replica (default: this machine's).")
CORES_OPTION = typer.Option("1,2,4,8,16", "--cores", help="Allowed cores per replica (those above the node size are dropped).")
BATCH_SIZES_OPTION = typer.Option("1,2,4,8,16,32", "--batch-sizes", help="Allowed batch sizes.")
HEADROOM_OPTION = typer.Option(1.0, "--headroom", help="Plan for forecast x headroom (>= 1).")
FORECAST_OPTION = typer.Option("auto", "--forecast", help=f"Forecast method: {', '.join(FORECAST_METHODS)}.")
PRICE_OPTION = typer.Option(None, "--price", help="Prices: cpu=PER_CORE_HOUR,GPU_NAME=PER_GPU_HOUR (e.g. cpu=0.05,a100=2.5).")
SCALE_OPTION = typer.Option(1.0, "--scale", help="Multiply the trace's volume by this factor.")
SEED_OPTION = typer.Option(0, "--seed", help="Seed for synthesised arrivals (and sampled service times).")
FUNCTION_OPTION = typer.Option(None, "--function", help="Azure Functions: only this function (HashFunction / func id).")
TOP_OPTION = typer.Option(None, "--top", help="Azure Functions: only the N busiest functions [default: all, summed].")
ALLOW_UNSTABLE_OPTION = typer.Option(
    False, "--allow-unstable", help="Use profile cells measured unstable or contended as measured (refused otherwise)."
)


def plan_config(
    *,
    slo: str,
    percentile: float = 99.0,
    interval: str = "60s",
    cold_start: str = "30s",
    resize_delay: str = "1s",
    max_replicas: int = 64,
    max_cores_per_replica: int | None = None,
    cores: str = "1,2,4,8,16",
    batch_sizes: str = "1,2,4,8,16,32",
    headroom: float = 1.0,
    forecast: str = "auto",
    price: str | None = None,
) -> PlanConfig:
    """The planner's settings from the shared options' text, validated."""
    from themis.planner.plan import PlanConfig

    core_price, gpu_prices = parse_prices(price)
    config = PlanConfig(
        slo_ms=parse_duration_ms(slo, "--slo"),
        percentile=percentile,
        interval_s=parse_duration_s(interval, "--interval"),
        cold_start_s=parse_duration_s(cold_start, "--cold-start"),
        resize_s=parse_duration_s(resize_delay, "--resize-delay"),
        max_replicas=max_replicas,
        cores=parse_int_list(cores, "--cores"),
        batch_sizes=parse_int_list(batch_sizes, "--batch-sizes"),
        headroom=headroom,
        forecast=forecast,
        price_per_core_hour=core_price,
        price_per_gpu_hour=gpu_prices,
        **({"max_cores_per_replica": max_cores_per_replica} if max_cores_per_replica is not None else {}),
    )
    config.validate()
    return config
