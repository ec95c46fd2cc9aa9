"""`themis compare` in-process: exit codes, JSON on stdout, the single error line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from themis.cli.app import app
from themis.planner.traffic.loading import load_trace

GOLDEN_PROFILES = Path(__file__).parents[1] / "data" / "profiles"


PROFILE = str(GOLDEN_PROFILES / "resnet18_cpu.parquet")


@pytest.mark.slow  # plans a whole day of per-minute intervals
def test_compare_json_has_every_policy(cli_runner, functions_2019_path):
    args = ["compare", "--trace", str(functions_2019_path), "--top", "1", "--profile", PROFILE, "--slo", "300ms",
            "--scale", "0.2", "--policies", "themis,horizontal,hpa", "--node-cores", "4", "--json"]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data["policies"]) == ["themis", "horizontal", "hpa"]
    assert data["policies"]["hpa"]["requests"] == data["policies"]["themis"]["requests"] > 0
    assert data["slo_ms"] == 300.0


def test_compare_table_and_out_file(cli_runner, llm_trace_path, tmp_path):
    out = tmp_path / "cmp.csv"
    args = ["compare", "--trace", str(llm_trace_path), "--profile", PROFILE, "--slo", "0.3s", "--policies", "themis,static",
            "--node-cores", "4", "--out", str(out)]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "themis" in result.stdout and "static" in result.stdout
    assert out.read_text().startswith("policy,")


def test_bad_slo_is_one_error_line(cli_runner, llm_trace_path):
    result = cli_runner.invoke(app, ["compare", "--trace", str(llm_trace_path), "--profile", PROFILE, "--slo", "fast"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == ["themis: error: --slo: cannot read 'fast' as a duration (e.g. 200ms, 30s, 2m)"]


def test_unknown_policy_json_envelope(cli_runner, llm_trace_path):
    result = cli_runner.invoke(
        app, ["compare", "--trace", str(llm_trace_path), "--profile", PROFILE, "--slo", "200ms", "--policies", "magic", "--json"]
    )
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["kind"] == "bad_input"


def test_hpa_behavior_from_a_yaml_file(cli_runner, llm_trace_path, tmp_path):
    path = tmp_path / "behavior.yaml"
    path.write_text("behavior:\n  scaleDown:\n    stabilizationWindowSeconds: 60\n")
    args = ["compare", "--trace", str(llm_trace_path), "--profile", PROFILE, "--slo", "0.3s", "--policies", "hpa",
            "--node-cores", "4", "--hpa-behavior", str(path), "--warmup", "5m", "--json"]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["warmup_s"] == 300.0
    assert data["policies"]["hpa"]["requests"] == data["settings"]["requests"] < load_trace(llm_trace_path).requests
    behavior = data["settings"]["hpa_behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 60
    assert behavior["scaleUp"]["policies"] == [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                               {"type": "Percent", "value": 100, "periodSeconds": 15}]


def test_bad_hpa_behavior_is_one_error_line(cli_runner, llm_trace_path, tmp_path):
    path = tmp_path / "behavior.yaml"
    path.write_text("scaleUp:\n  policies:\n  - {type: Nodes, value: 1, periodSeconds: 15}\n")
    args = ["compare", "--trace", str(llm_trace_path), "--profile", PROFILE, "--slo", "0.3s", "--policies", "hpa",
            "--hpa-behavior", str(path)]
    result = cli_runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "behavior.scaleUp.policies[0].type: must be Pods or Percent" in lines[0]
