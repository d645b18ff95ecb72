"""``dispatch-kit demo``: run the bundled example mission through the toolkit, with real output."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="walk the bundled example mission through the toolkit, step by step",
        description="Copy the bundled example mission into DIR and run each step of the "
        "toolkit on it, printing the commands and their output. The repository is "
        "never modified; DIR is replaced on the next run.",
    )
    parser.add_argument(
        "--out", metavar="DIR", default="demo-out", help="output folder (default: %(default)s)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dispatch_kit import demo

    return demo.run(Path(args.out))
