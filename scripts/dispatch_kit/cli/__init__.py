"""The ``dispatch-kit`` command: a thin layer that parses flags and calls the library.

Each subcommand lives in its own module here with two functions: ``register``
adds its parser, ``run`` does the work. Those modules import only argparse at
top level so that ``dispatch-kit lint`` starting cold does not pay for Jinja,
jsonschema or SQLite it will not use. ``dispatch-kit hook EVENT`` (every
subagent dispatch of every session runs one) does not even build a parser:
see :func:`main`.
"""

from __future__ import annotations

import os
import sys

from dispatch_kit.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, InputError

TYPE_CHECKING = False  # typing itself costs a cold start ~5 ms

if TYPE_CHECKING:
    import argparse

# Order is the order ``--help`` lists them in.
COMMANDS = [
    "manifests",
    "plan",
    "check",
    "render",
    "lint",
    "rule",
    "hook",
    "demo",
    "ledger",
    "run",
    "attempt",
    "remote",
]


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; when ``argv`` names a subcommand, only that one's parser is built.

    Building every subparser costs ~10 ms of a cold one-file lint, which runs on
    every commit; ``--help`` and errors with no subcommand still list them all.
    """
    import argparse
    import importlib

    from dispatch_kit import __version__
    from dispatch_kit.cli._common import HelpFormatter

    parser = argparse.ArgumentParser(
        prog="dispatch-kit",
        description="Validate dispatch plans, check exit criteria, render and lint dispatch"
        " prompts.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dispatch-kit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = argv[0] if argv and argv[0] in COMMANDS else None
    for name in COMMANDS if wanted is None else [wanted]:
        module = importlib.import_module(f"dispatch_kit.cli.{name.replace('-', '_')}")
        module.register(subparsers)
    return parser


def hook_argv(argv: list[str]) -> tuple[str, str | None] | None:
    """``(event, harness)`` for the shapes hooks.json files use (``hook EVENT``,
    ``hook EVENT --harness NAME``); None for anything else, which argparse reads.

    A hook runs inside the user's session on every event: argparse, its gettext
    and the parser it builds cost a hook ~5 ms of its 50.
    """
    if argv[:1] != ["hook"] or len(argv) < 2 or argv[1].startswith("-"):
        return None
    rest = argv[2:]
    if not rest:
        return argv[1], None
    if len(rest) == 2 and rest[0] == "--harness" and not rest[1].startswith("-"):
        return argv[1], rest[1]
    if len(rest) == 1 and rest[0].startswith("--harness=") and rest[0] != "--harness=":
        return argv[1], rest[0].partition("=")[2]
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    fast = hook_argv(argv)
    if fast is not None:
        from dispatch_kit.cli import hook

        def run() -> int:
            return hook.answer(*fast)
    else:
        parser = build_parser(argv)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            # A hook answering 2 blocks the user's tool call: arguments this
            # version cannot parse must let the session go on, like any hook error.
            if argv[:1] == ["hook"] and exc.code not in (0, None):
                print("dispatch-kit hook: arguments not understood; nothing checked, the "
                      "session goes on", file=sys.stderr)
                return 0
            raise
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return EXIT_BAD_INPUT

        def run() -> int:
            return int(args.func(args) or 0)
    try:
        return run()
    except InputError as exc:
        print(f"{exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("dispatch-kit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # A reader such as `head` closed the pipe: not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except RecursionError:
        print("dispatch-kit: the input is nested too deeply to read", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, OverflowError, OSError, MemoryError) as exc:
        # Last resort for bad input no reader caught yet (an integer past Python's
        # 4,300-digit limit, a path the OS refuses): one line, exit 2, never a
        # traceback. tests/test_fuzz_cli.py fails on this line, so each one found
        # gets its own message with file:line.
        what = " ".join(str(exc).split())[:300] or type(exc).__name__
        print(f"dispatch-kit: cannot use this input ({type(exc).__name__}): {what}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        if type(exc).__module__ != "sqlite3":  # sqlite3 itself is not imported for this
            raise
        # A ledger whose file passed the checks at open but breaks in a later query
        # (a page corrupted mid-file): one line, exit 2.
        what = " ".join(str(exc).split())[:300] or type(exc).__name__
        print(f"dispatch-kit: the ledger cannot be read ({type(exc).__name__}): {what}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
