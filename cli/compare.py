"""`themis compare`: every policy through the simulator on one trace, in one table."""

from __future__ import annotations

from pathlib import Path

import typer

from themis.cli import output
from themis.cli.options import parse_duration_ms, parse_duration_s
from themis.cli.service import load_traffic
from themis.planner.choices import POLICIES
from themis.planner.errors import PlanInputError


def compare(
    trace: Path = typer.Option(..., "--trace", help="Trace file (Azure LLM / Functions, request log, rate series)."),
    profile: list[Path] = typer.Option(..., "--profile", help="Profile Parquet file(s) of the models."),
    slo: str = typer.Option(..., "--slo", help="Latency SLO, e.g. 200ms."),
    stages: str = typer.Option(None, "--stages", help="Pipeline models in order, comma-separated (default: the one model profiled)."),
    cold_start: str = typer.Option("30s", "--cold-start", help="Time for a new replica to become ready."),
    resize_delay: str = typer.Option("1s", "--resize-delay", help="Time for an in-place resize to take effect."),
    interval: str = typer.Option("60s", "--interval", help="Planning interval."),
    scale: float = typer.Option(1.0, "--scale", help="Multiply the trace's load by this factor."),
    policies: str = typer.Option(",".join(POLICIES), "--policies", help="Policies to run, comma-separated."),
    max_replicas: int = typer.Option(64, "--max-replicas", help="Most replicas per stage."),
    max_cores: int = typer.Option(None, "--max-cores-per-replica", help="Node size (default: this machine's cores)."),
    price: float = typer.Option(0.0, "--price-per-core-hour", help="Money per core-hour, for the cost column."),
    hpa_target: float = typer.Option(0.6, "--hpa-target", help="hpa: target CPU utilisation (0-1)."),
    service: str = typer.Option("median", "--service", help="Service times: median, or sampled from measured percentiles."),
    seed: int = typer.Option(0, "--seed", help="Seed for synthesised arrivals and sampled service times."),
    function: str = typer.Option(None, "--function", help="Azure Functions: one function's traffic."),
    top: int = typer.Option(None, "--top", help="Azure Functions: the N busiest functions (default: the sum of all)."),
    as_json: bool = output.JSON_OPTION,
    out: Path = output.OUT_OPTION,
) -> None:
    """Simulate themis, horizontal, vertical, hpa, static and oracle on the same requests.

    [b]Example[/b]

      themis compare --trace azure_llm.csv --profile resnet18.parquet --slo 200ms --cold-start 30s --scale 4
    """
    from themis.planner.compare import compare as run_compare
    from themis.planner.pipeline import stages_from_profiles
    from themis.planner.plan import PlanConfig
    from themis.planner.policies.hpa import HpaConfig
    from themis.reports.compare_tables import show_comparison

    names = tuple(p.strip() for p in policies.split(",") if p.strip())
    the_trace = load_traffic([trace], scale=scale, seed=seed, function=function, top=top)
    the_stages = stages_from_profiles(profile, pipeline=[s.strip() for s in stages.split(",")] if stages else None)
    config = PlanConfig(
        slo_ms=parse_duration_ms(slo, "--slo"),
        cold_start_s=parse_duration_s(cold_start, "--cold-start"),
        resize_s=parse_duration_s(resize_delay, "--resize-delay"),
        interval_s=parse_duration_s(interval, "--interval"),
        max_replicas=max_replicas,
        price_per_core_hour=price,
        **({"max_cores_per_replica": max_cores} if max_cores else {}),
    )
    if not 0 < hpa_target <= 1:
        raise PlanInputError("must be in (0, 1]", option="--hpa-target")
    hpa = HpaConfig(target_utilisation=hpa_target, max_replicas=max_replicas)
    result = run_compare(the_trace, the_stages, config, names, seed=seed, service=service, hpa=hpa)
    output.render(result, as_json=as_json, out=out, show=lambda console: show_comparison(result, console))
