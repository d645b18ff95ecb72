"""One function per hook: read the event, do the guard's work, say what the harness should do.

Each returns ``(exit code, stdout, stderr)``. Every one fails open: an event
it cannot read, a ledger it cannot open, or any error of its own lets the
session go on (exit 0, one line on stderr), because a hook must never be the
reason a session is stuck. A dispatch whose prompt carries no dispatch line
is never recorded, refused or slowed by the ledger (sqlite3 is not even
imported for it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from dispatch_kit.guards import claude_code as cc
from dispatch_kit.guards import enabled, locate, marker

Answer = tuple[int, str, str]
OK: Answer = (0, "", "")
LINT_OFF = "DISPATCH_KIT_HOOK"


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _prompt_hash(prompt: str) -> str:
    """Enough to tell one session's waiting prompts apart (only used when a PostToolUse has no
    tool_use_id); zlib's checksum, because hashlib's OpenSSL import costs a hook milliseconds."""
    from zlib import crc32

    data = prompt.encode("utf-8", "surrogatepass")
    return f"{crc32(data):08x}-{len(data)}"


def _lint_on(environ: Mapping[str, str]) -> bool:
    from dispatch_kit.guards import OFF_VALUES

    return environ.get(LINT_OFF, "").strip().lower() not in OFF_VALUES


# --------------------------------------------------------------------------- PreToolUse


def pre_dispatch(raw: bytes, environ: Mapping[str, str]) -> Answer:
    """Lint the prompt (errors block), then record the dispatch or refuse a duplicate."""
    lint = _lint_on(environ)
    guard = enabled("record", environ) or enabled("duplicate", environ)
    if not lint and not guard:
        return OK
    try:
        event = cc.read_event(raw)
        if not cc.is_dispatch(event):
            return OK  # a matcher that lets other tools through: not ours to judge
        prompt = cc.dispatch_prompt(event)
        if prompt is None:
            raise ValueError("the hook event has no tool_input.prompt")
    except Exception as exc:  # noqa: BLE001 - fail open
        return 0, "", f"dispatch-kit hook: check skipped, dispatch allowed ({_reason(exc)})\n"
    base = locate.base_dir(event.get("cwd"))
    notes = ""
    if lint:
        try:
            from dispatch_kit.lint import gate

            code, notes = gate.check(prompt, cc.dispatch_agent_type(event), base)
        except Exception as exc:  # noqa: BLE001 - fail open: never block on the linter's failure
            code = 0
            notes = f"dispatch-kit hook: check skipped, dispatch allowed ({_reason(exc)})\n"
        if code == cc.BLOCK:
            return code, "", notes
    found = marker.find(prompt) if guard else None
    if found is None:
        return 0, "", notes
    try:
        code, message = _record(event, prompt, found, base, environ)
    except Exception as exc:  # noqa: BLE001 - fail open
        code, message = 0, f"dispatch-kit hook: dispatch not recorded ({_reason(exc)})\n"
    return code, "", notes + message


def _record(event: dict, prompt: str, found: marker.Marker, base: str,
            environ: Mapping[str, str]) -> tuple[int, str]:
    from dispatch_kit.guards import journal, store

    dispatch = store.Dispatch(
        found.mission, found.task, found.attempt,
        session=cc.text(event, "session_id"), tool_use_id=cc.text(event, "tool_use_id"),
        prompt_hash=_prompt_hash(prompt), name=cc.dispatch_name(event),
        agent_type=cc.dispatch_agent_type(event),
    )
    server = journal.target(found.ledger, environ)
    if server is not None:  # a PostgreSQL ledger: the local journal, which it imports
        return _journal_dispatch(dispatch, server, base, environ)
    path = locate.for_dispatch(found.ledger, base, environ)
    if path is None:
        return 0, (f"dispatch-kit hook: no ledger found for mission {found.mission}; "
                   "dispatch not recorded\n")
    conn = store.connect(path)
    try:
        now = time.time()
        outcome, detail = store.record_dispatch(
            conn, dispatch, refuse=enabled("duplicate", environ),
            record=enabled("record", environ), now=now,
        )
        several = outcome == "refused" and conn.execute(
            "SELECT COUNT(*) FROM missions").fetchone()[0] > 1
    finally:
        conn.close()
    if outcome == "refused":
        from dispatch_kit.guards import digest

        args = digest.db_args(path, base, dispatch.mission, several)
        return cc.BLOCK, digest.refusal(detail, dispatch.task, dispatch.mission, args, now)
    if outcome == "recorded":
        locate.remember(base, path, environ)
    if outcome == "skipped" or detail:
        return 0, f"dispatch-kit hook: {detail}\n" if detail else ""
    return 0, ""


def _journal_dispatch(dispatch, server: str, base: str,
                      environ: Mapping[str, str]) -> tuple[int, str]:
    from dispatch_kit.guards import journal

    now = time.time()
    outcome, detail = journal.record_dispatch(
        journal.for_writing(base), server, dispatch, refuse=enabled("duplicate", environ),
        record=enabled("record", environ), now=now,
    )
    if outcome == "refused":
        from dispatch_kit.guards import digest

        args = f"--mission {dispatch.mission}"
        if not environ.get(locate.ENV_DB):
            args = f"--db {server} " + args
        return cc.BLOCK, digest.refusal(detail, dispatch.task, dispatch.mission, args, now)
    if outcome == "skipped" and detail:
        return 0, f"dispatch-kit hook: {detail}\n"
    return 0, ""


# --------------------------------------------------------------------------- PostToolUse


def post_dispatch(raw: bytes, environ: Mapping[str, str]) -> Answer:
    """Attach the launched agent's id to its dispatch (or end a dispatch that failed)."""
    if not enabled("record", environ):
        return OK
    try:
        event = cc.read_event(raw)
        if not cc.is_dispatch(event):
            return OK
        prompt = cc.dispatch_prompt(event)
        found = marker.find(prompt)
        if found is None or prompt is None:
            return OK
        from dispatch_kit.guards import journal, store

        base = locate.base_dir(event.get("cwd"))
        agent_id, output, status = cc.launched(event)
        failed = None
        if event.get("hook_event_name") == "PostToolUseFailure":
            failed = cc.text(event, "error") or "the Agent call failed"
        server = journal.target(found.ledger, environ)
        if server is not None:
            path = journal.find(base)
            if path is not None:
                journal.attach(path, server, session=cc.text(event, "session_id"),
                               tool_use_id=cc.text(event, "tool_use_id"),
                               prompt_hash=_prompt_hash(prompt), agent_id=agent_id,
                               output_file=output, status=status, failed=failed,
                               now=time.time())
            return OK
        path = locate.for_dispatch(found.ledger, base, environ)
        if path is None:
            return OK
        conn = store.connect(path)
        try:
            store.attach(conn, session=cc.text(event, "session_id"),
                         tool_use_id=cc.text(event, "tool_use_id"),
                         prompt_hash=_prompt_hash(prompt), agent_id=agent_id,
                         output_file=output, status=status, failed=failed, now=time.time())
        finally:
            conn.close()
    except Exception as exc:  # noqa: BLE001 - fail open
        return 0, "", f"dispatch-kit hook: agent id not recorded ({_reason(exc)})\n"
    return OK


