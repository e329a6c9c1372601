"""PostgreSQL as the pull's target, and the district report read from it (real PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import psycopg
import pytest
from pgfixture import Network, add_events, central_rows, kiosk_rows, make_kiosk

from checkpoint.cli import main
from kiosk.clock import FakeClock
from kiosk.config.policy import QuotaConfig
from kiosk.hashchain import GENESIS
from office.district import district_report
from office.pg import SCHEMA_VERSION, PgError, PgTarget, redact_dsn
from office.pull import ChainError, Puller, PullError, pull

pytest_plugins = ("pgfixture",)  # pg_cluster, pg_dsn: a real PostgreSQL


def pull_pg(url, token, dsn, net, **kwargs):
    """``office.pull.pull`` into PostgreSQL; the target is the caller's to close."""
    with PgTarget(dsn) as target:
        return pull(url, token, target, client=net.client(), **kwargs)


@pytest.fixture
def gate(tmp_path, clock):
    core = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 40)
    yield core
    core.store.close()


def test_pull_into_postgresql_copies_every_event_exactly(gate, pg_dsn):
    result = pull_pg("http://gate-1", gate.token, pg_dsn, Network(gate))
    assert (result.kiosk_id, result.inserted, result.last_seq, result.head_seq) == (
        "gate-1", 40, 40, 40,
    )  # fmt: skip
    assert central_rows(pg_dsn) == kiosk_rows(gate)
    with psycopg.connect(pg_dsn) as conn:
        reasons, synced, temp, day, holder = conn.execute(
            "SELECT reasons, clock_synced, temp_c, day, holder FROM fleet_events WHERE seq = 3"
        ).fetchone()
    event = gate.store.events(after_seq=2, limit=1)[0]
    assert reasons == ["ok"] and synced is event["clock_synced"] and temp == event["temp_c"]
    assert day == date(2026, 3, 2)
    assert holder != "Li Lei"  # a logs:read token never brings personal data to the centre


@pytest.mark.slow
def test_pulling_again_is_idempotent_and_resumes_after_the_tail(gate, pg_dsn):
    net = Network(gate)
    pull_pg("http://gate-1", gate.token, pg_dsn, net, page_size=7)
    again = pull_pg("http://gate-1", gate.token, pg_dsn, net)
    assert (again.fetched, again.inserted) == (0, 0)
    add_events(gate, 5)
    net.requests.clear()
    more = pull_pg("http://gate-1", gate.token, pg_dsn, net)
    assert more.inserted == 5
    assert net.requests[0].url.params["after"] == "39"  # row 40 compared, then after it
    assert central_rows(pg_dsn) == kiosk_rows(gate)


def test_an_interrupted_pull_keeps_whole_pages_and_the_next_one_finishes(gate, pg_dsn):
    calls = []

    def cut_after_two_pages(request):
        calls.append(request)
        return "connect" if len(calls) > 2 else None

    net = Network(gate, faults=cut_after_two_pages)
    with PgTarget(pg_dsn) as target, pytest.raises(PullError):
        Puller(
            target,
            client=net.client(),
            page_size=10,
            attempts=1,
            sleep=lambda s: None,
        ).pull("http://gate-1", gate.token)
    held = central_rows(pg_dsn)
    assert len(held) in (10, 20) and held == kiosk_rows(gate)[: len(held)]
    net.faults = lambda request: None
    pull_pg("http://gate-1", gate.token, pg_dsn, net)
    assert central_rows(pg_dsn) == kiosk_rows(gate)


def test_a_kiosk_whose_log_was_replaced_is_refused_not_mixed(gate, pg_dsn, tmp_path):
    pull_pg("http://gate-1", gate.token, pg_dsn, Network(gate))
    before = central_rows(pg_dsn)
    impostor = make_kiosk(tmp_path / "other.db", "gate-1", FakeClock(start=gate.clock.now()), 45)
    try:
        with pytest.raises(ChainError):
            pull_pg("http://gate-1", impostor.token, pg_dsn, Network(impostor))
    finally:
        impostor.store.close()
    assert central_rows(pg_dsn) == before


