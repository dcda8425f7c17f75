"""The one base class of every error rf8sim reports to a user.

Every clear, specific error the package raises derives from :class:`RF8SimError`
(most also from ``ValueError`` or ``TypeError`` so existing ``except`` clauses keep
working).  The CLI turns exactly these into one-line messages; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["RF8SimError", "OutputError", "OutputExistsError", "ToolMissingError", "InputError", "InputFileError"]


class RF8SimError(Exception):
    """Base class: a user-facing error with a message that says what was wrong and what is valid."""


class OutputError(RF8SimError, OSError):
    """An output path that cannot be written (exists, is a directory, unwritable, escapes its root)."""


class OutputExistsError(OutputError, FileExistsError):
    """The output file exists and overwriting was not asked for (``--force``)."""


class InputError(RF8SimError, ValueError):
    """A bad input value, option or file content (says what was wrong and what is valid)."""


class InputFileError(RF8SimError, FileNotFoundError):
    """An input path that does not exist or cannot be read."""


class ToolMissingError(RF8SimError, RuntimeError):
    """An external tool (simulator, yosys, sta, a Liberty file) is not installed; says how to install it."""
