"""Small helpers shared by the subcommand modules (kept import-light)."""

from __future__ import annotations

import argparse


def add_format(
    parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("text", "json")
) -> None:
    parser.add_argument(
        "--format", choices=choices, default=choices[0], help="output format (default: %(default)s)"
    )
