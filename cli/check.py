"""`themis check`: the CI capacity gate (exit 0 pass, 1 fail, 2 bad input)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from themis.cli import llm_service as llm
from themis.cli import options as opt
from themis.cli import output
from themis.cli.options import parse_fraction, parse_prices
from themis.cli.progress import heartbeat
from themis.cli.service import load_service, load_traffic, require_usable_profiles, resolve_profiles
from themis.cli.settings import load_settings
from themis.common.atomic import require_writable
from themis.common.errors import InputError

if TYPE_CHECKING:
    from themis.planner.gates.verdict import Verdict


def check(
    profile: list[Path] = opt.PROFILES_OPTION,
    trace: list[Path] = opt.TRACE_OPTION,
    format: str = opt.FORMAT_OPTION,
    time_column: str = opt.TIME_COLUMN_OPTION,
    app: str = opt.APP_OPTION,
    function: str = opt.FUNCTION_OPTION,
    top: int = opt.TOP_OPTION,
    scale: float = opt.SCALE_OPTION,
    peak_rps: float = typer.Option(None, "--peak-rps", help="Check a constant load of this many requests/s instead of a trace.",
                                   show_default="none: a trace"),
    slo: str | None = opt.SLO_OPTION,
    percentile: float | None = opt.PERCENTILE_OPTION,
    model: str = opt.MODEL_OPTION,
    policy: str = typer.Option("themis", "--policy", help="Scaling policy to plan and simulate with."),
    interval: str | None = opt.INTERVAL_OPTION,
    cold_start: str | None = opt.COLD_START_OPTION,
    resize_delay: str | None = opt.RESIZE_DELAY_OPTION,
    warmup: str | None = opt.WARMUP_OPTION,
    node_cores: int | None = opt.NODE_CORES_OPTION,
    cores: str | None = opt.CORES_OPTION,
    batch_sizes: str | None = opt.BATCH_SIZES_OPTION,
    forecast: str | None = opt.FORECAST_OPTION,
    price: str | None = opt.PRICE_OPTION,
    budget_replicas: int = typer.Option(None, "--budget-replicas", help="Budget: most replicas at once, all stages.", show_default="none"),
    budget_cores: int = typer.Option(None, "--budget-cores", help="Budget: most cores at once, all stages.", show_default="none"),
    budget_core_hours: float = typer.Option(None, "--budget-core-hours", help="Budget: core-hours over the trace.", show_default="none"),
    budget_cost: float = typer.Option(
        None, "--budget-cost", help="Budget: cost over the trace, in the currency units of --price (needs --price).", show_default="none"
    ),
    budget_violation_rate: str = typer.Option(
        None, "--budget-violation-rate", help="Budget: share of requests over the SLO, e.g. 1% or 0.01.", show_default="1 - percentile"
    ),
    budget_cost_per_mtok: float = typer.Option(
        None, "--budget-cost-per-mtok", help="Budget: cost per million tokens served, in the currency units of --price (LLM services).",
        show_default="none",
    ),
    baseline: Path = typer.Option(None, "--baseline", help="Regression gate: the previous profile to compare with.", show_default="none"),
    max_regression: str = typer.Option("10%", "--max-regression", help="Regression gate: fail when a cell is confidently (95% CI) slower by more than this."),
    metric: str = typer.Option("p50_ms", "--metric", help="Regression gate: the latency column compared."),
    capacity_gate: bool = typer.Option(True, "--capacity/--no-capacity", help="Run the capacity gate."),
    allow_unstable: bool = opt.ALLOW_UNSTABLE_OPTION,
    junit: Path = typer.Option(None, "--junit", help="Write the verdict as JUnit XML.", show_default="none"),
    summary: Path = typer.Option(None, "--summary", help="Write the verdict as Markdown (CI job summary).", show_default="none"),
    kv_capacity_tokens: int = llm.KV_CAPACITY_OPTION,
    max_num_batched_tokens: int = llm.BATCHED_TOKENS_OPTION,
    mix_window: str = llm.MIX_WINDOW_OPTION,
    as_json: bool = output.JSON_OPTION,
    out: Path = output.OUT_OPTION,
) -> None:
    """Gate CI on capacity: plan + simulate within a budget, and/or compare with a baseline profile.

    Every destination (--junit, --summary, --out) is checked before any work, and written
    only once the verdict is in.

    [b]Examples[/b]

      themis check -p new.parquet -t azure.csv --slo 200ms --budget-replicas 8 --junit junit.xml

      themis check -p new.parquet --baseline main.parquet --max-regression 10% -t azure.csv --slo 200ms --no-capacity
    """
    import pandas as pd

    from themis.planner.gates.check import CapacityBudget, run_check
    from themis.profiler.table import read_profile
    from themis.reports.check_tables import show_verdict

    for path, option in ((junit, "--junit"), (summary, "--summary"), (out, "--out")):
        require_writable(path, option)
    if not capacity_gate and baseline is None:
        raise InputError("nothing to check: --no-capacity needs --baseline", option="--no-capacity")
    settings = load_settings()
    core_price, gpu_prices = parse_prices(opt.setting(price, "price", settings))
    budget = CapacityBudget(
        max_replicas=budget_replicas,
        max_cores=budget_cores,
        max_core_hours=budget_core_hours,
        max_cost=budget_cost,
        max_violation_rate=parse_fraction(budget_violation_rate, "--budget-violation-rate") if budget_violation_rate else None,
        max_cost_per_mtok=budget_cost_per_mtok,
    )
    budget.validate(priced=core_price > 0 or any(v > 0 for v in gpu_prices.values()))
    profile = resolve_profiles(profile, model=model, settings=settings)
    traffic = {"format": format, "time_column": time_column, "app": app, "function": function, "top": top}
    if llm.is_llm_service(slo or settings.get("slo"), profile):
        load = load_traffic(trace, peak_rps=peak_rps, scale=scale, **traffic) if peak_rps is None else None
        with heartbeat("check", on_terminal=sys.stderr.isatty()) as beat:
            beat.step("planning and simulating the LLM service")
            verdict = llm.llm_verdict(
                profile, load, budget, settings=settings, slo=slo, percentile=percentile, model=model, policy=policy, interval=interval,
                cold_start=cold_start, cores=cores, node_cores=node_cores, forecast=forecast, price=price,
                kv_capacity_tokens=kv_capacity_tokens, max_num_batched_tokens=max_num_batched_tokens, mix_window=mix_window,
                regression=baseline is not None or not capacity_gate, peak_rps=peak_rps,
            )
        _write_reports(verdict, junit, summary)
        output.render(verdict, as_json=as_json, out=out, show=lambda console: show_verdict(console, verdict), exit_code=verdict.exit_code)
        return
    if budget_cost_per_mtok is not None:
        raise InputError("applies to LLM services (a trace with tokens and an LLM profile)", option="--budget-cost-per-mtok")
    config = opt.plan_config(
        slo=slo, percentile=percentile, interval=interval, cold_start=cold_start, resize_delay=resize_delay, warmup=warmup,
        node_cores=node_cores, cores=cores, batch_sizes=batch_sizes, forecast=forecast, price=price, settings=settings,
    )
    load = load_traffic(trace, peak_rps=peak_rps, scale=scale, interval_s=config.interval_s, **traffic)
    # the regression gate leaves untrusted cells out instead (or judges them with --allow-unstable)
    stages = load_service(profile, model=model, settings=settings, allow_unstable=allow_unstable or not capacity_gate)
    regression = None
    if baseline is not None:
        require_usable_profiles([baseline])
        current = pd.concat([read_profile(p) for p in profile], ignore_index=True)
        regression = (read_profile(baseline), current, parse_fraction(max_regression, "--max-regression"), metric)
    with heartbeat("check", on_terminal=sys.stderr.isatty()) as beat:
        beat.step(f"planning with {policy} and simulating {load.requests:,} requests" if capacity_gate else "comparing with the baseline")
        verdict = run_check(
            capacity=(load, stages, budget) if capacity_gate else None,
            regression=regression,
            config=config,
            trace=load,
            policy=policy,
            allow_unstable=allow_unstable,
            context={"trace": load.name, "slo_ms": config.slo_ms, "percentile": config.percentile, "policy": policy,
                     "warmup_s": config.warmup_s, "profile": ", ".join(map(str, profile)),
                     "baseline": str(baseline) if baseline else None},
        )
    _write_reports(verdict, junit, summary)
    output.render(verdict, as_json=as_json, out=out, show=lambda console: show_verdict(console, verdict), exit_code=verdict.exit_code)


def _write_reports(verdict: Verdict, junit: Path | None, summary: Path | None) -> None:
    """The CI files, each written atomically once the verdict is in."""
    from themis.reports.junit import write_junit
    from themis.reports.markdown import write_markdown

    if junit is not None:
        write_junit(verdict, junit)
    if summary is not None:
        write_markdown(verdict, summary)
