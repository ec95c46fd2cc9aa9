"""The replay sections of the HTML report: a real run against the simulator's run of it.

A pure renderer of a replay result's JSON form (`themis replay --json` or `--out x.json`,
`kind: replay`). Every replay gets its summary; a replay of a plan on the reference server
(`--serve`) also gets:

- real against simulated: p50/p95/p99, violation rate and core-seconds of the real run and
  of the three simulations (the plan's delays; the measured delays; the measured delays and
  service times), as a table and as grouped bars;
- a zoomable timeline (plotly, JavaScript embedded): p99 and violations per second of the
  trace, real and simulated, and the cores each run's controller asked for over time;
- batch service times the replicas measured against the profile's cells (a scatter with
  the y = x line, and the table);
- the measured cold start and resize delay against the plan's settings, the replicas and
  resizes the server recorded, and the violations per planned step.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from themis.reports.html_parts import html_section, html_table
from themis.reports.interactive_plots import CONFIG

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

_REAL, _SIMULATED = "#d62728", "#1f77b4"
_RUN_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")


def replay_sections(data: dict[str, Any], *, plotlyjs: bool = True) -> list[str]:
    """The report's sections for one replay result (its JSON form). `plotlyjs`: embed
    plotly.js with the first plot (False when the page already has it)."""
    plots = iter([plotlyjs] + [False] * 8)

    def _plot(figure: Figure, div_id: str) -> str:
        return figure.to_html(full_html=False, include_plotlyjs=next(plots), div_id=div_id, config=CONFIG)

    sections = [html_section(f"Replay of {data['settings']['trace']}", _summary(data))]
    comparison = data.get("comparison")
    if comparison is None:
        return sections
    slo_ms = data["settings"]["slo_ms"]
    runs = comparison["runs"]
    sections.append(html_section("Real against simulated (same arrivals, same plan)",
                             _plot(_runs_figure(runs), "replay_runs") + _runs_table(runs) + _RUNS_NOTE))
    sections.append(html_section("Over time", _plot(_timeline_figure(comparison, slo_ms), "replay_timeline")
                             + '<p class="hint">Drag to zoom; double-click to zoom out. Per second of the trace: the p99 and the '
                               "violations of the requests arriving in it; the cores are what each run's controller asked for "
                               "(steps and surges), the real ones when the server applied them.</p>"))
    cells = comparison["service_cells"]
    if cells:
        sections.append(html_section("Batch service time: replicas against the profile",
                                  _plot(_cells_figure(cells), "replay_cells") + _cells_table(cells)))
    sections.append(html_section("Delays: measured against the plan", _delays_table(comparison["delays"]) + _server_tables(data["server"])))
    sections.append(html_section("Violations per planned step", _steps_table(comparison["steps"])))
    return sections


_RUNS_NOTE = ('<p class="hint">"simulated" is what <code>themis simulate</code> predicts (the profile, the plan\'s cold start and '
              "resize delay); \"measured delays\" uses the delays the server measured; \"measured delays and service\" also the "
              "batch service times the replicas measured, leaving only the serving model's own error.</p>")




def _ms(value: float | None) -> str:
    return "inf" if value is None else f"{value:,.1f}"


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def _summary(data: dict[str, Any]) -> str:
    settings = data["settings"]
    slo = settings["slo_ms"]
    text = (f"{data['scheduled']:,} requests scheduled at {data['offered_rps']:,.1f} req/s on average against "
            f"{settings['url']} ({settings['request']}); SLO {f'{slo:g} ms' if slo else 'none'}; scale {settings['scale']:g}, "
            f"speedup {settings['speedup']:g}." + (" Interrupted: the rows so far are kept." if data["interrupted"] else ""))
    if settings.get("serve"):
        text += f" Served: {', '.join(settings['serve'])} (plan policy {settings.get('plan_policy')})."
    table = html_table(
        ["requests", "ok", "failed", "violation rate", "p50 ms", "p95 ms", "p99 ms", "max ms", "sender lag p99 ms"],
        [[f"{data['requests']:,}", f"{data['ok']:,}", f"{data['failed']:,}", f"{data['violation_rate']:.2%}", _ms(data["p50_ms"]),
          _ms(data["p95_ms"]), _ms(data["p99_ms"]), _ms(data["max_ms"]), _ms(data["sender_lag_p99_ms"])]],
    )
    return f"<p>{html.escape(text)}</p>{table}"


def _runs_table(runs: list[dict[str, Any]]) -> str:
    rows = [[r["run"], f"{r['requests']:,}", f"{r['violations']:,}", f"{r['violation_rate']:.2%}", _ms(r["p50_ms"]), _ms(r["p95_ms"]),
             _ms(r["p99_ms"]), f"{r['core_seconds']:,.1f}", _s(r["cold_start_s"]), _s(r["resize_s"])] for r in runs]
    return html_table(["run", "requests", "violations", "violation rate", "p50 ms", "p95 ms", "p99 ms", "core-seconds", "cold start s",
                   "resize s"], rows)


def _runs_figure(runs: list[dict[str, Any]]) -> Figure:
    """p50/p95/p99 per run as grouped bars, and the violation rate beside them."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.7, 0.3], subplot_titles=("latency percentiles (ms)", "violation rate"))
    for k, run in enumerate(runs):
        colour = _RUN_COLOURS[k % len(_RUN_COLOURS)]
        fig.add_trace(go.Bar(x=["p50", "p95", "p99"], y=[run["p50_ms"], run["p95_ms"], run["p99_ms"]], name=run["run"],
                             marker_color=colour, legendgroup=run["run"]), row=1, col=1)
        fig.add_trace(go.Bar(x=[run["run"]], y=[run["violation_rate"]], marker_color=colour, showlegend=False,
                             legendgroup=run["run"]), row=1, col=2)
    fig.update_layout(barmode="group", height=360, margin={"t": 40, "b": 30}, template="plotly_white")
    fig.update_yaxes(tickformat=".1%", rangemode="tozero", row=1, col=2)
    fig.update_xaxes(showticklabels=False, row=1, col=2)
    return fig


