"""``dispatch-kit hook EVENT``: the commands the harness runs on its hook events.

A hook runs inside the user's session, so every path here fails open: an
event this version does not know (a newer hooks.json against an older
environment), bad arguments or an internal error let the session go on.
The work is in :mod:`dispatch_kit.guards.handlers`.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing itself costs a cold start ~5 ms

if TYPE_CHECKING:
    import argparse

# The hook each event name runs (hooks/hooks.json maps Claude Code's events to these).
EVENTS = ("pre-dispatch", "post-dispatch", "subagent-start", "subagent-stop", "session-start",
          "stop")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hook",
        help="harness hooks: lint and record each dispatch, keep the ledger, guard the session",
        description="Each reads a Claude Code hook event (JSON) on stdin. pre-dispatch "
        "(PreToolUse on Agent/Task) lints tool_input.prompt for tool_input.subagent_type and "
        "exits 2 with the findings on stderr when there are errors; when the prompt carries a "
        "dispatch line (`dispatch-kit: mission=M task=T attempt=N`) it records the dispatch in "
        "the ledger, or refuses it (exit 2, one line) while an agent of that task still runs. "
        "post-dispatch (PostToolUse, PostToolUseFailure) attaches the agent id; subagent-stop "
        "records the agent's end and transcript; session-start (compact, resume) adds the open "
        "missions' state to the context; stop holds the end of a turn once while agents this "
        "session dispatched still run. With a PostgreSQL ledger the hooks record into a local "
        "journal (.dispatch/journal.db; no driver import, no connection), which every `ledger` "
        "command on that ledger imports first (or `ledger import-journal`). Any failure of a "
        "hook itself, or an event this version does not know, lets the session go on. "
        "Switches (off/0/false): DISPATCH_KIT_HOOK (the lint), DISPATCH_KIT_GUARD_RECORD, "
        "DISPATCH_KIT_GUARD_DUPLICATE, "
        "DISPATCH_KIT_GUARD_CONTEXT, DISPATCH_KIT_GUARD_STOP, DISPATCH_KIT_GUARDS (all guards).",
    )
    parser.add_argument("event", help=f"which hook to run: {', '.join(EVENTS)}")
    parser.add_argument(
        "--harness",
        help="the harness that sends the event: claude-code, codex, gemini, qwen, opencode "
        "(default: told by the event's tool name; pre-dispatch only)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return answer(args.event, getattr(args, "harness", None))


def answer(event: str, harness: str | None = None) -> int:
    """Run hook ``event`` on the event JSON on stdin; the exit code the harness reads.

    :func:`dispatch_kit.cli.main` calls this without argparse for the argument
    shapes hooks.json uses, so it must not rely on anything the parser sets up.
    """
    if event not in EVENTS:
        sys.stderr.write(
            f"dispatch-kit hook: unknown event {event!r} (this version knows "
            f"{', '.join(EVENTS)}); nothing checked, the session goes on\n"
        )
        return 0
    try:
        raw = sys.stdin.buffer.read()
    except (OSError, ValueError, AttributeError):
        raw = b""
    try:
        import os

        from dispatch_kit.guards.handlers import run as handle

        if event == "pre-dispatch":
            raw = _neutral(raw, harness)
        code, out, err = handle(event, raw, os.environ)
    except Exception as exc:  # noqa: BLE001 - fail open, whatever broke
        code, out, err = 0, "", f"dispatch-kit hook: {event} skipped ({exc})\n"
    if out:
        sys.stdout.write(out)
    if err:
        sys.stderr.write(err)
    return code


def end_process(code: int) -> None:
    """End a hook's process now, with ``code``: what it wrote is flushed and its atexit
    handlers run (the regex-code cache is saved there), then ``os._exit``.

    A hook's process is about to end anyway: the interpreter's usual teardown
    (freeing every module and object the linter loaded) costs it ~5 ms of the
    50 a dispatch may take, and keeps nothing. Its files are written in ``with``
    blocks and its ledger connections closed before it answers, and it starts
    no thread. Called by the process's entry points only (``bin/dispatch-kit``
    and ``python -m dispatch_kit``), never by :func:`dispatch_kit.cli.main`,
    which tests call in their own process.
    """
    import atexit
    import os

    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None:  # another interpreter: the usual exit
        raise SystemExit(code)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass  # a reader that went away: the harness has its answer or none
    os._exit(code)


def _neutral(raw: bytes, harness: str | None) -> bytes:
    """Another harness's pre-tool event as the one dispatch event the guards read.

    Claude Code's events pass unchanged. An event this version cannot read
    passes unchanged too: the guards then let it through (fail open). Each
    adapter also tells the linter its harness's shell tool and agent folders.
    """
    import json

    from dispatch_kit.harness import dispatch

    try:
        event = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return raw
    if not isinstance(event, dict):
        return raw
    name = harness or dispatch.detect(event)
    if name == "claude-code":
        return raw
    module = dispatch.adapter(name)  # KeyError: an unknown harness, reported by the caller
    found = module.read_dispatch(event)
    if found is None:
        return b'{"tool_name": null}'  # not a dispatch this adapter reads: nothing to check
    from dispatch_kit.lint import agents

    agents.recognise(getattr(module, "SHELL_TOOLS", frozenset()),
                     getattr(module, "AGENT_FOLDERS", ()))
    return found.as_gate_event()
