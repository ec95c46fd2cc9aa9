"""`themis report`: re-render saved artefacts into one self-contained HTML file (a zoomable
timeline, plotly.js embedded) plus a PNG per plot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from themis.cli import options as opt
from themis.cli import output
from themis.cli.service import load_traffic
from themis.common.atomic import require_writable
from themis.common.errors import InputError
from themis.common.files import read_json_object

if TYPE_CHECKING:
    import pandas as pd


def _read_comparison(path: Path) -> dict:
    data = read_json_object(path, "a themis comparison")
    if data.get("kind") not in ("comparison", "llm_comparison") or "policies" not in data:
        raise InputError("not a themis comparison (write one with `themis compare --out cmp.json`)", file=path)
    return data


def _read_replay(path: Path) -> dict:
    data = read_json_object(path, "a themis replay result")
    if data.get("kind") != "replay" or "settings" not in data:
        raise InputError("not a themis replay result (write one with `themis replay ... --out result.json`)", file=path)
    return data


def _read_requests(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except Exception as exc:  # pyarrow and pandas raise many kinds for a corrupt file
        raise InputError(f"cannot read the per-request table ({type(exc).__name__})", file=path) from None
    missing = {"arrival_s", "latency_ms"} - set(frame.columns)
    if missing:
        raise InputError(f"not a per-request simulation table (missing {', '.join(sorted(missing))})", file=path)
    return frame


def report(
    html_out: Path = typer.Option(..., "--html", help="HTML file to write; PNGs are written beside it."),
    profile: list[Path] = typer.Option([], "--profile", help="Profile Parquet file(s): latency and throughput curves.", show_default="none"),
    trace: list[Path] = opt.TRACE_OPTION,
    format: str = opt.FORMAT_OPTION,
    time_column: str = opt.TIME_COLUMN_OPTION,
    app: str = opt.APP_OPTION,
    function: str = opt.FUNCTION_OPTION,
    top: int = opt.TOP_OPTION,
    scale: float = opt.SCALE_OPTION,
    plan: Path = typer.Option(None, "--plan", help="Plan JSON: the schedule over time.", show_default="none"),
    simulation: Path = typer.Option(None, "--simulation", help="Per-request table from `themis simulate --out x.parquet`.", show_default="none"),
    comparison: Path = typer.Option(None, "--comparison", help="Comparison JSON from `themis compare --out cmp.json` (batch or LLM service).", show_default="none"),
    replay: Path = typer.Option(None, "--replay", help="Replay result from `themis replay --out result.json`: real against simulated.", show_default="none"),
    title: str = typer.Option("themis report", "--title", help="Heading of the page."),
    as_json: bool = output.JSON_OPTION,
) -> None:
    """Write one self-contained HTML report (zoomable timeline, plots embedded) and a PNG per plot beside it.

    [b]Example[/b]

      themis report --profile resnet18.parquet --trace azure_llm.csv --plan plan.json \\
          --simulation requests.parquet --comparison cmp.json --html report.html
    """
    from themis.planner.model.serving import load_schedule
    from themis.profiler.table import read_profile
    from themis.reports.html import (  # matplotlib: only when reporting
        ReportInputs,
        render_report,
    )

    if plan is not None and read_json_object(plan, "a themis plan").get("kind") == "llm_plan":
        raise InputError("an LLM plan is reported through its comparison (`themis compare ... --out cmp.json`, then --comparison)",
                         file=plan)
    require_writable(html_out, "--html")
    the_trace = load_traffic(trace, scale=scale, function=function, top=top, app=app, format=format, time_column=time_column) if trace else None
    inputs = ReportInputs(
        profiles=[read_profile(p) for p in profile],
        trace=the_trace,
        schedule=load_schedule(plan) if plan else None,
        requests=_read_requests(simulation) if simulation else None,
        comparison=_read_comparison(comparison) if comparison else None,
        replay=_read_replay(replay) if replay else None,
        title=title,
    )
    if inputs.requests is not None and "slo_ms" in inputs.requests:
        inputs.slo_ms = float(inputs.requests["slo_ms"].iloc[0])
    result = render_report(inputs, html_out)

    def show(console) -> None:
        size_mb = result.html_path.stat().st_size / 1e6
        console.print(f"wrote {result.html_path} ({size_mb:.1f} MB) and {len(result.png_paths)} PNG files beside it")

    output.render(result, as_json=as_json, out=None, show=show)
