"""The profile store: where `themis profile` keeps its measurements unless `--out` says otherwise.

    profiles/<model>/<device>-<UTC time>.parquet      (in the working directory)

A new measurement never overwrites an older one; `themis plan`, `check` and `compare` given
no `--profile` plan with the newest profile of each device for the model they are asked
about (or the only model in the store), and say which files they used.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from themis.profiler.errors import ProfileFileError

STORE_DIR = Path("profiles")
_STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"^(?P<device>.+)-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?\.parquet$")


def new_profile_path(model: str, device: str, *, now: datetime | None = None, store: Path = STORE_DIR) -> Path:
    """A fresh path for a profile of `model` on `device` (`cpu`, `cuda0`, ...), never an existing file."""
    stamp = (now or datetime.now(timezone.utc)).strftime(_STAMP)
    folder = store / _safe(model)
    path = folder / f"{_safe(device)}-{stamp}.parquet"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{_safe(device)}-{stamp}-{n}.parquet"
    return path


def device_label(devices: list[str]) -> str:
    """The store's name for the devices of one run: `cpu`, `cuda_1`, `cuda` (every GPU) or `all`."""
    kinds = {label.split(":")[0] for label in devices}
    if len(devices) == 1:
        return _safe(devices[0])
    return kinds.pop() if len(kinds) == 1 else "all"


def newest_profile(model: str, device: str, store: Path = STORE_DIR) -> Path | None:
    """The newest stored profile of `model` on `device` (a `device_label`), or None."""
    found = [(match["stamp"], int(match["n"] or 1), path) for path in (store / _safe(model)).glob("*.parquet")
             if (match := _NAME.match(path.name)) is not None and match["device"] == _safe(device)]
    return max(found)[2] if found else None


def stored_models(store: Path = STORE_DIR) -> list[str]:
    """The models the store holds profiles of, by name."""
    if not store.is_dir():
        return []
    return sorted(p.name for p in store.iterdir() if p.is_dir() and any(p.glob("*.parquet")))


def newest_profiles(model: str | None, store: Path = STORE_DIR) -> list[Path]:
    """The newest stored profile of every device of `model` (of the only model stored, if None)."""
    models = stored_models(store)
    if not models:
        raise ProfileFileError(
            f"no profile given and none stored in {store}/: run `themis profile MODEL` first, or pass --profile FILE", option="--profile"
        )
    if model is None:
        if len(models) > 1:
            raise ProfileFileError(f"the store holds several models ({', '.join(models)}); pick one with --model", option="--model")
        model = models[0]
    if _safe(model) not in models:
        raise ProfileFileError(f"no stored profile of {model!r} in {store}/ (stored: {', '.join(models)})", option="--model")
    newest: dict[str, tuple[str, int, Path]] = {}
    for path in (store / _safe(model)).glob("*.parquet"):
        match = _NAME.match(path.name)
        if match is None:
            continue
        key = (match["stamp"], int(match["n"] or 1), path)
        if match["device"] not in newest or key > newest[match["device"]]:
            newest[match["device"]] = key
    return [newest[device][2] for device in sorted(newest)]


def _safe(name: str) -> str:
    """A name that is one path component (model names can be file paths or module:factory)."""
    return re.sub(r"[^A-Za-z0-9_.]+", "_", Path(name).stem if "/" in name or name.endswith((".pt", ".pt2")) else name)
