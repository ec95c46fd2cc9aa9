"""The report's pictures of an LLM comparison (matplotlib, in the style of `static_plots`):
TTFT and TPOT over time against their SLOs, goodput and replicas per policy, and per-policy
bars of SLO violations, goodput and cost per million tokens. Pure renderers of the
comparison JSON (`themis compare --out cmp.json` on an LLM service)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from themis.reports.static_plots import LEGEND, WIDTH_IN, _log_axis, _time_axis, plt
from themis.reports.timeline import TimeAxis, time_axis


def comparison_axis(comparison: dict[str, Any]) -> TimeAxis:
    return time_axis(comparison.get("trace_start"), float(comparison["horizon_s"]))


def _series(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    """The values of `key` per interval, the last repeated so its step reaches the interval's end."""
    values = [np.nan if row[key] is None else float(row[key]) for row in rows]
    return np.array(values + values[-1:])


def _edges(rows: list[dict[str, Any]], interval_s: float, axis: TimeAxis) -> np.ndarray:
    """Every interval's start, and the last one's end."""
    starts = [float(row["t_start_s"]) for row in rows]
    return axis.positions(np.array(starts + [starts[-1] + interval_s]))


def llm_timeline_figure(comparison: dict[str, Any], axis: TimeAxis) -> Figure:
    """Per interval and policy: p99 TTFT and p99 TPOT (log scale, SLO dashed), goodput, replicas."""
    slo = comparison["slo"]
    q = f"p{slo['percentile']:g}"
    fig, rows = plt.subplots(4, 1, figsize=(WIDTH_IN, 9), sharex=True)
    ttft, tpot, goodput, replicas = rows
    interval_s = float(comparison["interval_s"])
    for name, data in comparison["policies"].items():
        timeline = data["timeline"]
        x = _edges(timeline, interval_s, axis)
        ttft.step(x, _series(timeline, "ttft_p99_ms"), where="post", label=name)
        tpot.step(x, _series(timeline, "tpot_p99_ms"), where="post", label=name)
        goodput.step(x, _series(timeline, "goodput_rps"), where="post", label=name)
        replicas.step(x, _series(timeline, "replicas"), where="post", label=name)
    first = next(iter(comparison["policies"].values()))["timeline"]
    goodput.step(_edges(first, interval_s, axis), _series(first, "requests") / interval_s, where="post", color="grey",
                 linestyle=":", label="arrivals")
    ttft.axhline(slo["ttft_ms"], color="red", linestyle="--", label=f"SLO {slo['ttft_ms']:g} ms")
    tpot.axhline(slo["tpot_ms"], color="red", linestyle="--", label=f"SLO {slo['tpot_ms']:g} ms")
    per = f"per {interval_s:g} s interval, by arrival"
    ttft.set(yscale="log", ylabel=f"TTFT {q} (ms)", title=f"{comparison['trace']}: time to first token {per}")
    tpot.set(yscale="log", ylabel=f"TPOT {q} (ms)", title="time per output token")
    goodput.set(ylabel="requests/s", title="goodput: requests meeting both SLOs", ylim=(0, None))
    replicas.set(ylabel="replicas", title="replicas asked for (booting included)", ylim=(0, None))
    for ax in (ttft, tpot):
        _log_axis(ax.yaxis)
    for ax in rows:
        ax.legend(**LEGEND)
    _time_axis(replicas, axis)
    return fig


def llm_comparison_figure(comparison: dict[str, Any]) -> Figure:
    """Per policy: share of requests missing an SLO, goodput, and cost per million tokens
    (unit-hours per million tokens when the comparison has no prices)."""
    rows = comparison["policies"]
    names = list(rows)
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(WIDTH_IN, 3.5), layout="constrained")
    left.bar(names, [100.0 * rows[n]["violation_rate"] for n in names], color="tab:red")
    left.set(ylabel="requests missing TTFT or TPOT (%)", title="SLO violations")
    middle.bar(names, [rows[n]["goodput_rps"] or 0.0 for n in names], color="tab:green")
    middle.set(ylabel="requests/s", title="goodput")
    priced = all(rows[n]["cost_per_mtok"] is not None for n in names)
    if priced:
        right.bar(names, [rows[n]["cost_per_mtok"] for n in names], color="tab:blue")
        right.set(ylabel="cost per million tokens", title="cost per million tokens")
    else:
        right.bar(names, [sum(rows[n]["unit_hours_per_mtok"].values()) for n in names], color="tab:blue")
        right.set(ylabel="core- or GPU-hours per million tokens", title="capacity per million tokens")
    for ax in (left, middle, right):
        ax.tick_params(axis="x", rotation=30)
    return fig
