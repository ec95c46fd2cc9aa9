"""One self-contained HTML report (plots embedded as PNG data URIs) plus the PNG files.

A pure renderer of saved artefacts: profile tables, a trace, a plan JSON, a per-request
simulation table (`themis simulate --out requests.parquet`) and a comparison JSON
(`themis compare --out cmp.json`). Each section appears when its input is given.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from themis.common import SCHEMA_VERSION, __version__  # noqa: E402
from themis.common.atomic import write_atomic, write_text_atomic  # noqa: E402
from themis.planner.model.serving import Schedule  # noqa: E402
from themis.planner.traffic.trace import Trace  # noqa: E402


@dataclass
class ReportInputs:
    """What the report is made from; any of them may be missing."""

    profiles: list[pd.DataFrame] = field(default_factory=list)
    trace: Trace | None = None
    schedule: Schedule | None = None
    requests: pd.DataFrame | None = None
    """Per-request simulation table: arrival_s, latency_ms, violated (and slo_ms)."""
    comparison: dict[str, Any] | None = None
    slo_ms: float | None = None
    title: str = "themis report"


@dataclass
class ReportResult:
    html_path: Path
    png_paths: list[Path]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "report",
            "html": str(self.html_path),
            "png": [str(p) for p in self.png_paths],
        }


def render_report(inputs: ReportInputs, html_path: str | Path) -> ReportResult:
    """Write `html_path` and one PNG per plot beside it (named `<stem>_<plot>.png`)."""
    html_path = Path(html_path)
    sections: list[tuple[str, str, bytes | None, str]] = []  # (key, heading, png, extra html)
    slo_ms = inputs.slo_ms or (inputs.schedule.slo_ms if inputs.schedule else None)
    if slo_ms is None and inputs.comparison:
        slo_ms = inputs.comparison.get("slo_ms")
    for frame in inputs.profiles:
        for model, cells in frame[frame["status"] == "ok"].groupby("model", sort=True):
            sections.append((f"profile_{_slug(model)}", f"Profile: {model}", _plot_profile(str(model), cells), _profile_note(cells)))
    if inputs.trace is not None:
        sections.append(("trace", "Trace and forecast", _plot_trace(inputs.trace, inputs.schedule), _trace_note(inputs.trace)))
    if inputs.schedule is not None:
        sections.append(("schedule", f"Schedule ({inputs.schedule.policy})", _plot_schedule(inputs.schedule), _totals_table(inputs.schedule)))
    if inputs.requests is not None:
        sections.append(("latency", "Latency over time", _plot_latency(inputs.requests, slo_ms), _latency_note(inputs.requests, slo_ms)))
    if inputs.comparison is not None:
        sections.append(("comparison", "Policy comparison", _plot_comparison(inputs.comparison), _comparison_table(inputs.comparison)))
    if not sections:
        from themis.common.errors import InputError

        raise InputError("nothing to report: give at least one of --profile, --trace, --plan, --simulation, --comparison")
    png_paths = []
    body = []
    for key, heading, png, extra in sections:
        png_path = html_path.with_name(f"{html_path.stem}_{key}.png")
        write_atomic(png_path, lambda tmp, data=png: tmp.write_bytes(data))
        png_paths.append(png_path)
        data_uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        body.append(
            f'<section><h2>{html.escape(heading)}</h2><img alt="{html.escape(heading)}" src="{data_uri}">{extra}</section>'
        )
    page = _PAGE.format(title=html.escape(inputs.title), version=html.escape(__version__), body="\n".join(body))
    write_text_atomic(html_path, page)
    return ReportResult(html_path, png_paths)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
img {{ max-width: 100%; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
</style></head>
<body><h1>{title}</h1><p>themis {version}</p>
{body}
</body></html>
"""


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _plot_profile(model: str, cells: pd.DataFrame) -> bytes:
    """Latency against batch per core count, and throughput per core."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for cores, rows in cells.groupby("cores", sort=True):
        rows = rows.sort_values("batch_size")
        left.plot(rows["batch_size"], rows["p50_ms"], marker="o", label=f"{cores} cores (p50)")
        left.fill_between(rows["batch_size"], rows["p50_ms"], rows["p99_ms"], alpha=0.15)
        right.plot(rows["batch_size"], rows["throughput_ips"] / cores, marker="o", label=f"{cores} cores")
    left.set(xscale="log", yscale="log", xlabel="batch size", ylabel="latency (ms), band to p99", title=f"{model}: latency")
    right.set(xscale="log", xlabel="batch size", ylabel="items/s per core", title=f"{model}: throughput per core")
    left.legend()
    right.legend()
    return _png(fig)


def _profile_note(cells: pd.DataFrame) -> str:
    first = cells.iloc[0]
    return f"<p>{html.escape(str(first.get('device_kind', '')))} {html.escape(str(first.get('device_name', '')))}: {len(cells)} measured cells.</p>"


def _plot_trace(trace: Trace, schedule: Schedule | None) -> bytes:
    fig, ax = plt.subplots(figsize=(11, 3.5))
    interval_s = schedule.interval_s if schedule else max(60.0, trace.interval_s)
    try:
        rates = trace.rate_series(interval_s)
        peaks = trace.peak_rates(interval_s)
    except ValueError:
        interval_s = trace.interval_s
        rates, peaks = trace.rates_rps, trace.rates_rps
    t = np.arange(len(rates)) * interval_s
    ax.step(t, rates, where="post", label=f"mean rps per {interval_s:g} s")
    ax.step(t, peaks, where="post", label="peak rps (1 s window)", alpha=0.7)
    if schedule is not None:
        ax.step([s.t_start_s for s in schedule.steps], [s.forecast_rps for s in schedule.steps], where="post",
                linestyle="--", label=f"planned load ({schedule.policy} forecast)")
    ax.set(xlabel="seconds from trace start", ylabel="requests/s", title=trace.name)
    ax.legend()
    return _png(fig)


def _trace_note(trace: Trace) -> str:
    start = trace.trace_start or "no calendar time"
    return f"<p>{trace.requests:,} requests over {trace.duration_s / 60:.1f} minutes (start: {html.escape(start)}).</p>"


def _plot_schedule(schedule: Schedule) -> bytes:
    frame = schedule.to_frame()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 5), sharex=True)
    for stage, rows in frame.groupby("stage", sort=False):
        top.step(rows["t_start_s"], rows["replicas"], where="post", label=f"{stage}: replicas")
        bottom.step(rows["t_start_s"], rows["total_cores"], where="post", label=f"{stage}: cores")
    top.set(ylabel="replicas", title=f"{schedule.policy} schedule")
    bottom.set(ylabel="cores (all replicas)", xlabel="seconds from trace start")
    top.legend()
    bottom.legend()
    return _png(fig)


def _totals_table(schedule: Schedule) -> str:
    totals = schedule.totals()
    return _table(["core-hours", "cost", "scale actions", "steps"],
                  [[f"{totals['core_seconds'] / 3600:.2f}", f"{totals['cost']:.2f}", totals["scale_actions"], len(schedule.steps)]])


def _plot_latency(requests: pd.DataFrame, slo_ms: float | None) -> bytes:
    """p50 and p99 per 10 s bucket (and the worst) against the SLO line."""
    fig, ax = plt.subplots(figsize=(11, 3.5))
    finite = requests[np.isfinite(requests["latency_ms"])]
    if len(finite):
        buckets = (finite["arrival_s"] // 10.0) * 10.0
        grouped = finite.groupby(buckets)["latency_ms"]
        ax.plot(grouped.quantile(0.5).index, grouped.quantile(0.5).values, label="p50 per 10 s")
        ax.plot(grouped.quantile(0.99).index, grouped.quantile(0.99).values, label="p99 per 10 s")
        ax.plot(grouped.max().index, grouped.max().values, alpha=0.4, label="max per 10 s")
    if slo_ms:
        ax.axhline(slo_ms, color="red", linestyle="--", label=f"SLO {slo_ms:g} ms")
    ax.set(yscale="log", xlabel="arrival (s from trace start)", ylabel="latency (ms)")
    ax.legend()
    return _png(fig)


def _latency_note(requests: pd.DataFrame, slo_ms: float | None) -> str:
    violated = int(requests["violated"].sum()) if "violated" in requests else 0
    return f"<p>{len(requests):,} requests, {violated:,} over the SLO ({slo_ms or 'n/a'} ms).</p>"


def _plot_comparison(comparison: dict[str, Any]) -> bytes:
    rows = comparison["policies"]
    names = list(rows)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.5))
    left.bar(names, [100.0 * rows[n]["violation_rate"] for n in names], color="tab:red")
    left.set(ylabel="SLO violations (%)", title="violation rate")
    right.bar(names, [rows[n]["core_seconds"] / 3600.0 for n in names], color="tab:blue")
    right.set(ylabel="core-hours", title="cost")
    for ax in (left, right):
        ax.tick_params(axis="x", rotation=30)
    return _png(fig)


def _comparison_table(comparison: dict[str, Any]) -> str:
    def ms(value: float | None) -> str:
        return "inf" if value is None else f"{value:,.1f}"

    rows = []
    for name, row in comparison["policies"].items():
        ratio = row.get("ratio_to_themis", {}).get("violations")
        rows.append([name, f"{row['violation_rate']:.2%}", f"{row['violations']:,}", ms(row["p50_ms"]), ms(row["p95_ms"]),
                     ms(row["p99_ms"]), f"{row['core_seconds'] / 3600:.2f}", row["scale_actions"],
                     "n/a" if ratio is None else f"{ratio:.2f}x"])
    return _table(["policy", "violation rate", "violations", "p50 ms", "p95 ms", "p99 ms", "core-hours", "scale actions",
                   "violations / themis"], rows)
