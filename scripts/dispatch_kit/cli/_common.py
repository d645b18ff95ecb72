"""Small helpers shared by the subcommand modules (kept import-light)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

TYPE_CHECKING = False  # typing itself costs a cold start ~5 ms

if TYPE_CHECKING:
    from dispatch_kit.plan.model import Plan


def terminal_width() -> int:
    """What ``shutil.get_terminal_size`` would say, minus argparse's margin of 2.

    argparse asks shutil for the width every time it builds a formatter, which
    happens on each ``add_argument``; importing shutil (and bz2, lzma, zlib)
    costs a cold one-file lint several milliseconds it never uses.
    """
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns if columns > 0 else 80) - 2


class _KnownWidth:
    """Mixin: pass argparse's formatter the width, so it does not import shutil for it."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        super().__init__(  # type: ignore[call-arg]
            prog, indent_increment, max_help_position, terminal_width() if width is None else width
        )


class HelpFormatter(_KnownWidth, argparse.HelpFormatter):
    """argparse's default formatter, minus the shutil import."""


class RawDescriptionHelpFormatter(_KnownWidth, argparse.RawDescriptionHelpFormatter):
    """argparse's raw-description formatter, minus the shutil import."""


def add_format(
    parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("text", "json")
) -> None:
    parser.add_argument(
        "--format", choices=choices, default=choices[0], help="output format (default: %(default)s)"
    )


def int_at_least(minimum: int, too_small: str) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number no smaller than ``minimum``.

    Several commands take counts with a floor (jobs, a plan's task cap); the
    parse and the "not a whole number" wording live here, while each caller
    says in ``too_small`` (formatted with ``value``) why its floor exists.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(too_small.format(value=value))
        return value

    return parse


def validated_plan(path: str, max_tasks: int) -> Plan | None:
    """The plan at ``path``, or None when it cannot be used; every problem goes to stderr.

    ``plan validate`` and ``check`` must reject a plan in the same words and
    report all of its problems, not only the first; the caller turns None into
    the bad-input exit code. The plan library is imported here, not at module
    top, so that commands which never read a plan start fast.
    """
    from dispatch_kit.plan.load import validate_plan

    plan, errors = validate_plan(path, max_tasks=max_tasks)
    for error in errors:
        print(error, file=sys.stderr)
    return plan


def write_output(path: str, text: str) -> None:
    """Write ``-o PATH`` (creating its folders), or say in one line why it cannot be.

    ``-o`` names a file: a folder there, or a file where a folder of its path
    should be, is the user's slip, worth a message that says so rather than
    the operating system's errno text.
    """
    from dispatch_kit.errors import InputError

    if os.path.isdir(path):
        raise InputError("is a folder; -o names the file to write", path=path)
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except (NotADirectoryError, FileExistsError):
        raise InputError("a file stands where a folder of this path should be", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", path=path) from None


def usage(parser: argparse.ArgumentParser) -> int:
    """A command group called without its subcommand: its help on stderr, exit 2 (bad input)."""
    parser.print_help(sys.stderr)
    return 2
