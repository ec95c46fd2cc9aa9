"""The planning commands refuse untrusted profiles (exit 2) unless --allow-unstable; fit warnings show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from themis.cli.app import app

PROFILES = Path(__file__).parents[1] / "data" / "profiles"
CONTENDED = str(PROFILES / "mlp_cpu_contended.parquet")
BUSY = str(PROFILES / "resnet18_cpu_busy.parquet")


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("themis: error: ") and "Traceback" not in result.output
    return lines[0]


@pytest.fixture(scope="module")
def contended_plan(tmp_path_factory, llm_trace_path) -> Path:
    from typer.testing import CliRunner

    path = tmp_path_factory.mktemp("plan") / "plan.json"
    result = CliRunner().invoke(app, ["plan", "--trace", str(llm_trace_path), "--profile", CONTENDED, "--slo", "500ms",
                                      "--node-cores", "2", "--forecast", "last", "--allow-unstable", "--out", str(path)])
    assert result.exit_code in (0, 1), result.output
    return path


@pytest.mark.parametrize("command", ["plan", "compare", "check"])
def test_planning_on_contended_cells_is_refused_in_one_line(cli_runner, llm_trace_path, command: str) -> None:
    args = {"plan": ["plan", "--trace", str(llm_trace_path), "--slo", "500ms"],
            "compare": ["compare", "--trace", str(llm_trace_path), "--slo", "500ms", "--policies", "static"],
            "check": ["check", "--trace", str(llm_trace_path), "--slo", "500ms"]}[command]
    line = _one_error_line(cli_runner.invoke(app, [*args, "--profile", CONTENDED]))
    assert "6 of 6 measured cells are unstable or contended" in line and "--allow-unstable" in line


def test_allow_unstable_plans_on_them(cli_runner, contended_plan) -> None:
    plan = json.loads(contended_plan.read_text())
    assert plan["stages"][0]["model"] == "mlp" and plan["steps"]


def test_simulate_refuses_them_too_unless_allowed(cli_runner, contended_plan, llm_trace_path) -> None:
    args = ["simulate", "--plan", str(contended_plan), "--trace", str(llm_trace_path), "--profile", CONTENDED, "--json"]
    assert "--allow-unstable" in _one_error_line(cli_runner.invoke(app, args))
    allowed = cli_runner.invoke(app, [*args, "--allow-unstable"])
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)["requests"] > 0


def test_profile_fit_warns_about_a_degenerate_fit(cli_runner) -> None:
    result = cli_runner.invoke(app, ["profile", "fit", BUSY])
    assert result.exit_code == 0, result.output
    assert "warning: resnet18 on cpu: degenerate fit: g = e = 0" in " ".join(result.stdout.split())
    data = json.loads(cli_runner.invoke(app, ["profile", "fit", BUSY, "--json"]).stdout)
    assert len(data["models"][0]["warnings"]) == 2


def test_plan_explain_warns_about_a_degenerate_fit(cli_runner, llm_trace_path) -> None:
    result = cli_runner.invoke(app, ["plan", "--trace", str(llm_trace_path), "--profile", BUSY, "--slo", "2s", "--forecast", "last",
                                     "--explain", "--json"])
    assert result.exit_code in (0, 1), result.output
    (model,) = json.loads(result.stdout)["explain"]["latency_models"]
    assert any("g = e = 0" in w for w in model["warnings"])
    shown = cli_runner.invoke(app, ["plan", "--trace", str(llm_trace_path), "--profile", BUSY, "--slo", "2s", "--forecast", "last", "--explain"])
    assert "warning: resnet18 on cpu: degenerate fit" in " ".join(shown.stdout.split())


def test_the_regression_gate_leaves_untrusted_cells_out(cli_runner) -> None:
    args = ["check", "-p", CONTENDED, "--baseline", CONTENDED, "--no-capacity", "--peak-rps", "10", "--slo", "1s", "--json"]
    refused = cli_runner.invoke(app, args)
    assert refused.exit_code == 1
    (check,) = json.loads(refused.stdout)["checks"]
    assert check["name"] == "matching_cells" and "none of the 6 matching cells is ok in both" in check["explanation"]
    judged = cli_runner.invoke(app, [*args, "--allow-unstable"])
    assert judged.exit_code == 0, judged.output  # a profile against itself: ratio 1 in every cell
    worst = json.loads(judged.stdout)["checks"][0]
    assert worst["name"] == "worst_cell_p50_ms" and "95% CI" in worst["explanation"]
