"""Fleet files, the per-function shorthand and the generator: what each service ends up with,
and one clear error (naming the file and service) for each kind of mistake."""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.fleet_support import PROFILES

from themis.data import bundled_trace
from themis.planner.fleet.errors import FleetError
from themis.planner.fleet.models import ModelLibrary
from themis.planner.fleet.spec import FileTraffic, load_fleet
from themis.planner.fleet.synthetic import synthetic_fleet
from themis.planner.fleet.traffic import FunctionTable, TrafficLoader, read_functions, select_rows
from themis.planner.model.config import PlanConfig
from themis.profiler.table import read_profile

BASE = {"slo_ms": None}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_defaults_apply_to_every_service_and_a_service_overrides_them(tmp_path) -> None:
    trace = bundled_trace("azure_functions_2019")
    path = write(tmp_path, f"""
        defaults:
          profile: {PROFILES / 'resnet18_cpu.parquet'}
          slo_ms: 300
          forecast: ewma
        services:
          - name: busy
            trace: {trace}
            top: 1
            scale: 2
          - name: strict
            trace: {trace}
            function: 4695bfb40a0aa45072d92c80f5ea16e210925aa1e98e1b0b003d1c08ae85ac8b
            slo_ms: 150
            policy: horizontal
            cores: [1, 2]
            memory_mb: 1024
    """)
    fleet = load_fleet(path, {**BASE, "headroom": 1.1})
    busy, strict = fleet.services
    assert (busy.config.slo_ms, busy.config.forecast, busy.config.headroom, busy.policy) == (300.0, "ewma", 1.1, "themis")
    assert (strict.config.slo_ms, strict.config.cores, strict.policy, strict.memory_mb) == (150.0, (1, 2), "horizontal", 1024.0)
    assert busy.traffic == FileTraffic((str(trace.resolve()),), None, 1, 2.0, 0)
    loader = TrafficLoader()
    assert loader.trace(strict.traffic).requests == 7354  # that one function's day
    assert fleet.interval_s == 60.0


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ("name: a\n    trace: t.csv\n    profile: p.parquet\n    colour: red", "service 1 (a): unknown key(s) colour"),
        ("name: a\n    trace: t.csv\n    profile: p.parquet\n    node_cores: 8", "node type; set it with --node-cores"),
        ("name: a\n    trace: t.csv", "give either `profile` or `pipeline`"),
        ("name: a\n    trace: t.csv\n    profile: p.parquet\n    slo_ms: 0", "--slo must be positive"),
        ("name: a\n    trace: t.csv\n    profile: p.parquet\n    slo_ms: 10\n    forecast: magic", "unknown forecast 'magic'"),
        ("name: a\n    trace: t.csv\n    profile: p.parquet\n    slo_ms: 10\n    policy: hpa", "unknown policy 'hpa'"),
        ("name: a\n    trace: t.csv\n    profile: p.parquet", "no SLO"),
        ("name: a\n    profile: p.parquet\n    slo_ms: 10", "`trace` must name a trace file"),
        ("name: a\n    trace: t.csv\n    profile: p.parquet\n    slo_ms: 10\n    cores: [0]", "`cores` must list positive"),
    ],
)
def test_each_mistake_is_one_error_naming_the_file_and_the_service(tmp_path, service, message) -> None:
    path = write(tmp_path, f"services:\n  - {service}\n")
    with pytest.raises(FleetError) as error:
        load_fleet(path, BASE)
    assert message in str(error.value) and str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_broken_file_and_duplicate_names_are_refused(tmp_path) -> None:
    with pytest.raises(FleetError, match="not valid YAML"):
        load_fleet(write(tmp_path, "services: [\n"), BASE)
    with pytest.raises(FleetError, match="non-empty `services`"):
        load_fleet(write(tmp_path, "services: []\n"), BASE)
    twice = "  - {name: a, trace: t.csv, profile: p.parquet, slo_ms: 10}\n"
    with pytest.raises(FleetError, match="duplicate service name 'a'"):
        load_fleet(write(tmp_path, "services:\n" + twice + twice), BASE)
    mixed = "  - {name: a, trace: t.csv, profile: p.parquet, slo_ms: 10}\n  - {name: b, trace: t.csv, profile: p.parquet, slo_ms: 10, interval_s: 300}\n"
    with pytest.raises(FleetError, match="same interval_s"):
        _ = load_fleet(write(tmp_path, "services:\n" + mixed), BASE).interval_s


@functools.cache
def bundled_functions() -> FunctionTable:
    return read_functions([bundled_trace("azure_functions_2019")])


@given(st.integers(1, 200) | st.none(), st.integers(0, 3000))
def test_top_and_min_requests_keep_the_busiest_functions_in_file_order(top, min_requests) -> None:
    table = bundled_functions()
    rows = select_rows(table, top, min_requests)
    totals = table.totals
    assert (np.diff(rows) > 0).all() and (totals[rows] >= min_requests).all()
    left_out = np.setdiff1d(np.flatnonzero(totals >= min_requests), rows)
    assert top is None and left_out.size == 0 or left_out.size == 0 or totals[left_out].max() <= totals[rows].min()


def test_the_generator_is_seeded_and_every_service_is_a_different_real_trace() -> None:
    table = bundled_functions()
    make = lambda seed: synthetic_fleet(50, seed, table.paths, len(table.names), 1440, None, PlanConfig(slo_ms=300.0))
    first, again, other = make(7), make(7), make(8)
    assert first.synthetic and "synthetic" in first.source
    assert [s.traffic for s in first.services] == [s.traffic for s in again.services]
    assert [s.traffic for s in first.services] != [s.traffic for s in other.services]
    loader = TrafficLoader()
    traces = [loader.trace(s.traffic).counts for s in first.services]
    busy = [t.tobytes() for t in traces if t.any()]  # a function of a few requests a day may draw none at all
    assert len(set(busy)) == len(busy) >= 45
    source = first.services[0].traffic
    original = np.roll(table.counts[source.row], source.shift_intervals) * source.scale
    assert abs(traces[0].sum() - original.sum()) <= 5 * np.sqrt(original.sum()) + 5  # Poisson around the shifted, scaled function


def test_a_pipeline_service_gets_every_stage_and_each_stage_its_pods_memory(tmp_path) -> None:
    pipeline = Path(__file__).resolve().parents[3] / "examples" / "pipeline.yaml"
    path = write(tmp_path, f"""
        services:
          - {{name: two-stage, trace: {bundled_trace("azure_functions_2019")}, pipeline: {pipeline}, slo_ms: 400}}
    """)
    service = load_fleet(path, BASE).services[0]
    models = ModelLibrary().models(service.stages)
    assert [stage.name for stage, _ in models.stages] == ["screen", "classify"]
    for j, name in enumerate(["small_cnn", "resnet18"]):
        cells = read_profile(PROFILES / f"{name}_cpu.parquet")
        for batch in (1, 8, 32):
            measured = cells.loc[cells["batch_size"] <= batch, "peak_memory_mb"].max()
            assert models.pod_memory_mb(j, "cpu", batch) == int(np.ceil(measured))
