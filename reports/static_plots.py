"""The report's PNG pictures (matplotlib), drawn to be read, not just looked at:

- legends sit outside the axes, so they never hide data;
- batch axes are base-2 logarithmic with plain ticks (1, 2, 4, 8);
- time axes are hours, minutes or UTC clock time (`timeline.time_axis`);
- day-long series are aggregated into bands (`timeline`), so their lines stay apart;
- profile cells the plan uses but the profile never measured are drawn hollow and dashed,
  labelled "extrapolated".
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FixedLocator,
    FuncFormatter,
    LogLocator,
    NullFormatter,
    NullLocator,
    ScalarFormatter,
)

from themis.planner.model.serving import Schedule  # noqa: E402
from themis.planner.traffic.trace import Trace  # noqa: E402
from themis.reports.profile_view import ProfileCurve  # noqa: E402
from themis.reports.timeline import (  # noqa: E402
    STATIC_POINTS,
    TimeAxis,
    duration_text,
    latency_buckets,
    planned_load,
    rate_band,
    schedule_steps,
)

WIDTH_IN = 11.0
DPI = 90
LEGEND = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0, "frameon": False}


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (tight bounding box, so outside legends are kept); closes it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def profile_figure(model: str, curves: list[ProfileCurve]) -> Figure:
    """Latency (p50 line, band to p99) and items/s per core against batch, per core count."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH_IN, 4), layout="constrained")
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(curves), 1)))
    for curve, colour in zip(curves, colours):
        label = f"{curve.cores} core{'s' if curve.cores > 1 else ''}" + ("" if curve.measured else " (extrapolated)")
        style = "-" if curve.measured else "--"
        left.plot(curve.batch, curve.p50_ms, style, color=colour, label=label)
        right.plot(curve.batch, curve.items_per_core_s, style, color=colour)
        for ax, values in ((left, curve.p50_ms), (right, curve.items_per_core_s)):
            solid, hollow = ~curve.extrapolated, curve.extrapolated
            ax.plot(curve.batch[solid], values[solid], "o", color=colour)
            ax.plot(curve.batch[hollow], values[hollow], "o", markerfacecolor="white", markeredgecolor=colour)
        measured = ~curve.extrapolated
        left.fill_between(curve.batch[measured], curve.p50_ms[measured], curve.p99_ms[measured], color=colour, alpha=0.15)
    batches = sorted({int(b) for c in curves for b in c.batch})
    for ax in (left, right):
        _batch_axis(ax, batches)
    left.set(yscale="log", ylabel="latency (ms): p50, band to p99", title=f"{model}: latency per batch")
    right.set(ylabel="items/s per core", title=f"{model}: throughput per core")
    _log_axis(left.yaxis)
    if any(c.extrapolated.any() for c in curves):
        left.plot([], [], "o", markerfacecolor="white", markeredgecolor="grey", label="hollow: extrapolated cell")
    fig.legend(*left.get_legend_handles_labels(), loc="outside right upper", frameon=False)
    return fig


def trace_figure(trace: Trace, schedule: Schedule | None, axis: TimeAxis) -> Figure:
    """Mean load per bucket inside its min-max band, with the plan's forecast."""
    band = rate_band(trace, STATIC_POINTS)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.5))
    x = axis.positions(band.t_s)
    finest = duration_text(band.finest_s)
    if band.bucket_s > band.finest_s:
        ax.fill_between(x, band.low, band.high, step="post", alpha=0.25, color="tab:blue", linewidth=0,
                        label=f"min-max of {finest} rates")
    ax.step(x, band.mid, where="post", color="tab:blue", label=f"mean rate per {duration_text(band.bucket_s)}")
    if schedule is not None:
        planned = planned_load(schedule, max(band.bucket_s, schedule.interval_s))
        per = "" if planned.bucket_s <= schedule.interval_s else f", max per {duration_text(planned.bucket_s)}"
        ax.step(axis.positions(planned.t_s), planned.high, where="post", color="tab:orange", linewidth=1.0,
                label=f"planned load ({schedule.policy}){per}")
    ax.set(ylabel="requests/s", title=trace.name, ylim=(0, None))
    _time_axis(ax, axis)
    ax.legend(**LEGEND)
    return fig


def schedule_figure(schedule: Schedule, axis: TimeAxis) -> Figure:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(WIDTH_IN, 5), sharex=True)
    for name, rows in schedule_steps(schedule).items():
        x = axis.positions(rows["t_start_s"].to_numpy())
        top.step(x, rows["replicas"], where="post", label=name)
        bottom.step(x, rows["total_cores"], where="post", label=name)
    top.set(ylabel="replicas", title=f"{schedule.policy} schedule", ylim=(0, None))
    bottom.set(ylabel="cores (all replicas)", ylim=(0, None))
    _time_axis(bottom, axis)
    top.legend(title="stage", **LEGEND)
    return fig


def latency_figure(requests: Any, slo_ms: float | None, axis: TimeAxis) -> Figure:
    """p50 and p99 per bucket with the worst request, against the SLO."""
    buckets = latency_buckets(requests, STATIC_POINTS)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.5))
    per = duration_text(buckets.bucket_s)
    if len(buckets.t_s):
        x = axis.positions(buckets.t_s)
        ax.fill_between(x, buckets.p99_ms, buckets.max_ms, step="post", color="tab:purple", alpha=0.15, linewidth=0,
                        label=f"p99 to worst per {per}")
        ax.step(x, buckets.p99_ms, where="post", color="tab:purple", label=f"p99 per {per}")
        ax.step(x, buckets.p50_ms, where="post", color="tab:green", label=f"p50 per {per}")
    if slo_ms:
        ax.axhline(slo_ms, color="red", linestyle="--", label=f"SLO {slo_ms:g} ms")
    ax.set(yscale="log", ylabel="latency (ms)", title="latency of the requests arriving in each bucket")
    _log_axis(ax.yaxis)
    _time_axis(ax, axis)
    ax.legend(**LEGEND)
    return fig


def comparison_figure(comparison: dict[str, Any]) -> Figure:
    rows = comparison["policies"]
    names = list(rows)
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH_IN, 3.5), layout="constrained")
    left.bar(names, [100.0 * rows[n]["violation_rate"] for n in names], color="tab:red")
    left.set(ylabel="SLO violations (%)", title="violation rate")
    right.bar(names, [rows[n]["core_seconds"] / 3600.0 for n in names], color="tab:blue")
    right.set(ylabel="core-hours", title="cost")
    for ax in (left, right):
        ax.tick_params(axis="x", rotation=30)
    return fig


def _batch_axis(ax: Any, batches: list[int]) -> None:
    """Base-2 log scale with a plain tick at every batch size drawn (1, 2, 4, 8, ...)."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(batches))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("batch size")


def _log_axis(yaxis: Any) -> None:
    """Log scale read as plain numbers: ticks at 1, 2 and 5 of each decade, no 10^k labels."""
    yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    yaxis.set_minor_formatter(NullFormatter())


def _time_axis(ax: Any, axis: TimeAxis) -> None:
    if axis.start is not None:
        locator = mdates.AutoDateLocator(minticks=4, maxticks=12)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel(axis.label)
