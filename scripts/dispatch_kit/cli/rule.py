"""``dispatch-kit rule``: what a lint rule checks, why, and a bad and a good example."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rule",
        help="explain a lint rule (dispatch-kit rule DK101), or list them all (--list)",
        description="Print the documentation of a lint rule: what it checks, why, what to do, "
        "and a bad and a good example (the same examples the test suite lints).",
    )
    parser.add_argument(
        "rule", nargs="?", metavar="CODE|NAME", help="e.g. DK101 or missing-stream-safety"
    )
    parser.add_argument("--list", action="store_true", help="one line per rule")
    parser.add_argument("--all", action="store_true", help="the documentation of every rule")
    parser.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="output format (default: %(default)s; markdown is docs/rules.md)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from dispatch_kit.errors import InputError
    from dispatch_kit.lint import docs, registry

    if args.list + args.all + bool(args.rule) != 1:
        raise InputError("give one rule code or name, --list or --all")
    if args.list or args.all:
        rules = list(registry.all_rules())
    else:
        rules = [registry.get(args.rule)]
    if args.format == "json":
        out = [
            {
                "code": r.code,
                "name": r.name,
                "severity": r.severity,
                "message": r.message,
                "applies_to": r.applies_to,
                "rationale": " ".join(r.rationale.split()),
                "fixable": r.fixable,
                "bad": {"path": r.bad.path, "text": r.bad.text, "files": dict(r.bad.files)},
                "good": {"path": r.good.path, "text": r.good.text, "files": dict(r.good.files)},
            }
            for r in rules
        ]
        sys.stdout.write(
            json.dumps(out if len(out) != 1 or args.list or args.all else out[0], indent=2) + "\n"
        )
    elif args.list:
        sys.stdout.write(docs.list_text())
    elif args.format == "markdown":
        sys.stdout.write(docs.rules_markdown() if args.all else docs.rule_markdown(rules[0]))
    else:
        sys.stdout.write("\n".join(docs.rule_text(r) for r in rules))
    return 0
