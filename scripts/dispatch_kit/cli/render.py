"""``dispatch-kit render``: fill a prompt template from a variables file or from a plan."""

from __future__ import annotations

import argparse
import sys

PLAN_TEMPLATES = ("worker", "retry")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render a prompt template (worker, retry, report, executor, composite-load, "
        "composite-chain)",
        description="Render a prompt template from the pack. Variables come from a YAML/JSON\n"
        "file (--vars) or, for the worker prompt and the retry addendum, from a plan\n"
        "(--plan PLAN --task ID). A missing variable is an error naming it.",
        epilog="examples:\n"
        "  dispatch-kit render report --vars examples/vars/report.yaml\n"
        "  dispatch-kit render worker --plan examples/wordcount/plan.yaml --task counter\n"
        "  dispatch-kit check plan.yaml --task counter --format json > result.json\n"
        "  dispatch-kit render retry --plan plan.yaml --task counter --attempt 1 "
        "--check result.json --full",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("template", metavar="TEMPLATE", help="template name, e.g. worker")
    parser.add_argument("--vars", metavar="FILE", help="YAML or JSON mapping of variables")
    parser.add_argument("--plan", metavar="PLAN", help="plan file (worker and retry templates)")
    parser.add_argument("--task", metavar="ID", help="task id in the plan")
    parser.add_argument(
        "--attempt",
        metavar="N",
        type=int,
        help="the attempt that failed, 1..max_retries, whose check result feeds the retry "
        "(retry template)",
    )
    parser.add_argument(
        "--check",
        metavar="RESULT.json",
        help="output of `dispatch-kit check PLAN --format json` (retry template)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="retry: print the worker prompt followed by the addendum, the whole retry dispatch",
    )
    parser.add_argument(
        "--timed-out",
        action="store_true",
        help="retry: the previous worker ran out of time (the prompt asks for a simpler scope)",
    )
    parser.add_argument(
        "--worker-outcome",
        metavar="TEXT",
        help="retry: how the previous worker ended, e.g. 'killed by signal 9'",
    )
    parser.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dispatch_kit.errors import InputError
    from dispatch_kit.render import templates as render

    render.template_path(args.template)  # unknown names fail before any file is read
    _check_flags(args)
    variables: dict = {}
    if args.plan:
        variables = _plan_vars(args)
    if args.vars:
        variables.update(render.load_vars(args.vars, args.template))
    try:
        text = render.render_template(args.template, variables)
        if args.full:
            text = render.render_template("worker", variables) + "\n" + text
    except InputError as exc:
        if args.vars and exc.message.startswith("undefined variable"):
            exc.message += f" (set it in {args.vars})"
        raise
    if args.output:
        from dispatch_kit.cli._common import write_output

        write_output(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _check_flags(args: argparse.Namespace) -> None:
    """Reject flag combinations that would silently ignore something the user asked for."""
    from dispatch_kit.errors import InputError

    def bad(message: str) -> InputError:
        return InputError(message, path="render")

    if args.plan and args.template not in PLAN_TEMPLATES:
        raise bad(
            f"--plan works with the worker and retry templates, not '{args.template}'; "
            "give its variables with --vars FILE"
        )
    if not args.plan and not args.vars:
        raise bad("give the variables: --vars FILE, or --plan PLAN --task ID for worker and retry")
    if args.plan and not args.task:
        raise bad("--plan needs --task ID")
    if args.task and not args.plan:
        raise bad("--task needs --plan PLAN")
    retry_flags = args.attempt is not None or args.check is not None
    if args.template == "retry" and args.plan and (args.attempt is None or args.check is None):
        raise bad("render retry --plan needs --attempt N and --check RESULT.json")
    if args.template != "retry" and (retry_flags or args.full):
        raise bad("--attempt, --check and --full belong to the retry template")
    if (retry_flags or args.full) and not args.plan:
        raise bad("--attempt, --check and --full need --plan PLAN --task ID")


def _plan_vars(args: argparse.Namespace) -> dict:
    from dispatch_kit.errors import InputError
    from dispatch_kit.plan.load import load_plan
    from dispatch_kit.render import templates as render

    plan = load_plan(args.plan)
    try:
        task = plan.task(args.task)
    except KeyError:
        ids = ", ".join(t.id for t in plan.tasks)
        raise InputError(
            f"no task '{args.task}' in the plan; its tasks: {ids}", path=args.plan
        ) from None
    if args.template == "worker":
        return render.worker_vars(plan, task)
    document = render.load_check(args.check)
    entry = render.select_task_check(document, task.id, args.check)
    try:
        outcome = args.worker_outcome
        if args.timed_out and not outcome:
            outcome = f"The previous worker was stopped at its time limit ({task.timeout:g} s)."
        return render.retry_vars(
            plan, task, args.attempt, entry, worker_outcome=outcome, worker_timed_out=args.timed_out
        )
    except InputError as exc:
        if exc.path is None:  # a defect of the check result, not of the plan
            exc.path = args.check
        raise
