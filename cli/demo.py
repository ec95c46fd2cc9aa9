"""`themis demo`: the whole flow on bundled data, one line per step.

profile a bundled model on this CPU -> load the bundled Azure LLM trace (scaled so its
peak needs several replicas) -> backtest forecasts -> plan with themis -> compare every
policy in simulation -> write the HTML report. Every artefact lands in --out-dir.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from themis.cli import options as opt
from themis.cli import output
from themis.cli.options import parse_duration_ms
from themis.cli.service import fingerprint
from themis.cli.settings import Settings
from themis.common.atomic import require_writable_folder
from themis.common.errors import InputError

if TYPE_CHECKING:
    from themis.cli.progress import Heartbeat
    from themis.planner.traffic.trace import Trace
    from themis.profiler.models import ModelSpec

DEMO_PRICE_PER_CORE_HOUR = 0.05
"""An on-demand cloud vCPU-hour, so the demo's cost column reads as money."""
QUICK_WINDOW_S = 900.0
"""--quick replays only the first 15 minutes of the trace."""

DEFAULT_TRACE = "azure_functions_2019"
DEMO_FILES = ("profile.parquet", "forecast.json", "plan.json", "comparison.json", "requests.parquet", "report.html")
"""What a demo writes into --out-dir (and `k8s/`): an earlier run's are kept unless --overwrite."""

TRACE_TITLES = {
    "azure_functions_2019": "Azure Functions 2019, all 200 functions summed (one day)",
    "azure_llm_2023_code": "Azure LLM code trace (2023, one hour)",
    "azure_functions_2021": "Azure Functions 2021 invocations",
}


