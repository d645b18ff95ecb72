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
    parser.add_argument(
        "--root",
        metavar="DIR",
        default=None,
        help="the pack's folder, holding plugin.json (default: the current folder, or, when "
        "it has none and this copy runs from a checkout or plugin folder, that folder)",
    )
    parser.set_defaults(func=run)


def pack_folder(given: str | None) -> Path:
    """The folder to derive manifests in: the one given, else the current one.

    A checkout or plugin folder running its own copy keeps its old default (the
    pack it runs from) when the current folder holds no plugin.json; an
    installed wheel has no pack of its own to fall back on. A folder that is
    not a pack is one plain line, not a missing-file error deep inside it.
    """
    from dispatch_kit import packroot
    from dispatch_kit.errors import InputError

    if given is not None:
        root = Path(given)
    elif (Path.cwd() / "plugin.json").exists():
        root = Path.cwd()
    else:
        try:
            root = Path.cwd() if packroot.is_bundled() else packroot.pack_root()
        except InputError:  # no pack of its own at all: the current folder is all there is
            root = Path.cwd()
    if not root.is_dir():
        raise InputError("no such folder; pass the pack's folder with --root", path=str(root))
    if not (root / "plugin.json").exists():  # a folder by that name: the reader says so
        raise InputError(
            "not a plugin pack (no plugin.json); run in the pack's folder or pass --root DIR",
            path=str(root),
        )
    return root


def run(args: argparse.Namespace) -> int:
    from dispatch_kit.harness import manifests

    root = pack_folder(args.root)
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
