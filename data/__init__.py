"""Data files bundled with themis: real public traces for the demo, tests and benchmarks."""

from importlib.resources import files
from pathlib import Path

BUNDLED_TRACES = {
    "azure_llm_2023_code": "azure_llm_2023_code.csv",
    "azure_functions_2019": "azure_functions_2019_200_inv.csv",
    "azure_functions_2021": "azure_functions_2021_200.csv",
}


def bundled_trace(name: str) -> Path:
    """Path of a bundled trace by its short name (a key of `BUNDLED_TRACES`)."""
    return Path(str(files("themis.data").joinpath("traces", BUNDLED_TRACES[name])))
