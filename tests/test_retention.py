"""Retention: personal fields of old events go, daily reports and the hash chain stay."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from support import reporting_log

from checkpoint.cli import main
from kiosk import stats
from kiosk.config.policy import QuotaConfig
from kiosk.retention import purge
from kiosk.stats import daily_report
from kiosk.store import EventDraft, EventLog

TZ = "Asia/Shanghai"
QUOTA = QuotaConfig(enabled=True, exits=1, period_days=2)
PHONE = "13800138000"
ID_NUMBER = "11010519491231002X"
PHONE_RE = re.compile(r"\b1[3-9]\d{9}\b")
ID_RE = re.compile(r"\b\d{17}[\dXx]\b")


@pytest.fixture
def store(reporting_store):
    return reporting_store


def fill(store, clock, start: datetime, days: int) -> None:
    """Six passages a day for ``days`` days, with households, names, phones and ID numbers."""
    for d in range(days):
        for i in range(6):
            clock.set_wall(start + timedelta(days=d, hours=2 * i))
            store.append(
                EventDraft(
                    direction="out" if i % 2 else "in",
                    decision="deny" if i == 5 else "pass",
                    reasons=("fever",) if i == 5 else ("ok",),
                    temp_c=36.5 + i * 0.3,
                    pass_id=f"P-{d}-{i}",
                    household=f"H{i % 3}",
                    holder="Zhang Wei",
                    person={
                        "name": "张伟",
                        "phone": "13800138000",
                        "id_number": "11010519491231002X",
                    },
                )
            )


def reports(store, first: date, days: int) -> list[dict]:
    return [daily_report(store.reader(), first + timedelta(days=d), TZ, QUOTA) for d in range(days)]


def test_purge_removes_personal_fields_keeps_reports_and_chain(store, clock):
    start = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    fill(store, clock, start, 10)
    first = date(2026, 3, 1)
    before = reports(store, first, 10)
    now = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
    result = purge(store, 5, now, tz=TZ, quota_cfg=QUOTA)

    cutoff = "2026-03-06T12:00:00"
    rows = list(store.reader().query("select * from events order by seq"))
    old = [r for r in rows if r["ts"] < cutoff]
    new = [r for r in rows if r["ts"] >= cutoff]
    assert old and new and result.events_purged == len(old)
    for row in old:
        assert row["pass_id"] is None and row["household"] is None
        assert row["holder"] is None and row["person"] is None
        assert row["purged_at"] is not None
        assert not PHONE_RE.search(json.dumps(row)) and not ID_RE.search(json.dumps(row))
    assert all(r["pass_id"] and r["purged_at"] is None for r in new)
    assert reports(store, first, 10) == before
    assert store.verify().ok


def test_verify_log_cli_passes_after_purge(store, clock, tmp_path, capsys):
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)
    purge(store, 1, datetime(2026, 3, 4, 12, 0, tzinfo=UTC), tz=TZ)
    assert main(["verify-log", "--db", str(tmp_path / "kiosk.db")]) == 0


def test_purge_is_audited_and_idempotent(store, clock):
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 3)
    now = datetime(2026, 3, 5, tzinfo=UTC)
    clock.set_wall(now)
    first = purge(store, 1, now, tz=TZ, actor="cli")
    second = purge(store, 1, now, tz=TZ, actor="cli")
    assert first.events_purged == 18 and second.events_purged == 0
    assert [d.isoformat() for d in first.days_frozen] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    audits = [a for a in store.audits(limit=100) if a["action"] == "retention_purge"]
    assert len(audits) == 2 and audits[0]["actor"] == "cli"
    assert audits[0]["detail"]["events_purged"] == 18
    assert audits[0]["detail"]["cutoff"] == "2026-03-04T00:00:00+00:00"


def test_nothing_newer_than_retention_is_touched(store, clock):
    fill(store, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 2)
    result = purge(store, 30, datetime(2026, 3, 5, tzinfo=UTC), tz=TZ)
    assert result.events_purged == 0
    assert all(r["household"] for r in store.reader().query("select household from events"))


def test_quota_lookback_survives_daily_purges(store, clock):
    """Daily purges (as the daemon runs them) never lose the previous day's households."""
    start = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    fill(store, clock, start, 6)
    first = date(2026, 3, 1)
    before = reports(store, first, 6)
    for d in range(2, 8):
        purge(store, 1, datetime(2026, 3, 1 + d, 0, 30, tzinfo=UTC), tz=TZ, quota_cfg=QUOTA)
    assert reports(store, first, 6) == before
    assert before[1]["exits_per_household"]["over_quota_households"] > 0


@pytest.mark.parametrize("days", [-1, 40000, 1.5, True])
def test_bad_retention_is_refused(store, days):
    with pytest.raises(ValueError):
        purge(store, days, datetime(2026, 3, 5, tzinfo=UTC))


def test_cli_purge(tmp_path, capsys):
    db = tmp_path / "k.db"
    from kiosk.clock import FakeClock

    clock = FakeClock(start=datetime(2020, 1, 1, tzinfo=UTC))
    log = reporting_log(db, clock)
    fill(log, clock, datetime(2020, 1, 1, tzinfo=UTC), 1)
    log.close()
    assert main(["purge", "--older-than", "30", "--db", str(db)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["events_purged"] == 6
    assert main(["purge", "--older-than", "-3", "--db", str(db)]) == 2


def test_purge_works_on_a_log_opened_without_the_stats_migrations(tmp_path, clock):
    log = EventLog(tmp_path / "bare.db", "gate-1", clock, "NORMAL").open()
    try:
        fill(log, clock, datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 2)
        before = reports(log, date(2026, 3, 1), 2)
        result = purge(log, 1, datetime(2026, 3, 5, tzinfo=UTC), tz=TZ, quota_cfg=QUOTA)
        assert result.events_purged == 12
        assert reports(log, date(2026, 3, 1), 2) == before
    finally:
        log.close()
    # Opening it later with the migrations is still fine.
    EventLog(tmp_path / "bare.db", "gate-1", clock, migrations=[stats.MIGRATIONS]).open().close()
