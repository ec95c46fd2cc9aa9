"""`themis simulate`: replay a plan over a trace, request by request."""

from __future__ import annotations

from pathlib import Path

import typer

from themis.cli import options as opt
from themis.cli import output
from themis.cli.options import parse_duration_ms, parse_duration_s
from themis.cli.service import load_traffic, require_same_trace, require_usable_profiles, resolve_profiles
from themis.cli.settings import load_settings
from themis.common.atomic import require_writable


def simulate(
    plan: Path = typer.Option(..., "--plan", help="Plan JSON written by `themis plan --out plan.json`."),
    trace: list[Path] = opt.TRACE_OPTION,
    format: str = opt.FORMAT_OPTION,
    time_column: str = opt.TIME_COLUMN_OPTION,
    app: str = opt.APP_OPTION,
    function: str = opt.FUNCTION_OPTION,
    top: int = opt.TOP_OPTION,
    scale: float = opt.SCALE_OPTION,
    profile: list[Path] = opt.PROFILES_OPTION,
    slo: str = typer.Option(None, "--slo", help=opt.SLO_HELP, show_default="the plan's"),
    cold_start: str = typer.Option(None, "--cold-start", help="Time for a new replica to start serving.", show_default="the plan's"),
    service: str = typer.Option("median", "--service", help="Service times: median, or sampled from measured percentiles."),
    warmup: str | None = opt.WARMUP_OPTION,
    seed: int = opt.SEED_OPTION,
    allow_unstable: bool = opt.ALLOW_UNSTABLE_OPTION,
    as_json: bool = output.JSON_OPTION,
    out: Path = output.OUT_OPTION,
) -> None:
    """Simulate a plan on a trace: per-request latency, SLO violations, core-seconds.

    A themis plan also reacts to surges between its intervals (its surge rule). With
    `--warmup`, what happens before it is simulated but not counted. A plan is simulated
    only on the traffic it was planned on (same trace, --scale and selection).
    `--out` takes .json (summary), .csv or .parquet (one row per request).

    [b]Example[/b]

      themis simulate --plan plan.json --trace azure_llm.csv --profile resnet18.parquet --json
    """
    from themis.planner.gates.compare import check_warmup, serving_models
    from themis.planner.model.config import SimConfig
    from themis.planner.model.serving import load_schedule
    from themis.planner.model.trust import require_trusted
    from themis.planner.optimise.pipeline import stages_from_profiles
    from themis.planner.simulation.driver import simulate as run_simulation
    from themis.reports.compare_tables import show_simulation

    require_writable(out, "--out")
    schedule = load_schedule(plan)
    the_trace = load_traffic(trace, scale=scale, seed=seed, function=function, top=top, app=app, format=format, time_column=time_column)
    require_same_trace(schedule, the_trace, plan)
    profile = resolve_profiles(profile, model=schedule.stages[0].model if len(schedule.stages) == 1 else None, settings=load_settings())
    require_usable_profiles(profile)
    the_stages = stages_from_profiles(profile, pipeline=[s.model for s in schedule.stages])
    require_trusted(the_stages, allow_unstable)
    warmup_s = parse_duration_s(opt.setting(warmup, "warmup"), "--warmup")
    check_warmup(warmup_s, the_trace)
    config = SimConfig(
        cold_start_s=parse_duration_s(cold_start, "--cold-start") if cold_start else schedule.cold_start_s,
        resize_s=schedule.resize_s,
        slo_ms=parse_duration_ms(slo, "--slo") if slo else schedule.slo_ms,
        seed=seed,
        service=service,
        horizon_s=schedule.steps[-1].t_end_s if schedule.steps else None,
        warmup_s=warmup_s,
    )
    models = serving_models(the_stages, schedule)
    result = run_simulation(the_trace.request_arrivals(seed), schedule, models, config)
    output.render(result, as_json=as_json, out=out, show=lambda console: show_simulation(result, console))
