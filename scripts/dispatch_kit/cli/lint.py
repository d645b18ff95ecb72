"""``dispatch-kit lint``: check dispatch prompts, templates, skills, agents, manifests and plans."""

from __future__ import annotations

import argparse
import sys

from dispatch_kit.cli._common import RawDescriptionHelpFormatter, add_format

FORMATS = ("text", "json", "sarif", "github")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lint",
        help="lint dispatch prompts, templates, skills, agents, manifests and plans",
        description="Lint the prompts orchestrators send to subagents, and the skills, agents, "
        "templates, manifests and plans that produce them, against the dispatch patterns' "
        "rules. Exit 0 when clean, 1 on findings, 2 on bad usage or unreadable input.",
        epilog="examples:\n"
        "  dispatch-kit lint skills agents templates\n"
        "  dispatch-kit render worker --plan plan.yaml --task api | dispatch-kit lint -\n"
        "  dispatch-kit lint prompts/ --select DK1,DK2 --ignore DK603\n"
        "  dispatch-kit lint . --format sarif -o dispatch-kit.sarif --exit-zero\n"
        "  dispatch-kit rule DK101        # what a rule checks, with examples\n"
        "configuration: [tool.dispatch-kit] in pyproject.toml (select, ignore, exclude)\n"
        "suppression:   <!-- dispatch-kit: ignore-next-line DK603 -->, "
        "{# dispatch-kit: ignore-file DK802 #}, # dispatch-kit: ...",
        formatter_class=RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or folders to lint (default: .); - is stdin"
    )
    add_format(parser, FORMATS)
    parser.add_argument(
        "--select",
        action="append",
        metavar="RULES",
        help="comma-separated codes, names or prefixes to run, replacing the configured "
        "selection (e.g. DK1,DK401,hardcoded-model)",
    )
    parser.add_argument(
        "--ignore", action="append", metavar="RULES", help="comma-separated rules not to run"
    )
    parser.add_argument(
        "--exit-zero", action="store_true", help="exit 0 even when there are findings"
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="insert the canonical Stream-safety block into [Execute]/[Plan] prompts that lack it",
    )
    parser.add_argument(
        "--config", metavar="PYPROJECT", help="read [tool.dispatch-kit] from this file"
    )
    parser.add_argument(
        "--force-exclude",
        action="store_true",
        help="apply the exclude patterns to files named on the command line too (pre-commit)",
    )
    parser.add_argument(
        "--stdin-filename", metavar="NAME", help="the name (and so the file kind) of stdin"
    )
    parser.add_argument(
        "--agent", metavar="NAME", help="target agent of the prompt read from stdin"
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary line on stderr")
    parser.set_defaults(func=run)


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for value in values or () for v in value.split(",") if v.strip())


def run(args: argparse.Namespace) -> int:
    from dispatch_kit.errors import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK, InputError
    from dispatch_kit.lint import config, engine, output

    select = _split(args.select)
    conf = config.load(explicit=args.config).with_cli(
        select or None, _split(args.ignore), args.force_exclude
    )
    conf.enabled()  # an unknown selector is bad usage: fail before reading anything
    paths = args.paths or ["."]
    if paths.count("-") > 1:
        raise InputError("stdin (-) can be given only once")
    errors: list[InputError] = []
    fixed: list[tuple[str, str]] = []
    findings = engine.lint_paths(
        paths,
        conf,
        errors,
        fix=args.fix,
        fixed=fixed,
        stdin_name=args.stdin_filename,
        agent=args.agent,
    )
    report = output.render(findings, args.format)
    stdin_fixed = args.fix and "-" in paths
    if args.output:
        from dispatch_kit.cli._common import write_output

        write_output(args.output, report)
    elif stdin_fixed:
        sys.stderr.write(report)  # stdout carries the fixed prompt
    else:
        sys.stdout.write(report)
    if stdin_fixed:
        for display, text in fixed:
            if display == (args.stdin_filename or "-"):
                sys.stdout.write(text)
    for error in errors:
        print(f"{error}", file=sys.stderr)
    if not args.quiet and args.format in ("text", "github"):
        if args.fix:
            count = sum(1 for name, _ in fixed if name != (args.stdin_filename or "-"))
            if count:
                print(f"dispatch-kit lint: fixed {count} file{'s' * (count != 1)}", file=sys.stderr)
        print(output.summary(findings, unreadable=len(errors)), file=sys.stderr)
    if errors:
        return EXIT_BAD_INPUT
    if findings and not args.exit_zero:
        return EXIT_FINDINGS
    return EXIT_OK
