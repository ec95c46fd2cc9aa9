"""`themis.toml`: the settings a service's commands share, in the working directory.

SLO, percentile, node size, prices, cold start and the rest of the shared planning
settings are written once (`themis init` writes the file with every default and a comment)
and read by every command; an option given on the command line overrides the file, and a
setting in neither takes the planner's default (`themis.planner.model.config`).

Values are the same text the options take (`"200ms"`, `"cpu=0.05,a100=2.5"`), so one
parser serves both. The file is TOML (read with the standard library's `tomllib`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from themis.common.atomic import write_text_atomic
from themis.common.errors import InputError, first_line
from themis.planner.model import config as defaults

SETTINGS_FILE = "themis.toml"

SECTIONS: dict[str, dict[str, str]] = {
    "service": {
        "slo": "end-to-end latency SLO at the percentile, e.g. \"200ms\" (required to plan)",
        "percentile": "the SLO percentile",
        "model": "the model to plan when the profile store holds several",
    },
    "cluster": {
        "node_cores": "node size: the most cores one replica can be resized to",
        "max_replicas": "most replicas per stage",
        "cold_start": "time for a new replica to start serving",
        "resize_delay": "time for an in-place resize to take effect",
        "price": "per core-hour (cpu=...) and per GPU-hour by device name, in your currency, e.g. \"cpu=0.05,a100=2.5\"",
    },
    "planning": {
        "interval": "planning interval",
        "warmup": "compare, simulate and check count from this time on",
        "forecast": "forecast method",
        "headroom": "plan for forecast x headroom",
        "cores": "allowed cores per replica",
        "batch_sizes": "allowed batch sizes",
    },
}
"""Every key the file may hold, by section, with what it means (the comments `init` writes)."""

DEFAULT_TEXT: dict[str, str] = {
    "percentile": f"{defaults.DEFAULT_PERCENTILE:g}",
    "node_cores": str(defaults.DEFAULT_NODE_CORES),
    "max_replicas": str(defaults.DEFAULT_MAX_REPLICAS),
    "cold_start": f"{defaults.DEFAULT_COLD_START_S:g}s",
    "resize_delay": f"{defaults.DEFAULT_RESIZE_S:g}s",
    "interval": f"{defaults.DEFAULT_INTERVAL_S:g}s",
    "warmup": f"{defaults.DEFAULT_WARMUP_S:g}s",
    "forecast": defaults.DEFAULT_FORECAST,
    "headroom": f"{defaults.DEFAULT_HEADROOM:g}",
    "cores": ",".join(map(str, defaults.DEFAULT_CORES)),
    "batch_sizes": ",".join(map(str, defaults.DEFAULT_BATCH_SIZES)),
}
"""The defaults as option text (what `--help` shows and `init` writes commented out)."""


@dataclass(frozen=True)
class Settings:
    """The settings found in `themis.toml` (empty when there is none), as option text."""

    values: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def describe(self) -> str:
        """`themis.toml (slo 200ms, node_cores 8)`, or that there is none."""
        if self.path is None:
            return "no themis.toml"
        shown = ", ".join(f"{k} {v}" for k, v in self.values.items())
        return f"{self.path} ({shown})" if shown else f"{self.path} (empty)"


def load_settings(directory: Path | None = None) -> Settings:
    """The settings of `themis.toml` in `directory` (default: the working directory)."""
    path = (directory / SETTINGS_FILE) if directory is not None else Path(SETTINGS_FILE)
    if not path.is_file():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"not valid TOML ({first_line(error)})", file=path) from None
    values: dict[str, str] = {}
    for section, table in data.items():
        if section not in SECTIONS or not isinstance(table, dict):
            raise InputError(f"unknown section [{section}]; themis.toml has {', '.join(f'[{s}]' for s in SECTIONS)}", file=path)
        for key, value in table.items():
            if key not in SECTIONS[section]:
                raise InputError(f"unknown setting {key!r} in [{section}]; it takes {', '.join(SECTIONS[section])}", file=path)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise InputError(f"[{section}] {key} must be text or a number, not {type(value).__name__}", file=path)
            values[key] = str(value)
    return Settings(values, path)


def template() -> str:
    """The file `themis init` writes: every setting with its meaning, defaults commented out."""
    lines = [
        "# themis settings for this service, read by every themis command run in this folder.",
        "# An option given on the command line overrides the value here; a setting left out",
        "# (or commented out) takes the default shown. Durations: 400ms, 30s, 5m.",
    ]
    for section, keys in SECTIONS.items():
        lines += ["", f"[{section}]"]
        for key, meaning in keys.items():
            lines.append(f"# {meaning}")
            if key == "slo":
                lines.append('slo = "200ms"')
            else:
                default = DEFAULT_TEXT.get(key)
                lines.append(f'# {key} = "{default}"' if default is not None else f'# {key} = ""')
    return "\n".join(lines) + "\n"


def write_template(directory: Path, *, overwrite: bool = False) -> Path:
    """Write `themis.toml` into `directory`; an existing one is kept unless `overwrite`."""
    path = directory / SETTINGS_FILE
    if path.exists() and not overwrite:
        raise InputError("exists already; edit it, or pass --overwrite to start again", file=path)
    return write_text_atomic(path, template())
