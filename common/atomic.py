"""Atomic file writes: a temporary file in the same directory, then `os.replace`.

A reader (or a user pressing Ctrl-C) therefore sees either the old file or the new one,
never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from themis.common.errors import InputError


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it over `target`."""
    target = Path(target)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise InputError("directory does not exist", file=target)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise InputError(f"cannot write here ({exc.strerror})", file=target) from None
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; results are ordinary files
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` and move the result over `target` atomically."""
    with atomic_path(target) as tmp:
        write(tmp)
    return Path(target)


def write_text_atomic(target: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `target` atomically."""
    return write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _current_umask() -> int:
    """The process umask (reading it means setting it, so it is put straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def require_writable(path: Path | None, option: str) -> None:
    """Refuse, before any work, an output file whose folder is missing or cannot be written
    (a command that measures or simulates for minutes must not fail at its last step)."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name", option=option)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: directory does not exist ({folder})", option=option)
    _probe(folder, f".{path.name}.", f"cannot write {path}", option)


def require_writable_folder(folder: Path, option: str) -> None:
    """Create `folder` if needed and refuse one that cannot be written into."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write to {folder} ({exc.strerror})", option=option) from None
    _probe(folder, ".probe.", f"cannot write to {folder}", option)


def _probe(folder: Path, prefix: str, what: str, option: str) -> None:
    """Create and remove a scratch file in `folder`: permissions, read-only mounts and full
    disks all show here, where testing the mode bits would miss the last two."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=prefix, suffix=".probe"):
            pass
    except OSError as exc:
        raise InputError(f"{what} ({exc.strerror})", option=option) from None
