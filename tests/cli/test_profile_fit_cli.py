"""`themis profile fit`: held-out error of the latency model on a real measured profile."""

from __future__ import annotations

import json
from pathlib import Path

from themis.cli.app import app

PROFILES = Path(__file__).parents[1] / "data" / "profiles"


def test_fit_reports_held_out_errors_for_both_predictors(cli_runner, tmp_path) -> None:
    out = tmp_path / "fit.csv"
    result = cli_runner.invoke(app, ["profile", "fit", str(PROFILES / "resnet18_cpu.parquet"), "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["schema_version"] == 1 and report["kind"] == "fit_report"
    (model,) = report["models"]
    assert model["model"] == "resnet18" and model["cells"] == 12
    assert model["method"] in ("amdahl", "interpolate")
    assert model["method"] == min(model["loo_mape"], key=model["loo_mape"].get)
    assert all(0 <= v < 10 for v in model["loo_mape"].values())
    assert model["heldout_cores"] == 2
    assert out.read_text().count("\n") == 13  # header + one row per measured cell


def test_fit_of_a_missing_file_is_one_line_and_exit_2(cli_runner) -> None:
    result = cli_runner.invoke(app, ["profile", "fit", "missing.parquet"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == ["themis: error: missing.parquet: no such profile file"]
