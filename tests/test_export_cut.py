"""The CSV export when the card fails a page of the log: the office must never take a cut
file for a whole one.

A CSV is streamed in pages, so a page the card no longer reads back can fail after the first
rows are out. A row of its own saying so would read as one more row in a spreadsheet, and the
length of a streamed export is not known before its end; what every client checks is the
transfer itself: the answer is left unfinished (no last chunk, the connection closed), which
curl reports as error 18, a browser as a failed download and httpx as ``RemoteProtocolError``.
A page that fails before anything is sent is a 503 with the card's words, like the JSON pages.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from card_support import damage_leaf
from fastapi.testclient import TestClient
from guard_support import BASE, add_event, close_core, make_core
from server_support import live_server

from kiosk.config import parse_config
from kiosk.config.web import WebSection
from ui.app import create_app


@pytest.fixture
def paged_core(data_dir, clock, monkeypatch):
    """A real core whose CSV export reads 10 rows at a time, 120 events in its log."""
    core = make_core(data_dir, clock, monkeypatch, parse_config({"web": {"max_page": 10}}))
    for _ in range(120):
        add_event(core)
    yield core
    close_core(core)


@contextmanager
def serving(app, port: int = 0) -> Iterator[int]:
    """``app`` on the daemon's own web server (h11, as ``kiosk run``), on ``port`` (0: a free
    one), its loop in a thread of its own (a browser driver may run a loop in this one)."""
    with live_server(app, WebSection(host="127.0.0.1", port=port)) as (bound, _server):
        yield bound


def _raw_get(port: int, path: str, token: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return data


@pytest.mark.slow
def test_a_csv_export_cut_by_a_damaged_page_is_an_unfinished_transfer_never_a_whole_file(
    paged_core, caplog
):
    """The card fails a page of the log after the export's first rows are out: the client
    must see an unfinished transfer (no chunked body's last chunk), never a file that ends on
    a row as a whole one would; the store's health is degraded naming the card (it said
    ``ok``), and the journal has lines, not a traceback per pull."""
    damage_leaf(paged_core, -3)
    _, token = paged_core.tokens.create(["logs:read"])
    path = "/api/v1/events.csv?after=0"
    with caplog.at_level(logging.INFO), serving(create_app(paged_core)) as port:
        raw = _raw_get(port, path, token)
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{port}") as office,
            pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"),
        ):
            office.get(path, headers={"Authorization": f"Bearer {token}"})
        curl = shutil.which("curl")
        if curl is not None:
            out = subprocess.run(
                [curl, "-sS", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}",
                 f"http://127.0.0.1:{port}{path}"],
                capture_output=True, text=True, timeout=10, check=False,
            )  # fmt: skip
            assert out.returncode == 18, out.stderr
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
    assert b"seq,id," in body  # the first pages were sent
    assert not body.endswith(b"0\r\n\r\n")  # and the chunked body was never finished
    store = paged_core.health()["devices"]["store"]
    assert store["state"] == "degraded" and "SQLITE_CORRUPT" in store["detail"]
    assert not [r for r in caplog.records if r.exc_info], "a traceback in the journal"
    said = [r.getMessage() for r in caplog.records if r.name == "ui.api"]
    assert any("CSV export cut" in line for line in said), said


def test_a_csv_export_whose_first_page_the_card_fails_is_a_503_with_its_words(
    guard_core,
):
    """The first page of the export unreadable: the answer was a 200 and an empty, cut
    transfer (curl: ``(18)``, a browser: a failed download), the reason nowhere but a
    traceback in the journal. It is read before the answer starts: a 503 naming the card
    and what to do, as the JSON pages answer, and the store's health degraded."""
    for _ in range(60):
        add_event(guard_core)
    damage_leaf(guard_core, 1)
    _, token = guard_core.tokens.create(["logs:read"])
    client = TestClient(create_app(guard_core), base_url=BASE, raise_server_exceptions=False)
    answer = client.get("/api/v1/events.csv", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503, (answer.status_code, answer.text[:200])
    assert "SQLITE_CORRUPT" in answer.json()["detail"] and "verify-log" in answer.json()["detail"]
    store = guard_core.health()["devices"]["store"]
    assert store["state"] == "degraded"


def test_a_whole_csv_export_still_ends_its_transfer(paged_core):
    """The sound case through the same server: the last chunk is sent, every row is there."""
    _, token = paged_core.tokens.create(["logs:read"])
    with serving(create_app(paged_core)) as port:
        raw = _raw_get(port, "/api/v1/events.csv?after=0", token)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as office:
            text = office.get(
                "/api/v1/events.csv", headers={"Authorization": f"Bearer {token}"}
            ).text
    assert raw.endswith(b"0\r\n\r\n")
    assert [int(r["seq"]) for r in csv.DictReader(io.StringIO(text))] == list(range(1, 121))


def test_a_card_that_takes_no_write_still_lets_the_office_pull_the_masked_log_off_it(
    guard_core, caplog
):
    """The card full or read-only mid-shift: every export was refused (503) because its audit
    row could not be written, so the office could not pull the log off the dying card, the
    very copy the manual says to take. A masked export goes ahead with its row held in memory
    (the guard console's ``HeldRows``, written in order once the storage works, a stop's loss
    said in the journal); an export of unmasked personal fields still needs its row written."""
    from support import storage_failing

    for _ in range(5):
        add_event(guard_core)
    _, masked = guard_core.tokens.create(["logs:read"])
    _, personal = guard_core.tokens.create(["logs:read", "logs:personal"])
    app = create_app(guard_core)
    client = TestClient(app, base_url=BASE, raise_server_exceptions=False)

    def get(path: str, token: str):
        return client.get(path, headers={"Authorization": f"Bearer {token}"})

    with caplog.at_level(logging.WARNING), storage_failing(guard_core.store, "audit"):
        page = get("/api/v1/events?after=0", masked)
        sheet = get("/api/v1/events.csv?after=0", masked)
        unmasked = get("/api/v1/events?after=0&fields=holder", personal)
    assert page.status_code == 200 and len(page.json()["events"]) == 5, page.text[:200]
    assert sheet.status_code == 200 and sheet.text.count("\r\n") == 6
    assert unmasked.status_code == 503
    assert len(app.state.guard.held) == 2  # the two exports' rows, in memory
    assert not [r for r in guard_core.store.audits(0, 1000) if r["action"].startswith("export")]
    again = get("/api/v1/events?after=0", masked)  # the storage works again: held rows first
    assert again.status_code == 200 and len(app.state.guard.held) == 0
    rows = [r for r in guard_core.store.audits(0, 1000) if r["action"].startswith("export")]
    assert [r["action"] for r in rows] == ["export_events", "export_csv", "export_events"]
    assert ["held_at" in r["detail"] for r in rows] == [True, True, False]
