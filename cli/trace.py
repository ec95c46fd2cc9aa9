"""`themis trace inspect` and `themis trace convert`: load any supported trace, describe it or
write its canonical Parquet form. The trace options here are shared with `themis forecast`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from themis.cli import options as opt
from themis.cli import output
from themis.cli.options import parse_duration_s
from themis.common import SCHEMA_VERSION
from themis.planner.errors import TraceError

if TYPE_CHECKING:
    from themis.planner.traffic.trace import Trace

TRACES_ARGUMENT = typer.Argument(..., help="Trace file(s); several Azure Functions 2019 day files form one timeline.")

trace_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Describe request traces and convert them to themis's canonical Parquet.\n\n"
    "[b]Examples[/b]\n\n  themis trace inspect AzureLLMInferenceTrace_code.csv\n\n"
    "  themis trace convert invocations_per_function_md.anon.d01.csv --top 10 --out top10.parquet",
)


def load(traces: list[Path], format: str | None, function: str | None, app: str | None, top: int | None, time_column: str | None,
         scale: float = 1.0) -> Trace:
    """The trace read with the shared traffic options (`themis.cli.service.load_traffic`)."""
    from themis.cli.service import load_traffic

    return load_traffic(traces, scale=scale, function=function, app=app, top=top, format=format, time_column=time_column)


def optional_duration_s(text: str | None, option: str) -> float | None:
    """A positive duration option (`60s`, `5m`, `400ms`, a bare number of seconds), or None when not given."""
    if text is None:
        return None
    value = parse_duration_s(text, option)
    if not value > 0:
        raise TraceError(f"must be a positive duration, got {text!r}", option=option)
    return value


@trace_app.command("inspect")
def inspect(
    traces: list[Path] = TRACES_ARGUMENT,
    format: str = opt.FORMAT_OPTION,
    time_column: str = opt.TIME_COLUMN_OPTION,
    app: str = opt.APP_OPTION,
    function: str = opt.FUNCTION_OPTION,
    top: int = opt.TOP_OPTION,
    scale: float = opt.SCALE_OPTION,
    interval: str = typer.Option(
        None, "--interval", help="Bin width of the rate statistics (e.g. 60s, 5m; a bare number is seconds).",
        show_default="the trace's own: 1 s per-request, 60 s per-minute",
    ),
    as_json: bool = output.JSON_OPTION,
    out: Path = output.OUT_OPTION,
) -> None:
    """Format, span, requests, mean/p50/p99/max rate, burstiness and a sparkline of the rate.

    [b]Example[/b]: themis trace inspect azure_llm_2023_code.csv --interval 60s --json
    """
    interval_s = optional_duration_s(interval, "--interval")
    from themis.planner.traffic.summary import summarize
    from themis.reports.trace_tables import show_trace_summary

    trace = load(traces, format, function, app, top, time_column, scale)
    try:
        summary = summarize(trace, interval_s)
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
    format: str = opt.FORMAT_OPTION,
    time_column: str = opt.TIME_COLUMN_OPTION,
    app: str = opt.APP_OPTION,
    function: str = opt.FUNCTION_OPTION,
    top: int = opt.TOP_OPTION,
    scale: float = opt.SCALE_OPTION,
    as_json: bool = output.JSON_OPTION,
) -> None:
    """Write the canonical form: arrivals (or per-interval counts) with schema_version,
    trace_start and interval_s in the Parquet footer.

    [b]Example[/b]: themis trace convert d01.csv d02.csv --top 5 --out busiest.parquet
    """
    if out.suffix.lower() != ".parquet":
        raise TraceError("the canonical form is Parquet: give a .parquet file", option="--out", file=out)
    from themis.planner.traffic.canonical import write_trace

    trace = load(traces, format, function, app, top, time_column, scale)
    write_trace(trace, out)
    result = Conversion(str(out), trace)
    output.render(result, as_json=as_json, out=None, show=result.show)
