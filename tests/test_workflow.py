"""The dispatch loop as a Claude Code workflow (``workflows/workspace-dispatch.js``).

Three layers, fastest first:

- ``dispatch-kit attempt start|finish``, the two commands the workflow's
  steward agents run (the script itself cannot run commands), on a copy of the
  example mission;
- ``claude plugin validate`` lists the workflow;
- real ``claude -p`` sessions against a scripted model (:mod:`scripted_model`):
  the pinned CLI runs the workflow script, spawns its agents and runs their
  tools; the scripted model plays each agent by following its prompt
  literally. A steward runs the one command its prompt names and copies the
  JSON it printed into the StructuredOutput tool the CLI gives an agent with a
  ``schema``; a worker runs ``examples/wordcount/worker.py`` on the prompt it
  was given, so files really change, and then claims success whatever
  happened. These sessions prove that the workflow drives the harness as
  designed; they claim nothing about what a real model would do.

Every session is bounded by a guard that kills its process group; nothing
waits for a fixed time.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import textwrap
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from claude_cli import Session, make_home, run_claude
from conftest import EXAMPLES, ROOT, run_cli
from scripted_model import (
    Reply,
    Request,
    Rule,
    ScriptedModel,
    after_tool_result,
    all_of,
    call,
    fresh_turn,
    main_loop,
    notified,
    say,
)

WORKFLOW = "dispatch-kit:workspace-dispatch"
HOLDER = "workflow:workspace-dispatch"
GUARD_S = 120  # a guard only: a whole mission takes a few seconds here
ALLOWED_TOOLS = "Workflow,Agent,Read,Write,Edit,Bash"
# How the pinned CLI hands an agent() prompt to its subagent (2.1.332).
COMPUTED_TASK = "The computed task text follows:"
STEWARD = "You are a steward for a dispatch workflow"
DEMO_STORY = {
    "counter": ("verified", 1),
    "tests": ("verified", 2),
    "guide": ("failed", 4),
    "review": ("skipped", 0),
}


# ---------------------------------------------------------------------------
# The mission: a copy of the example in a project folder


@dataclass
class Mission:
    project: Path  # the session's working folder
    plan: str  # the plan, relative to the project, as a user would pass it
    worker_log: Path  # worker.py appends "task attempt pid" per run
    hold: Path  # a FIFO nobody writes to: a worker reading it blocks until killed

    @property
    def plan_path(self) -> Path:
        return self.project / self.plan

    def worker_runs(self) -> list[tuple[str, int]]:
        if not self.worker_log.exists():
            return []
        runs = []
        for line in self.worker_log.read_text().splitlines():
            task, attempt, _pid = line.split()
            runs.append((task, int(attempt)))
        return runs

    def status(self) -> dict:
        result = run_cli("ledger", "status", "--plan", str(self.plan_path), "--format", "json")
        assert result.returncode == 0, result.output
        return json.loads(result.stdout)

    def events(self) -> list[dict]:
        result = run_cli("ledger", "events", "--plan", str(self.plan_path), "--format", "json")
        assert result.returncode == 0, result.output
        return json.loads(result.stdout)

    def story(self) -> dict[str, tuple[str, int]]:
        return {t["id"]: (t["state"], t["attempts"]) for t in self.status()["tasks"]}


def make_mission(folder: Path, max_retries: int = 3) -> Mission:
    project = folder / "project"
    shutil.copytree(EXAMPLES / "wordcount", project / "wordcount",
                    ignore=shutil.ignore_patterns(".dispatch", "__pycache__"))
    plan = project / "wordcount" / "plan.yaml"
    if max_retries != 3:
        text = plan.read_text()
        assert "max_retries: 3" in text
        plan.write_text(text.replace("max_retries: 3", f"max_retries: {max_retries}"))
    return Mission(project, "wordcount/plan.yaml", folder / "worker-runs.log", folder / "hold")


@pytest.fixture
def mission(tmp_path: Path) -> Mission:
    return make_mission(tmp_path)


def attempt(mission: Mission, action: str, task: str, *extra: str) -> tuple[int, dict]:
    result = run_cli("attempt", action, mission.plan, "--task", task, *extra, cwd=mission.project)
    assert result.returncode in (0, 1), result.output
    return result.returncode, json.loads(result.stdout)


def run_worker(mission: Mission, task: str, number: int, prompt: str) -> str:
    """What the scripted worker runs: worker.py in the task's folder, the prompt on stdin."""
    folder = re.search(r"Working directory: `([^`]+)`", prompt)
    assert folder, prompt[:400]
    return (
        f"mkdir -p {shlex.quote(folder.group(1))} && cd {shlex.quote(folder.group(1))} && "
        f"DISPATCH_KIT_TASK={task} DISPATCH_KIT_ATTEMPT={number} "
        f"WORDCOUNT_WORKER_LOG={shlex.quote(str(mission.worker_log))} "
        f"python3 {shlex.quote(str(mission.project / 'wordcount' / 'worker.py'))} "
        "<<'DISPATCH_KIT_PROMPT_END'\n" + prompt.rstrip("\n") + "\nDISPATCH_KIT_PROMPT_END"
    )


