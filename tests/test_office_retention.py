"""The office's retention on a pulled SQLite copy (``kiosk fleet purge FILE``,
``office.retention``): a ``logs:personal`` pull kept clear names, households, pass ids and
plates for ever."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import timedelta

import pytest
from office_retention_support import (
    DRIVER,
    NAME,
    PLATE,
    gate_clock,
    gate_with_history,
    snapshot,
)
from pgfixture import add_events

from checkpoint.cli import main
from kiosk.clock import FakeClock
from kiosk.record import PURGED_HOUSEHOLD
from office.pull import SqliteTarget

pytest_plugins = ("pgfixture",)


def _system_clock_at(monkeypatch, when, *, synced=True):
    """The office's system clock (``kiosk fleet purge``'s), as a FakeClock at ``when``."""
    from drivers import clocksync

    monkeypatch.setattr(
        clocksync, "system_clock", lambda *a, **kw: FakeClock(start=when, is_synced=synced)
    )


def _pulled(tmp_path, gate):
    """A ``logs:personal`` pull of the gate's whole log into a SQLite copy (clear fields)."""
    copy = tmp_path / "office.db"
    target = SqliteTarget(copy)
    target.write_page("http://gate-1", "gate-1", gate.store.events(limit=1000))
    target.close()
    return copy


def _rows(copy):
    conn = sqlite3.connect(copy)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM pulled_events ORDER BY seq")]
    finally:
        conn.close()


@pytest.fixture
def office(tmp_path, monkeypatch):
    clock = gate_clock()
    gate = gate_with_history(tmp_path, clock)
    copy = _pulled(tmp_path, gate)
    _system_clock_at(monkeypatch, clock.now())
    yield gate, copy, clock
    gate.store.close()


@pytest.mark.slow
def test_a_pulled_copy_past_retention_loses_its_personal_fields(office, capsys):
    gate, copy, _ = office
    before = _rows(copy)
    assert sum(r["holder"] == NAME for r in before) == 10  # 6 old, 4 recent
    assert main(["fleet", "purge", str(copy), "--older-than", "30"]) == 0, capsys.readouterr()
    result = json.loads(capsys.readouterr().out)
    assert result["events_purged"] == 7  # the 6 old passages and the car
    assert result["clock_synced"] is True
    after = _rows(copy)
    old, recent = after[:7], after[7:]
    for row in old:
        assert (row["pass_id"], row["holder"]) == (None, None)
        assert row["household"] in (None, PURGED_HOUSEHOLD)  # emptied; "": it had one
        assert row["purged_at"] is not None
    assert [r["person"] for r in old[:6]] == [None] * 6
    # The car keeps its counts (not personal; the district report counts people from them).
    assert json.loads(old[6]["person"]) == {"feverish": 2, "occupants": 2}
    assert [r["holder"] for r in recent] == [NAME] * 4
    assert all(r["purged_at"] is None for r in recent)
    # Never changed: the chain's fields and seq.
    assert snapshot(after) == snapshot(before)
    # Nor anything else of the row.
    kept = ("ts", "decision", "reasons", "temp_c", "kind", "direction", "pulled_at")
    assert [[r[c] for c in kept] for r in after] == [[r[c] for c in kept] for r in before]


def test_the_purged_values_are_gone_from_the_files_bytes(office, capsys):
    _, copy, _ = office
    assert main(["fleet", "purge", str(copy), "--older-than", "30"]) == 0, capsys.readouterr()
    for path in (copy, copy.with_name(copy.name + "-wal")):
        data = path.read_bytes() if path.exists() else b""
        # The chain's hashes stay (64 hex digits each, prev_hash and hash side by side): the
        # genesis prev_hash's zeros run into a hash that starts with 5 as "000000000005", one
        # run in 16. A pass id (12 hex digits) is never part of such a run.
        data = re.sub(rb"[0-9a-f]{64}", b"", data)
        for value in (DRIVER, PLATE, "000000000005"):  # only in the old rows
            assert value.encode() not in data, (path.name, value)


def test_verify_log_against_the_purged_copy_still_passes(office, capsys):
    gate, copy, _ = office
    db = str(gate.store.path)
    assert main(["verify-log", "--db", db, "--against", str(copy)]) == 0
    assert main(["fleet", "purge", str(copy), "--older-than", "30"]) == 0
    capsys.readouterr()
    assert main(["verify-log", "--db", db, "--against", str(copy)]) == 0, capsys.readouterr().err


