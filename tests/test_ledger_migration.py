"""A ledger written before the storage seam opens after it, and carries on.

``tests/fixtures/ledger-v1.db`` was made by the code of the commit before the seam (its
``Ledger`` run on ``tests/fixtures/ledger-v1.plan.yaml``: a verified, a ready and a
dispatched task), then its paths and host names replaced by neutral ones. Schema
version 1 is today's; a later version adds a step to ``schema.MIGRATIONS`` and this
test keeps proving that the old file still opens.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dispatch_kit.errors import InputError
from dispatch_kit.ledger import SCHEMA_VERSION, Ledger
from dispatch_kit.ledger import schema as ledger_schema
from dispatch_kit.plan.load import load_plan

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def old_ledger(tmp_path) -> Path:
    db = tmp_path / "ledger.db"
    shutil.copy(FIXTURES / "ledger-v1.db", db)
    return db


def test_a_v1_ledger_opens_reads_and_carries_on(old_ledger, tmp_path):
    shutil.copy(FIXTURES / "ledger-v1.plan.yaml", tmp_path / "plan.yaml")
    with Ledger.open(old_ledger) as ledger:
        assert {t.id: t.state for t in ledger.tasks("v1")} == {
            "a": "verified", "b": "ready", "c": "dispatched"}
        # The same plan seen from its new place: nothing redone, paths follow it.
        result = ledger.init_mission(load_plan(tmp_path / "plan.yaml"), mission_id="v1")
        assert result.action == "unchanged"
        assert ledger.mission("v1").workspace == str((tmp_path / "ws").resolve())
        # The old claim's lease ran out long ago: a sweep collects it, once.
        actions = ledger.sweep("v1")
        assert [(a.task_id, a.result.outcome) for a in actions] == [("c", "retry")]
        claim = ledger.claim_next("v1", "new-runner", 60)
        assert claim is not None and claim.task_id == "b"
        assert ledger.record("v1", "b", {"passed": True, "criteria": []}).outcome == "verified"
        kinds = [e["kind"] for e in ledger.events("v1")]
    assert kinds[:5] == ["init", "claimed", "verified", "claimed", "dispatched"]
    assert kinds[5:] == ["retry", "claimed", "verified"]


def test_a_newer_ledger_is_refused_and_an_older_one_is_migrated(old_ledger, monkeypatch):
    import sqlite3

    conn = sqlite3.connect(old_ledger)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                 (str(SCHEMA_VERSION + 1),))
    conn.commit()
    with pytest.raises(InputError, match="cannot read it"):
        Ledger.open(old_ledger)
    # A future version 2 with one step from 1: an old file is upgraded in place when opened.
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    assert ledger_schema.MIGRATIONS == {}  # today's code needs none
    # The one migration path both backends take (schema.needs_migration and migrate).
    monkeypatch.setattr(ledger_schema, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(ledger_schema, "MIGRATIONS",
                        {1: ("ALTER TABLE tasks ADD COLUMN note TEXT",)})
    with Ledger.open(old_ledger) as ledger:
        version = ledger.conn.execute("SELECT value FROM meta").fetchone()[0]
        columns = [r[1] for r in ledger.conn.execute("PRAGMA table_info(tasks)")]
    assert version == "2" and "note" in columns
