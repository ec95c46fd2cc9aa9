"""`themis plan`: forecast the trace, run the DP, print or export the schedule."""

from __future__ import annotations

from pathlib import Path

import typer

from themis.cli import options as opt
from themis.cli import output
from themis.cli.service import load_traffic
from themis.planner.choices import PLANNED_POLICIES as POLICIES
from themis.planner.errors import PlanInputError


def plan(
    trace: list[Path] = typer.Option(..., "--trace", help="Trace file(s); several Azure Functions 2019 day files form one timeline."),
    slo: str = opt.SLO_OPTION,
    profile: list[Path] = typer.Option(None, "--profile", help="Profile Parquet file(s) of a one-stage service; several merge (devices)."),
    pipeline: Path = typer.Option(None, "--pipeline", help="Pipeline YAML: stages with model, profiles, visit ratio (see examples/)."),
    model: str = typer.Option(None, "--model", help="The model to plan when the profiles hold several."),
    policy: str = typer.Option("themis", "--policy", help=f"One of {', '.join(POLICIES)}."),
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
    scale: float = opt.SCALE_OPTION,
    seed: int = opt.SEED_OPTION,
    function: str = opt.FUNCTION_OPTION,
    top: int = opt.TOP_OPTION,
    allow_unstable: bool = opt.ALLOW_UNSTABLE_OPTION,
    explain: bool = typer.Option(False, "--explain", help="Also report the latency-model fit (held-out error, extrapolated cores)."),
    k8s: Path = typer.Option(None, "--k8s", help="Write Kubernetes manifests (Deployment, KEDA ScaledObject, resize patches) to DIR."),
    as_json: bool = output.JSON_OPTION,
    out: Path = output.OUT_OPTION,
) -> None:
    """Plan replicas, cores per replica and batch size per interval so the SLO holds at the lowest cost.

    Exit 0 with a plan, 1 when the SLO is out of reach (naming the best reachable latency), 2 on bad input.

    [b]Examples[/b]

      themis plan --trace azure_llm.csv --profile resnet18.parquet --slo 400ms --max-cores-per-replica 16
      themis plan --trace azure_llm.csv --pipeline examples/pipeline.yaml --slo 1s --policy oracle --json
      themis plan --trace azure_llm.csv --profile resnet18.parquet --slo 400ms --k8s manifests/ --out plan.json
    """
    from themis.planner.pipeline import load_pipeline, stages_from_profiles
    from themis.planner.plan import plan as run_plan
    from themis.planner.trust import require_trusted
    from themis.reports.plan_tables import show_plan

    if (pipeline is None) == (not profile):
        raise PlanInputError("give either --profile or --pipeline", option="--profile")
    stages = load_pipeline(pipeline) if pipeline is not None else stages_from_profiles(profile, model)
    require_trusted(stages, allow_unstable)
    the_trace = load_traffic(trace, scale=scale, seed=seed, function=function, top=top)
    config = opt.plan_config(
        slo=slo, percentile=percentile, interval=interval, cold_start=cold_start, resize_delay=resize_delay,
        max_replicas=max_replicas, max_cores_per_replica=max_cores, cores=cores, batch_sizes=batch_sizes,
        headroom=headroom, forecast=forecast, price=price,
    )
    result = run_plan(the_trace, stages, config, policy, explain=explain)
    data = result.to_dict()
    if k8s is not None:
        from themis.reports.k8s import write_manifests

        written = write_manifests(data, k8s)
        output.err_console.print(f"wrote {len(written)} Kubernetes files to {k8s}")
    output.render(result, as_json=as_json, out=out, show=lambda console: show_plan(data, console), exit_code=result.exit_code)
