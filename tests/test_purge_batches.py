"""A retention purge with a big backlog must never hold the log's writer for long: a passage
at the gate commits within ``engine.store_deadline_ms`` or is denied. These tests watch the
purge's write transactions structurally (no clocks, no sleeps): how many rows each one
nulls, and whether a passage issued while the purge runs commits before it finishes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support import reporting_log

from kiosk import retention
from kiosk.retention import purge
from kiosk.store import EventDraft

#: The batch bound the tests ask for: far below the backlog they build.
BATCH = 40
DAYS = 30  # 6 passages a day: a backlog of 150+ rows past a 4-day retention
NOW = datetime(2026, 4, 1, 12, tzinfo=UTC)


def fill(store, clock, days: int = DAYS) -> None:
    start = NOW - timedelta(days=days + 1)
    for d in range(days):
        for i in range(6):
            clock.set_wall(start + timedelta(days=d, hours=3 * i))
            store.append(
                EventDraft(
                    direction="in",
                    decision="pass",
                    pass_id=f"P-{d}-{i}",
                    household=f"H{i % 3}",
                    holder="Zhang Wei",
                    person={"name": "张伟", "phone": "13800138000"},
                )
            )
        store.audit("guard:li", "note", {"household": "H1", "day": d})
    clock.set_wall(NOW)


def _purged(db) -> int:
    return sum(
        db.execute(f"SELECT count(*) FROM {t} WHERE purged_at IS NOT NULL").fetchone()[0]  # noqa: S608
        for t in ("events", "audit")
    )


class Watched:
    """The event log as the purge sees it, each of its write transactions observed: rows
    nulled in it, and ``during(db, nulled)`` called inside it (on the writer thread)."""

    def __init__(self, store, during=None) -> None:
        self._store = store
        self._during = during
        self.nulled: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _wrap(self, fn):
        def job(db):
            before = _purged(db)
            result = fn(db)
            nulled = _purged(db) - before
            self.nulled.append(nulled)
            if self._during is not None:
                self._during(db, nulled)
            return result

        return job

    def submit(self, fn):
        return self._store.submit(self._wrap(fn))

    def submit_audited(self, fn, actor, action, detail, *, skip=None):
        return self._store.submit_audited(self._wrap(fn), actor, action, detail, skip=skip)


@pytest.fixture
def store(tmp_path, clock):
    log = reporting_log(tmp_path / "kiosk.db", clock, ledgers=True)
    yield log
    log.close()


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(retention, "BATCH_ROWS", BATCH, raising=False)


@pytest.mark.slow
def test_a_big_backlog_is_purged_in_bounded_transactions(store, clock, small_batches):
    fill(store, clock)
    watched = Watched(store)
    result = purge(watched, 4, NOW, tz="UTC")
    assert result.events_purged > 3 * BATCH
    assert _purged(store.reader()) > 3 * BATCH
    assert max(watched.nulled) <= BATCH, (
        f"one write transaction nulled {max(watched.nulled)} rows (bound {BATCH}): the"
        f" writer is held for the whole backlog; per transaction: {watched.nulled}"
    )
    assert store.verify().ok


@pytest.mark.slow
def test_a_passage_issued_while_the_purge_runs_commits_before_the_purge_finishes(
    store, clock, small_batches
):
    fill(store, clock)
    issued = threading.Event()
    enqueue = store._enqueue

    def enqueue_and_say(job):
        future = enqueue(job)
        issued.set()
        return future

    store._enqueue = enqueue_and_say
    committed: list[Any] = []
    passage = threading.Thread(
        target=lambda: committed.append(
            store.append(
                EventDraft(
                    direction="in",
                    decision="pass",
                    pass_id="P-probe",
                    audit=("guard:li", "manual_open", {"why": "probe"}),
                )
            )
        )
    )

    def during(db, nulled: int) -> None:
        if nulled and not passage.ident:
            passage.start()  # the passage reaches the writer's queue mid-purge
            assert issued.wait(30)

    purge(Watched(store, during), 4, NOW, tz="UTC")
    passage.join(30)
    assert committed, "the passage never committed"
    rows = store.audits(limit=1000)
    probe = next(a["seq"] for a in rows if a["action"] == "manual_open")
    last_purge = max(a["seq"] for a in rows if a["action"] == "retention_purge")
    assert probe < last_purge, (
        "the passage issued during the purge committed only after the whole purge"
        f" (its audit row seq {probe} follows the purge's, seq {last_purge})"
    )


class Killed(Exception):
    """The process dying between two of the purge's transactions (each is committed)."""


