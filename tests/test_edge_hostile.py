"""The network edge under attack (issue 15): each finding replayed against the real daemon.

The daemon (``checkpoint.app.Daemon``: the engine on emulated devices, the event log, the three
faces behind ``checkpoint.server``) runs on 127.0.0.1 in a thread of this process. An attack
"from the LAN" comes from a second loopback address: the client socket is bound to 127.0.0.2
(the kiosk's own screen is 127.0.0.1). Each test asserts the outcome issue 15 asks for.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from checkpoint.app import Daemon, build_core
from checkpoint.cli import main
from drivers.clocksync import system_clock
from kiosk.config import parse_config
from kiosk.days import local_day
from kiosk.passes import issue_pass, public_key_pem
from kiosk.store import EventDraft

LAN = "127.0.0.2"
OTHER_LAN = "127.0.0.3"
#: The `kiosk` command as a module of this interpreter.
KIOSK = [sys.executable, "-m", "checkpoint"]
EDGE_WEB = {
    "port": 0,
    "api_worker_process": False,
    "header_timeout_s": 1.0,
    "body_timeout_s": 1.0,
    "max_connections": 16,
    "max_connections_per_client": 4,
}


class RunningKiosk:
    """A real daemon on its own asyncio loop in a thread, stopped at the end."""

    def __init__(self, data: Path, config: dict[str, Any]) -> None:
        self.key = Ed25519PrivateKey.generate()
        (data / "trust").mkdir(parents=True, exist_ok=True)
        (data / "trust" / "office.pub").write_bytes(public_key_pem(self.key.public_key()))
        self.core = build_core(parse_config(config), data, system_clock(assume_synced=True))
        self.daemon = Daemon(self.core)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._call(self.daemon.start())
        self.port = self.daemon.port
        self.url = f"http://127.0.0.1:{self.port}"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        self._call(self.daemon.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def client(self, source: str = LAN, **kw: Any) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=source)
        return httpx.Client(base_url=self.url, transport=transport, timeout=5, **kw)

    def wait_idle(self) -> None:
        engine = self.core.runner.engine
        deadline = time.monotonic() + 15
        while engine.state != "idle" or engine.gate_is_open:
            assert time.monotonic() < deadline, f"engine stuck in {engine.state}"
            time.sleep(0.02)

    def passage(self, pass_text: str, direction: str) -> dict[str, Any]:
        """One person through the gate, direction chosen on the kiosk's own screen."""
        self.wait_idle()
        before = self.core.store.last_seq
        with self.client(source="127.0.0.1") as screen:
            chosen = screen.post(
                "/kiosk/direction", json={"direction": direction}, headers={"Origin": self.url}
            )
            assert chosen.status_code == 200, chosen.text
        self.core.runner.submit_code(pass_text, source="camera")
        deadline = time.monotonic() + 15
        while True:
            rows = [e for e in self.core.store.events(after_seq=before) if e["kind"] == "passage"]
            if rows:
                return rows[0]
            assert time.monotonic() < deadline, "no decision recorded"
            time.sleep(0.02)


@pytest.fixture(scope="module")
def kiosk(tmp_path_factory) -> Iterator[RunningKiosk]:
    data = tmp_path_factory.mktemp("hostile") / "data"
    running = RunningKiosk(
        data,
        {
            "site": {"kiosk_id": "hostile-gate"},
            "policy": {"mode": "pass_only"},
            "gate": {"pulse_ms": 100},
            "engine": {"result_hold_s": 0.2, "cpu": "off"},
            "web": EDGE_WEB,
        },
    )
    yield running
    running.stop()


# --- 1. the preview and the live screen stay on the kiosk ------------------------------------


@pytest.mark.parametrize(
    "path", ["/kiosk", "/kiosk/events", "/kiosk/preview.jpg", "/kiosk/preview.mjpeg"]
)
def test_the_lan_gets_403_from_every_kiosk_screen_route(kiosk, path):
    with kiosk.client() as lan:
        response = lan.get(path, headers={"X-Forwarded-For": "127.0.0.1"})
    assert response.status_code == 403
    assert b"\xff\xd8" not in response.content  # no JPEG, whatever the phase