# --------------------------------------------------------------------------- SubagentStart/Stop


def subagent_start(raw: bytes, environ: Mapping[str, str]) -> Answer:
    """Nothing to record: the event has an agent id but no prompt, so it cannot say which
    dispatch started (matching "the latest pending one" would cross parallel dispatches);
    PostToolUse ties the two. Kept as a known event for hooks.json files that name it."""
    return OK


def subagent_stop(raw: bytes, environ: Mapping[str, str]) -> Answer:
    """Record that an agent ended, with its transcript; a workflow's agents are its own."""
    if not enabled("record", environ):
        return OK
    try:
        event = cc.read_event(raw)
        agent_id = cc.text(event, "agent_id")
        if agent_id is None or cc.is_workflow_agent(event):
            return OK  # a workflow records its own attempts (dispatch-kit attempt start|finish)
        base = locate.base_dir(event.get("cwd"))
        book = _journal(base, environ)
        if book is not None:
            from dispatch_kit.guards import journal

            if journal.stopped(book, agent_id=agent_id, session=cc.text(event, "session_id"),
                               agent_type=cc.text(event, "agent_type"),
                               transcript=cc.text(event, "agent_transcript_path"),
                               now=time.time()):
                return OK
        ledgers = locate.every(base, environ)
        if not ledgers:
            return OK
        from dispatch_kit.guards import store

        for path in ledgers:
            conn = store.connect(path)
            try:
                result = store.stopped(conn, agent_id=agent_id,
                                       session=cc.text(event, "session_id"),
                                       agent_type=cc.text(event, "agent_type"),
                                       transcript=cc.text(event, "agent_transcript_path"),
                                       now=time.time())
            finally:
                conn.close()
            if result == "recorded":
                break
    except Exception as exc:  # noqa: BLE001 - fail open
        return 0, "", f"dispatch-kit hook: agent end not recorded ({_reason(exc)})\n"
    return OK


