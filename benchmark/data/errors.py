"""Errors raised for bad input data: always name the file (and line where there is one)."""

from __future__ import annotations


class DataError(Exception):
    """Bad or unreadable dataset input. `str(err)` is a one-line message naming the file."""

    def __init__(self, message: str, path: object | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
            where += ": "
        super().__init__(where + message)


class UnknownDatasetError(DataError):
    """A dataset name that is neither registered nor an existing path."""
