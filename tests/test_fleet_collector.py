"""``kiosk collect``: config, concurrent pulls, per-kiosk status, status page and /metrics."""

from __future__ import annotations

import json
import socket

import httpx
import psycopg
import pytest
from pgfixture import Network, add_events, central_rows, kiosk_rows, make_kiosk

from checkpoint.cli import main
from kiosk.config import ConfigError
from kiosk.config.fleet import CollectorConfig, FleetSection, load_collector_config
from kiosk.passes import load_private_key, new_key_pair
from office.collector import Collector, StatusServer, _handler_for
from office.listsync import compounds_path, publish_bundle

pytest_plugins = ("pgfixture",)  # pg_cluster, pg_dsn: a real PostgreSQL


@pytest.fixture
def gates(tmp_path, clock):
    cores = [make_kiosk(tmp_path / f"g{i}.db", f"gate-{i}", clock, 10 * (i + 1)) for i in range(3)]
    yield cores
    for core in cores:
        core.store.close()


def _config(gates, monkeypatch, **extra) -> CollectorConfig:
    kiosks = []
    for i, core in enumerate(gates):
        monkeypatch.setenv(f"TOKEN_{i}", core.token)
        kiosks.append({"url": f"http://{core.config.site.kiosk_id}", "token_env": f"TOKEN_{i}"})
    return CollectorConfig.model_validate({"kiosks": kiosks, "max_concurrent": 3, **extra})


def _collector(gates, pg_dsn, monkeypatch, net=None, backoff_wait=None, **extra) -> Collector:
    net = net or Network(*gates)
    config = _config(gates, monkeypatch, **extra)
    return Collector(config, pg_dsn, client=net.client(), backoff_wait=backoff_wait)


# --------------------------------------------------------------------------- config


def test_config_needs_exactly_one_token_source_and_unique_urls():
    with pytest.raises(ValueError, match="exactly one of token_env or token_file"):
        CollectorConfig.model_validate({"kiosks": [{"url": "http://a:8000"}]})
    twice = [
        {"url": "http://a:8000/", "token_env": "T"},
        {"url": "http://a:8000", "token_env": "U"},
    ]
    with pytest.raises(ValueError, match="listed twice"):
        CollectorConfig.model_validate({"kiosks": twice})
    with pytest.raises(ValueError, match="greater than or equal to 0.2"):
        CollectorConfig.model_validate(
            {"kiosks": [{"url": "http://a", "token_env": "T"}], "poll_interval_s": 0}
        )


def test_config_file_errors_name_the_field(tmp_path):
    path = tmp_path / "collect.toml"
    path.write_text('[[kiosks]]\nurl = "ftp://gate"\ntoken_env = "T"\nsurprise = 1\n')
    with pytest.raises(ConfigError) as info:
        load_collector_config(path)
    assert any(p.startswith("kiosks[0].url") for p in info.value.problems)
    assert any(p.startswith("kiosks[0].surprise") for p in info.value.problems)


def test_tokens_and_dsn_come_from_the_environment_or_a_file(tmp_path, monkeypatch):
    token_file = tmp_path / "gate.token"
    token_file.write_text("kt_secret\n")
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://a", "token_file": str(token_file)}]}
    )
    assert config.kiosks[0].token() == "kt_secret"
    monkeypatch.delenv("KIOSK_FLEET_DSN", raising=False)
    with pytest.raises(ValueError, match="set KIOSK_FLEET_DSN"):
        config.dsn()
    monkeypatch.setenv("KIOSK_FLEET_DSN", "mysql://x")
    with pytest.raises(ValueError, match="postgresql://"):
        config.dsn()


def test_kiosk_side_fleet_section_is_strict():
    assert FleetSection().lists_url is None
    assert FleetSection(lists_url="http://office:9110/lists/bundle").lists_poll_s == 300
    with pytest.raises(ValueError):
        FleetSection(lists_url="file:///etc/passwd")
    with pytest.raises(ValueError):
        FleetSection(lists_poll_s=1)


