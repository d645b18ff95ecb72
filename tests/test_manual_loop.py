"""The workspace-dispatch skill's manual loop, replayed call for call in the real harness.

The calls are taken from the skill's own text (``skills/workspace-dispatch/SKILL.md``):
every backticked ``dispatch-kit ...`` command becomes a Bash call, every backticked
``Tool{...}`` form that tool's call, with the placeholders the skill names (``W``, ``ID``,
``N``, ``<prompt>``) filled in by the replay. Change a call in the skill and this test
replays the changed call, or fails on a form it does not know: the two cannot drift.

A scripted model (:mod:`scripted_model`) plays the orchestrator of a real ``claude -p``
session that is offered no Workflow tool, so the skill sends it to the manual loop. It runs
the bundled example mission (``examples/wordcount``, the plan written where the skill puts
it) by making exactly those calls, in the order the skill gives, reading each command's
output to fill the next call. The worker subagent is the pack's ``dispatch-worker``, played
by running ``examples/wordcount/worker.py`` through Bash, so files really change and the
criteria decide. Everything else is the CLI's own: plugin loading, the session-guard hooks,
background subagents, their completion notifications, tools and files.

What this proves: the calls the skill prescribes work in the pinned harness and drive the
mission to the demo's story, and a replay that follows the skill checks or retries a task
only after its background worker's ``<task-notification>``. It claims nothing about what a
real model would do with the skill. The deadline calls (ToolSearch, TaskStop, ``attempt
finish --note``) and the status read after a context reset are extracted and held to their
forms, but the demo mission has no deadline or reset to replay them on.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import threading
from collections import deque
from pathlib import Path
from typing import Any

from claude_cli import run_claude
from conftest import EXAMPLES, ROOT
from scripted_model import Reply, Request, Rule, ScriptedModel, call, main_loop, say, subagent
from test_claude_session import AGENT_ID, WORKER, agent_results
from test_workflow import DEMO_STORY, Mission, assert_clean, json_objects

SKILL = ROOT / "skills" / "workspace-dispatch" / "SKILL.md"
PLAN = ".dispatch/plan.yaml"  # where the skill writes the plan, relative to the project
WIP = 2  # the skill's rule: tests and guide are independent and ready at once
GUARD_S = 90  # a guard only: the mission takes well under a minute here
# No Workflow tool is offered, so the skill's "without the Workflow tool" branch applies.
ALLOWED_TOOLS = "Agent,Read,Write,Edit,Bash"
DISALLOWED_TOOLS = "Workflow"

SPAN = re.compile(r"`([^`\n]+)`")
TOOL_FORM = re.compile(r"([A-Z][A-Za-z]*)(\{.*\})")
BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_]\w*)\s*:")
PLACEHOLDER = re.compile(r"<prompt>|\b(?:ID|N|W)\b")
DISPATCH_LINE = re.compile(r"dispatch-kit: mission=\S+ task=(\S+) attempt=(\d+)")
READY = re.compile(r"^(\S+)\tattempt (\d+)/(\d+)", re.M)

# What each section of the skill prescribes, by role (see role_of). A call added to or
# dropped from the skill fails here first, so this replay is updated with it.
EXPECTED_ROLES = {
    "1. Plan": ["plan validate", "ledger init"],
    "3. The manual loop": [
        "ledger next", "attempt start", "Agent", "attempt finish",
        "TaskStop", "ToolSearch", "attempt finish --note", "ledger status",
    ],
    "4. Completion report": ["ledger status --format"],
}


# ---------------------------------------------------------------------------
# The calls, from the skill's text


def sections(text: str) -> dict[str, str]:
    """The skill's ``## `` sections by heading."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def tool_input(form: str) -> dict[str, Any]:
    """A ``{key: "value", flag: true}`` form as the skill writes it (keys bare) parsed to JSON."""
    return json.loads(BARE_KEY.sub(r'\1"\2":', form))


def calls_in(section: str) -> list[tuple[str, dict[str, Any]]]:
    """The calls a section prescribes, in the order written: ``(tool, input with placeholders)``."""
    found = []
    for span in SPAN.findall(section):
        if span.startswith("dispatch-kit "):
            found.append(("Bash", {"command": span}))
        elif form := TOOL_FORM.fullmatch(span):
            found.append((form[1], tool_input(form[2])))
    return found


def role_of(tool: str, tool_input: dict[str, Any]) -> str:
    """What a call is for: the tool, or for a command its subcommand and telling options."""
    if tool != "Bash":
        return tool
    argv = shlex.split(tool_input["command"])
    role = " ".join(argv[1:3])
    return role + "".join(f" {flag}" for flag in ("--note", "--format") if flag in argv)


