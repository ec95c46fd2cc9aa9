"""`themis plan`: forecast the trace, run the DP, print or export the schedule."""

from __future__ import annotations

from pathlib import Path

import typer

from themis.cli import output
from themis.cli.options import parse_duration_ms, parse_duration_s, parse_int_list, parse_prices
from themis.cli.service import load_traffic
from themis.planner.errors import PlanInputError

POLICIES = ("themis", "horizontal", "vertical", "static", "oracle")  # = themis.planner.plan.POLICIES (tested)


def plan(
    trace: list[Path] = typer.Option(..., "--trace", help="Trace file(s); several Azure Functions 2019 day files form one timeline."),
    slo: str = typer.Option(..., "--slo", help="End-to-end latency SLO, e.g. 200ms or 0.5s (a bare number is ms)."),
    profile: list[Path] = typer.Option(None, "--profile", help="Profile Parquet file(s) of a one-stage service; several merge (devices)."),
    pipeline: Path = typer.Option(None, "--pipeline", help="Pipeline YAML: stages with model, profiles, visit ratio (see examples/)."),
    model: str = typer.Option(None, "--model", help="The model to plan when the profiles hold several."),
    policy: str = typer.Option("themis", "--policy", help=f"One of {', '.join(POLICIES)}."),
    percentile: float = typer.Option(99.0, "--percentile", help="The SLO percentile."),
    interval: str = typer.Option("60s", "--interval", help="Planning interval."),
    cold_start: str = typer.Option("30s", "--cold-start", help="Time for a new replica to serve."),
    resize_delay: str = typer.Option("1s", "--resize-delay", help="Time for an in-place resize to take effect."),
    max_replicas: int = typer.Option(64, "--max-replicas", help="Most replicas per stage."),
    max_cores: int = typer.Option(None, "--max-cores-per-replica", help="Node size: most cores per replica (default: this machine's)."),
    cores: str = typer.Option("1,2,4,8,16", "--cores", help="Allowed cores per replica (those above the node size are dropped)."),
    batch_sizes: str = typer.Option("1,2,4,8,16,32", "--batch-sizes", help="Allowed batch sizes."),
    headroom: float = typer.Option(1.0, "--headroom", help="Plan for forecast x headroom (>= 1)."),
    forecast: str = typer.Option("auto", "--forecast", help="Forecast method: last, moving_max, ewma, seasonal_naive, holt_winters, lstm, auto."),
    price: str = typer.Option(None, "--price", help="Prices: cpu=PER_CORE_HOUR,GPU_NAME=PER_GPU_HOUR (e.g. cpu=0.05,a100=2.5)."),
    scale: float = typer.Option(1.0, "--scale", help="Multiply the trace's volume by this factor."),
    seed: int = typer.Option(0, "--seed", help="Seed for arrivals synthesised by --scale."),
    function: str = typer.Option(None, "--function", help="Azure Functions: one function's traffic."),
    top: int = typer.Option(None, "--top", help="Azure Functions: the N busiest functions."),
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
    from themis.planner.plan import PlanConfig
    from themis.planner.plan import plan as run_plan
    from themis.reports.plan_tables import show_plan

    if (pipeline is None) == (not profile):
        raise PlanInputError("give either --profile or --pipeline", option="--profile")
    stages = load_pipeline(pipeline) if pipeline is not None else stages_from_profiles(profile, model)
    the_trace = load_traffic(trace, scale=scale, seed=seed, function=function, top=top)
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
        **({"max_cores_per_replica": max_cores} if max_cores is not None else {}),
    )
    result = run_plan(the_trace, stages, config, policy, explain=explain)
    data = result.to_dict()
    if k8s is not None:
        from themis.reports.k8s import write_manifests

        written = write_manifests(data, k8s)
        output.err_console.print(f"wrote {len(written)} Kubernetes files to {k8s}")
    output.render(result, as_json=as_json, out=out, show=lambda console: show_plan(data, console), exit_code=result.exit_code)
