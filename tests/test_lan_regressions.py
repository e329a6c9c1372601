"""What a LAN attacker (or a clumsy office script) still found at the network edge after issue 15.

Each test is a defect seen against the running demo over real sockets, replayed here in
process: the guard console and the kiosk screen on ``guard_core`` (tests/guard_support.py).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from guard_support import ADMIN_PW, BASE, GUARD_PW, make_app, signed_in


def login_attempt(client: TestClient, name: str, password: str) -> int:
    page = client.get("/guard/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/guard/login",
        data={"name": name, "password": password, "csrf": token},
        headers={"Origin": BASE},
        follow_redirects=False,
    )
    client.cookies.clear()
    return response.status_code


def test_login_page_shows_no_error_text_from_its_url(guard_client: TestClient) -> None:
    # A link to /guard/login?error=... put any text in the red banner of the real sign-in
    # page: "Call IT on 555-0100 and give them your password".
    lure = "Session ended: call IT on 555-0100 and read them your password"
    page = guard_client.get("/guard/login", params={"error": lure})
    assert page.status_code == 200
    assert "555-0100" not in page.text
    assert 'role="alert"' not in page.text


def test_a_guards_own_sign_in_does_not_reset_the_guesses_at_another_account(
    guard_core,
) -> None:
    # Four wrong admin passwords, then the guard's own good sign-in, again and again: the
    # success wiped the address's failures, so the admin's password could be guessed at
    # four tries per sign-in, without end, from one address.
    app: FastAPI = make_app(guard_core)
    limit = guard_core.config.web.login_attempts_per_min
    with TestClient(app, base_url=BASE) as client:
        codes = []
        for round_ in range(3):
            for i in range(limit - 1):
                codes.append(login_attempt(client, "root", f"guess-{round_}-{i}"))
            assert login_attempt(client, "alice", GUARD_PW) in (303, 429)
        assert 429 in codes, codes
        # The right admin password is refused too while the address waits.
        assert login_attempt(client, "root", ADMIN_PW) == 429


def test_a_good_sign_in_still_forgets_its_own_mistyped_passwords(guard_core) -> None:
    app: FastAPI = make_app(guard_core)
    limit = guard_core.config.web.login_attempts_per_min
    with TestClient(app, base_url=BASE) as client:
        for i in range(limit - 1):
            assert login_attempt(client, "alice", f"typo-{i}") == 401
        assert login_attempt(client, "alice", GUARD_PW) == 303
        for i in range(limit - 1):
            assert login_attempt(client, "alice", f"typo-again-{i}") == 401
        assert login_attempt(client, "alice", GUARD_PW) == 303


def asgi_post_cut_short(app: FastAPI, path: str, content_type: str) -> list[dict]:
    """POST ``path`` announcing 100 bytes, send 6 of them, then hang up; what the app sent."""
    import asyncio

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"kiosk.test"),
            (b"origin", BASE.encode()),
            (b"content-type", content_type.encode()),
            (b"content-length", b"100"),
        ],
        "client": ("10.0.0.66", 40000),
        "server": ("kiosk.test", 80),
    }
    incoming = [
        {"type": "http.request", "body": b"name=a", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_a_body_cut_short_by_an_anonymous_client_is_no_server_error(guard_core) -> None:
    # POST /guard/login or /kiosk/pair (both open to anyone on the LAN) with a body that never
    # arrives in full: ClientDisconnect escaped the app and uvicorn logged "Exception in ASGI
    # application" with a 6 KB traceback at ERROR, once per connection, as fast as a script
    # can open them.
    from ui.app import create_app

    app = create_app(guard_core)
    for path, content_type in (
        ("/guard/login", "application/x-www-form-urlencoded"),
        ("/kiosk/pair", "application/json"),
        ("/api/v1/events", "application/json"),
    ):
        sent = asgi_post_cut_short(app, path, content_type)
        statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
        assert all(status < 500 for status in statuses), (path, statuses)


def test_the_guard_feed_json_with_names_is_not_kept_in_the_browser_cache(guard_core) -> None:
    # Every guard page is no-store, but /guard/api/feed (the newest passages with names and
    # dwellings: in full for an admin) had no Cache-Control, so the office PC's browser could
    # keep it on disk.
    from guard_support import add_event, signed_in

    add_event(guard_core, holder="Zhang Min", household="B-202")
    with signed_in(make_app(guard_core), "root", ADMIN_PW) as admin:
        feed = admin.get("/guard/api/feed")
        assert feed.status_code == 200
        assert "Zhang Min" in feed.text
        assert feed.headers.get("cache-control") == "no-store"


def test_a_connection_flood_from_many_lan_addresses_does_not_lock_out_the_kiosks_own_screen():
    # Ten LAN addresses x 32 connections, each a POST whose body never comes (not "silent",
    # so not evictable for web.body_timeout_s): all 256 slots held, and the kiosk's own
    # screen (127.0.0.1) was refused too: its event stream could not reconnect, so the
    # people at the gate saw no result, for as long as the flood was renewed.
    from checkpoint.server import server_config
    from kiosk.config.web import WebSection

    web = WebSection(max_connections=8, max_connections_per_client=4)
    gate = server_config(FastAPI(), web).edge_limits.gate
    for host in range(2):
        for _ in range(4):
            assert gate.admit(f"192.0.2.{host + 10}")
    assert not gate.admit("192.0.2.99")  # the LAN is capped
    assert gate.admit("127.0.0.1")  # the kiosk's own screen still gets in
    assert gate.admit("::ffff:127.0.0.1")  # the same on a dual-stack listener
    assert not gate.admit("192.0.2.99")


@contextlib.contextmanager
def tls_server_with_a_self_signed_certificate(tmp_path) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a certificate nobody trusts; its base URL."""
    from test_edge_hostile import _self_signed  # the kiosk's own TLS test certificate

    with tls_server(*_self_signed(tmp_path)) as port:
        yield f"https://127.0.0.1:{port}"


