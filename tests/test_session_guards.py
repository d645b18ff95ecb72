"""Session guards: the real hook commands, fed the events Claude Code sends, keep a real ledger.

Each test starts from a payload captured from the pinned harness
(``tests/fixtures/harness-events/``), changes only the fields it is about
(cwd, prompt, ids) and runs ``python -m dispatch_kit hook EVENT`` with it on
stdin, against a ledger made by ``dispatch-kit ledger init``. What it checks
is what a user relies on: the ledger's rows and events, the exit code the
harness acts on, and the text the model is shown.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, cli_env, run_cli

EVENTS = ROOT / "tests" / "fixtures" / "harness-events"
WORKER = "dispatch-kit:dispatch-worker"
PLAN = """\
goal: Six small files, to exercise the ledger's guards
workspace: {workspace}
allow_commits: false
defaults: {{timeout: 600, max_retries: 3}}
tasks:
  - id: counter
    title: Write the counter
    type: coding
    cwd: src
    exit_criteria: [{{file_exists: counter.txt}}]
  - id: tests
    title: Write the tests
    type: coding
    cwd: src
    depends_on: [counter]
    exit_criteria: [{{file_exists: tests.txt}}]
  - id: guide
    title: Write the guide
    type: research
    cwd: docs
    depends_on: [counter]
    exit_criteria: [{{file_exists: guide.txt}}]
  - id: review
    title: Review the work
    type: review
    cwd: docs
    depends_on: [tests, guide]
    exit_criteria: [{{file_exists: review.txt}}]
  - id: lint
    title: Lint the code
    type: coding
    cwd: src
    exit_criteria: [{{file_exists: lint.txt}}]
  - id: notes
    title: Write release notes
    type: research
    cwd: docs
    depends_on: [lint]
    exit_criteria: [{{file_exists: notes.txt}}]
