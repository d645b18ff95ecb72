"""``dispatch-kit plan validate|schema``: check a plan file, or print its JSON Schema."""

from __future__ import annotations

import argparse
import sys

from dispatch_kit.cli._common import int_at_least, validated_plan

_at_least_two = int_at_least(2, "a plan has at least 2 tasks; got {value}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="validate a plan file (plan validate PLAN) or print its JSON Schema (plan schema)",
        description="Validate dispatch plans: schema, task count, ids, dependencies and cycles, "
        "vague exit criteria, working directories inside the workspace.",
    )
    actions = parser.add_subparsers(dest="plan_command", metavar="ACTION", required=True)
    validate = actions.add_parser(
        "validate",
        help="check a plan; every problem as file:line:col: message, exit 2",
        description="Check a plan file (YAML or JSON). A good plan prints one OK line and exits "
        "0; otherwise every problem is printed as file:line:col: message and the exit code is 2.",
    )
    validate.add_argument(
        "plan", metavar="PLAN", help="plan file (.yaml, .yml or .json; - for stdin)"
    )
    validate.add_argument(
        "--max-tasks",
        type=_at_least_two,
        default=6,
        metavar="N",
        help="largest number of tasks allowed (default: %(default)s; raise it for unattended runs)",
    )
    validate.set_defaults(func=run_validate)
    schema = actions.add_parser("schema", help="print the plan JSON Schema (draft 2020-12)")
    schema.set_defaults(func=run_schema)


def run_validate(args: argparse.Namespace) -> int:
    from dispatch_kit.errors import EXIT_BAD_INPUT
    from dispatch_kit.plan.load import summary

    plan = validated_plan(args.plan, args.max_tasks)
    if plan is None:
        return EXIT_BAD_INPUT
    print(summary(plan))
    return 0


def run_schema(args: argparse.Namespace) -> int:
    from dispatch_kit.plan.load import schema_text

    sys.stdout.write(schema_text())
    return 0
