"""DNS rebinding in the real browser, as a guard's PC on the LAN meets it.

A resident's phone on the compound's Wi-Fi serves a page on ``evil.example``; the guard's
browser opens it, then the attacker's name server answers ``evil.example`` with the kiosk's
address. To the browser every later request of that page goes to the page's own origin (and
to the same address space, so Chromium's Local Network Access lets it through), so nothing in
the browser stops its script: the kiosk's ``Host`` check must. Here the phone is a server on
127.0.0.2 that serves the page once and then forwards every connection to the kiosk as
127.0.0.3 (the guard's PC), which is what rebinding the name does; Chromium's
``--host-resolver-rules`` points ``evil.example`` at it."""

from __future__ import annotations

import contextlib
import os
import socket
import threading

import pytest
from test_edge_hostile import EDGE_WEB, RunningKiosk

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE, GUARD_PC = "127.0.0.2", "127.0.0.3"

ATTACK = """<!doctype html><meta charset=utf-8><title>cats</title><script>
window.loot = (async () => {
  const form = await fetch("/guard/login");
  const text = await form.text();
  const token = (text.match(/name="csrf" value="([^"]+)"/) || [])[1] || "";
  const tries = [];
  for (let i = 0; i < 8; i++) {
    const body = new URLSearchParams({name: "admin", password: "guess" + i, csrf: token});
    tries.push((await fetch("/guard/login", {method: "POST", body})).status);
  }
  const health = await fetch("/api/v1/health");
  return {form: form.status, token: token.length, tries, health: health.status};
})();
</script>"""


class RebindingPhone:
    """The attacker's server at ``PHONE``:``port``: the page to the first connection, then
    the kiosk's answers to every other (each forwarded from ``GUARD_PC``), bytes unchanged."""

    def __init__(self, port: int, kiosk_port: int) -> None:
        self.kiosk_port = kiosk_port
        self.listener = socket.create_server((PHONE, port))
        self.listener.settimeout(0.2)
        self.served_page = False
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            if not self.served_page:
                self.served_page = True
                self._page(conn)
            else:
                threading.Thread(target=self._forward, args=(conn,), daemon=True).start()

    def _page(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            body = ATTACK.encode()
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )

    def _forward(self, conn: socket.socket) -> None:
        kiosk = socket.create_connection(("127.0.0.1", self.kiosk_port), 5, (GUARD_PC, 0))

        def pump(src: socket.socket, dst: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pump, args=(kiosk, conn), daemon=True)
        back.start()
        pump(conn, kiosk)
        back.join(10)
        conn.close()
        kiosk.close()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.listener.close()


@pytest.fixture
def kiosk(tmp_path):
    running = RunningKiosk(
        tmp_path / "data",
        {"site": {"kiosk_id": "rebound-gate"}, "policy": {"mode": "pass_only"},
         "engine": {"cpu": "off"}, "web": {**EDGE_WEB, "max_connections_per_client": 16}},
    )  # fmt: skip
    yield running
    running.stop()


def test_a_page_rebound_to_the_kiosk_can_neither_read_it_nor_lock_the_guard_out(kiosk):
    from playwright import sync_api
    from support import need

    need(os.path.exists("/usr/bin/chromium"), "Debian chromium")
    phone = RebindingPhone(kiosk.port, kiosk.port)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", f"--host-resolver-rules=MAP evil.example {PHONE}"]  # fmt: skip
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=args)
            try:
                page = browser.new_page()
                page.goto(f"http://evil.example:{kiosk.port}/cats")
                loot = page.evaluate("window.loot")
            finally:
                browser.close()
    finally:
        phone.stop()
    assert loot["form"] == 421 and loot["token"] == 0, loot
    assert set(loot["tries"]) == {421} and loot["health"] == 421, loot
    # The guard at that PC still signs in: the page made no wrong guesses in its name.
    assert kiosk.core.config.web.login_attempts_per_min < 8
    with kiosk.client(source=GUARD_PC) as guard:
        assert guard.get("/guard/login").status_code == 200
        page = guard.get("/guard/login").text
        token = page.split('name="csrf" value="')[1].split('"')[0]
        answer = guard.post("/guard/login", data={"name": "nobody", "password": "x",
                            "csrf": token}, headers={"Origin": kiosk.url})  # fmt: skip
        assert answer.status_code == 401, answer.status_code  # wrong, but not 429
