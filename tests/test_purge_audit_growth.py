"""The daemon's hourly purge adds to the audit trail, which is kept for ever, only when it
changed something: a year of idle hours (8,760 purges) once wrote 8,760 ``retention_purge``
rows (~7 MB) that nothing ever purges. That the purge still runs is in ``meta``
(``retention.last_run``) and the health report, overwritten at each run."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from kiosk.retention import ClockNotTrusted, last_run, purge
from kiosk.store import EventDraft

START = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)


def _passages(store, clock, hours: int) -> None:
    for h in range(hours):
        clock.set_wall(START + timedelta(hours=h))
        store.append(
            EventDraft(
                direction="in",
                decision="pass",
                reasons=("ok",),
                temp_c=36.5,
                pass_id=f"P-{h}",
                household="H1",
                holder="Zhang Wei",
            )
        )


def _purge_rows(store) -> int:
    return (
        store.reader()
        .execute("SELECT count(*) FROM audit WHERE action = 'retention_purge'")
        .fetchone()[0]
    )


def _hourly(store, clock, first: datetime, hours: int) -> list[int]:
    """The count of purge rows after each of ``hours`` hourly purges (1-day retention)."""
    counts = []
    for h in range(hours):
        now = first + timedelta(hours=h)
        clock.set_wall(now)
        purge(store, 1, now, tz="UTC", actor="daemon")
        counts.append(_purge_rows(store))
    return counts


def test_idle_hours_of_purges_add_no_audit_rows(reporting_store, clock):
    store = reporting_store
    _passages(store, clock, 3)
    # Three days of hourly purges: the passages' day is frozen, then their fields go.
    counts = _hourly(store, clock, START + timedelta(hours=4), 72)
    changed = counts[-1]
    assert 1 <= changed <= 5, counts  # the freeze and the three purged passages, no more
    assert counts.index(changed) < 30, counts  # all of it by the first day after retention
    assert store.verify().ok


def test_last_run_says_the_purge_still_runs(reporting_store, clock):
    store = reporting_store
    assert last_run(store.reader()) is None
    first = START + timedelta(days=3)
    _hourly(store, clock, first, 3)
    assert _purge_rows(store) == 0
    assert last_run(store.reader()) == {
        "at": (first + timedelta(hours=2)).isoformat(),
        "clock_synced": True,
        "changed": False,
    }


def test_the_health_report_says_when_the_daemons_purge_last_ran(core, clock):
    from checkpoint.app import Daemon
    from checkpoint.notify import Notifier

    assert core.health()["retention"] == {"last_run": None, "overdue": None}
    Daemon(core, notifier=Notifier(None)).purge_once()
    Daemon(core, notifier=Notifier(None)).purge_once()
    assert core.health()["retention"] == {
        "last_run": {
            "at": clock.now().astimezone(UTC).isoformat(),
            "clock_synced": True,
            "changed": False,
        },
        "overdue": None,
    }
    assert _purge_rows(core.store) == 0


def test_a_clock_set_back_after_quiet_purges_is_still_refused(reporting_store, clock):
    """The quiet runs left no audit row to date the clock by: their ``meta`` record does."""
    store = reporting_store
    first = START + timedelta(days=3)
    _hourly(store, clock, first, 2)
    back = first - timedelta(hours=3)
    clock.set_wall(back)
    with pytest.raises(ClockNotTrusted) as refused:
        purge(store, 1, back, tz="UTC")
    assert refused.value.reason == "set_back"


def test_a_purge_on_a_clock_the_operator_vouched_for_keeps_its_row(reporting_store, clock):
    store = reporting_store
    clock.is_synced = False
    now = START + timedelta(days=3)
    clock.set_wall(now)
    purge(store, 1, now, tz="UTC", trust_unsynced_clock=True)
    assert _purge_rows(store) == 1


def _busy_hours(store, clock, hours: int) -> None:
    """A passage an hour, each followed by the daemon's hourly purge (1-day retention)."""
    for h in range(hours):
        now = START + timedelta(hours=h)
        clock.set_wall(now)
        store.append(
            EventDraft(
                direction="in",
                decision="pass",
                reasons=("ok",),
                pass_id=f"P-{h}",
                household="H1",
                holder="Zhang Wei",
            )
        )
        purge(store, 1, now, tz="UTC", actor="daemon")


@pytest.mark.slow
def test_a_busy_gates_hourly_purges_leave_one_audit_row_a_day_with_their_counts(
    reporting_store, clock
):
    """A busy gate's hourly purge nulls a few rows each hour: each wrote a ``retention_purge``
    row kept for ever (8,760 a year in the office's audit view, and as many attested
    digests). The day's first purge that nulls anything writes the row, and its ``reach``
    (the cutoff of a purge at the day's end) covers what the day's later runs null; their
    counts go into the next row (``coalesced``), so every purged row is still counted and
    covered."""
    from kiosk.retention import pending_runs

    store = reporting_store
    _busy_hours(store, clock, 5 * 24)
    db = store.reader()
    rows = db.execute(
        "SELECT substr(ts, 1, 10), detail FROM audit WHERE action = 'retention_purge'"
    ).fetchall()
    per_day = Counter(day for day, _ in rows)
    assert max(per_day.values()) == 1, per_day
    purged = db.execute("SELECT count(*) FROM events WHERE purged_at IS NOT NULL").fetchone()[0]
    counted = sum(
        d["events_purged"] + d.get("coalesced", {}).get("events_purged", 0)
        for d in (json.loads(detail) for _, detail in rows)
    )
    assert purged > 70 and counted + pending_runs(db).get("events_purged", 0) == purged
    # each row says how many runs it stands for: a day's later runs, counted, not just one
    runs = [json.loads(detail).get("coalesced", {}).get("runs", 0) for _, detail in rows]
    assert max(runs) > 1, runs
    assert store.verify().ok


