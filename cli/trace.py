"""`themis trace inspect` and `themis trace convert`: load any supported trace, describe it or
write its canonical Parquet form. The trace options here are shared with `themis forecast`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from themis.cli import output
from themis.cli.options import FUNCTION_OPTION, TOP_OPTION
from themis.common import SCHEMA_VERSION
from themis.planner.choices import TRACE_FORMATS
from themis.planner.errors import TraceError

if TYPE_CHECKING:
    from themis.planner.traffic.trace import Trace

TRACES_ARGUMENT = typer.Argument(..., help="Trace file(s); several Azure Functions 2019 day files form one timeline.")
FORMAT_OPTION = typer.Option(None, "--format", help=f"Force the format: {', '.join(TRACE_FORMATS)} [default: detected].")
APP_OPTION = typer.Option(None, "--app", help="Azure Functions: only this app (HashApp / app id).")
TIME_COLUMN_OPTION = typer.Option(None, "--time-column", help="Generic request log / rate series: the timestamp column.")

trace_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Describe request traces and convert them to themis's canonical Parquet.\n\n"
    "[b]Examples[/b]\n\n  themis trace inspect AzureLLMInferenceTrace_code.csv\n\n"
    "  themis trace convert invocations_per_function_md.anon.d01.csv --top 10 --out top10.parquet",
)


def load(traces: list[Path], format: str | None, function: str | None, app: str | None, top: int | None, time_column: str | None) -> Trace:
    """`load_trace` with the shared command-line options."""
    from themis.planner.traffic.loading import load_trace

    return load_trace(traces, format=format, function=function, app=app, top=top, time_column=time_column)


@trace_app.command("inspect")
def inspect(
    traces: list[Path] = TRACES_ARGUMENT,
    format: str = FORMAT_OPTION,
    function: str = FUNCTION_OPTION,
    app: str = APP_OPTION,
    top: int = TOP_OPTION,
    time_column: str = TIME_COLUMN_OPTION,
    interval: float = typer.Option(None, "--interval", help="Bin width of the rate statistics, seconds [default: the trace's own: 1 s per-request, 60 s per-minute]."),
    as_json: bool = output.JSON_OPTION,
    out: Path = output.OUT_OPTION,
) -> None:
    """Format, span, requests, mean/p50/p99/max rate, burstiness and a sparkline of the rate.

    [b]Example[/b]: themis trace inspect azure_llm_2023_code.csv --interval 60 --json
    """
    if interval is not None and interval <= 0:
        raise TraceError(f"must be positive, got {interval:g}", option="--interval")
    from themis.planner.traffic.summary import summarize
    from themis.reports.trace_tables import show_trace_summary

    trace = load(traces, format, function, app, top, time_column)
    try:
        summary = summarize(trace, interval)
    except ValueError as exc:
        raise TraceError(str(exc), option="--interval") from None
    output.render(summary, as_json=as_json, out=out, show=show_trace_summary(summary))


@dataclass(frozen=True)
class Conversion:
    """What `trace convert` wrote."""

    out: str
    trace: Trace

    def to_dict(self) -> dict[str, Any]:
        t = self.trace
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "trace_conversion",
            "out": self.out,
            "name": t.name,
            "source_format": t.source_format,
            "trace_start": t.trace_start,
            "interval_s": t.interval_s,
            "requests": t.requests,
            "duration_s": t.duration_s,
            "stored": "arrivals" if t.arrivals_s is not None else "counts",
        }

    def show(self, console: Console) -> None:
        from themis.reports.trace_tables import duration_text

        t = self.trace
        stored = "per-request arrivals" if t.arrivals_s is not None else f"counts per {t.interval_s:g} s"
        console.print(f"wrote {self.out}: {t.requests:,} requests over {duration_text(t.duration_s)} as {stored}")


@trace_app.command("convert")
def convert(
    traces: list[Path] = TRACES_ARGUMENT,
    out: Path = typer.Option(..., "--out", help="Destination .parquet (the canonical form `load_trace` reads back)."),
    format: str = FORMAT_OPTION,
    function: str = FUNCTION_OPTION,
    app: str = APP_OPTION,
    top: int = TOP_OPTION,
    time_column: str = TIME_COLUMN_OPTION,
    as_json: bool = output.JSON_OPTION,
) -> None:
    """Write the canonical form: arrivals (or per-interval counts) with schema_version,
    trace_start and interval_s in the Parquet footer.

    [b]Example[/b]: themis trace convert d01.csv d02.csv --top 5 --out busiest.parquet
    """
    if out.suffix.lower() != ".parquet":
        raise TraceError("the canonical form is Parquet: give a .parquet file", option="--out", file=out)
    from themis.planner.traffic.canonical import write_trace

    trace = load(traces, format, function, app, top, time_column)
    write_trace(trace, out)
    result = Conversion(str(out), trace)
    output.render(result, as_json=as_json, out=None, show=result.show)
