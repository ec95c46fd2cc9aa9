"""`themis compare`: every policy through the simulator on one trace, in one table."""

from __future__ import annotations

from pathlib import Path

import typer

from themis.cli import options as opt
from themis.cli import output
from themis.cli.service import load_service, load_traffic
from themis.cli.settings import load_settings
from themis.planner.choices import POLICIES
from themis.planner.model import config as defaults


def compare(
    trace: list[Path] = typer.Option(..., "--trace", help="Trace file(s) (Azure LLM / Functions, request log, rate series)."),
    profile: list[Path] = typer.Option(None, "--profile", help="Profile Parquet file(s) of the models.", show_default="the newest in profiles/"),
    slo: str | None = opt.SLO_OPTION,
    stages: str = typer.Option(None, "--stages", help="Pipeline models in order, comma-separated (default: the one model profiled)."),
    policies: str = typer.Option(",".join(POLICIES), "--policies", help="Policies to run, comma-separated."),
    percentile: float | None = opt.PERCENTILE_OPTION,
    interval: str | None = opt.INTERVAL_OPTION,
    cold_start: str | None = opt.COLD_START_OPTION,
    resize_delay: str | None = opt.RESIZE_DELAY_OPTION,
    warmup: str | None = opt.WARMUP_OPTION,
    max_replicas: int | None = opt.MAX_REPLICAS_OPTION,
    node_cores: int | None = opt.NODE_CORES_OPTION,
    cores: str | None = opt.CORES_OPTION,
    batch_sizes: str | None = opt.BATCH_SIZES_OPTION,
    headroom: float | None = opt.HEADROOM_OPTION,
    forecast: str | None = opt.FORECAST_OPTION,
    price: str | None = opt.PRICE_OPTION,
    hpa_target: float = typer.Option(defaults.DEFAULT_HPA_TARGET, "--hpa-target", help="hpa: target CPU utilisation (0-1)."),
    hpa_behavior: Path = typer.Option(
        None, "--hpa-behavior", help="hpa: a Kubernetes autoscaling/v2 `behavior` stanza (YAML; an HPA manifest will do)."
    ),
    service: str = typer.Option("median", "--service", help="Service times: median, or sampled from measured percentiles."),
    scale: float = opt.SCALE_OPTION,
    seed: int = opt.SEED_OPTION,
    function: str = opt.FUNCTION_OPTION,
    top: int = opt.TOP_OPTION,
    allow_unstable: bool = opt.ALLOW_UNSTABLE_OPTION,
    as_json: bool = output.JSON_OPTION,
    out: Path = output.OUT_OPTION,
) -> None:
    """Simulate themis, horizontal, vertical, hpa, static and oracle on the same requests.

    [b]Example[/b]

      themis compare --trace azure_llm.csv --profile resnet18.parquet --slo 200ms --cold-start 30s --scale 4
    """
    from themis.planner.gates.compare import compare as run_compare
    from themis.planner.simulation.controllers.hpa import HpaConfig
    from themis.planner.simulation.controllers.hpa_behavior import load_hpa_behavior
    from themis.reports.compare_tables import show_comparison

    names = tuple(p.strip() for p in policies.split(",") if p.strip())
    settings = load_settings()
    config = opt.plan_config(
        slo=slo, percentile=percentile, interval=interval, cold_start=cold_start, resize_delay=resize_delay, warmup=warmup,
        max_replicas=max_replicas, node_cores=node_cores, cores=cores, batch_sizes=batch_sizes,
        headroom=headroom, forecast=forecast, price=price, settings=settings,
    )
    the_stages = load_service(profile, stages=[s.strip() for s in stages.split(",")] if stages else None, settings=settings, allow_unstable=allow_unstable)
    the_trace = load_traffic(trace, scale=scale, seed=seed, function=function, top=top)
    behavior = load_hpa_behavior(hpa_behavior) if hpa_behavior is not None else None
    hpa = HpaConfig(target_utilisation=hpa_target, max_replicas=config.max_replicas, behavior=behavior)
    result = run_compare(the_trace, the_stages, config, names, seed=seed, service=service, hpa=hpa)
    output.render(result, as_json=as_json, out=out, show=lambda console: show_comparison(result, console))
