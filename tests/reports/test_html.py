"""The HTML report from golden artefacts (tests/data/report/README.md: a day of the Azure
Functions 2019 trace x3, planned, replayed and compared), its pictures, and its rendering
in headless Chromium."""

from __future__ import annotations

import html.parser
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import same_color
from PIL import Image

from themis.common.files import read_json_object
from themis.planner.model.serving import load_schedule
from themis.planner.traffic.loading import load_trace
from themis.profiler.table import read_profile
from themis.reports import static_plots
from themis.reports.html import ReportInputs, render_report
from themis.reports.interactive_plots import timeline_figure
from themis.reports.profile_view import planned_cells, profile_curves
from themis.reports.timeline import INTERACTIVE_POINTS, STATIC_POINTS, time_axis

DATA = Path(__file__).resolve().parents[1] / "data"
GOLDEN = DATA / "report"
PROFILE = DATA / "profiles" / "resnet18_cpu.parquet"
SCALE = 3.0  # as planned (README)
MAX_PAGE_BYTES = 8_000_000
"""plotly.js alone is about 4.8 MB; the data of a day adds a few hundred kB."""
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
]


@pytest.fixture(scope="module")
def golden(functions_2019_path) -> ReportInputs:
    return ReportInputs(
        profiles=[read_profile(PROFILE)],
        trace=load_trace(functions_2019_path).scaled(SCALE),
        schedule=load_schedule(GOLDEN / "plan.json"),
        requests=pd.read_parquet(GOLDEN / "requests.parquet"),
        comparison=read_json_object(GOLDEN / "comparison.json", "a comparison"),
        title="golden day",
    )


@pytest.fixture(scope="module")
def report(golden, tmp_path_factory):
    return render_report(golden, tmp_path_factory.mktemp("report") / "report.html")


