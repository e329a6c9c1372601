"""Collector defects found by the defect hunt (a real PostgreSQL: tests/pgfixture.py)."""

from __future__ import annotations

from pgfixture import Network, central_rows, kiosk_rows, make_kiosk

from kiosk.config.fleet import CollectorConfig
from office.collector import Collector

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
