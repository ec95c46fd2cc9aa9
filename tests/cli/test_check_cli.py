"""`themis check` on real profiles and the real Azure LLM trace: pass, fail, bad input, JUnit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from themis.cli.app import app
from themis.profiler.table import (
    profile_rows,
    read_environment,
    read_profile,
    write_profile,
)

PROFILES = Path(__file__).parents[1] / "data" / "profiles"
RESNET18 = PROFILES / "resnet18_cpu.parquet"
LATENCY_COLUMNS = ["p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "min_ms", "max_ms"]


@pytest.fixture(scope="module")
def slower_resnet18(tmp_path_factory) -> Path:
    """The real resnet18 profile with every latency 30% higher: a model change that regressed."""
    frame = read_profile(RESNET18)
    frame[LATENCY_COLUMNS] *= 1.3
    frame["throughput_ips"] /= 1.3
    path = tmp_path_factory.mktemp("profiles") / "resnet18_slower.parquet"
    write_profile(path, profile_rows(frame), read_environment(RESNET18))
    return path


def _junit_cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return {case.get("name"): case for case in root.iter("testcase")}


def test_capacity_gate_passes_within_a_generous_budget(cli_runner, llm_trace_path, tmp_path) -> None:
    junit = tmp_path / "junit.xml"
    result = cli_runner.invoke(app, ["check", "-p", str(RESNET18), "-t", str(llm_trace_path), "--slo", "2s",
                                     "--budget-replicas", "40", "--budget-violation-rate", "5%", "--junit", str(junit)])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.stdout
    cases = _junit_cases(junit)
    assert {"slo_reachable", "violation_rate", "max_replicas", "max_cores", "core_hours"} <= set(cases)
    assert not any(case.find("failure") is not None for case in cases.values())


def test_capacity_gate_measures_from_the_warm_up(cli_runner, llm_trace_path) -> None:
    result = cli_runner.invoke(app, ["check", "-p", str(RESNET18), "-t", str(llm_trace_path), "--slo", "2s", "--warmup", "5m",
                                     "--budget-replicas", "40", "--json"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["context"]["warmup_s"] == 300.0


def test_capacity_gate_fails_over_the_replica_budget_and_says_by_how_much(cli_runner, llm_trace_path, tmp_path) -> None:
    junit, summary = tmp_path / "junit.xml", tmp_path / "summary.md"
    result = cli_runner.invoke(app, ["check", "-p", str(RESNET18), "-t", str(llm_trace_path), "--slo", "2s", "--budget-replicas", "1",
                                     "--junit", str(junit), "--summary", str(summary), "--json"])
    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    assert verdict["schema_version"] == 1 and verdict["passed"] is False
    replicas = next(c for c in verdict["checks"] if c["name"] == "max_replicas")
    assert replicas["passed"] is False and replicas["measured"] > 1 and replicas["limit"] == 1
    failure = _junit_cases(junit)["max_replicas"].find("failure")
    assert failure is not None and "over by" in failure.get("message")
    assert ET.parse(junit).getroot().get("failures") == str(sum(not c["passed"] for c in verdict["checks"]))
    assert "FAILED" in summary.read_text() and "max_replicas" in summary.read_text()


def test_an_unreachable_slo_fails_naming_the_best_reachable_latency(cli_runner) -> None:
    result = cli_runner.invoke(app, ["check", "-p", str(RESNET18), "--peak-rps", "20", "--slo", "5ms", "--json"])
    assert result.exit_code == 1
    reachable = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "slo_reachable")
    assert reachable["passed"] is False
    assert "best reachable" in reachable["explanation"] and "resnet18" in reachable["explanation"]


def test_regression_gate_passes_against_itself(cli_runner, llm_trace_path) -> None:
    result = cli_runner.invoke(app, ["check", "-p", str(RESNET18), "--baseline", str(RESNET18), "--no-capacity",
                                     "-t", str(llm_trace_path), "--slo", "1s", "--json"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert all(c["gate"] == "regression" and c["passed"] for c in verdict["checks"])
    assert len(verdict["regression_cells"]) == len(read_profile(RESNET18))


def test_regression_gate_fails_on_a_30_percent_slower_model(cli_runner, llm_trace_path, slower_resnet18, tmp_path) -> None:
    junit = tmp_path / "junit.xml"
    result = cli_runner.invoke(app, ["check", "-p", str(slower_resnet18), "--baseline", str(RESNET18), "--no-capacity",
                                     "--max-regression", "10%", "-t", str(llm_trace_path), "--scale", "3", "--slo", "1s",
                                     "--junit", str(junit), "--json"])
    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    worst = next(c for c in verdict["checks"] if c["name"] == "worst_cell_p50_ms")
    assert worst["passed"] is False and worst["measured"] == pytest.approx(30.0, abs=0.01)
    capacity = verdict["capacity_at_peak"][0]
    assert capacity["cores_current"] >= capacity["cores_baseline"]
    assert _junit_cases(junit)["worst_cell_p50_ms"].find("failure") is not None


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["-p", "missing.parquet", "--peak-rps", "10", "--slo", "1s"], "missing.parquet"),
        (["-p", str(RESNET18), "--peak-rps", "10", "--slo", "fast"], "--slo"),
        (["-p", str(RESNET18), "--peak-rps", "10", "--slo", "1s", "--budget-violation-rate", "lots"], "--budget-violation-rate"),
        (["-p", str(RESNET18), "--peak-rps", "10", "--slo", "1s", "--no-capacity"], "--no-capacity"),
        (["-p", str(RESNET18), "--slo", "1s"], "--trace"),
        (["-p", str(RESNET18), "--peak-rps", "10", "--slo", "1s", "--baseline", str(RESNET18), "--metric", "p42"], "--metric"),
        (["-p", str(RESNET18), "--peak-rps", "10", "--slo", "1s", "--model", "bert"], "--model"),
        (["-p", str(RESNET18), "--peak-rps", "10", "--slo", "1s", "--warmup", "-5s"], "--warmup"),
        (["-p", str(RESNET18), "--peak-rps", "10", "--slo", "1s", "--warmup", "30d"], "--warmup"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli_runner, args: list[str], named: str) -> None:
    result = cli_runner.invoke(app, ["check", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("themis: error:") and named in lines[0]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--budget-cost", "5"], "--budget-cost"),  # no price: every run would cost 0 and pass
        (["--budget-violation-rate", "200%"], "--budget-violation-rate"),
        (["--budget-violation-rate", "-1%"], "--budget-violation-rate"),
        (["--budget-replicas", "-3"], "--budget-replicas"),
        (["--junit", "no/such/dir/junit.xml"], "--junit"),
        (["--out", "no/such/dir/verdict.json"], "--out"),
    ],
)
def test_budgets_and_destinations_are_refused_before_any_work(cli_runner, llm_trace_path, tmp_path, args, named) -> None:
    summary = tmp_path / "summary.md"
    result = cli_runner.invoke(app, ["check", "-p", str(RESNET18), "-t", str(llm_trace_path), "--slo", "2s", "--summary", str(summary),
                                     *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0]
    assert not summary.exists()  # a later destination's failure leaves no earlier file behind


def test_a_budget_cost_with_a_price_is_judged_in_its_currency(cli_runner, llm_trace_path) -> None:
    result = cli_runner.invoke(app, ["check", "-p", str(RESNET18), "-t", str(llm_trace_path), "--slo", "2s", "--price", "cpu=0.05",
                                     "--budget-cost", "0.000001", "--json"])
    assert result.exit_code == 1, result.output
    cost = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "cost")
    assert cost["passed"] is False and cost["measured"] > 0


def test_check_reads_the_profile_store_and_themis_toml(cli_runner, llm_trace_path, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    stored = tmp_path / "profiles" / "resnet18" / "cpu-20260301T120000Z.parquet"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(RESNET18.read_bytes())
    (tmp_path / "themis.toml").write_text('[service]\nslo = "2s"\n')
    result = cli_runner.invoke(app, ["check", "-t", str(llm_trace_path), "--budget-replicas", "40", "--json"])
    assert result.exit_code == 0, result.output
    assert "cpu-20260301T120000Z.parquet" in result.stderr.splitlines()[0]
    assert json.loads(result.stdout)["context"]["slo_ms"] == 2000.0


def test_check_with_the_hpa_policy_judges_its_run(cli_runner, llm_trace_path) -> None:
    """hpa has no plan of its own: "SLO reachable" is that of the horizontal plan it opens with."""
    result = cli_runner.invoke(app, ["check", "-p", str(RESNET18), "-t", str(llm_trace_path), "--slo", "2s", "--policy", "hpa",
                                     "--budget-violation-rate", "5%", "--json"])
    verdict = json.loads(result.stdout)
    reachable = next(c for c in verdict["checks"] if c["name"] == "slo_reachable")
    assert reachable["passed"] is True and "horizontal" in reachable["explanation"]
    assert result.exit_code == (0 if verdict["passed"] else 1)
    unreachable = cli_runner.invoke(app, ["check", "-p", str(RESNET18), "-t", str(llm_trace_path), "--slo", "1ms", "--policy", "hpa", "--json"])
    assert unreachable.exit_code == 1
    assert next(c for c in json.loads(unreachable.stdout)["checks"] if c["name"] == "slo_reachable")["passed"] is False
