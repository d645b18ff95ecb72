"""Where a hook finds the ledgers of the project it runs in.

A hook has no ``--db``: it starts from the event's ``cwd`` (the session's
working directory) and looks, in order, at

1. ``$DISPATCH_KIT_LEDGER``, when set (then nothing else);
2. the ``ledger=`` path of the prompt's dispatch line, relative to ``cwd``;
3. ``.dispatch/ledger.db`` in ``cwd`` or its nearest parent that has one,
   as every ``dispatch-kit ledger`` command finds it;
4. each ledger listed in ``cwd/.dispatch/ledgers``, one path a line: the
   pre-dispatch hook adds there every ledger it records into that step 3
   would not find (a mission whose workspace is a subfolder), so the hooks
   that carry no prompt (subagent-stop, session-start, stop) find it too.

Several missions in one project therefore work either way: in one ledger
(missions told apart by id) or in one ledger per workspace. Only ``os.path``
here: these run on every hook event, most of them in projects with no
ledger at all.

A ledger on PostgreSQL (``$DISPATCH_KIT_LEDGER=postgresql://...``, or a
dispatch line's ``ledger=`` URL) is not a file, and no step here finds it:
importing its driver alone costs ~120 ms, several times a hook's budget. The
hooks record its dispatches in a local journal instead, which the ledger
imports (:mod:`dispatch_kit.guards.journal`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV_DB = "DISPATCH_KIT_LEDGER"
FOLDER = ".dispatch"
DB_NAME = "ledger.db"
INDEX = "ledgers"


def base_dir(cwd: object) -> str:
    """The event's ``cwd`` when it is a folder, else this process's."""
    if isinstance(cwd, str) and cwd and os.path.isdir(cwd):
        return cwd
    return os.getcwd()


def upward(cwd: str, name: str = DB_NAME) -> str | None:
    """``.dispatch/NAME`` (the ledger by default) in ``cwd`` or the nearest parent that has
    one: a session may start in any subfolder of the project whose state it guards."""
    here = os.path.abspath(cwd)
    while True:
        candidate = os.path.join(here, FOLDER, name)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def state_folder(cwd: str) -> str:
    """``cwd/.dispatch``, made if missing, with a .gitignore so run state is never committed."""
    folder = os.path.join(cwd, FOLDER)
    os.makedirs(folder, exist_ok=True)
    ignore = os.path.join(folder, ".gitignore")
    if not os.path.exists(ignore):
        with open(ignore, "w", encoding="utf-8") as handle:
            handle.write("# dispatch-kit run state\n*\n")
    return folder


def for_dispatch(ledger: str | None, cwd: str, environ: Mapping[str, str]) -> str | None:
    """The ledger a dispatch line points at (steps 1-3 above), or None."""
    env = environ.get(ENV_DB)
    if env:
        return env if os.path.isfile(env) else None
    if ledger:
        path = ledger if os.path.isabs(ledger) else os.path.join(cwd, ledger)
        if os.path.isfile(path):
            return os.path.abspath(path)
    return upward(cwd)


JOURNAL = "journal.db"


def journal(cwd: str) -> str | None:
    """The hooks' journal for a PostgreSQL ledger (:mod:`dispatch_kit.guards.journal`):
    ``.dispatch/journal.db`` in ``cwd`` or the nearest parent that has one."""
    return upward(cwd, JOURNAL)


def listed(cwd: str) -> list[str]:
    """The ledgers named in ``cwd/.dispatch/ledgers`` that still exist."""
    try:
        with open(os.path.join(cwd, FOLDER, INDEX), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    found = []
    for entry in lines:
        entry = entry.strip()
        if entry and not entry.startswith("#"):
            path = entry if os.path.isabs(entry) else os.path.join(cwd, entry)
            if os.path.isfile(path):
                found.append(os.path.abspath(path))
    return found


def every(cwd: str, environ: Mapping[str, str]) -> list[str]:
    """Every ledger a hook without a prompt looks at (steps 1, 3 and 4), each once."""
    env = environ.get(ENV_DB)
    if env:
        return [env] if os.path.isfile(env) else []
    found: list[str] = []
    seen: set[str] = set()
    near = upward(cwd)
    for path in ([near] if near else []) + listed(cwd):
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            found.append(path)
    return found


def remember(cwd: str, ledger: str, environ: Mapping[str, str]) -> None:
    """List ``ledger`` in ``cwd/.dispatch/ledgers`` unless the other steps already find it."""
    if environ.get(ENV_DB):
        return
    near = upward(cwd)
    key = os.path.realpath(ledger)
    if near and os.path.realpath(near) == key:
        return
    if any(os.path.realpath(path) == key for path in listed(cwd)):
        return
    folder = state_folder(cwd)
    shown = os.path.relpath(ledger, cwd)
    if shown.startswith(".."):
        shown = os.path.abspath(ledger)
    # One short append: concurrent hooks may both add the line; readers drop duplicates.
    with open(os.path.join(folder, INDEX), "a", encoding="utf-8") as handle:
        handle.write(shown + "\n")
