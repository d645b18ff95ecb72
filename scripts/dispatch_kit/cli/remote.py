"""``dispatch-kit remote``: atomic claims on a git remote, for teams whose queue is their tracker.

``claim`` creates ``refs/dispatch/claims/<item>`` on the remote only if nobody has
(exactly one racer wins); ``release`` gives a claim back; ``sweep --stale`` frees
claims older than a threshold, allowing for clock skew between claimers; ``list``
shows who holds what. See ``dispatch_kit.ledger.remote`` for how.
"""

from __future__ import annotations

import argparse
import sys

from dispatch_kit.cli._common import usage


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "remote",
        help="atomic claims on a git remote: claim, release, sweep, list",
        description="Claim work items atomically as refs refs/dispatch/claims/ITEM on a git "
        "remote (any URL git can push to): of any number of executors racing for an item, "
        "exactly one gets it. Claim there first; then change the issue's label as a mirror "
        "for humans.",
    )
    sub = parser.add_subparsers(dest="remote_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: usage(parser))

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--remote", required=True, metavar="URL",
                       help="the git remote (URL or path) holding the claims")

    p = sub.add_parser("claim", help="claim items; exit 1 naming the holder of any held")
    p.add_argument("items", nargs="+", metavar="ITEM")
    common(p)
    p.add_argument("--by", required=True, metavar="NAME", help="who claims (recorded)")
    p.set_defaults(func=_claim)

    p = sub.add_parser("release", help="give a claim back")
    p.add_argument("item", metavar="ITEM")
    common(p)
    p.add_argument("--by", metavar="NAME", help="only if NAME holds it")
    p.set_defaults(func=_release)

    p = sub.add_parser("sweep", help="free claims older than --stale (plus --skew)")
    common(p)
    p.add_argument("--stale", required=True, metavar="DURATION",
                   help="free claims held longer than this (at least 4 x --skew)")
    p.add_argument("--skew", default="5m", metavar="DURATION",
                   help="clock error between claimers and this machine to allow for "
                   "(default: %(default)s)")
    p.set_defaults(func=_sweep)

    p = sub.add_parser("list", help="the claims on the remote: item, claimer, host, age")
    common(p)
    p.set_defaults(func=_list)


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if abs(seconds) < 120:
        return f"{seconds}s"
    if abs(seconds) < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _claim(args: argparse.Namespace) -> int:
    from dispatch_kit.ledger import remote as remote_claims

    code = 0
    for outcome in remote_claims.claim(args.remote, args.items, args.by):
        if outcome.won:
            print(f"claimed {outcome.item}")
        else:
            code = 1
            held = outcome.holder
            who = f"{held.claimer} on {held.host}" if held else "someone else"
            print(f"remote: {outcome.item}: held by {who}", file=sys.stderr)
    return code


def _release(args: argparse.Namespace) -> int:
    from dispatch_kit.ledger import remote as remote_claims

    released = remote_claims.release(args.remote, args.item, claimer=args.by)
    if released is None:
        print(f"remote: {args.item} is not claimed; nothing released", file=sys.stderr)
        return 1
    print(f"released {args.item} (claimed by {released.claimer})")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    import time

    from dispatch_kit.durations import parse_duration
    from dispatch_kit.ledger import remote as remote_claims

    stale = parse_duration(args.stale, option="--stale", allow_zero=True)
    skew = parse_duration(args.skew, option="--skew", allow_zero=True)
    results = remote_claims.sweep(args.remote, stale=stale, skew=skew, now=time.time())
    print(f"remote: sweep frees claims older than {_age(stale)} + {_age(skew)} allowed clock "
          f"skew by this machine's clock")
    for r in results:
        if r.action == "freed":
            print(f"freed {r.item}: claimed by {r.claim.claimer} on {r.claim.host} "
                  f"{_age(r.age)} ago")
        elif r.action == "ahead":
            print(f"kept {r.item}: claimed by {r.claim.claimer} on {r.claim.host} "
                  f"{_age(-r.age)} in the future (its clock runs ahead)", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    import time

    from dispatch_kit.ledger import remote as remote_claims

    now = time.time()
    for held in remote_claims.listing(args.remote):
        print(f"{held.item}\t{held.claimer}\t{held.host}\t{_age(held.age(now))}")
    return 0