def test_a_page_is_checked_again_against_what_the_database_holds_now(gate, pg_dsn):
    rows = gate.store.events(limit=40)
    target = PgTarget(pg_dsn)
    assert target.write_page("http://gate-1", "gate-1", rows[:10]) == 10
    # Another writer already holds 1..10: the same rows again are no error and no duplicate.
    other = PgTarget(pg_dsn)
    assert other.write_page("http://gate-1", "gate-1", rows[5:15]) == 5
    # A page that skips a row the database does not hold is refused.
    with pytest.raises(ChainError, match="lacks seq 19"):
        target.write_page("http://gate-1", "gate-1", rows[19:25])
    # A row that differs from the one held is refused, and nothing of its page is written.
    forged = [dict(r) for r in rows[14:20]]
    forged[0]["hash"] = "f" * 64
    forged[1]["prev_hash"] = "f" * 64
    with pytest.raises(ChainError, match="differs"):
        target.write_page("http://gate-1", "gate-1", forged)
    assert [r[1] for r in central_rows(pg_dsn)] == list(range(1, 16))
    assert target.tail("gate-1") == (15, rows[14]["hash"])
    assert target.tail("gate-9") == (0, GENESIS)
    target.close()
    other.close()


def test_schema_is_keyed_by_kiosk_and_seq_and_indexed_by_day(pg_dsn):
    PgTarget(pg_dsn).close()
    with psycopg.connect(pg_dsn) as conn:
        indexes = dict(
            conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'fleet_events'"
            ).fetchall()
        )
    assert "(kiosk_id, seq)" in indexes["fleet_events_pkey"]
    assert "(day, kiosk_id)" in indexes["fleet_events_day"]


def test_many_pullers_starting_together_create_the_schema_once(pg_dsn):
    errors, targets = [], []

    def start():
        try:
            targets.append(PgTarget(pg_dsn))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(targets) == 8
    for t in targets:
        t.close()


def test_an_unreachable_database_is_a_clear_pull_error_without_the_password():
    dsn = "postgresql://office:s3cret@127.0.0.1:1/fleet?connect_timeout=1"
    with pytest.raises(PgError) as info:
        PgTarget(dsn)
    assert "s3cret" not in str(info.value) and "127.0.0.1" in str(info.value)
    assert "s3cret" not in redact_dsn(dsn)


def test_cli_pull_into_postgresql(gate, pg_dsn, monkeypatch, capsys):
    import httpx

    real_client, transport = httpx.Client, httpx.MockTransport(Network(gate))
    monkeypatch.setattr(httpx, "Client", lambda **kw: real_client(transport=transport))
    code = main(["pull", "http://gate-1", "--token", gate.token, "--into", pg_dsn, "--json"])
    assert code == 0, capsys.readouterr().err
    assert central_rows(pg_dsn) == kiosk_rows(gate)


# --------------------------------------------------------------------------- district report


