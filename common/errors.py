"""The one base class for bad input, shared by every package.

The CLI turns an `InputError` into one plain line on stderr and exit code 2; anything
else is a bug and is re-raised. Each package subclasses it for its own domain.
"""

from __future__ import annotations

from pathlib import Path


def shown(value: object) -> str:
    """A value from a user's file as an error message shows it: `'abc'`, `-7`, `nan`, never
    a numpy repr such as `np.int64(-7)`."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        value = item()
    return repr(value)


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (or its type's name): what a one-line error shows."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class InputError(Exception):
    """Bad input from the user: names the file, row or option and what is wrong."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        option: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.row = row
        self.option = option
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.option:
            where.append(self.option)
        if self.file:
            where.append(self.file if self.row is None else f"{self.file}, row {self.row}")
        elif self.row is not None:
            where.append(f"row {self.row}")
        return f"{': '.join(where)}: {self.message}" if where else self.message