def prescribed() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every call of the skill's plan, manual-loop and report sections, by role."""
    by_role: dict[str, tuple[str, dict[str, Any]]] = {}
    parts = sections(SKILL.read_text(encoding="utf-8"))
    for heading, roles in EXPECTED_ROLES.items():
        calls = calls_in(parts[heading])
        assert [role_of(*c) for c in calls] == roles, (heading, calls)
        by_role.update((role_of(*c), c) for c in calls)
    return by_role


def fill(value: Any, values: dict[str, str]) -> Any:
    """The call with its placeholders filled in, in one pass (a filled prompt is not rescanned)."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: values[m.group(0)], value)
    if isinstance(value, dict):
        return {key: fill(item, values) for key, item in value.items()}
    return value


def fits(template: Any, actual: Any) -> bool:
    """``actual`` is ``template`` with each placeholder filled by something."""
    if isinstance(template, dict):
        return (isinstance(actual, dict) and template.keys() == actual.keys()
                and all(fits(template[k], actual[k]) for k in template))
    if isinstance(template, str) and isinstance(actual, str):
        pattern = "".join(
            "(?s:.+)" if piece.startswith("<") else r"[\w.-]+" if PLACEHOLDER.fullmatch(piece)
            else re.escape(piece)
            for piece in re.split(f"({PLACEHOLDER.pattern})", template) if piece
        )
        return re.fullmatch(pattern, actual) is not None
    return template == actual


def test_the_skill_writes_its_manual_loop_as_calls_a_replay_can_fill():
    calls = prescribed()
    _, agent = calls["Agent"]
    assert agent["subagent_type"] == WORKER and agent["run_in_background"] is True, agent
    assert agent["prompt"] == "<prompt>" and agent["name"] == "worker-ID"
    assert calls["TaskStop"][1] == {"task_id": "worker-ID"}  # the Agent call's name
    filled = fill(calls["attempt start"][1], {"ID": "tests"})["command"]
    assert filled == f"dispatch-kit attempt start {PLAN} --task tests --by worker-tests"
    # The prompt is put in as is, even where it holds a placeholder's letters.
    assert fill(agent, {"ID": "a", "N": "2", "<prompt>": "N ID W"})["prompt"] == "N ID W"
    assert fits(agent, fill(agent, {"ID": "a", "N": "2", "<prompt>": "x\ny"}))
    assert not fits(agent, {**fill(agent, {"ID": "a", "N": "2", "<prompt>": "x"}),
                            "run_in_background": False})


# ---------------------------------------------------------------------------
# The replay


class Orchestrator:
    """The scripted main loop: the skill's calls, in the skill's order, nothing else.

    Plan checks and ledger first; then ``ledger next`` names the ready tasks, each gets
    ``attempt start`` and a background ``Agent`` spawn with the prompt it printed; with
    every worker out the turn ends. A worker's completion notification is the only thing
    that leads to its ``attempt finish``; a ``retry`` outcome goes back to ``attempt
    start`` for that task, and every verdict is followed by ``ledger next`` to refill the
    free slots. When nothing is ready or running, the report.
    """

    def __init__(self, calls: dict[str, tuple[str, dict[str, Any]]], wip: int) -> None:
        self.calls = calls
        self.wip = wip
        self.queue: deque[tuple[str, dict[str, str]]] = deque(
            [("plan validate", {}), ("ledger init", {}), ("ledger next", {})])
        self.last: tuple[str, dict[str, str]] | None = None
        self.running: dict[str, tuple[str, int]] = {}  # agent id -> (task, attempt)
        self.starting: set[str] = set()  # tasks between attempt start and their spawn
        self.notified: deque[str] = deque()  # agent ids whose notification came
        self.report = ""

    def __call__(self, request: Request) -> Reply:
        if request.tool_results and self.last is not None:
            self.read(request.tool_result_text())
        for notice in request.notifications():
            if notice.get("task-id") in self.running:
                self.notified.append(notice["task-id"])
        if not self.queue:
            if self.notified:
                task, number = self.running.pop(self.notified.popleft())
                self.queue.append(("attempt finish", {"ID": task, "N": str(number)}))
            elif self.running or self.starting:
                return say("Workers are out; ending the turn until they notify.")
            else:
                return say(self.report or "Nothing left to run.")
        role, values = self.queue.popleft()
        self.last = (role, values)
        tool, template = self.calls[role]
        return call(tool, fill(template, {"W": str(self.wip), **values}))

    def read(self, output: str) -> None:
        """Take what the last call printed into the next calls, as the skill says."""
        assert self.last is not None
        role, values = self.last
        self.last = None
        busy = {task for task, _ in self.running.values()} | self.starting
        if role == "ledger next":
            ready = [task for task, _, _ in READY.findall(output) if task not in busy]
            self.queue.extend(("attempt start", {"ID": task}) for task in ready)
            if not ready and not busy and not self.notified:
                self.queue.append(("ledger status --format", {}))
        elif role == "attempt start":
            started = json_objects(output)[-1]
            if started["ok"]:
                self.starting.add(values["ID"])
                self.queue.appendleft(("Agent", {
                    "ID": values["ID"], "N": str(started["attempt"]),
                    "<prompt>": started["prompt"]}))
        elif role == "Agent":
            found = AGENT_ID.search(output)
            assert found and "Async agent launched" in output, output
            self.starting.discard(values["ID"])
            self.running[found.group(1)] = (values["ID"], int(values["N"]))
        elif role == "attempt finish":
            if json_objects(output)[-1]["outcome"] == "retry":  # "go to step 1"
                self.queue.append(("attempt start", {"ID": values["ID"]}))
            self.queue.append(("ledger next", {}))
        elif role == "ledger status --format":
            self.report = output


def worker_turn(worker: Path, log: Path, gate: Path):
    """The dispatch-worker: run worker.py on its prompt in the task's folder, then report.

    The first ``tests`` worker first reads ``gate``, a FIFO the first ``guide`` worker's
    turn opens, so the two are out at the same time and the loop gets one notification
    while the other worker still runs (no fixed wait: each side blocks on the other).
    """
    opened: list[threading.Thread] = []

    def open_gate() -> None:
        with open(gate, "w") as pipe:
            pipe.write("go\n")

    def turn(request: Request) -> Reply:
        if request.tool_results:
            return say("Status: DONE\n- every exit criterion: pass")
        prompt = request.prompt_text
        task, number = DISPATCH_LINE.search(prompt).groups()
        folder = re.search(r"Working directory: `([^`]+)`", prompt).group(1)
        wait = f"cat {shlex.quote(str(gate))} >/dev/null && " if (task, number) == (
            "tests", "1") else ""
        if (task, number) == ("guide", "1"):
            opened.append(threading.Thread(target=open_gate, daemon=True))
            opened[-1].start()
        command = (
            f"{wait}mkdir -p {shlex.quote(folder)} && cd {shlex.quote(folder)} && "
            f"DISPATCH_KIT_TASK={task} DISPATCH_KIT_ATTEMPT={number} "
            f"WORDCOUNT_WORKER_LOG={shlex.quote(str(log))} python3 {shlex.quote(str(worker))} "
            "<<'DISPATCH_KIT_PROMPT_END'\n" + prompt.rstrip("\n") + "\nDISPATCH_KIT_PROMPT_END"
        )
        return call("Bash", {"command": command, "description": f"Do task {task}"},
                    text=f"Step 1: doing task {task}.")

    return turn


def make_project(tmp_path: Path) -> tuple[Mission, Path]:
    """The example's workspace as the project, its plan where the skill writes one."""
    example = tmp_path / "wordcount"
    shutil.copytree(EXAMPLES / "wordcount", example,
                    ignore=shutil.ignore_patterns(".dispatch", "__pycache__"))
    project = tmp_path / "project"
    shutil.copytree(example / "workspace", project)
    text = (example / "plan.yaml").read_text(encoding="utf-8")
    line = re.search(r"^workspace: .*$", text, flags=re.M).group(0)
    (project / ".dispatch").mkdir()
    (project / PLAN).write_text(text.replace(line, "workspace: .."), encoding="utf-8")
    return Mission(project, PLAN, tmp_path / "worker-runs.log", tmp_path / "hold"), example


