"""The plugin's monitor in a real, interactive Claude Code session, driven by a scripted model.

Claude Code 2.1.332 arms a plugin's monitors only in an interactive session
(``claude -p`` arms none), so this test runs the pinned ``claude`` binary on a
pseudo-terminal, with the plugin (``--plugin-dir``), in a project whose ledger
``dispatch-kit ledger init`` made, against a scripted model on 127.0.0.1. The
script's first turn waits until the monitor has the ledger open, then records
task ``counter`` verified through the Bash tool as an orchestrator does. The
monitor's line must then reach the model as a task notification in a later
request. A scripted model proves what the harness does with the monitor,
nothing about what a real model would do with the line. Claude Code is then
killed outright, which stops no monitor: the monitor must end by itself.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import time
from pathlib import Path

from claude_cli import COUNTER_PLAN, end_session_processes, session_env
from conftest import ROOT, run_cli
from scripted_model import (
    Request,
    Rule,
    ScriptedModel,
    after_tool_result,
    all_of,
    call,
    fresh_turn,
    main_loop,
    new_text_contains,
    say,
)

GUARD_S = 120.0  # bounds a hang; nothing waits for it when all is well
LINE = "dispatch-kit plan: counter #1 verified"
RECORD = (
    "mkdir -p src && echo 1 > src/counter.txt && "
    "dispatch-kit check plan.yaml --task counter --format json > counter-check.json; "
    "dispatch-kit ledger record counter --check counter-check.json"
)


def holders(path: Path) -> list[int]:
    """Every process that has ``path`` open (Claude Code starts a monitor in a session of
    its own, so the CLI's session does not hold it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) == str(path) for fd in (entry / "fd").iterdir()):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def interactive_home(home: Path, project: Path) -> None:
    """What a user's config holds once they have used Claude Code in ``project``: onboarding
    done, the API key accepted, the folder trusted (monitors are armed only in a trusted one)."""
    config = {
        "hasCompletedOnboarding": True,
        "numStartups": 1,
        "theme": "dark",
        "customApiKeyResponses": {"approved": ["dummy"], "rejected": []},
        "projects": {str(project): {"hasTrustDialogAccepted": True,
                                    "hasCompletedProjectOnboarding": True}},
    }
    (home / ".claude.json").write_text(json.dumps(config), encoding="utf-8")


def test_the_monitor_line_reaches_the_model_as_a_task_notification(claude, home, project):
    project = project.resolve()
    (project / "plan.yaml").write_text(COUNTER_PLAN, encoding="utf-8")
    result = run_cli("ledger", "init", "plan.yaml", cwd=project)
    assert result.returncode == 0, result.output
    db = project / ".dispatch" / "ledger.db"
    interactive_home(home, project)

    def record_once_the_monitor_reads(request: Request):
        deadline = time.monotonic() + GUARD_S
        while not holders(db):  # the monitor found the ledger
            assert time.monotonic() < deadline, "the monitor never opened the ledger"
            time.sleep(0.05)  # polling a condition
        return call("Bash", {"command": RECORD, "description": "Record the verdict"})

    rules = [
        Rule(all_of(main_loop, new_text_contains(LINE)), [say("Seen.")], name="seen",
             repeat=True),
        Rule(all_of(main_loop, fresh_turn), [record_once_the_monitor_reads], name="record"),
        Rule(all_of(main_loop, after_tool_result), [say("Recorded.")], name="recorded"),
    ]
    debug = home / "debug.log"
    argv = [claude, "Record the verdict", "--plugin-dir", str(ROOT), "--debug-file", str(debug),
            "--permission-mode", "acceptEdits", "--allowedTools", "Bash"]
    with ScriptedModel(rules) as model:
        env = session_env(home, model) | {"TERM": "xterm-256color"}
        pid, terminal = pty.fork()  # the child leads a new session: its own and its children's
        if pid == 0:  # pragma: no cover - the child
            os.chdir(project)
            os.execve(argv[0], argv, env)
        screen = bytearray()
        try:
            seen = None
            deadline = time.monotonic() + GUARD_S
            while seen is None and time.monotonic() < deadline:
                # The terminal must be read, or the CLI blocks writing to it.
                if select.select([terminal], [], [], 0.2)[0]:
                    try:
                        screen += os.read(terminal, 65536)
                    except OSError:
                        break
                # Not model.wait_for: the "record" rule holds the model's lock while it waits.
                seen = next((r for r in list(model.requests) if r.rule == "seen"), None)
            monitors = holders(db)
        finally:
            end_session_processes(pid)  # Claude Code killed outright: it stops no monitor
            os.waitpid(pid, 0)
            os.close(terminal)
            # The monitor, in a session of its own, ends once its output socket is closed.
            left = list(monitors)
            deadline = time.monotonic() + GUARD_S
            while left and time.monotonic() < deadline:
                left = [other for other in left if Path(f"/proc/{other}").exists()]
                time.sleep(0.05)  # polling a condition
            for other in left:  # a hang: end it, and fail below
                if os.getsid(other) != os.getsid(0):
                    end_session_processes(os.getsid(other))
        log = debug.read_text(errors="replace") if debug.exists() else ""
        shown = re.sub(rb"\x1b\[[0-9;?>]*[a-zA-Z]|\x1b[\]P][^\x07\x1b]*(\x07|\x1b\\)", b"",
                       bytes(screen)).decode(errors="replace")
        evidence = (f"requests:\n{model.transcript()}\nerrors: {model.errors}\n"
                    f"debug log: {[x for x in log.splitlines() if 'plugin monitor' in x]}\n"
                    f"screen (end): {shown[-1500:]}")
        assert seen is not None, evidence
        notes = [n for n in seen.notifications() if n.get("event") == LINE]
        assert notes, (seen.new_text, evidence)
        assert notes[0]["summary"].startswith("Monitor event: ")
        assert monitors  # still following after its line: it does not end on its own
        assert not left, f"the monitor outlived Claude Code: {left}"
        assert not model.unmatched and not model.errors, evidence
        # The line came from the monitor, not from the Bash call's own output.
        record = next(r for r in model.turns("main") if r.rule == "recorded")
        assert LINE not in record.tool_result_text()
