"""Fixtures shared by every test package: the bundled real traces, golden profiles, a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings
from typer.testing import CliRunner

from themis.data import bundled_trace

GOLDEN_PROFILES = Path(__file__).parent / "data" / "profiles"

# Property tests are judged on what they find, never on speed: a shared 2-core CI machine
# must not turn a slow example into a failure (speed lives in benchmarks/). CI draws the same
# examples every run (`derandomize`), so a red build is a change, not a new draw;
# `HYPOTHESIS_PROFILE=explore` draws fresh ones (and more of them) when hunting for defects.
settings.register_profile("themis", deadline=None, derandomize=True)
settings.register_profile("explore", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "themis"))


@pytest.fixture
def cli_runner() -> CliRunner:
    """In-process CLI runner at a fixed terminal width, stderr kept apart from stdout."""
    return CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"})


@pytest.fixture(scope="session")
def llm_trace_path() -> Path:
    return bundled_trace("azure_llm_2023_code")


@pytest.fixture(scope="session")
def functions_2019_path() -> Path:
    return bundled_trace("azure_functions_2019")


@pytest.fixture(scope="session")
def functions_2021_path() -> Path:
    return bundled_trace("azure_functions_2021")


@pytest.fixture(scope="session")
def golden_profile() -> Path:
    """A real profile of the small CNN measured on this project's 2-core CPU (see its README)."""
    return GOLDEN_PROFILES / "small_cnn_cpu.parquet"
