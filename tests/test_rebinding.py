"""Attacks that come through a browser on the LAN: DNS rebinding, cross-site requests, framing.

A page on ``evil.example`` whose name is made to resolve to the kiosk (DNS rebinding) is, to
the browser, the same origin as the kiosk: its scripts read every answer. What tells the kiosk
apart is the ``Host`` header, which names the attacker's domain. These tests send the
requests that browser would send, to the app as the daemon serves it
(``checkpoint.server.server_config``), from the kiosk's own Chromium (``127.0.0.1``) and from a
guard's PC on the LAN.
"""

from __future__ import annotations

import socket

import httpx
import pytest
from fastapi.testclient import TestClient

from checkpoint.server import server_config
from kiosk.config.web import WebSection
from ui.app import create_app

EVIL = "http://evil.example:8000"


def served(core, web: WebSection | None = None, client: str = "127.0.0.1") -> TestClient:
    """The app as ``kiosk run`` serves it (its edge middleware included), seen from
    ``client``; requests go to ``EVIL`` unless a test names another base."""
    app = server_config(create_app(core), web or core.config.web).app
    return TestClient(app, base_url=EVIL, client=(client, 50000))


@pytest.mark.parametrize(
    "path", ["/kiosk", "/kiosk/preview.jpg", "/api/v1/health", "/guard/login", "/metrics"]
)
def test_a_rebound_name_reads_nothing_from_any_face(guard_core, path):
    # The kiosk's own Chromium visits evil.example, whose name then resolves to 127.0.0.1:
    # the screen's page, its preview (frames carry pass codes) and every other face answered
    # it as the kiosk's own screen.
    with served(guard_core) as browser:
        response = browser.get(path, headers={"Origin": EVIL})
    assert response.status_code == 421, (path, response.status_code)
    assert "evil.example" not in response.text  # nothing of the request echoed back


def test_a_rebound_page_cannot_press_the_kiosks_direction_buttons(guard_core):
    # POST /kiosk/direction checks that Origin names the Host it was sent to: after a
    # rebinding both say evil.example, so the check passed.
    assert guard_core.runner.engine.direction == "in"
    with served(guard_core) as browser:
        response = browser.post(
            "/kiosk/direction", json={"direction": "out"}, headers={"Origin": EVIL}
        )
    assert response.status_code == 421
    assert guard_core.runner.engine.direction != "out"


def test_a_rebound_page_cannot_lock_the_guard_out_with_wrong_passwords(guard_core):
    # From the guard's PC the rebound page can fetch the login form and post wrong
    # passwords: the guard's own address then waits (429) at the real console.
    with served(guard_core, client="192.168.1.20") as browser:
        assert browser.get("/guard/login").status_code == 421
        response = browser.post(
            "/guard/login", data={"name": "alice", "password": "x"}, headers={"Origin": EVIL}
        )
    assert response.status_code == 421


HOSTS = [
    "127.0.0.1:8000",
    "localhost:8000",
    "LOCALHOST",
    "[::1]:8000",
    "192.168.1.50:8000",  # a LAN address: the kiosk is reached by IP in most installs
    "192.168.1.50",
    "[fe80::1]",
    f"{socket.gethostname()}:8000",
    f"{socket.gethostname()}.local:8000",
    f"{socket.gethostname()}.local.",
]


@pytest.mark.parametrize("host", HOSTS)
def test_the_kiosk_is_still_served_under_its_addresses_and_its_own_names(guard_core, host):
    with served(guard_core) as browser:
        response = browser.get("/guard/login", headers={"Host": host})
    assert response.status_code == 200, host


def test_a_name_of_the_sites_own_is_served_once_configured(guard_core):
    web = guard_core.config.web.model_copy(update={"allowed_hosts": ("gate-01.lan",)})
    with served(guard_core, web) as browser:
        assert browser.get("/guard/login", headers={"Host": "Gate-01.LAN:8000"}).status_code == 200
        assert browser.get("/guard/login", headers={"Host": "gate-02.lan"}).status_code == 421
        assert browser.get("/guard/login", headers={"Host": "x.gate-01.lan"}).status_code == 421


