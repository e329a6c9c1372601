"""Collector regressions: defects found in the field review, each test failing before its fix (a
real PostgreSQL: tests/pgfixture.py)."""

from __future__ import annotations

import pytest
from pgfixture import Network, central_rows, kiosk_rows, make_kiosk

from kiosk.config.fleet import CollectorConfig
from office.collector import Collector
from office.pg import PgError, PgTarget
from office.pull import PullError

pytest_plugins = ("pgfixture",)  # pg_cluster, pg_dsn: a real PostgreSQL


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
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


def test_the_list_bundle_can_be_kept_from_anyone_without_the_gates_token(
    tmp_path, clock, pg_dsn, monkeypatch
):
    import httpx

    from kiosk.passes import load_private_key, new_key_pair
    from office.collector import StatusServer
    from office.listsync import publish_bundle

    key_path, _ = new_key_pair(tmp_path / "office", "office")
    bundle = tmp_path / "bundle.json"
    lists = {"quarantine": [{"household": "3-201", "holder": "王秀英",
                             "from": "2026-03-01", "until": "2026-03-14"}]}  # fmt: skip
    publish_bundle(load_private_key(key_path), lists, bundle, now=clock.now())
    monkeypatch.setenv("TOKEN", "unused")
    monkeypatch.setenv("LISTS_TOKEN", "the-gates-token-0123456789")
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-1", "token_env": "TOKEN"}],
         "lists_bundle_file": str(bundle), "lists_token_env": "LISTS_TOKEN"}
    )  # fmt: skip
    collector = Collector(config, pg_dsn)
    server = StatusServer(collector, "127.0.0.1", 0)
    server.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
            # Before: no way to protect it; anyone who could reach the gates' URL read which
            # households and people are in home quarantine.
            anyone = http.get("/lists/bundle")
            assert anyone.status_code == 401 and "王秀英" not in anyone.text
            assert anyone.headers["www-authenticate"] == "Bearer"
            wrong = http.get("/lists/bundle", headers={"Authorization": "Bearer guess"})
            assert wrong.status_code == 401
            good = {"Authorization": "Bearer the-gates-token-0123456789"}
            gate = http.get("/lists/bundle", headers=good)
            assert gate.status_code == 200 and gate.content == bundle.read_bytes()
            etag = {"If-None-Match": gate.headers["etag"]}
            assert http.get("/lists/bundle", headers=etag).status_code == 401
            assert http.get("/lists/bundle", headers={**good, **etag}).status_code == 304
            monkeypatch.delenv("LISTS_TOKEN")  # named but unset: refused, not served to all
            assert http.get("/lists/bundle", headers=good).status_code == 401
    finally:
        server.stop()
        collector.stop()


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_the_status_port_closes_a_connection_that_sends_nothing(tmp_path, pg_dsn, monkeypatch):
    import socket

    from office.collector import StatusServer

    monkeypatch.setenv("TOKEN", "unused")
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-1", "token_env": "TOKEN"}]}
    )
    collector = Collector(config, pg_dsn)
    server = StatusServer(collector, "127.0.0.1", 0, timeout_s=0.3)
    server.start()
    try:
        # Before: one thread per connection and no timeout, so idle connections from the LAN
        # (the gates reach this port for their lists) stayed open, each holding a thread.
        with socket.create_connection(("127.0.0.1", server.port)) as idle:
            idle.settimeout(10)
            assert idle.recv(1) == b""  # closed by the server, well before 10 s
        with socket.create_connection(("127.0.0.1", server.port)) as slow:
            slow.settimeout(10)
            slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the headers never end
            assert slow.recv(1) == b""
    finally:
        server.stop()
        collector.stop()


