"""A resident forgotten at a gate, forgotten in the office's pulled copy too (``kiosk fleet
forget``, ``office.people``): the gate cannot reach the copy, which kept the clear names a
``logs:personal`` pull brought until the office's retention."""

from __future__ import annotations

import json

import pytest
from office_retention_support import NAME, gate_clock, gate_with_history, snapshot
from test_office_retention import _pulled, _rows, _system_clock_at

from checkpoint.cli import main
from kiosk.people import seq_ranges
from kiosk.record import PURGED_HOUSEHOLD
from office.people import parse_seqs

pytest_plugins = ("pgfixture",)
CARD = f"{1:012x}"  # pgfixture.add_events' second passage's pass, old and recent


@pytest.fixture
def office(tmp_path, monkeypatch):
    clock = gate_clock()
    gate = gate_with_history(tmp_path, clock)
    copy = _pulled(tmp_path, gate)
    _system_clock_at(monkeypatch, clock.now())
    yield tmp_path / "gate-1.db", copy
    gate.store.close()


def test_the_office_empties_the_events_the_gate_forgot_and_still_verifies(office, capsys):
    gate_db, copy = office
    before = _rows(copy)
    assert main(["person", "forget", "--pass-id", CARD, "--yes", "--db", str(gate_db)]) == 0
    said = capsys.readouterr()
    seqs = json.loads(said.out)["events_seqs"]
    assert seqs == "2,9"  # the old passage and the recent one on that card
    assert f"kiosk fleet forget --kiosk gate-1 --seqs {seqs}" in said.err
    assert main(["fleet", "forget", str(copy), "--kiosk", "gate-1", "--seqs", seqs]) == 0
    assert json.loads(capsys.readouterr().out) == {"kiosk_id": "gate-1", "events_forgotten": 2}
    after = _rows(copy)
    emptied = [r for r in after if r["purged_at"] is not None]
    assert [r["seq"] for r in emptied] == [2, 9]
    assert all((r["pass_id"], r["holder"]) == (None,) * 2 for r in emptied)
    assert all(r["household"] in (None, PURGED_HOUSEHOLD) for r in emptied)
    assert all(r["person"] is None for r in emptied)  # a passage's person has no counts
    assert sum(r["holder"] == NAME for r in after) == 8  # the others' rows untouched
    assert CARD not in json.dumps(after)
    assert snapshot(after) == snapshot(before)  # hashes, digests, seqs never written
    assert main(["verify-log", "--db", str(gate_db), "--against", str(copy)]) == 0
    capsys.readouterr()
    # again: nothing left to empty
    assert main(["fleet", "forget", str(copy), "--kiosk", "gate-1", "--seqs", seqs]) == 0
    assert json.loads(capsys.readouterr().out)["events_forgotten"] == 0


@pytest.mark.parametrize("seqs", ["", "2-", "4-2", "0", "a", "1-2000000"])
def test_seqs_not_as_the_gate_prints_them_are_refused(office, capsys, seqs):
    _, copy = office
    before = _rows(copy)
    assert main(["fleet", "forget", str(copy), "--kiosk", "gate-1", "--seqs", seqs]) == 2
    assert "--seqs" in capsys.readouterr().err
    assert _rows(copy) == before


def test_seq_ranges_read_back():
    seqs = [9, 1, 2, 3, 4, 12, 11]
    assert seq_ranges(seqs) == "1-4,9,11-12"
    assert parse_seqs(seq_ranges(seqs)) == [(1, 4), (9, 9), (11, 12)]
    assert seq_ranges([]) == ""


def test_the_offices_postgresql_empties_the_events_the_gate_forgot(
    tmp_path, pg_dsn, monkeypatch, capsys
):
    from test_office_retention_pg import _central
    from test_office_retention_pg import _rows as pg_rows

    gate, clock = _central(tmp_path, pg_dsn)
    _system_clock_at(monkeypatch, clock.now())
    before = pg_rows(pg_dsn)
    try:
        db = str(tmp_path / "gate-1.db")
        assert main(["person", "forget", "--pass-id", CARD, "--yes", "--db", db]) == 0
        seqs = json.loads(capsys.readouterr().out)["events_seqs"]
        assert main(["fleet", "forget", pg_dsn, "--kiosk", "gate-1", "--seqs", seqs]) == 0
        assert json.loads(capsys.readouterr().out)["events_forgotten"] == 2
        assert main(["verify-log", "--db", db, "--against", pg_dsn]) == 0
    finally:
        gate.store.close()
    after = pg_rows(pg_dsn)
    assert [r["seq"] for r in after if r["purged_at"] is not None] == [2, 9]
    assert CARD not in json.dumps(after, default=str)
    assert snapshot(after) == snapshot(before)


def _last_purge(dsn):
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT value FROM fleet_meta WHERE key = 'retention.last_purge'"
        ).fetchone()
    return None if row is None else row[0]


def test_a_forget_in_the_offices_postgresql_does_not_pose_as_its_last_purge(
    tmp_path, pg_dsn, monkeypatch, capsys
):
    """``fleet_meta`` ``retention.last_purge`` is the office's last purge (docs/fleet.md): a
    forget once wrote itself there, a purge whose cutoff was now."""
    from test_office_retention_pg import _central

    gate, clock = _central(tmp_path, pg_dsn)
    _system_clock_at(monkeypatch, clock.now())
    before = _last_purge(pg_dsn)
    try:
        assert main(["fleet", "forget", pg_dsn, "--kiosk", "gate-1", "--seqs", "2,9"]) == 0
        assert json.loads(capsys.readouterr().out)["events_forgotten"] == 2
    finally:
        gate.store.close()
    assert _last_purge(pg_dsn) == before
