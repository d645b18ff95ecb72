"""``dispatch-kit ledger events --follow --monitor``: a mission's news, one short line each.

The plugin ships it as a Claude Code plugin monitor (``monitors/monitors.json``).
What Claude Code 2.1.332 does with one, as read from its schema and seen in a
session: an entry with ``"when": "always"`` is armed when an interactive
session starts (``claude -p`` arms none), in the session's folder; each line
the command prints reaches the model as a task notification; the process is
stopped when the session ends. A monitor that exits is reported to the model
as well ("ended without producing output (exit 0)"), so this one never ends
on its own: it exits 0 only on SIGTERM, SIGINT or SIGHUP, when its parent
goes away, or when nobody reads its output any more (Claude Code gone
without stopping it).

What makes it fit for that:

- Quiet: it prints only what the model should act on, as it happens, from the
  moment it starts (no history): a verdict (``verified``, ``retry``,
  ``failed``), a task ``skipped`` after a failure, a claim ``released`` or
  ``interrupted``, a mission ``finished``, and an attempt found past its lease
  (``stale``: its agent hung). Claims, dispatches and agent starts and stops
  are the session's own doing, or reported to it by the harness already.
- Cheap: it finds ledgers as the hooks do (:mod:`dispatch_kit.guards.locate`:
  ``$DISPATCH_KIT_LEDGER``, ``.dispatch/ledger.db`` here or above, the ledgers
  listed in ``.dispatch/ledgers``), a few stat calls a second, and reads a
  ledger only when its file or WAL changed (the lease check: every few
  seconds). In a project without a ledger it waits, printing nothing, and
  follows one as soon as it appears (a mission started during the session).
  Only the standard library's sqlite3, as the hooks use; a PostgreSQL ledger
  is not followed (the hooks journal its dispatches locally; ``ledger events
  --follow --db URL`` follows it).
- Harmless: an unreadable ledger is skipped until it reads again, an error is
  said once on stderr (only stdout lines become events) and the next look goes on;
  nothing goes to stdout but event lines.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from dispatch_kit.guards import digest, locate, store
from dispatch_kit.ledger.backends.sqlite import files_stamp

POLL_S = 0.5  # between looks at the ledgers' files (stat calls only)
LEASE_CHECK_S = 5.0  # between reads of the claims, for attempts past their lease
LINE_LIMIT = 240  # characters a line may take
# Event kinds worth a line; the others are the session's own doing or already reported to it.
NOTABLE = ("verified", "retry", "failed", "skipped", "released", "interrupted", "finished")


@dataclass
class Followed:
    """One ledger being followed: its connection, the last event read, what was said."""

    path: str
    conn: sqlite3.Connection
    last: int = 0
    stamp: tuple = ()
    checked: float = 0.0  # when its leases were last looked at
    stale: set[tuple] = field(default_factory=set)  # (mission, task, attempt) reported stale


def clip(text: object, limit: int = 120) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def event_line(row: Mapping, detail: Mapping, args: str) -> str | None:
    """The one line an event gets, or None when it is not worth one."""
    kind, task, attempt = row["kind"], row["task_id"], row["attempt"]
    what = f"{task} #{attempt}" if attempt is not None else str(task)
    head = f"dispatch-kit {row['mission_id']}:"
    if kind == "verified":
        return f"{head} {what} verified"
    if kind == "retry":
        return f"{head} {what} failed, will retry: {clip(detail.get('error'))}"
    if kind == "failed":
        return (f"{head} {what} failed, no attempt left: {clip(detail.get('error'))}; "
                f"`dispatch-kit ledger status {args}`")
    if kind == "skipped":
        return f"{head} {task} skipped (after {detail.get('because')} failed)"
    if kind in ("released", "interrupted"):
        return f"{head} {what} {kind}: {clip(detail.get('reason'))}"
    if kind == "finished":
        return f"{head} mission finished; `dispatch-kit ledger status {args}`"
    return None


def stale_line(mission: str, entry: Mapping, args: str, now: float) -> str:
    age = store.ago(now - entry["since"])
    return (f"dispatch-kit {mission}: {entry['task']} #{entry['attempt']} hung (lease expired), "
            f"{digest._agent(entry)}, {age}: stop it with TaskStop, then "
            f"`dispatch-kit ledger sweep {args}`")


class Monitor:
    """Follows every ledger found from ``cwd``; :meth:`tick` prints what is new."""

    def __init__(self, *, cwd: str, environ: Mapping[str, str], db: str | None = None,
                 mission: str | None = None, task: str | None = None, as_json: bool = False,
                 out: TextIO = sys.stdout, clock: Callable[[], float] = time.time) -> None:
        self.cwd, self.environ, self.db = cwd, environ, db
        self.mission, self.task, self.as_json = mission, task, as_json
        self.out, self.clock = out, clock
        self.since = clock()  # events before this moment are history, not news
        self.followed: dict[str, Followed] = {}

    def ledgers(self) -> list[str]:
        if self.db:
            path = self.db if os.path.isabs(self.db) else os.path.join(self.cwd, self.db)
            return [path] if os.path.isfile(path) else []
        return locate.every(self.cwd, self.environ)

    def tick(self) -> None:
        found = self.ledgers()
        for path in list(self.followed):
            if path not in found:
                self.drop(path)
        for path in found:
            try:
                self.look(path)
            except (sqlite3.Error, store.GuardError, ValueError, KeyError):
                self.drop(path)  # read again from scratch at the next tick

    def drop(self, path: str) -> None:
        followed = self.followed.pop(path, None)
        if followed is not None:
            followed.conn.close()

    def look(self, path: str) -> None:
        followed = self.followed.get(path)
        if followed is None:
            followed = Followed(path, store.connect(path))
            self.followed[path] = followed
        stamp = files_stamp(path)
        if stamp != followed.stamp:
            followed.stamp = stamp
            self.read_events(followed)
        now = self.clock()
        if now - followed.checked >= LEASE_CHECK_S:
            followed.checked = now
            self.check_leases(followed, now)

    def args_for(self, followed: Followed, mission: str) -> str:
        several = len(store.open_missions(followed.conn)) > 1
        return digest.db_args(followed.path, self.cwd, mission, several)

    def read_events(self, followed: Followed) -> None:
        conn = followed.conn
        top = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        rows = conn.execute(
            "SELECT * FROM events WHERE seq > ? AND seq <= ? AND at >= ? ORDER BY seq",
            (followed.last, top, self.since),
        ).fetchall()
        followed.last = top
        for row in rows:
            if row["kind"] not in NOTABLE or not self.wanted(row["mission_id"], row["task_id"]):
                continue
            detail = json.loads(row["detail"] or "{}")
            if self.as_json:
                self.say(json.dumps(dict(row) | {"detail": detail}))
                continue
            line = event_line(row, detail, self.args_for(followed, row["mission_id"]))
            if line:
                self.say(line)

    def check_leases(self, followed: Followed, now: float) -> None:
        for mission in store.open_missions(followed.conn):
            if not self.wanted(mission, None):
                continue
            for entry in store.in_flight(followed.conn, mission, now):
                agent = entry["agent"]
                if not entry["expired"] or (agent is not None and agent["ended_at"] is not None):
                    continue
                if not self.wanted(mission, entry["task"]):
                    continue
                key = (mission, entry["task"], entry["attempt"])
                if key in followed.stale:
                    continue
                followed.stale.add(key)
                if self.as_json:
                    self.say(json.dumps({"kind": "stale", "mission_id": mission,
                                         "task_id": entry["task"], "attempt": entry["attempt"],
                                         "at": now, "detail": entry}))
                else:
                    self.say(stale_line(mission, entry, self.args_for(followed, mission), now))

    def wanted(self, mission: str, task: str | None) -> bool:
        if self.mission is not None and mission != self.mission:
            return False
        return self.task is None or task is None or task == self.task

    def say(self, line: str) -> None:
        if not self.as_json and len(line) > LINE_LIMIT:
            line = line[: LINE_LIMIT - 1] + "…"
        self.out.write(line + "\n")
        self.out.flush()

    def close(self) -> None:
        for path in list(self.followed):
            self.drop(path)


def reader_gone(fd: int) -> bool:
    """Whether nobody can read ``fd`` any more: a pipe or socket whose other end is closed.

    Claude Code reads a monitor through a socket; should it die without stopping the
    monitor, the shell it ran the command in lives on as this process's parent, so only
    the closed socket tells. A file or a terminal never reports this.
    """
    poller = select.poll()
    poller.register(fd, 0)  # errors and hang-ups are reported whatever the mask asks for
    gone = select.POLLERR | select.POLLHUP | select.POLLNVAL
    return any(events & gone for _, events in poller.poll(0))


def run(*, db: str | None = None, mission: str | None = None, task: str | None = None,
        as_json: bool = False) -> int:
    """Follow until stopped (SIGTERM, SIGINT, SIGHUP), orphaned, or unread; always exit 0."""

    def stop(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    for name in ("SIGTERM", "SIGHUP", "SIGINT"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop)
    parent = os.getppid()
    monitor = Monitor(cwd=locate.base_dir(None), environ=os.environ, db=db, mission=mission,
                      task=task, as_json=as_json)
    said: set[str] = set()
    try:
        while os.getppid() == parent and not reader_gone(sys.stdout.fileno()):
            try:
                monitor.tick()
            except (KeyboardInterrupt, BrokenPipeError):
                raise
            except Exception as exc:  # a bug must not end the session's monitor: say it once
                if repr(exc) not in said:
                    said.add(repr(exc))
                    print(f"dispatch-kit monitor: {exc!r}", file=sys.stderr, flush=True)
            time.sleep(POLL_S)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        monitor.close()
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass
        # Nobody reads any more: keep the interpreter from complaining on exit.
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
    return 0