# --------------------------------------------------------------------------- pulling


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_one_round_pulls_every_kiosk_into_postgresql(gates, pg_dsn, monkeypatch):
    collector = _collector(gates, pg_dsn, monkeypatch)
    statuses = collector.run_once()
    collector.stop()
    assert [(s.kiosk_id, s.state, s.last_seq, s.head_seq, s.lag_events) for s in statuses] == [
        ("gate-0", "ok", 10, 10, 0),
        ("gate-1", "ok", 20, 20, 0),
        ("gate-2", "ok", 30, 30, 0),
    ]
    assert central_rows(pg_dsn) == sum((kiosk_rows(g) for g in gates), [])


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_failing_kiosk_is_reported_and_does_not_stop_the_others(gates, pg_dsn, monkeypatch):
    net = Network(*gates, faults=lambda r: "500" if r.url.host == "gate-1" else None)
    waits: list[float] = []  # the pause before a retry, recorded instead of waited
    collector = _collector(
        gates, pg_dsn, monkeypatch, net=net, backoff_wait=waits.append, retries=2
    )
    collector.run_once()
    add_events(gates[0], 4)
    statuses = {s.kiosk_id or s.url: s for s in collector.run_once()}
    collector.stop()
    bad = statuses["http://gate-1"]
    assert bad.state == "error" and bad.consecutive_failures == 2 and bad.errors == 2
    assert "HTTP 500" in bad.last_error and bad.last_success_at is None
    assert waits == [0.5, 0.5]  # one pause between the two tries, in each round
    assert statuses["gate-0"].last_seq == 14 and statuses["gate-0"].events_inserted == 14
    assert central_rows(pg_dsn, "gate-1") == []
    assert central_rows(pg_dsn, "gate-0") == kiosk_rows(gates[0])


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_missing_token_is_a_status_error_not_a_crash(gates, pg_dsn, monkeypatch):
    collector = _collector(gates, pg_dsn, monkeypatch)
    monkeypatch.delenv("TOKEN_2")
    statuses = collector.run_once()
    collector.stop()
    assert statuses[2].state == "error" and "TOKEN_2 is not set" in statuses[2].last_error
    assert [s.state for s in statuses[:2]] == ["ok", "ok"]


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_database_outage_is_reported_and_the_next_round_reconnects(gates, pg_dsn, monkeypatch):
    collector = _collector(gates, pg_dsn, monkeypatch)
    good_dsn, collector.dsn = collector.dsn, pg_dsn.replace("/kiosk_test", "/no_such_db")
    statuses = collector.run_once()
    assert {s.state for s in statuses} == {"error"}
    assert all(s.last_error.startswith("database:") for s in statuses)
    collector.dsn = good_dsn
    assert {s.state for s in collector.run_once()} == {"ok"}
    collector.stop()
    assert len(central_rows(pg_dsn)) == 60


def test_the_pause_doubles_after_failures_up_to_the_cap(gates, pg_dsn, monkeypatch):
    collector = _collector(gates, pg_dsn, monkeypatch, poll_interval_s=2, error_backoff_max_s=30)
    status = collector.statuses()[0]
    assert collector.delay_after(status) == 2
    status.consecutive_failures = 1
    assert collector.delay_after(status) == 4
    status.consecutive_failures = 3
    assert collector.delay_after(status) == 16
    status.consecutive_failures = 50
    assert collector.delay_after(status) == 30
    collector.stop()


# --------------------------------------------------------------------------- status


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_metrics_and_status_page_show_each_kiosk_without_personal_data(gates, pg_dsn, monkeypatch):
    collector = _collector(gates, pg_dsn, monkeypatch)
    collector.run_once()
    text = collector.metrics_text()
    assert 'kiosk_collect_last_seq{kiosk="gate-2"} 30' in text
    assert 'kiosk_collect_lag_events{kiosk="gate-0"} 0' in text
    assert 'kiosk_collect_up{kiosk="gate-1"} 1' in text
    assert "# TYPE kiosk_collect_pulls_total counter" in text
    page = collector.status_html()
    assert "<td>gate-1</td>" in page and "Li Lei" not in page and "Li Lei" not in text
    assert json.loads(json.dumps(collector.status_json()))["kiosks"][0]["last_seq"] == 10
    collector.stop()


