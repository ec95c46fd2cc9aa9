"""`themis plan`, `compare`, `check` and `report` on an LLM service, in-process, end to end on
the first 10 minutes of the bundled Azure LLM trace (written in the canonical Parquet form,
tokens included): tiny_llm measured on this CPU, and the published Llama-2-7B GPU profiles."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from themis.cli.app import app
from themis.planner.traffic.canonical import write_trace
from themis.planner.traffic.loading import load_trace

TINY = str(Path(__file__).parents[1] / "data" / "profiles" / "tiny_llm_cpu.parquet")
GPUS = ["--profile", "published:Llama-2-7b-hf@a100", "--profile", "published:Llama-2-7b-hf@h100"]
GPU_SLO = ["--slo", "ttft=2s,tpot=150ms", "--price", "a100=1.8,h100=3.0", "--mix-window", "5m"]


@pytest.fixture(scope="module")
def short_trace(llm_trace_path, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("llm") / "llm_10min.parquet"
    write_trace(load_trace(llm_trace_path).window(0.0, 600.0), path)
    return str(path)


def run(cli_runner, *args: str):
    return cli_runner.invoke(app, list(args))


def test_plan_tiny_llm_measured_on_this_cpu(cli_runner, short_trace):
    result = run(cli_runner, "plan", "--trace", short_trace, "--profile", TINY, "--cores", "1", "--slo", "ttft=8s,tpot=200ms",
                 "--max-num-batched-tokens", "256", "--price", "cpu=0.05", "--mix-window", "10m", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["kind"] == "llm_plan" and plan["feasible"] and plan["slo"] == {"ttft_ms": 8000.0, "tpot_ms": 200.0, "percentile": 99.0}
    assert [t["label"] for t in plan["replica_types"]] == ["cpu x1"] and plan["load_window_s"] == 8.0
    totals = plan["totals"]
    assert totals["cost"] == pytest.approx(totals["core_seconds"] / 3600 * 0.05)
    assert totals["cost_per_mtok"] == pytest.approx(totals["cost"] / (totals["tokens"] / 1e6))
    assert all(s["capacity_rps"] >= s["load_rps"] - 1e-9 or i in plan["short_steps"] for i, s in enumerate(plan["steps"]))


def test_plan_on_published_gpu_profiles_human_view_and_csv(cli_runner, short_trace, tmp_path):
    out = tmp_path / "plan.csv"
    result = run(cli_runner, "plan", "--trace", short_trace, *GPUS, *GPU_SLO, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "per million tokens" in result.stdout and "NVIDIA H100 80GB HBM3" in result.stdout and "feasible" in result.stdout
    rows = pd.read_csv(out)
    assert set(rows["device"]) <= {"NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3"} and (rows["replicas"] > 0).all()


def test_compare_then_report_an_llm_service(cli_runner, short_trace, tmp_path):
    cmp_path, html = tmp_path / "cmp.json", tmp_path / "report" / "report.html"
    html.parent.mkdir()
    result = run(cli_runner, "compare", "--trace", short_trace, "--profile", "published:Llama-2-7b-hf@h100", *GPU_SLO,
                 "--policies", "themis,hpa,oracle", "--out", str(cmp_path))
    assert result.exit_code == 0, result.output
    assert "goodput" in result.stdout and "hpa" in result.stdout
    data = json.loads(cmp_path.read_text())
    assert data["kind"] == "llm_comparison" and list(data["policies"]) == ["themis", "hpa", "oracle"]
    report = run(cli_runner, "report", "--comparison", str(cmp_path), "--html", str(html))
    assert report.exit_code == 0, report.output
    assert (tmp_path / "report" / "report_llm_timeline.png").stat().st_size > 10_000
    assert "LLM policy comparison" in html.read_text()


def test_check_cost_per_million_tokens_passes_then_fails(cli_runner, short_trace, tmp_path):
    args = ["check", "-p", "published:Llama-2-7b-hf@h100", "-t", short_trace, *GPU_SLO, "--policy", "oracle"]
    passed = run(cli_runner, *args, "--budget-cost-per-mtok", "100", "--json", "--junit", str(tmp_path / "junit.xml"))
    assert passed.exit_code == 0, passed.output
    verdict = json.loads(passed.stdout)
    measured = next(c["measured"] for c in verdict["checks"] if c["name"] == "cost_per_mtok")
    failed = run(cli_runner, *args, "--budget-cost-per-mtok", f"{measured * 0.5:.6f}")
    assert failed.exit_code == 1 and "cost_per_mtok" in failed.stdout
    assert "failure" in (tmp_path / "junit.xml").read_text() or "testcase" in (tmp_path / "junit.xml").read_text()


def test_an_slo_out_of_reach_exits_1_naming_the_best(cli_runner, short_trace):
    result = run(cli_runner, "plan", "--trace", short_trace, "--profile", TINY, "--slo", "ttft=500ms,tpot=50ms", "--json")
    assert result.exit_code == 1
    plan = json.loads(result.stdout)
    assert not plan["feasible"] and "best reachable p99 TTFT" in plan["reason"]


@pytest.mark.parametrize(
    ("slo", "message"),
    [
        ("ttft=abc,tpot=50ms", "--slo: cannot read 'abc' as a duration"),
        ("ttft=500ms", "--slo: an LLM SLO needs both ttft and tpot; tpot missing"),
        ("ttft=500ms,tpot", "--slo: cannot read 'ttft=500ms,tpot' as an LLM SLO"),
        ("ttft=500ms,ttft=1s,tpot=5ms", "--slo: cannot read"),
        ("ttft=0ms,tpot=50ms", "--slo: ttft and tpot must be positive"),
    ],
)
def test_a_malformed_llm_slo_exits_2_with_one_line(cli_runner, short_trace, slo, message):
    result = run(cli_runner, "plan", "--trace", short_trace, "--profile", TINY, "--slo", slo)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"themis: error: {message}")


def test_llm_bad_input_exits_2_with_one_line(cli_runner, short_trace, functions_2021_path, golden_profile):
    cases = [
        (["plan", "--trace", str(functions_2021_path), "--profile", TINY, "--slo", "ttft=1s,tpot=1s"], "--trace: "),
        (["plan", "--trace", short_trace, "--profile", "published:Llama-9@a100", "--slo", "ttft=1s,tpot=1s"], "no published profile"),
        (["check", "-p", str(golden_profile), "-t", short_trace, "--slo", "200ms", "--budget-cost-per-mtok", "1"], "--budget-cost-per-mtok"),
        (["check", "-p", TINY, "-t", short_trace, "--slo", "ttft=8s,tpot=1s", "--budget-cost-per-mtok", "1"], "--budget-cost-per-mtok"),
        (["plan", "--trace", short_trace, "--profile", TINY, "--slo", "ttft=8s,tpot=1s", "--k8s", "x"], "--k8s"),
    ]
    for args, fragment in cases:
        result = run(cli_runner, *args)
        assert result.exit_code == 2, (args, result.output)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("themis: error:") and fragment in line, line


def test_profile_dispatches_llms_to_the_llm_profiler(cli_runner, tmp_path, monkeypatch):
    from themis.profiler.llm import is_llm_model
    from themis.profiler.llm_table import read_llm_profile

    assert is_llm_model("tiny_llm") and not is_llm_model("resnet18")
    assert is_llm_model("themis.sample_models.tiny_llm:TinyLlm") and is_llm_model("support.llm_factories:micro_llm")
    assert not is_llm_model("support.llm_factories:unannotated_llm") and not is_llm_model("no_such_module:x")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[1]))  # the measuring process imports the factory too
    out = tmp_path / "micro.parquet"
    result = run(cli_runner, "profile", "support.llm_factories:micro_llm", "--cores", "1", "--budget-s", "0.01", "--min-samples", "2",
                 "--warmup-calls", "0", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["kind"] == "llm_profile_run" and summary["cells"] == summary["ok_cells"] == 24
    frame = read_llm_profile(out)
    assert set(frame["phase"]) == {"prefill", "decode"} and (frame["p50_ms"] > 0).all()
    assert summary["iteration_models"][0]["coef_ms"]["alpha_ms"] > 0
    again = run(cli_runner, "profile", "support.llm_factories:micro_llm", "--out", str(out))
    assert again.exit_code == 2 and "--overwrite" in again.stderr
