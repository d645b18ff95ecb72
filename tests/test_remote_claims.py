"""Claims on a git remote: refs created with an empty lease, so exactly one racer wins.

A real bare repository is the remote; the racers are real ``dispatch-kit remote claim``
processes. Old claims are made by passing the claimer's clock (``now=``), as a claimer
whose claim is an hour old would have pushed it.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest
from conftest import cli_env

from dispatch_kit.errors import InputError
from dispatch_kit.ledger import remote as remote_claims


@pytest.fixture
def remote(tmp_path) -> str:
    path = tmp_path / "claims.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return str(path)


def refs(remote: str) -> dict[str, str]:
    out = subprocess.run(["git", "--git-dir", remote, "for-each-ref",
                          "--format=%(refname) %(committername)", "refs/dispatch/claims/"],
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[0].rsplit("/", 1)[1]: line.split()[1] for line in out.splitlines()}


def test_eight_racers_for_100_items_each_item_has_exactly_one_winner(remote):
    items = [f"issue-{i:03d}" for i in range(100)]
    procs = []
    for n in range(8):
        order = items[:]
        random.Random(n).shuffle(order)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dispatch_kit", "remote", "claim", *order, "--remote", remote,
             "--by", f"executor-{n}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(), text=True))
    winners: dict[str, list[str]] = {}
    lines = 0
    for n, proc in enumerate(procs):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 1) and "Traceback" not in err, err
        for line in out.splitlines():
            winners.setdefault(line.split()[1], []).append(f"executor-{n}")
        lines += len(out.splitlines()) + len(err.splitlines())
        assert all("held by executor-" in line for line in err.splitlines()), err
    assert sorted(winners) == items and all(len(w) == 1 for w in winners.values())
    assert lines == 8 * 100  # every racer heard, for every item, that it won or who holds it
    on_remote = refs(remote)
    assert on_remote == {item: who[0] for item, who in winners.items()}


def test_a_claim_refused_by_a_ref_lock_names_the_winner_once_its_push_lands(remote,
                                                                               monkeypatch):
    """A racer's push is refused with "failed to lock" while the winner's receive-pack holds
    the ref's lock, and its read comes before the winner's ref is visible. The claim is
    pushed again (refused: the ref exists now) and the winner is named, not "someone"."""
    real_push, real_read = remote_claims.Scratch.push, remote_claims.Scratch.read
    pushes: list[list[str]] = []

    def push(self, specs, leases):
        pushes.append(specs)
        if len(pushes) == 1:  # as git reports a lock held by a push still in progress
            return {f"{remote_claims.PREFIX}x": (False, "failed to lock")}
        return real_push(self, specs, leases)

    def read(self, items=None):
        seen = real_read(self, items)
        if len(pushes) == 1:  # the winner's push ends only after this racer looked
            assert remote_claims.claim(remote, ["x"], "alice")[0].won
        return seen

    monkeypatch.setattr(remote_claims.Scratch, "push", push)
    monkeypatch.setattr(remote_claims.Scratch, "read", read)
    (outcome,) = remote_claims.claim(remote, ["x"], "bob")
    assert not outcome.won and outcome.holder is not None
    assert outcome.holder.claimer == "alice"
    assert len(pushes) == 3  # bob's refused one, alice's, bob's second (refused)
    assert refs(remote) == {"x": "alice"}


def test_release_is_the_holders_and_a_second_claim_waits_for_it(remote):
    assert remote_claims.claim(remote, ["x"], "alice")[0].won
    lost = remote_claims.claim(remote, ["x"], "bob")[0]
    assert not lost.won and lost.holder is not None and lost.holder.claimer == "alice"
    with pytest.raises(InputError, match="claimed by alice, not bob"):
        remote_claims.release(remote, "x", claimer="bob")
    assert remote_claims.release(remote, "x", claimer="alice").claimer == "alice"
    assert remote_claims.release(remote, "x") is None
    assert remote_claims.claim(remote, ["x"], "bob")[0].won


def test_sweep_frees_stale_claims_once_keeps_fresh_and_future_ones(remote, tmp_path):
    now = time.time()
    remote_claims.claim(remote, ["old"], "crashed", now=now - 3600)
    remote_claims.claim(remote, ["fresh"], "busy", now=now - 60)
    remote_claims.claim(remote, ["ahead"], "fast-clock", now=now + 900)
    # Two sweepers at once: the stale claim is freed by exactly one of them.
    sweepers = [subprocess.Popen(
        [sys.executable, "-m", "dispatch_kit", "remote", "sweep", "--remote", remote,
         "--stale", "30m", "--skew", "5m"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(), text=True)
        for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in sweepers]
    assert all(p.returncode == 0 for p in sweepers), outputs
    freed = [line for out, _ in outputs for line in out.splitlines() if line.startswith("freed")]
    assert len(freed) == 1 and freed[0].startswith("freed old: claimed by crashed")
    assert "allowed clock skew" in outputs[0][0]
    assert any("kept ahead" in err and "runs ahead" in err for _, err in outputs)
    assert sorted(refs(remote)) == ["ahead", "fresh"]
    with pytest.raises(InputError, match="at least 4 x --skew"):
        remote_claims.sweep(remote, stale=60, skew=300)


def test_bad_items_and_an_unreachable_remote_are_one_line_exit_2(tmp_path, cli):
    bad = cli("remote", "claim", "../x", "--remote", str(tmp_path), "--by", "me")
    assert bad.returncode == 2 and "bad item id" in bad.stderr
    missing = cli("remote", "claim", "x", "--remote", str(tmp_path / "nowhere.git"),
                  "--by", "me")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "git" in missing.stderr or "remote" in missing.stderr


def test_a_claim_freed_between_listing_and_fetch_is_read_as_gone(remote, monkeypatch):
    """Two sweepers at once: the one that lost the race had listed a claim the other then
    deleted, and its fetch of that ref failed ("couldn't find remote ref"). Such a read
    is done again; the freed claim is simply no longer there."""
    remote_claims.claim(remote, ["old", "fresh"], "someone")
    real_git = remote_claims.Scratch.git

    def git(self, *args, **kwargs):
        proc = real_git(self, *args, **kwargs)
        if args[0] == "ls-remote" and "refs/dispatch/claims/old" in proc.stdout:
            subprocess.run(["git", "--git-dir", remote, "update-ref", "-d",
                            "refs/dispatch/claims/old"], check=True)
        return proc

    monkeypatch.setattr(remote_claims.Scratch, "git", git)
    with remote_claims.Scratch(remote) as repo:
        seen = repo.read(["old", "fresh"])
    assert set(seen) == {"fresh"} and seen["fresh"].claimer == "someone"
