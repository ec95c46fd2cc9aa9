"""The one rule every reader applies to a file's `schema_version`.

A reader accepts every version from 1 up to the one it writes (older ones are converted
by the reader that knows them) and refuses a newer one by name, so a file from a newer
themis fails with a clear line instead of being misread.
"""

from __future__ import annotations

from pathlib import Path

from themis.common.errors import InputError


def check_schema_version(found: object, current: int, *, what: str, file: str | Path) -> int:
    """The version of a `what` file, checked against the newest this themis knows (`current`)."""
    try:
        version = int(str(found))
    except ValueError:
        raise InputError(f"not {what}: schema_version {found!r} is not a whole number", file=file) from None
    if version < 1:
        raise InputError(f"not {what}: schema_version {version} (versions start at 1)", file=file)
    if version > current:
        raise InputError(f"{what} written by a newer themis (schema_version {version}; this one reads up to {current})", file=file)
    return version
