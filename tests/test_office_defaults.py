"""The office side, secure by default: the list bundle on the LAN, credentials in kiosk URLs.

No PostgreSQL needed: a ``Collector`` connects only when it pulls, and these tests never do."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from checkpoint.cli import fleet_cmd, main
from kiosk.config.fleet import CollectorConfig
from kiosk.passes import load_private_key, new_key_pair
from office import collector as collector_mod
from office import pg
from office.collector import Collector, StatusServer
from office.listsync import ListSync, publish_bundle

NOWHERE_DSN = "postgresql://collector@db.invalid/fleet"
QUARANTINED = "王秀英"


@pytest.fixture
def bundle(tmp_path, clock):
    key_path, _ = new_key_pair(tmp_path / "office", "office")
    path = tmp_path / "bundle.json"
    lists = {"quarantine": [{"household": "3-201", "holder": QUARANTINED,
                             "from": "2026-03-01", "until": "2026-03-14"}]}  # fmt: skip
    publish_bundle(load_private_key(key_path), lists, path, now=clock.now())
    return path


def _collector(bundle, monkeypatch, **extra) -> Collector:
    monkeypatch.setenv("TOKEN", "unused")
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-1", "token_env": "TOKEN"}],
         "lists_bundle_file": str(bundle), **extra}
    )  # fmt: skip
    return Collector(config, NOWHERE_DSN)


def _get(server: StatusServer, path: str, **headers: str) -> httpx.Response:
    # The server listens on every address; the test reaches it over loopback.
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
        return http.get(path, headers=headers)


# --------------------------------------------------------------------------- the list bundle


def test_on_the_lan_without_a_lists_token_the_bundle_is_refused(bundle, monkeypatch):
    collector = _collector(bundle, monkeypatch)
    server = StatusServer(collector, "0.0.0.0", 0)  # noqa: S104 - the LAN case itself
    server.start()
    try:
        # Before: served to anyone who could reach the port (quarantined households, names).
        refused = _get(server, "/lists/bundle")
        assert refused.status_code == 403, refused.text
        assert QUARANTINED not in refused.text and "3-201" not in refused.text
        assert "lists_token_env" in refused.json()["detail"]
        # The rest of the status port, and so the collector's main job, carries on.
        assert _get(server, "/status.json").status_code == 200
    finally:
        server.stop()
        collector.stop()


@pytest.mark.slow
def test_on_the_lan_with_a_lists_token_only_the_gates_get_the_bundle(bundle, monkeypatch):
    monkeypatch.setenv("LISTS_TOKEN", "the-gates-token-0123456789")
    collector = _collector(bundle, monkeypatch, lists_token_env="LISTS_TOKEN")
    server = StatusServer(collector, "0.0.0.0", 0)  # noqa: S104
    server.start()
    try:
        assert _get(server, "/lists/bundle").status_code == 401
        good = _get(server, "/lists/bundle", Authorization="Bearer the-gates-token-0123456789")
        assert good.status_code == 200 and good.content == bundle.read_bytes()
    finally:
        server.stop()
        collector.stop()


@pytest.mark.slow
def test_guessing_the_lists_token_is_limited_per_address(bundle, monkeypatch, clock):
    # The lists token is the operator's own string (any printable ASCII), and the status
    # port let the LAN try one after another as fast as it answered: a weak token was
    # found in minutes, and with it the names of the quarantined and their dwellings.
    monkeypatch.setenv("LISTS_TOKEN", "the-gates-token-0123456789")
    monkeypatch.setenv("TOKEN", "unused")
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-1", "token_env": "TOKEN"}],
         "lists_bundle_file": str(bundle), "lists_token_env": "LISTS_TOKEN"}
    )  # fmt: skip
    collector = Collector(config, NOWHERE_DSN, clock=clock)
    good = "Bearer the-gates-token-0123456789"
    server = StatusServer(collector, "0.0.0.0", 0)  # noqa: S104
    server.start()
    try:
        guesses = [
            _get(server, "/lists/bundle", Authorization=f"Bearer guess-{i}").status_code
            for i in range(30)
        ]
        assert 429 in guesses and set(guesses) == {401, 429}
        waited = _get(server, "/lists/bundle", Authorization=good)
        assert waited.status_code == 429 and int(waited.headers["Retry-After"]) >= 1
        assert QUARANTINED not in waited.text
        assert guesses.index(429) == collector_mod.BUNDLE_GUESSES
    finally:
        server.stop()

    def asked(token: str, client: str) -> int | None:
        refusal = collector.bundle_refusal(token, lan=True, client=client)
        return None if refusal is None else refusal[0]

    try:
        assert asked(good, "127.0.0.1") == 429  # the address waits, whatever it presents
        assert asked(good, "192.168.1.21") is None  # a gate elsewhere is served
        clock.advance(60)
        assert asked(good, "127.0.0.1") is None
    finally:
        collector.stop()


def test_guessing_the_lists_token_from_rotating_ipv6_addresses_is_limited_as_one(
    bundle, monkeypatch, clock
):
    # One host with an IPv6 /64 guessed from a new address each time, never slowed.
    monkeypatch.setenv("LISTS_TOKEN", "the-gates-token-0123456789")
    monkeypatch.setenv("TOKEN", "unused")
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-1", "token_env": "TOKEN"}],
         "lists_bundle_file": str(bundle), "lists_token_env": "LISTS_TOKEN"}
    )  # fmt: skip
    collector = Collector(config, NOWHERE_DSN, clock=clock)
    try:
        codes = [
            (collector.bundle_refusal(f"Bearer g{n}", lan=True, client=f"2001:db8::{n:x}")
             or (None,))[0]
            for n in range(1, collector_mod.BUNDLE_GUESSES + 3)
        ]  # fmt: skip
        assert codes[-1] == 429, codes
        good = "Bearer the-gates-token-0123456789"
        assert collector.bundle_refusal(good, lan=True, client="2001:db8:0:1::1") is None
        whole, refusal = collector.status_view("Bearer x", "::ffff:10.0.0.1")
        assert refusal is not None and refusal[0] == 401
    finally:
        collector.stop()


def test_on_loopback_the_bundle_is_served_without_a_token_as_before(bundle, monkeypatch):
    collector = _collector(bundle, monkeypatch)
    server = StatusServer(collector, "127.0.0.1", 0)
    server.start()
    try:
        served = _get(server, "/lists/bundle")
        assert served.status_code == 200 and served.content == bundle.read_bytes()
    finally:
        server.stop()
        collector.stop()


def _start_collect(tmp_path, monkeypatch, capsys, bundle, extra: str = "") -> list[str]:
    """``kiosk collect`` up to its loop, on fakes: the database check and the pulls are
    skipped, the stop event is already set. Returns its stderr lines."""
    config = tmp_path / "collect.toml"
    config.write_text(
        f'status_host = "0.0.0.0"\nstatus_port = 0\nlists_bundle_file = "{bundle}"\n{extra}'
        '[[kiosks]]\nurl = "http://gate-1"\ntoken_env = "TOKEN"\n'
    )
    monkeypatch.setenv("TOKEN", "unused")
    monkeypatch.setenv("KIOSK_FLEET_DSN", NOWHERE_DSN)
    monkeypatch.setattr(pg, "PgTarget", lambda *a, **k: SimpleNamespace(close=lambda: None))
    pulls_go_on: list[bool] = []
    monkeypatch.setattr(collector_mod.Collector, "start", lambda self: pulls_go_on.append(True))

    class Stopped:
        def wait(self, timeout: float) -> bool:
            return True

        def set(self) -> None:
            pass

    monkeypatch.setattr(fleet_cmd, "threading", SimpleNamespace(Event=Stopped))
    monkeypatch.setattr(
        fleet_cmd, "signal", SimpleNamespace(signal=lambda *a: None, SIGTERM=15, SIGINT=2)
    )
    assert main(["collect", "--config", str(config)]) == 0
    assert pulls_go_on == [True]  # the collector still pulls the logs
    return capsys.readouterr().err.splitlines()


def test_collect_says_in_one_line_at_start_that_the_bundle_is_refused(
    tmp_path, monkeypatch, capsys, bundle
):
    lines = _start_collect(tmp_path, monkeypatch, capsys, bundle)
    about = [line for line in lines if "/lists/bundle" in line]
    # Before: "served to anyone reaching ...", and it was.
    assert len(about) == 1, lines
    assert "refused" in about[0] and "lists_token_env" in about[0]
    assert "served to anyone" not in about[0]


def test_collect_says_at_start_when_the_named_lists_token_is_not_set(
    tmp_path, monkeypatch, capsys, bundle
):
    monkeypatch.delenv("LISTS_TOKEN", raising=False)
    lines = _start_collect(
        tmp_path, monkeypatch, capsys, bundle, 'lists_token_env = "LISTS_TOKEN"\n'
    )
    about = [line for line in lines if "/lists/bundle" in line]
    assert len(about) == 1, lines
    assert "LISTS_TOKEN" in about[0] and "not set" in about[0]


def test_a_gate_refused_the_bundle_is_told_which_setting_is_missing(clock):
    def office(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"detail": "set lists_token_env"})

    lists = SimpleNamespace(current=SimpleNamespace(freshness=SimpleNamespace(bundle_version=3)))
    sync = ListSync(
        lists,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        "http://office.lan:9110/lists/bundle",
        clock,
        client=httpx.Client(transport=httpx.MockTransport(office)),
    )
    result = sync.check()
    # Before: "HTTP 403", and the gate's operator had to guess.
    assert result.outcome == "error"
    assert "403" in result.message and "[fleet] lists_token_env" in result.message


# --------------------------------------------------------------------------- credentials in URLs

SECRET = "s3cret-pw"
WITH_PASSWORD = f"http://office:{SECRET}@127.0.0.1:9"


def test_a_collector_config_with_a_password_in_a_kiosk_url_is_refused(tmp_path):
    from kiosk.config import ConfigError
    from kiosk.config.fleet import load_collector_config

    path = tmp_path / "collect.toml"
    path.write_text(f'[[kiosks]]\nurl = "{WITH_PASSWORD}"\ntoken_env = "T"\n')
    with pytest.raises(ConfigError) as info:
        load_collector_config(path)
    # Before: accepted, then shown on the status page, in /status.json and in the logs.
    assert any(p.startswith("kiosks[0].url") and "password" in p for p in info.value.problems)
    assert SECRET not in str(info.value)


def test_a_gate_lists_url_with_a_password_is_refused():
    from pydantic import ValidationError

    from kiosk.config.fleet import FleetSection

    with pytest.raises(ValidationError) as info:
        FleetSection(lists_url=f"http://office:{SECRET}@office.lan:9110/lists/bundle")
    messages = [err["msg"] for err in info.value.errors()]
    assert any("password" in m for m in messages) and not any(SECRET in m for m in messages)


def test_kiosk_pull_refuses_a_password_in_the_url_without_showing_it(tmp_path, capsys):
    into = tmp_path / "pulled.db"
    code = main(["pull", WITH_PASSWORD, "--token", "t", "--retries", "1", "--into", str(into)])
    err = capsys.readouterr().err
    # Before: pulled (here: failed to connect), and the error line showed the password.
    assert code == 2, err
    assert "password" in err and SECRET not in err
    assert not into.exists()


def test_the_puller_refuses_a_password_in_the_url_and_stores_nothing(tmp_path):
    from office.pull import Puller, PullError

    def kiosk(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"events": [], "last": 0})

    client = httpx.Client(transport=httpx.MockTransport(kiosk))
    with Puller(tmp_path / "pulled.db", client=client) as puller:
        # Before: pulled, and pull_sources kept the URL, password and all.
        with pytest.raises(PullError) as info:
            puller.pull(WITH_PASSWORD, "t")
        assert SECRET not in str(info.value)
        sources = puller.target.conn.execute("SELECT url FROM pull_sources").fetchall()  # type: ignore[attr-defined]
    assert sources == []


def test_one_lan_host_holding_idle_connections_leaves_the_status_port_to_the_gates(
    bundle, monkeypatch
):
    # The status port served 64 connections in all, whoever held them: one machine on the
    # LAN opening idle ones (each held for the 10 s timeout, opened again) had every gate's
    # /lists/bundle answered 503 busy, for as long as it kept at it.
    import socket

    collector = _collector(bundle, monkeypatch)
    server = StatusServer(collector, "127.0.0.1", 0, max_connections=8, max_per_client=2)
    server.start()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as third:
            third.settimeout(5)
            assert third.recv(200).startswith(b"HTTP/1.0 503")  # that host's share is taken
        gate = httpx.HTTPTransport(local_address="127.0.0.2")  # another host
        with httpx.Client(transport=gate, base_url=f"http://127.0.0.1:{server.port}") as http:
            assert http.get("/lists/bundle").status_code == 200
    finally:
        for conn in idle:
            conn.close()
        server.stop()
        collector.stop()


def test_client_slots_count_an_address_alone_and_an_ipv6_64_together():
    from kiosk.ratelimit import ClientSlots

    slots = ClientSlots(per_address=2, per_network=3)
    assert slots.take("10.0.0.1") and slots.take("10.0.0.1") and not slots.take("10.0.0.1")
    assert slots.take("::ffff:10.0.0.2") and slots.take("10.0.0.2")
    assert not slots.take("::ffff:10.0.0.2")  # an IPv4-mapped address is its IPv4 one
    assert all(slots.take(f"2001:db8::{n}") for n in range(1, 4))
    assert not slots.take("2001:db8::99")  # the /64's share is taken
    assert slots.take("2001:db8:0:1::1")
    slots.give("2001:db8::2")
    assert slots.take("2001:db8::77")
    slots.give("10.0.0.1")
    assert slots.take("10.0.0.1")
