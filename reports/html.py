"""One self-contained HTML report plus a PNG per plot beside it.

A pure renderer of saved artefacts: profile tables, a trace, a plan JSON, a per-request
simulation table (`themis simulate --out requests.parquet`), a comparison JSON
(`themis compare --out cmp.json`) and a replay result (`themis replay --out x.json`; its
sections are `replay_html`'s). Each section appears when its input is given.

The page shows the profiles and the comparison as embedded PNGs, and the time series
(load, schedule, latency) as one zoomable plotly figure with its JavaScript embedded, so
the file opens offline. The PNGs beside the page hold every plot, time series included,
for documents and CI summaries (`static_plots`).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from themis.common import SCHEMA_VERSION, __version__
from themis.common.atomic import write_atomic, write_text_atomic
from themis.common.errors import InputError
from themis.planner.model.serving import Schedule
from themis.planner.traffic.trace import Trace
from themis.profiler.table import MEASURED_STATUSES
from themis.reports.html_parts import html_section, html_table


@dataclass
class ReportInputs:
    """What the report is made from; any of them may be missing."""

    profiles: list[pd.DataFrame] = field(default_factory=list)
    trace: Trace | None = None
    schedule: Schedule | None = None
    requests: pd.DataFrame | None = None
    """Per-request simulation table: arrival_s, latency_ms, violated (and slo_ms)."""
    comparison: dict[str, Any] | None = None
    replay: dict[str, Any] | None = None
    """A replay result's JSON form (`kind: replay`)."""
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
    from themis.reports import static_plots
    from themis.reports.interactive_plots import timeline_figure, timeline_html
    from themis.reports.profile_view import planned_cells, profile_curves
    from themis.reports.timeline import time_axis

    html_path = Path(html_path)
    slo_ms = _slo_ms(inputs)
    pngs: dict[str, bytes] = {}
    sections: list[str] = []
    for frame in inputs.profiles:
        measured = frame[frame["status"].isin(MEASURED_STATUSES)]
        for (model, kind, device), cells in measured.groupby(["model", "device_kind", "device_name"], sort=True):
            device_label = "cpu" if kind == "cpu" else str(device)
            curves = profile_curves(cells, str(model), str(kind), str(device), planned_cells(inputs.schedule, str(model), device_label))
            key = f"profile_{_slug(str(model))}" + ("" if kind == "cpu" else f"_{_slug(device_label)}")
            heading = f"Profile: {model}" + ("" if kind == "cpu" else f" on {device_label}")
            pngs[key] = static_plots.png(static_plots.profile_figure(str(model), curves))
            unmeasured = planned_cells(inputs.schedule, str(model), device_label) - _measured_cells(cells)
            sections.append(html_section(heading, _img(key, pngs[key]) + _profile_note(cells, unmeasured)))
    if inputs.trace is not None or inputs.schedule is not None or inputs.requests is not None:
        axis = time_axis(_trace_start(inputs), _duration_s(inputs))
        if inputs.trace is not None:
            pngs["trace"] = static_plots.png(static_plots.trace_figure(inputs.trace, inputs.schedule, axis))
        if inputs.schedule is not None:
            pngs["schedule"] = static_plots.png(static_plots.schedule_figure(inputs.schedule, axis))
        if inputs.requests is not None:
            pngs["latency"] = static_plots.png(static_plots.latency_figure(inputs.requests, slo_ms, axis))
        figure = timeline_html(timeline_figure(inputs.trace, inputs.schedule, inputs.requests, slo_ms, axis))
        notes = [_trace_note(inputs.trace) if inputs.trace is not None else "",
                 _totals_table(inputs.schedule) if inputs.schedule is not None else "",
                 _latency_note(inputs.requests, slo_ms) if inputs.requests is not None else ""]
        sections.append(html_section("Load, schedule and latency over time", _ZOOM_HINT + figure + "".join(notes)))
    if inputs.comparison is not None and inputs.comparison.get("kind") == "llm_comparison":
        sections.append(_llm_comparison_section(inputs.comparison, pngs))
    elif inputs.comparison is not None:
        pngs["comparison"] = static_plots.png(static_plots.comparison_figure(inputs.comparison))
        sections.append(html_section("Policy comparison", _img("comparison", pngs["comparison"]) + _comparison_table(inputs.comparison)))
    if inputs.replay is not None:
        from themis.reports.replay_html import replay_sections

        has_plotlyjs = inputs.trace is not None or inputs.schedule is not None or inputs.requests is not None
        sections += replay_sections(inputs.replay, plotlyjs=not has_plotlyjs)
    if not sections:
        raise InputError("nothing to report: give at least one of --profile, --trace, --plan, --simulation, --comparison, --replay")
    png_paths = [write_atomic(html_path.with_name(f"{html_path.stem}_{key}.png"), lambda tmp, data=data: tmp.write_bytes(data))
                 for key, data in pngs.items()]
    page = _PAGE.format(title=html.escape(inputs.title), version=html.escape(__version__), body="\n".join(sections))
    write_text_atomic(html_path, page)
    return ReportResult(html_path, png_paths)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
