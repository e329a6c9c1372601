"""A read SQLite refuses for a reason other than a damaged card (the database locked past the
busy timeout, a lock protocol error, out of memory) was a 500 with a traceback in the journal
per request, on the API and the guard console alike: the app's handler passed on any error but
a damaged page. Now it is 503 with ``Retry-After``, said in the journal at most once a minute
(``ui.app``), as a log that cannot be opened is (``ui.api.storage_failed``)."""

from __future__ import annotations

import logging
import sqlite3

import pytest
import test_edge_storage_reads
from guard_support import login

#: Three events, a peer token and an office token, behind the app.
gate_world = test_edge_storage_reads.world


def locked(*args, **kwargs):
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorname = "SQLITE_BUSY"
    raise busy


def unnamed(*args, **kwargs):
    raise sqlite3.OperationalError("database is locked")  # no errorname (a wrapper's)


@pytest.fixture
def world(gate_world):
    """The storage-outage tests' gate (``test_edge_storage_reads``): the core, a client, a peer
    token and an office token."""
    core, _app, client, peer, office = gate_world
    return core, client, peer, office


API = [
    ("/api/v1/passages?after=0", "peer"),
    ("/api/v1/events", "office"),
    ("/api/v1/events.csv", "office"),
    ("/api/v1/stats", "office"),
]


@pytest.mark.parametrize("fault", [locked, unnamed])
@pytest.mark.parametrize(("path", "who"), API)
def test_an_api_read_the_database_refuses_is_a_503_with_retry_after(
    world, monkeypatch, path, who, fault
):
    core, client, peer, office = world
    token = {"peer": peer, "office": office}[who]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(path, headers=headers).status_code == 200
    monkeypatch.setattr(core.store, "reader", fault)
    answer = client.get(path, headers=headers)
    assert answer.status_code == 503, (path, answer.status_code, answer.text[:200])
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.json() == {"detail": "the event log is unavailable"}
    assert core.health()["devices"]["store"]["state"] == "ok"  # not taken for a damaged card


@pytest.mark.parametrize("path", ["/guard/stats?day=2026-03-02", "/guard/passage/1"])
def test_a_console_read_the_database_refuses_is_a_503_in_both_languages(world, monkeypatch, path):
    core, client, _, _ = world
    login(client)
    assert client.get(path).status_code == 200
    monkeypatch.setattr(core.store, "reader", locked)
    page = client.get(path)
    assert page.status_code == 503, (path, page.status_code, page.text[:200])
    assert int(page.headers["retry-after"]) >= 1
    assert "Internal Server Error" not in page.text
    assert "try again" in page.text.lower() and "重试" in page.text


def test_refused_reads_are_said_once_a_minute_without_a_traceback(
    world, monkeypatch, caplog, clock
):
    core, client, _, office = world
    headers = {"Authorization": f"Bearer {office}"}
    monkeypatch.setattr(core.store, "reader", locked)
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            assert client.get("/api/v1/events", headers=headers).status_code == 503
        clock.advance(61)
        assert client.get("/api/v1/events", headers=headers).status_code == 503
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 2, [r.getMessage() for r in said]
    assert all(r.exc_info is None for r in said)
    assert "SQLITE_BUSY" in said[0].getMessage()
    assert "2 more" in said[1].getMessage()


def test_a_console_read_of_a_log_that_cannot_be_opened_is_a_503_not_a_500(world, monkeypatch):
    from kiosk.store import StoreFault

    def cannot_open(*args, **kwargs):
        raise StoreFault("store_fault", "cannot open a reader (SQLITE_CANTOPEN)")

    core, client, _, _ = world
    login(client)
    monkeypatch.setattr(core.store, "reader", cannot_open)
    page = client.get("/guard/stats?day=2026-03-02")
    assert page.status_code == 503, (page.status_code, page.text[:200])
    assert int(page.headers["retry-after"]) >= 1
    # Not "busy, the gate goes on recording": a log that cannot be opened may record nothing,
    # and the kiosk then denies everyone (store.on_store_fault).
    assert "busy" not in page.text and "goes on" not in page.text
    assert "cannot be opened just now" in page.text and "无法打开" in page.text


@pytest.mark.parametrize(
    "bug",
    [
        sqlite3.IntegrityError("UNIQUE constraint failed: audit.id"),
        sqlite3.ProgrammingError("Incorrect number of bindings supplied"),
        sqlite3.DataError("string or blob too big"),
    ],
    ids=type,
)
def test_a_programming_error_is_not_passed_off_as_a_busy_database(world, monkeypatch, caplog, bug):
    """Every ``sqlite3.DatabaseError`` the card did not cause was answered "busy, retry later"
    and logged once a minute without a traceback: a bug (a UNIQUE constraint, wrong bindings)
    hid behind the same line as a real lock. Only an ``OperationalError`` (locked, busy, out of
    memory) is the database refusing for now; anything else is the server's error, logged
    whole (by the web server, outside this test client)."""
    core, client, _, office = world

    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr(core.store, "reader", broken)
    with caplog.at_level(logging.INFO):
        answer = client.get("/api/v1/events", headers={"Authorization": f"Bearer {office}"})
    assert answer.status_code == 500  # the server's own error handler: its traceback logged
    assert "retry-after" not in answer.headers
    assert not [r for r in caplog.records if "refused" in r.getMessage()]