def test_status_page_escapes_what_a_kiosk_reports(gates, pg_dsn, monkeypatch):
    collector = _collector(gates, pg_dsn, monkeypatch)
    collector._status["http://gate-0"].last_error = "<script>alert(1)</script>"
    assert "<script>" not in collector.status_html()
    collector.stop()


def test_status_server_serves_page_metrics_and_the_list_bundle(
    gates, pg_dsn, monkeypatch, tmp_path, clock
):
    key_path, _ = new_key_pair(tmp_path / "office", "office")
    bundle = tmp_path / "bundle.json"
    collector = _collector(gates, pg_dsn, monkeypatch, lists_bundle_file=str(bundle))
    server = StatusServer(collector, "127.0.0.1", 0)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/lists/bundle").status_code == 404
            publish_bundle(load_private_key(key_path), {}, bundle, now=clock.now())
            first = http.get("/lists/bundle")
            assert first.status_code == 200 and first.content == bundle.read_bytes()
            etag = first.headers["etag"]
            again = http.get("/lists/bundle", headers={"If-None-Match": etag})
            assert again.status_code == 304 and again.content == b""
            assert "kiosk_collect_lists_bundle_version 1" in http.get("/metrics").text
            assert http.get("/status.json").json()["lists_bundle_version"] == 1
            assert "kiosk collect" in http.get("/").text
            assert http.get("/nope").status_code == 404
    finally:
        server.stop()
        collector.stop()