def _served_three(tmp_path, clock, pg_dsn, monkeypatch):
    """The office publishes version 1 (its folder backed up then), 2 and 3, and a collector
    serving the bundle to one gate: (the key's path, the bundle, the backup, the gate, the
    collector)."""
    from kiosk.passes import load_private_key, new_key_pair
    from office.listsync import publish_bundle

    key_path, _ = new_key_pair(tmp_path / "office", "office")
    key = load_private_key(key_path)
    bundle = tmp_path / "www" / "bundle.json"
    publish_bundle(key, {}, bundle, now=clock.now())
    backup = {p: p.read_bytes() for p in bundle.parent.iterdir()}
    for _ in range(2):
        publish_bundle(key, {}, bundle, now=clock.now())
    gate = make_kiosk(tmp_path / "gate.db", "gate-1", clock)
    monkeypatch.setenv("TOKEN", gate.token)
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-1", "token_env": "TOKEN"}],
         "lists_bundle_file": str(bundle)}
    )  # fmt: skip
    collector = Collector(config, pg_dsn, client=Network(gate).client(), report_interval_s=0)
    return key_path, bundle, backup, gate, collector


def test_a_whole_bundle_folder_restored_from_a_backup_does_not_send_versions_back(
    tmp_path, clock, pg_dsn, monkeypatch, capsys
):
    """The office's bundle folder (bundle.json and the highest version kept beside it) was
    restored from last week's backup, at version 1, while the collector had served version 3
    to the gates: the next publish was version 2, refused by every gate as a rollback. The
    collector keeps the highest version it served in the database (``lists.version_served``)
    and publish, given the database, goes on above it and says so."""
    import json

    from checkpoint.cli import main

    key_path, bundle, backup, gate, collector = _served_three(tmp_path, clock, pg_dsn, monkeypatch)
    try:
        assert collector.run_once()[0].state == "ok"
    finally:
        collector.stop()
        gate.store.close()
    for path, body in backup.items():
        path.write_bytes(body)
    lists = tmp_path / "lists.json"
    lists.write_text('{"quarantine": []}', encoding="utf-8")
    monkeypatch.setenv("KIOSK_FLEET_DSN", pg_dsn)
    argv = ["fleet", "publish", "--key", str(key_path), "--lists", str(lists)]
    assert main([*argv, "--out", str(bundle)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["version"] == 4
    assert "version 3 served to the gates" in err and "published as version 4" in err


def test_two_office_machines_publishing_at_once_never_sign_one_version_twice(
    tmp_path, clock, pg_dsn
):
    """The clerk's PC and the office server publish at the same moment into a folder each
    (or a network share whose flock is local only): both read version 1 and signed their own
    lists as version 2, and a gate holding one took the other for already applied, so one
    office's new quarantine never reached it. With the office's database each publish claims
    its version there first: the second one is 3, and says why."""
    from kiosk.passes import load_private_key, new_key_pair
    from office.listsync import bundle_version, publish_bundle
    from office.pg import claim_version, served_version

    key = load_private_key(new_key_pair(tmp_path / "office", "office")[0])
    first, second = tmp_path / "pc" / "bundle.json", tmp_path / "server" / "bundle.json"
    seen = served_version(pg_dsn)  # both read the same version before either writes
    one = publish_bundle(key, {}, first, now=clock.now(), served=seen,
                         claim=lambda v: claim_version(pg_dsn, v))  # fmt: skip
    two = publish_bundle(key, {}, second, now=clock.now(), served=seen,
                         claim=lambda v: claim_version(pg_dsn, v))  # fmt: skip
    assert (one.version, two.version) == (1, 2)
    assert bundle_version(second.read_bytes()) == 2
    assert "version 1 was taken by another publish" in two.notice
    assert served_version(pg_dsn) == 2


def test_the_status_says_when_the_bundle_file_is_below_what_the_gates_were_served(
    tmp_path, clock, pg_dsn, monkeypatch
):
    """After the bundle's folder was restored from a backup, the collector's status showed
    version 1 as the published lists; the gates held version 3's and refused 1, and nothing
    told the office so until someone published again."""
    _, _, backup, gate, collector = _served_three(tmp_path, clock, pg_dsn, monkeypatch)
    try:
        collector.run_once()
        assert collector.status_json()["lists_bundle_notice"] is None
        for path, body in backup.items():
            path.write_bytes(body)
        collector.run_once()
        status = collector.status_json()
    finally:
        collector.stop()
        gate.store.close()
    assert status["lists_bundle_version"] == 1
    assert status["lists_bundle_notice"] == (
        "the bundle file holds version 1, below version 3 served to the gates (restored from"
        " a backup?): they keep version 3's lists and refuse this one until a publish above it"
    )
