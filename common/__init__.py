"""Pieces every themis package shares: the version, the input-error base, atomic writes.

Kept tiny and dependency-free so that imports stay one-way (profiler -> planner ->
reports -> cli) while every package can raise the same kind of input error.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("themis-capacity")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

SCHEMA_VERSION = 1
"""Version of every JSON/Parquet contract themis writes (plan, simulation, profile, check)."""
