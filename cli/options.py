"""Options the commands share: their typer declarations and the parsers of their values
(durations, fractions, lists, prices), and the planner settings built from them.

Each parser raises `InputError` naming the option, so a typo costs one line and exit 2.
"""

from __future__ import annotations

import re

import typer

from themis.common.errors import InputError
from themis.planner.choices import FORECAST_METHODS
from themis.planner.model import config as defaults
from themis.planner.model.config import PlanConfig

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


def format_duration(seconds: float) -> str:
    """A duration as the options write it: `400ms`, `30s`, `5m`."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def format_int_list(values: tuple[int, ...]) -> str:
    return ",".join(str(v) for v in values)


# --- options shared by the planning commands (plan, compare, check); defaults from the planner

SLO_OPTION = typer.Option(..., "--slo", help="End-to-end latency SLO, e.g. 200ms or 0.5s (a bare number is ms).")
PERCENTILE_OPTION = typer.Option(defaults.DEFAULT_PERCENTILE, "--percentile", help="The SLO percentile.")
INTERVAL_OPTION = typer.Option(format_duration(defaults.DEFAULT_INTERVAL_S), "--interval", help="Planning interval.")
COLD_START_OPTION = typer.Option(format_duration(defaults.DEFAULT_COLD_START_S), "--cold-start", help="Time for a new replica to start serving.")
RESIZE_DELAY_OPTION = typer.Option(format_duration(defaults.DEFAULT_RESIZE_S), "--resize-delay", help="Time for an in-place resize to take effect.")
MAX_REPLICAS_OPTION = typer.Option(defaults.DEFAULT_MAX_REPLICAS, "--max-replicas", help="Most replicas per stage.")
NODE_CORES_OPTION = typer.Option(
    defaults.DEFAULT_NODE_CORES, "--node-cores", help="Node size of the target cluster: the most cores one replica can have."
)
CORES_OPTION = typer.Option(format_int_list(defaults.DEFAULT_CORES), "--cores", help="Allowed cores per replica (those above the node size are dropped).")
BATCH_SIZES_OPTION = typer.Option(format_int_list(defaults.DEFAULT_BATCH_SIZES), "--batch-sizes", help="Allowed batch sizes.")
HEADROOM_OPTION = typer.Option(defaults.DEFAULT_HEADROOM, "--headroom", help="Plan for forecast x headroom (>= 1).")
FORECAST_OPTION = typer.Option(defaults.DEFAULT_FORECAST, "--forecast", help=f"Forecast method: {', '.join(FORECAST_METHODS)}.")
WARMUP_OPTION = typer.Option(
    format_duration(defaults.DEFAULT_WARMUP_S), "--warmup",
    help="Count violations, cost and scale actions from this time on; online policies start sized for the warm-up's peak.",
)
PRICE_OPTION = typer.Option(None, "--price", help="Prices: cpu=PER_CORE_HOUR,GPU_NAME=PER_GPU_HOUR (e.g. cpu=0.05,a100=2.5).")
SCALE_OPTION = typer.Option(1.0, "--scale", help="Multiply the trace's volume by this factor.")
SEED_OPTION = typer.Option(0, "--seed", help="Seed for synthesised arrivals (and sampled service times).")
FUNCTION_OPTION = typer.Option(None, "--function", help="Azure Functions: only this function (HashFunction / func id).")
TOP_OPTION = typer.Option(None, "--top", help="Azure Functions: only the N busiest functions [default: all, summed].")


def plan_config(
    *,
    slo: str,
    percentile: float = defaults.DEFAULT_PERCENTILE,
    interval: str = format_duration(defaults.DEFAULT_INTERVAL_S),
    cold_start: str = format_duration(defaults.DEFAULT_COLD_START_S),
    resize_delay: str = format_duration(defaults.DEFAULT_RESIZE_S),
    warmup: str = format_duration(defaults.DEFAULT_WARMUP_S),
    max_replicas: int = defaults.DEFAULT_MAX_REPLICAS,
    node_cores: int = defaults.DEFAULT_NODE_CORES,
    cores: str = format_int_list(defaults.DEFAULT_CORES),
    batch_sizes: str = format_int_list(defaults.DEFAULT_BATCH_SIZES),
    headroom: float = defaults.DEFAULT_HEADROOM,
    forecast: str = defaults.DEFAULT_FORECAST,
    price: str | None = None,
) -> PlanConfig:
    """The planner's settings from the shared options' text, validated."""
    core_price, gpu_prices = parse_prices(price)
    config = PlanConfig(
        slo_ms=parse_duration_ms(slo, "--slo"),
        percentile=percentile,
        interval_s=parse_duration_s(interval, "--interval"),
        cold_start_s=parse_duration_s(cold_start, "--cold-start"),
        resize_s=parse_duration_s(resize_delay, "--resize-delay"),
        warmup_s=parse_duration_s(warmup, "--warmup"),
        max_replicas=max_replicas,
        node_cores=node_cores,
        cores=parse_int_list(cores, "--cores"),
        batch_sizes=parse_int_list(batch_sizes, "--batch-sizes"),
        headroom=headroom,
        forecast=forecast,
        price_per_core_hour=core_price,
        price_per_gpu_hour=gpu_prices,
    )
    config.validate()
    return config
