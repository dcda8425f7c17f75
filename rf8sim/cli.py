"""The ``rf8sim`` command line.

Each part of the package contributes its subcommands through a ``commands``
module with ``register(subparsers)``; this file only assembles them and turns
the package's own exceptions into one-line messages with exit code 2.
Heavy imports (numba, torch, amaranth) happen inside the handlers.
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

import argparse
import importlib
import sys

from . import __version__

#: Modules that add subcommands, in help order.  A part that is not importable
#: (e.g. an optional extra missing) is skipped with a note in ``--help``.
COMMAND_MODULES = (
    "rf8sim.commands",
    "rf8sim.golden.commands",
    "rf8sim.hdl.commands",
    "rf8sim.tech.commands",
    "rf8sim.training.commands",
    "rf8sim.study.commands",
    "rf8sim.study.claims.commands",
)


#: commands that write the cache (builds, syntheses, models, task results) even without --cache-dir
CACHE_COMMANDS = frozenset({"synth", "rtlsim", "verify-layer", "flow", "demo", "study area-accuracy", "study tinylm",
                            "study cluster-scaling", "claims", "aligned-error"})


class CLIError(RF8SimError):
    """A user error the CLI reports as one line (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rf8sim",
        description="RF8 residual floating point: formats, golden model, RTL, training and studies.",
    )
    parser.add_argument("--version", action="version", version=f"rf8sim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and (e.name == name or name.startswith(e.name + ".")):
                continue  # that part is not written yet / not installed
            raise
        mod.register(sub)
    return parser


def _option_actions(parser: argparse.ArgumentParser, args):
    """Every option of ``parser`` and of the subcommands ``args`` chose, recursively."""
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            chosen = getattr(args, a.dest, None) if a.dest != argparse.SUPPRESS else None
            if chosen in a.choices:
                yield from _option_actions(a.choices[chosen], args)
        elif a.option_strings:
            yield a


def _refuse_empty_values(parser: argparse.ArgumentParser, args) -> None:
    """An option given an empty value (``--json ""``, ``-o ""``) is a mistake, never "no file": refuse it
    instead of silently writing nothing."""
    given = vars(args)
    for a in _option_actions(parser, args):
        if a.nargs == 0 or a.default == "" or given.get(a.dest, None) != "":
            continue
        raise CLIError(f"{'/'.join(a.option_strings)} was given an empty value; it needs "
                       f"{a.metavar or a.dest.upper()} (leave the option out for its default)")


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """A warning as one line naming what to do (the warnings carry that), not the module path and source
    line of the code that raised it."""
    return f"rf8sim: warning: {message}\n"


def _quiet_output_setup():
    """Warnings as one line (returns the previous formatter, restored when the command ends); without a
    terminal (a file, a CI log) progress bars redraw every 30 s, not several times a second (each redraw is
    one more carriage-return segment in the log)."""
    import os
    import warnings

    previous, warnings.formatwarning = warnings.formatwarning, _warning_line
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        os.environ.setdefault("TQDM_MININTERVAL", "30")
    return previous


def main(argv: list[str] | None = None) -> int:
    """Run one command; every RF8SimError becomes a one-line message (exit 2), anything else is a bug
    and keeps its traceback.  Ctrl-C (also while the commands are being imported) exits 130."""
    import warnings

    previous = _quiet_output_setup()
    try:
        return _main(argv)
    finally:
        warnings.formatwarning = previous


def _main(argv):
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        try:
            _refuse_empty_values(parser, args)
            what = f"{args.command} {getattr(args, 'study_command', None) or ''}".strip()
            if getattr(args, "cache_dir", None) is not None or what in CACHE_COMMANDS:
                from .infra import cache

                cache.check_root(getattr(args, "cache_dir", None))  # a file or read-only: say so up front
            return int(args.func(args) or 0)
        except RF8SimError as e:
            print(f"rf8sim {args.command}: error: {e}", file=sys.stderr)
            return 2
        except OSError as e:  # the cache went unwritable (or was never writable) under a long run
            from .infra import cache

            if not (getattr(e, "filename", None) and cache.in_root(e.filename)):
                raise
            print(f"rf8sim {args.command}: error: cannot write the cache {cache.root()}: "
                  f"{e.strerror or e} ({e.filename}); pass --cache-dir DIR or set {cache.ENV} to a writable "
                  "folder", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
