"""Contain what criteria and workers start: orphans come back to us and are killed.

Each criterion and worker runs in its own process group, and killing that
group stops everything that stayed in it. A process that starts a new session
(``setsid``, ``os.setpgid(0, 0)``, a daemonising server) leaves the group and,
once its parent exits, is adopted by init: nothing dispatch-kit kills reaches
it. On Linux a process can ask to adopt such orphans itself
(``prctl(PR_SET_CHILD_SUBREAPER)``, since 3.4): every descendant whose parent
dies is reparented to it instead of init, so at the end of a ``check``, a
``run`` or a detached worker's supervisor the processes whose parent is this
one, other than the children it meant to leave running, are exactly what
escaped, and are killed.

Where the call is unavailable (macOS, the BSDs, no ``/proc``) nothing here
does anything: only the process group is killed, and a command that starts a
new session outlives the run. Stdlib only (ctypes on the C library).
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36
_state = {"on": False}
_spared: set[int] = set()


def become_subreaper() -> bool:
    """Adopt this process's orphaned descendants (Linux); False where the kernel cannot."""
    if _state["on"]:
        return True
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        _state["on"] = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    return _state["on"]


def spare(pid: int) -> None:
    """A child started to outlive this process (a detached worker's supervisor): never killed."""
    _spared.add(pid)


def orphans() -> list[int]:
    """Live children of this process that it did not choose to leave running (Linux /proc)."""
    me = os.getpid()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) in _spared:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(me).encode():
            found.append(int(entry))
    return found


def kill_orphans(rounds: int = 100) -> int:
    """Kill (SIGKILL, with their groups) and reap every orphan adopted so far; how many.

    Call it when no child of this process should still run: each killed
    orphan's own children are adopted in turn, hence the rounds. Does nothing
    unless :func:`become_subreaper` succeeded.
    """
    if not _state["on"]:
        return 0
    killed = 0
    for _ in range(rounds):
        found = orphans()
        if not found:
            break
        for pid in found:
            try:
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        for pid in found:
            try:
                os.waitpid(pid, 0)  # reap it: an unreaped zombie would be found again
            except ChildProcessError:
                pass
    return killed
