"""One of many processes racing for one mission's tasks (tests/test_ledger_postgres.py).

Usage: ``ledger_racer.py URL MISSION HOLDER LEASE [--hold]``. It claims the next ready
task (``claim_next``: racers pass over each other's locked rows), does the trivial work
of recording it verified, and prints ``TASK OUTCOME`` per task. When nothing is ready it
sweeps (stale claims are freed by whichever racer gets there first, once) and waits for
the ledger's next event, until the mission is finished. With ``--hold`` it claims one
task, prints ``claimed TASK`` and then waits for ever: a runner killed mid-attempt. No
pid is recorded, so only the lease can free the claim, as on another machine.
"""

from __future__ import annotations

import sys

from dispatch_kit.ledger import Ledger, Worker

PASS = {"passed": True, "criteria": []}


def main(argv: list[str]) -> int:
    url, mission, holder, lease = argv[0], argv[1], argv[2], float(argv[3])
    hold = "--hold" in argv
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
            result = ledger.record(mission, claim.task_id, PASS,
                                   expect_attempt=claim.attempt_id, actor=holder)
            print(f"{claim.task_id} {result.outcome}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
