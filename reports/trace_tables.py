"""Rich rendering of trace summaries, rolling forecasts and forecast backtests."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

BLOCKS = "▁▂▃▄▅▆▇█"
FORECAST_ROWS_SHOWN = 12


def sparkline(values: Sequence[float]) -> str:
    """One block character per value, scaled from 0 to the largest value."""
    top = max(values, default=0.0)
    if top <= 0:
        return BLOCKS[0] * len(values)
    return "".join(BLOCKS[min(len(BLOCKS) - 1, int(round(v / top * (len(BLOCKS) - 1))))] for v in values)


def duration_text(seconds: float) -> str:
    """`42.0 s`, `57.3 min`, `24.0 h`, `14.0 d`: the unit a person would say."""
    for unit, size in (("d", 86_400.0), ("h", 3_600.0), ("min", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:,.1f} s"


def _number(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def show_trace_summary(summary: Any) -> Callable[[Console], None]:
    """The `themis trace inspect` view of a `TraceSummary`."""

    def show(console: Console) -> None:
        table = Table(title=summary.name, title_justify="left", show_header=False, box=None, padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        kind = "per-request arrivals" if summary.per_request else f"counts per {summary.native_interval_s:g} s"
        table.add_row("format", f"{summary.source_format} ({kind})")
        table.add_row("start", summary.trace_start or "- (no calendar time in the source)")
        table.add_row("span", f"{duration_text(summary.span_s)} ({summary.span_s:,.1f} s)")
        table.add_row("requests", f"{summary.requests:,}")
        table.add_row(
            f"rate per {summary.interval_s:g} s",
            f"mean {_number(summary.mean_rps)}  p50 {_number(summary.p50_rps)}  p99 {_number(summary.p99_rps)}  "
            f"max {_number(summary.max_rps)} req/s",
        )
        table.add_row("burstiness", f"CV {_number(summary.cv)}  peak/mean {_number(summary.peak_to_mean)}")
        table.add_row("rate over time", sparkline(summary.sparkline_rps))
        tokens = summary.tokens
        if tokens is not None:
            for name, stats in (("prompt tokens", tokens.prompt), ("output tokens", tokens.output)):
                table.add_row(
                    name,
                    f"mean {_number(stats.mean, 1)}  p50 {_number(stats.p50, 0)}  p90 {_number(stats.p90, 0)}  "
                    f"p99 {_number(stats.p99, 0)}  max {_number(stats.max, 0)}  total {stats.total:,}",
                )
            table.add_row(
                f"tokens/s per {summary.interval_s:g} s",
                f"prompt mean {_number(tokens.mean_prompt_tokens_per_s, 0)}  max {_number(tokens.max_prompt_tokens_per_s, 0)}  "
                f"output mean {_number(tokens.mean_output_tokens_per_s, 0)}  max {_number(tokens.max_output_tokens_per_s, 0)}",
            )
        console.print(table)

    return show


def show_forecast(result: Any) -> Callable[[Console], None]:
    """The last intervals of a `ForecastResult`: actual peak next to its rolling forecast."""

    def show(console: Console) -> None:
        frame = result.to_frame()
        console.print(
            f"{result.trace}: {result.method} forecast of the peak rate (busiest {result.window_s:g} s) "
            f"per {result.interval_s:g} s interval, {len(frame)} intervals"
        )
        table = Table(header_style="bold")
        for name in ("t_start_s", "peak_rps", "forecast_rps"):
            table.add_column(name, justify="right")
        for row in frame.tail(FORECAST_ROWS_SHOWN).itertuples(index=False):
            table.add_row(_number(row.t_start_s, 0), _number(row.peak_rps), _number(row.forecast_rps))
        console.print(table)
        console.print(f"peaks {sparkline(list(_buckets(result.actual_rps)))}")

    return show


def show_backtest(result: Any) -> Callable[[Console], None]:
    """Per-method planning loss, MAPE, under-prediction rate and over-provisioning ratio of a
    `BacktestResult`; the lowest planning loss in bold."""

    def show(console: Console) -> None:
        title = (
            f"{result.trace}: rolling forecasts of the peak rate (busiest {result.window_s:g} s) per "
            f"{result.interval_s:g} s interval, {len(result.actual_rps)} intervals"
        )
        table = Table(title=title, title_justify="left", header_style="bold")
        columns = (("method", "left"), ("planning loss", "right"), ("MAPE %", "right"), ("under-predicted", "right"),
                   ("over-provisioning", "right"))
        for name, justify in columns:
            table.add_column(name, justify=justify)
        best = min((s.planning_loss for s in result.scores if not math.isnan(s.planning_loss)), default=None)
        for score in result.scores:
            loss = _number(score.planning_loss, 3)
            table.add_row(
                score.method,
                f"[bold]{loss}[/bold]" if score.planning_loss == best else loss,
                _number(score.mape_pct, 1),
                f"{score.under_rate:.1%}",
                f"{_number(score.over_provisioning_ratio)}x",
            )
        console.print(table)
        for method, reason in result.skipped.items():
            console.print(f"skipped {method}: {reason}")

    return show


def _buckets(values: np.ndarray, width: int = 60) -> list[float]:
    if len(values) == 0:
        return []
    return [float(b.mean()) for b in np.array_split(np.asarray(values, float), min(width, len(values)))]
