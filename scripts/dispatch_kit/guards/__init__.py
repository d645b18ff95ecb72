"""Session guards: the harness's hook events keep the ledger, whatever the model remembers.

A skill can only ask an orchestrator to record its dispatches; a hook sees
every one. These modules turn Claude Code's hook events into ledger writes
and answers: the pre-dispatch hook records a dispatch whose prompt names a
plan task (and refuses a second one while the first still runs), the
post-dispatch hook attaches the new agent's id, the subagent-stop hook
records its end, session-start puts the mission's state back into a
compacted or resumed context, and the stop hook names what still runs.

Split by what each part knows: ``claude_code`` is the only module that knows
the harness's event and answer formats; ``marker`` the dispatch line a
rendered prompt carries; ``locate`` where ledgers are; ``store`` the SQL; ``journal`` what
they record instead when the ledger is on PostgreSQL;
``digest`` the short texts; ``handlers`` joins them, one function per hook.
Everything here is standard library only and imported lazily, because each
hook runs inside the user's session on every event.
"""

from __future__ import annotations

OFF_VALUES = ("off", "0", "false", "no", "disabled")
# All guards at once, and each on its own (documented in the README and `hook --help`).
ALL = "DISPATCH_KIT_GUARDS"
SWITCHES = {
    "record": "DISPATCH_KIT_GUARD_RECORD",
    "duplicate": "DISPATCH_KIT_GUARD_DUPLICATE",
    "context": "DISPATCH_KIT_GUARD_CONTEXT",
    "stop": "DISPATCH_KIT_GUARD_STOP",
}


def enabled(name: str, environ) -> bool:
    """Whether guard ``name`` runs: on unless it, or all guards, are switched off."""
    for key in (ALL, SWITCHES[name]):
        if environ.get(key, "").strip().lower() in OFF_VALUES:
            return False
    return True
