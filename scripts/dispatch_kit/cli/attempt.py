"""``dispatch-kit attempt``: one worker attempt as two commands, for a loop that has no shell.

A Claude Code workflow script (``workflows/workspace-dispatch.js``) cannot read
files or run commands; a small agent runs these for it and hands back the JSON
they print. ``start`` does everything that must happen before a worker is
spawned, ``finish`` everything after it returns, each as one command whose
output an agent can copy field for field.

- ``start``: claim the task's next attempt in the ledger, render its prompt
  (the worker prompt, plus the retry addendum with the last failure from the
  second attempt on), lint it for the worker agent and record the dispatch.
  A claim the same holder still has (a run that was killed) is given back
  first, without using up its attempt.
- ``finish``: run the task's exit criteria, as ``dispatch-kit check`` does, and
  record the verdict. The verdict comes from the criteria alone: nothing a
  worker said reaches it.
"""

from __future__ import annotations

import argparse
import json
import sys

from dispatch_kit.cli._common import usage
from dispatch_kit.cli.check import add_workspace

DEFAULT_HOLDER = "workflow:workspace-dispatch"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "attempt",
        help="one worker attempt for a workflow: start (claim, render, lint, dispatch), "
        "finish (check, record)",
        description="Run one worker attempt of a plan's task through the ledger, for a "
        "loop that cannot run commands itself (a Claude Code workflow). Each action prints "
        "one JSON object.",
    )
    sub = parser.add_subparsers(dest="attempt_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: usage(parser))

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("plan", metavar="PLAN", help="the plan, loaded with `ledger init`")
        p.add_argument("--task", required=True, metavar="ID", help="task id in the plan")
        p.add_argument("--by", default=DEFAULT_HOLDER, metavar="NAME",
                       help="who holds the claim (default: %(default)s)")
        p.add_argument("--db", help="ledger database file or postgresql:// URL (default: "
                       "under the workspace)")
        p.add_argument("--mission", help="mission id (needed when the ledger holds several)")

    p = sub.add_parser(
        "start",
        help="claim the next attempt, render and lint its prompt, record the dispatch",
        description="Claim the task's next attempt, render its prompt (with the retry "
        "addendum from attempt 2 on), lint it for AGENT and record the dispatch. Prints "
        '{"ok", "task", "state", "attempt", "max_attempts", "reason", "prompt"}. Exit 0 '
        "when the worker may start; 1 when not: the task is finished, blocked or held "
        "elsewhere, or its prompt has lint errors (the claim is then given back).",
    )
    common(p)
    p.add_argument("--agent", default="dispatch-worker",
                   help="the worker's agent, for the lint (default: %(default)s)")
    p.add_argument("--lease", default="2h", metavar="DURATION",
                   help="how long the claim holds without a verdict (default: %(default)s)")
    p.set_defaults(func=_start)

    p = sub.add_parser(
        "finish",
        help="run the task's exit criteria and record the verdict",
        description="Run the task's exit criteria and record the verdict for the attempt "
        "NAME holds. Prints {\"task\", \"passed\", \"outcome\", \"attempt\", "
        "\"max_attempts\", \"error\", \"skipped\", \"criteria\"}; outcome is verified, "
        "retry (the next attempt is ready) or failed (the last attempt; dependents "
        "skipped). Exit 0 when a verdict was recorded, 1 when not.",
    )
    common(p)
    p.add_argument("--note", help="how the worker ended, kept with a failed attempt")
    add_workspace(p)
    p.set_defaults(func=_finish)


def _emit(document: dict) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _open(args: argparse.Namespace):
    """(plan, ledger, mission id) for the plan the ledger was loaded from."""

    from dispatch_kit.ledger import Ledger, default_db_for
    from dispatch_kit.ledger.location import as_target
    from dispatch_kit.plan.load import load_plan

    plan = load_plan(args.plan, max_tasks=10**6)
    ledger = Ledger.open(as_target(args.db) if args.db else default_db_for(plan))
    return plan, ledger, ledger.mission(args.mission).id


def _start(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dispatch_kit import telemetry
    from dispatch_kit.durations import parse_duration
    from dispatch_kit.lint import config, engine, output
    from dispatch_kit.runner.prompts import build_prompt

    lease = parse_duration(args.lease, option="--lease")
    plan, ledger, mission = _open(args)
    task = plan.task(args.task)
    with ledger:
        row = ledger.task(mission, task.id)
        document = {"ok": False, "task": task.id, "state": row.state, "attempt": row.attempt,
                    "max_attempts": row.max_attempts, "reason": "", "prompt": ""}
        held = ledger.claim_of(mission, task.id)
        if held is not None and held.holder == args.by:
            # Only one loop runs under a holder name, and it never starts a task it has in
            # flight: a claim of its own is left over from a run that ended (killed, stopped).
            ledger.release(mission, task.id, reason="left by an earlier run of this holder",
                           holder=args.by, outcome="interrupted", actor=args.by)
        claim = ledger.claim(mission, task.id, args.by, lease)
        if not claim.ok:
            document.update(state=claim.reason, reason=claim.message())
            _emit(document)
            return 1
        row = ledger.task(mission, task.id)
        prompt = build_prompt(plan, row, task, base=Path.cwd(), mission=mission,
                              ledger=ledger.location)
        agent = args.agent.rsplit(":", 1)[-1] or None  # a plugin agent: PLUGIN:NAME
        findings = engine.lint_text(prompt, f"{task.id}-attempt-{row.attempt}",
                                    config.load(start=str(Path.cwd())), agent=agent,
                                    default_kind="dispatch")
        document.update(attempt=claim.attempt, max_attempts=claim.max_attempts)
        if any(f.severity == "error" for f in findings):
            ledger.release(mission, task.id, reason="the rendered prompt failed the lint",
                           holder=args.by, actor=args.by)
            document.update(state="lint-failed", reason=output.render(findings, "text"))
            _emit(document)
            return 1
        ledger.mark_dispatched(mission, task.id, args.by, fetch=False)
        trace = telemetry.for_mission(ledger, mission, kind="workflow")
        if trace is not None:  # the workflow's span, and this attempt's, in the ledger
            trace.start_run(args.by)
            trace.attempt_claimed(task.id, claim.attempt_id, agent=agent or "agent")
            trace.end_run()
        warnings = output.render(findings, "text") if findings else ""
        document.update(ok=True, state="dispatched", reason=warnings, prompt=prompt)
    _emit(document)
    return 0


def _finish(args: argparse.Namespace) -> int:
    import time

    from dispatch_kit import telemetry
    from dispatch_kit.check.criteria import check_plan
    from dispatch_kit.cli.check import in_workspace

    plan, ledger, mission = _open(args)
    task = plan.task(args.task)
    where = in_workspace(plan, args.workspace)  # before the ledger: a bad folder records nothing
    with ledger:
        row = ledger.task(mission, task.id)
        document = {"task": task.id, "passed": False, "outcome": "", "attempt": row.attempt,
                    "max_attempts": row.max_attempts, "error": "", "skipped": [],
                    "criteria": []}
        held = ledger.claim_of(mission, task.id)
        if held is None or held.holder != args.by:
            who = f"held by {held.holder}" if held else f"not in flight ({row.state})"
            document.update(outcome="not-recorded", error=f"{task.id} is {who}; "
                            f"no attempt of {args.by} to finish")
            _emit(document)
            return 1
        started = time.time()
        result = check_plan(where, task_ids=[task.id])
        entry = next(t for t in result["tasks"] if t.get("id") == task.id)
        verdict = ledger.record(mission, task.id, entry, note=args.note, actor=args.by,
                                expect_attempt=held.attempt_id)
        trace = telemetry.for_mission(ledger, mission, kind="workflow")
        if trace is not None:  # the criteria under the attempt; the attempt, now ended
            trace.criteria(held.attempt_id, task.id, entry, started)
            trace.end_run()
    document.update(
        passed=bool(entry.get("passed")),
        outcome=verdict.outcome,
        attempt=verdict.attempt,
        max_attempts=verdict.max_attempts,
        error=verdict.error,
        skipped=list(verdict.skipped),
        criteria=[{"criterion": c.get("criterion", ""), "verdict": c.get("verdict", "")}
                  for c in entry.get("criteria") or []],
    )
    _emit(document)
    return 0 if verdict.outcome in ("verified", "retry", "failed") else 1
