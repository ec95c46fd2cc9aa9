"""`themis check`: the CI capacity gate (exit 0 pass, 1 fail, 2 bad input)."""

from __future__ import annotations

from pathlib import Path

import typer

from themis.cli import llm_service as llm
from themis.cli import options as opt
from themis.cli import output
from themis.cli.options import parse_fraction
from themis.cli.service import load_traffic
from themis.cli.settings import load_settings
from themis.common.errors import InputError


def check(
    profile: list[Path] = typer.Option(..., "--profile", "-p", help="Profile table(s) of the model under test (Parquet)."),
    trace: list[Path] = typer.Option(None, "--trace", "-t", help="Traffic trace(s); or give --peak-rps."),
    peak_rps: float = typer.Option(None, "--peak-rps", help="Check a constant load of this many requests/s instead of a trace."),
    slo: str | None = opt.SLO_OPTION,
    percentile: float | None = opt.PERCENTILE_OPTION,
    model: str = typer.Option(None, "--model", help="Model to check when the profile holds several."),
    policy: str = typer.Option("themis", "--policy", help="Scaling policy to plan and simulate with."),
    interval: str | None = opt.INTERVAL_OPTION,
    cold_start: str | None = opt.COLD_START_OPTION,
    resize_delay: str | None = opt.RESIZE_DELAY_OPTION,
    warmup: str | None = opt.WARMUP_OPTION,
    node_cores: int | None = opt.NODE_CORES_OPTION,
    cores: str | None = opt.CORES_OPTION,
    batch_sizes: str | None = opt.BATCH_SIZES_OPTION,
    forecast: str | None = opt.FORECAST_OPTION,
    scale: float = opt.SCALE_OPTION,
    price: str | None = opt.PRICE_OPTION,
    max_replicas: int = typer.Option(None, "--max-replicas", help="Budget: most replicas at once."),
    max_cores: int = typer.Option(None, "--max-cores", help="Budget: most cores at once."),
    max_core_hours: float = typer.Option(None, "--max-core-hours", help="Budget: core-hours over the trace."),
    max_cost: float = typer.Option(None, "--max-cost", help="Budget: cost over the trace (needs --price)."),
    max_violation_rate: str = typer.Option(None, "--max-violation-rate", help="Budget: share of requests over the SLO (default 1 - percentile)."),
    max_cost_per_mtok: float = typer.Option(None, "--max-cost-per-mtok", help="Budget: cost per million tokens served (LLM services; needs --price)."),
    baseline: Path = typer.Option(None, "--baseline", help="Regression gate: the previous profile to compare with."),
    max_regression: str = typer.Option("10%", "--max-regression", help="Regression gate: fail when a cell is confidently (95% CI) slower by more than this."),
    metric: str = typer.Option("p50_ms", "--metric", help="Regression gate: the latency column compared."),
    capacity_gate: bool = typer.Option(True, "--capacity/--no-capacity", help="Run the capacity gate."),
    allow_unstable: bool = opt.ALLOW_UNSTABLE_OPTION,
    junit: Path = typer.Option(None, "--junit", help="Write the verdict as JUnit XML."),
    summary: Path = typer.Option(None, "--summary", help="Write the verdict as Markdown (CI job summary)."),
    kv_capacity_tokens: int = llm.KV_CAPACITY_OPTION,
    max_num_batched_tokens: int = llm.BATCHED_TOKENS_OPTION,
    mix_window: str = llm.MIX_WINDOW_OPTION,
    as_json: bool = output.JSON_OPTION,
    out: Path = output.OUT_OPTION,
) -> None:
    """Gate CI on capacity: plan + simulate within a budget, and/or compare with a baseline profile.

    [b]Examples[/b]

      themis check -p new.parquet -t azure.csv --slo 200ms --max-replicas 8 --junit junit.xml

      themis check -p new.parquet --baseline main.parquet --max-regression 10% -t azure.csv --slo 200ms --no-capacity
    """
    import pandas as pd

    from themis.planner.gates.check import CapacityBudget, run_check
    from themis.planner.model.trust import require_trusted
    from themis.planner.optimise.pipeline import stages_from_profiles
    from themis.profiler.table import read_profile
    from themis.reports.check_tables import show_verdict
    from themis.reports.junit import write_junit
    from themis.reports.markdown import write_markdown

    if not capacity_gate and baseline is None:
        raise InputError("nothing to check: --no-capacity needs --baseline", option="--no-capacity")
    budget = CapacityBudget(
        max_replicas=max_replicas,
        max_cores=max_cores,
        max_core_hours=max_core_hours,
        max_cost=max_cost,
        max_violation_rate=parse_fraction(max_violation_rate, "--max-violation-rate") if max_violation_rate else None,
        max_cost_per_mtok=max_cost_per_mtok,
    )
    settings = load_settings()
    if llm.is_llm_service(slo or settings.get("slo"), profile):
        verdict = llm.llm_verdict(
            profile, trace, budget, settings=settings, slo=slo, percentile=percentile, model=model, policy=policy, interval=interval,
            cold_start=cold_start, cores=cores, node_cores=node_cores, forecast=forecast, scale=scale, price=price,
            kv_capacity_tokens=kv_capacity_tokens, max_num_batched_tokens=max_num_batched_tokens, mix_window=mix_window,
            regression=baseline is not None or not capacity_gate, peak_rps=peak_rps,
        )
        for path, write in ((junit, write_junit), (summary, write_markdown)):
            if path is not None:
                write(verdict, path)
        output.render(verdict, as_json=as_json, out=out, show=lambda console: show_verdict(console, verdict), exit_code=verdict.exit_code)
        return
    if max_cost_per_mtok is not None:
        raise InputError("applies to LLM services (a trace with tokens and an LLM profile)", option="--max-cost-per-mtok")
    config = opt.plan_config(
        slo=slo, percentile=percentile, interval=interval, cold_start=cold_start, resize_delay=resize_delay, warmup=warmup,
        node_cores=node_cores, cores=cores, batch_sizes=batch_sizes, forecast=forecast, price=price,
    )
    load = load_traffic(trace, peak_rps=peak_rps, scale=scale, interval_s=config.interval_s)
    stages = stages_from_profiles(profile, model)
    if capacity_gate:  # the regression gate leaves untrusted cells out instead (or judges them with --allow-unstable)
        require_trusted(stages, allow_unstable)
    regression = None
    if baseline is not None:
        current = pd.concat([read_profile(p) for p in profile], ignore_index=True)
        regression = (read_profile(baseline), current, parse_fraction(max_regression, "--max-regression"), metric)
    verdict = run_check(
        capacity=(load, stages, budget) if capacity_gate else None,
        regression=regression,
        config=config,
        trace=load,
        policy=policy,
        allow_unstable=allow_unstable,
        context={"trace": load.name, "slo_ms": config.slo_ms, "percentile": percentile, "policy": policy, "warmup_s": config.warmup_s,
                 "profile": ", ".join(map(str, profile)), "baseline": str(baseline) if baseline else None},
    )
    if junit is not None:
        write_junit(verdict, junit)
    if summary is not None:
        write_markdown(verdict, summary)
    output.render(verdict, as_json=as_json, out=out, show=lambda console: show_verdict(console, verdict), exit_code=verdict.exit_code)
