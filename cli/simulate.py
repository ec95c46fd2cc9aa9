"""`themis simulate`: replay a plan over a trace, request by request."""

from __future__ import annotations

from pathlib import Path

import typer

from themis.cli import options as opt
from themis.cli import output
from themis.cli.options import parse_duration_ms, parse_duration_s
from themis.cli.service import load_traffic


def simulate(
    plan: Path = typer.Option(..., "--plan", help="Plan JSON written by `themis plan --out plan.json`."),
    trace: Path = typer.Option(..., "--trace", help="Trace file whose requests are replayed."),
    profile: list[Path] = typer.Option(..., "--profile", help="Profile Parquet file(s) of the plan's models."),
    scale: float = typer.Option(1.0, "--scale", help="Multiply the trace's load by this factor (as planned)."),
    slo: str = typer.Option(None, "--slo", help="SLO to judge against (default: the plan's)."),
    cold_start: str = typer.Option(None, "--cold-start", help="Cold start (default: the plan's)."),
    service: str = typer.Option("median", "--service", help="Service times: median, or sampled from measured percentiles."),
    warmup: str | None = opt.WARMUP_OPTION,
    seed: int = opt.SEED_OPTION,
    function: str = opt.FUNCTION_OPTION,
    top: int = opt.TOP_OPTION,
    allow_unstable: bool = opt.ALLOW_UNSTABLE_OPTION,
    as_json: bool = output.JSON_OPTION,
    out: Path = output.OUT_OPTION,
) -> None:
    """Simulate a plan on a trace: per-request latency, SLO violations, core-seconds.

    A themis plan also reacts to surges between its intervals (its surge rule). With
    `--warmup`, what happens before it is simulated but not counted.
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

    schedule = load_schedule(plan)
    the_trace = load_traffic([trace], scale=scale, seed=seed, function=function, top=top)
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
