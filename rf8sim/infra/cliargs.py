"""The argparse options that every command writing a record shares: ``--record``, ``--force``, ``--no-progress``.

One helper instead of the same three ``add_argument`` calls in every CLI module; each command still says
in its own words what its record is and what ``--force`` overwrites.
"""

from __future__ import annotations

__all__ = ["add_record_args"]


def add_record_args(p, record: str | None, force: str | None = "overwrite an existing record", *,
                    progress: bool | str = False, required: bool = False, metavar: str | None = "FILE.json") -> None:
    """Add ``--record FILE`` (help ``record``; ``None``: no ``--record``), ``--force`` (help ``force``) and,
    when ``progress`` is true, ``--no-progress`` (help ``progress`` when it is a string) to parser ``p``."""
    if record is not None:
        p.add_argument("--record", metavar=metavar, default=None, required=required, help=record)
    p.add_argument("--force", action="store_true", help=force)
    if progress:
        p.add_argument("--no-progress", action="store_true", help=progress if isinstance(progress, str) else None)
