"""One of many processes racing for one mission's tasks (tests/test_ledger_postgres.py).

Usage: ``ledger_racer.py URL MISSION HOLDER LEASE [--hold]``. It claims the next ready
task (``claim_next``: racers pass over each other's locked rows), does the trivial work
of recording it verified, and prints ``TASK OUTCOME`` per task. When nothing is ready it
sweeps (stale claims are freed by whichever racer gets there first, once) and waits for
the ledger's next event, until the mission is finished. With ``--hold`` it claims one
task, prints ``claimed TASK`` and then waits for ever: a runner killed mid-attempt. No
pid is recorded, so only the lease can free the claim, as on another machine. With
``--gate DIR`` it marks its first claim with a file in DIR and waits, its claim held,
until a second racer has marked one too: at least two racers really race, however the
machine schedules them.
"""

from __future__ import annotations

import os
import sys
import time

from dispatch_kit.ledger import Ledger, Worker

PASS = {"passed": True, "criteria": []}


def main(argv: list[str]) -> int:
    url, mission, holder, lease = argv[0], argv[1], argv[2], float(argv[3])
    hold = "--hold" in argv
    gate = argv[argv.index("--gate") + 1] if "--gate" in argv else None
    with Ledger.open(url) as ledger:
        while True:
            claim = ledger.claim_next(mission, holder, lease, worker=Worker(log_path="-"))
            if claim is None:
                if ledger.mission(mission).finished_at is not None:
                    return 0
                for action in ledger.sweep(mission, actor=holder):
                    print(f"swept {action.task_id} {action.action}", flush=True)
                ledger.store.wait_for_events(0.25)
                continue
            if hold:
                print(f"claimed {claim.task_id}", flush=True)
                sys.stdin.read()  # until killed
                return 0
            if gate is not None:
                pass_gate(gate, holder)
                gate = None
            result = ledger.record(mission, claim.task_id, PASS,
                                   expect_attempt=claim.attempt_id, actor=holder)
            print(f"{claim.task_id} {result.outcome}", flush=True)


def pass_gate(gate: str, holder: str, guard: float = 120.0) -> None:
    """Mark this racer's first claim, then wait until another racer has marked its own."""
    open(os.path.join(gate, holder), "w").close()
    deadline = time.monotonic() + guard  # a guard only: the others claim in milliseconds
    while len(os.listdir(gate)) < 2:
        if time.monotonic() > deadline:
            raise SystemExit(f"{holder}: no other racer claimed anything in {guard} s")
        time.sleep(0.01)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