def test_a_url_given_as_an_allowed_host_is_a_config_error_naming_the_key():
    from kiosk.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as info:
        parse_config({"web": {"allowed_hosts": ["http://gate-01.lan:8000"]}})
    (problem,) = info.value.problems
    assert problem.startswith("web.allowed_hosts:") and "gate-01.lan" in problem
    web = parse_config({"web": {"allowed_hosts": ["Gate-01.LAN.", "10.0.0.5"]}}).web
    assert web.allowed_hosts == ("gate-01.lan", "10.0.0.5")


def test_refused_hosts_are_logged_once_per_interval_with_a_count(caplog):
    import asyncio

    from checkpoint.server import HOST_LOG_EVERY_S, HostCheck

    async def app(scope, receive, send):  # never reached
        raise AssertionError(scope)

    now = [0.0]
    check = HostCheck(app, frozenset({"localhost"}), monotonic=lambda: now[0])
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def one(host: bytes) -> None:
        scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", host)]}
        await check(scope, None, send)

    with caplog.at_level("WARNING", logger="checkpoint.server"):
        for _ in range(50):
            asyncio.run(one(b"evil.example"))
        now[0] += HOST_LOG_EVERY_S
        asyncio.run(one(b"evil.example:8000"))
    lines = [r.getMessage() for r in caplog.records if "evil.example" in r.getMessage()]
    assert len(lines) == 2 and "(51 so far)" in lines[1]
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [421] * 51


# --------------------------------------------------------------- the office's status server


@pytest.fixture
def office(tmp_path, clock, monkeypatch):
    """``kiosk collect``'s status server on loopback (its default), serving a bundle that
    names a quarantined household; the collector never pulls here."""
    from kiosk.config.fleet import CollectorConfig
    from kiosk.passes import load_private_key, new_key_pair
    from office.collector import Collector
    from office.listsync import publish_bundle

    key_path, _ = new_key_pair(tmp_path / "keys", "office")
    bundle = tmp_path / "bundle.json"
    lists = {"quarantine": [{"household": "3-201", "holder": "Wang Xiuying",
                             "from": "2026-03-01", "until": "2026-03-14"}]}  # fmt: skip
    publish_bundle(load_private_key(key_path), lists, bundle, now=clock.now())
    monkeypatch.setenv("TOKEN", "unused")

    def start(**extra):
        from office.collector import StatusServer

        config = CollectorConfig.model_validate(
            {"kiosks": [{"url": "http://gate-1", "token_env": "TOKEN"}],
             "lists_bundle_file": str(bundle), **extra}
        )  # fmt: skip
        collector = Collector(config, "postgresql://collector@db.invalid/fleet")
        server = StatusServer(collector, config.status_host, 0, allowed_hosts=config.allowed_hosts)
        server.start()
        started.append((server, collector))
        return server

    started: list = []
    yield start
    for server, collector in started:
        server.stop()
        collector.stop()


def office_get(server, path: str, host: str) -> httpx.Response:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
        return http.get(path, headers={"Host": host})


@pytest.mark.parametrize("path", ["/lists/bundle", "/status.json", "/", "/metrics"])
def test_a_rebound_page_on_the_office_pc_reads_nothing_from_the_status_port(office, path):
    # On loopback (the default) the bundle needs no token: a page on evil.example, its name
    # rebound to 127.0.0.1, read the quarantined households from a browser on the office PC.
    server = office()
    response = office_get(server, path, f"evil.example:{server.port}")
    assert response.status_code == 421, (path, response.status_code)
    assert "3-201" not in response.text and "Wang" not in response.text


@pytest.mark.slow
def test_the_status_port_still_answers_its_addresses_and_configured_names(office):
    server = office(allowed_hosts=["office.lan"])
    for host in (f"127.0.0.1:{server.port}", "localhost", "[::1]:9110", "OFFICE.lan:9110",
                 f"{socket.gethostname()}.local"):  # fmt: skip
        response = office_get(server, "/lists/bundle", host)
        assert response.status_code == 200 and "3-201" in response.text, host
    assert office_get(server, "/lists/bundle", "office.lan.evil.example").status_code == 421