def test_the_kiosk_own_screen_still_gets_its_page_and_preview(kiosk):
    with kiosk.client(source="127.0.0.1") as screen:
        assert screen.get("/kiosk").status_code == 200
        assert screen.get("/kiosk/preview.jpg").status_code in (200, 204)


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_screen_key_admits_a_screen_elsewhere_and_a_wrong_one_does_not(tmp_path, monkeypatch):
    monkeypatch.setenv("KIOSK_SCREEN_KEY", "s3cret-screen-key-0123456789")
    running = RunningKiosk(tmp_path / "d", {"web": EDGE_WEB, "engine": {"cpu": "off"}})
    try:
        with running.client() as lan:
            assert lan.get("/kiosk", headers={"X-Kiosk-Screen": "guess"}).status_code == 403
            wrong = lan.post("/kiosk/pair", json={"key": "guess"}, headers={"Origin": running.url})
            assert wrong.status_code == 401
            paired = lan.post(
                "/kiosk/pair",
                json={"key": "s3cret-screen-key-0123456789"},
                headers={"Origin": running.url},
            )
            assert paired.status_code == 200
            assert "httponly" in paired.headers["set-cookie"].lower()
            assert lan.get("/kiosk").status_code == 200  # the cookie now
    finally:
        running.stop()


# --- 3./4. the direction: not from the LAN, bodies capped --------------------------------------


def test_the_lan_cannot_set_the_direction_even_with_a_forged_host_and_origin(kiosk):
    engine = kiosk.core.runner.engine
    before = engine.direction
    target = "out" if before == "in" else "in"
    with kiosk.client() as lan:
        for headers in ({}, {"Host": "127.0.0.1", "Origin": kiosk.url}):
            response = lan.post("/kiosk/direction", json={"direction": target}, headers=headers)
            assert response.status_code == 403
    assert engine.direction == before


