"""The zoomable timeline of the HTML report (plotly), one figure with a shared time axis:
load (with the plan's forecast), replicas, cores and latency, one row for each input
given. Drag across a burst to zoom every row to it; double-click to zoom out.

plotly.js is embedded in the page (about 4.8 MB for plotly 7), so the report opens
offline and fetches nothing. plotly is imported here only, when a report is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from themis.planner.model.serving import Schedule
from themis.planner.traffic.trace import Trace
from themis.reports.timeline import (
    INTERACTIVE_POINTS,
    TimeAxis,
    duration_text,
    latency_buckets,
    planned_load,
    rate_band,
    schedule_steps,
)

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

ROW_HEIGHT_PX = 230
CONFIG = {"displaylogo": False, "responsive": True, "scrollZoom": False}
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def timeline_html(figure: Figure, *, div_id: str = "timeline") -> str:
    """A `<div>` with the figure and, before it, the whole plotly.js bundle (no network)."""
    return figure.to_html(full_html=False, include_plotlyjs=True, div_id=div_id, config=CONFIG)


def timeline_figure(trace: Trace | None, schedule: Schedule | None, requests: pd.DataFrame | None, slo_ms: float | None,
                    axis: TimeAxis) -> Figure:
    """The plotly figure: one row per series given, all on one zoomable time axis."""
    from plotly.subplots import make_subplots

    rows: list[tuple[str, Callable[[Figure, int], None]]] = []
    if trace is not None:
        rows.append(("requests/s", lambda fig, r: _load_row(fig, r, trace, schedule, axis)))
    if schedule is not None:
        rows.append(("replicas", lambda fig, r: _schedule_row(fig, r, schedule, axis, "replicas")))
        rows.append(("cores (all replicas)", lambda fig, r: _schedule_row(fig, r, schedule, axis, "total_cores")))
    if requests is not None:
        rows.append(("latency (ms)", lambda fig, r: _latency_row(fig, r, requests, slo_ms, axis)))
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.035)
    for r, (title, draw) in enumerate(rows, start=1):
        draw(fig, r)
        fig.update_yaxes(title_text=title, row=r, col=1, rangemode="tozero")
        domain = fig.get_subplot(r, 1).yaxis.domain
        fig.update_layout({_legend(r): {"x": 1.01, "y": domain[1], "xanchor": "left", "yanchor": "top", "traceorder": "normal"}})
    if requests is not None:
        ticks = _log_ticks(requests["latency_ms"].to_numpy(), slo_ms)
        fig.update_yaxes(type="log", rangemode="normal", tickvals=ticks, ticktext=[f"{v:g}" for v in ticks], row=len(rows), col=1)
    fig.update_xaxes(title_text=axis.label, row=len(rows), col=1)
    fig.update_layout(height=ROW_HEIGHT_PX * len(rows) + 80, margin={"l": 70, "r": 250, "t": 20, "b": 50},
                      hovermode="x unified", template="plotly_white")
    return fig


def _log_ticks(values_ms: np.ndarray, slo_ms: float | None) -> list[float]:
    """1, 2, 5 of every decade the latencies (and the SLO) span: plain numbers on a log axis."""
    finite = values_ms[np.isfinite(values_ms) & (values_ms > 0)]
    span = [float(finite.min()), float(finite.max())] if finite.size else [1.0, 1000.0]
    if slo_ms:
        span.append(slo_ms)
    low, high = math.floor(math.log10(min(span))), math.ceil(math.log10(max(span)))
    return [m * 10.0**e for e in range(low, high + 1) for m in (1, 2, 5)]


def _legend(row: int) -> str:
    return "legend" if row == 1 else f"legend{row}"


def _x(axis: TimeAxis, t_s: Any) -> Any:
    return axis.positions(t_s)


def _load_row(fig: Figure, row: int, trace: Trace, schedule: Schedule | None, axis: TimeAxis) -> None:
    import plotly.graph_objects as go

    band = rate_band(trace, INTERACTIVE_POINTS)
    x = _x(axis, band.t_s)
    legend = _legend(row)
    if band.bucket_s > band.finest_s:
        fig.add_trace(go.Scatter(x=x, y=band.low, mode="lines", line={"width": 0, "shape": "hv"}, showlegend=False,
                                 hoverinfo="skip", legend=legend), row=row, col=1)
        fig.add_trace(go.Scatter(x=x, y=band.high, mode="lines", line={"width": 0, "shape": "hv"}, fill="tonexty",
                                 fillcolor="rgba(31,119,180,0.25)", name=f"min-max of {duration_text(band.finest_s)} rates",
                                 legend=legend), row=row, col=1)
    fig.add_trace(go.Scatter(x=x, y=band.mid, mode="lines", line={"color": _PALETTE[0], "width": 1.2, "shape": "hv"},
                             name=f"mean per {duration_text(band.bucket_s)}", legend=legend), row=row, col=1)
    if schedule is not None:
        planned = planned_load(schedule, max(band.bucket_s, schedule.interval_s))
        per = "" if planned.bucket_s <= schedule.interval_s else f", max per {duration_text(planned.bucket_s)}"
        fig.add_trace(go.Scatter(x=_x(axis, planned.t_s), y=planned.high, mode="lines",
                                 line={"color": _PALETTE[1], "width": 1.2, "shape": "hv"},
                                 name=f"planned load ({schedule.policy}){per}", legend=legend), row=row, col=1)


def _schedule_row(fig: Figure, row: int, schedule: Schedule, axis: TimeAxis, column: str) -> None:
    import plotly.graph_objects as go

    for k, (name, rows) in enumerate(schedule_steps(schedule).items()):
        fig.add_trace(go.Scatter(x=_x(axis, rows["t_start_s"].to_numpy()), y=rows[column].to_numpy(), mode="lines",
                                 line={"color": _PALETTE[(k + 2) % len(_PALETTE)], "width": 1.5, "shape": "hv"},
                                 name=name, legend=_legend(row)), row=row, col=1)


def _latency_row(fig: Figure, row: int, requests: pd.DataFrame, slo_ms: float | None, axis: TimeAxis) -> None:
    import plotly.graph_objects as go

    buckets = latency_buckets(requests, INTERACTIVE_POINTS)
    per = duration_text(buckets.bucket_s)
    legend = _legend(row)
    x = _x(axis, buckets.t_s)
    fig.add_trace(go.Scatter(x=x, y=buckets.p99_ms, mode="lines", line={"color": _PALETTE[4], "width": 1.4, "shape": "hv"},
                             name=f"p99 per {per}", legend=legend), row=row, col=1)
    fig.add_trace(go.Scatter(x=x, y=buckets.max_ms, mode="lines", line={"width": 0, "shape": "hv"}, fill="tonexty",
                             fillcolor="rgba(148,103,189,0.18)", name=f"p99 to worst per {per}", legend=legend), row=row, col=1)
    fig.add_trace(go.Scatter(x=x, y=buckets.p50_ms, mode="lines", line={"color": _PALETTE[2], "width": 1.4, "shape": "hv"},
                             name=f"p50 per {per}", legend=legend), row=row, col=1)
    if slo_ms and len(buckets.t_s):
        ends = _x(axis, [0.0, float(requests["arrival_s"].max())])
        fig.add_trace(go.Scatter(x=ends, y=[slo_ms, slo_ms], mode="lines", line={"color": "red", "dash": "dash", "width": 1.2},
                                 name=f"SLO {slo_ms:g} ms", legend=legend), row=row, col=1)
