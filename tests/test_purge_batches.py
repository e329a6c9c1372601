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

    def submit_audited(self, fn, actor, action, detail):
        return self._store.submit_audited(self._wrap(fn), actor, action, detail)


@pytest.fixture
def store(tmp_path, clock):
    log = reporting_log(tmp_path / "kiosk.db", clock, ledgers=True)
    yield log
    log.close()


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(retention, "BATCH_ROWS", BATCH, raising=False)


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