def demo(
    out_dir: Path = typer.Option(Path("out/demo"), "--out-dir", help="Folder for every artefact (created if missing)."),
    model: str = typer.Option(None, "--sample-model", help="Bundled model to profile.", show_default="resnet18; small_cnn with --quick"),
    trace: list[Path] = opt.TRACE_OPTION,
    format: str = opt.FORMAT_OPTION,
    time_column: str = opt.TIME_COLUMN_OPTION,
    app: str = opt.APP_OPTION,
    function: str = opt.FUNCTION_OPTION,
    top: int = opt.TOP_OPTION,
    slo: str = typer.Option(None, "--slo", help=opt.SLO_HELP, show_default="5 x the fastest measured batch-1 median"),
    replicas: int = typer.Option(6, "--replicas", help="Scale the trace so that its peak needs about this many replicas."),
    node_cores: int | None = opt.NODE_CORES_OPTION,
    quick: bool = typer.Option(False, "--quick", help="Reduced mode: a small model, short budgets, 15 minutes of trace."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the output of an earlier run in --out-dir instead of refusing."),
) -> None:
    """Run the whole flow on bundled data: profile, trace, forecast, plan, compare, check, report.

    --trace takes a bundled trace's name or a trace file (default: azure_functions_2019);
    the demo scales it itself (--replicas). The trace and --out-dir are checked before
    anything is measured; an earlier demo's output is kept unless --overwrite.

    [b]Examples[/b]

      themis demo                       # about 2-3 minutes on 2 cores
      themis demo --quick --out-dir out/demo-quick
      themis demo --quick --trace azure_llm_2023_code --out-dir /tmp/demo-llm --overwrite
    """
    import sys

    from themis.cli.progress import heartbeat
    from themis.cli.service import load_traffic
    from themis.profiler import models

    trace_paths = list(trace) if trace else [Path(DEFAULT_TRACE)]
    loaded = load_traffic(trace_paths, format=format, time_column=time_column, app=app, function=function, top=top)
    title = TRACE_TITLES.get(str(trace_paths[0]), loaded.name) if len(trace_paths) == 1 else loaded.name
    spec = models.resolve_model(model or ("small_cnn" if quick else "resnet18"))
    slo_ms = parse_duration_ms(slo, "--slo") if slo else None
    if replicas < 1:
        raise InputError(f"must be at least 1, got {replicas}", option="--replicas")
    prepare_out_dir(out_dir, overwrite=overwrite)
    with heartbeat("demo", on_terminal=sys.stderr.isatty()) as beat:
        _run_demo(out_dir, spec, loaded, title, slo_ms, replicas, node_cores, quick, beat)


def prepare_out_dir(out_dir: Path, *, overwrite: bool) -> None:
    """Create --out-dir (refusing one that cannot be written) and refuse an earlier demo's
    output in it unless `overwrite`: a demo is minutes of measuring."""
    earlier = [name for name in DEMO_FILES if (out_dir / name).exists()]
    if earlier and not overwrite:
        raise InputError(f"{out_dir} holds an earlier demo's output ({', '.join(earlier)}); pass --overwrite to replace it "
                         "or give another --out-dir", option="--out-dir")
    require_writable_folder(out_dir, "--out-dir")


def _run_demo(out_dir: Path, spec: ModelSpec, trace: Trace, title: str, slo_ms: float | None, replicas: int, node_cores: int | None,
              quick: bool, beat: Heartbeat) -> None:
    """The seven steps, each printed as it finishes."""
    from themis.planner.gates.check import CapacityBudget, capacity_checks
    from themis.planner.gates.compare import compare
    from themis.planner.optimise.pipeline import stages_from_profiles
    from themis.planner.optimise.plan import plan
    from themis.planner.optimise.sizing import scale_for_replicas, slo_for_profile
    from themis.planner.traffic.backtest import backtest_trace
    from themis.profiler import devices, measure, run
    from themis.reports.compare_tables import show_comparison
    from themis.reports.export import export
    from themis.reports.html import ReportInputs, render_report
    from themis.reports.k8s import write_manifests
    from themis.reports.trace_tables import duration_text

    console = output.console
    model = spec.name
    step = _Stepper(console, total=7)

    cores = devices.default_core_counts()
    batches = [1, 2, 4, 8]
    request = run.ProfileRequest(
        model=spec, devices=devices.resolve_devices("cpu"), core_counts=cores, batch_sizes=batches,
        dtype="float32", budget=measure.Budget(budget_s=0.1 if quick else 0.5, warmup=2),
        out=out_dir / "profile.parquet", overwrite=True, processes=2 if quick else 3,
    )
    beat.step(f"profiling {model}")
    profiled = run.run_profile(request)
    profile = profiled.frame
    step.done(f"profile   {model} on {len(devices.available_cpus())} CPU core(s), cores {cores} x batches {batches}", request.out)
    if set(profile["status"]) != {"ok"}:  # the demo plans anyway, but says what its numbers stand on
        console.print(f"          warning: {profiled.summary_line()}", highlight=False, soft_wrap=True)

    if quick:
        trace = trace.window(0.0, QUICK_WINDOW_S)
    slo_ms = slo_ms or slo_for_profile(profile)
    factor = scale_for_replicas(trace, profile, slo_ms, replicas)
    trace = trace.scaled(factor, seed=0)
    step.done(f"trace     {title}, scaled x{factor:.3g} to {trace.requests:,} requests "
              f"over {duration_text(trace.duration_s)}, peak {trace.peak_rates(60.0).max():.0f} rps", None)

    methods = ("last", "moving_max", "ewma", "auto")
    beat.step("backtesting forecasts")
    backtest = backtest_trace(trace, methods, interval_s=60.0)
    auto = next(s for s in backtest.scores if s.method == "auto")
    export(backtest, out_dir / "forecast.json")
    step.done(f"forecast  rolling backtest of {', '.join(methods)}; plan uses auto: under-predicts {auto.under_rate:.0%} "
              f"of intervals, MAPE {auto.mape_pct:.0f}%", out_dir / "forecast.json")

    config = opt.plan_config(  # the demo's own settings: a themis.toml in this folder is not read
        slo=f"{slo_ms}ms", node_cores=node_cores, batch_sizes=",".join(map(str, batches)),
        price=f"cpu={DEMO_PRICE_PER_CORE_HOUR}", settings=Settings(),
    )
    stages = stages_from_profiles([request.out])
    beat.step("planning")
    planned = plan(trace, stages, config, "themis")
    planned.schedule.trace_fingerprint = fingerprint(trace)
    export(planned, out_dir / "plan.json")
    write_manifests(planned.to_dict(), out_dir / "k8s")
    totals = planned.schedule.totals()
    step.done(f"plan      themis, SLO p99 {slo_ms:g} ms on {config.node_cores}-core nodes: {totals['core_seconds'] / 3600:.2f} core-hours, "
              f"{totals['scale_actions']} scale actions (planner's estimate: {'feasible' if planned.feasible else planned.reason})",
              out_dir / "plan.json")

    beat.step(f"simulating every policy on {trace.requests:,} requests")
    comparison = compare(trace, stages, config)
    export(comparison, out_dir / "comparison.json")
    themis_run = comparison.outcome("themis").result
    export(themis_run, out_dir / "requests.parquet")
    step.done(f"compare   {len(comparison.outcomes)} policies replayed request by request", out_dir / "comparison.json")
    show_comparison(comparison, console)
    checks = capacity_checks(comparison.outcome("themis"), config, CapacityBudget())  # what `themis check` decides on these inputs
    failed = [c for c in checks if not c.passed]
    verdict = "PASS" if not failed else "FAIL: " + "; ".join(f"{c.name} {c.detail}".strip() for c in failed)
    violations = next(c for c in checks if c.name == "violation_rate")
    step.done(f"check     capacity gate on these inputs: {verdict} (simulated violations {violations.measured:.2f}% against "
              f"{violations.limit:.2f}%)", None)

    beat.step("writing the report")
    inputs = ReportInputs(profiles=[profile], trace=trace, schedule=planned.schedule, requests=themis_run.to_frame(),
                          comparison=comparison.to_dict(), slo_ms=slo_ms, title=f"themis demo: {model} on the {title}")
    report = render_report(inputs, out_dir / "report.html")
    step.done(f"report    {len(report.png_paths)} plots", report.html_path)


class _Stepper:
    """Prints `[i/n] what it did (seconds) -> where its output went`."""

    def __init__(self, console: Console, total: int) -> None:
        self.console, self.total, self.index, self.started = console, total, 0, time.perf_counter()

    def done(self, what: str, where: Path | None) -> None:
        self.index += 1
        elapsed = time.perf_counter() - self.started
        self.started = time.perf_counter()
        target = f" -> {where}" if where is not None else ""
        self.console.print(f"[{self.index}/{self.total}] {what} ({elapsed:.0f} s){target}", highlight=False, soft_wrap=True)