def test_a_second_purge_nulls_nothing_twice(office, capsys):
    _, copy, _ = office
    assert main(["fleet", "purge", str(copy), "--older-than", "30"]) == 0
    first = _rows(copy)
    capsys.readouterr()
    assert main(["fleet", "purge", str(copy), "--older-than", "30"]) == 0
    assert json.loads(capsys.readouterr().out)["events_purged"] == 0
    assert _rows(copy) == first


def test_retention_days_come_from_the_collectors_config(office, tmp_path, capsys):
    _, copy, _ = office
    config = tmp_path / "collect.toml"
    config.write_text(
        'retention_days = 60\n[[kiosks]]\nurl = "http://gate-1"\ntoken_env = "GATE1_TOKEN"\n'
    )
    assert main(["fleet", "purge", str(copy), "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["events_purged"] == 0  # 40 days < 60
    config.write_text(config.read_text().replace("60", "30"))
    assert main(["fleet", "purge", str(copy), "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["events_purged"] == 7


def test_an_unsynchronised_office_clock_purges_nothing(office, monkeypatch, capsys):
    _, copy, clock = office
    before = _rows(copy)
    _system_clock_at(monkeypatch, clock.now() + timedelta(days=400), synced=False)
    assert main(["fleet", "purge", str(copy), "--older-than", "30"]) == 1
    err = capsys.readouterr().err
    assert "nothing was purged" in err and "not synchronised" in err
    assert "check `date -u` and run again with --trust-clock" in err  # the gate's words
    assert _rows(copy) == before
    # The operator's explicit word, after checking `date -u`:
    _system_clock_at(monkeypatch, clock.now(), synced=False)
    assert main(["fleet", "purge", str(copy), "--older-than", "30", "--trust-clock"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["events_purged"], result["clock_synced"]) == (7, False)


def test_a_clock_set_back_behind_the_copys_pulls_purges_nothing(office, monkeypatch, capsys):
    _, copy, clock = office
    before = _rows(copy)
    # Before the pulls written into the copy (stamped by the office's clock at the time).
    _system_clock_at(monkeypatch, clock.now() - timedelta(days=3))
    argv = ["fleet", "purge", str(copy), "--older-than", "1", "--trust-clock"]
    assert main(argv) == 1
    assert "set back" in capsys.readouterr().err
    assert _rows(copy) == before


def test_rows_stamped_on_an_unsynchronised_gate_clock_wait_as_on_the_kiosk(
    tmp_path, monkeypatch, capsys
):
    clock = gate_clock()
    gate = gate_with_history(tmp_path, clock)
    # The gate rebooted without network: stamped 1970, not yet dated by a synchronised row.
    wall = clock.now()
    clock.is_synced = False
    clock.set_wall(wall.replace(year=1970))
    add_events(gate, 2)
    copy = _pulled(tmp_path, gate)
    _system_clock_at(monkeypatch, wall)
    assert main(["fleet", "purge", str(copy), "--older-than", "30"]) == 0
    assert json.loads(capsys.readouterr().out)["events_purged"] == 7
    assert [r["holder"] for r in _rows(copy)[-2:]] == [NAME, NAME]
    gate.store.close()


def test_a_big_backlog_goes_in_batches_that_leave_the_file_to_a_pull_between(
    office, monkeypatch, capsys
):
    import office.retention as retention

    gate, copy, clock = office
    monkeypatch.setattr(retention, "BATCH_ROWS", 3)
    writes = []

    def pull_between() -> None:  # a pull committing while the purge is between two batches
        other = sqlite3.connect(copy, timeout=0)  # would fail at once on a held write lock
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE pull_sources SET updated_at = updated_at")
        other.execute("COMMIT")
        other.close()
        writes.append(1)

    monkeypatch.setattr(retention, "_pause", pull_between)
    assert main(["fleet", "purge", str(copy), "--older-than", "30"]) == 0, capsys.readouterr()
    result = json.loads(capsys.readouterr().out)
    assert (result["events_purged"], result["batches"]) == (7, 3)
    assert len(writes) == 2
    assert all(r["holder"] is None for r in _rows(copy)[:7])


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--older-than", "-1"], "--older-than"),
        (["--older-than", "40000"], "--older-than"),
    ],
)
def test_bad_days_are_a_usage_error(office, argv, said, capsys):
    _, copy, _ = office
    before = _rows(copy)
    assert main(["fleet", "purge", str(copy), *argv]) == 2
    assert said in capsys.readouterr().err
    assert _rows(copy) == before


def test_a_missing_file_or_a_kiosks_own_log_is_refused(office, tmp_path, capsys):
    gate, _, _ = office
    missing = tmp_path / "nope.db"
    assert main(["fleet", "purge", str(missing), "--older-than", "30"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not missing.exists()
    own = str(gate.store.path)
    assert main(["fleet", "purge", own, "--older-than", "30"]) == 2
    assert "not a pulled copy" in capsys.readouterr().err
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("hello")
    assert main(["fleet", "purge", str(not_sqlite), "--older-than", "30"]) == 2
    assert not_sqlite.read_text() == "hello"


@pytest.mark.parametrize(
    ("days", "said"),
    [
        (0, "should be at least 1"),
        (3651, "should be at most 3650"),
        ('"30"', "should be an integer"),
    ],
)
def test_collector_retention_days_is_validated(tmp_path, days, said):
    from kiosk.config import ConfigError
    from kiosk.config.fleet import load_collector_config

    config = tmp_path / "collect.toml"
    kiosks = '[[kiosks]]\nurl = "http://gate-1"\ntoken_env = "T"\n'
    config.write_text(f"retention_days = {days}\n{kiosks}")
    with pytest.raises(ConfigError) as err:
        load_collector_config(config)
    assert f"retention_days: {said}" in str(err.value)
    config.write_text(f"retention_days = 90\n{kiosks}")
    assert load_collector_config(config).retention_days == 90


def test_collector_retention_days_defaults_to_the_kiosks(tmp_path):
    from kiosk.config.fleet import CollectorConfig
    from kiosk.config.store import StoreSection

    config = CollectorConfig.model_validate({"kiosks": [{"url": "http://g", "token_env": "T"}]})
    assert config.retention_days == StoreSection().retention_days == 30


def test_a_stopped_purge_ends_after_its_batch_and_the_next_one_finishes(office, monkeypatch):
    import threading

    import office.retention as retention

    _, copy, clock = office
    monkeypatch.setattr(retention, "BATCH_ROWS", 3)
    stop = threading.Event()  # the collector stopping (SIGTERM) while it purges
    target = retention.SqliteCopy(copy)
    try:
        first = retention.purge_copy(
            target, 30, clock.now(), clock_synced=True, stop=stop, between_batches=stop.set
        )
        assert (first.complete, first.events_purged, first.batches) == (False, 6, 2)
        assert [r["purged_at"] is not None for r in _rows(copy)[:8]] == [True] * 6 + [False] * 2
        again = retention.purge_copy(target, 30, clock.now(), clock_synced=True)
    finally:
        target.close()
    assert (again.complete, again.events_purged) == (True, 1)
    assert json.loads(_rows(copy)[6]["person"]) == {"feverish": 2, "occupants": 2}


def _footprint(copy):
    """What the copy holds besides its rows' values: its schema, each table's row count,
    its pages and its WAL (a record written per run would show in one of them)."""
    conn = sqlite3.connect(copy)
    try:
        schema = sorted(conn.execute("SELECT type, name FROM sqlite_master"))
        tables = [name for kind, name in schema if kind == "table"]
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    finally:
        conn.close()
    wal = copy.with_name(copy.name + "-wal")
    return schema, counts, pages, wal.stat().st_size if wal.exists() else 0


def test_idle_hourly_purges_leave_nothing_behind_and_still_show_they_ran(office):
    """The gate's idle hourly purge once wrote an audit row per run, kept for ever (8,760 a
    year). The office's writes nothing when nothing is left to null: two days of idle hours
    leave the copy as the first purge left it, and the status says when the last one ran."""
    from office.retention import OfficeRetention, SqliteCopy

    _, copy, clock = office
    office_clock = FakeClock(start=clock.now())
    retention = OfficeRetention(str(copy), 30, office_clock, opener=SqliteCopy)
    assert retention.run_once().events_purged == 7
    after_first = _footprint(copy)
    rows = _rows(copy)
    for _ in range(48):
        office_clock.advance(3600)
        assert retention.run_once().events_purged == 0
    assert _footprint(copy) == after_first
    assert _rows(copy) == rows
    status = retention.status()
    assert status["last_purge_at"] == office_clock.now().isoformat()
    assert (status["error"], status["events_purged"], status["events_purged_total"]) == (None, 0, 7)