def _personal_left(db, cutoff: str) -> int:
    return db.execute(
        "SELECT count(*) FROM events WHERE ts < ? AND purged_at IS NULL", [cutoff]
    ).fetchone()[0]


@pytest.mark.slow
def test_the_chain_verifies_after_every_batch(store, clock, small_batches):
    fill(store, clock)
    checked: list[bool] = []
    result = purge(
        store, 4, NOW, tz="UTC", between_batches=lambda: checked.append(store.verify().ok)
    )
    # Called between the freeze's transactions too (a few days' reports each).
    assert result.batches >= 4 and len(checked) >= result.batches - 1 and all(checked)
    assert store.verify().ok


@pytest.mark.slow
def test_a_purge_killed_between_batches_is_on_record_and_the_next_one_finishes_it(
    store, clock, small_batches
):
    fill(store, clock)
    reader = store.reader()
    cutoff = "2026-03-28T12:00:00"
    old = _personal_left(reader, cutoff)

    def die_after_two() -> None:
        if _purged(reader) >= 2 * BATCH:
            raise Killed

    with pytest.raises(Killed):
        purge(store, 4, NOW, tz="UTC", between_batches=die_after_two)
    assert _personal_left(reader, cutoff) == old - 2 * BATCH > 0
    # The deletions are on record: the first batch wrote the purge's row (its cutoff covers
    # every batch), the second its own; no row claims the purge complete.
    rows = [a for a in store.audits(limit=1000) if a["action"].startswith("retention_purge")]
    assert [a["action"] for a in rows] == ["retention_purge", "retention_purge_batch"]
    assert rows[0]["detail"]["complete"] is False
    assert rows[0]["detail"]["cutoff"] == "2026-03-28T12:00:00+00:00"
    assert [a["detail"]["events_purged"] for a in rows] == [BATCH, BATCH]
    assert store.verify().ok  # every nulled row is covered by the audited cutoff
    owed = reader.execute("SELECT 1 FROM meta WHERE key = ?", [retention.WIPE_OWED_KEY])
    assert owed.fetchone(), "the WAL wipe the nulled rows need is not owed"
    # No salt went: a period's goes only in the purge's last transaction.
    assert not reader.execute("SELECT 1 FROM digest_salts WHERE salt IS NULL").fetchone()

    again = purge(store, 4, NOW, tz="UTC")
    assert _personal_left(store.reader(), cutoff) == 0
    assert again.events_purged == old - 2 * BATCH  # the rest, nothing twice
    assert again.salts_shredded > 0 and store.verify().ok
    last = store.audits(limit=1000)[-1]
    assert last["action"] == "retention_purge" and last["detail"]["complete"] is True
    assert (
        not store.reader()
        .execute("SELECT 1 FROM meta WHERE key = ?", [retention.WIPE_OWED_KEY])
        .fetchone()
    )


def test_a_small_purge_is_one_transaction_with_one_audit_row(store, clock):
    fill(store, clock, days=6)
    watched = Watched(store)
    result = purge(watched, 4, NOW, tz="UTC")
    assert result.batches == 1 and result.events_purged == 18
    assert sum(1 for n in watched.nulled if n) == 1
    rows = [a for a in store.audits(limit=1000) if a["action"].startswith("retention_purge")]
    assert len(rows) == 1 and rows[0]["detail"]["complete"] is True


