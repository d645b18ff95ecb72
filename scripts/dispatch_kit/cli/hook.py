"""``dispatch-kit hook pre-dispatch``: the PreToolUse hook that lints a dispatch before it runs."""

from __future__ import annotations

import argparse
import sys

EVENTS = ("pre-dispatch",)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hook",
        help="harness hooks: pre-dispatch lints an Agent/Task prompt before it is sent",
        description="Read a Claude Code PreToolUse event (JSON) on stdin and lint "
        "tool_input.prompt, with tool_input.subagent_type as the target agent. Exit 2 with "
        "the findings on stderr when there are errors (the harness blocks the dispatch); exit "
        "0 on warnings or a clean prompt. Any failure of the check itself allows the dispatch "
        "with a warning. Set DISPATCH_KIT_HOOK=off to disable.",
    )
    parser.add_argument("event", choices=EVENTS, help="which hook to run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from dispatch_kit.lint.hook import pre_dispatch

    try:
        raw = sys.stdin.buffer.read()
    except (OSError, ValueError):
        raw = b""
    code, message = pre_dispatch(raw, os.environ)
    if message:
        sys.stderr.write(message)
    return code
