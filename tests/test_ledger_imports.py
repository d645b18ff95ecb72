"""psycopg loads only for a PostgreSQL ledger: the hooks, the linter and SQLite never pay.

Importing psycopg costs ~120 ms, dozens of times a session hook's whole budget. So the
session guards never write to a PostgreSQL ledger themselves: they append to a local
journal (``.dispatch/journal.db``) that the ledger imports later
(tests/test_journal_postgres.py), and they never import the driver.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import cli_env, run_cli
from test_session_guards import PLAN, pre, prompt_for


def imported(*args: str, cwd: Path, stdin: bytes | None = None, **env: str) -> tuple[set, str]:
    result = run_cli(*args, cwd=cwd, input=stdin, env=cli_env(PYTHONPROFILEIMPORTTIME="1", **env))
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", result.stderr, re.M))
    return {m.split(".")[0] for m in modules}, result.stdout


def test_lint_and_a_sqlite_ledger_never_import_psycopg(tmp_path):
    (tmp_path / "p.md").write_text("[Execute] Fix the parser.\n", encoding="utf-8")
    modules, _ = imported("lint", "p.md", cwd=tmp_path)
    assert "dispatch_kit" in modules and "psycopg" not in modules
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.format(workspace="."), encoding="utf-8")
    assert run_cli("ledger", "init", "plan.yaml", cwd=tmp_path).returncode == 0
    modules, _ = imported("ledger", "status", cwd=tmp_path)
    assert "sqlite3" in modules and "psycopg" not in modules


def test_hooks_journal_for_a_postgres_ledger_without_importing_psycopg(tmp_path, pg_url):
    import json

    project = tmp_path
    (project / "plan.yaml").write_text(PLAN.format(workspace="."), encoding="utf-8")
    env = {"DISPATCH_KIT_LEDGER": pg_url}
    assert run_cli("ledger", "init", "plan.yaml", cwd=project,
                   env=cli_env(**env)).returncode == 0
    prompt = prompt_for(project, "lint")
    event = json.dumps(pre(project, prompt, "call-1")).encode()
    modules, out = imported("hook", "pre-dispatch", cwd=project, stdin=event, **env)
    assert "dispatch_kit" in modules and "psycopg" not in modules
    assert "deny" not in out  # the dispatch goes through
    assert (project / ".dispatch" / "journal.db").is_file()  # recorded there
    import psycopg

    with psycopg.connect(pg_url) as conn:  # and not on the server, until an import
        assert conn.execute("SELECT COUNT(*) FROM agents").fetchone()[0] == 0