def per_task_timeline(model: ScriptedModel) -> dict[str, list[str]]:
    """From the recorded requests only: each task's starts, launches, notifications and
    finishes, in the order the main loop saw or made them (what arrived in a request
    comes before the reply to it)."""
    events: dict[str, list[str]] = {}
    agents: dict[str, str] = {}
    for request in model.turns("main"):
        uses = {
            block["id"]: block["input"]
            for message in request.messages if message.get("role") == "assistant"
            and isinstance(message.get("content"), list)
            for block in message["content"] if block.get("type") == "tool_use"
        }
        for result in agent_results(request):
            text = json.dumps(result.get("content"))
            task = uses[result["tool_use_id"]]["name"].removeprefix("worker-")
            agents[AGENT_ID.search(text).group(1)] = task
            events.setdefault(task, []).append("launched")
        for notice in request.notifications():
            if notice.get("task-id") in agents:
                events[agents[notice["task-id"]]].append(f"notified:{notice.get('status')}")
        for tool_call in request.reply.tool_calls if request.reply else []:
            if tool_call.name == "Bash":
                argv = shlex.split(tool_call.input["command"])
                if argv[1] == "attempt":
                    events.setdefault(argv[argv.index("--task") + 1], []).append(argv[2])
    return events


def test_the_manual_loop_replayed_from_the_skill_runs_the_demo_story(claude, tmp_path, home):
    calls = prescribed()
    mission, example = make_project(tmp_path)
    os.mkfifo(mission.hold)
    orchestrator = Orchestrator(calls, WIP)
    rules = [
        Rule(main_loop, [orchestrator], name="orchestrator", repeat=True),
        Rule(subagent, [worker_turn(example / "worker.py", mission.worker_log, mission.hold)],
             name="worker", repeat=True),
    ]
    with ScriptedModel(rules) as model:
        session = run_claude(
            claude, model, home, mission.project,
            f"Run the mission in {PLAN} with the workspace-dispatch skill.",
            "--disallowedTools", DISALLOWED_TOOLS,
            allowed_tools=ALLOWED_TOOLS, guard_s=GUARD_S,
        )
    assert_clean(session, model)
    evidence = session.evidence(model)
    main = model.turns("main")
    assert "Workflow" not in main[0].tool_names and "Agent" in main[0].tool_names, evidence

    # The demo's story, told by the ledger; the worker ran once per attempt.
    assert mission.story() == DEMO_STORY, evidence
    (review,) = [t for t in mission.status()["tasks"] if t["id"] == "review"]
    assert review["skipped_because"] == "guide"
    runs = mission.worker_runs()
    assert sorted(runs) == sorted([("counter", 1), ("tests", 1), ("tests", 2),
                                   *[("guide", n) for n in range(1, 5)]]), runs
    assert not (mission.project / "review").exists()
    assert (mission.project / "src" / "wordcount.py").is_file()

    # Call for call: every tool call the main loop made is one of the skill's forms,
    # placeholders filled, and every prescribed call of the demo's path was made.
    made = [c for r in main if r.reply for c in r.reply.tool_calls]
    roles = []
    for tool_call in made:
        matching = [role for role, (tool, template) in calls.items()
                    if tool == tool_call.name and fits(template, tool_call.input)]
        assert matching, (tool_call.name, tool_call.input)
        roles.append(matching[0])
    assert set(roles) == {"plan validate", "ledger init", "ledger next", "attempt start",
                          "Agent", "attempt finish", "ledger status --format"}, roles
    assert roles.count("Agent") == roles.count("attempt start") == 7, roles
    # Every spawn went to the background and was the pack's worker under its task's name.
    spawns = [c.input for c in made if c.name == "Agent"]
    assert all(s["run_in_background"] is True and s["subagent_type"] == WORKER for s in spawns)
    assert {s["name"] for s in spawns} == {"worker-counter", "worker-tests", "worker-guide"}
    # Two workers (tests and guide) were out at once, as the WIP allows: one notification
    # came while the other worker still ran.
    assert most_out_at_once(model) == WIP, evidence

    # No check or retry of a task before its background worker's notification: per task,
    # each attempt is start, launch, completion notification, then finish, in that order.
    timeline = per_task_timeline(model)
    expected = {task: ["start", "launched", "notified:completed", "finish"] * attempts
                for task, (_, attempts) in DEMO_STORY.items() if attempts}
    assert timeline == expected, (timeline, evidence)

    # The session guards saw every spawn (the dispatch line in each prompt), and the report
    # the orchestrator ended with is the ledger's.
    assert len(session.hook_lines("PreToolUse:Agent")) == 7, evidence
    assert "guide" in orchestrator.report and "failed" in orchestrator.report
    assert session.result.get("subagent_stats", {}).get("started_in_background") == 7


def most_out_at_once(model: ScriptedModel) -> int:
    """Most background workers launched and not yet notified, as the main loop saw them."""
    out = most = 0
    for request in model.turns("main"):
        out += len(agent_results(request))
        most = max(most, out)
        out -= len(request.notifications())
    return most
