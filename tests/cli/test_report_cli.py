"""`themis report` re-renders saved artefacts (the golden plan, simulation and comparison of
tests/data/report, made by plan, simulate and compare) into HTML + PNGs."""

from __future__ import annotations

import json
from pathlib import Path

from themis.cli.app import app

DATA = Path(__file__).resolve().parents[1] / "data"
GOLDEN = DATA / "report"
PROFILE = str(DATA / "profiles" / "resnet18_cpu.parquet")


def test_report_from_every_saved_artefact(cli_runner, functions_2019_path, tmp_path):
    html = tmp_path / "out.html"
    result = cli_runner.invoke(app, [
        "report", "--profile", PROFILE, "--trace", str(functions_2019_path), "--scale", "3", "--plan", str(GOLDEN / "plan.json"),
        "--simulation", str(GOLDEN / "requests.parquet"), "--comparison", str(GOLDEN / "comparison.json"),
        "--html", str(html), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["kind"] == "report" and data["html"] == str(html)
    assert [p.split("/")[-1] for p in data["png"]] == ["out_profile_resnet18.png", "out_trace.png", "out_schedule.png",
                                                       "out_latency.png", "out_comparison.png"]
    page = html.read_text()
    assert page.count('<img alt=') == 2 and page.count('<div id="timeline"') == 1


def test_report_of_a_comparison_alone_has_no_timeline(cli_runner, tmp_path):
    html = tmp_path / "cmp.html"
    result = cli_runner.invoke(app, ["report", "--comparison", str(GOLDEN / "comparison.json"), "--html", str(html)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and "Plotly" not in html.read_text()
    assert [p.name for p in tmp_path.glob("cmp_*.png")] == ["cmp_comparison.png"]


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
