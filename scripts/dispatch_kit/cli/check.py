"""``dispatch-kit check PLAN``: run the exit criteria of a plan's tasks and report each verdict."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from dispatch_kit.cli._common import add_format, int_at_least, validated_plan

if TYPE_CHECKING:
    from dispatch_kit.plan.model import Plan

_positive_int = int_at_least(1, "must be at least 1, got {value}")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def add_workspace(parser: argparse.ArgumentParser) -> None:
    """``--workspace DIR``, shared by ``check`` and ``attempt finish``."""
    parser.add_argument(
        "--workspace", metavar="DIR",
        help="verify the result where it lies: resolve the task folders under DIR (e.g. the "
        "git worktree an isolated worker left its changes in) instead of the plan's workspace",
    )


def in_workspace(plan: Plan, folder: str | None) -> Plan:
    """``plan`` with ``folder`` standing in for its workspace, for criteria only.

    A worker started with ``isolation: "worktree"`` leaves its result in a worktree,
    not in the plan's workspace; its criteria must run there. Only the workspace is
    swapped, so the criteria are confined to ``folder`` exactly as they are to the
    workspace (each task folder and checked path resolved again at the moment of use);
    the ledger, found from the plan as written, is untouched.
    """
    import dataclasses
    from pathlib import Path

    from dispatch_kit.errors import InputError

    if folder is None:
        return plan
    if not Path(folder).is_dir():
        raise InputError(f"{folder}: no such folder", path="--workspace")
    return dataclasses.replace(plan, workspace=Path(folder).resolve())


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="run a plan's exit criteria: pass/fail/timeout/error per criterion",
        description="Run the exit criteria of the named tasks (all by default), in parallel, each "
        "in its own process group with a timeout. Exit 0 when all pass, 1 when any does not, "
        "2 on bad input, 130 when interrupted.",
    )
    parser.add_argument("plan", metavar="PLAN", help="plan file (.yaml, .yml or .json)")
    parser.add_argument(
        "--task",
        action="extend",
        nargs="+",
        metavar="ID",
        dest="tasks",
        help="check only these tasks (--task a b, or repeat --task; default: every task)",
    )
    parser.add_argument(
        "--jobs", type=_positive_int, default=None, metavar="N",
        help="criteria run at once (default: number of cores)",
    )
    parser.add_argument(
        "--timeout", type=_positive_seconds, default=None, metavar="SECONDS",
        help="limit for a criterion without its own timeout (default: 60; never above the "
        "task's timeout)",
    )
    parser.add_argument(
        "--max-tasks", type=_positive_int, default=6, metavar="N",
        help="largest number of tasks the plan may have (default: %(default)s)",
    )
    add_workspace(parser)
    add_format(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import signal
    import threading
    import time

    from dispatch_kit import telemetry
    from dispatch_kit.check.criteria import DEFAULT_CRITERION_TIMEOUT, check_plan, render_text
    from dispatch_kit.errors import EXIT_BAD_INPUT
    from dispatch_kit.procs import reaper

    plan = validated_plan(args.plan, args.max_tasks)
    if plan is None:
        return EXIT_BAD_INPUT

    def terminate(signum: int, _frame: object) -> None:
        # Criteria run in their own sessions, so a SIGTERM/SIGHUP sent to this process does not
        # reach them: turn it into an exception that unwinds through the checker's cleanup.
        raise SystemExit(128 + signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, terminate)
    started_ns = time.time_ns()
    reaper.become_subreaper()  # a criterion's setsid'd children come back here, then die
    try:
        result = check_plan(
            in_workspace(plan, args.workspace),
            task_ids=args.tasks,
            jobs=args.jobs,
            default_timeout=args.timeout or DEFAULT_CRITERION_TIMEOUT,
        )
    finally:
        reaper.kill_orphans()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if telemetry.enabled():  # spans only when the OTEL_ environment asks for them
        from dispatch_kit.telemetry.checks import check_spans

        check_spans(args.plan, result, started_ns)
    if args.format == "json":
        import json

        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_text(result))
    return 0 if result["passed"] else 1
