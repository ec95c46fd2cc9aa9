"""`themis fleet plan` and `themis fleet compare` in-process: exit codes, the JSON contract,
synthetic labels, the report, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from support.fleet_support import PROFILES

from themis.cli.app import app
from themis.data import bundled_trace

RESNET18 = str(PROFILES / "resnet18_cpu.parquet")
FAST = ["--forecast", "last", "--workers", "1", "--node-cores", "8", "--node-memory", "2GiB"]


def test_fleet_plan_of_a_fleet_file_prints_the_fleet_contract(cli_runner, tmp_path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(textwrap.dedent(f"""
        defaults: {{profile: {RESNET18}, slo_ms: 300, forecast: last}}
        services:
          - {{name: busiest, trace: {bundled_trace("azure_functions_2019")}, top: 1, scale: 3}}
          - {{name: all, trace: {bundled_trace("azure_functions_2019")}, policy: horizontal}}
    """))
    done = cli_runner.invoke(app, ["fleet", "plan", str(fleet), "--out-dir", str(tmp_path / "out"), "--json", *FAST])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert (data["schema_version"], data["kind"], data["synthetic"], data["policies"]) == (1, "fleet_plan", False, ["horizontal", "themis"])
    assert set(data["totals"]) >= {"services", "core_hours", "cost", "node_hours", "peak_nodes", "services_at_risk"}
    assert data["totals"]["services"] == 2 and data["shards"] == {"total": 1, "planned": 1, "kept": 0}
    assert data["node"]["packing"].startswith("first-fit decreasing")
    again = cli_runner.invoke(app, ["fleet", "plan", str(fleet), "--out-dir", str(tmp_path / "out"), "--json", "--resume", *FAST])
    assert json.loads(again.stdout)["shards"] == {"total": 1, "planned": 0, "kept": 1}


def test_a_synthetic_fleet_says_so_everywhere_and_gets_a_report(cli_runner, tmp_path) -> None:
    html = tmp_path / "fleet.html"
    done = cli_runner.invoke(app, ["fleet", "plan", "--synthetic", "6", "--synthetic-seed", "3", "--profile", RESNET18, "--slo", "300ms",
                                   "--out-dir", str(tmp_path / "out"), "--html", str(html), *FAST])
    assert done.exit_code == 0, done.output
    assert "SYNTHETIC" in done.stdout and "synthetic" in done.stderr
    assert json.loads((tmp_path / "out" / "fleet.json").read_text())["synthetic"] is True
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["synthetic"] is True
    page = html.read_text()
    assert "SYNTHETIC fleet, generated for benchmarks" in page and "(synthetic fleet)" in page and "Plotly.newPlot" in page
    assert (tmp_path / "fleet_capacity.png").stat().st_size > 10_000


def test_fleet_compare_gives_per_policy_costs_and_the_spread_of_service_violation_rates(cli_runner, tmp_path) -> None:
    done = cli_runner.invoke(app, ["fleet", "compare", "--trace", str(bundled_trace("azure_functions_2019")), "--per-function",
                                   "--top", "3", "--scale", "3", "--profile", RESNET18, "--slo", "300ms", "--policies",
                                   "horizontal,hpa,static", "--out-dir", str(tmp_path / "out"), "--json", *FAST])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["kind"] == "fleet_comparison" and list(data["policies"]) == ["horizontal", "hpa", "static"]
    for row in data["policies"].values():
        assert row["services"] == 3 and row["node_hours"] >= 24.0 and row["core_hours"] > 0
        assert set(row["service_violation_rate"]) == {"median", "p90", "p99", "max"}
        assert len(row["worst_services"]) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a fleet file, or --per-function"),
        (["--per-function", "--profile", RESNET18, "--slo", "300ms"], "--trace"),
        (["--synthetic", "3", "--profile", RESNET18, "--slo", "300ms", "--engine", "spark"], "unknown engine 'spark'"),
        (["--synthetic", "3", "--profile", RESNET18, "--slo", "300ms", "--node-memory", "lots"], "--node-memory"),
        (["--synthetic", "3", "--profile", RESNET18], "no SLO"),
        (["--synthetic", "3", "--profile", RESNET18, "--slo", "300ms", "--engine", "local", "--address", "x:1"], "--address"),
    ],
)
def test_bad_fleet_input_is_one_line_and_exit_2(cli_runner, tmp_path, args, message) -> None:
    done = cli_runner.invoke(app, ["fleet", "plan", *args, "--out-dir", str(tmp_path / "out")])
    assert done.exit_code == 2, done.output
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_fleet_help_imports_neither_ray_nor_pandas() -> None:
    probe = (
        "import sys\nfrom themis.cli.app import app\n"
        "for args in (['fleet', '--help'], ['fleet', 'plan', '--help'], ['profile', 'run', '--help']):\n"
        "    try:\n        app(args)\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('ray', 'pandas', 'pyarrow', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_without_node_cores_the_fleet_packs_on_the_planner_default_node(cli_runner, tmp_path) -> None:
    """No --node-cores: the node type is the one every plan of the fleet was made for (was a crash)."""
    from themis.planner.model.config import DEFAULT_NODE_CORES

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"defaults: {{profile: {RESNET18}, slo_ms: 300, forecast: last}}\n"
                     f"services:\n  - {{name: busiest, trace: {bundled_trace('azure_functions_2019')}, top: 1}}\n")
    done = cli_runner.invoke(app, ["fleet", "plan", str(fleet), "--out-dir", str(tmp_path / "out"), "--json", "--workers", "1"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["node"]["cores"] == DEFAULT_NODE_CORES