@pytest.fixture
def district(tmp_path, pg_dsn):
    # Shanghai: the local day 2026-03-02 is 2026-03-01T16:00Z .. 2026-03-02T16:00Z.
    start = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)  # 23:00 local on 1 March
    gates = []
    for i, n in enumerate((30, 20, 10)):
        core = make_kiosk(tmp_path / f"g{i}.db", f"gate-{i}", FakeClock(start=start), 0)
        add_events(core, n, fever_every=7 if i == 0 else 0, advance_s=600)
        pull_pg(f"http://gate-{i}", core.token, pg_dsn, Network(core))
        gates.append(core)
    yield pg_dsn, gates
    for core in gates:
        core.store.close()


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_district_report_sums_every_gate_over_the_local_day(district):
    dsn, gates = district
    report = district_report(dsn, date(2026, 3, 2), "Asia/Shanghai")
    # Each gate starts at 23:00 local on 1 March, one event every 10 minutes: the first six
    # events of each gate (23:00..23:50) belong to the day before.
    per_gate = {g["kiosk_id"]: g["events"] for g in report["by_gate"]}
    assert per_gate == {"gate-0": 24, "gate-1": 14, "gate-2": 4}
    assert report["events"] == 42 and report["gates"] == 3 and report["scope"] == "district"
    assert report["kiosks"] == ["gate-0", "gate-1", "gate-2"]
    fevers = sum(1 for i in range(6, 30) if i % 7 == 0)
    assert report["fever_alarms"]["count"] == fevers == report["by_gate"][0]["fever_alarms"]
    assert report["by_decision"] == {"deny": fevers, "pass": 42 - fevers}
    assert sum(report["by_hour"]) == 42 and report["by_hour"][0] == 16  # 00:00-00:59 local
    assert report["household_rows"] == 0  # masked at the gate: never named centrally
    # households the database cannot tell apart: unknown, not "nobody went out"
    assert report["exits_per_household"]["households"] is None


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_district_report_lists_a_silent_gate_and_can_be_limited(district):
    dsn, _ = district
    report = district_report(dsn, date(2026, 3, 3), "Asia/Shanghai", QuotaConfig())
    assert report["events"] == 0
    assert [g["events"] for g in report["by_gate"]] == [0, 0, 0]
    assert [g["last_seq_held"] for g in report["by_gate"]] == [30, 20, 10]
    only = district_report(dsn, date(2026, 3, 2), "Asia/Shanghai", kiosks=["gate-2"])
    assert only["events"] == 4 and [g["kiosk_id"] for g in only["by_gate"]] == ["gate-2"]


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_cli_district_report(district, monkeypatch, capsys):
    import json

    dsn, _ = district
    monkeypatch.setenv("KIOSK_FLEET_DSN", dsn)
    assert main(["fleet", "report", "--day", "2026-03-02", "--tz", "Asia/Shanghai"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["events"] == 42 and len(report["by_gate"]) == 3
    assert main(["fleet", "report", "--day", "yesterday"]) == 2
    assert "not a date" in capsys.readouterr().err
    monkeypatch.delenv("KIOSK_FLEET_DSN")
    assert main(["fleet", "report", "--day", "2026-03-02"]) == 2


def test_without_postgresql_ci_fails_loudly_and_elsewhere_skips(monkeypatch):
    import pgfixture

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL is required in CI"):
        pgfixture._unavailable("no initdb")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL not available"):
        pgfixture._unavailable("no initdb")


def test_a_schema_1_database_is_migrated_in_place_keeping_its_rows(gate, pg_dsn):
    """Schema 2 adds ``fleet_gate_reports``; a database made by schema 1 (its tables, its
    version) gets it when next opened, and keeps every event."""
    pull_pg("http://gate-1", gate.token, pg_dsn, Network(gate))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # back to what schema 1 made
        conn.execute("DROP TABLE fleet_gate_reports")
        conn.execute("UPDATE fleet_meta SET value = '1' WHERE key = 'schema_version'")
    with PgTarget(pg_dsn) as target:
        target.write_gate_report("gate-1", date(2026, 3, 2), "Asia/Shanghai", {"x": 1}, True)
        assert target.final_report_days("gate-1", date(2026, 3, 1)) == {date(2026, 3, 2)}
    with psycopg.connect(pg_dsn) as conn:
        version = conn.execute("SELECT value FROM fleet_meta WHERE key = 'schema_version'")
        assert version.fetchone()[0] == str(SCHEMA_VERSION)
    assert central_rows(pg_dsn) == kiosk_rows(gate)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # and a newer one is refused
        conn.execute("UPDATE fleet_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(PgError, match="newer than this program"):
        PgTarget(pg_dsn)
