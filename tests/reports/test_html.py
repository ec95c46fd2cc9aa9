"""The HTML report from real artefacts, and its rendering in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from themis.planner.gates.compare import compare
from themis.planner.model.config import PlanConfig
from themis.planner.model.latency import load_latency_models
from themis.planner.model.serving import Stage
from themis.planner.traffic.loading import load_trace
from themis.profiler.table import read_profile
from themis.reports.html import ReportInputs, render_report

GOLDEN_PROFILES = Path(__file__).parents[1] / "data" / "profiles"


PROFILE = GOLDEN_PROFILES / "resnet18_cpu.parquet"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory, llm_trace_path):
    trace = load_trace(llm_trace_path).window(0.0, 900.0).scaled(3.0, seed=2)
    model = load_latency_models([PROFILE])["resnet18"]
    comparison = compare(trace, [(Stage("resnet18", "resnet18"), model)], PlanConfig(slo_ms=300.0, node_cores=4),
                         ("themis", "horizontal", "hpa"))
    themis = comparison.outcome("themis")
    inputs = ReportInputs(
        profiles=[read_profile(PROFILE)], trace=trace, schedule=themis.schedule, requests=themis.result.to_frame(),
        comparison=comparison.to_dict(), title="report test",
    )
    return render_report(inputs, tmp_path_factory.mktemp("report") / "report.html")


def test_report_is_self_contained_with_every_plot(report):
    page = report.html_path.read_text(encoding="utf-8")
    names = sorted(p.name for p in report.png_paths)
    assert names == ["report_comparison.png", "report_latency.png", "report_profile_resnet18.png",
                     "report_schedule.png", "report_trace.png"]
    for path in report.png_paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.count('src="data:image/png;base64,') == len(report.png_paths)
    # nothing is fetched from elsewhere: no external src/href at all
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "themis" in page and "hpa" in page


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        message = "Debian's chromium is not installed (make browser installs it): cannot render the report"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI runs `make test`, which installs it: its absence is a broken setup
        pytest.skip(message)
    url = report.html_path.resolve().as_uri()
    shot = tmp_path / "shot.png"
    profile_dir = tmp_path / "chromium-profile"
    run = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--window-size=1200,2400",
         f"--screenshot={shot}", "--virtual-time-budget=5000", url],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Uncaught" not in run.stderr and "ERROR:CONSOLE" not in run.stderr
    dom = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--dump-dom", "--virtual-time-budget=5000", url],
        capture_output=True, text=True, timeout=120,
    )
    assert dom.returncode == 0 and dom.stdout.count("<img") == len(report.png_paths)
    pixels = matplotlib.image.imread(shot)
    # the plots were drawn: a blank or broken-image page is nearly all one colour
    assert pixels.shape[0] > 1000
    assert np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0).shape[0] > 50
