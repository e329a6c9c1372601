"""Collector defects found by the defect hunt (a real PostgreSQL: tests/pgfixture.py)."""

from __future__ import annotations

import pytest
from pgfixture import Network, central_rows, kiosk_rows, make_kiosk

from kiosk.config.fleet import CollectorConfig
from office.collector import Collector
from office.pg import PgError, PgTarget
from office.pull import PullError

pytest_plugins = ("pgfixture",)  # pg_cluster, pg_dsn: a real PostgreSQL


def test_a_gate_whose_log_was_replaced_by_a_shorter_one_is_an_error_not_lag_0(
    tmp_path, clock, pg_dsn, monkeypatch
):
    old = make_kiosk(tmp_path / "old.db", "gate-1", clock, 30)
    new = make_kiosk(tmp_path / "new.db", "gate-1", clock, 5)  # a new SD card, same id
    net = Network(old)
    monkeypatch.setenv("TOKEN", old.token)
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-1", "token_env": "TOKEN"}]}
    )
    collector = Collector(config, pg_dsn, client=net.client(), report_interval_s=1e9)
    try:
        assert collector.run_once()[0].state == "ok"
        net.kiosks["gate-1"] = new
        monkeypatch.setenv("TOKEN", new.token)
        status = collector.run_once()[0]
        held_before = kiosk_rows(old)
    finally:
        collector.stop()
        old.store.close()
        new.store.close()
    # Before: state "ok", head_seq 30, lag_events 0, while the gate's new events never came.
    assert status.state == "error" and status.consecutive_failures == 1
    assert "seq 30: the kiosk's log ends at seq 5" in status.last_error
    assert central_rows(pg_dsn, "gate-1") == held_before


@pytest.mark.parametrize("ts", [None, "yesterday", 20260302, "2026-13-45T00:00:00Z"])
def test_a_row_whose_ts_is_no_timestamp_is_a_pull_error_not_a_crash(tmp_path, clock, pg_dsn, ts):
    gate = make_kiosk(tmp_path / "g.db", "gate-1", clock, 3)
    try:
        rows = [dict(r) for r in gate.store.events(limit=10)]
    finally:
        gate.store.close()
    rows[1]["ts"] = ts  # the chain check is the caller's: here only the database's own
    target = PgTarget(pg_dsn)
    try:
        # Before: ValueError from date.fromisoformat (a traceback in `kiosk pull`), or for a
        # null ts a NOT NULL violation reported as "database: ..." (and a reconnect).
        with pytest.raises(PullError, match="seq 2: ts") as raised:
            target.write_page("http://gate-1", "gate-1", rows)
        assert not isinstance(raised.value, PgError)
        assert central_rows(pg_dsn) == []
        assert target.write_page("http://gate-1", "gate-1", rows[:1]) == 1  # still usable
    finally:
        target.close()
