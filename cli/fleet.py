"""`themis fleet plan` and `themis fleet compare`: many services at once, locally or on Ray."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from pathlib import Path
from typing import Any

import typer

from themis.cli import options as opt
from themis.cli import output
from themis.cli.progress import fleet_progress
from themis.cli.service import trace_file
from themis.common.errors import InputError
from themis.planner.choices import PLANNED_POLICIES, POLICIES
from themis.planner.model import config as defaults

fleet_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode="rich",
    help="Plan or compare a fleet of services: per-service plans, fleet totals per interval, nodes by first-fit decreasing.\n\n"
    "[b]Examples[/b]\n\n  themis fleet plan fleet.yaml --out-dir out/fleet\n\n"
    "  themis fleet plan --trace d01.csv --per-function --top 500 --profile resnet18.parquet --slo 300ms --engine ray\n\n"
    "  themis fleet compare --trace d01.csv --per-function --top 50 --profile resnet18.parquet --slo 300ms --html fleet.html",
)

FLEET_ARGUMENT = typer.Argument(None, help="Fleet file (YAML): services with trace, profile or pipeline, SLO, settings.")
TRACE = opt.TRACE_OPTION  # Azure Functions 2019 day file(s): with --per-function or --synthetic
PER_FUNCTION = typer.Option(False, "--per-function", help="One service per function of --trace, all with --profile.")
SYNTHETIC = typer.Option(None, "--synthetic", help="A generated fleet of N services resampled from --trace (default: the bundled day).",
                         show_default="none")
SYNTHETIC_SEED = typer.Option(0, "--synthetic-seed", help="Seed of the generated fleet.")
TOP = opt.TOP_OPTION  # with --per-function
MIN_REQUESTS = typer.Option(0, "--min-requests", help="--per-function: skip functions with fewer requests over the trace.")
PROFILE = typer.Option(None, "--profile", help="Profile Parquet file(s): every service's model (shorthand fleets).", show_default="none")
PIPELINE = typer.Option(None, "--pipeline", help="Pipeline YAML: every service's stages (shorthand fleets).", show_default="none")
MODEL = opt.MODEL_OPTION
SLO = typer.Option(None, "--slo", help=opt.SLO_HELP, show_default="none: a fleet file's slo_ms per service")
NODE_MEMORY = typer.Option("64GiB", "--node-memory", help="Memory of a node, e.g. 64GiB or 65536MB (a bare number is MB).")
NODE_PRICE = typer.Option(defaults.DEFAULT_NODE_PRICE_PER_HOUR, "--node-price", help="Price of one node-hour.")
ENGINE = typer.Option("local", "--engine", help="local (a process pool) or ray (needs the ray extra).")
ADDRESS = typer.Option(None, "--address", help="--engine ray: the cluster to join.", show_default="RAY_ADDRESS, else a local Ray")
WORKERS = typer.Option(None, "--workers", help="Processes (local) or CPUs of a local Ray.", show_default="the CPUs available")
SHARD_SIZE = typer.Option(defaults.DEFAULT_SHARD_SERVICES, "--shard-size", help="Services per task.")
OUT_DIR = typer.Option(..., "--out-dir", help="Directory for the shard files and fleet tables.")
RESUME = typer.Option(False, "--resume", help="Keep the shards already in --out-dir and run only the missing ones.")
OVERWRITE = typer.Option(False, "--overwrite", help="Start again in an --out-dir that holds a fleet run.")
HTML = typer.Option(None, "--html", help="Also write the fleet report (HTML).", show_default="none")


@fleet_app.command("plan")
def plan(
    fleet: Path = FLEET_ARGUMENT, trace: list[Path] = TRACE, per_function: bool = PER_FUNCTION, synthetic: int = SYNTHETIC,
    synthetic_seed: int = SYNTHETIC_SEED, top: int = TOP, min_requests: int = MIN_REQUESTS, profile: list[Path] = PROFILE,
    pipeline: Path = PIPELINE, model: str = MODEL, slo: str = SLO,
    policy: str = typer.Option("themis", "--policy", help=f"Default policy of every service: {', '.join(PLANNED_POLICIES)}."),
    percentile: float = opt.PERCENTILE_OPTION, interval: str = opt.INTERVAL_OPTION, cold_start: str = opt.COLD_START_OPTION,
    resize_delay: str = opt.RESIZE_DELAY_OPTION, max_replicas: int = opt.MAX_REPLICAS_OPTION, node_cores: int = opt.NODE_CORES_OPTION,
    cores: str = opt.CORES_OPTION, batch_sizes: str = opt.BATCH_SIZES_OPTION, headroom: float = opt.HEADROOM_OPTION,
    forecast: str = opt.FORECAST_OPTION, price: str = opt.PRICE_OPTION, scale: float = opt.SCALE_OPTION, seed: int = opt.SEED_OPTION,
    node_memory: str = NODE_MEMORY, node_price: float = NODE_PRICE, engine: str = ENGINE, address: str = ADDRESS,
    workers: int = WORKERS, shard_size: int = SHARD_SIZE, out_dir: Path = OUT_DIR, resume: bool = RESUME,
    overwrite: bool = OVERWRITE, html: Path = HTML, as_json: bool = output.JSON_OPTION, out: Path = output.OUT_OPTION,
) -> None:
    """Plan every service of a fleet: per-service plans, fleet totals per interval, nodes per interval.

    [b]Examples[/b]

      themis fleet plan fleet.yaml --out-dir out/fleet
      themis fleet plan --trace d01.csv --per-function --min-requests 1000 --profile resnet18.parquet --slo 300ms --out-dir out/f
    """
    from themis.planner.fleet.plan import plan_fleet
    from themis.reports.fleet_tables import show_fleet_plan

    if policy not in PLANNED_POLICIES:
        raise InputError(f"unknown policy {policy!r}; use one of {', '.join(PLANNED_POLICIES)}", option="--policy")
    setup = _setup(locals())
    with fleet_progress(on_terminal=sys.stderr.isatty() and not as_json) as progress:
        try:
            result = plan_fleet(setup["fleet"], setup["node"], setup["settings"], setup["engine"], progress)
        finally:
            setup["engine"].close()
    if html is not None:
        from themis.reports.fleet_html import render_fleet_report

        render_fleet_report(html, plan=result)
        output.err_console.print(f"wrote {html}")
    output.render(result, as_json=as_json, out=out, show=lambda console: show_fleet_plan(result, console))


@fleet_app.command("compare")
def compare(
    fleet: Path = FLEET_ARGUMENT, trace: list[Path] = TRACE, per_function: bool = PER_FUNCTION, synthetic: int = SYNTHETIC,
    synthetic_seed: int = SYNTHETIC_SEED, top: int = TOP, min_requests: int = MIN_REQUESTS, profile: list[Path] = PROFILE,
    pipeline: Path = PIPELINE, model: str = MODEL, slo: str = SLO,
    policies: str = typer.Option(",".join(POLICIES), "--policies", help="Policies to run, comma-separated."),
    percentile: float = opt.PERCENTILE_OPTION, interval: str = opt.INTERVAL_OPTION, cold_start: str = opt.COLD_START_OPTION,
    resize_delay: str = opt.RESIZE_DELAY_OPTION, max_replicas: int = opt.MAX_REPLICAS_OPTION, node_cores: int = opt.NODE_CORES_OPTION,
    cores: str = opt.CORES_OPTION, batch_sizes: str = opt.BATCH_SIZES_OPTION, headroom: float = opt.HEADROOM_OPTION,
    forecast: str = opt.FORECAST_OPTION, price: str = opt.PRICE_OPTION, scale: float = opt.SCALE_OPTION, seed: int = opt.SEED_OPTION,
    node_memory: str = NODE_MEMORY, node_price: float = NODE_PRICE, engine: str = ENGINE, address: str = ADDRESS,
    workers: int = WORKERS, shard_size: int = SHARD_SIZE, out_dir: Path = OUT_DIR, resume: bool = RESUME,
    overwrite: bool = OVERWRITE, html: Path = HTML, as_json: bool = output.JSON_OPTION, out: Path = output.OUT_OPTION,
) -> None:
    """Run every service through every policy: per policy the fleet's core-hours, node-hours, cost, violation rates.

    [b]Example[/b]: themis fleet compare --trace d01.csv --per-function --top 50 --profile r18.parquet --slo 300ms --out-dir out/c
    """
    from themis.planner.fleet.compare import compare_fleet
    from themis.reports.fleet_tables import show_fleet_comparison

    names = [p.strip() for p in policies.split(",") if p.strip()]
    setup = _setup({**locals(), "policy": "themis"})
    with fleet_progress(on_terminal=sys.stderr.isatty() and not as_json) as progress:
        try:
            result = compare_fleet(setup["fleet"], names, setup["node"], setup["settings"], setup["engine"], seed=seed, progress=progress)
        finally:
            setup["engine"].close()
    if html is not None:
        from themis.reports.fleet_html import render_fleet_report

        render_fleet_report(html, comparison=result)
        output.err_console.print(f"wrote {html}")
    output.render(result, as_json=as_json, out=out, show=lambda console: show_fleet_comparison(result, console))


def _setup(given: dict[str, Any]) -> dict[str, Any]:
    """The fleet, node type, run settings and engine the shared options describe."""
    from themis.data import bundled_trace
    from themis.planner.fleet.engines import check_engine, make_engine
    from themis.planner.fleet.packing import NodeType
    from themis.planner.fleet.run import RunSettings
    from themis.planner.fleet.sources import fleet_from_options

    g = given
    workers = g["workers"] or len(os.sched_getaffinity(0))
    check_engine(g["engine"], workers=workers, address=g["address"])
    config = opt.plan_config(
        slo=g["slo"] or "1", percentile=g["percentile"], interval=g["interval"], cold_start=g["cold_start"],
        resize_delay=g["resize_delay"], max_replicas=g["max_replicas"], node_cores=g["node_cores"], cores=g["cores"],
        batch_sizes=g["batch_sizes"], headroom=g["headroom"], forecast=g["forecast"], price=g["price"],
    )
    # the node type: --node-cores, else themis.toml's, else the planner's default (as every plan reads it)
    node = NodeType(config.node_cores, parse_memory_mb(g["node_memory"], "--node-memory"), g["node_price"])
    if node.price_per_hour < 0:
        raise InputError("must not be negative", option="--node-price")
    base = {**dataclasses.asdict(config), "slo_ms": config.slo_ms if g["slo"] else None}
    fleet = fleet_from_options(
        fleet_file=g["fleet"], traces=[trace_file(path) for path in g["trace"] or []], per_function=g["per_function"], synthetic=g["synthetic"],
        synthetic_seed=g["synthetic_seed"], top=g["top"], min_requests=g["min_requests"], profiles=g["profile"] or [],
        pipeline=g["pipeline"], model=g["model"], base=base, policy=g["policy"], scale=g["scale"], seed=g["seed"],
        bundled_trace=bundled_trace("azure_functions_2019"),
    )
    if fleet.synthetic:
        output.err_console.print(f"note: {fleet.source}; every output says synthetic")
    settings = RunSettings(g["out_dir"], g["shard_size"], resume=g["resume"], overwrite=g["overwrite"])
    return {"fleet": fleet, "node": node, "settings": settings, "engine": make_engine(g["engine"], workers=workers, address=g["address"])}


_MB_PER_UNIT = {"": 1.0, "mb": 1.0, "mib": 1.0, "gb": 1024.0, "gib": 1024.0, "g": 1024.0, "m": 1.0, "tib": 1024.0**2, "tb": 1024.0**2}


def parse_memory_mb(text: str, option: str) -> float:
    """'64GiB', '65536MB' or a bare number (MB) -> MB (binary units: a GB is 1,024 MB here)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else None
    if not match or unit not in _MB_PER_UNIT or not float(match.group(1)) > 0:
        raise InputError(f"cannot read {text!r} as a memory size (e.g. 64GiB or 65536MB)", option=option)
    return float(match.group(1)) * _MB_PER_UNIT[unit]