def test_a_gate_naming_its_compound_is_served_the_bundle_naming_compounds(
    gates, pg_dsn, monkeypatch, tmp_path, clock
):
    """``/lists/bundle?compound=ID`` answers the form naming each entry's compound; the plain
    question, and an unreadable one, the plain form; a plain form published later by an
    older ``kiosk fleet publish`` (the other one not rewritten) wins."""
    key = load_private_key(new_key_pair(tmp_path / "office", "office")[0])
    bundle = tmp_path / "bundle.json"
    collector = _collector(gates, pg_dsn, monkeypatch, lists_bundle_file=str(bundle))
    server = StatusServer(collector, "127.0.0.1", 0)
    server.start()
    lists = {"compounds": ["east"], "quarantine": [{"household": "3-201", "compound": "east",
                             "from": "2026-03-01", "until": "2026-03-14"}]}  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
            assert http.get("/lists/bundle?compound=east").status_code == 404
            publish_bundle(key, lists, bundle, now=clock.now())
            tagged = http.get("/lists/bundle", params={"compound": "east"})
            assert tagged.content == compounds_path(bundle).read_bytes()
            assert http.get("/lists/bundle").content == bundle.read_bytes()
            flood = "&".join(f"f{i}=1" for i in range(40)) + "&compound=east"
            assert http.get(f"/lists/bundle?{flood}").content == bundle.read_bytes()
            etag = tagged.headers["etag"]
            again = http.get("/lists/bundle?compound=east", headers={"If-None-Match": etag})
            assert again.status_code == 304
            body = bundle.read_bytes().replace(b'\\"version\\":1', b'\\"version\\":2')
            bundle.write_bytes(body)  # as an older publish would: the plain form only
            assert http.get("/lists/bundle?compound=east").content == body
    finally:
        server.stop()
        collector.stop()


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_cli_collect_once(gates, pg_dsn, monkeypatch, tmp_path, capsys):
    config = tmp_path / "collect.toml"
    config.write_text(
        "".join(
            f'[[kiosks]]\nurl = "http://{g.config.site.kiosk_id}"\ntoken_env = "TOKEN_{i}"\n'
            for i, g in enumerate(gates)
        )
    )
    for i, g in enumerate(gates):
        monkeypatch.setenv(f"TOKEN_{i}", g.token)
    monkeypatch.setenv("KIOSK_FLEET_DSN", pg_dsn)
    real_client, transport = httpx.Client, httpx.MockTransport(Network(*gates))
    monkeypatch.setattr(httpx, "Client", lambda **kw: real_client(transport=transport))
    assert main(["collect", "--config", str(config), "--once"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["last_seq"] for line in lines] == [10, 20, 30]
    assert main(["collect", "--config", str(config), "--once", "--every", "15m"]) == 0
    capsys.readouterr()
    with psycopg.connect(pg_dsn) as conn:  # cron's */15 said: the next run within 900 s
        row = conn.execute("SELECT value FROM fleet_meta WHERE key = 'collector.runs'")
        assert json.loads(row.fetchone()[0])[-1][3] == 900.0
    monkeypatch.delenv("KIOSK_FLEET_DSN")
    assert main(["collect", "--config", str(config), "--once"]) == 2
    assert "set KIOSK_FLEET_DSN" in capsys.readouterr().err


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_gate_reports_are_asked_for_at_most_every_interval_and_a_refusal_is_shown(
    gates, pg_dsn, monkeypatch
):
    """The ledger figures are asked for with the pull's token, bounded by the interval; a
    gate refusing the report is the kiosk's ``report_error`` (its events still come)."""
    now = [1000.0]
    refusal = {"detail": "this token lacks the 'logs:read' or 'stats:read' scope"}
    net = Network(
        *gates,
        faults=lambda r: (
            httpx.Response(403, json=refusal) if r.url.path == "/api/v1/stats" else None
        ),
    )
    collector = Collector(
        _config(gates, monkeypatch), pg_dsn, client=net.client(),
        monotonic=lambda: now[0], report_interval_s=300,
    )  # fmt: skip

    def asked():
        return sum(r.url.path == "/api/v1/stats" for r in net.requests)

    try:
        statuses = collector.run_once()
        assert {s.state for s in statuses} == {"ok"} and asked() == 3
        assert all("stats:read" in s.report_error and s.report_day is None for s in statuses)
        now[0] += 299
        collector.run_once()
        assert asked() == 3
        now[0] += 2
        collector.run_once()
        assert asked() == 6
    finally:
        collector.stop()
    assert central_rows(pg_dsn, "gate-2") == kiosk_rows(gates[2])


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_the_pages_of_the_concurrent_pulls_together_are_bounded(gates, pg_dsn, monkeypatch):
    """Every pull of the collector could read a 256 MiB page (parsed, ~5x more), times
    ``max_concurrent``: one broken or hostile kiosk, or a few, an out-of-memory kill of the
    office PC. The pulls running at once share ``COLLECT_PAGE_BYTES``."""
    from office import collector as collector_module
    from office.pull import Puller

    caps: list[int] = []

    class Recording(Puller):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            caps.append(self.max_page_bytes)

    monkeypatch.setattr(collector_module, "Puller", Recording)
    collector = _collector(gates, pg_dsn, monkeypatch, max_concurrent=3)
    statuses = collector.run_once()
    collector.stop()
    assert [s.state for s in statuses] == ["ok"] * 3  # 10 to 30 events: far below the cap
    assert len(caps) == 3
    assert 3 * max(caps) <= 256 << 20 == collector_module.COLLECT_PAGE_BYTES


def _raw_answer(port: int, request_line: bytes) -> tuple[bytes, bytes]:
    """The status line and the rest of what the port answers ``request_line`` (with a Host)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request_line + b"\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    status, _, rest = answer.partition(b"\r\n")
    return status, rest


def test_the_status_port_answers_another_method_with_405_not_a_server_error(monkeypatch):
    """A POST, PUT or OPTIONS to the collector's port (a LAN scanner, a gate's health check
    set to the wrong method) got ``501 Unsupported method``: a 5xx, the office's monitoring
    paging for a server fault. It is the asker's: ``405`` with ``Allow: GET, HEAD``. So is
    any other method (TRACE, CONNECT, WebDAV's, an invented one, a lower-case ``get``: methods
    are case-sensitive), and a version it does not speak (``HTTP/2.0``, answered 505 without
    even a status line) is a ``400`` with one."""
    monkeypatch.setenv("TOKEN", "unused")
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-0", "token_env": "TOKEN"}]}
    )
    collector = Collector(config, "postgresql://nobody@127.0.0.1:1/none")
    server = StatusServer(collector, "127.0.0.1", 0)
    server.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
            for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
                answer = http.request(method, "/lists/bundle")
                assert answer.status_code == 405, method
                assert answer.headers["allow"] == "GET, HEAD"
            assert http.get("/nope").status_code == 404
        for line in (
            b"TRACE / HTTP/1.1",
            b"CONNECT 127.0.0.1:443 HTTP/1.1",
            b"PROPFIND /lists/bundle HTTP/1.1",
            b"FOO /status.json HTTP/1.1",
            b"PURGE / HTTP/1.1",
            b"BREW /metrics HTTP/1.1",
            b"get /status.json HTTP/1.1",
        ):
            status, rest = _raw_answer(server.port, line)
            assert status.startswith(b"HTTP/1.0 405 "), line
            assert b"\r\nAllow: GET, HEAD\r\n" in rest, line
        for version in (b"HTTP/2.0", b"HTTP/3.0", b"HTTP/1"):  # the last none it reads
            status, _rest = _raw_answer(server.port, b"GET /status.json " + version)
            assert status.startswith(b"HTTP/1.0 400 "), version
        # HTTP/0.9's two words: http.server's 400 before any handler (docs/fleet.md)
        status, _rest = _raw_answer(server.port, b"POST /")
        assert status.startswith(b"HTTP/1.0 400 Bad HTTP/0.9 request type"), status
    finally:
        server.stop()
        collector.stop()


def test_the_status_ports_handler_is_type_checked_whole():
    """Its ``__getattr__`` answered every ``do_<METHOD>`` http.server looks up (the 405 of
    any other method), and so mypy took any attribute of the handler as one: a misspelt
    ``self.`` anywhere in it passed ``mypy --strict`` and failed only when a request ran it.
    The 405 is ``send_error``'s answer to http.server's 501 now (the test above)."""
    handler = _handler_for(object(), frozenset())  # only kept for its requests
    assert not [c for c in handler.__mro__ if "__getattr__" in vars(c)]


def _connect_each(port: int, sources: int) -> list[socket.socket]:
    """Connections to ``port`` from ``sources`` loopback addresses, one each, until one is not
    taken by the kernel within 0.5 s (under its first SYN retry, 1 s after the first try)."""
    held: list[socket.socket] = []
    for n in range(sources):
        conn = socket.socket()
        conn.bind((f"127.0.0.{n + 2}", 0))
        conn.settimeout(0.5)
        try:
            conn.connect(("127.0.0.1", port))
        except TimeoutError:
            conn.close()
            break
        held.append(conn)
    return held


def test_the_status_port_queues_a_compounds_gates_connecting_at_once(monkeypatch):
    """The port listened with ``socketserver``'s backlog of 5: a compound's gates fetching
    ``/lists/bundle`` in the same second, past the few the kernel queued before the server
    took them, waited for their SYN's retry (1 s, 3 s, 7 s). It queues ``ACCEPT_BACKLOG``, as
    the kiosk's own server: here 40 gates connect while it accepts none, then each is served."""
    monkeypatch.setenv("TOKEN", "unused")
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-0", "token_env": "TOKEN"}]}
    )
    collector = Collector(config, "postgresql://nobody@127.0.0.1:1/none")
    server = StatusServer(collector, "127.0.0.1", 0)  # listening; nothing accepted till start
    try:
        held = _connect_each(server.port, 40)
    finally:
        server.start()
    try:
        assert len(held) == 40
        for conn in held:
            conn.settimeout(10)
            conn.sendall(b"GET /nope HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            assert conn.recv(100).startswith(b"HTTP/1.0 404 ")
    finally:
        for conn in held:
            conn.close()
        server.stop()
        collector.stop()
