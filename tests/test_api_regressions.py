"""API regressions: defects found in the field review, each test failing before its fix."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from checkpoint.app import build_core
from checkpoint.demo import print_banner
from kiosk.config import parse_config
from ui.app import create_app


@pytest.fixture
def real(tmp_path, clock):
    core = build_core(parse_config({}), tmp_path / "data", clock)
    yield core
    core.store.close()
    core.devices.close()


@pytest.mark.slow
def test_every_url_the_demo_prints_is_served(real, capsys):
    session = SimpleNamespace(
        daemon=SimpleNamespace(url="http://127.0.0.1:8000"),
        core=SimpleNamespace(data_dir="/d", clock=real.clock, tz=real.tz, config=real.config),
        guard_user="guard", guard_password="pw", admin_user="admin", admin_password="pw",
        api_token="kt_x",
    )  # fmt: skip
    print_banner(session)
    paths = re.findall(r"http://127\.0\.0\.1:8000(/[^\s)]*)", capsys.readouterr().out)
    assert "/api/v1/health" in paths
    client = TestClient(create_app(real), client=("127.0.0.1", 5000))
    # "(docs: .../docs)" was printed, and /docs is not served (no Swagger page: it loads
    # its scripts from a CDN): a 404 for whoever follows the demo's own hint.
    assert [p for p in paths if client.get(p).status_code == 404] == []


def _bulk_events(store, n: int) -> None:
    """``n`` more events copied from the first one (reasons varied), written straight into the
    table: a year of a busy gate without a year of commits. The chain is not the point here."""
    import sqlite3

    conn = sqlite3.connect(store.path)
    try:
        cols = [c[1] for c in conn.execute("PRAGMA table_info(events)")]
        first = conn.execute("SELECT * FROM events ORDER BY seq LIMIT 1").fetchone()
        at = {name: cols.index(name) for name in ("seq", "id", "reasons", "decision")}
        top = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
        rows = []
        for seq in range(top + 1, top + n + 1):
            row = list(first)
            row[at["seq"]], row[at["id"]] = seq, f"bulk-{seq}"
            if seq % 7 == 0:
                row[at["decision"]], row[at["reasons"]] = "deny", '["fever","quarantined"]'
            rows.append(row)
        marks = ", ".join("?" for _ in cols)
        conn.executemany(f"INSERT INTO events VALUES ({marks})", rows)  # noqa: S608
        conn.commit()
    finally:
        conn.close()


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_the_first_metrics_scrape_of_a_long_log_reads_counts_not_every_row(tmp_path, clock):
    import tracemalloc

    from support import reporting_log

    from kiosk.store import EventDraft
    from ui.api import DecisionCounter

    store = reporting_log(tmp_path / "k.db", clock)
    try:
        store.append(EventDraft(direction="in", decision="pass", reasons=("ok",), temp_c=36.5))
        _bulk_events(store, 69_999)
        counter = DecisionCounter()
        tracemalloc.start()
        try:
            counter.update(store)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        # Before: every (seq, decision, reasons) of the log as Python objects at once, ~20 MB
        # here and hundreds of MB for a busy gate's year, on /metrics (public by default).
        assert peak < 2_000_000
        assert counter.after_seq == 70_000
        assert dict(counter.by_reason) == {
            ("pass", "ok"): 60_000,
            ("deny", "fever"): 10_000,
            ("deny", "quarantined"): 10_000,
        }
        store.append(EventDraft(direction="out", decision="deny", reasons=("passback",)))
        counter.update(store)  # incremental: only the new event
        assert counter.after_seq == 70_001 and counter.by_reason[("deny", "passback")] == 1
        assert counter.by_reason[("pass", "ok")] == 60_000
    finally:
        store.close()


def test_a_csv_export_stops_at_the_head_its_audit_row_names(tmp_path, clock, monkeypatch):
    import csv
    import io

    from test_api import bearer, client_for, draft, make_core

    from ui import api as api_module

    core = make_core(tmp_path, clock, {"max_page": 4})
    try:
        for i in range(10):
            core.store.append(draft(i))
        real_read = api_module.read_events
        calls = []

        def read_while_the_gate_decides(db, after, limit):
            calls.append(after)
            if len(calls) == 1:  # people keep passing while the office downloads
                for i in range(5):
                    core.store.append(draft(100 + i))
            return real_read(db, after, limit)

        monkeypatch.setattr(api_module, "read_events", read_while_the_gate_decides)
        response = client_for(core).get("/api/v1/events.csv", headers=bearer(core))
        seqs = [int(r["seq"]) for r in csv.DictReader(io.StringIO(response.text))]
        audit = core.store.audits(after_seq=0)[-1]
        assert audit["action"] == "export_csv" and audit["detail"]["head"] == 10
        # Before: seqs 1..15 went out under an audit row that says the export ended at 10.
        assert seqs == list(range(1, 11))
    finally:
        core.store.close()


def test_polling_a_gate_with_nothing_new_writes_no_audit_rows(tmp_path, clock):
    from test_api import bearer, client_for, draft, make_core

    core = make_core(tmp_path, clock)
    try:
        for i in range(3):
            core.store.append(draft(i))
        client, headers = client_for(core), bearer(core)
        assert client.get("/api/v1/events", headers=headers).json()["next"] == 3
        before = core.store.last_audit_seq
        # The collector asks every poll_interval_s (10 s by default) after the last seq it
        # holds: each empty answer was a FULL-sync, hash-chained audit row on the gate's one
        # writer, 8,640 a day that exported nothing.
        for _ in range(10):
            page = client.get("/api/v1/events", params={"after": 3}, headers=headers).json()
            assert page["events"] == [] and page["last"] == 3
        assert core.store.last_audit_seq == before
        core.store.append(draft(9))
        client.get("/api/v1/events", params={"after": 3}, headers=headers)
        rows = core.store.audits(after_seq=before)
        assert [(r["action"], r["detail"]["count"]) for r in rows] == [("export_events", 1)]
    finally:
        core.store.close()
