"""Shared fixtures: run the real CLI as a user would, and find external tools.

Tests drive ``dispatch-kit`` as a subprocess so they see what users see: the
exit code, stdout and stderr, and no traceback.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

# The real-CLI session fixtures (claude, plugin_data, home, project) for every test file, and
# the PostgreSQL server the ledger's PostgreSQL tests share (postgres_cluster, pg_url).
pytest_plugins = ["claude_cli", "pg_server"]

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
EXAMPLES = ROOT / "examples"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SCRIPTS) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


# Where users run the CLI from. The dev and CI machines set PYTHONDONTWRITEBYTECODE=1, most
# users do not, and cron keeps almost nothing (no LANG, no HOME): a stale bytecode cache once
# failed a correct task in the last two only, so the end-to-end tests run in all three.
ENVIRONMENTS = ("as today", "bytecode written", "cron-like")


def env_for(kind: str, **extra: str) -> dict[str, str]:
    """The CLI's environment in one of :data:`ENVIRONMENTS`, plus ``extra``.

    cron-like is ``env -i PATH=/usr/bin:/bin`` with only PYTHONPATH added to find the
    package; where /usr/bin has no python3 the folder of this Python is appended, because
    the example's criteria call ``python3`` by name.
    """
    if kind == "as today":
        return cli_env(**extra)
    if kind == "bytecode written":
        env = cli_env(**extra)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env
    assert kind == "cron-like", kind
    path = "/usr/bin:/bin"
    if not any(os.access(f"{folder}/python3", os.X_OK) for folder in path.split(":")):
        path += os.pathsep + str(Path(sys.executable).parent)
    return {"PATH": path, "PYTHONPATH": str(SCRIPTS), **extra}


def run_cli(
    *args: str,
    input: str | bytes | None = None,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Result:
    """Run ``python -m dispatch_kit ARGS`` and capture what a user would see."""
    return run_command([sys.executable, "-m", "dispatch_kit", *args], input=input, cwd=cwd,
                       env=env or cli_env(), timeout=timeout)


def run_command(
    argv: list[str],
    *,
    env: dict[str, str],
    input: str | bytes | None = None,
    cwd: Path | str | None = None,
    timeout: float = 120,
) -> Result:
    """Run a dispatch-kit command to its end; whatever it prints, never a traceback."""
    proc = subprocess.run(
        argv,
        input=input.encode() if isinstance(input, str) else input,
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )
    result = Result(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def cli():
    return run_cli


def require_tool(name: str) -> str:
    """Path of an external tool; skipped locally when absent, a failure under CI."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed; `make test` installs it")
    pytest.skip(f"{name} not installed (run `make test` to set up)")


@contextmanager
def hard_limit(seconds: float, error: type[BaseException] = TimeoutError):
    """Raise ``error`` in this (main) thread after ``seconds``: a bound on a hang, never a
    wait. The regex engine and Python code both see the signal between steps."""

    def expire(signum, frame):
        raise error(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timed_lint(prompt: str, folder: Path, limit: float) -> float:
    """Seconds to lint ``prompt`` as the pre-dispatch hook does, failing past ``limit``."""
    import time

    from dispatch_kit.lint import config, engine

    conf = config.load(start=str(folder))
    start = time.monotonic()
    with hard_limit(limit):
        engine.lint_text(prompt, "dispatch-prompt", conf, agent="dispatch-worker",
                         default_kind="dispatch", base_dir=str(folder))
    return time.monotonic() - start
