"""One rule for `schema_version` in every reader: accept 1..current, refuse newer by name."""

from __future__ import annotations

import json

import pytest

from themis.common.errors import InputError
from themis.common.schema import check_schema_version
from themis.planner.errors import PlanInputError, TraceError
from themis.planner.model.serving import PLAN_SCHEMA_VERSION, load_schedule
from themis.planner.traffic.canonical import read_canonical, write_trace
from themis.planner.traffic.loading import load_trace


@pytest.mark.parametrize("found", [1, 2, "2"])
def test_versions_up_to_the_current_are_read(found) -> None:
    assert check_schema_version(found, 2, what="a thing", file="x.json") == int(found)


@pytest.mark.parametrize(("found", "says"), [(3, "newer themis"), (0, "start at 1"), ("v2", "not a whole number"), (None, "not a whole number")])
def test_others_are_refused_by_name(found, says) -> None:
    with pytest.raises(InputError, match=says):
        check_schema_version(found, 2, what="a thing", file="x.json")


def test_a_plan_from_a_newer_themis_is_refused_and_a_version_1_plan_is_converted(tmp_path, llm_trace_path) -> None:
    plan = {"schema_version": PLAN_SCHEMA_VERSION + 1, "kind": "plan"}
    (tmp_path / "new.json").write_text(json.dumps(plan))
    with pytest.raises(PlanInputError, match="newer themis"):
        load_schedule(tmp_path / "new.json")
    v1 = {
        "schema_version": 1, "kind": "plan", "policy": "themis", "slo_ms": 300.0, "percentile": 99.0, "interval_s": 60.0,
        "trace_start": None, "cold_start_s": 30.0, "resize_s": 1.0, "stages": [{"name": "s", "model": "m"}],
        "steps": [{"t_start_s": 0.0, "t_end_s": 60.0, "forecast_rps": 5.0,
                   "stages": [{"groups": [{"replicas": 2, "cores": 1}], "batch": 4}]}],
        "extra": {"surge_steps": [0], "surge_rules": [[{"replicas": 2, "batch": 4, "levels": [{"max_rps": 9.5, "cores": 2}]}]]},
    }
    (tmp_path / "v1.json").write_text(json.dumps(v1))
    schedule = load_schedule(tmp_path / "v1.json")
    assert schedule.surge_steps == (0,)
    # version 1 kept load levels: each becomes a service table that takes the level's
    # load as the full capacity of its replicas (2 replicas x batch 4 carry 9.5 rps at 2 cores)
    (rule,) = schedule.surge_rules
    assert rule.cores == (2,) and rule.batches == (4,) and rule.budget_ms == 300.0
    assert 2 * 4 * 1000.0 / rule.service_ms[0][3] == pytest.approx(9.5)


def test_a_trace_from_a_newer_themis_is_refused(tmp_path, llm_trace_path) -> None:
    import pyarrow.parquet as pq

    path = write_trace(load_trace(llm_trace_path), tmp_path / "t.parquet")
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    meta[b"themis.schema_version"] = b"99"
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(TraceError, match="newer themis"):
        read_canonical(path)
