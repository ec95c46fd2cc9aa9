"""`themis plan`: forecast the trace, run the DP, print or export the schedule (or, for an LLM
service, the replicas per replica type: `themis.planner.llm.plan`)."""

from __future__ import annotations

from pathlib import Path

import typer

from themis.cli import llm_service as llm
from themis.cli import options as opt
from themis.cli import output
from themis.cli.service import fingerprint, load_service, load_traffic
from themis.cli.settings import load_settings
from themis.common.atomic import require_writable
from themis.common.errors import InputError
from themis.planner.choices import PLANNED_POLICIES as POLICIES


def plan(
    trace: list[Path] = opt.TRACE_OPTION,
    format: str = opt.FORMAT_OPTION,
    time_column: str = opt.TIME_COLUMN_OPTION,
    app: str = opt.APP_OPTION,
    function: str = opt.FUNCTION_OPTION,
    top: int = opt.TOP_OPTION,
    scale: float = opt.SCALE_OPTION,
    slo: str | None = opt.SLO_OPTION,
    profile: list[Path] = opt.PROFILES_OPTION,
    pipeline: Path = typer.Option(None, "--pipeline", help="Pipeline YAML: stages with model, profiles, visit ratio (see examples/).", show_default="none"),
    model: str = opt.MODEL_OPTION,
    policy: str = typer.Option("themis", "--policy", help=f"One of {', '.join(POLICIES)}."),
    percentile: float | None = opt.PERCENTILE_OPTION,
    interval: str | None = opt.INTERVAL_OPTION,
    cold_start: str | None = opt.COLD_START_OPTION,
    resize_delay: str | None = opt.RESIZE_DELAY_OPTION,
    max_replicas: int | None = opt.MAX_REPLICAS_OPTION,
    node_cores: int | None = opt.NODE_CORES_OPTION,
    cores: str | None = opt.CORES_OPTION,
    batch_sizes: str | None = opt.BATCH_SIZES_OPTION,
    headroom: float | None = opt.HEADROOM_OPTION,
    forecast: str | None = opt.FORECAST_OPTION,
    price: str | None = opt.PRICE_OPTION,
    seed: int = opt.SEED_OPTION,
    allow_unstable: bool = opt.ALLOW_UNSTABLE_OPTION,
    explain: bool = typer.Option(False, "--explain", help="Also report the latency-model fit (held-out error, extrapolated cores)."),
    k8s: Path = typer.Option(None, "--k8s", help="Write Kubernetes objects (Deployment, KEDA ScaledObject, resize CronJob) to DIR.", show_default="none"),
    kv_capacity_tokens: int = llm.KV_CAPACITY_OPTION,
    max_num_batched_tokens: int = llm.BATCHED_TOKENS_OPTION,
    mix_window: str = llm.MIX_WINDOW_OPTION,
    as_json: bool = output.JSON_OPTION,
    out: Path = output.OUT_OPTION,
) -> None:
    """Plan replicas, cores per replica and batch size per interval so the SLO holds at the lowest cost.

    With no --profile or --pipeline it plans with the newest profiles `themis profile` stored
    in profiles/; the SLO and other shared settings may come from themis.toml (`themis init`).

    Exit 0 with a plan, 1 when the SLO is out of reach (naming the best reachable latency), 2 on bad input.

    [b]Examples[/b]

      themis plan --trace azure_llm.csv                  # stored profile, themis.toml settings
      themis plan --trace azure_llm.csv --profile resnet18.parquet --slo 400ms --node-cores 16
      themis plan --trace azure_llm.csv --pipeline examples/pipeline.yaml --slo 1s --policy oracle --json
      themis plan --trace azure_llm.csv --profile resnet18.parquet --slo 400ms --k8s manifests/ --out plan.json
      themis plan --trace azure_llm.csv --profile tiny_llm.parquet --slo ttft=8s,tpot=200ms   # an LLM service
    """
    from themis.planner.optimise.plan import plan as run_plan
    from themis.reports.plan_tables import show_plan

    require_writable(out, "--out")
    settings = load_settings()
    if llm.is_llm_service(slo or settings.get("slo"), profile):
        if k8s is not None or pipeline is not None:
            raise InputError("not available for an LLM service yet", option="--k8s" if k8s is not None else "--pipeline")
        from themis.planner.llm.plan import plan_llm
        from themis.reports.llm_tables import show_llm_plan

        the_trace = load_traffic(trace, scale=scale, seed=seed, function=function, top=top, app=app, format=format, time_column=time_column)
        config = llm.llm_plan_config(slo=slo, percentile=percentile, interval=interval, cold_start=cold_start, max_replicas=max_replicas,
                                     headroom=headroom, forecast=forecast, price=price, mix_window=mix_window, seed=seed, settings=settings)
        types = llm.load_replica_types(profile, model=model, kv_capacity_tokens=kv_capacity_tokens,
                                       max_num_batched_tokens=max_num_batched_tokens, cores=cores, node_cores=node_cores)
        result = plan_llm(the_trace, types, config, policy)
        data = result.to_dict()
        output.render(result, as_json=as_json, out=out, show=lambda console: show_llm_plan(data, console), exit_code=result.exit_code)
        return
    config = opt.plan_config(
        slo=slo, percentile=percentile, interval=interval, cold_start=cold_start, resize_delay=resize_delay,
        max_replicas=max_replicas, node_cores=node_cores, cores=cores, batch_sizes=batch_sizes,
        headroom=headroom, forecast=forecast, price=price, settings=settings,
    )
    stages = load_service(profile, pipeline=pipeline, model=model, settings=settings, allow_unstable=allow_unstable)
    the_trace = load_traffic(trace, scale=scale, seed=seed, function=function, top=top, app=app, format=format, time_column=time_column)
    result = run_plan(the_trace, stages, config, policy, explain=explain)
    result.schedule.trace_fingerprint = fingerprint(the_trace)
    data = result.to_dict()
    if k8s is not None:
        from themis.reports.k8s import write_manifests

        written = write_manifests(data, k8s)
        output.err_console.print(f"wrote {len(written)} Kubernetes files to {k8s}")
    output.render(result, as_json=as_json, out=out, show=lambda console: show_plan(data, console), exit_code=result.exit_code)
