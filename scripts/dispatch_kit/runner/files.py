"""Where a run keeps each attempt's prompt, log, output pipe and exit status.

The names are derived, never stored elsewhere, so a later run or a sweep finds the files
of an attempt it did not start from the log path the ledger recorded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def runs_dir(ledger_path: Path | None, mission: str, workspace: str | Path = ".") -> Path:
    """Where prompts and logs go: ``runs/MISSION/TASK.attempt-N.{prompt.md,log}`` beside the
    ledger (one flat folder: every file costs the filesystem less than a folder per task).
    A ledger on a server has no folder: then ``.dispatch/`` of the plan's workspace."""
    folder = ledger_path.parent if ledger_path is not None else Path(workspace) / ".dispatch"
    return folder / "runs" / mission


def exit_file_for(log_path: str | Path) -> Path:
    return Path(log_path).with_suffix(".exit.json")


def lock_file_for(log_path: str | Path) -> Path:
    """The file a detached worker holds locked (flock) for as long as it, or anything it
    started that kept the descriptor, is alive: liveness that does not depend on its
    supervisor."""
    return Path(log_path).with_suffix(".lock")


def worker_file_for(log_path: str | Path) -> Path:
    """Where a supervisor records its worker's pid and start time (``{"pid", "start"}``)."""
    return Path(log_path).with_suffix(".worker.json")


def pipe_path(log_path: str | Path, holder_pid: int) -> Path:
    """The named pipe a worker writes its output to, named after the runner reading it (so
    two runners racing for one task never share a pipe; an adopter renames it to its pid)."""
    return Path(log_path).with_suffix(f".{holder_pid}.pipe")


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8), replacing what was there.

    ``Path.write_text`` without its text-file layers: one open, the writes and a close,
    for the prompt written on every start.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def read_exit_file(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