"""


def fixture(name: str) -> dict:
    return json.loads((EVENTS / f"claude-code-{name}.json").read_text(encoding="utf-8"))


def mission(project: Path, name: str = "plan", workspace: str = ".") -> Path:
    """A plan in ``project`` loaded into its ledger; returns the ledger file."""
    plan = project / f"{name}.yaml"
    plan.write_text(PLAN.format(workspace=workspace), encoding="utf-8")
    result = run_cli("ledger", "init", plan.name, cwd=project)
    assert result.returncode == 0, result.output
    return (project / workspace / ".dispatch" / "ledger.db").resolve()


def prompt_for(project: Path, task: str, plan: str = "plan.yaml", attempt: int | None = None,
               check: Path | None = None) -> str:
    """The worker (or retry) prompt exactly as `dispatch-kit render` gives the orchestrator."""
    if attempt is None:
        args = ["render", "worker", "--plan", plan, "--task", task]
    else:
        args = ["render", "retry", "--plan", plan, "--task", task, "--attempt", str(attempt),
                "--check", str(check), "--full"]
    result = run_cli(*args, cwd=project)
    assert result.returncode == 0, result.output
    return result.stdout


def pre(project: Path, prompt: str, call: str, session: str = "s-one", name: str = "w") -> dict:
    event = fixture("2.1.328-PreToolUse-Agent")
    event.update(cwd=str(project), session_id=session, tool_use_id=call)
    event["tool_input"].update(prompt=prompt, subagent_type=WORKER, name=name)
    return event


def post(pre_event: dict, agent_id: str) -> dict:
    event = fixture("2.1.328-PostToolUse-Agent")
    event.update(cwd=pre_event["cwd"], session_id=pre_event["session_id"],
                 tool_use_id=pre_event["tool_use_id"], tool_input=pre_event["tool_input"])
    event["tool_response"].update(agentId=agent_id, prompt=pre_event["tool_input"]["prompt"],
                                  outputFile=f"/tmp/tasks/{agent_id}.output")
    return event


def stop_of(project: Path, agent_id: str, session: str = "s-one",
            agent_type: str = WORKER) -> dict:
    event = fixture("2.1.328-SubagentStop")
    event.update(cwd=str(project), session_id=session, agent_id=agent_id, agent_type=agent_type,
                 agent_transcript_path=f"/home/user/t/agent-{agent_id}.jsonl")
    return event


def hook(name: str, event: dict | bytes, project: Path, **env: str):
    payload = event if isinstance(event, bytes) else json.dumps(event).encode()
    return run_cli("hook", name, input=payload, cwd=project, env=cli_env(**env))


def rows(db: Path, sql: str, *params) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return [tuple(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def agents(db: Path) -> list[tuple]:
    return rows(db, "SELECT task_id, attempt, tool_use_id, agent_id, ended_at IS NOT NULL, "
                    "transcript_path FROM agents ORDER BY id")


def kinds(db: Path, task: str) -> list[str]:
    return [r[0] for r in rows(db, "SELECT kind FROM events WHERE task_id = ? ORDER BY seq", task)]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


# --------------------------------------------------------------------------- the dispatch line


def test_rendered_prompts_end_with_the_dispatch_line(project):
    mission(project)
    worker = prompt_for(project, "counter")
    assert worker.rstrip("\n").splitlines()[-1] == (
        "dispatch-kit: mission=plan task=counter attempt=1 ledger=.dispatch/ledger.db"
    )
    from dispatch_kit.guards import marker

    found = marker.find(worker)
    assert (found.mission, found.task, found.attempt, found.ledger) == (
        "plan", "counter", 1, ".dispatch/ledger.db")
    line = marker.line("my mission", "a-b", 3, "work dir/.dispatch/ledger.db")
    assert line == ("dispatch-kit: mission=my%20mission task=a-b attempt=3 "
                    "ledger=work%20dir/.dispatch/ledger.db")
    back = marker.find("text\n" + line + "\n")
    assert (back.mission, back.ledger) == ("my mission", "work dir/.dispatch/ledger.db")
    for text in ("dispatch-kit: mission=m task=t", "say dispatch-kit: mission=m task=t attempt=1",
                 "dispatch-kit: mission=m task=t attempt=one", None):
        assert marker.find(text) is None, text


# --------------------------------------------------------------------------- the whole story


def test_a_dispatch_is_recorded_gets_its_agent_id_and_its_end(project):
    db = mission(project)
    first = pre(project, prompt_for(project, "counter"), "toolu_A", name="worker-counter-1")
    result = hook("pre-dispatch", first, project)
    assert (result.returncode, result.stdout) == (0, ""), result.output
    assert rows(db, "SELECT state, attempt FROM tasks WHERE id = 'counter'") == [
        ("dispatched", 1)]
    assert agents(db) == [("counter", 1, "toolu_A", None, 0, None)]

    start = fixture("2.1.328-SubagentStart")
    start.update(cwd=str(project), agent_id="agent111")
    assert hook("subagent-start", start, project).returncode == 0
    assert agents(db)[0][3] is None  # no prompt there: never guessed from "the latest"

    assert hook("post-dispatch", post(first, "agent111"), project).returncode == 0
    assert agents(db) == [("counter", 1, "toolu_A", "agent111", 0, None)]
    output = rows(db, "SELECT output_file FROM agents")[0][0]
    assert output == "/tmp/tasks/agent111.output"

    assert hook("subagent-stop", stop_of(project, "agent111"), project).returncode == 0
    assert agents(db) == [
        ("counter", 1, "toolu_A", "agent111", 1, "/home/user/t/agent-agent111.jsonl")]
    assert kinds(db, "counter") == [
        "claimed", "dispatched", "agent-requested", "agent-launched", "agent-stopped"]
    events = run_cli("ledger", "events", "--task", "counter", cwd=project)
    assert "agent=agent111" in events.stdout and "transcript=" in events.stdout


def test_a_second_dispatch_of_a_running_task_is_refused_naming_the_agent(project):
    db = mission(project)
    prompt = prompt_for(project, "counter")
    first = pre(project, prompt, "toolu_A")
    assert hook("pre-dispatch", first, project).returncode == 0
    assert hook("post-dispatch", post(first, "agent111"), project).returncode == 0

    again = hook("pre-dispatch", pre(project, prompt, "toolu_B"), project)
    assert again.returncode == 2
    (line,) = again.stderr.splitlines()
    assert "agent agent111" in line and "TaskStop" in line and "notification" in line
    assert "`dispatch-kit ledger status --db .dispatch/ledger.db`" in line
    assert [a[2] for a in agents(db)] == ["toolu_A"]
    assert kinds(db, "counter")[-1] == "dispatch-refused"

    # Once the agent stopped, the same attempt may be dispatched again (and is recorded).
    assert hook("subagent-stop", stop_of(project, "agent111"), project).returncode == 0
    assert hook("pre-dispatch", pre(project, prompt, "toolu_C"), project).returncode == 0
    assert [a[2] for a in agents(db)] == ["toolu_A", "toolu_C"]


def test_a_refusal_can_be_turned_off_on_its_own(project):
    db = mission(project)
    prompt = prompt_for(project, "counter")
    assert hook("pre-dispatch", pre(project, prompt, "toolu_A"), project).returncode == 0
    result = hook("pre-dispatch", pre(project, prompt, "toolu_B"), project,
                  DISPATCH_KIT_GUARD_DUPLICATE="off")
    assert result.returncode == 0, result.output
    assert [a[2] for a in agents(db)] == ["toolu_A", "toolu_B"]  # still recorded


def test_a_hook_leaves_no_write_ahead_log_behind(project):
    """Each hook is a process of its own: one that left the WAL to the next would make it grow
    with every dispatch (a WAL no process holds has its index rebuilt, which forgets what was
    checkpointed), and every later hook would read all of it."""
    db = mission(project)
    prompts = [prompt_for(project, task) for task in ("counter", "lint")]
    wal = Path(f"{db}-wal")
    for number, prompt in enumerate(prompts):
        event = pre(project, prompt, f"toolu_{number}")
        for name, payload in (("pre-dispatch", event),
                              ("post-dispatch", post(event, f"agent{number}"))):
            assert hook(name, payload, project).returncode == 0
            assert not wal.exists() or wal.stat().st_size == 0, (name, wal.stat().st_size)
    assert [row[3] for row in agents(db)] == ["agent0", "agent1"]


def test_recording_off_writes_nothing_but_still_refuses(project):
    db = mission(project)
    prompt = prompt_for(project, "counter")
    assert hook("pre-dispatch", pre(project, prompt, "toolu_A"), project,
                DISPATCH_KIT_GUARD_RECORD="off").returncode == 0
    assert rows(db, "SELECT state FROM tasks WHERE id = 'counter'") == [("ready",)]
    assert hook("pre-dispatch", pre(project, prompt, "toolu_A"), project,
                DISPATCH_KIT_GUARDS="off").returncode == 0
    assert rows(db, "SELECT COUNT(*) FROM events WHERE task_id = 'counter'") == [(0,)]


def test_parallel_dispatches_never_get_each_others_agent_id(project):
    db = mission(project)
    one = pre(project, prompt_for(project, "counter"), "toolu_1", name="worker-counter-1")
    two = pre(project, prompt_for(project, "lint"), "toolu_2", name="worker-lint-1")
    assert hook("pre-dispatch", one, project).returncode == 0
    assert hook("pre-dispatch", two, project).returncode == 0
    # Launch reports arrive in the other order, and the stop of the second comes first.
    assert hook("post-dispatch", post(two, "agent222"), project).returncode == 0
    assert hook("subagent-stop", stop_of(project, "agent222"), project).returncode == 0
    assert hook("post-dispatch", post(one, "agent111"), project).returncode == 0
    assert {a[0]: (a[3], a[4]) for a in agents(db)} == {
        "counter": ("agent111", 0), "lint": ("agent222", 1)}


def test_a_foreground_agent_that_ends_before_its_id_is_known_is_merged(project):
    db = mission(project)
    first = pre(project, prompt_for(project, "counter"), "toolu_A")
    assert hook("pre-dispatch", first, project).returncode == 0
    assert hook("subagent-stop", stop_of(project, "agent111"), project).returncode == 0
    done = post(first, "agent111")
    done["tool_response"].update(isAsync=False, status="completed")
    assert hook("post-dispatch", done, project).returncode == 0
    assert agents(db) == [
        ("counter", 1, "toolu_A", "agent111", 1, "/home/user/t/agent-agent111.jsonl")]


def test_a_launch_that_failed_ends_the_dispatch(project):
    db = mission(project)
    prompt = prompt_for(project, "counter")
    first = pre(project, prompt, "toolu_A")
    assert hook("pre-dispatch", first, project).returncode == 0
    failure = {k: v for k, v in first.items() if k != "tool_response"}
    failure.update(hook_event_name="PostToolUseFailure", error="Agent type not found")
    assert hook("post-dispatch", failure, project).returncode == 0
    assert agents(db)[0][4] == 1
    assert hook("pre-dispatch", pre(project, prompt, "toolu_B"), project).returncode == 0


def test_workflow_subagents_are_not_taken_for_unknown_agents(project):
    db = mission(project)
    first = pre(project, prompt_for(project, "counter"), "toolu_A")
    assert hook("pre-dispatch", first, project).returncode == 0  # waits for its agent id
    for name in ("2.1.330-workflow-SubagentStart", "2.1.330-workflow-SubagentStop"):
        event = fixture(name)
        event.update(cwd=str(project), session_id="s-one")
        result = hook(event["hook_event_name"] == "SubagentStart" and "subagent-start"
                      or "subagent-stop", event, project)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert rows(db, "SELECT COUNT(*) FROM agent_stops") == [(0,)]
    # An unknown (non-workflow) agent while a dispatch waits for its id is kept for merging.
    assert hook("subagent-stop", stop_of(project, "other9"), project).returncode == 0
    assert rows(db, "SELECT agent_id FROM agent_stops") == [("other9",)]


def test_a_dispatch_that_names_no_plan_task_is_never_blocked_or_recorded(project):
    db = mission(project)
    prompt = prompt_for(project, "counter").rsplit("dispatch-kit:", 1)[0]
    for call in ("toolu_A", "toolu_B"):
        result = hook("pre-dispatch", pre(project, prompt, call), project)
        assert (result.returncode, result.stderr) == (0, ""), result.output
    assert rows(db, "SELECT COUNT(*) FROM agents") == [(0,)]


def test_a_retry_prompt_records_the_next_attempt(project, tmp_path):
    db = mission(project)
    assert hook("pre-dispatch", pre(project, prompt_for(project, "counter"), "t1"),
                project).returncode == 0
    check = tmp_path / "check.json"
    result = run_cli("check", "plan.yaml", "--task", "counter", "--format", "json", cwd=project)
    check.write_text(result.stdout, encoding="utf-8")
    assert run_cli("ledger", "record", "counter", "--check", str(check),
                   cwd=project).returncode == 0
    retry = prompt_for(project, "counter", attempt=1, check=check)
    assert retry.count("task=counter attempt=2") == 2  # worker part and addendum agree
    assert hook("pre-dispatch", pre(project, retry, "t2"), project).returncode == 0
    assert [(a[1], a[2]) for a in agents(db)] == [(1, "t1"), (2, "t2")]


# --------------------------------------------------------------------------- where ledgers are


def test_several_missions_one_in_a_subfolder_workspace(project):
    root_db = mission(project, "alpha")
    sub_db = mission(project, "beta", workspace="beta-work")
    alpha = pre(project, prompt_for(project, "counter", plan="alpha.yaml"), "t-alpha")
    beta = pre(project, prompt_for(project, "counter", plan="beta.yaml"), "t-beta")
    assert "ledger=beta-work/.dispatch/ledger.db" in beta["tool_input"]["prompt"]
    assert hook("pre-dispatch", alpha, project).returncode == 0
    assert hook("pre-dispatch", beta, project).returncode == 0
    assert (project / ".dispatch" / "ledgers").read_text().splitlines() == [
        "beta-work/.dispatch/ledger.db"]
    assert hook("post-dispatch", post(beta, "agentB"), project).returncode == 0
    assert hook("post-dispatch", post(alpha, "agentA"), project).returncode == 0
    # SubagentStop carries no prompt: the index finds the subfolder's ledger.
    assert hook("subagent-stop", stop_of(project, "agentB"), project).returncode == 0
    assert [(a[3], a[4]) for a in agents(root_db)] == [("agentA", 0)]
    assert [(a[3], a[4]) for a in agents(sub_db)] == [("agentB", 1)]


# --------------------------------------------------------------------------- compaction, resume


def context_of(project: Path, source: str = "compact", **env: str) -> str:
    event = fixture("2.1.328-SessionStart")
    event.update(cwd=str(project), source=source)
    result = hook("session-start", event, project, **env)
    assert (result.returncode, result.stderr) == (0, ""), result.output
    if not result.stdout:
        return ""
    answer = json.loads(result.stdout)
    assert answer["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    return answer["hookSpecificOutput"]["additionalContext"]


def a_busy_mission(project: Path, tmp_path: Path) -> Path:
    """counter verified, lint failed (notes skipped), tests and guide running, review waiting."""
    db = mission(project)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE tasks SET state = 'verified' WHERE id = 'counter'")
    conn.execute("UPDATE tasks SET state = 'failed', attempt = 4, last_error = "
                 "'criterion 1 `test -f lint.txt` fail' WHERE id = 'lint'")
    conn.execute("UPDATE tasks SET state = 'skipped', skipped_because = 'lint' "
                 "WHERE id = 'notes'")
    conn.commit()
    conn.close()
    for task, call, agent in (("tests", "t-tests", "agentT"), ("guide", "t-guide", "agentG")):
        event = pre(project, prompt_for(project, task), call, name=f"worker-{task}-1")
        assert hook("pre-dispatch", event, project).returncode == 0
        assert hook("post-dispatch", post(event, agent), project).returncode == 0
    return db


def test_compaction_returns_the_missions_state_in_under_300_tokens(project, tmp_path):
    a_busy_mission(project, tmp_path)
    text = context_of(project, "compact")
    assert "mission plan" in text
    assert "running: tests attempt 1/4, agent agentT (worker-tests-1)" in text
    assert "agent agentG" in text and "do not dispatch it again" in text
    assert "failed: lint after 4 attempts" in text and "skipped: notes (after lint)" in text
    assert "Next: wait for the notifications" in text
    # ~4 characters a token for English; 3 is a margin for paths and ids.
    assert len(text) <= 900, (len(text), text)
    assert context_of(project, "resume") == text
    assert context_of(project, "startup") == ""
    assert context_of(project, "compact", DISPATCH_KIT_GUARD_CONTEXT="off") == ""


def test_a_hung_attempt_is_reported_with_its_agent_and_by_sweep(project, tmp_path):
    db = a_busy_mission(project, tmp_path)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE claims SET lease_expires = ? WHERE task_id = 'tests'", (time.time() - 5,))
    conn.commit()
    conn.close()
    text = context_of(project)
    assert "hung (lease expired): tests attempt 1/4, agent agentT" in text
    assert "TaskStop" in text
    assert "Next: `dispatch-kit ledger sweep --db .dispatch/ledger.db`" in text
    # A second dispatch of the hung task is not refused: its lease is over.
    again = hook("pre-dispatch", pre(project, prompt_for(project, "tests"), "t-again"), project)
    assert again.returncode == 0, again.output


def test_sweep_names_the_agent_to_stop(project, tmp_path):
    db = a_busy_mission(project, tmp_path)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE claims SET lease_expires = ? WHERE task_id = 'tests'", (time.time() - 5,))
    conn.commit()
    conn.close()
    result = run_cli("ledger", "sweep", cwd=project)
    assert result.returncode == 0, result.output
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("collected tests")]
    assert "agent agentT" in line and "TaskStop" in line


# --------------------------------------------------------------------------- the end of a turn


def stop_event(project: Path, active: bool = False, running: list[str] | None = None) -> dict:
    event = fixture("2.1.328-Stop")
    event.update(cwd=str(project), session_id="s-one", stop_hook_active=active)
    if running is not None:
        event["background_tasks"] = [
            {"id": a, "type": "subagent", "status": "running"} for a in running]
    return event


def test_stop_is_held_once_while_dispatched_agents_run(project, tmp_path):
    a_busy_mission(project, tmp_path)
    held = hook("stop", stop_event(project, running=["agentT", "agentG"]), project)
    assert held.returncode == 0
    answer = json.loads(held.stdout)
    assert answer["decision"] == "block"
    assert "tests (mission plan, attempt 1, agent agentT" in answer["reason"]
    assert "guide" in answer["reason"] and "TaskStop" in answer["reason"]
    # The harness says the hook already held this stop: let it end.
    assert hook("stop", stop_event(project, active=True), project).stdout == ""
    # An agent the harness no longer runs does not hold it; nor does another session's.
    only = json.loads(hook("stop", stop_event(project, running=["agentG"]), project).stdout)
    assert "agentT" not in only["reason"] and "agentG" in only["reason"]
    other = stop_event(project)
    other["session_id"] = "s-two"
    other.pop("background_tasks")
    assert hook("stop", other, project).stdout == ""
    assert hook("stop", stop_event(project), project, DISPATCH_KIT_GUARD_STOP="0").stdout == ""


def test_stop_lets_a_session_with_nothing_running_end(project):
    mission(project)
    assert hook("stop", stop_event(project), project).stdout == ""


# --------------------------------------------------------------------------- failing open


@pytest.mark.parametrize("name", ["pre-dispatch", "post-dispatch", "subagent-stop",
                                  "session-start", "stop", "subagent-start"])
@pytest.mark.parametrize("payload", [b"", b"not json", b"\xff", b"[1]", b'{"cwd": 3}'])
def test_every_hook_fails_open_on_an_unreadable_event(project, name, payload):
    mission(project)
    result = hook(name, payload, project)
    assert result.returncode == 0 and result.stdout == "", result.output
    assert len(result.stderr.splitlines()) <= 1


def test_a_broken_ledger_lets_the_dispatch_through(project):
    db = mission(project)
    prompt = prompt_for(project, "counter")
    db.write_bytes(b"this is no database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    result = hook("pre-dispatch", pre(project, prompt, "toolu_A"), project)
    assert result.returncode == 0
    assert result.stderr.startswith("dispatch-kit hook: dispatch not recorded"), result.stderr


def test_unknown_hook_names_and_bad_arguments_let_the_session_go_on(project):
    for args in (("hook", "teammate-idle"), ("hook",), ("hook", "stop", "--bogus"),
                 ("hook", "teammate-idle", "--harness", "codex"), ("hook", "--bogus", "stop"),
                 ("hook", "stop", "--harness")):
        result = run_cli(*args, input=b"{}", cwd=project)
        assert result.returncode == 0, (args, result.output)
        assert "session goes on" in result.stderr


def test_every_argument_shape_of_a_hook_reads_the_same(project):
    """hooks.json's shapes take a path without argparse; others go through it: each one
    records, and each one refuses a duplicate."""
    mission(project)
    prompt = prompt_for(project, "counter")
    first = hook("pre-dispatch", pre(project, prompt, "toolu_first"), project)
    assert first.returncode == 0, first.output
    shapes = (("pre-dispatch",), ("pre-dispatch", "--harness", "claude-code"),
              ("pre-dispatch", "--harness=claude-code"),
              ("--harness", "claude-code", "pre-dispatch"))
    for shape in shapes:
        again = pre(project, prompt, "toolu_again")
        result = run_cli("hook", *shape, input=json.dumps(again).encode(), cwd=project)
        assert result.returncode == 2, (shape, result.output)
        assert "counter" in result.stderr, (shape, result.output)


# --------------------------------------------------------------------------- concurrency


def test_two_sessions_dispatching_at_once_record_every_dispatch_once(project):
    """Twelve hook processes start together: six tasks, each dispatched by both sessions.

    Each task ends with exactly one recorded dispatch, and each refused call left a
    ``dispatch-refused`` event: no write was lost to the race.
    """
    db = mission(project)
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM deps")  # every task ready at once
    conn.commit()
    conn.close()
    tasks = ["counter", "tests", "guide", "review", "lint", "notes"]
    prompts = {task: prompt_for(project, task) for task in tasks}
    procs = []
    for task in tasks:
        for session in ("s-one", "s-two"):
            event = pre(project, prompts[task], f"{session}-{task}", session=session)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "dispatch_kit", "hook", "pre-dispatch"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=project, env=cli_env()))
            procs[-1].stdin.write(json.dumps(event).encode())
            procs[-1].stdin.close()
    codes = [p.wait(timeout=120) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert sorted(codes) == [0] * 6 + [2] * 6
    recorded = rows(db, "SELECT task_id, COUNT(*) FROM agents GROUP BY task_id")
    assert dict(recorded) == dict.fromkeys(tasks, 1)
    for task in tasks:
        assert kinds(db, task) == ["claimed", "dispatched", "agent-requested",
                                   "dispatch-refused"]


# --------------------------------------------------------------------------- views


def read_lines(proc: subprocess.Popen, wanted: int, deadline: float) -> list[str]:
    """Lines from ``proc`` until ``wanted`` arrived; a deadline guards, no fixed wait."""
    import selectors

    lines: list[str] = []
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while len(lines) < wanted:
            left = deadline - time.monotonic()
            assert left > 0, f"only {len(lines)} of {wanted} lines: {lines}"
            if not selector.select(left):
                continue
            chunk = __import__("os").read(proc.stdout.fileno(), 65536)
            assert chunk, f"the follower ended after {lines}"
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            lines += [line.decode() for line in complete]
    return lines


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_events_follow_prints_each_new_event_and_ends_cleanly(project, signum):
    import signal

    mission(project)
    before = len(run_cli("ledger", "events", cwd=project).stdout.splitlines())
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatch_kit", "ledger", "events", "--follow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=project, env=cli_env())
    try:
        deadline = time.monotonic() + 60
        history = read_lines(proc, before, deadline)  # it read the history: now it follows
        first = pre(project, prompt_for(project, "counter"), "toolu_A")
        assert hook("pre-dispatch", first, project).returncode == 0
        lines = history + read_lines(proc, 3, deadline)
        assert [line.split()[1] for line in lines[before:]] == [
            "claimed", "dispatched", "agent-requested"]
        assert hook("post-dispatch", post(first, "agent111"), project).returncode == 0
        (launched,) = read_lines(proc, 1, deadline)
        assert launched.split()[1:3] == ["agent-launched", "counter"]
        assert "agent=agent111" in launched
        proc.send_signal(getattr(signal, signum))
        assert proc.wait(timeout=30) == 0
        assert b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_status_as_mermaid_draws_the_graph_with_each_state(project, tmp_path):
    a_busy_mission(project, tmp_path)
    result = run_cli("ledger", "status", "--format", "mermaid", cwd=project)
    assert result.returncode == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  t1["counter<br/>verified"]:::verified' in lines
    assert '  t2["tests<br/>dispatched 1/4<br/>agent agentT"]:::running' in lines
    assert '  t4["review<br/>waiting"]:::waiting' in lines
    assert '  t5["lint<br/>failed at attempt 4/4"]:::failed' in lines
    assert '  t6["notes<br/>skipped"]:::skipped' in lines
    assert {"  t1 --> t2", "  t1 --> t3", "  t2 --> t4", "  t3 --> t4", "  t5 --> t6"} <= set(lines)
    assert sum(line.startswith("  classDef ") for line in lines) == 5
    status = json.loads(run_cli("ledger", "status", "--format", "json", cwd=project).stdout)
    assert {t["id"]: t["agent"] for t in status["tasks"]}["guide"] == "agentG"
