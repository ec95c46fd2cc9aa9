"""`themis init`, themis.toml and the profile store: `themis plan --trace T` works verbatim."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from themis.cli.app import app
from themis.cli.settings import SECTIONS, load_settings, template
from themis.common.errors import InputError
from themis.profiler.errors import ProfileFileError
from themis.profiler.store import new_profile_path, newest_profiles

GOLDEN = Path(__file__).parents[1] / "data" / "profiles"


@pytest.fixture
def service_dir(tmp_path, monkeypatch) -> Path:
    """An empty working directory, as a user's service folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _store(model: str, device: str, when: datetime, source: str) -> Path:
    path = new_profile_path(model, device, now=when)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(GOLDEN / source, path)
    return path


def test_init_writes_every_setting_and_plan_then_runs_with_the_stored_profile(cli_runner, service_dir, llm_trace_path) -> None:
    assert cli_runner.invoke(app, ["init"]).exit_code == 0
    settings = load_settings()
    assert settings.get("slo") == "200ms" and set(settings.values) == {"slo"}  # the rest are commented defaults
    old = _store("mlp", "cpu", datetime(2026, 1, 1, tzinfo=timezone.utc), "small_cnn_cpu.parquet")
    new = _store("mlp", "cpu", datetime(2026, 2, 1, tzinfo=timezone.utc), "mlp_cpu.parquet")
    result = cli_runner.invoke(app, ["plan", "--trace", str(llm_trace_path), "--json"])
    assert result.exit_code == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert str(new) in first and str(old) not in first and "slo 200ms" in first
    assert json.loads(result.stdout)["slo_ms"] == 200.0


def test_options_override_the_file(cli_runner, service_dir, llm_trace_path) -> None:
    (service_dir / "themis.toml").write_text('[service]\nslo = "300ms"\n[cluster]\nnode_cores = 2\n')
    result = cli_runner.invoke(
        app, ["plan", "--trace", str(llm_trace_path), "--profile", str(GOLDEN / "mlp_cpu.parquet"), "--slo", "250ms", "--json"]
    )
    data = json.loads(result.stdout)
    assert data["slo_ms"] == 250.0
    assert max(g["cores"] for step in data["steps"] for s in step["stages"] for g in s["groups"]) <= 2  # node_cores from the file


def test_without_settings_or_slo_plan_says_how_to_make_them(cli_runner, service_dir, llm_trace_path) -> None:
    result = cli_runner.invoke(app, ["plan", "--trace", str(llm_trace_path), "--profile", str(GOLDEN / "mlp_cpu.parquet")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "themis init" in result.stderr


@pytest.mark.parametrize(
    ("text", "says"),
    [("[service\nslo=1", "not valid TOML"), ("[nodes]\nx = 1", "unknown section"), ("[service]\nsloo = '1s'", "unknown setting 'sloo'")],
)
def test_a_bad_settings_file_is_one_line_naming_it(service_dir, text, says) -> None:
    (service_dir / "themis.toml").write_text(text)
    with pytest.raises(InputError, match=says) as caught:
        load_settings()
    assert "themis.toml" in str(caught.value)


def test_init_refuses_to_overwrite_and_its_template_names_every_key(cli_runner, service_dir) -> None:
    assert cli_runner.invoke(app, ["init"]).exit_code == 0
    again = cli_runner.invoke(app, ["init"])
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    text = template()
    assert all(f"{key} =" in text for keys in SECTIONS.values() for key in keys)


def test_the_store_keeps_every_measurement_and_picks_the_newest_per_device(service_dir) -> None:
    t = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    first = _store("resnet18", "cpu", t, "resnet18_cpu.parquet")
    second = _store("resnet18", "cpu", t, "resnet18_cpu.parquet")  # same second: a new name, not an overwrite
    gpu = _store("resnet18", "cuda0", t, "resnet18_cpu.parquet")
    assert first != second and first.exists() and second.exists()
    assert newest_profiles("resnet18") == [second, gpu]
    _store("mlp", "cpu", t, "mlp_cpu.parquet")
    with pytest.raises(ProfileFileError, match="several models"):
        newest_profiles(None)