def _timeline_figure(comparison: dict[str, Any], slo_ms: float | None) -> Figure:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    seconds = comparison["seconds"]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.05,
                        subplot_titles=("p99 latency per second (ms)", "violations per second", "cores asked for"))
    t = [s["t_s"] for s in seconds]
    for run, colour, dash in (("real", _REAL, "solid"), ("simulated", _SIMULATED, "dash")):
        fig.add_trace(go.Scatter(x=t, y=[s[f"{run}_p99_ms"] for s in seconds], mode="lines", line={"color": colour, "shape": "hv"},
                                 name=f"{run} p99", legendgroup=run), row=1, col=1)
        fig.add_trace(go.Scatter(x=t, y=[s[f"{run}_violations"] for s in seconds], mode="lines",
                                 line={"color": colour, "shape": "hv"}, name=f"{run} violations", legendgroup=run), row=2, col=1)
        actions = [a for a in comparison["actions"] if a["run"] == run]
        end_s = (t[-1] + 1.0) if t else 0.0
        for stage in sorted({a["stage"] for a in actions}):
            mine = [a for a in actions if a["stage"] == stage]
            xs = [a["t_s"] for a in mine] + [max(end_s, mine[-1]["t_s"])]
            ys = [a["total_cores"] for a in mine] + [mine[-1]["total_cores"]]
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": colour, "shape": "hv", "dash": dash, "width": 1.5 + stage},
                                     name=f"{run} cores, stage {stage}", legendgroup=run), row=3, col=1)
    if slo_ms and t:
        fig.add_trace(go.Scatter(x=[t[0], t[-1] + 1.0], y=[slo_ms, slo_ms], mode="lines", line={"color": "black", "dash": "dash"},
                                 name=f"SLO {slo_ms:g} ms"), row=1, col=1)
    fig.update_layout(height=720, margin={"t": 40, "b": 30}, template="plotly_white", hovermode="x unified")
    fig.update_yaxes(rangemode="tozero")
    fig.update_xaxes(title_text="seconds of the trace", row=3, col=1)
    return fig


