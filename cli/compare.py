"""`themis compare`: every policy through the simulator on one trace, in one table (an LLM
service through the continuous-batching simulator: `themis.planner.llm.compare`)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from themis.cli import llm_service as llm
from themis.cli import options as opt
from themis.cli import output
from themis.cli.progress import heartbeat
from themis.cli.service import load_service, load_traffic
from themis.cli.settings import load_settings
from themis.common.atomic import require_writable
from themis.common.errors import InputError
from themis.planner.choices import POLICIES
from themis.planner.model import config as defaults


def compare(
    trace: list[Path] = opt.TRACE_OPTION,
    format: str = opt.FORMAT_OPTION,
    time_column: str = opt.TIME_COLUMN_OPTION,
    app: str = opt.APP_OPTION,
    function: str = opt.FUNCTION_OPTION,
    top: int = opt.TOP_OPTION,
    scale: float = opt.SCALE_OPTION,
    profile: list[Path] = opt.PROFILES_OPTION,
    slo: str | None = opt.SLO_OPTION,
    stages: str = typer.Option(None, "--stages", help="Pipeline models in order, comma-separated (default: the one model profiled).", show_default="the one model profiled"),
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
    hpa_target: float = typer.Option(
        None, "--hpa-target", help="hpa: target CPU utilisation (0-1); for an LLM service, requests waiting per replica.",
        show_default=f"{defaults.DEFAULT_HPA_TARGET:g}; LLM: {defaults.DEFAULT_LLM_HPA_WAITING_PER_REPLICA:g}",
    ),
    hpa_behavior: Path = typer.Option(
        None, "--hpa-behavior", help="hpa: a Kubernetes autoscaling/v2 `behavior` stanza (YAML; an HPA manifest will do).",
        show_default="Kubernetes' default behavior",
    ),
    service: str = typer.Option("median", "--service", help="Service times: median, or sampled from measured percentiles."),
    seed: int = opt.SEED_OPTION,
    allow_unstable: bool = opt.ALLOW_UNSTABLE_OPTION,
    model: str = opt.MODEL_OPTION,
    kv_capacity_tokens: int = llm.KV_CAPACITY_OPTION,
    max_num_batched_tokens: int = llm.BATCHED_TOKENS_OPTION,
    mix_window: str = llm.MIX_WINDOW_OPTION,
    as_json: bool = output.JSON_OPTION,
    out: Path = output.OUT_OPTION,
) -> None:
    """Simulate themis, horizontal, vertical, hpa, static and oracle on the same requests.

    [b]Example[/b]

      themis compare --trace azure_llm.csv --profile resnet18.parquet --slo 200ms --cold-start 30s --scale 4
      themis compare --trace azure_llm.csv --profile tiny_llm.parquet --slo ttft=8s,tpot=200ms   # an LLM service
    """
    from themis.planner.gates.compare import compare as run_compare
    from themis.planner.simulation.controllers.hpa import HpaConfig
    from themis.planner.simulation.controllers.hpa_behavior import load_hpa_behavior
    from themis.reports.compare_tables import show_comparison

    names = tuple(p.strip() for p in policies.split(",") if p.strip())
    if not names:
        raise InputError(f"names no policy ({policies!r}); give some of {', '.join(POLICIES)}", option="--policies")
    require_writable(out, "--out")
    settings = load_settings()
    if llm.is_llm_service(slo or settings.get("slo"), profile):
        from themis.planner.llm.compare import LLM_COMPARE_POLICIES, compare_llm
        from themis.reports.llm_tables import show_llm_comparison

        the_trace = load_traffic(trace, scale=scale, seed=seed, function=function, top=top, app=app, format=format, time_column=time_column)
        config = llm.llm_plan_config(slo=slo, percentile=percentile, interval=interval, cold_start=cold_start, max_replicas=max_replicas,
                                     headroom=headroom, forecast=forecast, price=price, mix_window=mix_window, seed=seed, settings=settings)
        types = llm.load_replica_types(profile, model=model, kv_capacity_tokens=kv_capacity_tokens,
                                       max_num_batched_tokens=max_num_batched_tokens, cores=cores, node_cores=node_cores)
        chosen = names if policies != ",".join(POLICIES) else LLM_COMPARE_POLICIES
        with heartbeat("compare", on_terminal=sys.stderr.isatty()) as beat:
            beat.step(f"simulating {len(chosen)} policies on {the_trace.requests:,} requests")
            result = compare_llm(the_trace, types, config, chosen,
                                 hpa_target_waiting=hpa_target or defaults.DEFAULT_LLM_HPA_WAITING_PER_REPLICA)
        data = result.to_dict()
        output.render(result, as_json=as_json, out=out, show=lambda console: show_llm_comparison(data, console))
        return
    hpa_target = defaults.DEFAULT_HPA_TARGET if hpa_target is None else hpa_target
    if not 0 < hpa_target <= 1:
        raise InputError("must be in (0, 1]", option="--hpa-target")
    config = opt.plan_config(
        slo=slo, percentile=percentile, interval=interval, cold_start=cold_start, resize_delay=resize_delay, warmup=warmup,
        max_replicas=max_replicas, node_cores=node_cores, cores=cores, batch_sizes=batch_sizes,
        headroom=headroom, forecast=forecast, price=price, settings=settings,
    )
    the_stages = load_service(profile, stages=[s.strip() for s in stages.split(",")] if stages else None, settings=settings, allow_unstable=allow_unstable)
    the_trace = load_traffic(trace, scale=scale, seed=seed, function=function, top=top, app=app, format=format, time_column=time_column)
    behavior = load_hpa_behavior(hpa_behavior) if hpa_behavior is not None else None
    hpa = HpaConfig(target_utilisation=hpa_target, max_replicas=config.max_replicas, behavior=behavior)
    with heartbeat("compare", on_terminal=sys.stderr.isatty()) as beat:
        beat.step(f"planning and simulating {len(names)} policies on {the_trace.requests:,} requests")
        result = run_compare(the_trace, the_stages, config, names, seed=seed, service=service, hpa=hpa)
    output.render(result, as_json=as_json, out=out, show=lambda console: show_comparison(result, console))
