"""Rich rendering of a plan: runs of equal allocations merged into one row, then totals,
the verdict and, for themis, the surge rule. A pure renderer of the plan's JSON form, so
it shows a saved plan exactly as a fresh one."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


def _describe(stage: dict[str, Any]) -> str:
    groups = "+".join(f"{g['replicas']}x{g['cores']}c" for g in stage["groups"] if g["replicas"]) or "0"
    return f"{groups} b{stage['batch']}" + ("" if stage.get("device", "cpu") == "cpu" else f" {stage['device']}")


def merged_runs(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Consecutive steps with the same allocation of every stage, as one row each."""
    runs: list[dict[str, Any]] = []
    for step in plan["steps"]:
        key = tuple(_describe(s) for s in step["stages"])
        latency = sum(s["est_latency_ms"] if s["est_latency_ms"] is not None else float("inf") for s in step["stages"])
        if runs and runs[-1]["key"] == key:
            run = runs[-1]
            run["t_end_s"] = step["t_end_s"]
            run["intervals"] += 1
            run["max_forecast_rps"] = max(run["max_forecast_rps"], step["forecast_rps"])
            run["max_latency_ms"] = max(run["max_latency_ms"], latency)
        else:
            runs.append(
                {
                    "key": key,
                    "t_start_s": step["t_start_s"],
                    "t_end_s": step["t_end_s"],
                    "intervals": 1,
                    "max_forecast_rps": step["forecast_rps"],
                    "max_latency_ms": latency,
                    "cores": sum(g["replicas"] * g["cores"] for s in step["stages"] for g in s["groups"]),
                }
            )
    return runs


def plan_table(plan: dict[str, Any], max_rows: int = 40) -> Table:
    stages = [s["name"] for s in plan["stages"]]
    table = Table(
        title=f"{plan['policy']} plan: SLO {plan['slo_ms']:g} ms at p{plan['percentile']:g}, interval {plan['interval_s']:g} s",
        caption="runs of equal allocations merged; allocation = replicas x cores, batch",
    )
    for column in ("from", "to", "n", "peak rps", *stages, "est. ms", "cores"):
        table.add_column(column, justify="left" if column in stages else "right")
    runs = merged_runs(plan)
    shown = runs if len(runs) <= max_rows else runs[: max_rows // 2] + [None] + runs[-max_rows // 2 :]
    for run in shown:
        if run is None:
            table.add_row("...", f"{len(runs) - max_rows} more runs", *[""] * (len(stages) + 4))
            continue
        latency = run["max_latency_ms"]
        over = latency > plan["slo_ms"]
        table.add_row(
            _clock(run["t_start_s"]), _clock(run["t_end_s"]), str(run["intervals"]), f"{run['max_forecast_rps']:,.1f}",
            *run["key"], ("[red]" if over else "") + (f"{latency:,.1f}" if latency != float("inf") else "inf"), str(run["cores"]),
        )
    return table


def show_plan(plan: dict[str, Any], console: Console) -> None:
    """The merged table, totals, verdict, surge rule and (with --explain) the model fit."""
    console.print(plan_table(plan))
    totals = plan["totals"]
    line = (
        f"totals: {totals['core_seconds'] / 3600:,.2f} core-hours, cost {totals['cost']:,.2f}, "
        f"{totals['scale_actions']} scale actions, {plan.get('estimated_violation_intervals', 0)} interval(s) "
        f"over the SLO estimate at the real peaks (delays applied)"
    )
    console.print(line)
    for stage, rule in zip(plan["stages"], plan.get("surge_rules", [])):
        console.print(
            f"surge rule {stage['name']}: budget {rule['budget_ms']:,.1f} ms, cores {rule['cores'][0]}-{rule['cores'][-1]}, "
            f"batches {rule['batches'][0]}-{rule['batches'][-1]}, up to {rule['max_replicas']} replicas"
        )
    explain = plan.get("explain")
    if explain:
        for m in explain["latency_models"]:
            loo = ", ".join(f"{k} {v:.1%}" for k, v in m["loo_mape"].items() if v is not None)
            held = ", ".join(f"{k} {v:.1%}" for k, v in m["heldout_cores_mape"].items())
            console.print(
                f"latency model {m['stage']}/{m['model']} on {m['device']}: {m['method']} "
                f"({m['measured_cells']} cells, cores {m['measured_cores']}); leave-one-out error {loo}"
                + (f"; {m['heldout_cores']}-core cells held out: {held}" if held else "")
                + (f"; extrapolated to cores {m['extrapolated_cores']}" if m["extrapolated_cores"] else "")
            )
            for warning in m.get("warnings", []):
                console.print(f"[yellow]warning[/yellow]: {m['model']} on {m['device']}: {warning}")
    verdict = "[green]feasible[/green]" if plan["feasible"] else "[red]SLO out of reach[/red]"
    console.print(f"{verdict}: {plan['reason']}")
