"""`themis plan` in-process: exit codes, JSON on stdout, files, the single error line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from themis.cli.app import app
from themis.planner.model.serving import PLAN_SCHEMA_VERSION, load_schedule
from themis.planner.traffic.forecast import METHODS

GOLDEN_PROFILES = Path(__file__).resolve().parents[1] / "data" / "profiles"

RESNET = str(GOLDEN_PROFILES / "resnet18_cpu.parquet")
BASE = ["plan", "--profile", RESNET, "--slo", "400ms", "--node-cores", "16", "--forecast", "last"]


def invoke(cli_runner, llm_trace_path, *args):
    return cli_runner.invoke(app, [*BASE, "--trace", str(llm_trace_path), *args])


def test_plan_prints_the_merged_table_and_verdict(cli_runner, llm_trace_path) -> None:
    result = invoke(cli_runner, llm_trace_path, "--scale", "2")
    assert result.exit_code == 0, result.output
    assert "themis plan: SLO 400 ms" in result.stdout and "totals:" in result.stdout and "feasible" in result.stdout


@pytest.mark.parametrize("policy", ["themis", "horizontal", "vertical", "static", "oracle"])
def test_plan_json_is_the_plan_contract(cli_runner, llm_trace_path, policy) -> None:
    result = invoke(cli_runner, llm_trace_path, "--policy", policy, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema_version"] == PLAN_SCHEMA_VERSION and data["policy"] == policy and data["feasible"] is True
    for key in ("slo_ms", "percentile", "interval_s", "trace_start", "cold_start_s", "resize_s", "stages", "steps", "totals"):
        assert key in data
    step = data["steps"][0]["stages"][0]
    assert {"groups", "batch", "device", "est_latency_ms", "capacity_rps"} <= set(step)
    assert bool(data["surge_rules"]) == (policy == "themis")


def test_plan_out_files_round_trip(cli_runner, llm_trace_path, tmp_path) -> None:
    for suffix in ("json", "csv", "parquet"):
        out = tmp_path / f"plan.{suffix}"
        result = invoke(cli_runner, llm_trace_path, "--out", str(out), "--price", "cpu=0.05")
        assert result.exit_code == 0, result.output
    schedule = load_schedule(tmp_path / "plan.json")
    assert schedule.totals()["cost"] > 0
    assert len(pd.read_csv(tmp_path / "plan.csv")) == len(schedule.steps)
    assert len(pd.read_parquet(tmp_path / "plan.parquet")) == len(schedule.steps)


def test_unreachable_slo_exits_1_naming_the_best_latency(cli_runner, llm_trace_path) -> None:
    result = cli_runner.invoke(app, ["plan", "--trace", str(llm_trace_path), "--profile", RESNET, "--slo", "30ms", "--node-cores", "2", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["feasible"] is False and "best reachable" in data["reason"] and data["best_latency_ms"] > 30


def test_pipeline_and_explain(cli_runner, llm_trace_path) -> None:
    result = cli_runner.invoke(
        app,
        ["plan", "--trace", str(llm_trace_path), "--pipeline", "examples/pipeline.yaml", "--slo", "1s",
         "--node-cores", "4", "--forecast", "last", "--explain", "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [s["name"] for s in data["stages"]] == ["screen", "classify"]
    assert {m["model"] for m in data["explain"]["latency_models"]} == {"small_cnn", "resnet18"}
    assert all(sum(s["est_latency_ms"] for s in step["stages"]) <= 1000 for i, step in enumerate(data["steps"])
               if i not in data["infeasible_steps"])


def test_k8s_directory_is_written(cli_runner, llm_trace_path, tmp_path) -> None:
    result = invoke(cli_runner, llm_trace_path, "--k8s", str(tmp_path / "k8s"))
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "k8s").iterdir())
    assert {"deployment-resnet18.yaml", "scaledobject-resnet18.yaml"} <= {p.name for p in files}
    for path in files:  # `kubectl apply -f DIR/` needs every file to be an object
        (doc,) = yaml.safe_load_all(path.read_text())
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--slo", "fast"], "themis: error: --slo: cannot read 'fast' as a duration (e.g. 200ms, 30s, 2m)"),
        (["--percentile", "100"], "themis: error: --percentile: must be between 0 and 100 (exclusive)"),
        (["--cores", "0,2"], "themis: error: --cores: '0,2' is not a comma-separated list of positive whole numbers"),
        (["--policy", "hpa"], "themis: error: --policy: unknown policy 'hpa'; use one of themis, horizontal, vertical, static, oracle"),
        (["--scale", "-1"], "themis: error: --scale: must be a positive number, got -1"),
        (["--forecast", "magic"], "themis: error: --forecast: unknown method 'magic'; use one of " + ", ".join(METHODS)),
    ],
)
def test_bad_input_is_one_error_line(cli_runner, llm_trace_path, args, line) -> None:
    result = invoke(cli_runner, llm_trace_path, *args)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [line]


def test_several_models_need_model_and_json_errors_are_enveloped(cli_runner, llm_trace_path) -> None:
    args = ["plan", "--trace", str(llm_trace_path), "--slo", "200ms", "--json",
            "--profile", str(GOLDEN_PROFILES / "small_cnn_cpu.parquet"), "--profile", str(GOLDEN_PROFILES / "mlp_cpu.parquet")]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 2
    envelope = json.loads(result.stdout)
    assert envelope["error"]["kind"] == "bad_input" and "--model" in envelope["error"]["message"]
    ok = cli_runner.invoke(app, [*args, "--model", "mlp"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["stages"][0]["model"] == "mlp"


def test_bad_pipeline_file_names_the_file(cli_runner, llm_trace_path, tmp_path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("stages:\n  - name: a\n    model: small_cnn\n    profiles: []\n")
    result = cli_runner.invoke(app, ["plan", "--trace", str(llm_trace_path), "--pipeline", str(bad), "--slo", "1s"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"themis: error: {bad}: stage 1: `profiles` must list profile files"]


def test_help_lists_every_policy_the_planner_has() -> None:
    from themis.cli import plan as plan_cli
    from themis.planner.policies import POLICIES

    assert plan_cli.POLICIES == tuple(POLICIES)
