"""The ``clipica`` command. Thin: it parses, calls the library, prints.

Each subcommand lives in its own module ``clipica.cli.<name>`` exposing
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``;
modules import the heavy library code inside ``run`` so ``--help`` is fast.

Exit status: 0 success, 2 bad usage or bad input (one line on stderr, no
traceback), 1 an unexpected failure.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from clipica._version import __version__
from clipica.errors import ClipicaError

# order is the order of `clipica --help`
COMMANDS = (
    "run",
    "extract",
    "merge",
    "stability",
    "ica",
    "probe",
    "intervene",
    "name",
    "compare",
    "match",
    "report",
    "fewshot",
    "simulate",
    "train_tiny",
    "demo",
    "bench",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _load(name: str):
    try:
        return importlib.import_module(f"clipica.cli.{name}")
    except ModuleNotFoundError as exc:  # a command not built yet is simply absent
        if exc.name == f"clipica.cli.{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="clipica",
        description="Find and measure disentangled factors inside pretrained CLIP models.",
    )
    parser.add_argument("--version", action="version", version=f"clipica {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
        cmd = name.replace("_", "-")
        p = sub.add_parser(cmd, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    previous_format = warnings.formatwarning
    warnings.formatwarning = _warning_line(args.command)
    try:
        code = args._run(args)
    except ClipicaError as exc:
        sys.stderr.write(f"clipica {args.command}: error: {_one_line(str(exc))}\n")
        return 2
    except OSError as exc:  # the machine said no (disk full, permissions, a file where a folder goes)
        sys.stderr.write(f"clipica {args.command}: error: {os_error_line(exc)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"clipica {args.command}: interrupted\n")
        return 130
    finally:
        warnings.formatwarning = previous_format
    return int(code or 0)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _warning_line(command: str):
    """A warning as one line, like the errors (Python's default adds the source line of the
    ``warnings.warn`` call, a second line that means nothing to a user)."""
    def fmt(message, category, filename, lineno, line=None) -> str:
        return f"clipica {command}: {category.__name__}: {_one_line(str(message))}\n"

    return fmt


#: errno -> what to do about it (the library's commit protocol keeps finished work: rerun resumes)
_OS_HINTS = {
    "ENOSPC": "no space left on the device; free some and rerun the same command (finished work is kept)",
    "EDQUOT": "disk quota exceeded; free some space and rerun the same command (finished work is kept)",
    "EFBIG": "file too large for this file system; write to another file system (--out) and rerun",
    "EACCES": "permission denied; choose a path you can write, or fix its permissions",
    "EPERM": "operation not permitted; choose a path you can write, or fix its permissions",
    "EROFS": "read-only file system; choose another --out",
    "ENOTDIR": "a part of the path is a file, not a folder; choose another path",
    "EEXIST": "the path exists (perhaps a file where a folder should go); choose another path",
    "ENAMETOOLONG": "file name too long",
    "EMFILE": "too many open files; raise the limit (ulimit -n) or use fewer --num-workers",
}


def os_error_line(exc: OSError) -> str:
    """One line for an OSError: what the system said, about which path, and what to do."""
    import errno

    name = errno.errorcode.get(exc.errno or -1, "")
    paths = [p for p in (exc.filename, getattr(exc, "filename2", None)) if p]
    where = f" ({' -> '.join(str(p) for p in paths)})" if paths else ""
    hint = _OS_HINTS.get(name)
    said = exc.strerror or str(exc) or type(exc).__name__
    return _one_line(f"{said}{where}" + (f": {hint}" if hint else ""))


def _entry() -> None:  # pragma: no cover
    sys.exit(main())
