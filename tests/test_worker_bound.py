"""A lease expires only when nothing of the attempt is alive, even after ``kill -9`` of the runner.

On a shared ledger another host judges a claim by its lease alone (a pid there proves
nothing). So a runner killed with -9 must not leave a worker that outlives the lease: its
watchdog (dispatch_kit.procs.watchdog) kills the worker's process group at the time limit plus a
few seconds, before the lease (time limit + 2 minutes) runs out. Here a runner whose worker
would live for ten minutes is killed; its claim is made to look like another host's; a
sweep while the lease runs frees nothing; the worker's group is gone before the lease
expires; then a second runner (another holder, the lease expired by hand rather than by
waiting two minutes) retries the task, once, after the first worker is gone.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli_env
from test_runner import GUARD, small_plan, wait_for

from dispatch_kit.ledger import Ledger
from dispatch_kit.procs.watchdog import GRACE

# Attempt 1 records its process group (the gate shell is the group's leader) and would then
# run for ten minutes, with a child in its group; attempt 2 does the task at once.
WORKER = ('echo $$ > "$DISPATCH_KIT_ORIGIN/pgid.tmp" && '
          'mv "$DISPATCH_KIT_ORIGIN/pgid.tmp" '
          '"$DISPATCH_KIT_ORIGIN/pgid.$DISPATCH_KIT_TASK.$DISPATCH_KIT_ATTEMPT"; '
          'if [ "$DISPATCH_KIT_TASK.$DISPATCH_KIT_ATTEMPT" = slow.1 ]; then '
          'sleep 600 & sleep 600; fi; : > done.txt')
TIMEOUT = 2.0


def group_alive(pgid: int) -> bool:
    """Whether any process that is not a zombie is in process group ``pgid`` (Linux)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_bytes()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2:].split()
        if fields[2] == str(pgid).encode() and fields[0] not in (b"Z", b"X"):
            return True
    return False


def sql(db: str, statement: str) -> None:
    if db.startswith("postgresql:"):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(statement)
    else:
        with sqlite3.connect(db) as conn:
            conn.execute(statement)
        conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "ledger.db")
    pytest.importorskip("psycopg")
    return request.getfixturevalue("pg_url")


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="reads process groups in /proc")
def test_a_runner_killed_with_9_leaves_no_worker_alive_past_its_lease(tmp_path, db):
    plan = small_plan(tmp_path, [{"id": "slow"}, {"id": "then", "depends_on": ["slow"]}],
                      retries=1)
    env = cli_env()
    argv = [sys.executable, "-m", "dispatch_kit", "run", str(plan), "--db", db,
            "--worker", WORKER, "--timeout", f"{TIMEOUT:g}s", "--quiet"]
    first = subprocess.Popen([*argv, "--by", "host-a"], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        pid_file = tmp_path / "pgid.slow.1"
        pgid = int(wait_for(lambda: first.poll() is not None or (
            pid_file.exists() and pid_file.read_text().strip())))
        assert first.poll() is None, first.communicate()[1]
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=GUARD)
    killed_at = time.monotonic()
    assert group_alive(pgid)  # the worker outlived its runner (a later runner may adopt it)

    # From now on the claim is another host's: its pid proves nothing, only its lease counts.
    sql(db, "UPDATE claims SET host = 'another-host'")
    with Ledger.open(db) as ledger:
        (claim,) = ledger.claims("plan")
    assert claim.holder == "host-a" and claim.state == "dispatched"
    swept = subprocess.run([sys.executable, "-m", "dispatch_kit", "ledger", "sweep", "--db", db],
                           env=env, capture_output=True, text=True, timeout=GUARD)
    assert swept.returncode == 0, swept.stderr
    assert "slow" not in swept.stdout  # the lease runs: nobody may take the task yet

    # The watchdog stops the whole group by the time limit (+ GRACE), long before the lease.
    wait_for(lambda: not group_alive(pgid))
    gone_after = time.monotonic() - killed_at
    with Ledger.open(db) as ledger:
        assert ledger.store.now() < claim.lease_expires
        assert ledger.claims("plan")[0].attempt_id == claim.attempt_id  # still not retried
    assert gone_after < TIMEOUT + GRACE + 30  # (a generous guard on a busy machine)

    # Another host's runner, once the lease is over (expired here rather than waited for).
    sql(db, "UPDATE claims SET lease_expires = lease_expires - 100000")
    second = subprocess.run([*argv, "--by", "host-b", "--format", "json"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=GUARD)
    assert second.returncode == 0, second.stderr
    tasks = {t["id"]: t for t in json.loads(second.stdout)["tasks"]}
    assert tasks["slow"]["attempts"] == 2 and tasks["then"]["state"] == "verified"
    assert (tmp_path / "pgid.slow.2").exists()
    with Ledger.open(db) as ledger:
        claims = [(e["actor"], e["attempt"]) for e in ledger.events("plan", task_id="slow")
                  if e["kind"] == "claimed"]
    assert claims == [("host-a", 1), ("host-b", 2)]


OWNER = """
import subprocess, sys, threading
from dispatch_kit.procs.groups import pid_start
from dispatch_kit.procs.watchdog import Watchdog
if sys.argv[1] == "threaded":
    threading.Thread(target=threading.Event().wait, daemon=True).start()
w = subprocess.Popen(["sh", "-c", "sleep 600 & sleep 600"], start_new_session=True)
dog = Watchdog()
dog.watch(w.pid, pid_start(w.pid), 1.0)
print(w.pid, dog.pid, flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("mode", ["single", "threaded"])
def test_the_watchdog_outlives_its_owner_and_kills_the_group_at_the_deadline(mode):
    """The mechanism alone: an owner killed with -9 right after ``watch``. An owner that
    runs threads gets a new process rather than a fork of itself."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER, mode], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=cli_env())
    assert owner.stdout is not None
    worker, dog = (int(n) for n in owner.stdout.readline().split())
    # (Read once exec has set it: a process just started may show an empty one.)
    cmdline = wait_for(lambda: Path(f"/proc/{dog}/cmdline").read_bytes())
    assert (b"\0-I\0" in cmdline) == (mode == "threaded")  # spawned: python -I -c BOOT
    owner.kill()
    owner.communicate(timeout=GUARD)
    wait_for(lambda: not group_alive(worker))  # nobody else would stop 'sleep 600'
    wait_for(lambda: not group_alive(dog))  # and it leaves once nothing is left to watch


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="reads process groups in /proc")
def test_a_detached_worker_whose_supervisor_is_killed_with_9_ends_by_its_time_limit(tmp_path):
    """``run --detach``: the supervisor enforces the time limit; killed with -9, it cannot,
    and its watchdog does (the lease of a detached claim is never renewed)."""
    plan = small_plan(tmp_path, [{"id": "slow"}, {"id": "then", "depends_on": ["slow"]}])
    started = subprocess.run(
        [sys.executable, "-m", "dispatch_kit", "run", str(plan), "--db",
         str(tmp_path / "ledger.db"), "--worker", WORKER, "--timeout", "5s", "--detach"],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=GUARD)
    assert started.returncode == 0, started.stderr
    words = started.stdout.split()
    supervisor, log = int(words[words.index("pid") + 1]), Path(words[words.index("log") + 1])
    pid_file = tmp_path / "pgid.slow.1"
    pgid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip()))
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not group_alive(pgid))
    # The supervisor never wrote how the worker ended: it was killed, so the watchdog it
    # had started is what stopped the worker.
    assert not log.with_suffix(".exit.json").exists()