def _journal(base: str, environ: Mapping[str, str]) -> str | None:
    """The journal of a PostgreSQL ledger the hooks without a prompt read: none when
    ``$DISPATCH_KIT_LEDGER`` names a ledger file."""
    env = environ.get(locate.ENV_DB)
    if env and not env.startswith(("postgresql://", "postgres://")):
        return None
    return locate.journal(base)


# --------------------------------------------------------------------------- SessionStart, Stop


CONTEXT_SOURCES = ("compact", "resume")


def session_start(raw: bytes, environ: Mapping[str, str]) -> Answer:
    """After compaction or on resume: the open missions' state as additional context.

    (The launcher has already started building the environment when one was missing.)
    """
    if not enabled("context", environ) or not raw.strip():
        return OK
    try:
        event = cc.read_event(raw)
        if event.get("source") not in CONTEXT_SOURCES:
            return OK
        base = locate.base_dir(event.get("cwd"))
        ledgers = locate.every(base, environ)
        book = _journal(base, environ)
        if not ledgers and book is None:
            return OK
        from dispatch_kit.guards import digest, store

        now = time.time()
        parts = []
        if book is not None:
            from dispatch_kit.guards import journal

            entries = journal.read_live(book, now)
            if entries:
                parts.append(digest.journal_state(entries, bool(environ.get(locate.ENV_DB)),
                                                  now))
        for path in ledgers:
            conn = store.connect(path)
            try:
                conn.execute("BEGIN")
                several = conn.execute("SELECT COUNT(*) FROM missions").fetchone()[0] > 1
                for mission in store.open_missions(conn):
                    started = conn.execute(
                        "SELECT started_at FROM missions WHERE id = ?", (mission,)
                    ).fetchone()[0]
                    if started is not None:
                        parts.append(digest.mission_state(conn, path, base, mission,
                                                          several=several, now=now))
                conn.execute("COMMIT")
            finally:
                conn.close()
    except Exception as exc:  # noqa: BLE001 - fail open
        return 0, "", f"dispatch-kit hook: mission state not shown ({_reason(exc)})\n"
    if not parts:
        return OK
    return 0, cc.session_context("\n\n".join(parts)), ""


def stop(raw: bytes, environ: Mapping[str, str]) -> Answer:
    """Hold the end of a turn once while agents this session dispatched still run."""
    if not enabled("stop", environ):
        return OK
    try:
        event = cc.read_event(raw)
        if event.get("stop_hook_active") is True:
            return OK  # blocked once already: let it stop, so no session is stuck
        base = locate.base_dir(event.get("cwd"))
        ledgers = locate.every(base, environ)
        book = _journal(base, environ)
        if not ledgers and book is None:
            return OK
        from dispatch_kit.guards import digest, store

        session = cc.text(event, "session_id")
        tasks = event.get("background_tasks")
        running = None
        if isinstance(tasks, list):  # the harness's own list: an agent not in it has ended
            running = {t.get("id") for t in tasks
                       if isinstance(t, dict) and t.get("status") == "running"}
        now = time.time()
        live: list[tuple[str, dict]] = []
        if book is not None:
            from dispatch_kit.guards import journal

            for row in journal.read_live(book, now):
                if row["agent_id"] is None or row["session_id"] != session:
                    continue
                if running is not None and row["agent_id"] not in running:
                    continue
                live.append((row["mission"], digest.journal_entry(row)))
        for path in ledgers:
            conn = store.connect(path)
            try:
                for mission in store.open_missions(conn):
                    for entry in store.in_flight(conn, mission, now):
                        agent = entry["agent"]
                        if agent is None or agent["ended_at"] is not None:
                            continue
                        if agent["session_id"] != session:
                            continue
                        if running is not None and agent["agent_id"] not in running:
                            continue
                        live.append((mission, entry))
            finally:
                conn.close()
    except Exception as exc:  # noqa: BLE001 - fail open
        return 0, "", f"dispatch-kit hook: stop check skipped ({_reason(exc)})\n"
    if not live:
        return OK
    return 0, cc.stop_block(digest.still_running(live, session, now)), ""


HANDLERS = {
    "pre-dispatch": pre_dispatch,
    "post-dispatch": post_dispatch,
    "subagent-start": subagent_start,
    "subagent-stop": subagent_stop,
    "session-start": session_start,
    "stop": stop,
}


def run(name: str, raw: bytes, environ: Mapping[str, str] = os.environ) -> Answer:
    """The answer of hook ``name``; an unknown name is the caller's to report."""
    return HANDLERS[name](raw, environ)