@pytest.mark.parametrize(
    ("batch", "nulled"),
    [(21, [21]), (20, [20, 1]), (18, [18, 3])],
    ids=["exactly-the-backlog", "one-short", "the-events-exactly"],
)
def test_a_backlog_of_exactly_batch_rows_is_one_transaction(
    store, clock, monkeypatch, batch, nulled
):
    """21 rows past retention (18 passages, 3 audit notes, events first): a ``BATCH_ROWS`` of
    21 nulls them in the one transaction; of 20, in two. With the batch filled by the events
    exactly, the audit rows go in the next batch."""
    fill(store, clock, days=6)
    monkeypatch.setattr(retention, "BATCH_ROWS", batch)
    watched = Watched(store)
    result = purge(watched, 4, NOW, tz="UTC")
    assert [n for n in watched.nulled if n] == nulled
    assert result.batches == len(nulled) and result.events_purged == 18
    assert _purged(store.reader()) == 21 and store.verify().ok


@pytest.mark.slow
def test_a_batched_purge_adds_no_attested_digest_per_batch(store, clock, small_batches):
    fill(store, clock)
    result = purge(store, 4, NOW, tz="UTC")
    assert result.batches > 3
    # Later the purge's own day ages out and its salt goes: only its two purge rows (the
    # first batch's and the totals) are kept and attested, not one per batch.
    later = NOW + timedelta(days=10)
    clock.set_wall(later)
    purge(store, 4, later, tz="UTC")
    reader = store.reader()
    day = NOW.date().isoformat()
    assert reader.execute("SELECT salt FROM digest_salts WHERE period = ?", [day]).fetchone() == (
        None,
    )
    attested = reader.execute(
        "SELECT count(*) FROM digest_attested d JOIN audit a ON a.seq = d.seq"
        " WHERE d.tbl = 'audit' AND a.ts LIKE ?",
        [day + "%"],
    ).fetchone()[0]
    assert attested == 2
    assert store.verify().ok


