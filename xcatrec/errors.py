"""Errors that xcatrec raises for bad input.

Every error names the problem and the fix, so that the CLI can print it as one line instead of a
traceback. Code that detects bad input raises one of these; nothing else in the package catches them.
"""

from __future__ import annotations


class XcatrecError(Exception):
    """Base class: a problem with the user's input or environment, with a suggested fix.

    Args:
        problem: What is wrong, naming the offending file, column, id or option.
        fix: What the user can do about it.
    """

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}" + (f" Fix: {fix}" if fix else ""))


class DataError(XcatrecError, ValueError):
    """Input data is missing, malformed, empty, or inconsistent."""


class DownloadError(XcatrecError, OSError):
    """A public data file could not be obtained or failed its checksum."""


class UnknownIdError(XcatrecError, KeyError):
    """A user or item id (raw or index) is not in the model's vocabulary."""

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return self.args[0]


class ConfigError(XcatrecError, ValueError):
    """An unknown option, data set, domain or method, or an invalid setting."""