def test_a_machine_named_with_its_domain_answers_to_its_mdns_name(monkeypatch):
    from kiosk.hosts import host_is_ours, own_host_names

    monkeypatch.setattr(socket, "gethostname", lambda: "Gate-1.Compound.LAN")
    names = own_host_names()
    for host in ("gate-1.compound.lan", "gate-1", "gate-1.local:8000", "localhost"):
        assert host_is_ours(host, names), host
    assert not host_is_ours("gate-1.compound.lan.local", names)
    assert not host_is_ours("compound.lan", names)


# ------------------------------------------------------- every page, as a browser fetches it


@pytest.mark.slow
def test_every_html_page_refuses_frames_sniffing_caching_and_cross_site_referrers(guard_core):
    # Pinned for every GET route of the app, not one page: a console page with names that a
    # frame could overlay, a cache could keep, or a link could leak in its Referer.
    from guard_support import ADMIN_PW, BASE, login
    from test_docs import _routes

    app = create_app(guard_core)
    samples = {"{row}": "1", "{seq}": "1", "{fmt}": "csv"}
    pages = 0
    with TestClient(app, base_url=BASE) as admin:
        login(admin, "root", ADMIN_PW)
        for method, path in sorted(set(_routes(app.routes))):
            for name, value in samples.items():
                path = path.replace(name, value)
            if method != "GET" or "{" in path or path.endswith(("events", ".mjpeg")):
                continue
            response = admin.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
            if not response.headers.get("content-type", "").startswith("text/html"):
                continue
            pages += 1
            headers = response.headers
            assert "frame-ancestors 'none'" in headers.get("content-security-policy", ""), path
            assert headers.get("x-content-type-options") == "nosniff", path
            assert headers.get("referrer-policy") == "same-origin", path
            assert headers.get("cache-control") == "no-store", path
    assert pages >= 15


def test_a_kiosk_bound_to_a_name_answers_to_that_name(guard_core):
    # web.host may be a name (the server listens on its address): the clients then use it.
    web = guard_core.config.web.model_copy(update={"host": "Gate-01.lan"})
    with served(guard_core, web) as browser:
        assert browser.get("/guard/login", headers={"Host": "gate-01.lan:8000"}).status_code == 200
        assert browser.get("/guard/login", headers={"Host": "gate-02.lan"}).status_code == 421


def test_a_status_port_bound_to_a_name_answers_to_that_name(office, monkeypatch):
    from office import collector as collector_mod

    real = collector_mod._BoundedServer.__init__

    def on_loopback(self, address, *args):  # "office.lan" resolves to this host here
        real(self, ("127.0.0.1", address[1]), *args)

    monkeypatch.setattr(collector_mod._BoundedServer, "__init__", on_loopback)
    server = office(status_host="office.lan")
    assert office_get(server, "/status.json", "office.lan:9110").status_code == 200


def test_a_tls_kiosk_answers_to_the_names_its_certificate_is_for(tmp_path, monkeypatch):
    """``scripts/install --tls --tls-name gate-01.lan`` makes a certificate for the name the
    office pulls by: that name is the kiosk's own without also listing it in allowed_hosts
    (an office pulling https://gate-01.lan got 421 after the upgrade), a name the
    certificate is not for is still refused."""
    from fastapi import FastAPI
    from test_edge_hostile import _self_signed

    _self_signed(tmp_path, dns_names=("gate-01.lan", "Gate-Backup.Compound.LAN"))
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    inner = FastAPI()
    inner.get("/api/v1/health")(lambda: {"ok": True})
    app = server_config(inner, WebSection(tls=True)).app
    for base in ("https://gate-01.lan", "https://gate-backup.compound.lan:8443"):
        assert TestClient(app, base_url=base).get("/api/v1/health").status_code == 200, base
    assert TestClient(app, base_url="https://evil.example").get("/api/v1/health").status_code == 421
