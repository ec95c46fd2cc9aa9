"""`themis compare`: every policy through the simulator on one trace, in one table."""

from __future__ import annotations

from pathlib import Path

import typer

from themis.cli import options as opt
from themis.cli import output
from themis.cli.service import load_traffic
from themis.planner.choices import POLICIES
from themis.planner.errors import PlanInputError


def compare(
    trace: list[Path] = typer.Option(..., "--trace", help="Trace file(s) (Azure LLM / Functions, request log, rate series)."),
    profile: list[Path] = typer.Option(..., "--profile", help="Profile Parquet file(s) of the models."),
    slo: str = opt.SLO_OPTION,
    stages: str = typer.Option(None, "--stages", help="Pipeline models in order, comma-separated (default: the one model profiled)."),
    policies: str = typer.Option(",".join(POLICIES), "--policies", help="Policies to run, comma-separated."),
    percentile: float = opt.PERCENTILE_OPTION,
    interval: str = opt.INTERVAL_OPTION,
    cold_start: str = opt.COLD_START_OPTION,
    resize_delay: str = opt.RESIZE_DELAY_OPTION,
    max_replicas: int = opt.MAX_REPLICAS_OPTION,
    max_cores: int = opt.NODE_CORES_OPTION,
    cores: str = opt.CORES_OPTION,
    batch_sizes: str = opt.BATCH_SIZES_OPTION,
    headroom: float = opt.HEADROOM_OPTION,
    forecast: str = opt.FORECAST_OPTION,
    price: str = opt.PRICE_OPTION,
    hpa_target: float = typer.Option(0.6, "--hpa-target", help="hpa: target CPU utilisation (0-1)."),
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
    from themis.planner.compare import compare as run_compare
    from themis.planner.pipeline import stages_from_profiles
    from themis.planner.policies.hpa import HpaConfig
    from themis.planner.trust import require_trusted
    from themis.reports.compare_tables import show_comparison

    if not 0 < hpa_target <= 1:
        raise PlanInputError("must be in (0, 1]", option="--hpa-target")
    names = tuple(p.strip() for p in policies.split(",") if p.strip())
    config = opt.plan_config(
        slo=slo, percentile=percentile, interval=interval, cold_start=cold_start, resize_delay=resize_delay,
        max_replicas=max_replicas, max_cores_per_replica=max_cores, cores=cores, batch_sizes=batch_sizes,
        headroom=headroom, forecast=forecast, price=price,
    )
    the_trace = load_traffic(trace, scale=scale, seed=seed, function=function, top=top)
    the_stages = stages_from_profiles(profile, pipeline=[s.strip() for s in stages.split(",")] if stages else None)
    require_trusted(the_stages, allow_unstable)
    hpa = HpaConfig(target_utilisation=hpa_target, max_replicas=max_replicas)
    result = run_compare(the_trace, the_stages, config, names, seed=seed, service=service, hpa=hpa)
    output.render(result, as_json=as_json, out=out, show=lambda console: show_comparison(result, console))
