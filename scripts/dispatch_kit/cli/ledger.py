"""``dispatch-kit ledger``: mission state an orchestrator writes to instead of remembering.

Subcommands map one-to-one onto ledger transactions (init, next, claim,
dispatch, record, release, sweep, status, events), so a skill's loop is a
handful of shell commands and survives the agent losing its context. On a
PostgreSQL ledger each of them first imports what the session hooks
journaled locally (``import-journal`` does only that).
"""

from __future__ import annotations

import argparse
import sys

from dispatch_kit.cli._common import add_format, usage


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ledger",
        help="mission state in SQLite or PostgreSQL: init, claim, record, sweep, status, events",
        description="Track a mission's tasks in a ledger (SQLite, WAL) so no orchestrator keeps "
        "dispatch state only in memory. The ledger is --db, else $DISPATCH_KIT_LEDGER, else "
        ".dispatch/ledger.db under the plan's workspace (for init) or in the current folder or "
        "a parent (for the other subcommands). A postgresql:// URL there puts the ledger on "
        "PostgreSQL, shared by many machines (pip install 'dispatch-kit[postgres]').",
    )
    sub = parser.add_subparsers(dest="ledger_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: usage(parser))

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", help="ledger database file, or a postgresql:// URL")
        p.add_argument("--plan", help="find the ledger under this plan's workspace")
        p.add_argument("--mission", help="mission id (needed when the ledger holds several)")

    p = sub.add_parser("init", help="load a validated plan (idempotent for the same plan)")
    p.add_argument("plan", metavar="PLAN")
    common(p)
    p.add_argument("--max-tasks", type=int, default=6, help="task cap passed to plan validation")
    p.add_argument("--force", action="store_true",
                   help="replace a different plan already loaded under this mission id "
                   "(unchanged verified tasks stay verified)")
    p.add_argument("--reset", action="store_true",
                   help="start the mission over: every task ready at attempt 1")
    p.set_defaults(func=_init)

    p = sub.add_parser("next", help="tasks ready to claim: dependencies verified, not claimed")
    common(p)
    p.add_argument("--wip", type=int, help="limit: at most WIP tasks claimed or dispatched")
    add_format(p, ("text", "ids", "json"))
    p.set_defaults(func=_next)

    p = sub.add_parser("claim", help="claim tasks atomically; exit 1 naming the holder if held")
    p.add_argument("ids", nargs="+", metavar="ID")
    common(p)
    p.add_argument("--by", required=True, metavar="NAME", help="who holds the claim")
    p.add_argument("--lease", default="1h", metavar="DURATION",
                   help="how long the claim holds without a result (default: %(default)s)")
    p.add_argument("--pid", type=int,
                   help="a long-lived process holding the claim; a sweep frees the claim when "
                   "it dies before dispatching")
    p.set_defaults(func=_claim)

    p = sub.add_parser("dispatch", help="record that a claimed task's worker started")
    p.add_argument("id", metavar="ID")
    common(p)
    p.add_argument("--by", required=True, metavar="NAME", help="the claim's holder")
    p.add_argument("--pid", type=int, help="the worker's pid (a sweep collects it once it exits)")
    p.add_argument("--lease", metavar="DURATION", help="renew the lease from now")
    p.add_argument("--log", help="where the worker's output goes")
    p.set_defaults(func=_dispatch)

    p = sub.add_parser("record", help="apply the checker's verdict: verified, retry or failed")
    p.add_argument("id", metavar="ID")
    common(p)
    p.add_argument("--check", required=True, metavar="RESULT.json",
                   help="output of `dispatch-kit check PLAN --task ID --format json`")
    p.add_argument("--note", help="extra error context stored with a failed attempt")
    add_format(p)
    p.set_defaults(func=_record)

    p = sub.add_parser("release", help="give a claim back without using up an attempt")
    p.add_argument("id", metavar="ID")
    common(p)
    p.add_argument("--by", metavar="NAME", help="the claim's holder (checked when given)")
    p.add_argument("--reason", default="released by hand", help="recorded in the events")
    p.set_defaults(func=_release)

    p = sub.add_parser("sweep", help="free stale claims; collect dispatched work whose worker "
                       "is gone")
    common(p)
    p.add_argument("--stale", metavar="DURATION",
                   help="also free claims held longer than this, whatever their lease")
    add_format(p)
    p.set_defaults(func=_sweep)

    p = sub.add_parser("status", help="the completion report (mermaid: the plan's graph; "
                       "html: one self-contained page with the graph, a timeline and failures)")
    common(p)
    add_format(p, ("text", "json", "markdown", "mermaid", "html"))
    p.set_defaults(func=_status)

    p = sub.add_parser("events", help="the append-only history")
    common(p)
    p.add_argument("--task", help="only this task's events")
    p.add_argument("--follow", "-f", action="store_true",
                   help="then print each new event as it is appended, one line each (JSON: one "
                   "object a line), until interrupted (Ctrl-C, SIGTERM)")
    p.add_argument("--monitor", action="store_true",
                   help="with --follow, for a harness monitor (the plugin's Claude Code monitor, "
                   "the Monitor tool): from now on, only what needs acting on (verified, retry, "
                   "failed, skipped, released, interrupted, finished, an attempt past its "
                   "lease), one short line each, from every mission of every ledger the hooks "
                   "find; waits silently while there is none; exits 0 only when stopped")
    add_format(p, ("text", "json"))
    p.set_defaults(func=_events)

    p = sub.add_parser("import-journal",
                       help="apply the session hooks' local journal to a PostgreSQL ledger")
    p.add_argument("--db", help="the ledger's postgresql:// URL (default: $DISPATCH_KIT_LEDGER)")
    p.add_argument("--journal", metavar="PATH",
                   help="the journal (default: .dispatch/journal.db here or in a parent)")
    p.set_defaults(func=_import_journal)


def _open(args: argparse.Namespace):
    from dispatch_kit.ledger import Ledger, default_db_for, find_db
    from dispatch_kit.ledger.location import as_target

    if args.db:
        path = as_target(args.db)
    elif args.plan:
        from dispatch_kit.plan.load import load_plan

        path = default_db_for(load_plan(args.plan, max_tasks=10**6))
    else:
        path = find_db()
    ledger = Ledger.open(path)
    if isinstance(path, str):  # a PostgreSQL ledger: first what the hooks journaled here
        _auto_import(ledger, path)
    return ledger, ledger.mission(args.mission).id


def _auto_import(ledger, url: str) -> None:
    """What the session hooks journaled here for this ledger, imported first."""
    from dispatch_kit.ledger.journal_import import import_found

    import_found(ledger, url)


def _import_journal(args: argparse.Namespace) -> int:
    import os

    from dispatch_kit.errors import InputError
    from dispatch_kit.ledger import Ledger
    from dispatch_kit.ledger.backends import is_url
    from dispatch_kit.ledger.journal_import import find_journal, import_journal

    url = args.db or os.environ.get("DISPATCH_KIT_LEDGER")
    if not is_url(url):
        raise InputError("import-journal needs the PostgreSQL ledger's URL: --db "
                         "postgresql://... (or DISPATCH_KIT_LEDGER)", path="--db")
    journal = args.journal or find_journal()
    if journal is None or not os.path.isfile(journal):
        raise InputError("no journal of the session hooks here (.dispatch/journal.db in this "
                         "folder or a parent); pass --journal PATH", path=journal or "--journal")
    with Ledger.open(url) as ledger:
        report = import_journal(ledger, url, journal)
    print(f"ledger: imported {report.applied} journal row(s) from {report.journal}"
          + (f", {report.already} already imported" if report.already else "")
          + (f", {len(report.skipped)} not applied" if report.skipped else ""))
    for line in report.skipped:
        print(f"  not applied: {line}")
    return 0


def _init(args: argparse.Namespace) -> int:
    from dispatch_kit.ledger import Ledger, default_db_for
    from dispatch_kit.ledger.location import as_target
    from dispatch_kit.plan.load import load_plan

    plan = load_plan(args.plan, max_tasks=args.max_tasks)
    path = as_target(args.db) if args.db else default_db_for(plan)
    with Ledger.open(path, create=True) as ledger:
        result = ledger.init_mission(plan, mission_id=args.mission, max_tasks=args.max_tasks,
                                     force=args.force)
        if args.reset:
            ledger.reset_mission(result.mission)
        if result.action == "created":
            print(f"ledger: mission {result.mission!r} initialised with {result.tasks} tasks "
                  f"in {ledger.where}")
        elif result.action == "unchanged":
            status = ledger.status(result.mission)
            counts = ", ".join(f"{v} {k}" for k, v in status["counts"].items() if v)
            print(f"ledger: mission {result.mission!r} already loaded from this plan "
                  f"({counts}){'; reset' if args.reset else ''}")
        else:
            kept = f"; kept verified: {', '.join(result.kept)}" if result.kept else ""
            dropped = (f"; dropped claims: {', '.join(result.dropped_claims)}"
                       if result.dropped_claims else "")
            print(f"ledger: mission {result.mission!r} replaced by the new plan "
                  f"({result.tasks} tasks){kept}{dropped}")
    return 0


def _next(args: argparse.Namespace) -> int:
    import json

    if args.wip is not None and args.wip < 1:
        from dispatch_kit.errors import InputError

        raise InputError(f"bad value {args.wip}: must be 1 or more", path="--wip")
    ledger, mission = _open(args)
    with ledger:
        ready = ledger.next_ready(mission, wip=args.wip)
        if args.format == "json":
            print(json.dumps([
                {"id": t.id, "title": t.title, "cwd": t.cwd, "attempt": t.attempt,
                 "max_attempts": t.max_attempts, "retry": t.attempt > 1}
                for t in ready
            ], indent=2))
        else:
            for task in ready:
                if args.format == "ids":
                    print(task.id)
                else:
                    retry = "  (retry: render the retry prompt)" if task.attempt > 1 else ""
                    print(f"{task.id}\tattempt {task.attempt}/{task.max_attempts}\t"
                          f"{task.title}{retry}")
        if not ready:
            status = ledger.status(mission)
            inflight = sum(1 for t in status["tasks"] if t["state"] in ("claimed", "dispatched"))
            if status["state"] != "in_progress":
                why = f"mission finished ({status['state']})"
            elif args.wip is not None and inflight >= args.wip:
                why = f"WIP limit reached: {inflight} in flight"
            elif inflight:
                why = f"waiting: {inflight} in flight"
            else:
                why = "waiting on dependencies"
            print(f"ledger: nothing ready ({why})", file=sys.stderr)
            return 1
    return 0


# Bounds of --pid and --lease: a Linux pid is at most 2**22; a lease past ten years is a
# typo, and past the platform's time_t it crashed the ledger's clock arithmetic.
MAX_PID = 1 << 22
MAX_LEASE = 10 * 365 * 86400


def _lease_and_pid(args: argparse.Namespace) -> float | None:
    """The --lease in seconds (None when not given), after --pid and --lease are in range."""
    from dispatch_kit.durations import parse_duration
    from dispatch_kit.errors import InputError

    pid = getattr(args, "pid", None)
    if pid is not None and not 0 < pid <= MAX_PID:
        raise InputError(f"bad value {pid}: a process id is 1 to {MAX_PID}", path="--pid")
    if not args.lease:
        return None
    lease = parse_duration(args.lease, option="--lease")
    if lease > MAX_LEASE:
        raise InputError(f"bad value {args.lease!r}: at most ten years", path="--lease")
    return lease


def _claim(args: argparse.Namespace) -> int:
    from dispatch_kit.procs.groups import pid_start

    lease = _lease_and_pid(args)
    ledger, mission = _open(args)
    code = 0
    with ledger:
        for task_id in dict.fromkeys(args.ids):
            result = ledger.claim(mission, task_id, args.by, lease, holder_pid=args.pid,
                                  holder_start=pid_start(args.pid) if args.pid else None)
            if result.ok:
                print(result.message())
            else:
                print(f"ledger: {result.message()}", file=sys.stderr)
                code = 1
    return code


def _dispatch(args: argparse.Namespace) -> int:
    from dispatch_kit.ledger import iso
    from dispatch_kit.procs.groups import pid_start

    lease = _lease_and_pid(args)
    ledger, mission = _open(args)
    with ledger:
        claim = ledger.mark_dispatched(
            mission, args.id, args.by, pid=args.pid,
            pid_start=pid_start(args.pid) if args.pid else None, lease=lease, log_path=args.log,
        )
        assert claim is not None
        who = f" pid {claim.pid}" if claim.pid else ""
        print(f"dispatched {args.id} (attempt {claim.attempt}){who}, lease until "
              f"{iso(claim.lease_expires)}")
    return 0


def _record(args: argparse.Namespace) -> int:
    import json

    from dispatch_kit.render.templates import load_check, select_task_check

    document = load_check(args.check)
    entry = select_task_check(document, args.id, args.check)
    ledger, mission = _open(args)
    with ledger:
        result = ledger.record(mission, args.id, entry, note=args.note, actor="record")
    if args.format == "json":
        print(json.dumps({"id": result.task_id, "outcome": result.outcome,
                          "attempt": result.attempt, "max_attempts": result.max_attempts,
                          "error": result.error, "skipped": list(result.skipped)}, indent=2))
    else:
        print(result.message())
    applied = result.outcome in ("verified", "retry", "failed")
    repeated = result.outcome == "already-verified" and bool(entry.get("passed"))
    return 0 if applied or repeated else 1


def _release(args: argparse.Namespace) -> int:
    ledger, mission = _open(args)
    with ledger:
        done = ledger.release(mission, args.id, reason=args.reason, holder=args.by,
                              actor=args.by or "release")
        if not done:
            print(f"ledger: {args.id} is not claimed; nothing released", file=sys.stderr)
            return 1
        print(f"released {args.id}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    import json

    from dispatch_kit.durations import parse_duration
    from dispatch_kit.ledger.agents import latest_agents
    from dispatch_kit.runner import Collector

    stale = parse_duration(args.stale, option="--stale", allow_zero=True) if args.stale else None
    ledger, mission = _open(args)
    with ledger:
        collector = Collector(ledger.mission(mission))
        actions = ledger.sweep(mission, stale=stale, collect=collector.collect)
        agents = latest_agents(ledger.conn, mission)

    def running_agent(task_id: str) -> str | None:
        """The agent a session hook recorded for the swept attempt, if it never stopped."""
        agent = agents.get(task_id)
        return agent["agent_id"] if agent and agent["ended_at"] is None else None

    if args.format == "json":
        print(json.dumps([
            {"id": a.task_id, "action": a.action, "reason": a.reason,
             "outcome": a.result.outcome if a.result else None,
             "agent": running_agent(a.task_id)}
            for a in actions
        ], indent=2))
    else:
        for action in actions:
            tail = f" -> {action.result.message()}" if action.result else ""
            agent = running_agent(action.task_id)
            if agent:
                tail += f" (agent {agent} may still run: stop it with TaskStop {agent})"
            print(f"{action.action} {action.task_id}: {action.reason}{tail}")
        if not actions:
            print("ledger: no stale claims")
    return 0


def _status(args: argparse.Namespace) -> int:
    import json

    from dispatch_kit.ledger.text import status_markdown, status_mermaid, status_text

    ledger, mission = _open(args)
    with ledger:
        if args.format == "html":  # dispatch_kit.report: graph, timeline, failures, totals
            from dispatch_kit.report import mission_page

            sys.stdout.write(mission_page(ledger, mission))
            return 0
        status = ledger.status(mission)
    if args.format == "json":
        print(json.dumps(status, indent=2))
    elif args.format == "markdown":
        sys.stdout.write(status_markdown(status))
    elif args.format == "mermaid":
        sys.stdout.write(status_mermaid(status))
    else:
        sys.stdout.write(status_text(status))
    return 0


def _event_line(event: dict) -> str:
    from dispatch_kit.ledger import iso

    detail = " ".join(f"{k}={v}" for k, v in event["detail"].items())
    attempt = f" #{event['attempt']}" if event["attempt"] is not None else ""
    return (f"{iso(event['at'])} {event['kind']:<10} {event['task_id'] or '-'}{attempt} "
            f"{event['actor'] or ''} {detail}").rstrip()


def _events(args: argparse.Namespace) -> int:
    import json

    if args.monitor:
        if not args.follow:
            from dispatch_kit.errors import InputError

            raise InputError("--monitor goes with --follow: `ledger events --follow --monitor`")
        from dispatch_kit.guards import monitor

        return monitor.run(db=args.db, mission=args.mission, task=args.task,
                           as_json=args.format == "json")
    ledger, mission = _open(args)
    with ledger:
        if args.task is not None:
            ledger.task(mission, args.task)
        events = ledger.events(mission, task_id=args.task)
        if args.follow:
            return _follow(ledger, mission, args, events)
    if args.format == "json":
        print(json.dumps(events, indent=2))
        return 0
    for event in events:
        print(_event_line(event))
    return 0


FOLLOW_WAKE_S = 5.0  # at most this long between looks, even with no notice


def _follow(ledger, mission: str, args: argparse.Namespace, events: list[dict]) -> int:
    """Print ``events``, then each new one as it lands, until SIGINT or SIGTERM (exit 0).

    The backend says when to look again: SQLite cannot notify a reader, so its store
    watches the database file and its WAL (a few stat calls a second); PostgreSQL wakes
    this process with ``LISTEN``/``NOTIFY``. Either way the events are read only then.
    """
    import json
    import signal

    def stop(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)

    def emit(batch: list[dict]) -> None:
        for event in batch:
            line = json.dumps(event) if args.format == "json" else _event_line(event)
            sys.stdout.write(line + "\n")
        sys.stdout.flush()

    last = events[-1]["seq"] if events else 0
    try:
        emit(events)
        while True:
            # Woken or not, look: a change the store cannot see (a WAL rewritten in place
            # within the clock's tick, a lost notice) still shows within FOLLOW_WAKE_S.
            ledger.store.wait_for_events(FOLLOW_WAKE_S)
            batch = ledger.events(mission, task_id=args.task, after=last)
            if batch:
                last = batch[-1]["seq"]
                emit(batch)
    except KeyboardInterrupt:
        return 0
