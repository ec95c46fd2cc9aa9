"""Options the commands share: their typer declarations and the parsers of their values
(durations, fractions, lists, prices), and the planner settings built from them.

Each parser raises `InputError` naming the option, so a typo costs one line and exit 2.
"""

from __future__ import annotations

import re

import typer

from themis.cli.settings import DEFAULT_TEXT, Settings, load_settings
from themis.common.errors import InputError
from themis.planner.choices import FORECAST_METHODS, TRACE_FORMATS
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


def parse_number(text: str, option: str) -> float:
    """A finite number (`99`, `1.5`), or an `InputError` naming the option."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"cannot read {text!r} as a number", option=option) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InputError(f"must be a finite number, got {text!r}", option=option)
    return value


def parse_whole_number(text: str, option: str) -> int:
    """A whole number (`16`), or an `InputError` naming the option."""
    value = parse_number(text, option)
    if value != int(value):
        raise InputError(f"must be a whole number, got {text!r}", option=option)
    return int(value)


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


# Help texts of options some commands declare with their own default.
DTYPE_HELP = "Element type of the model and its input: float32, float16, bfloat16, float64."
INPUT_SHAPE_HELP = "Shape of one input item, batch excluded, e.g. 3x224x224 (for bert_base: the sequence length, e.g. 384)."
SLO_HELP = "End-to-end latency SLO, e.g. 200ms or 0.5s (a bare number is ms)."


# --- options shared by the planning commands (plan, compare, check, simulate) ---------------
# Each defaults to None on the command line, so that `plan_config` can tell "not given" from
# a value: not given, it comes from themis.toml (`settings`), else from the planner default.

def _planning_option(key: str, flag: str, help_text: str) -> object:
    default = DEFAULT_TEXT.get(key)
    return typer.Option(None, flag, help=help_text, show_default=f"{default} or themis.toml" if default else "from themis.toml")


SLO_OPTION = _planning_option("slo", "--slo", SLO_HELP)
PERCENTILE_OPTION = _planning_option("percentile", "--percentile", "The SLO percentile.")
INTERVAL_OPTION = _planning_option("interval", "--interval", "Planning interval (e.g. 60s, 5m).")
COLD_START_OPTION = _planning_option("cold_start", "--cold-start", "Time for a new replica to start serving.")
RESIZE_DELAY_OPTION = _planning_option("resize_delay", "--resize-delay", "Time for an in-place resize to take effect.")
MAX_REPLICAS_OPTION = _planning_option("max_replicas", "--max-replicas", "Search bound: most replicas per stage.")
NODE_CORES_OPTION = _planning_option("node_cores", "--node-cores", "Node size of the target cluster: the most cores one replica can have.")
CORES_OPTION = _planning_option("cores", "--cores", "Allowed cores per replica (those above the node size are dropped).")
BATCH_SIZES_OPTION = _planning_option("batch_sizes", "--batch-sizes", "Allowed batch sizes.")
HEADROOM_OPTION = _planning_option("headroom", "--headroom", "Plan for forecast x headroom (>= 1).")
WARMUP_OPTION = _planning_option(
    "warmup", "--warmup",
    "Count violations, cost and scale actions from this time on; online policies start sized for the warm-up's peak.",
)
FORECAST_OPTION = _planning_option("forecast", "--forecast", f"Forecast method: {', '.join(FORECAST_METHODS)}.")
PRICE_OPTION = typer.Option(
    None, "--price", show_default="none, or themis.toml: cost is not computed",
    help="Prices in currency units per core-hour (cpu=) and per GPU-hour by device name, e.g. cpu=0.05,a100=2.5 "
    "(a bare number is the CPU price).",
)
# --- traffic options: every command that reads a trace takes these, defined once here -------
TRACE_OPTION = typer.Option(
    None, "--trace", "-t", show_default="none",
    help="Trace file, or a bundled trace by name (azure_llm_2023_code, azure_functions_2019, azure_functions_2021); "
    "repeat it for several Azure Functions 2019 day files (one timeline).",
)
FORMAT_OPTION = typer.Option(None, "--format", help=f"Force the trace format: {', '.join(TRACE_FORMATS)}.", show_default="detected")
TIME_COLUMN_OPTION = typer.Option(None, "--time-column", help="Generic request log / rate series: the timestamp column.",
                                  show_default="detected")
APP_OPTION = typer.Option(None, "--app", help="Azure Functions: only this app (HashApp / app id).", show_default="every app")
FUNCTION_OPTION = typer.Option(None, "--function", help="Azure Functions: only this function (HashFunction / func id).",
                               show_default="every function")
TOP_OPTION = typer.Option(None, "--top", help="Azure Functions: only the N busiest functions.", show_default="all, summed")
SCALE_OPTION = typer.Option(1.0, "--scale", help="Multiply the trace's volume by this factor.")
SEED_OPTION = typer.Option(0, "--seed", help="Seed for synthesised arrivals (and sampled service times).")
MODEL_OPTION = typer.Option(
    None, "--model", help="The model to use when the profiles (or the profile store) hold several.",
    show_default="the only one, or themis.toml's",
)
PROFILES_OPTION = typer.Option(
    None, "--profile", "-p", help="Profile Parquet file(s) of the service's models; several merge (devices).",
    show_default="the newest in profiles/",
)
ALLOW_UNSTABLE_OPTION = typer.Option(
    False, "--allow-unstable", help="Use profile cells measured unstable or contended as measured (refused otherwise)."
)


def setting(value: object, key: str, settings: Settings | None = None) -> str | None:
    """One shared setting as text: the option's value if given, else themis.toml's, else the default."""
    if value is not None:
        return str(value)
    settings = settings if settings is not None else load_settings()
    return settings.get(key) if settings.get(key) is not None else DEFAULT_TEXT.get(key)


def plan_config(
    *,
    slo: str | None,
    percentile: str | float | None = None,
    interval: str | None = None,
    cold_start: str | None = None,
    resize_delay: str | None = None,
    max_replicas: str | int | None = None,
    node_cores: str | int | None = None,
    cores: str | None = None,
    batch_sizes: str | None = None,
    headroom: str | float | None = None,
    forecast: str | None = None,
    warmup: str | None = None,
    price: str | None = None,
    settings: Settings | None = None,
) -> PlanConfig:
    """The planner's settings: each option given, else its themis.toml value, else the
    planner's default; parsed and validated, naming the option (or file) when wrong."""
    settings = settings if settings is not None else load_settings()

    def pick(value: object, key: str) -> str | None:
        return setting(value, key, settings)

    slo_text = pick(slo, "slo")
    if slo_text is None:
        raise InputError("no SLO: pass one (e.g. --slo 200ms) or run `themis init` to write a themis.toml that holds it", option="--slo")
    core_price, gpu_prices = parse_prices(pick(price, "price"))
    config = PlanConfig(
        slo_ms=parse_duration_ms(slo_text, "--slo"),
        percentile=parse_number(pick(percentile, "percentile"), "--percentile"),
        interval_s=parse_duration_s(pick(interval, "interval"), "--interval"),
        cold_start_s=parse_duration_s(pick(cold_start, "cold_start"), "--cold-start"),
        resize_s=parse_duration_s(pick(resize_delay, "resize_delay"), "--resize-delay"),
        max_replicas=parse_whole_number(pick(max_replicas, "max_replicas"), "--max-replicas"),
        node_cores=parse_whole_number(pick(node_cores, "node_cores"), "--node-cores"),
        cores=parse_int_list(pick(cores, "cores"), "--cores"),
        batch_sizes=parse_int_list(pick(batch_sizes, "batch_sizes"), "--batch-sizes"),
        headroom=parse_number(pick(headroom, "headroom"), "--headroom"),
        forecast=str(pick(forecast, "forecast")),
        warmup_s=parse_duration_s(pick(warmup, "warmup"), "--warmup"),
        price_per_core_hour=core_price,
        price_per_gpu_hour=gpu_prices,
    )
    config.validate()
    return config