@contextlib.contextmanager
def tls_server(cert: Path, key: Path, handler: type | None = None) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 serving ``cert`` and ``key``, answering as ``handler``
    (by default ``501`` to everything); its port."""
    import http.server
    import ssl
    import threading

    server = http.server.HTTPServer(("127.0.0.1", 0), handler or http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_kiosk_certificate_the_office_does_not_trust_is_said_at_once_not_retried(tmp_path):
    # `kiosk pull https://gate-01:8000` against a kiosk with the self-signed certificate that
    # scripts/install --tls makes: eight tries over a minute of backoff, then "giving up after
    # 8 tries (ConnectError)", not a word about the certificate or how to trust it.
    from office.pull import Puller, PullError

    waits: list[float] = []
    with (
        tls_server_with_a_self_signed_certificate(tmp_path) as url,
        Puller(tmp_path / "office.db", sleep=waits.append) as puller,
        pytest.raises(PullError) as failed,
    ):
        puller.pull(url, "kt_x_y")
    message = str(failed.value)
    assert waits == []  # a certificate is not a network hiccup: no retry
    assert "certificate" in message and "self-signed" in message
    assert "SSL_CERT_FILE" in message  # how to make the office trust it


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_an_office_certificate_the_gate_does_not_trust_is_named_not_unreachable(
    guard_core, tmp_path
):
    # [fleet] lists_url = "https://office..." behind a certificate the gate does not trust:
    # the guard's health page and /api/v1/health said "cannot reach the office
    # (ConnectError)", sending the operator to check cables instead of the certificate.
    from office.listsync import ListSync

    with tls_server_with_a_self_signed_certificate(tmp_path) as url:
        sync = ListSync(guard_core.lists, guard_core.trust, url + "/lists/bundle", guard_core.clock)
        result = sync.check()
        sync.stop()
    assert result.outcome == "error"
    assert "certificate" in result.message and "self-signed" in result.message
    assert "cannot reach" not in result.message


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", "application/json"),
        ("application/x-ndjson", "application/x-ndjson"),
        ("application/x-ndjson, */*;q=0.1", "application/x-ndjson"),
        # an office script's library listing both, JSON preferred: it parses JSON
        ("application/json, application/x-ndjson;q=0.5", "application/json"),
        ("application/x-ndjson;q=0.5, application/json", "application/json"),
        # q=0: "not acceptable"
        ("application/x-ndjson;q=0, application/json", "application/json"),
        ("application/x-ndjson;q=nan", "application/json"),
    ],
)
def test_the_events_format_follows_the_accept_preferences(guard_core, accept, expected):
    # Any mention of application/x-ndjson in Accept switched /api/v1/events to NDJSON, also
    # one ranked below JSON or refused with q=0: the script's json.loads then failed on the
    # second line.
    from guard_support import add_event

    from ui.app import create_app

    add_event(guard_core)
    add_event(guard_core)
    _, token = guard_core.tokens.create(("logs:read",))
    with TestClient(create_app(guard_core), base_url=BASE) as client:
        response = client.get(
            "/api/v1/events",
            headers={"Authorization": f"Bearer {token}", "Accept": accept},
        )
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == expected


def fresh(noise, monkeypatch):
    """The process's one filter (installed once per logger), as a new one: no count of an
    earlier test's server dropped into this test's first line, and its clock this test's
    (put back afterwards): a clock returned, its time."""
    from kiosk.logs import OncePerInterval

    monkeypatch.setattr(noise, "_log_every", OncePerInterval(noise._log_every.every_s))
    now = [1e6]
    monkeypatch.setattr(noise, "monotonic", lambda: now[0])
    return now


def test_warnings_any_client_can_cause_per_request_are_logged_once_per_interval(
    caplog, monkeypatch
):
    # 3,000 malformed requests from one script in 2.5 s wrote 3,000 "Invalid HTTP request
    # received." warnings (384 KB); a websocket Upgrade header on any GET, two warnings per
    # request. Anyone on the LAN could fill the journal at will and, past journald's rate
    # limit, have the kiosk's own warnings dropped.
    import logging

    from checkpoint.server import server_config
    from kiosk.config.web import WebSection

    now = fresh(server_config(FastAPI(), WebSection()).client_noise, monkeypatch)
    uvicorn_log = logging.getLogger("uvicorn.error")
    with caplog.at_level(logging.WARNING, logger="uvicorn.error"):
        for _ in range(500):
            uvicorn_log.warning("Invalid HTTP request received.")
            uvicorn_log.warning("Unsupported upgrade request.")
        now[0] += 11
        uvicorn_log.warning("Invalid HTTP request received.")
        uvicorn_log.warning("the server's own warning")
        uvicorn_log.warning("the server's own warning")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "Invalid HTTP request received.",
        "Unsupported upgrade request.",
        "Invalid HTTP request received. (499 more like this since the last report)",
        "the server's own warning",
        "the server's own warning",
    ]


def test_form_parser_warnings_any_client_can_cause_are_logged_once_per_interval(
    caplog, monkeypatch
):
    # POST /guard/login (anonymous) with a broken multipart body: python-multipart logged a
    # warning per request ("Expected boundary character 45, got 110 at index 2"), each with
    # its own text.
    import logging

    from checkpoint.server import server_config
    from kiosk.config.web import WebSection

    now = fresh(server_config(FastAPI(), WebSection()).form_noise, monkeypatch)
    form_log = logging.getLogger("python_multipart.multipart")
    with caplog.at_level(logging.WARNING, logger="python_multipart.multipart"):
        for i in range(300):
            form_log.warning("Expected boundary character 45, got %d at index 2", i)
        now[0] += 11
        form_log.warning("Did not find boundary character")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "Expected boundary character 45, got 0 at index 2",
        "Did not find boundary character (299 more like this since the last report)",
    ]


def test_a_pipelined_request_is_not_taken_for_an_idle_connection():
    # Two requests sent back to back on one connection (HTTP/1.1 pipelining): once the first
    # answer was out, the second (already read, now running) was marked as a connection still
    # waiting for its headers: its header deadline armed (web.header_timeout_s cut a longer
    # answer, an export or a stream, mid-way) and closable to make room for others.
    import asyncio

    from checkpoint.server import build_server
    from kiosk.config.web import WebSection

    app = FastAPI()
    server = build_server(app, WebSection(host="127.0.0.1", port=0))
    gate = server.limits.gate

    @app.get("/first")
    def first() -> dict:
        return {"ok": True}

    @app.get("/second")
    async def second() -> dict:
        return {
            "waiting": len(gate.waiting),
            "armed": [p._deadline is not None for p in gate.waiting.values()],
        }

    async def pipelined() -> bytes:
        server.config.load()
        server.lifespan = server.config.lifespan_class(server.config)
        await server.startup(sockets=[server.sock])
        try:
            port = server.sock.getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET /first HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                b"GET /second HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return answer
        finally:
            await server.shutdown(sockets=[server.sock])

    answer = asyncio.run(pipelined())
    assert answer.count(b"HTTP/1.1 200") == 2, answer
    assert answer.endswith(b'{"waiting":0,"armed":[]}'), answer


def test_a_signature_or_token_with_a_letter_outside_ascii_is_refused_not_a_server_error(
    guard_core,
) -> None:
    # hmac.compare_digest takes str of ASCII only: a login form token, a resume token, a
    # session cookie or a CSRF token holding an 'é' was a 500 with a traceback in the journal,
    # from anyone on the LAN for the first three (no sign-in needed), as often as they liked.
    app = make_app(guard_core)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as client:
        assert client.get("/guard/login", params={"resume": "abc.é"}).status_code == 200
        form = {"csrf": "1.2.é", "name": "alice", "password": GUARD_PW}
        assert client.post("/guard/login", data=form).status_code == 403
        cookie = [(b"Cookie", "kiosk_session=abc.é".encode("latin-1"))]
        answer = client.get("/guard", headers=cookie, follow_redirects=False)
        assert answer.status_code == 303 and "/guard/login" in answer.headers["location"]
    with signed_in(app, raise_server_exceptions=False) as guard:
        origin = (b"Origin", BASE.encode())
        by_form = guard.post("/guard/alarms/ack", data={"csrf": "é"}, headers={"Origin": BASE})
        by_header = guard.post("/guard/alarms/ack", headers=[origin, (b"X-CSRF-Token", b"\xe9")])
        assert (by_form.status_code, by_header.status_code) == (403, 403)


def test_a_screen_key_that_is_no_text_is_a_wrong_key_not_a_server_error(guard_core, monkeypatch):
    # JSON may carry a lone surrogate ("\ud800"), which no encoder takes: with a screen_key
    # set, POST /kiosk/pair {"key": "\ud800"} from anyone on the LAN was a 500 and a
    # traceback in the journal, uncounted by the wrong-key limit.
    monkeypatch.setenv("KIOSK_SCREEN_KEY", "the-screens-own-key-0123456789")
    app = make_app(guard_core)
    lan = ("192.168.1.77", 50000)
    origin = {"Content-Type": "application/json", "Origin": "http://192.168.1.50:8000"}
    with TestClient(
        app, base_url="http://192.168.1.50:8000", client=lan, raise_server_exceptions=False
    ) as client:
        codes = [
            client.post(
                "/kiosk/pair", content=b'{"key": "\\ud800-%d"}' % i, headers=origin
            ).status_code
            for i in range(guard_core.config.web.login_attempts_per_min + 1)
        ]
        assert codes[0] == 401 and codes[-1] == 429, codes


def test_the_language_cookie_is_secure_on_https_as_the_session_cookie_is(guard_core) -> None:
    # On the TLS port the session cookie was Secure but kiosk_lang was not: every cookie of
    # an https origin should be, else a plain-http page of the same host can overwrite it.
    app: FastAPI = make_app(guard_core)
    with TestClient(app, base_url="https://kiosk.test") as client:
        page = client.get("/guard/login", params={"lang": "en"})
        cookie = page.headers["set-cookie"]
    assert cookie.startswith("kiosk_lang=en") and "secure" in cookie.lower(), cookie
    with TestClient(app, base_url=BASE) as client:  # plain http cannot set it
        cookie = client.get("/guard/login", params={"lang": "en"}).headers["set-cookie"]
    assert "secure" not in cookie.lower() and "httponly" in cookie.lower(), cookie
