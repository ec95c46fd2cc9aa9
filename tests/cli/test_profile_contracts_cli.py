"""`themis profile`'s contract: the profile store by default, conflicting or mismatched resume
refused, nothing written when nothing was measured, typos of subcommands named; and profiles
the planner cannot stand on refused by every planning command in one line, exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from themis.cli.app import app
from themis.profiler.table import profile_rows, read_profile, write_profile

GOLDEN = Path(__file__).parents[1] / "data" / "profiles"
MLP = GOLDEN / "mlp_cpu.parquet"
FAST = ["--cores", "1", "--batch-sizes", "1", "--budget-s", "0.05", "--warmup-calls", "1", "--processes", "1"]
TRACE = "azure_llm_2023_code"


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("themis: error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _profile_like(golden: Path, out: Path, change: Callable[[list[dict]], list[dict]]) -> Path:
    """A copy of a real profile with its rows changed by `change(rows) -> rows`."""
    frame = read_profile(golden)
    write_profile(out, change(profile_rows(frame)), frame.attrs["environment"], frame.attrs["measurement"])
    return out


@pytest.mark.slow
def test_profile_goes_to_the_store_and_plan_finds_it(cli_runner, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = cli_runner.invoke(app, ["profile", "mlp", *FAST])
    assert first.exit_code == 0, first.output
    (stored,) = (tmp_path / "profiles" / "mlp").glob("cpu-*.parquet")
    assert set(read_profile(stored)["model"]) == {"mlp"}
    planned = cli_runner.invoke(app, ["plan", "--trace", TRACE, "--slo", "1s", "--allow-unstable", "--json"])  # a busy machine
    assert planned.exit_code in (0, 1), planned.output  # 1: out of reach on a busy machine; both are plans
    assert str(Path("profiles") / "mlp" / stored.name) in planned.stderr.splitlines()[0]
    resumed = cli_runner.invoke(app, ["profile", "mlp", *FAST, "--resume", "--json"])  # into the newest stored one
    assert resumed.exit_code == 0, resumed.output
    assert f'"path": "{Path("profiles") / "mlp" / stored.name}"' in resumed.stdout
    assert list((tmp_path / "profiles" / "mlp").glob("*.parquet")) == [stored] and len(read_profile(stored)) == 1
    elsewhere = cli_runner.invoke(app, ["profile", "mlp", *FAST, "--out", "mine.parquet"])  # --out still wins
    assert elsewhere.exit_code == 0 and (tmp_path / "mine.parquet").exists()
    assert len(list((tmp_path / "profiles" / "mlp").glob("*.parquet"))) == 1


def test_resume_and_overwrite_together_are_refused(cli_runner, tmp_path: Path) -> None:
    line = _one_error_line(cli_runner.invoke(app, ["profile", "mlp", "--resume", "--overwrite", "--out", str(tmp_path / "p.parquet")]))
    assert "--resume" in line and "--overwrite" in line


def test_resume_with_an_empty_store_says_what_to_do(cli_runner, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert "--out" in _one_error_line(cli_runner.invoke(app, ["profile", "mlp", "--resume", *FAST]))


def test_resume_into_a_profile_of_another_model_is_refused(cli_runner, tmp_path: Path) -> None:
    other = tmp_path / "mlp.parquet"
    other.write_bytes(MLP.read_bytes())
    line = _one_error_line(cli_runner.invoke(app, ["profile", "small_cnn", *FAST, "--resume", "--out", str(other)]))
    assert "holds a profile of mlp, not small_cnn" in line
    assert other.read_bytes() == MLP.read_bytes()


@pytest.mark.slow
def test_a_failed_factory_import_leaves_no_file(cli_runner, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "broken_factory.py").write_text("raise ImportError('needs a package that is not installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    out = tmp_path / "broken.parquet"
    line = _one_error_line(cli_runner.invoke(app, ["profile", "broken_factory:build", "--input-shape", "8", *FAST, "--out", str(out)]))
    assert "needs a package that is not installed" in line
    assert not out.exists() and not list(tmp_path.glob(".broken.parquet.*"))


@pytest.mark.slow
def test_an_input_shape_that_fails_every_cell_is_exit_2_and_writes_nothing(cli_runner, tmp_path: Path) -> None:
    out = tmp_path / "wrong.parquet"
    line = _one_error_line(cli_runner.invoke(app, ["profile", "small_cnn", "--input-shape", "5", *FAST, "--out", str(out)]))
    assert "no cell could be measured" in line and "conv2d" in line and not out.exists()


def test_a_mistyped_subcommand_is_named_as_such(cli_runner) -> None:
    line = _one_error_line(cli_runner.invoke(app, ["profile", "shwo", "x.parquet"]))
    assert "no such command 'shwo' (did you mean show?)" in line and "profile run" not in line


BAD_PROFILES = {
    "every cell error": lambda rows: [{**r, "status": "error", "error": "boom"} for r in rows],
    "no cells": lambda rows: [],
    "cores=0": lambda rows: [{**r, "cores": 0} if i == 0 else r for i, r in enumerate(rows)],
}


@pytest.mark.parametrize("case", list(BAD_PROFILES))
@pytest.mark.parametrize("command", ["plan", "compare", "check", "simulate"])
def test_a_profile_the_planner_cannot_use_is_exit_2(cli_runner, tmp_path: Path, case: str, command: str) -> None:
    bad = _profile_like(MLP, tmp_path / "bad.parquet", BAD_PROFILES[case])
    args = {
        "plan": ["plan", "--trace", TRACE, "--slo", "1s", "--profile", str(bad)],
        "compare": ["compare", "--trace", TRACE, "--slo", "1s", "--profile", str(bad), "--policies", "static"],
        "check": ["check", "--trace", TRACE, "--slo", "1s", "--profile", str(bad)],
        "simulate": ["simulate", "--plan", str(_plan(cli_runner, tmp_path)), "--trace", TRACE, "--profile", str(bad)],
    }[command]
    line = _one_error_line(cli_runner.invoke(app, args))
    assert "bad.parquet" in line


def _plan(cli_runner, tmp_path: Path) -> Path:
    out = tmp_path / "plan.json"
    result = cli_runner.invoke(app, ["plan", "--trace", TRACE, "--slo", "1s", "--profile", str(MLP), "--policy", "static", "--out", str(out)])
    assert result.exit_code in (0, 1), result.output
    return out
