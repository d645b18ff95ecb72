"""The workspace-dispatch loop without a model in the middle: ``dispatch-kit run``.

For cron jobs and CI the orchestrator can be a program. The runner takes the
next ready task from the ledger, claims it, renders the worker prompt (plus the
retry addendum on a retry), starts the worker command in the task's folder in
its own process group, stops it at its time limit, checks the exit criteria
with the checker and records the verdict. Everything it knows lives in the
ledger, so a runner killed at any moment can be started again: verified tasks
stay verified, workers it left running are adopted or collected.

``--detach`` is the fire-and-forget executor: claim up to N tasks, start each
worker under a small supervisor (time limit, bounded log, exit status file),
and exit at once; a later run or ``ledger sweep`` collects the results.

The package is split by what each part does: ``options``, ``progress``
(event lines), ``files`` (per-attempt files), ``collect`` (checking an
attempt), ``prompts``, ``session`` (opening the mission) and :class:`Runner`
(``loop``, the event loop), which owns one ``state`` (:class:`RunState`) and
hands it to small collaborators: ``events`` (what the loop sleeps on),
``prepare`` (an attempt's files), ``start`` (claiming and starting workers),
``watch`` (reaping and recording them), ``recovery`` (adopting and sweeping)
and ``detached`` (``--detach``). Every public name stays importable from
``dispatch_kit.runner``.
"""

from __future__ import annotations

from dispatch_kit.runner.collect import Collector, ResolvedPlan, failing_entry, worker_note
from dispatch_kit.runner.files import exit_file_for, pipe_path, read_exit_file, runs_dir
from dispatch_kit.runner.loop import Runner
from dispatch_kit.runner.options import (
    LEASE_MARGIN,
    LOG_LIMIT,
    PLACEHOLDERS,
    RECOVER_EVERY,
    RunOptions,
)
from dispatch_kit.runner.progress import Progress, emit_record
from dispatch_kit.runner.prompts import build_prompt, mission_env, worker_command, worker_env
from dispatch_kit.runner.session import install_term_handler, open_mission
from dispatch_kit.runner.start import GATE
from dispatch_kit.runner.state import Running

__all__ = [
    "GATE",
    "LEASE_MARGIN",
    "LOG_LIMIT",
    "PLACEHOLDERS",
    "RECOVER_EVERY",
    "Collector",
    "Progress",
    "ResolvedPlan",
    "RunOptions",
    "Runner",
    "Running",
    "build_prompt",
    "emit_record",
    "exit_file_for",
    "failing_entry",
    "install_term_handler",
    "mission_env",
    "open_mission",
    "pipe_path",
    "read_exit_file",
    "runs_dir",
    "worker_command",
    "worker_env",
    "worker_note",
]
