"""Freeing stale claims: the recovery step after a holder or a worker died.

Without it a crashed executor leaves tasks "in progress" for ever; with it the next run
(or ``ledger sweep`` from cron) gives them back or collects what the worker left.
"""

from __future__ import annotations

from collections.abc import Callable

from dispatch_kit.ledger.claims import Claims
from dispatch_kit.ledger.connection import Db
from dispatch_kit.ledger.queries import Queries
from dispatch_kit.ledger.rows import ClaimRow, SweepAction, iso
from dispatch_kit.ledger.verdicts import Verdicts


class Sweeper:
    """Deciding which claims are stale, and settling them.

    Given the parts it settles claims through (``claims`` releases one never dispatched,
    ``verdicts`` records one that was) and ``stop_group``, the process policy that stops
    a stale worker's process group (the ledger passes :func:`dispatch_kit.procs.groups.kill_group`),
    so the ledger's storage code does not decide how processes are stopped.
    """

    def __init__(self, db: Db, queries: Queries, claims: Claims, verdicts: Verdicts, *,
                 stop_group: Callable[[int], None]) -> None:
        self.db = db
        self.queries = queries
        self.claims = claims
        self.verdicts = verdicts
        self.stop_group = stop_group

    def stale_reason(self, claim: ClaimRow, *, now: float, stale: float | None) -> str | None:
        """Why a claim should be freed, or None while it may still be making progress.

        A lease past its expiry, or a claim held longer than ``stale``, is stale
        whoever holds it: a runner's or supervisor's watchdog has stopped the worker's
        process group by then, even on another host (:mod:`dispatch_kit.procs.watchdog`).
        Otherwise a holder still alive on this host is trusted to settle its own
        claim; without one, a worker pid that is gone (or a holder that died before
        starting the worker) makes the claim stale.
        """
        if now > claim.lease_expires:
            return f"lease of {claim.holder} expired at {iso(claim.lease_expires)}"
        if stale is not None and now - claim.claimed_at > stale:
            return f"held by {claim.holder} for {int(now - claim.claimed_at)}s (over --stale)"
        if claim.holder_alive():
            return None
        if claim.state == "dispatched" and claim.worker_alive() is False:
            return f"worker pid {claim.pid} on {claim.host} is gone"
        if claim.state == "claimed" and claim.holder_alive() is False:
            return f"holder {claim.holder} (pid {claim.holder_pid}) died before dispatching"
        return None

    def sweep(
        self,
        mission_id: str,
        *,
        stale: float | None = None,
        collect: Callable[[ClaimRow, str], tuple[dict, dict]] | None = None,
        skip: Callable[[ClaimRow], bool] | None = None,
        actor: str = "sweep",
        now: float | None = None,
    ) -> list[SweepAction]:
        """Free stale claims. A claim never dispatched goes back to ready for free; a
        dispatched one is collected: ``collect(claim, reason)`` stops a worker that is
        still alive, checks the criteria and returns (check entry, record options)."""
        now = self.db.now(now)
        actions: list[SweepAction] = []
        for claim in self.queries.claims(mission_id):
            if skip is not None and skip(claim):
                continue
            reason = self.stale_reason(claim, now=now, stale=stale)
            if reason is None:
                continue
            if claim.state == "claimed":
                if self.claims.release(mission_id, claim.task_id, reason=reason,
                                       expect_attempt=claim.attempt_id, actor=actor):
                    actions.append(SweepAction(claim.task_id, "released", reason))
                continue
            if claim.worker_alive():
                self.stop_group(claim.pid or 0)
                reason += f"; stopped worker pid {claim.pid}"
            if collect is None:
                entry, opts = {"id": claim.task_id, "passed": False, "criteria": []}, {}
            else:
                entry, opts = collect(claim, reason)
            result = self.verdicts.record(
                mission_id, claim.task_id, entry, note=opts.pop("note", None) or reason,
                expect_attempt=claim.attempt_id, lost=not entry.get("passed"), actor=actor,
                **opts,
            )
            # Only the sweeper whose verdict applied reports it: another one that got there
            # first may have settled the attempt, and a racer even finished the task since.
            if result.outcome in ("verified", "retry", "failed"):
                actions.append(SweepAction(claim.task_id, "collected", reason, result))
        return actions
