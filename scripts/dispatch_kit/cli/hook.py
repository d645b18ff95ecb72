"""``dispatch-kit hook EVENT``: the commands the harness runs on its hook events.

A hook runs inside the user's session, so every path here fails open: an
event this version does not know (a newer hooks.json against an older
environment), bad arguments or an internal error let the session go on.
"""

from __future__ import annotations

import argparse
import sys

# pre-dispatch: PreToolUse on the Agent tool. session-start: SessionStart, where
# the launcher starts building the environment so that no dispatch waits for it.
EVENTS = ("pre-dispatch", "session-start")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hook",
        help="harness hooks: pre-dispatch lints an Agent/Task prompt before it is sent",
        description="pre-dispatch reads a Claude Code PreToolUse event (JSON) on stdin and "
        "lints tool_input.prompt, with tool_input.subagent_type as the target agent: exit 2 "
        "with the findings on stderr when there are errors (the harness blocks the dispatch), "
        "exit 0 on warnings or a clean prompt. session-start readies the plugin's Python "
        "environment in the background. Any failure of a hook itself, or an event this "
        "version does not know, lets the session go on with a warning. Set "
        "DISPATCH_KIT_HOOK=off to disable.",
    )
    parser.add_argument("event", help=f"which hook to run: {', '.join(EVENTS)}")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.event == "session-start":
        return 0  # the launcher did the work (a background build when one is needed)
    if args.event != "pre-dispatch":
        sys.stderr.write(
            f"dispatch-kit hook: unknown event {args.event!r} (this version knows "
            f"{', '.join(EVENTS)}); nothing checked, the session goes on\n"
        )
        return 0
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
