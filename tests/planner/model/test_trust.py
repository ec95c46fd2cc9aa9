"""Which latency models a plan may stand on: untrusted cells and degenerate fits, on real profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.plan_support import PROFILES
from themis.planner.model.fit_report import fit_report
from themis.planner.optimise.pipeline import stages_from_profiles
from themis.planner.model.trust import FIT_ERROR_LIMIT, UntrustedProfileError, fit_warnings, require_trusted, untrusted_cells
from themis.profiler.table import profile_rows, read_profile, write_profile

CONTENDED = PROFILES / "mlp_cpu_contended.parquet"  # measured while other test suites ran: every cell contended
BUSY = PROFILES / "resnet18_cpu_busy.parquet"  # measured on a busy machine before contention was detected


def test_a_plan_on_contended_cells_is_refused_naming_them() -> None:
    stages = stages_from_profiles([CONTENDED])
    with pytest.raises(UntrustedProfileError, match="--allow-unstable") as error:
        require_trusted(stages)
    message = str(error.value)
    assert message.startswith("--profile: mlp on cpu: 6 of 6 measured cells are unstable or contended (1c b1 contended")
    assert "\n" not in message


def test_allow_unstable_plans_on_them_and_returns_the_warning() -> None:
    stages = stages_from_profiles([CONTENDED])
    (warning,) = require_trusted(stages, allow_unstable=True)
    assert "6 of 6 measured cells" in warning
    (_, (model,)) = stages[0]
    assert len(model.cells_) == 6 and set(model.untrusted_.values()) == {"contended"}  # used as measured


def test_only_the_untrusted_cells_are_named(tmp_path: Path) -> None:
    frame = read_profile(PROFILES / "resnet18_cpu.parquet")
    rows = profile_rows(frame)
    rows[2].update(status="unstable", error="window medians still 9% apart")
    rows[7].update(status="contended")
    path = write_profile(tmp_path / "r.parquet", rows, frame.attrs["environment"])
    (line,) = untrusted_cells(stages_from_profiles([path]))
    assert line == "resnet18 on cpu: 2 of 12 measured cells are unstable or contended (1c b4 unstable, 2c b2 contended)"


def test_trusted_golden_profiles_pass_and_fit_without_warnings() -> None:
    for name in ("resnet18_cpu", "mlp_cpu", "small_cnn_cpu"):
        assert require_trusted(stages_from_profiles([PROFILES / f"{name}.parquet"])) == []
        assert fit_report(read_profile(PROFILES / f"{name}.parquet")).reports[0].warnings == (), name


def test_the_busy_profile_fits_degenerately_and_says_so() -> None:
    (report,) = fit_report(read_profile(BUSY)).reports
    assert report.coef["g"] == 0 and report.coef["e"] == 0
    assert any("g = e = 0" in w for w in report.warnings)
    assert any(f"over {FIT_ERROR_LIMIT:.0%}" in w for w in report.warnings)
    assert report.to_dict()["warnings"] == list(report.warnings)


@pytest.mark.parametrize(
    ("coef", "loo", "cores", "batches", "expected"),
    [
        ({"g": 1.0, "e": 0.0, "d": 1.0, "h": 0.0}, 0.05, 2, 4, []),
        ({"g": 0.0, "e": 0.0, "d": 1.0, "h": 1.0}, 0.05, 2, 4, ["g = e = 0"]),
        ({"g": 0.0, "e": 0.0, "d": 1.0, "h": 1.0}, 0.05, 1, 4, []),  # one core count: cores cannot be judged
        ({"g": 0.0, "e": 1.0, "d": 0.0, "h": 1.0}, 0.05, 2, 4, ["g = d = 0"]),
        ({"g": 1.0, "e": 1.0, "d": 1.0, "h": 1.0}, 0.40, 2, 4, ["40% on average"]),
        ({"g": 1.0, "e": 1.0, "d": 1.0, "h": 1.0}, None, 2, 2, []),
    ],
)
def test_fit_warnings(coef: dict, loo: float | None, cores: int, batches: int, expected: list[str]) -> None:
    warnings = fit_warnings(coef, loo, "amdahl", cores, batches)
    assert len(warnings) == len(expected) and all(e in w for e, w in zip(expected, warnings))