def test_a_coalesced_purge_rows_counts_are_the_sums_of_the_runs_it_stands_for(tmp_path, clock):
    """A passage and a closed service request at 01:00, 02:00, 03:00 and 23:00 on 1 March and
    00:15 on 2 March. One day's retention: 2 March's purges at 01:30, 02:30 and 03:30 null
    one of each a run, the first writing the day's row (its reach: 00:00 on 2 March), the
    next two coalescing into it; so does the run at exactly 00:00 on 3 March (its cutoff the
    reach itself), which also freezes 2 March's report. The run at 00:30 writes the next
    row, which carries them: three runs, three passages, three requests (each summed, not
    the last run's), the day frozen; every purged row is counted once."""
    from support import reporting_log

    from kiosk.retention import pending_runs
    from kiosk.services import ServiceDesk

    store = reporting_log(tmp_path / "kiosk.db", clock, ledgers=True)
    try:
        desk = ServiceDesk(store, clock, "UTC")
        for h in (0, 1, 2, 22, 23.25):
            clock.set_wall(START + timedelta(hours=h))
            store.append(EventDraft(direction="in", decision="pass", pass_id="P", holder="Li"))
            done = desk.open("1-101", "medicine", "guard", confined=True, note="insulin")
            desk.done(done.id, "helper")
        for h in (24.5, 25.5, 26.5, 47, 47.5):
            now = START + timedelta(hours=h)
            clock.set_wall(now)
            purge(store, 1, now, tz="UTC", actor="daemon")
        rows = [json.loads(d) for (d,) in store.reader().execute(
            "SELECT detail FROM audit WHERE action = 'retention_purge' ORDER BY seq"
        )]  # fmt: skip
        own = [(d["events_purged"], d["ledger_rows_purged"]["service_requests"]) for d in rows]
        assert own == [(1, 1), (1, 1)]
        assert rows[0]["reach"] == "2026-03-02T00:00:00+00:00"
        carried = rows[1]["coalesced"]
        assert (carried["runs"], carried["events_purged"]) == (3, 3)
        assert carried["ledger_rows_purged"] == {
            "returnees": 0, "service_requests": 3, "peer_passages": 0
        }  # fmt: skip
        assert carried["days_frozen"] == ["2026-03-02"]
        assert "coalesced" not in rows[0] and pending_runs(store.reader()) == {}
        assert store.verify().ok
    finally:
        store.close()


@pytest.mark.slow
def test_a_row_nulled_past_the_days_reach_still_reads_as_tampering(reporting_store, clock):
    """The day's row covers what the day's purges null, nothing newer: personal fields
    removed by hand from this morning's passage are still found."""
    import sqlite3

    store = reporting_store
    _busy_hours(store, clock, 3 * 24)
    assert store.verify().ok
    conn = sqlite3.connect(store.path)
    with conn:
        conn.execute(
            "UPDATE events SET pass_id = NULL, household = NULL, holder = NULL, purged_at = ts"
            " WHERE seq = (SELECT max(seq) - 3 FROM events)"
        )
    conn.close()
    found = store.verify()
    assert not found.ok and "no audited purge covers it" in str(found.problem)


def test_the_day_of_the_autumn_change_covers_no_audit_row_written_after_its_purge_row(
    reporting_store, clock
):
    """The autumn change's local day has 25 hours: the cutoff at its end lies an hour after
    the purge that wrote the day's row, and an audit row written in that hour and nulled by a
    later purge of the day was covered by nothing (``verify`` counts an audit row covered only
    by a purge row after it). The reach is never later than its own purge."""
    store = reporting_store
    tz = "Europe/Berlin"  # 2026-10-25: 00:00 CEST is 22:00 UTC the day before, 25 hours long
    for when in (datetime(2026, 10, 23, 22, 0, tzinfo=UTC), datetime(2026, 10, 23, 22, 45)):
        clock.set_wall(when.replace(tzinfo=UTC))
        store.append(EventDraft(direction="in", decision="pass", reasons=("ok",), holder="Li"))
    first = datetime(2026, 10, 24, 22, 30, tzinfo=UTC)  # 00:30 local on the 25th
    clock.set_wall(first)
    purge(store, 1, first, tz=tz, actor="daemon")
    clock.set_wall(first + timedelta(minutes=10))
    store.audit("guard", "lists.quarantine_add", {"household": "H1", "holder": "Li"})
    later = datetime(2026, 10, 25, 22, 50, tzinfo=UTC)  # 23:50 local, the same day
    clock.set_wall(later)
    purge(store, 1, later, tz=tz, actor="daemon")
    assert store.verify().ok, store.verify().problem