def test_kiosk_purge_lets_go_of_the_file_between_batches_for_the_daemon_beside_it(
    tmp_path, clock, monkeypatch, small_batches, capsys
):
    """The CLI's purge is another process than the daemon: its passage waits for the
    file's write lock in SQLite's busy handler, which looks again at most every 100 ms."""
    import json

    from checkpoint.cli import main, pull_cmd
    from drivers import clocksync
    from kiosk.clock import FakeClock

    log = reporting_log(tmp_path / "k.db", clock)
    fill(log, clock)
    log.close()
    monkeypatch.setattr(
        clocksync, "system_clock", lambda *a, **kw: FakeClock(start=NOW, is_synced=True)
    )
    pauses: list[float] = []
    monkeypatch.setattr(pull_cmd.time, "sleep", pauses.append)
    assert main(["purge", "--older-than", "4", "--db", str(tmp_path / "k.db")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["batches"] > 3
    assert len(pauses) >= result["batches"] - 1
    assert min(pauses) > 0.1


def test_the_purge_does_not_load_every_attestation_and_deleted_salt_in_the_writer(store, clock):
    """``digest_attested`` grows a row per purge (hourly: ~8,760 a year) and the deleted
    salts a row a day; loading them whole in the purge's transaction (24 ms a year's worth
    here, 320 ms ten years', under load) held the writer longer every year."""
    fill(store, clock, days=8)
    purge(store, 4, NOW, tz="UTC")  # a first salt gone, its purge row attested
    later = NOW + timedelta(days=2)
    clock.set_wall(later)
    statements: list[str] = []
    store.submit(lambda db: db.conn.set_trace_callback(statements.append))
    result = purge(store, 4, later, tz="UTC")
    store.submit(lambda db: db.conn.set_trace_callback(None))
    assert result.salts_shredded > 0
    whole = [
        s
        for s in statements
        if "FROM digest_attested" in s
        and "WHERE" not in s.split("FROM digest_attested")[1]
        or "FROM digest_salts" in s
        and "WHERE" not in s.split("FROM digest_salts")[1]
    ]
    assert not whole, f"read whole in the writer: {whole}"
    assert store.verify().ok


@pytest.mark.parametrize("pick", ["dense", "sparse"])
def test_purge_rows_nulls_exactly_the_candidates_it_is_given(store, clock, pick):
    from kiosk.store import purge_candidates, purge_rows

    fill(store, clock, days=10)
    cutoff = NOW - timedelta(days=4)
    reader = store.reader()
    found = purge_candidates(reader, "events", cutoff, 0, 10**9, 1000, NOW)
    assert len(found) == 42
    seqs = found[5:25] if pick == "dense" else found[5:25:6]  # 20 in a row / every sixth
    assert store.submit(lambda db: purge_rows(db, "events", seqs, cutoff, NOW)) == len(seqs)
    nulled = [r[0] for r in reader.execute("SELECT seq FROM events WHERE purged_at IS NOT NULL")]
    assert nulled == seqs


_KILLED_PURGE = """
import os, signal, sys
from datetime import datetime
sys.path.insert(0, sys.argv[2])
from support import reporting_log
from kiosk import retention
from kiosk.clock import FakeClock
now = datetime.fromisoformat(sys.argv[3])
log = reporting_log(sys.argv[1], FakeClock(start=now))
retention.BATCH_ROWS = int(sys.argv[4])
batches = []

def kill_after_two():
    batches.append(1)
    if len(batches) == 2:
        os.kill(os.getpid(), signal.SIGKILL)

retention.purge(log, 4, now, tz="UTC", between_batches=kill_after_two)
"""


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_purge_sigkilled_between_batches_leaves_a_log_that_verifies_and_converges(
    tmp_path, clock
):
    """``kill -9`` in a real process between two committed batches (of the freeze here, or
    of the personal fields: both are on record), then the next purge finishes the job."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "kiosk.db"
    log = reporting_log(path, clock, ledgers=True)
    fill(log, clock, days=6)
    log.close()
    # A backlog of many batches, with no day left to freeze: the kill lands between two
    # batches of personal fields.
    prepared = reporting_log(path, clock, ledgers=True)
    purge(prepared, 30, NOW, tz="UTC")
    prepared.close()
    tests = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_PURGE, str(path), tests, NOW.isoformat(), "5"],
        check=False,
        capture_output=True,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    log = reporting_log(path, clock, ledgers=True)
    try:
        reader = log.reader()
        assert _purged(reader) == 10  # two batches of 5 committed, then the kill
        assert log.verify().ok
        rows = [a for a in log.audits(limit=1000) if a["action"].startswith("retention_purge")]
        assert [a["detail"].get("complete") for a in rows][-2:] == [False, False]
        result = purge(log, 4, NOW, tz="UTC")
        assert result.events_purged == 18 - 10
        assert _personal_left(reader, "2026-03-28T12:00:00") == 0
        assert log.verify().ok
    finally:
        log.close()


@pytest.mark.slow
def test_the_daemons_hourly_purge_lets_a_passage_commit_between_its_batches(
    data_dir, monkeypatch, small_batches
):
    """The daemon's purge (``Daemon.purge_once``) shares the engine's writer: a passage
    queued while one of its batches runs commits before the next batch."""
    from checkpoint.app import Daemon, build_core
    from checkpoint.notify import Notifier
    from kiosk.clock import FakeClock
    from kiosk.config import parse_config

    clock = FakeClock(start=NOW)
    core = build_core(parse_config({"store": {"retention_days": 4}}), data_dir, clock)
    try:
        fill(core.store, clock)
        issued = threading.Event()
        enqueue = core.store._enqueue

        def enqueue_and_say(job):
            future = enqueue(job)
            issued.set()
            return future

        core.store._enqueue = enqueue_and_say
        probe = EventDraft(direction="in", decision="pass", audit=("guard:li", "probe", {}))
        passage = threading.Thread(target=core.store.append, args=(probe,))
        real = retention.purge_rows

        def purge_rows(db, *args):
            if not passage.ident:
                passage.start()  # the passage reaches the writer's queue mid-batch
                assert issued.wait(30)
            return real(db, *args)

        monkeypatch.setattr(retention, "purge_rows", purge_rows)
        Daemon(core, notifier=Notifier(None)).purge_once()
        passage.join(30)
        rows = core.store.audits(limit=1000)
        seq = next(a["seq"] for a in rows if a["action"] == "probe")
        last = max(a["seq"] for a in rows if a["action"] == "retention_purge")
        assert seq < last
        assert rows[-1]["detail"]["batches"] > 3 and core.store.verify().ok
    finally:
        core.close()