# ---------------------------------------------------------------------------
# The commands the stewards run


def test_the_dispatch_line_names_the_mission_and_ledger_the_attempt_was_claimed_in(mission):
    # A second mission of the same plan in a ledger of its own: the hooks must record the
    # dispatch there, not in the plan's default ledger under the plan's name.
    ledger = ["--db", "elsewhere/team.db", "--mission", "second run"]
    assert run_cli("ledger", "init", mission.plan, *ledger, cwd=mission.project).returncode == 0
    code, started = attempt(mission, "start", "counter", *ledger)
    assert code == 0 and started["ok"], started
    line = started["prompt"].rstrip("\n").splitlines()[-1]
    assert line == ("dispatch-kit: mission=second%20run task=counter attempt=1 "
                    "ledger=elsewhere/team.db"), line
    assert not (mission.project / "wordcount" / ".dispatch").exists()


def test_attempt_start_claims_renders_lints_and_records_before_any_worker(mission):
    assert run_cli("ledger", "init", mission.plan, cwd=mission.project).returncode == 0
    code, blocked = attempt(mission, "start", "tests")
    assert code == 1 and blocked["state"] == "blocked" and not blocked["prompt"], blocked
    assert "waiting for counter" in blocked["reason"]

    code, started = attempt(mission, "start", "counter")
    assert code == 0 and started["ok"] and started["state"] == "dispatched", started
    assert (started["attempt"], started["max_attempts"]) == (1, 4)
    expected = run_cli("render", "worker", "--plan", mission.plan, "--task", "counter",
                       cwd=mission.project)
    assert started["prompt"] == expected.stdout
    lint = run_cli("lint", "-", "--agent", "dispatch-worker", input=started["prompt"],
                   cwd=mission.project)
    assert lint.returncode == 0, lint.output
    (task,) = [t for t in mission.status()["tasks"] if t["id"] == "counter"]
    assert (task["state"], task["holder"]) == ("dispatched", HOLDER)
    kinds = [e["kind"] for e in mission.events() if e["task_id"] == "counter"]
    assert kinds == ["claimed", "dispatched"]

    # Another holder cannot take it; the same holder again means its last run died.
    code, held = attempt(mission, "start", "counter", "--by", "someone-else")
    assert code == 1 and held["state"] == "held" and HOLDER in held["reason"], held
    code, again = attempt(mission, "start", "counter")
    assert code == 0 and again["attempt"] == 1, again
    kinds = [e["kind"] for e in mission.events() if e["task_id"] == "counter"]
    assert kinds == ["claimed", "dispatched", "interrupted", "claimed", "dispatched"]


