"""A PostgreSQL ledger's session hooks: a local journal the ledger imports, never psycopg.

The hooks run inside the user's session within ~50 ms; importing psycopg alone
costs more than twice that. So on a PostgreSQL ledger the real hook commands,
fed the captured Claude Code events, append to ``.dispatch/journal.db``
(SQLite), refuse a duplicate from it, and the ledger imports it: by
``ledger import-journal`` and before every other ``ledger`` command on it.
Each journaled row lands once, however many importers race.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli_env, run_cli
from test_session_guards import PLAN, fixture, hook, post, pre, prompt_for, stop_of

try:
    import psycopg
except ImportError:  # the test extra installs it; under CI its absence is a failure
    if os.environ.get("CI"):
        raise
    pytest.skip("psycopg not installed (pip install -e '.[test]')", allow_module_level=True)

GUARD_S = 60.0  # the longest a test waits for a signal before it fails


@pytest.fixture
def project(tmp_path: Path, pg_url: str) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "plan.yaml").write_text(PLAN.format(workspace="."), encoding="utf-8")
    result = run_cli("ledger", "init", "plan.yaml", cwd=folder,
                     env=cli_env(DISPATCH_KIT_LEDGER=pg_url))
    assert result.returncode == 0, result.output
    return folder


def journal_rows(project: Path) -> list[tuple]:
    conn = sqlite3.connect(project / ".dispatch" / "journal.db")
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT kind, task, attempt, tool_use_id, agent_id, imported_at IS NOT NULL "
            "FROM journal ORDER BY seq")]
    finally:
        conn.close()


def pg(url: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(sql, params)]


def status(project: Path, url: str) -> dict:
    result = run_cli("ledger", "status", "--format", "json", cwd=project,
                     env=cli_env(DISPATCH_KIT_LEDGER=url))
    assert result.returncode == 0, result.output
    return {t["id"]: t for t in json.loads(result.stdout)["tasks"]}


def kinds(url: str, task: str) -> list[str]:
    return [r[0] for r in pg(url, "SELECT kind FROM events WHERE task_id = %s ORDER BY seq",
                             task)]


def test_a_dispatch_is_journaled_refused_twice_and_imported_with_its_agent(project, pg_url):
    env = {"DISPATCH_KIT_LEDGER": pg_url}
    first = pre(project, prompt_for(project, "counter"), "toolu_A", name="worker-counter-1")
    result = hook("pre-dispatch", first, project, **env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result.output
    assert journal_rows(project) == [("requested", "counter", 1, "toolu_A", None, 0)]
    assert pg(pg_url, "SELECT COUNT(*) FROM agents") == [(0,)]  # nothing sent to the server
    assert sorted(p.name for p in (project / ".dispatch").iterdir()) == [
        ".gitignore", "journal.db"]  # no write-ahead log left behind

    # A second dispatch while the first waits for its agent id: refused from the journal.
    again = pre(project, prompt_for(project, "counter"), "toolu_B", name="worker-counter-2")
    refused = hook("pre-dispatch", again, project, **env)
    assert refused.returncode == 2 and "tool use toolu_A" in refused.stderr, refused.output
    assert hook("post-dispatch", post(first, "agent111"), project, **env).returncode == 0
    refused = hook("pre-dispatch", again, project, **env)
    assert refused.returncode == 2, refused.output
    assert "agent agent111" in refused.stderr and "TaskStop" in refused.stderr
    assert "`dispatch-kit ledger status --mission plan`" in refused.stderr

    # Any ledger command on the PostgreSQL ledger imports the journal first.
    tasks = status(project, pg_url)
    assert (tasks["counter"]["state"], tasks["counter"]["agent"]) == ("dispatched", "agent111")
    assert kinds(pg_url, "counter") == [
        "claimed", "dispatched", "agent-requested", "agent-launched"]
    assert [r[5] for r in journal_rows(project)] == [1, 1]
    holder, host = pg(pg_url, "SELECT holder, host FROM claims WHERE task_id = 'counter'")[0]
    assert holder == "hook:s-one" and host == os.uname().nodename

    # The end: journaled, imported by the explicit command, and the task may be dispatched.
    assert hook("subagent-stop", stop_of(project, "agent111"), project, **env).returncode == 0
    result = run_cli("ledger", "import-journal", "--db", pg_url, cwd=project)
    assert result.returncode == 0 and "imported 1 journal row" in result.stdout, result.output
    assert pg(pg_url, "SELECT agent_id, transcript_path FROM agents WHERE ended_at IS NOT NULL"
              ) == [("agent111", "/home/user/t/agent-agent111.jsonl")]
    events = run_cli("ledger", "events", "--task", "counter", cwd=project,
                     env=cli_env(**env))
    assert "agent-stopped" in events.stdout and "agent=agent111" in events.stdout
    assert hook("pre-dispatch", again, project, **env).returncode == 0
    # Imported once: a second import finds nothing new.
    result = run_cli("ledger", "import-journal", "--db", pg_url, cwd=project)
    assert "imported 1 journal row" in result.stdout, result.output  # only the new request


def test_a_foreground_agent_and_a_failed_launch_land_as_on_sqlite(project, pg_url):
    env = {"DISPATCH_KIT_LEDGER": pg_url}
    fore = pre(project, prompt_for(project, "counter"), "toolu_F")
    assert hook("pre-dispatch", fore, project, **env).returncode == 0
    # A foreground agent ends before its PostToolUse reports its id.
    assert hook("subagent-stop", stop_of(project, "agentF"), project, **env).returncode == 0
    assert hook("post-dispatch", post(fore, "agentF"), project, **env).returncode == 0
    broken = pre(project, prompt_for(project, "lint"), "toolu_L")
    assert hook("pre-dispatch", broken, project, **env).returncode == 0
    failure = post(broken, "unused")
    failure.update(hook_event_name="PostToolUseFailure", error="Agent type not found")
    failure.pop("tool_response")
    assert hook("post-dispatch", failure, project, **env).returncode == 0
    # The failed launch ended the dispatch: a new one of lint is not refused.
    retry = pre(project, prompt_for(project, "lint"), "toolu_L2")
    assert hook("pre-dispatch", retry, project, **env).returncode == 0
    status(project, pg_url)
    assert pg(pg_url, "SELECT task_id, tool_use_id, agent_id, ended_at IS NOT NULL, end_note "
                      "FROM agents ORDER BY id") == [
        ("counter", "toolu_F", "agentF", True, None),
        ("lint", "toolu_L", None, True, "did not start: Agent type not found"),
        ("lint", "toolu_L2", None, False, None),
    ]
    assert kinds(pg_url, "counter")[-2:] == ["agent-launched", "agent-stopped"]
    assert pg(pg_url, "SELECT COUNT(*) FROM agent_stops") == [(0,)]


def test_session_start_and_stop_read_the_journal(project, pg_url):
    env = {"DISPATCH_KIT_LEDGER": pg_url}
    first = pre(project, prompt_for(project, "counter"), "toolu_A", name="worker-counter-1")
    assert hook("pre-dispatch", first, project, **env).returncode == 0
    assert hook("post-dispatch", post(first, "agent111"), project, **env).returncode == 0
    event = fixture("2.1.328-SessionStart")
    event.update(cwd=str(project), source="compact")
    result = hook("session-start", event, project, **env)
    context = json.loads(result.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "counter (mission plan) attempt 1, agent agent111" in context
    assert "do not dispatch it again" in context
    stop = fixture("2.1.328-Stop")
    stop.update(cwd=str(project), session_id="s-one", stop_hook_active=False)
    stop["background_tasks"] = [{"id": "agent111", "type": "subagent", "status": "running"}]
    held = json.loads(hook("stop", stop, project, **env).stdout)
    assert held["decision"] == "block" and "agent agent111" in held["reason"]
    assert hook("subagent-stop", stop_of(project, "agent111"), project, **env).returncode == 0
    assert hook("stop", stop, project, **env).stdout == ""


IMPORT_TIME = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", re.M)


def test_no_hook_imports_psycopg_on_a_postgres_ledger(project, pg_url):
    first = pre(project, prompt_for(project, "counter"), "toolu_A")
    stop = fixture("2.1.328-Stop")
    stop.update(cwd=str(project), session_id="s-one")
    start = fixture("2.1.328-SessionStart")
    start.update(cwd=str(project), source="compact")
    for name, event in (("pre-dispatch", first), ("pre-dispatch", first),
                        ("post-dispatch", post(first, "agent111")), ("session-start", start),
                        ("stop", stop), ("subagent-stop", stop_of(project, "agent111"))):
        result = run_cli("hook", name, input=json.dumps(event).encode(), cwd=project,
                         env=cli_env(DISPATCH_KIT_LEDGER=pg_url, PYTHONPROFILEIMPORTTIME="1"))
        modules = {m.split(".")[0] for m in IMPORT_TIME.findall(result.stderr)}
        assert "dispatch_kit" in modules and not modules & {"psycopg", "psycopg_c"}, name
    assert [r[0] for r in journal_rows(project)] == ["requested", "launched", "stopped"]


def wait_for(condition, what: str) -> None:
    """Until ``condition()`` holds: a guard on a signal from the server, not a delay."""
    deadline = time.monotonic() + GUARD_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_two_importers_racing_apply_each_row_once(project, pg_url):
    env = {"DISPATCH_KIT_LEDGER": pg_url}
    calls = []
    for task, call in (("counter", "toolu_C"), ("lint", "toolu_L")):
        event = pre(project, prompt_for(project, task), call)
        assert hook("pre-dispatch", event, project, **env).returncode == 0
        assert hook("post-dispatch", post(event, f"agent-{task}"), project, **env).returncode == 0
        calls.append(event)
    assert hook("subagent-stop", stop_of(project, "agent-lint"), project, **env).returncode == 0
    assert len(journal_rows(project)) == 5
    # Hold the import table so both importers, with every row pending, queue on its lock.
    from dispatch_kit.ledger import Ledger
    from dispatch_kit.ledger.journal_import import _setup

    with Ledger.open(pg_url) as ledger:
        _setup(ledger)
    with psycopg.connect(pg_url) as holder:
        holder.execute("LOCK TABLE journal_imports IN ACCESS EXCLUSIVE MODE")
        racers = [subprocess.Popen(
            [sys.executable, "-m", "dispatch_kit", "ledger", "import-journal", "--db", pg_url],
            cwd=project, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)]
        wait_for(lambda: pg(pg_url, "SELECT COUNT(*) FROM pg_stat_activity WHERE "
                                    "wait_event_type = 'Lock' AND query LIKE %s",
                            "%INSERT INTO journal_imports%")[0][0] == 2,
                 "both importers to wait on the import table")
        holder.commit()  # both go at once
    applied = 0
    for proc in racers:
        out, err = proc.communicate(timeout=GUARD_S)
        assert proc.returncode == 0, err.decode()
        applied += int(re.search(r"imported (\d+) journal", out.decode()).group(1))
    assert applied == 5
    assert pg(pg_url, "SELECT COUNT(*), COUNT(DISTINCT uid) FROM journal_imports") == [(5, 5)]
    assert pg(pg_url, "SELECT task_id, agent_id, ended_at IS NOT NULL FROM agents ORDER BY id"
              ) == [("counter", "agent-counter", False), ("lint", "agent-lint", True)]
    for task in ("counter", "lint"):
        assert kinds(pg_url, task).count("claimed") == 1
        assert kinds(pg_url, task).count("agent-launched") == 1
    assert all(r[5] for r in journal_rows(project))


def test_import_journal_needs_a_postgres_url_and_a_journal(project, pg_url, tmp_path):
    result = run_cli("ledger", "import-journal", "--db", "x.db", cwd=project)
    assert result.returncode == 2 and "postgresql://" in result.stderr, result.output
    result = run_cli("ledger", "import-journal", "--db", pg_url, cwd=tmp_path)
    assert result.returncode == 2 and "--journal PATH" in result.stderr, result.output


def test_a_journal_row_for_another_ledger_is_left_for_it(project, pg_url):
    other = "postgresql://someone@/elsewhere?host=/nonexistent"
    event = pre(project, prompt_for(project, "counter"), "toolu_O")
    assert hook("pre-dispatch", event, project, DISPATCH_KIT_LEDGER=other).returncode == 0
    result = run_cli("ledger", "import-journal", "--db", pg_url, cwd=project)
    assert "imported 0 journal row" in result.stdout, result.output
    assert journal_rows(project) == [("requested", "counter", 1, "toolu_O", None, 0)]
    assert status(project, pg_url)["counter"]["state"] == "ready"


@pytest.mark.parametrize("url", [
    "postgresql://u:pw@host:5432/db?sslmode=require", "postgresql://u@/db?host=/tmp/x",
    "postgres://u:p%40ss@h/db", "postgresql://u:a@b@h/db", "postgresql://h/db",
    "postgresql://u:@h", "postgresql://x@y:pw@h/db", "postgresql://u:pw@h?a=b:c@d",
])
def test_the_journal_names_a_ledger_as_the_ledger_redacts_its_url(url):
    from dispatch_kit.guards.journal import redact as hook_redact
    from dispatch_kit.ledger.backends import redact

    assert hook_redact(url) == redact(url)
    assert hook_redact(redact(url)) == redact(url)  # a dispatch line's ledger= is redacted


def test_a_dispatch_the_ledger_did_not_take_refuses_nothing_after_the_import(project, pg_url):
    env = {"DISPATCH_KIT_LEDGER": pg_url}
    waiting = pre(project, prompt_for(project, "tests"), "toolu_T")  # its dependency is ready
    assert hook("pre-dispatch", waiting, project, **env).returncode == 0
    again = pre(project, prompt_for(project, "tests"), "toolu_T2")
    assert hook("pre-dispatch", again, project, **env).returncode == 2  # the journal alone
    result = run_cli("ledger", "import-journal", "--db", pg_url, cwd=project)
    assert "tests waits for counter; not recorded" in result.stdout, result.output
    assert hook("pre-dispatch", again, project, **env).returncode == 0  # as on SQLite


def test_hooks_in_a_project_without_ledger_or_journal_load_no_sqlite(tmp_path):
    stop = fixture("2.1.328-Stop")
    stop.update(cwd=str(tmp_path))
    start = fixture("2.1.328-SessionStart")
    start.update(cwd=str(tmp_path), source="compact")
    for name, event in (("stop", stop), ("session-start", start),
                        ("subagent-stop", stop_of(tmp_path, "agent1"))):
        result = run_cli("hook", name, input=json.dumps(event).encode(), cwd=tmp_path,
                         env=cli_env(PYTHONPROFILEIMPORTTIME="1"))
        modules = set(IMPORT_TIME.findall(result.stderr))
        assert "dispatch_kit.guards.handlers" in modules, name
        assert not modules & {"_sqlite3", "sqlite3", "dispatch_kit.guards.journal"}, name
