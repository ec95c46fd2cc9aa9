"""`themis report` re-renders saved artefacts (written by simulate and compare) into HTML + PNGs."""

from __future__ import annotations

import json
from pathlib import Path

from themis.cli.app import app

GOLDEN_PROFILES = Path(__file__).parents[1] / "data" / "profiles"


PROFILE = str(GOLDEN_PROFILES / "resnet18_cpu.parquet")


def test_report_from_saved_comparison_and_profile(cli_runner, llm_trace_path, tmp_path):
    cmp_path = tmp_path / "cmp.json"
    args = ["compare", "--trace", str(llm_trace_path), "--profile", PROFILE, "--slo", "300ms",
            "--policies", "themis,static", "--node-cores", "4", "--out", str(cmp_path)]
    assert cli_runner.invoke(app, args).exit_code == 0
    html = tmp_path / "out.html"
    result = cli_runner.invoke(app, ["report", "--profile", PROFILE, "--trace", str(llm_trace_path), "--comparison",
                                     str(cmp_path), "--html", str(html), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["kind"] == "report" and data["html"] == str(html)
    assert sorted(p.split("/")[-1] for p in data["png"]) == ["out_comparison.png", "out_profile_resnet18.png", "out_trace.png"]
    assert html.read_text().count("data:image/png;base64,") == 3


def test_report_rejects_a_plan_given_as_comparison(cli_runner, tmp_path):
    not_cmp = tmp_path / "x.json"
    not_cmp.write_text(json.dumps({"schema_version": 1, "kind": "plan"}))
    result = cli_runner.invoke(app, ["report", "--comparison", str(not_cmp), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"themis: error: {not_cmp}: not a themis comparison (write one with `themis compare --out cmp.json`)"]


def test_report_with_nothing_to_show(cli_runner, tmp_path):
    result = cli_runner.invoke(app, ["report", "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert "nothing to report" in result.stderr
