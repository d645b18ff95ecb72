"""``dispatch-kit manifests``: derive .claude-plugin/*.json from the root plugin.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "manifests",
        help="generate .claude-plugin manifests from plugin.json (--check: fail on drift)",
        description="Generate .claude-plugin/plugin.json and marketplace.json from the root "
        "plugin.json, the single source of the pack's metadata.",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on drift")
    parser.add_argument("--root", default=None, help="pack root (default: this pack)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dispatch_kit import manifests
    from dispatch_kit.packroot import pack_root

    root = Path(args.root) if args.root else pack_root()
    if args.check:
        drifts = manifests.check(root)
        for drift in drifts:
            print(f"manifests: {drift}", file=sys.stderr)
        if drifts:
            print("manifests: run `dispatch-kit manifests` to regenerate", file=sys.stderr)
            return 1
        print("manifests: in sync with plugin.json")
        return 0
    changed = manifests.write(root)
    for rel in changed:
        print(f"manifests: wrote {rel}")
    if not changed:
        print("manifests: already in sync")
    return 0
