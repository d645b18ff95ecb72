"""``dispatch-kit run PLAN --worker CMD``: the dispatch loop executed by a program.

Progress (one line per event) goes to stderr and the completion report to
stdout, so ``run ... --format json > report.json`` works; ``--jsonl`` puts
everything on stdout as JSON lines for machines.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a plan with a worker command: dispatch, check, retry, report",
        description="Run a plan's tasks with any worker command: dependency order, up to --wip "
        "workers at once, each attempt stopped at its time limit, exit criteria checked, "
        "failures retried with the error, dependents of a failed task skipped. State lives in "
        "the ledger, so a killed run resumes. The worker gets the rendered prompt on stdin and "
        "as a file ($DISPATCH_KIT_PROMPT_FILE, or {prompt_file} in COMMAND). Exit 0 only when "
        "every task is verified.",
    )
    parser.add_argument("plan", metavar="PLAN")
    parser.add_argument("--worker", required=True, metavar="COMMAND",
                        help="shell command run in the task's folder; placeholders: "
                        "{prompt_file} {task} {attempt} {cwd} (shell-quoted)")
    parser.add_argument("--wip", type=int, default=None,
                        help="workers at once (default 1; with --detach: no limit beyond "
                        "--max-dispatch)")
    parser.add_argument("--timeout", metavar="DURATION",
                        help="time limit per attempt (default: the task's timeout in the plan)")
    parser.add_argument("--db", help="ledger file or postgresql:// URL (default: "
                        "$DISPATCH_KIT_LEDGER, else .dispatch/ledger.db in the workspace)")
    parser.add_argument("--mission", help="mission id in the ledger (default: the plan's name)")
    parser.add_argument("--by", metavar="NAME", help="holder name for claims")
    parser.add_argument("--max-tasks", type=int, default=6, help="task cap for plan validation")
    parser.add_argument("--force", action="store_true",
                        help="accept a plan that changed since the ledger loaded it")
    parser.add_argument("--reset", action="store_true", help="start the mission over")
    parser.add_argument("--jobs", type=int, help="criteria checked in parallel per task")
    parser.add_argument("--log-limit", type=int, default=1 << 20, metavar="BYTES",
                        help="keep at most this much of each worker's output (head and tail)")
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown",
                        help="completion report format (default: %(default)s)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quiet", action="store_true", help="no progress lines")
    mode.add_argument("--jsonl", action="store_true",
                      help="progress and report as JSON lines on stdout")
    parser.add_argument("--detach", action="store_true",
                        help="fire and forget: start up to --max-dispatch workers and exit; "
                        "prints NO_REPLY when nothing is ready")
    parser.add_argument("--max-dispatch", type=int, default=1, metavar="N",
                        help="with --detach: workers to start per run (default: %(default)s)")
    parser.add_argument("--lease", metavar="DURATION",
                        help="claim lease (default: the time limit plus two minutes)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from dispatch_kit.durations import parse_duration
    from dispatch_kit.errors import InputError
    from dispatch_kit.ledger.text import headline, status_markdown
    from dispatch_kit.plan.load import load_plan
    from dispatch_kit.runner import Progress, Runner, RunOptions, install_term_handler, open_mission

    for flag, value in (("--wip", args.wip), ("--max-dispatch", args.max_dispatch),
                        ("--jobs", args.jobs)):
        if value is not None and value < 1:
            raise InputError(f"bad value {value}: must be 1 or more", path=flag)
    if not args.worker.strip():
        raise InputError("the worker command is empty", path="--worker")
    timeout = parse_duration(args.timeout, option="--timeout") if args.timeout else None
    lease = parse_duration(args.lease, option="--lease") if args.lease else None
    plan = load_plan(args.plan, max_tasks=args.max_tasks)
    output = "jsonl" if args.jsonl else "quiet" if args.quiet else "text"
    options = RunOptions(
        worker=args.worker, wip=args.wip or 1, timeout=timeout, holder=args.by, lease=lease,
        log_limit=max(4096, args.log_limit), jobs=args.jobs, output=output,
        detach=args.detach, max_dispatch=args.max_dispatch,
    )
    progress = Progress(output)
    ledger, mission = open_mission(plan, db=args.db, mission=args.mission,
                                   max_tasks=args.max_tasks, force=args.force, reset=args.reset)
    restore = install_term_handler()
    try:
        with ledger:
            runner = Runner(plan, ledger, mission, options, progress)
            if args.detach:
                try:
                    started = runner.detach(wip=args.wip)
                finally:
                    runner.close()
                if not started:
                    print("NO_REPLY")
                    return 0
                for item in started:
                    if args.jsonl:
                        continue  # already on stdout as "dispatched" events
                    print(f"dispatched {item['id']} attempt {item['attempt']}/"
                          f"{item['max_attempts']} pid {item['pid']} lease until "
                          f"{item['lease_expires']} log {item['log']}")
                return 0
            from dispatch_kit.procs import reaper

            # What a worker or criterion starts in a new session comes back here, then dies.
            reaper.become_subreaper()
            try:
                status = runner.run()
            except KeyboardInterrupt:
                if not args.quiet:
                    print("dispatch-kit run: interrupted; workers stopped, claims released "
                          "(run again to resume)", file=sys.stderr)
                return 130
            finally:
                reaper.kill_orphans()
    finally:
        restore()
    if args.jsonl:
        print(json.dumps({"t": round(progress.elapsed(), 3), "event": "report", "task": None,
                          "report": status}))
    else:
        if not args.quiet:
            print(headline(status), file=sys.stderr)
        if args.format == "json":
            print(json.dumps(status, indent=2))
        else:
            sys.stdout.write(status_markdown(status))
    return 0 if status["state"] == "complete" else 1
