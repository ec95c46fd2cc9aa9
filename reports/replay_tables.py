"""Rich tables for `themis replay` (pure renderers of a `ReplayResult`'s JSON form)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _ms(value: float | None) -> str:
    return "inf" if value is None else f"{value:,.1f}"


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f} s"


def show_replay(result: Any, console: Console) -> None:
    """The replay's summary, then (with --serve) real against simulated."""
    data = result.to_dict()
    settings = data["settings"]
    slo = settings["slo_ms"]
    title = f"replay of {settings['trace']} against {settings['url']}" + (f" (SLO {slo:g} ms)" if slo else "")
    table = Table(title=title)
    columns = ("requests", "ok", "failed", "viol. rate", "p50 ms", "p95 ms", "p99 ms", "max ms", "lag p50 ms", "lag p99 ms", "lag max ms")
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(
        f"{data['requests']:,}", f"{data['ok']:,}", f"{data['failed']:,}", f"{data['violation_rate']:.2%}",
        _ms(data["p50_ms"]), _ms(data["p95_ms"]), _ms(data["p99_ms"]), _ms(data["max_ms"]),
        _ms(data["sender_lag_p50_ms"]), _ms(data["sender_lag_p99_ms"]), _ms(data["sender_lag_max_ms"]),
    )
    console.print(table)
    statuses = ", ".join(f"{name} {count:,}" for name, count in data["statuses"].items())
    note = f"{data['scheduled']:,} requests scheduled at {data['offered_rps']:,.1f} req/s on average; {statuses or 'none finished'}."
    console.print(note + (" Interrupted: the rows so far are kept." if data["interrupted"] else ""))
    if "comparison" in data:
        _show_comparison(data["comparison"], data["server"], console)


def _show_comparison(comparison: dict[str, Any], server: dict[str, Any], console: Console) -> None:
    runs = Table(title="real against simulated (same arrivals, same plan)")
    for column in ("run", "requests", "viol.", "viol. rate", "p50 ms", "p95 ms", "p99 ms", "core-s", "cold start", "resize"):
        runs.add_column(column, justify="left" if column == "run" else "right")
    for run in comparison["runs"]:
        runs.add_row(
            run["run"], f"{run['requests']:,}", f"{run['violations']:,}", f"{run['violation_rate']:.2%}", _ms(run["p50_ms"]),
            _ms(run["p95_ms"]), _ms(run["p99_ms"]), f"{run['core_seconds']:,.1f}", _s(run["cold_start_s"]), _s(run["resize_s"]),
        )
    console.print(runs)
    cells = Table(title="batch service time: replicas against the profile (ms)")
    columns = ("model", "batch", "cores", "batches", "real p50", "profile p50", "real/profile", "real p99", "profile p99", "round trip p50")
    for column in columns:
        cells.add_column(column, justify="left" if column == "model" else "right")
    for c in comparison["service_cells"]:
        predicted = "" if c["profile_measured"] else " *"
        ratio = "n/a" if c["ratio_p50"] is None else f"{c['ratio_p50']:.2f}"
        cells.add_row(
            c["model"], str(c["batch"]), str(c["cores"]), f"{c['batches']:,}", _ms(c["observed_p50_ms"]),
            _ms(c["profile_p50_ms"]) + predicted, ratio, _ms(c["observed_p99_ms"]), _ms(c["profile_p99_ms"]) + predicted,
            _ms(c["round_trip_p50_ms"]),
        )
    console.print(cells)
    if any(not c["profile_measured"] for c in comparison["service_cells"]):
        console.print("* not measured in the profile: predicted by its latency model.")
    delays = comparison["delays"]
    console.print(
        f"cold start: measured {_s(delays['measured_cold_start_s'])} against the plan's {_s(delays['plan_cold_start_s'])}; "
        f"resize: measured {_s(delays['measured_resize_s'])} against the plan's {_s(delays['plan_resize_s'])}"
        + (f" (applying it took {delays['measured_resize_apply_ms']:.1f} ms)" if delays["measured_resize_apply_ms"] is not None else "")
    )
    later = [a for a in comparison.get("actions", []) if a["t_s"] > 0]
    if later:
        def acted(run: str) -> str:
            mine = [a for a in later if a["run"] == run]
            shown = ", ".join(
                f"{a['t_s']:.2f} s ({a['replicas']} replica{'s' if a['replicas'] != 1 else ''}, {a['total_cores']} cores)" for a in mine[:4]
            )
            return (shown + (f" and {len(mine) - 4} more" if len(mine) > 4 else "")) or "none"

        console.print(f"controller actions after the opening: real at {acted('real')}; simulated at {acted('simulated')}")
    if len(comparison["steps"]) > 1:
        steps = Table(title="violations per planned step")
        for column in ("from s", "to s", "requests", "real", "simulated", "sim., measured delays", "sim., measured delays and service"):
            steps.add_column(column, justify="right")
        for s in comparison["steps"]:
            steps.add_row(
                f"{s['t_start_s']:,.1f}", f"{s['t_end_s']:,.1f}", f"{s['requests']:,}", f"{s['real_violations']:,}",
                f"{s['simulated_violations']:,}", f"{s['simulated_measured_violations']:,}", f"{s['simulated_observed_violations']:,}",
            )
        console.print(steps)
    if server["oversubscribed"]:
        console.print(f"note: the plan asked for more cores than CPUs {server['cpus']} hold; replicas shared CPUs.")
    for failure in server["failures"]:
        console.print(f"note: {failure}")