class _Resources(html.parser.HTMLParser):
    """Every URL an element of the page would load (script bodies are not elements)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        self.urls += [value for name, value in attrs if name in ("src", "href", "data", "poster", "srcset") and value]


def test_report_is_one_self_contained_page_with_pngs_beside_it(report) -> None:
    names = [p.name for p in report.png_paths]
    assert names == ["report_profile_resnet18.png", "report_trace.png", "report_schedule.png", "report_latency.png",
                     "report_comparison.png"]
    for path in report.png_paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = report.html_path.read_text(encoding="utf-8")
    parser = _Resources()
    parser.feed(page)
    assert parser.urls and all(url.startswith("data:image/png;base64,") for url in parser.urls)  # nothing from elsewhere
    assert parser.tags.count("img") == 2  # profile and comparison; the time series are the interactive figure
    assert page.count('<div id="timeline"') == 1 and "Plotly.newPlot" in page
    assert report.html_path.stat().st_size < MAX_PAGE_BYTES
    assert "batch 1 on 4 cores, never measured" in page  # the plan's extrapolated cell is named


def test_profile_picture_marks_extrapolated_cells_and_plain_batch_ticks(golden) -> None:
    frame = golden.profiles[0]
    curves = profile_curves(frame[frame["status"] == "ok"], "resnet18", "cpu", "", planned_cells(golden.schedule, "resnet18", "cpu"))
    assert [(c.cores, c.measured) for c in curves] == [(1, True), (2, True), (4, False)]
    fig = static_plots.profile_figure("resnet18", curves)
    fig.canvas.draw()
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4", "8", "16", "32"]
        assert not [t for t in ax.get_xticklabels(minor=True) if t.get_text()]
    latency = fig.axes[0]
    dashed = [line for line in latency.get_lines() if line.get_label() == "4 cores (extrapolated)"]
    assert len(dashed) == 1 and dashed[0].get_linestyle() == "--"
    hollow = [line for line in latency.get_lines()
              if line.get_marker() == "o" and same_color(line.get_markerfacecolor(), "white") and len(line.get_xdata())]
    assert [list(line.get_xdata()) for line in hollow] == [[1, 2, 4, 8, 16, 32]]
    _assert_legends_outside(fig)


def test_time_series_pictures_are_aggregated_with_legends_outside(golden) -> None:
    axis = time_axis(None, 86_400.0)
    figures = [static_plots.trace_figure(golden.trace, golden.schedule, axis),
               static_plots.schedule_figure(golden.schedule, axis),
               static_plots.latency_figure(golden.requests, golden.schedule.slo_ms, axis)]
    for fig in figures:
        fig.canvas.draw()
        bottom = fig.axes[-1]
        assert bottom.get_xlabel() == "hours from trace start"
        assert bottom.get_xlim()[1] < 26  # hours, not seconds
        for ax in fig.axes:
            for line in ax.get_lines():
                if line.get_label() != "_nolegend_" and not line.get_label().startswith("SLO"):
                    assert len(line.get_xdata()) <= 1441  # a day of one-minute steps at most
        _assert_legends_outside(fig)
    trace_lines = figures[0].axes[0].get_lines()
    assert all(len(line.get_xdata()) <= STATIC_POINTS + 1 for line in trace_lines)
    latency_lines = [line for line in figures[2].axes[0].get_lines() if "per 5 min" in line.get_label()]
    assert len(latency_lines) == 2 and all(len(line.get_xdata()) <= STATIC_POINTS for line in latency_lines)


def _assert_legends_outside(fig) -> None:
    """No legend box overlaps the data area of any axes."""
    renderer = fig.canvas.get_renderer()
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert legends
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), f"legend over {ax.get_title()!r}"


def test_interactive_timeline_shares_one_zoomable_axis(golden, llm_trace_path) -> None:
    fig = timeline_figure(golden.trace, golden.schedule, golden.requests, 300.0, time_axis(None, 86_400.0))
    assert [fig.layout[f"yaxis{i or ''}"].title.text for i in (0, 2, 3, 4)] == \
        ["requests/s", "replicas", "cores (all replicas)", "latency (ms)"]
    assert fig.layout.xaxis4.title.text == "hours from trace start"
    assert all(fig.layout[f"xaxis{i}"].matches == "x4" for i in ("", 2, 3))  # zoom one row, zoom them all
    for trace in fig.data:
        assert len(trace.x) <= max(INTERACTIVE_POINTS, 1441) and max(trace.x) <= 24.0
    legends = [name for name in fig.layout if name.startswith("legend")]
    assert len(legends) == 4 and all(fig.layout[name].x > 1.0 for name in legends)  # right of the plots
    dated = timeline_figure(load_trace(llm_trace_path), None, None, None, time_axis("2023-11-16T18:17:03.979960", 3_436.0))
    first = pd.Timestamp(np.min(dated.data[0].x))
    assert first == pd.Timestamp("2023-11-16T18:17:03.979")
    assert dated.layout.xaxis.title.text == "time (UTC, 2023-11-16)"


def _chromium() -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        message = "Debian's chromium is not installed (make browser installs it): cannot render the report"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI runs `make test`, which installs it: its absence is a broken setup
        pytest.skip(message)
    return chromium


def _browse(chromium: str, page: Path, profile_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--virtual-time-budget=8000", *args,
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=120)


def coloured_pixels(png: Path) -> int:
    """Pixels of a saturated colour: plot lines and bands, never text (black/grey) or the page."""
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) >= 60).sum())


@pytest.mark.slow
def test_report_renders_in_headless_chromium_without_console_errors(report, tmp_path) -> None:
    chromium = _chromium()
    shot = tmp_path / "shot.png"
    run = _browse(chromium, report.html_path, tmp_path / "profile", "--window-size=1300,3200", f"--screenshot={shot}")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Uncaught" not in run.stderr and "ERROR:CONSOLE" not in run.stderr, run.stderr[-2000:]
    dom = _browse(chromium, report.html_path, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0 and dom.stdout.count("<img") == 2
    assert dom.stdout.count('class="main-svg"') >= 1  # plotly ran and drew its SVG
    assert dom.stdout.count('class="js-line"') >= 8  # load, forecast, replicas, cores, p50, p99, worst, SLO


@pytest.mark.slow
def test_the_interactive_timeline_is_not_blank(golden, tmp_path) -> None:
    """A page holding only the timeline: drawn, it has many coloured pixels (lines, bands).
    The same page without the plotly.js bundle (nothing draws) has almost none, so the
    check can tell a drawn chart from a blank one."""
    chromium = _chromium()
    inputs = ReportInputs(trace=golden.trace, schedule=golden.schedule, requests=golden.requests, title="timeline only")
    page = render_report(inputs, tmp_path / "timeline.html").html_path
    text = page.read_text(encoding="utf-8")
    bundle = re.search(r"<script[^>]*>/\*\*\s*\* plotly\.js v.*?</script>", text, flags=re.S)
    assert bundle, "the plotly.js bundle is embedded in the page"
    unplotted = tmp_path / "unplotted.html"
    unplotted.write_text(text.replace(bundle.group(0), ""), encoding="utf-8")
    drawn, blank = tmp_path / "drawn.png", tmp_path / "blank.png"
    ok = _browse(chromium, page, tmp_path / "p1", "--window-size=1300,1400", f"--screenshot={drawn}")
    off = _browse(chromium, unplotted, tmp_path / "p2", "--window-size=1300,1400", f"--screenshot={blank}")
    assert ok.returncode == 0 and off.returncode == 0, ok.stderr[-2000:] + off.stderr[-2000:]
    assert "Uncaught" not in ok.stderr and "ERROR:CONSOLE" not in ok.stderr, ok.stderr[-2000:]
    assert Image.open(drawn).size == (1300, 1400)
    assert coloured_pixels(drawn) > 20_000
    assert coloured_pixels(blank) < 1_000