def _cells_figure(cells: list[dict[str, Any]]) -> Figure:
    """Real p50 against the profile's p50 per (batch, cores), log-log, with y = x."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for cores in sorted({c["cores"] for c in cells}):
        mine = [c for c in cells if c["cores"] == cores]
        fig.add_trace(go.Scatter(
            x=[c["profile_p50_ms"] for c in mine], y=[c["observed_p50_ms"] for c in mine], mode="markers+text",
            text=[f"b{c['batch']}" for c in mine], textposition="top center",
            marker={"size": 9, "symbol": ["circle" if c["profile_measured"] else "circle-open" for c in mine]},
            name=f"{cores} core{'s' if cores > 1 else ''}",
        ))
    values = [v for c in cells for v in (c["profile_p50_ms"], c["observed_p50_ms"]) if v and v > 0]
    if values:
        low, high = min(values) * 0.8, max(values) * 1.25
        fig.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", line={"color": "grey", "dash": "dash"}, name="real = profile"))
    fig.update_xaxes(type="log", title_text="profile p50 (ms)")
    fig.update_yaxes(type="log", title_text="replicas' p50 (ms)")
    fig.update_layout(height=420, margin={"t": 20, "b": 40}, template="plotly_white")
    return fig


def _cells_table(cells: list[dict[str, Any]]) -> str:
    rows = [[c["model"], c["batch"], c["cores"], f"{c['batches']:,}", _ms(c["observed_p50_ms"]),
             _ms(c["profile_p50_ms"]) + ("" if c["profile_measured"] else " *"), _s(c["ratio_p50"]), _ms(c["observed_p99_ms"]),
             _ms(c["profile_p99_ms"]), _ms(c["round_trip_p50_ms"])] for c in cells]
    table = html_table(["model", "batch", "cores", "batches", "real p50 ms", "profile p50 ms", "real / profile", "real p99 ms",
                    "profile p99 ms", "round trip p50 ms"], rows)
    note = ("<p class=\"hint\">* not measured in the profile: the latency model's prediction (a hollow marker above). Round trip: "
            "dispatch to answer as the server saw it (compute plus the pipe and the event loop).</p>") if any(
        not c["profile_measured"] for c in cells) else ""
    return table + note


def _delays_table(delays: dict[str, Any]) -> str:
    apply_ms = delays.get("measured_resize_apply_ms")
    return html_table(["delay", "plan s", "measured s", "note"], [
        ["cold start", _s(delays["plan_cold_start_s"]), _s(delays["measured_cold_start_s"]),
         "model load plus warm-up of every batch size (median of the replicas started during the run, else the opening ones)"],
        ["resize", _s(delays["plan_resize_s"]), _s(delays["measured_resize_s"]),
         "asked for to in effect: the running batch, then the change" + ("" if apply_ms is None else f" ({apply_ms:.2f} ms of it)")],
    ])


def _server_tables(server: dict[str, Any]) -> str:
    held = "under CPU quotas (cgroups)" if server.get("cpu_limit") == "quota" else "pinned to CPUs"
    note = (f"<p>Replicas ran {held} on CPUs {', '.join(map(str, server['cpus']))}; {server['batches']:,} batches served "
            f"{server['served_requests']:,} requests; {server['core_seconds']:,.1f} core-seconds."
            + (" The replicas asked for more cores than those CPUs hold: they shared CPUs." if server["oversubscribed"] else "") + "</p>")
    replicas = html_table(["replica", "stage", "cores", "opening", "asked for s", "ready s", "cold start s", "load s", "warm-up s", "gone s"],
                      [[r["id"], r["stage"], r["cores"], "yes" if r["opening"] else "", _s(r["requested_s"]), _s(r["ready_s"]),
                        _s(r["cold_start_s"]), _s(r["load_s"]), _s(r["warmup_s"]), _s(r["gone_s"])] for r in server["replicas"]])
    resizes = html_table(["replica", "from cores", "to cores", "asked for s", "in effect s", "delay s", "applying ms"],
                     [[r["replica"], r["from_cores"], r["to_cores"], _s(r["requested_s"]), _s(r["applied_s"]), f"{r['delay_s']:.3f}",
                       f"{r['apply_ms']:.2f}"] for r in server["resizes"]]) if server["resizes"] else ""
    failures = "".join(f"<p>failure: {html.escape(f)}</p>" for f in server["failures"])
    return note + replicas + resizes + failures


def _steps_table(steps: list[dict[str, Any]]) -> str:
    return html_table(["from s", "to s", "requests", "real", "simulated", "sim., measured delays", "sim., measured delays and service"],
                  [[f"{s['t_start_s']:,.1f}", f"{s['t_end_s']:,.1f}", f"{s['requests']:,}", s["real_violations"],
                    s["simulated_violations"], s["simulated_measured_violations"], s["simulated_observed_violations"]] for s in steps])
