"""The session guards in a real Claude Code session, driven offline by a scripted model.

The pinned ``claude`` binary runs the plugin's hooks for real (through
``bin/dispatch-kit``) against a ledger made by ``dispatch-kit ledger init``;
only the model is scripted. The script dispatches task ``counter`` in the
background with the prompt ``dispatch-kit render`` gives, then dispatches it
again while the first worker still runs (the worker's reply waits until the
main loop has read the refusal). A resumed session then shows the mission's
state in what the model receives. A scripted model proves that these calls
work in the harness and what the harness sends back, nothing about what a
real model would do.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from claude_cli import COUNTER_PLAN, Session, run_claude
from conftest import run_cli
from scripted_model import (
    Request,
    Rule,
    ScriptedModel,
    all_of,
    call,
    fresh_turn,
    main_loop,
    say,
    subagent,
    tool_result_contains,
)
from test_claude_session import (
    AGENT_ID,
    ALLOWED_TOOLS,
    SESSION_TIMEOUT_S,
    WORKER,
    agent_results,
)


def run(binary: str, model: ScriptedModel, home_dir: Path, folder: Path, *args: str) -> Session:
    """``claude -p ARGS`` with the plugin against ``model``, bounded by the guard."""
    return run_claude(binary, model, home_dir, folder, *args, allowed_tools=ALLOWED_TOOLS,
                      guard_s=SESSION_TIMEOUT_S)


def test_a_second_dispatch_is_refused_with_the_first_agents_id_and_resume_shows_it(
    claude, home, project  # noqa: F811 - the fixtures imported above
):
    (project / "plan.yaml").write_text(COUNTER_PLAN, encoding="utf-8")
    assert run_cli("ledger", "init", "plan.yaml", cwd=project).returncode == 0
    rendered = run_cli("render", "worker", "--plan", "plan.yaml", "--task", "counter",
                       cwd=project)
    assert rendered.returncode == 0, rendered.output
    prompt = rendered.stdout
    # The first worker's Bash call reads this pipe, so the worker is still running when
    # the second dispatch arrives; the main loop's reading of the refusal opens it.
    gate = project.parent / "refused.fifo"
    os.mkfifo(gate)
    opened: list[threading.Thread] = []

    def open_gate() -> None:
        with open(gate, "w") as pipe:  # blocks until the worker reads: no fixed wait
            pipe.write("go\n")

    def dispatch(name: str):
        return call("Agent", {"description": "Write the counter", "prompt": prompt,
                              "subagent_type": WORKER, "name": name,
                              "run_in_background": True})

    def read_refusal(request: Request):
        opened.append(threading.Thread(target=open_gate, daemon=True))
        opened[-1].start()
        return say("The second dispatch was refused; waiting for the first worker.")

    rules = [
        Rule(all_of(main_loop, fresh_turn), [dispatch("worker-counter-1")], name="first"),
        Rule(all_of(main_loop, tool_result_contains("dispatch-kit: refused")), [read_refusal],
             name="refused"),
        Rule(all_of(main_loop, tool_result_contains("Async agent launched")),
             [dispatch("worker-counter-2")], name="second"),
        Rule(main_loop, [say("Waiting."), say("Waiting."), say("Done.")], name="rest"),
        Rule(subagent, [call("Bash", {"command": f"cat {gate}",
                                      "description": "Wait for the gate"},
                             text="Step 1: waiting for the gate."),
                        say("Status: DONE")], name="worker"),
    ]
    with ScriptedModel(rules) as model:
        first = run(claude, model, home, project, "Run task counter.")
    evidence = f"{first.stdout[-1500:]}\n{first.stderr[-1500:]}\n{model.transcript()}"
    assert first.returncode == 0, evidence
    assert not model.errors, evidence

    (launch,) = [r for r in model.turns("main") if r.rule == "second"]
    agent_id = AGENT_ID.search(launch.tool_result_text()).group(1)
    (after,) = [r for r in model.turns("main") if r.rule == "refused"]
    (result,) = [b for b in agent_results(after) if b.get("is_error")]
    text = after.tool_result_text()
    assert f"agent {agent_id} (worker-counter-1)" in text, text
    assert "TaskStop" in text and "`dispatch-kit ledger status --db .dispatch/ledger.db`" in text
    # One worker ran (its two turns carry one agent id): the refused dispatch started none.
    assert {r.agent_id for r in model.turns("subagent")} == {agent_id}, evidence
    # The turn that would have ended with the worker running was held once, naming it.
    held = [r for r in model.turns("main") if "dispatched attempt(s) still running" in r.new_text]
    assert len(held) <= 1, evidence
    if held:
        assert f"agent {agent_id}" in held[0].new_text

    conn = sqlite3.connect(project / ".dispatch" / "ledger.db")
    recorded = conn.execute("SELECT task_id, attempt, agent_id, name FROM agents").fetchall()
    kinds = [r[0] for r in conn.execute(
        "SELECT kind FROM events WHERE task_id = 'counter' ORDER BY seq")]
    conn.close()
    assert recorded == [("counter", 1, agent_id, "worker-counter-1")], recorded
    assert kinds[:5] == ["claimed", "dispatched", "agent-requested", "agent-launched",
                         "dispatch-refused"], kinds

    # A resumed session: the SessionStart hook puts the mission's state in the context.
    session_id = first.result["session_id"]
    rules = [Rule(main_loop, [say("Resumed.")], name="resumed")]
    with ScriptedModel(rules) as model:
        resumed = run(claude, model, home, project, "--resume", session_id, "Where are we?")
    assert resumed.returncode == 0, resumed.stderr + model.transcript()
    (turn,) = model.turns("main")
    context = turn.all_text()
    assert "dispatch-kit mission plan (.dispatch/ledger.db)" in context, context[-3000:]
    assert f"counter attempt 1/4, agent {agent_id} (worker-counter-1)" in context