def test_a_huge_direction_body_is_refused_before_it_is_read(kiosk):
    with socket.create_connection(("127.0.0.1", kiosk.port), timeout=5) as sock:
        sock.sendall(
            b"POST /kiosk/direction HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 400000000\r\n\r\n{"
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")
    with kiosk.client(source="127.0.0.1") as screen:

        def chunks() -> Iterator[bytes]:
            for _ in range(64):
                yield b" " * 65536

        chunked = screen.post("/kiosk/direction", content=chunks())
    assert chunked.status_code == 413


def test_a_quarantined_household_coming_home_by_a_screen_button_needs_the_guard(kiosk):
    # The site's day, not the UTC date (from 16:00 UTC they differ in Asia/Shanghai).
    today = local_day(kiosk.core.clock.now(), kiosk.core.config.site.timezone)
    kiosk.core.lists.add_quarantine("Q-7", None, today, today, actor="test")
    text, _ = issue_pass(kiosk.key, "Q-7", "Zhao Lei", days=1, now=kiosk.core.clock.now())
    event = kiosk.passage(text, "in")
    assert event["decision"] == "deny"
    assert "quarantined" in event["reasons"] and "direction_unverified" in event["flags"]


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_copied_pass_is_refused_in_the_same_direction_within_the_window(kiosk):
    text, _ = issue_pass(kiosk.key, "C-3", "Qian Yu", days=1, now=kiosk.core.clock.now())
    first = kiosk.passage(text, "out")
    second = kiosk.passage(text, "out")
    assert first["decision"] == "pass"
    assert second["decision"] == "deny" and second["reasons"] == ["passback"]


# --- 2. the flood -------------------------------------------------------------------------------


@pytest.mark.slow
def test_idle_and_slowloris_connections_are_closed_and_others_still_get_answers(kiosk):
    flood: list[socket.socket] = []
    try:
        for i in range(60):
            sock = socket.socket()
            sock.bind((f"127.0.0.{10 + i % 6}", 0))
            sock.settimeout(5)
            sock.connect(("127.0.0.1", kiosk.port))
            if i % 3 == 0:  # slowloris: headers begun, never finished
                sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: kiosk\r\nX-a: ")
            flood.append(sock)
        with kiosk.client(source=OTHER_LAN) as guard:
            started = time.monotonic()
            assert guard.get("/api/v1/health").status_code in (200, 503)
            assert time.monotonic() - started < 2
        time.sleep(0.3)
        for sock in flood[1::3]:
            sock.sendall(b"a")  # slowloris keeps trickling
        deadline = time.monotonic() + 4
        closed = 0
        for sock in flood:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                closed += sock.recv(1024) == b""
            except ConnectionResetError:
                closed += 1
            except TimeoutError:
                pass
        assert closed == len(flood)  # every one closed within the header timeout
        assert kiosk.core.runner.loop_healthy(5.0)
    finally:
        for sock in flood:
            sock.close()


# --- 6. personal numbers in free text -----------------------------------------------------------


def test_numbers_typed_into_free_text_come_back_masked_to_a_logs_read_token(kiosk):
    kiosk.core.store.append(
        EventDraft(
            direction="in",
            decision="manual_pass",
            reasons=("guard_override",),
            operator="guard tel13900139000",
            person={"note": "1390 013 9000 / ID 110105 19491231 003X / １３９００１３９０００"},
        )
    )
    _, token = kiosk.core.tokens.create(["logs:read"], name="office")
    with kiosk.client() as office:
        body = office.get(
            "/api/v1/events", params={"limit": 1000}, headers={"Authorization": f"Bearer {token}"}
        ).text
    digits = re.sub(r"[^0-9X]", "", body)
    for number in ("13900139000", "11010519491231003X"):
        assert number not in digits
    assert "１３９００" not in body


# --- 7./9. parameters, docs, proxies ----------------------------------------------------------


def test_bad_parameters_get_4xx_never_5xx(kiosk):
    _, token = kiosk.core.tokens.create(["stats:read"], name="office")
    auth = {"Authorization": f"Bearer {token}"}
    with kiosk.client() as office:
        for day in ("0001-01-01", "0", "9999-12-31", "2026-13-40"):
            response = office.get("/api/v1/stats", params={"day": day}, headers=auth)
            assert 400 <= response.status_code < 500, (day, response.text)
    with kiosk.client(source="127.0.0.1") as screen:
        assert screen.get("/kiosk/preview.mjpeg", params={"fps": "abc"}).status_code == 422
        assert screen.get("/kiosk", params={"lang": "x" * 5000}).status_code == 422


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_no_swagger_page_and_forwarded_for_is_not_believed(kiosk):
    with kiosk.client() as lan:
        assert lan.get("/docs").status_code == 404
        page = lan.get("/guard/login")
        statuses = []
        for i in range(7):
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            response = lan.post(
                "/guard/login",
                data={"name": "nobody", "password": "wrong", "csrf": token},
                headers={"Origin": kiosk.url, "X-Forwarded-For": f"10.9.8.{i}"},
            )
            statuses.append(response.status_code)
            page = response if "csrf" in response.text else lan.get("/guard/login")
    assert 429 in statuses  # every attempt counted against 127.0.0.2, whatever it claimed


# --- 8. start-up mistakes ---------------------------------------------------------------------


@pytest.mark.slow  # a process of its own: ~2 s of CPU (CI runs it)
def test_a_busy_port_is_one_line_and_exit_1(tmp_path):
    """In a process of its own, its stderr read alone: another test's output or a daemon
    logging in this process cannot be read as the refusal's line (nor hide it)."""
    cfg = tmp_path / "kiosk.toml"
    data = tmp_path / "data"
    (data / "trust").mkdir(parents=True)
    (data / "trust" / "k.pub").write_bytes(
        public_key_pem(Ed25519PrivateKey.generate().public_key())
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg.write_text(f'[web]\nport = {port}\n[engine]\ncpu = "off"\n')
        run = subprocess.run(
            [*KIOSK, "run", "--config", str(cfg), "--data", str(data), "--log-level", "error"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
    assert run.returncode == 1, run.stderr
    assert run.stderr.strip().splitlines() == [
        f"kiosk run: cannot start: port {port} on 127.0.0.1 is already in use"
        " (another kiosk running?)"
    ]


@pytest.mark.slow
def test_check_config_names_a_bad_timezone_a_missing_trust_dir_and_deep_nesting(tmp_path, capsys):
    cases = {
        "mars.toml": ('[site]\ntimezone = "Mars/Base"\n', "site.timezone"),
        "trust.toml": ('[policy]\ntrust_dir = "/nonexistent/trust"\n', "policy.trust_dir"),
        "deep.toml": ("a = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        assert main(["check-config", str(path)]) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


# --- TLS ----------------------------------------------------------------------------------------


def _self_signed(directory: Path, dns_names: tuple[str, ...] = ()) -> tuple[Path, Path]:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kiosk")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
    )
    if dns_names:
        names = [x509.DNSName(n) for n in dns_names]
        cert = cert.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = cert.sign(key, hashes.SHA256())
    cert_path, key_path = directory / "tls_cert", directory / "tls_key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_with_tls_the_guard_console_is_https_and_its_cookie_secure(tmp_path, monkeypatch):
    from kiosk.accounts import credentials_line, hash_password

    creds = tmp_path / "credentials"
    creds.mkdir()
    _self_signed(creds)
    (creds / "guard_users").write_text(
        credentials_line("alice", "guard", hash_password("pw-for-tls-test", n=2**10)) + "\n"
    )
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    running = RunningKiosk(
        tmp_path / "d", {"web": {**EDGE_WEB, "tls": True}, "engine": {"cpu": "off"}}
    )
    base = f"https://127.0.0.1:{running.port}"
    try:
        with httpx.Client(base_url=base, verify=False, timeout=5) as guard:  # noqa: S501
            page = guard.get("/guard/login")
            assert page.status_code == 200
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            signed_in = guard.post(
                "/guard/login",
                data={"name": "alice", "password": "pw-for-tls-test", "csrf": token},
                headers={"Origin": base},
            )
            assert signed_in.status_code == 303, signed_in.text
            assert "secure" in signed_in.headers["set-cookie"].lower()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{running.port}/api/v1/health", timeout=3)
    finally:
        running.stop()


def _closed_within(socks: list[socket.socket], seconds: float) -> int:
    """How many of ``socks`` the kiosk closed within ``seconds`` (reset or end of stream)."""
    deadline = time.monotonic() + seconds
    closed = 0
    for sock in socks:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            closed += sock.recv(1024) == b""
        except (ConnectionResetError, ConnectionAbortedError):
            closed += 1
        except TimeoutError:
            pass
    return closed


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_on_the_tls_port_silent_connections_are_capped_and_cut_as_on_plain_http(
    tmp_path, monkeypatch
):
    # asyncio's TLS server hands a connection to the web server's protocol only once its
    # handshake is over: one that never sent a ClientHello was counted by no cap and held for
    # asyncio's 60 s, so a slowloris on the TLS port (any number of connections from one
    # address, 8,192 descriptors in a minute) went round every bound of docs/network.md.
    creds = tmp_path / "credentials"
    creds.mkdir()
    _self_signed(creds)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    running = RunningKiosk(
        tmp_path / "d", {"web": {**EDGE_WEB, "tls": True}, "engine": {"cpu": "off"}}
    )
    silent: list[socket.socket] = []
    try:
        for _ in range(10):
            sock = socket.socket()
            sock.bind((LAN, 0))
            sock.connect(("127.0.0.1", running.port))
            silent.append(sock)
        # Past max_connections_per_client (4) closed on accept; the rest at the header timeout.
        assert _closed_within(silent[4:], 0.5) == 6
        assert _closed_within(silent[:4], 4) == 4
        base = f"https://127.0.0.1:{running.port}"
        transport = httpx.HTTPTransport(local_address=LAN, verify=False)  # noqa: S501
        with httpx.Client(base_url=base, transport=transport, timeout=5) as guard:
            assert [guard.get("/api/v1/health").status_code in (200, 503) for _ in range(6)] == [
                True
            ] * 6
    finally:
        for sock in silent:
            sock.close()
        running.stop()


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_the_guard_error_banner_shows_only_what_the_console_wrote(data_dir, clock, monkeypatch):
    from fastapi.testclient import TestClient
    from guard_support import BASE, close_core, login, make_app, make_core, post

    core = make_core(data_dir, clock, monkeypatch)
    try:
        with TestClient(make_app(core), base_url=BASE) as client:
            csrf = login(client)
            forged = client.get("/guard", params={"err": "Call 13900000000 to reopen the gate"})
            assert "reopen the gate" not in forged.text
            # a refusal sent back to its page (a calibration pair that is no number)
            response = post(client, "/guard/calibration", csrf, clinical_c="x")
            location = response.headers["location"]
            assert "err=" in location and "sig=" in location
            shown = client.get(location)
            assert 'class="flash err"' in shown.text
    finally:
        close_core(core)
