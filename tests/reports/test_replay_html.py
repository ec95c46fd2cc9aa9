"""The replay report: a real run of a small_cnn plan on the reference server against the
simulator, as HTML (`themis replay --report`, and `themis report --replay result.json`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from support.replay_support import SMALL_CNN_PROFILE, llm_arrivals, write_plan
from typer.testing import CliRunner

from themis.cli.app import app

pytestmark = pytest.mark.slow
SECTIONS = ["Replay of", "Real against simulated (same arrivals, same plan)", "Over time",
            "Batch service time: replicas against the profile", "Delays: measured against the plan", "Violations per planned step"]
PLOTLY_BUNDLE = re.compile(r"<script[^>]*>/\*\*\s*\* plotly\.js v")


def _runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"})


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> tuple[dict, Path, Path]:
    """One served replay (3 s of the real LLM trace; 1 core, resized to 2 at 1.5 s): its JSON, page and result file."""
    tmp = tmp_path_factory.mktemp("served")
    arrivals = llm_arrivals(3.0)
    trace = tmp / "window.csv"
    trace.write_text("t\n" + "\n".join(f"{t:.6f}" for t in arrivals) + "\n", encoding="utf-8")
    plan = write_plan(tmp / "plan.json", [(0, 1.5, [(1, 1)]), (1.5, 3, [(1, 2)])])
    page, result_json = tmp / "replay.html", tmp / "result.json"
    run = _runner().invoke(app, ["replay", "--trace", str(trace), "--serve", "small_cnn", "--plan", str(plan), "--profile",
                                 str(SMALL_CNN_PROFILE), "--out", str(result_json), "--report", str(page), "--json"])
    assert run.exit_code == 0, run.output
    return json.loads(run.stdout), page, result_json


def _headings(page: Path) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page.read_text(encoding="utf-8"))


def test_the_page_carries_real_against_simulated_with_plotly_embedded_once(served) -> None:
    data, page, _ = served
    text = page.read_text(encoding="utf-8")
    headings = _headings(page)
    assert len(headings) == len(SECTIONS) and all(h.startswith(s) for h, s in zip(headings, SECTIONS))
    assert len(PLOTLY_BUNDLE.findall(text)) == 1  # three plots, one bundle: the page opens offline
    assert all(f'id="{div}"' in text for div in ("replay_runs", "replay_timeline", "replay_cells"))
    comparison = data["comparison"]
    for run in comparison["runs"]:  # every run's row, with its violations and core-seconds as the JSON has them
        assert f"<td>{run['run']}</td><td>{run['requests']:,}</td><td>{run['violations']:,}</td>" in text
        assert f"<td>{run['core_seconds']:,.1f}</td>" in text
    assert text.count("<td>small_cnn</td>") == len(comparison["service_cells"]) > 0
    measured = comparison["delays"]["measured_cold_start_s"]
    assert f"<td>cold start</td><td>30.00</td><td>{measured:,.2f}</td>" in text
    assert "<td>1</td><td>2</td>" in text  # the resize 1 -> 2 cores in the server's table
    # the JSON carries what the timeline draws: per second of the trace, and every action of both runs
    assert sum(s["requests"] for s in comparison["seconds"]) == data["requests"]
    assert {a["run"] for a in comparison["actions"]} == {"real", "simulated"}


def test_themis_report_renders_the_same_sections_from_the_saved_result(served, tmp_path) -> None:
    data, page, result_json = served
    again = tmp_path / "again.html"
    run = _runner().invoke(app, ["report", "--replay", str(result_json), "--html", str(again)])
    assert run.exit_code == 0, run.output
    assert _headings(again) == _headings(page)
    bad = _runner().invoke(app, ["report", "--replay", str(SMALL_CNN_PROFILE.with_name("README.md")), "--html", str(tmp_path / "x.html")])
    assert bad.exit_code == 2


def test_a_report_needs_an_html_name(cli_runner, tmp_path) -> None:
    trace = tmp_path / "one.csv"
    trace.write_text("t\n" + "\n".join(f"{t:.6f}" for t in llm_arrivals(1.0)) + "\n", encoding="utf-8")
    result = cli_runner.invoke(app, ["replay", "--trace", str(trace), "--url", "http://127.0.0.1:9", "--protocol", "v2", "--server-model",
                                     "small_cnn", "--out", str(tmp_path / "x.parquet"), "--report", str(tmp_path / "page.pdf")])
    assert result.exit_code == 2 and "--report" in result.stderr


def test_the_page_renders_in_headless_chromium(served, tmp_path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make browser installs it): cannot render the page")
    _, page, _ = served
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--enable-logging=stderr", "--v=0",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000", "--dump-dom"]
    dom = subprocess.run([chromium, *flags, page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Uncaught" not in dom.stderr and "ERROR:CONSOLE" not in dom.stderr, dom.stderr[-2000:]
    assert dom.stdout.count('class="main-svg"') >= 3  # plotly drew the three plots