img {{ max-width: 100%; }}
.hint {{ color: #555; font-size: 0.9em; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
</style></head>
<body><h1>{title}</h1><p>themis {version}</p>
{body}
</body></html>
"""

_ZOOM_HINT = ('<p class="hint">Drag across a burst to zoom every row to it; double-click to zoom out. '
              "Each line is aggregated per bucket (named in its legend); bands show the range inside a bucket.</p>")



def _img(key: str, data: bytes) -> str:
    return f'<img alt="{html.escape(key)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'


def _slo_ms(inputs: ReportInputs) -> float | None:
    if inputs.slo_ms:
        return inputs.slo_ms
    if inputs.replay is not None and inputs.replay["settings"].get("slo_ms"):
        return float(inputs.replay["settings"]["slo_ms"])
    if inputs.schedule is not None:
        return inputs.schedule.slo_ms
    return inputs.comparison.get("slo_ms") if inputs.comparison else None


def _trace_start(inputs: ReportInputs) -> str | None:
    if inputs.trace is not None:
        return inputs.trace.trace_start
    return inputs.schedule.trace_start if inputs.schedule is not None else None


def _duration_s(inputs: ReportInputs) -> float:
    spans = [inputs.trace.duration_s] if inputs.trace is not None else []
    if inputs.schedule is not None and inputs.schedule.steps:
        spans.append(inputs.schedule.steps[-1].t_end_s)
    if inputs.requests is not None and len(inputs.requests):
        spans.append(float(inputs.requests["arrival_s"].max()))
    return max(spans, default=0.0)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)



def _measured_cells(cells: pd.DataFrame) -> set[tuple[int, int]]:
    return {(int(b), int(c)) for b, c in zip(cells["batch_size"], cells["cores"])}


def _profile_note(cells: pd.DataFrame, unmeasured: set[tuple[int, int]]) -> str:
    first = cells.iloc[0]
    text = f"{first.get('device_kind', '')} {first.get('device_name', '')}: {len(cells)} measured cells."
    untrusted = cells[cells["status"] != "ok"]
    if len(untrusted):
        counts = ", ".join(f"{n} {status}" for status, n in untrusted["status"].value_counts().sort_index().items())
        text += (f" Not trusted: {counts} (measured while the machine was busy or never settling); "
                 "re-measure them on an idle machine before relying on this curve.")
    if unmeasured:
        listed = ", ".join(f"batch {b} on {c} cores" for b, c in sorted(unmeasured, key=lambda bc: (bc[1], bc[0])))
        text += (f" The plan also runs {listed}, never measured: those cells are the latency model's prediction, "
                 "drawn hollow on a dashed line (extrapolated).")
    return f"<p>{html.escape(text)}</p>"


def _trace_note(trace: Trace) -> str:
    start = trace.trace_start or "no calendar time"
    return f"<p>{trace.requests:,} requests over {trace.duration_s / 3600:.2f} hours (start: {html.escape(start)}).</p>"


def _totals_table(schedule: Schedule) -> str:
    totals = schedule.totals()
    return html_table(["core-hours", "cost", "scale actions", "steps"],
                  [[f"{totals['core_seconds'] / 3600:.2f}", f"{totals['cost']:.2f}", totals["scale_actions"], len(schedule.steps)]])


def _latency_note(requests: pd.DataFrame, slo_ms: float | None) -> str:
    violated = int(requests["violated"].sum()) if "violated" in requests else 0
    return f"<p>{len(requests):,} requests, {violated:,} over the SLO ({slo_ms or 'n/a'} ms).</p>"


def _comparison_table(comparison: dict[str, Any]) -> str:
    def ms(value: float | None) -> str:
        return "inf" if value is None else f"{value:,.1f}"

    rows = []
    for name, row in comparison["policies"].items():
        ratio = row.get("ratio_to_themis", {}).get("violations")
        rows.append([name, f"{row['violation_rate']:.2%}", f"{row['violations']:,}", ms(row["p50_ms"]), ms(row["p95_ms"]),
                     ms(row["p99_ms"]), f"{row['core_seconds'] / 3600:.2f}", row["scale_actions"],
                     "n/a" if ratio is None else f"{ratio:.2f}x"])
    return html_table(["policy", "violation rate", "violations", "p50 ms", "p95 ms", "p99 ms", "core-hours", "scale actions",
                   "violations / themis"], rows)


def _llm_comparison_section(comparison: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """An LLM comparison: TTFT/TPOT, goodput and replicas over time, bars per policy, the table."""
    from themis.reports import llm_plots, static_plots
    from themis.reports.llm_tables import slo_text

    pngs["llm_timeline"] = static_plots.png(llm_plots.llm_timeline_figure(comparison, llm_plots.comparison_axis(comparison)))
    pngs["comparison"] = static_plots.png(llm_plots.llm_comparison_figure(comparison))

    def ms(value: float | None) -> str:
        return "inf" if value is None else f"{value:,.1f}"

    rows = []
    for name, row in comparison["policies"].items():
        per_mtok = row["cost_per_mtok"]
        rows.append([name, f"{row['violation_rate']:.2%}", f"{row['goodput_rps'] or 0:,.3f}", ms(row["ttft_p99_ms"]),
                     ms(row["tpot_p99_ms"]),
                     f"{row['unit_seconds'] / 3600:.2f}", f"{row['cost']:.4f}", "n/a" if per_mtok is None else f"{per_mtok:.4f}",
                     row["scale_actions"]])
    table = html_table(["policy", "violation rate", "goodput rps", "TTFT p99 ms", "TPOT p99 ms", "unit-hours", "cost", "cost per Mtok",
                    "scale actions"], rows)
    note = (f"<p>{html.escape(slo_text(comparison['slo']))}; a violation is a request missing TTFT or TPOT; unit-hours are core-hours "
            "(CPU replicas) plus GPU-hours.</p>")
    body = _img("llm_timeline", pngs["llm_timeline"]) + _img("comparison", pngs["comparison"]) + note + table
    return html_section(f"LLM policy comparison: {comparison['trace']}", body)
