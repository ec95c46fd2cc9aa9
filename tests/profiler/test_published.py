"""GPU profiles from NVIDIA's published tables: each cell is its published row (re-read here
with the csv module), labelled published wherever it goes, and plannable."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from themis.cli.app import app
from themis.data import bundled_trace
from themis.profiler.published import published_gpu_profile, write_published_gpu_profile
from themis.profiler.table import read_profile

DATA = Path(__file__).resolve().parents[2] / "data" / "gpu"


def _published_rows(name: str, **match: str) -> list[dict[str, str]]:
    with open(DATA / name, newline="") as handle:
        return [row for row in csv.DictReader(handle) if all(row[k] == v for k, v in match.items())]


@pytest.mark.parametrize(("model", "file", "match", "framework"), [
    ("resnet50", "resnet50_nvidia_dle.csv", {"gpu": "T4-16GB", "precision": "AMP", "framework": "PyTorch"}, "PyTorch"),
    ("resnet50", "resnet50_nvidia_dle.csv", {"gpu": "A100-40GB (DGX A100)", "precision": "TF32"}, None),
    ("bert_base", "bert_nvidia_dle.csv", {"gpu": "T4-16GB", "precision": "FP16", "model": "bert-base", "seq_len": "128"}, None),
])
def test_every_cell_is_its_published_row_and_says_so(model, file, match, framework, tmp_path) -> None:
    rows = _published_rows(file, **match)
    path = write_published_gpu_profile(tmp_path / "p.parquet", model, match["gpu"], match["precision"], framework)
    frame = read_profile(path)
    assert len(frame) == len(rows) > 0
    for row, cell in zip(sorted(rows, key=lambda r: int(r["batch_size"])), frame.sort_values("batch_size").itertuples()):
        assert cell.batch_size == int(row["batch_size"]) and cell.cores == 1 and cell.device_kind == "cuda"
        assert cell.p99_ms >= float(row["latency_p99_ms"]) and cell.mean_ms == float(row["latency_avg_ms"])
        assert cell.p95_ms >= float(row["latency_p95_ms"])
        assert cell.throughput_ips == float(row.get("throughput_ips") or row["throughput_sps"])
        assert cell.p50_ms <= cell.p90_ms <= cell.p95_ms <= cell.p99_ms <= cell.max_ms and cell.min_ms <= cell.p50_ms
        assert cell.device_name.endswith("(published)") and cell.device_id.startswith("published:")
    measurement = frame.attrs["measurement"]
    assert frame.attrs["environment"]["provenance"] == measurement["provenance"] == "published"
    assert sorted(measurement["source_rows"]) == sorted(r["source_file"] for r in rows)


def test_a_published_p95_below_its_average_keeps_the_percentiles_in_order() -> None:
    frame = published_gpu_profile("bert_base", "T4-16GB", "FP16")
    assert (frame["p50_ms"] <= frame["p90_ms"]).all() and (frame["p99_ms"] <= frame["max_ms"]).all()
    assert (frame["mean_ms"] > frame["p99_ms"]).any()  # as published: another aggregation upstream


def test_bad_choices_are_one_line_naming_the_option(cli_runner, tmp_path) -> None:
    cases = [
        (["resnet50", "--gpu", "T4-16GB", "--precision", "AMP"], "--framework"),  # three frameworks published it
        (["resnet50", "--gpu", "H100", "--precision", "AMP"], "--gpu"),
        (["resnet18", "--gpu", "T4-16GB"], "resnet18"),
    ]
    for args, named in cases:
        result = cli_runner.invoke(app, ["profile", "published", *args, "--out", str(tmp_path / "x.parquet")])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and named in lines[0], result.output
        assert not (tmp_path / "x.parquet").exists()


def test_a_gpu_fleet_is_planned_on_published_profiles_and_the_plan_says_published(cli_runner, tmp_path) -> None:
    t4, a100 = tmp_path / "t4.parquet", tmp_path / "a100.parquet"
    for gpu, precision, framework, out in (("T4-16GB", "AMP", "PyTorch", t4), ("A100-40GB (DGX A100)", "TF32", None, a100)):
        write_published_gpu_profile(out, "resnet50", gpu, precision, framework)
    plan_path = tmp_path / "plan.json"
    result = cli_runner.invoke(app, ["plan", "--trace", str(bundled_trace("azure_functions_2019")), "--profile", str(t4), "--profile",
                                     str(a100), "--slo", "100ms", "--scale", "50", "--price", "t4=0.35,a100=2.9", "--out", str(plan_path)])
    assert result.exit_code == 0, result.output
    plan = json.loads(plan_path.read_text())
    devices = {stage["device"] for step in plan["steps"] for stage in step["stages"]}
    assert devices and all(d.endswith("(published)") for d in devices)
    expected = sum(  # each GPU-hour at its device's price, recounted from the steps
        group["replicas"] * (step["t_end_s"] - step["t_start_s"]) / 3600 * (0.35 if "T4" in stage["device"] else 2.9)
        for step in plan["steps"] for stage in step["stages"] for group in stage["groups"]
    )
    assert plan["feasible"] and math.isclose(plan["totals"]["cost"], expected, rel_tol=1e-9)
