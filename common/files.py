"""Reading a user's JSON or YAML file, with every way it can fail reported as one `InputError`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from themis.common.errors import InputError


def read_text(path: str | Path) -> str:
    """The file's UTF-8 text; a missing, unreadable or non-UTF-8 file is an `InputError`."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", file=path) from None
    except UnicodeDecodeError:
        raise InputError("not a text file (not UTF-8)", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", file=path) from None


def read_json_object(path: str | Path, what: str) -> dict[str, Any]:
    """A JSON file holding one object (`what` names the expected artefact in the error)."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc})", file=path) from None
    if not isinstance(data, dict):
        raise InputError(f"not {what} (expected a JSON object)", file=path)
    return data
