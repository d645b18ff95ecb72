"""Atomic claims on a git remote: ``refs/dispatch/claims/<item>``, created by exactly one racer.

Labels and assignees on a git host are last-writer-wins: two executors that both read
``status:ready`` both "win". A ref update is atomic on every git server, and
``git push --force-with-lease=<ref>:`` (an empty expected value) creates the ref only if
it does not exist yet, so exactly one of any number of racers gets it. The ref points at
a commit (with the empty tree) whose message names the claimer and host and whose
committer date is when it claimed; releasing or sweeping deletes the ref with a lease on
that very commit, so a claim released and taken again meanwhile is never deleted by
mistake, and two sweepers free a stale claim once.

A claim's age comes from the claimer's clock (the commit it pushed), not the sweeper's.
The sweep therefore treats a claim as stale only when it is older than
``stale + skew`` by the sweeper's clock, and refuses a ``stale`` shorter than
``SKEW_FACTOR × skew``: with the default skew of five minutes, a claimer whose clock
is up to five minutes ahead or behind is neither swept early nor kept forever.

Every command works in a throwaway bare repository (no checkout, no configuration of
the user's); many items go in one ``git push`` (each ref is updated on its own).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass

from dispatch_kit.errors import InputError
from dispatch_kit.procs.groups import hostname

PREFIX = "refs/dispatch/claims/"
SEEN = "refs/dispatch-seen/"  # where a throwaway repo keeps fetched claims
DEFAULT_SKEW = 300.0
SKEW_FACTOR = 4
FETCH_TRIES = 5  # reads of claims that racers keep freeing between listing and fetch
# Pushes of an item whose claim was refused while no holder could be read: git refuses a
# ref another push holds locked ("failed to lock") before that push has made it visible.
CLAIM_TRIES = 5
_ITEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*")


@dataclass(frozen=True)
class RemoteClaim:
    item: str
    commit: str
    claimer: str
    host: str
    claimed_at: float  # the claimer's clock

    def age(self, now: float) -> float:
        return now - self.claimed_at


@dataclass(frozen=True)
class ClaimOutcome:
    item: str
    won: bool
    holder: RemoteClaim | None = None  # who holds it when not won (None: unknown)


def check_item(item: str) -> str:
    """An item id usable as a ref name (letters, digits, ``._-``, ``/`` between parts)."""
    if (not _ITEM.fullmatch(item) or ".." in item or item.endswith((".lock", "."))
            or len(item) > 200):
        raise InputError(f"bad item id {item!r}: use letters, digits, '.', '_', '-' and '/' "
                         "between parts (it becomes a git ref name)", path="ITEM")
    return item


class Scratch:
    """A throwaway bare repository to build claim commits in and push from."""

    def __init__(self, remote: str) -> None:
        self.remote = remote
        self._dir = tempfile.TemporaryDirectory(prefix="dispatch-claims-")
        self.git_dir = self._dir.name
        self.git("init", "-q", "--bare")

    def close(self) -> None:
        self._dir.cleanup()

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def git(self, *args: str, env: dict[str, str] | None = None, check: bool = True,
            stdin: str = "") -> subprocess.CompletedProcess:
        full = {**os.environ, "GIT_DIR": self.git_dir, "GIT_TERMINAL_PROMPT": "0",
                "LC_ALL": "C", **(env or {})}
        proc = subprocess.run(["git", *args], capture_output=True, text=True, env=full,
                              input=stdin)
        if check and proc.returncode != 0:
            raise InputError(f"git {args[0]} failed: {first_line(proc.stderr)}",
                             path=self.remote)
        return proc

    def claim_commit(self, claimer: str, now: float) -> str:
        """One commit (empty tree) naming ``claimer``, this host and ``now``."""
        tree = self.git("mktree", stdin="").stdout.strip()  # the empty tree
        stamp = f"{int(now)} +0000"
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        message = (f"dispatch claim\n\nclaimer: {claimer}\nhost: {hostname()}\n"
                   f"claimed-at: {when}\n")
        email = f"{re.sub(r'[^A-Za-z0-9._-]', '-', claimer)}@{hostname()}"
        ident = {"GIT_AUTHOR_NAME": claimer, "GIT_AUTHOR_EMAIL": email,
                 "GIT_COMMITTER_NAME": claimer, "GIT_COMMITTER_EMAIL": email,
                 "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        return self.git("commit-tree", tree, "-m", message, env=ident).stdout.strip()

    def push(self, specs: list[str], leases: list[str]) -> dict[str, tuple[bool, str]]:
        """``git push`` of ``specs`` with ``leases``: ref → (accepted, git's summary)."""
        proc = self.git("push", "--porcelain", "--no-verify",
                        *(f"--force-with-lease={lease}" for lease in leases),
                        self.remote, *specs, check=False)
        results: dict[str, tuple[bool, str]] = {}
        for line in proc.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and ":" in parts[1]:
                ref = parts[1].split(":", 1)[1]
                results[ref] = (parts[0].strip() not in ("!",), parts[2])
        if not results and proc.returncode != 0:
            raise InputError(f"cannot push to the remote: {first_line(proc.stderr)}",
                             path=self.remote)
        return results

    def read(self, items: Iterable[str] | None = None) -> dict[str, RemoteClaim]:
        """The claims on the remote now (all, or those of ``items``), with their commits."""
        wanted = None if items is None else list(items)
        if wanted == []:
            return {}
        for _ in range(FETCH_TRIES):
            refs = self._fetch(wanted)
            if refs is not None:
                break
        else:
            raise InputError("git fetch failed: the claims changed under every read "
                             f"({FETCH_TRIES} tries)", path=self.remote)
        if not refs:
            return {}
        out: dict[str, RemoteClaim] = {}
        shown = self.git("show", "-s", "--format=%H%x00%ct%x00%B%x01",
                         *(f"{SEEN}{item}" for item in refs)).stdout
        by_sha = {}
        for block in shown.split("\x01"):
            block = block.strip("\n")
            if not block:
                continue
            sha, ct, body = block.split("\x00", 2)
            fields = dict(re.findall(r"^(claimer|host): (.*)$", body, re.M))
            by_sha[sha] = (int(ct), fields.get("claimer", "?"), fields.get("host", "?"))
        for item, sha in refs.items():
            if sha in by_sha:
                ct, claimer, host = by_sha[sha]
                out[item] = RemoteClaim(item, sha, claimer, host, float(ct))
        return out

    def _fetch(self, items: list[str] | None) -> dict[str, str] | None:
        """Fetch the claims (all, or those of ``items``) into :data:`SEEN`: item → commit.

        All claims come in one wildcard fetch, so a claim released or swept meanwhile is
        simply not there. Named items are listed first, and a claim freed between the
        listing and the fetch fails the fetch: None then, and the caller reads again.
        """
        if items is None:
            self.git("fetch", "-q", "--no-tags", self.remote, f"+{PREFIX}*:{SEEN}*")
            listing = self.git("for-each-ref", "--format=%(objectname)%09%(refname)",
                               SEEN).stdout.splitlines()
            prefix = SEEN
        else:
            listing = self.git("ls-remote", self.remote,
                               *(PREFIX + i for i in items)).stdout.splitlines()
            prefix = PREFIX
        refs = {}
        for line in listing:
            sha, _, ref = line.partition("\t")
            if ref.startswith(prefix):
                refs[ref[len(prefix):]] = sha
        if items is None or not refs:
            return refs
        proc = self.git("fetch", "-q", "--no-tags", self.remote,
                        *(f"+{PREFIX}{item}:{SEEN}{item}" for item in refs), check=False)
        if proc.returncode == 0:
            return refs
        if "couldn't find remote ref" in proc.stderr:
            return None
        raise InputError(f"git fetch failed: {first_line(proc.stderr)}", path=self.remote)


def first_line(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def claim(remote: str, items: list[str], claimer: str, *,
          now: float | None = None) -> list[ClaimOutcome]:
    """Try to create each item's claim ref; exactly one racer per item wins."""
    items = [check_item(i) for i in dict.fromkeys(items)]
    now = time.time() if now is None else now
    won: set[str] = set()
    holders: dict[str, RemoteClaim] = {}
    with Scratch(remote) as repo:
        commit = repo.claim_commit(claimer, now)
        todo = items
        for _ in range(CLAIM_TRIES):
            results = repo.push([f"{commit}:{PREFIX}{i}" for i in todo],
                                [f"{PREFIX}{i}:" for i in todo])
            lost = [i for i in todo if not results.get(PREFIX + i, (False, ""))[0]]
            won.update(i for i in todo if i not in lost)
            holders.update(repo.read(lost) if lost else {})
            # Refused, yet nobody holds it: the winner's push still held git's lock on the
            # ref (its claim shows once that push ends), or the claim was freed since. Push
            # again: refused then means a holder to name, accepted means it was free.
            todo = [i for i in lost if i not in holders]
            if not todo:
                break
    return [ClaimOutcome(i, i in won, holders.get(i)) for i in items]


def release(remote: str, item: str, *, claimer: str | None = None) -> RemoteClaim | None:
    """Delete ``item``'s claim (only ``claimer``'s when given); the claim released, or None."""
    check_item(item)
    with Scratch(remote) as repo:
        current = repo.read([item]).get(item)
        if current is None:
            return None
        if claimer is not None and current.claimer != claimer:
            raise InputError(f"item {item!r} is claimed by {current.claimer}, not {claimer}",
                             path=remote)
        result = repo.push([f":{PREFIX}{item}"], [f"{PREFIX}{item}:{current.commit}"])
    return current if result.get(PREFIX + item, (False, ""))[0] else None


@dataclass(frozen=True)
class SweepResult:
    item: str
    claim: RemoteClaim
    action: str  # freed | kept | ahead (its clock runs ahead: kept, reported) | lost-race
    age: float


def sweep(remote: str, *, stale: float, skew: float = DEFAULT_SKEW,
          now: float | None = None) -> list[SweepResult]:
    """Free claims older than ``stale + skew`` by this clock; each freed once, by one sweeper."""
    if stale < SKEW_FACTOR * skew:
        raise InputError(f"must be at least {SKEW_FACTOR} x --skew ({int(skew)}s), so "
                         "that a claimer's clock error cannot free a live claim; raise --stale "
                         "or lower --skew", path="--stale")
    now = time.time() if now is None else now
    with Scratch(remote) as repo:
        claims = repo.read()
        out: list[SweepResult] = []
        doomed = []
        for item, held in sorted(claims.items()):
            age = held.age(now)
            if age > stale + skew:
                doomed.append(held)
            else:
                action = "ahead" if age < -skew else "kept"
                out.append(SweepResult(item, held, action, age))
        if doomed:
            results = repo.push([f":{PREFIX}{c.item}" for c in doomed],
                                [f"{PREFIX}{c.item}:{c.commit}" for c in doomed])
            for held in doomed:
                won = results.get(PREFIX + held.item, (False, ""))[0]
                out.append(SweepResult(held.item, held, "freed" if won else "lost-race",
                                       held.age(now)))
    return sorted(out, key=lambda r: r.item)


def listing(remote: str) -> list[RemoteClaim]:
    with Scratch(remote) as repo:
        return sorted(repo.read().values(), key=lambda c: c.item)