def test_attempt_finish_takes_the_verdict_from_the_criteria_only(mission):
    assert run_cli("ledger", "init", mission.plan, cwd=mission.project).returncode == 0
    code, nothing = attempt(mission, "finish", "counter")
    assert code == 1 and nothing["outcome"] == "not-recorded", nothing

    attempt(mission, "start", "counter")  # no worker ran: the criteria cannot pass
    code, verdict = attempt(mission, "finish", "counter", "--note", "the worker said DONE")
    assert code == 0, verdict
    assert (verdict["passed"], verdict["outcome"], verdict["attempt"]) == (False, "retry", 1)
    assert {c["verdict"] for c in verdict["criteria"]} == {"error"}
    assert "the worker said DONE" in verdict["error"]

    code, retry = attempt(mission, "start", "counter")
    assert code == 0 and retry["attempt"] == 2, retry
    assert "Previous attempt failed" in retry["prompt"], retry["prompt"][-800:]
    assert "the worker said DONE" in retry["prompt"]
    command = run_worker(mission, "counter", 2, retry["prompt"])
    done = subprocess.run(["bash", "-c", command], cwd=mission.project, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    code, verdict = attempt(mission, "finish", "counter")
    assert (verdict["passed"], verdict["outcome"], verdict["attempt"]) == (True, "verified", 2)
    code, after = attempt(mission, "start", "counter")
    assert code == 1 and after["state"] == "verified", after


def test_attempt_start_gives_the_claim_back_when_the_prompt_fails_the_lint(mission):
    # A worker agent without Bash cannot run the exit criteria its prompt asks it to run.
    agents = mission.project / "agents"
    agents.mkdir()
    (agents / "no-shell.md").write_text(
        "---\nname: no-shell\ndescription: Edits files only.\ntools: Read, Write, Edit\n---\n\n"
        "You edit files.\n"
    )
    assert run_cli("ledger", "init", mission.plan, cwd=mission.project).returncode == 0
    code, refused = attempt(mission, "start", "counter", "--agent", "dispatch-kit:no-shell")
    assert code == 1 and refused["state"] == "lint-failed" and not refused["prompt"], refused
    assert "DK401" in refused["reason"], refused
    (task,) = [t for t in mission.status()["tasks"] if t["id"] == "counter"]
    assert (task["state"], task["attempt"], task["holder"]) == ("ready", 1, None)
    kinds = [e["kind"] for e in mission.events() if e["task_id"] == "counter"]
    assert "dispatched" not in kinds, kinds


# ---------------------------------------------------------------------------
# The plugin as the CLI sees it


def test_validate_lists_the_workflow(claude):
    proc = subprocess.run(
        [claude, "plugin", "validate", "--strict", "--profile", "directory", "--json", str(ROOT)],
        capture_output=True, text=True, timeout=GUARD_S,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    report = json.loads(proc.stdout)
    assert report["success"] is True, report
    assert WORKFLOW in report["provides"]["workflows"], report["provides"]


# ---------------------------------------------------------------------------
# Real sessions


def run_session(
    claude: str,
    model: ScriptedModel,
    home: Path,
    mission: Mission,
    prompt: str,
    kill_when: Callable[[Request], bool] | None = None,
) -> Session:
    """Run ``claude -p PROMPT`` with the plugin against ``model`` in the mission's project;
    with ``kill_when``, kill the session as soon as the model has seen such a request."""
    return run_claude(claude, model, home, mission.project, prompt,
                      allowed_tools=ALLOWED_TOOLS, guard_s=GUARD_S, kill_when=kill_when)


# -- the scripted model's parts -------------------------------------------------


def computed_task(request: Request) -> str:
    """The prompt a workflow script passed to agent(), as the script wrote it.

    The CLI prefixes it with a note on where it came from and indents each line.
    """
    text = request.prompt_text
    if COMPUTED_TASK in text:
        text = textwrap.dedent(text.split(COMPUTED_TASK, 1)[1].lstrip("\n"))
    return text


def is_steward(request: Request) -> bool:
    return request.agent_id is not None and STEWARD in computed_task(request)


def is_worker(request: Request) -> bool:
    return request.agent_id is not None and "[Execute] Task `" in computed_task(request)


def task_of(request: Request) -> str:
    found = re.search(r"Task `([\w.-]+)`", computed_task(request))
    assert found
    return found.group(1)


def steward_command(request: Request) -> str:
    """The one command a steward's prompt names: the line after "exactly as written:"."""
    lines = computed_task(request).splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("exactly as written:"))
    return lines[start + 2].strip()


def started_task(command: str) -> str | None:
    """The task a ``dispatch-kit attempt start PLAN --task ID`` command starts, else None."""
    argv = shlex.split(command)
    if argv[:3] != ["dispatch-kit", "attempt", "start"] or "--task" not in argv:
        return None
    return argv[argv.index("--task") + 1]


def json_objects(text: str) -> list[dict]:
    """Every top-level JSON object printed in ``text`` (a command's output)."""
    decoder = json.JSONDecoder()
    found, position = [], 0
    while (start := text.find("{", position)) >= 0:
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        if isinstance(value, dict):
            found.append(value)
        position = end
    return found


def structured_output(request: Request) -> dict:
    """What a steward hands back: the fields its schema asks for, copied from the command's
    output, as the prompt says."""
    schema = next(t for t in request.body["tools"] if t["name"] == "StructuredOutput")
    fields = list(schema["input_schema"]["properties"])
    output = request.tool_result_text()
    objects = json_objects(output)
    if "report" in fields:  # the Markdown report, then the status JSON
        markdown = output[: output.find("{")].strip()
        return {"report": markdown, "state": objects[-1]["state"]}
    if "tasks" in fields:
        if not objects:
            return {"ok": False, "error": output[-500:], "tasks": []}
        keep = ("id", "state", "depends_on", "attempt", "max_attempts")
        tasks = [{k: t[k] for k in keep} for t in objects[-1]["tasks"]]
        return {"ok": True, "tasks": tasks}
    return {k: objects[-1][k] for k in fields if k in objects[-1]}


def steward_turn(request: Request) -> Reply:
    """Follow the steward's prompt literally: run its command, copy what it printed."""
    if not request.tool_results:
        return call("Bash", {"command": steward_command(request),
                             "description": "Run the steward's command"})
    last_call = last_tool_use(request)
    if last_call == "Bash":
        return call("StructuredOutput", structured_output(request))
    return say("")


def last_tool_use(request: Request) -> str | None:
    for message in reversed(request.messages):
        if message.get("role") == "assistant" and isinstance(message.get("content"), list):
            for block in reversed(message["content"]):
                if block.get("type") == "tool_use":
                    return block.get("name")
    return None


CLAIM = (
    "Status: DONE\n- every exit criterion: pass\n"
    "Changed files: the ones the task asked for (uncommitted)"
)


def honest_worker(mission: Mission, hang: Callable[[str, int], bool] = lambda t, n: False):
    """A worker that runs worker.py on its prompt, then claims success whatever happened.

    The attempt number comes from the worker log (how often this task's worker
    already ran), as a worker would read it from the retry addendum. ``hang``
    picks attempts whose worker blocks instead, for a kill to land on.
    """

    def turn(request: Request) -> Reply:
        if request.tool_results:
            return say(CLAIM)
        task = task_of(request)
        number = 1 + sum(1 for t, _ in mission.worker_runs() if t == task)
        if hang(task, number):
            hold = shlex.quote(str(mission.hold))
            return call("Bash", {"command": f"cat {hold}",
                                 "description": "Blocked until the machine goes down"})
        return call("Bash", {"command": run_worker(mission, task, number, computed_task(request)),
                             "description": f"Do task {task}"})

    return turn


def lying_worker(request: Request) -> Reply:
    """A worker that does nothing at all and reports success."""
    return say(CLAIM)


def workflow_rules(mission: Mission, worker: Callable[[Request], Reply], wip: int) -> list[Rule]:
    launch = call("Workflow", {"name": WORKFLOW, "args": {"plan": mission.plan, "wip": wip}})
    return [
        Rule(all_of(main_loop, notified), [say("The mission ended; the report is above.")],
             name="notified", repeat=True),
        Rule(all_of(main_loop, fresh_turn), [launch], name="launch"),
        Rule(all_of(main_loop, after_tool_result), [say("Waiting for the workflow.")],
             name="wait", repeat=True),
        Rule(is_steward, [steward_turn], name="steward", repeat=True),
        Rule(is_worker, [worker], name="worker", repeat=True),
    ]


def max_in_flight(requests: list[Request]) -> int:
    """Most agents at work at once, each from its first request to its last."""
    spans: dict[str, list[int]] = {}
    for r in requests:
        assert r.agent_id
        spans.setdefault(r.agent_id, []).append(r.index)
    edges = sorted([(min(i), 1) for i in spans.values()] + [(max(i), -1) for i in spans.values()],
                   key=lambda edge: (edge[0], -edge[1]))
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def assert_clean(session: Session, model: ScriptedModel) -> None:
    evidence = session.evidence(model)
    if session.returncode != 0 or session.result.get("is_error") is not False:
        pytest.fail(f"the session failed\n{evidence}")
    if model.errors or model.unmatched:
        pytest.fail(f"rules raised {model.errors}; unforeseen {len(model.unmatched)}\n{evidence}")


def workflow_result(model: ScriptedModel) -> dict:
    """The workflow's return value, from its completion notification to the main loop."""
    for request in model.turns("main"):
        for notice in request.notifications():
            if "result" in notice:
                return json.loads(notice["result"])
    return {}


# -- the sessions ---------------------------------------------------------------


def test_workflow_runs_the_example_mission_to_the_demo_story(claude, tmp_path, plugin_data):
    mission = make_mission(tmp_path)
    home = make_home(tmp_path, plugin_data)
    with ScriptedModel(workflow_rules(mission, honest_worker(mission), wip=2)) as model:
        session = run_session(claude, model, home, mission, "Run the wordcount plan.")
    assert_clean(session, model)
    evidence = session.evidence(model)
    assert mission.story() == DEMO_STORY, evidence
    assert mission.status()["state"] == "failed"
    assert Counter(t for t, _ in mission.worker_runs()) == {"counter": 1, "tests": 2, "guide": 4}
    assert (mission.project / "wordcount/workspace/src/wordcount.py").exists()
    (review,) = [t for t in mission.status()["tasks"] if t["id"] == "review"]
    assert review["skipped_because"] == "guide"

    # Each attempt was claimed, linted and recorded as dispatched before its worker's first
    # request: the k-th worker of a task comes after the k-th start steward for it had
    # handed back its result (the JSON of `dispatch-kit attempt start`).
    workers = [r for r in model.turns() if is_worker(r) and not r.tool_results]
    assert len(workers) == 7, evidence
    handed_back = [r for r in model.turns() if is_steward(r) and r.rule == "steward"
                   and last_tool_use(r) == "Bash" and started_task(steward_command(r))]
    for task in DEMO_STORY:
        starts = [r.index for r in handed_back if started_task(steward_command(r)) == task]
        runs = [r.index for r in workers if task_of(r) == task]
        assert len(starts) == len(runs) == DEMO_STORY[task][1], (task, starts, runs)
        assert all(s < w for s, w in zip(starts, runs, strict=True)), (task, starts, runs)
    # Dependency order with a WIP of 2: tests and guide (both after counter) ran side by side,
    # and never more than two workers at once.
    first = {}
    for r in model.turns():
        if is_steward(r) and not r.tool_results:
            argv = shlex.split(steward_command(r))
            if "--task" in argv:
                first.setdefault((argv[2], argv[argv.index("--task") + 1]), r.index)
    assert first[("start", "guide")] < first[("finish", "tests")], first
    assert first[("finish", "counter")] < min(first[("start", "tests")], first[("start", "guide")])
    assert max_in_flight([r for r in model.turns() if is_worker(r)]) <= 2
    # Why the workflow lints and records through a steward: the CLI runs no PreToolUse hook
    # for a workflow's agent() (2.1.332). When it starts to, the hook lints these prompts too.
    assert "Hooks: PreToolUse" not in session.debug_log
    assert "Hooks: SessionStart" in session.debug_log

    # The retry reached the worker with the failure it has to fix.
    (tests_retry,) = [r for r in workers if task_of(r) == "tests"
                      and "Previous attempt failed" in computed_task(r)]
    assert "AssertionError" in computed_task(tests_retry) or "FAIL" in computed_task(tests_retry)

    # The stewards answered through the StructuredOutput tool the schema adds, and the
    # worker ran as the pack's dispatch-worker with its own tools.
    structured = [r for r in model.turns() if "StructuredOutput" in r.tool_names]
    assert structured and all(is_steward(r) for r in structured)
    assert all("StructuredOutput" not in r.tool_names for r in workers)
    assert "You are a dispatch worker" in workers[0].system_text

    result = workflow_result(model)
    assert {k: v["state"] for k, v in result["tasks"].items()} == {
        k: v[0] for k, v in DEMO_STORY.items()}, result
    assert result["state"] == "failed" and "guide" in result["report"], result


def test_killed_mid_mission_a_new_run_redoes_nothing_verified(claude, tmp_path, plugin_data):
    mission = make_mission(tmp_path)
    os.mkfifo(mission.hold)

    def at_tests_retry(task: str, number: int) -> bool:
        return (task, number) == ("tests", 2)

    first_rules = workflow_rules(mission, honest_worker(mission, hang=at_tests_retry), wip=1)
    with ScriptedModel(first_rules) as model:
        run_session(
            claude, model, make_home(tmp_path / "one", plugin_data), mission,
            "Run the wordcount plan.",
            kill_when=lambda r: r.rule == "worker" and is_worker(r) and task_of(r) == "tests"
            and "Previous attempt failed" in computed_task(r) and not r.tool_results,
        )
    _release(mission.hold)
    before = mission.story()
    assert before["counter"] == ("verified", 1), before
    (tests,) = [t for t in mission.status()["tasks"] if t["id"] == "tests"]
    assert (tests["state"], tests["attempt"], tests["holder"]) == ("dispatched", 2, HOLDER)
    assert mission.worker_runs() == [("counter", 1), ("tests", 1)]

    with ScriptedModel(workflow_rules(mission, honest_worker(mission), wip=2)) as model:
        session = run_session(claude, model, make_home(tmp_path / "two", plugin_data), mission,
                              "Resume the wordcount plan.")
    assert_clean(session, model)
    assert mission.story() == DEMO_STORY, session.evidence(model)
    # Nothing verified ran again: counter's worker ran once in all, in the first session.
    runs = Counter(t for t, _ in mission.worker_runs())
    assert runs == {"counter": 1, "tests": 2, "guide": 4}, mission.worker_runs()
    commands = [steward_command(r) for r in model.turns() if is_steward(r) and not r.tool_results]
    assert "counter" not in [started_task(c) for c in commands], commands
    counter_claims = [e for e in mission.events()
                      if e["task_id"] == "counter" and e["kind"] == "claimed"]
    assert len(counter_claims) == 1
    # The attempt the kill cut short was handed back, not counted as a failure.
    tests_events = [(e["kind"], e["attempt"]) for e in mission.events() if e["task_id"] == "tests"]
    assert ("interrupted", 2) in tests_events and ("verified", 2) in tests_events, tests_events
    assert workflow_result(model)["tasks"]["counter"] == {"state": "verified", "resumed": True}


def _release(fifo: Path) -> None:
    """Let a blocked reader of ``fifo`` (if one survived the kill) see end of file."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # no reader left
    os.close(fd)


def test_a_worker_claiming_success_without_the_work_does_not_pass(claude, tmp_path, plugin_data):
    mission = make_mission(tmp_path, max_retries=1)
    home = make_home(tmp_path, plugin_data)
    with ScriptedModel(workflow_rules(mission, lying_worker, wip=1)) as model:
        session = run_session(claude, model, home, mission, "Run the wordcount plan.")
    assert_clean(session, model)
    evidence = session.evidence(model)
    workers = [r for r in model.turns() if is_worker(r)]
    assert [task_of(r) for r in workers] == ["counter", "counter"], evidence
    assert all(r.reply is not None and "Status: DONE" in r.reply.text for r in workers)
    assert mission.story() == {
        "counter": ("failed", 2),
        "tests": ("skipped", 0),
        "guide": ("skipped", 0),
        "review": ("skipped", 0),
    }, evidence
    assert not (mission.project / "wordcount/workspace/src/wordcount.py").exists()
    assert mission.worker_runs() == []
