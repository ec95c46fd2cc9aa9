"""`themis replay`: send a trace to an HTTP inference server open loop, or run a plan on the reference server."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from themis.cli import options as opt
from themis.cli import output
from themis.cli.options import parse_duration_ms, parse_duration_s
from themis.cli.progress import replay_progress
from themis.cli.service import load_traffic
from themis.common.errors import InputError

EXIT_INTERRUPTED = 130


def replay(
    trace: list[Path] = opt.TRACE_OPTION,
    format: str = opt.FORMAT_OPTION,
    time_column: str = opt.TIME_COLUMN_OPTION,
    app: str = opt.APP_OPTION,
    function: str = opt.FUNCTION_OPTION,
    top: int = opt.TOP_OPTION,
    scale: float = opt.SCALE_OPTION,
    url: str = typer.Option(None, "--url", help="Base URL of the server (with --protocol) or the URL to POST to (with --body-template).", show_default="none"),
    protocol: str = typer.Option(None, "--protocol", help="Built-in request: v2 (Triton/KServe JSON) or v2-binary (Triton's binary tensor extension).", show_default="none"),
    body_template: Path = typer.Option(None, "--body-template", help="JSON body with {{input}}, {{batch}}, {{request}} placeholders.", show_default="none"),
    model: str = typer.Option(None, "--server-model", help="v2: the model's name on the server (a sample model's name also gives its input shape).",
                              show_default="none"),
    input_name: str = typer.Option("input", "--input-name", help="v2: the name of the model's input tensor."),
    input_shape: str = typer.Option(None, "--input-shape", help=opt.INPUT_SHAPE_HELP, show_default="the sample model's"),
    dtype: str = typer.Option("float32", "--dtype", help=opt.DTYPE_HELP),
    serve: list[str] = typer.Option(None, "--serve", help="Run --plan on the local reference server with this model (once per stage) and replay against it.", show_default="none"),
    plan: Path = typer.Option(None, "--plan", help="With --serve: the plan JSON to run.", show_default="none"),
    profile: list[Path] = typer.Option(None, "--profile", help="With --serve: profile Parquet file(s) of the plan's models, for the comparison.", show_default="none"),
    cpus: str = typer.Option(None, "--cpus", help="With --serve: CPUs for the replicas.", show_default="all but the lowest"),
    slo: str = typer.Option(None, "--slo", help=opt.SLO_HELP, show_default="the plan's with --serve, else none"),
    speedup: float = typer.Option(1.0, "--speedup", help="Play the trace (and plan) this many times faster; rates rise by as much."),
    timeout: str = typer.Option("30s", "--timeout", help="A request unanswered this long is recorded as a timeout."),
    seed: int = opt.SEED_OPTION,
    as_json: bool = output.JSON_OPTION,
    out: Path = typer.Option(Path("replay.parquet"), "--out", help="Per-request rows (.parquet or .csv), kept up to date during the run; .json: the result."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out instead of refusing."),
    report_html: Path = typer.Option(None, "--report", help="Also write an HTML report (with --serve: real against simulated).", show_default="none"),
) -> None:
    """Send every request of a trace at its scheduled time and measure the latency from that time.

    With --serve, run a plan on the local reference server (the serving model with real replica processes), replay against it, and compare with the simulator.

    [b]Examples[/b]

      themis replay --trace azure_llm.csv --url http://localhost:8000 --protocol v2 --server-model resnet18 --slo 200ms

      themis replay --trace azure_llm.csv --serve resnet18 --plan plan.json --profile resnet18.parquet --json
    """
    from themis.planner.replay import targets
    from themis.planner.replay.replayer import ReplayConfig
    from themis.planner.replay.request_log import RequestLog
    from themis.planner.replay.result import ReplayResult, ReplaySettings
    from themis.planner.replay.timeline import speed_up_arrivals, speed_up_schedule
    from themis.profiler.devices import available_cpus
    from themis.profiler.models import parse_input_shape
    from themis.reports.export import SUFFIXES, export
    from themis.reports.replay_tables import show_replay

    if (url is None) == (not serve):
        raise InputError("give --url (a running server) or --serve MODEL (the reference server), one of the two", option="--url")
    if serve and (protocol or body_template or model):
        raise InputError("--protocol, --body-template and --server-model go with --url; --serve replays with v2 binary requests", option="--serve")
    if out.suffix.lower() not in SUFFIXES:
        raise InputError(f"use one of {', '.join(SUFFIXES)}, not {out.suffix or '(no suffix)'}", option="--out", file=out)
    if out.exists() and not overwrite:
        raise InputError("exists; pass --overwrite to replace it, or another --out", option="--out", file=out)
    if report_html is not None and report_html.suffix.lower() not in (".html", ".htm"):
        suffix = report_html.suffix or "(no suffix)"
        raise InputError(f"the report is HTML: name it .html, not {suffix}", option="--report", file=report_html)
    shape = parse_input_shape(input_shape) if input_shape else None
    config = ReplayConfig(timeout_s=parse_duration_s(timeout, "--timeout"))
    the_trace = load_traffic(trace, scale=scale, seed=seed, function=function, top=top, app=app, format=format, time_column=time_column)
    log = RequestLog(speed_up_arrivals(the_trace.request_arrivals(seed), speedup))
    if serve:
        from themis.planner.gates.compare import serving_models
        from themis.planner.model.serving import load_schedule
        from themis.planner.optimise.pipeline import stages_from_profiles
        from themis.profiler.table import read_profile

        if plan is None or not profile:
            raise InputError("--serve needs --plan (what to run) and --profile (what to compare with)", option="--serve")
        schedule = speed_up_schedule(load_schedule(plan), speedup)
        models = serving_models(stages_from_profiles(profile, pipeline=[s.model for s in schedule.stages]), schedule)
        available = available_cpus()
        replica_cpus = targets.parse_cpu_ids(cpus) if cpus else targets.default_replica_cpus(available)
        cpu_limit = targets.profile_cpu_limit([read_profile(p) for p in profile], profile)
        settings = targets.serve_settings(schedule, serve, input_shape=shape, dtype=dtype, cpus=replica_cpus, available=available,
                                          cpu_limit=cpu_limit)
        slo_ms = parse_duration_ms(slo, "--slo") if slo else schedule.slo_ms
        target_url, request_text = "reference server (127.0.0.1)", "v2 binary"
    else:
        template = targets.url_template(url, protocol=protocol, body_template=body_template, model=model, input_name=input_name, input_shape=shape, dtype=dtype)
        slo_ms = parse_duration_ms(slo, "--slo") if slo else None
        target_url, request_text = template.url, template.description
    info = ReplaySettings(target_url, request_text, the_trace.name, the_trace.trace_start, slo_ms, scale, speedup, seed, config.timeout_s,
                          list(serve or []), schedule.policy if serve else None)
    result = ReplayResult(info, log)

    def checkpoint(snapshot: RequestLog) -> None:
        export(ReplayResult(info, snapshot), out)

    from themis.planner.replay import session

    try:
        with replay_progress(on_terminal=sys.stderr.isatty() and not as_json) as progress:
            if serve:
                say = (lambda message: output.err_console.print(message, highlight=False)) if not as_json else None
                run = session.serve_and_replay(schedule, settings, log, config, on_progress=progress, on_checkpoint=checkpoint, on_status=say)
            else:
                run = session.replay_url(template, log, config, on_progress=progress, on_checkpoint=checkpoint)
        result.interrupted, result.server = run.interrupted, run.server
        if run.server is not None:
            from themis.planner.replay.comparison import compare_with_simulation

            result.comparison = compare_with_simulation(log, schedule, models, run.server, slo_ms, seed=seed)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        if log.sent:  # nothing sent (stopped while the replicas warmed up): nothing to keep
            export(result, out)
    if report_html is not None and log.sent:
        from themis.reports.html import ReportInputs, render_report

        render_report(ReportInputs(replay=result.to_dict(), title=f"themis replay: {the_trace.name}"), report_html)

    def show(console: Console) -> None:
        show_replay(result, console)
        if log.sent:
            output.err_console.print(f"{'interrupted: the rows so far are in' if result.interrupted else 'wrote'} {out}")
        if report_html is not None and log.sent:
            output.err_console.print(f"wrote {report_html}")

    output.render(result, as_json=as_json, out=None, show=show, exit_code=EXIT_INTERRUPTED if result.interrupted else 0)
