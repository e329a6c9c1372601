"""A failing SD card under the gate: files it damaged, reads it fails, writes it refuses.

Each test puts the fault the card makes in a temp dir and checks what the guard, health and
the journal are told."""

from __future__ import annotations

import contextlib
import html
import json
import logging
import os
import re
import sqlite3
from collections import OrderedDict
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from card_support import damage_leaf
from fastapi.testclient import TestClient
from guard_support import (
    BASE,
    GUARD_PW,
    add_event,
    close_core,
    login,
    make_app,
    make_core,
    post,
    refused_with,
)

from checkpoint.app import build_core
from checkpoint.cli import main
from checkpoint.export_helper import HelperProcessPages
from kiosk import export
from kiosk import store as kiosk_store
from kiosk.calibration import Calibration, default_path
from kiosk.config import KioskConfig
from kiosk.export import InProcessPages, export_page_at
from kiosk.peers import CheckedPage, PeerLedger, PeerRow
from kiosk.store import EventDraft, ReadFailure, format_ts
from office.pull import Puller, PullError
from ui.app import create_app
from ui.guard.display import health_rows
from ui.guard.live import new_events

if TYPE_CHECKING:
    pass

FITTED_AT = "2026-03-01T00:00:00+00:00"


def test_a_site_fit_the_card_damaged_is_named_on_the_devices_page_not_left_unsaid(
    guard_client, guard_core, caplog
):
    """calibration.json read back damaged (a bad sector, a torn copy) while the kiosk runs:
    it measures on with the fit it read last, as documented, but health said only
    ``fitted: true`` and nothing was logged, so nobody knew the next restart would drop the
    site's fit."""
    path = default_path(guard_core.data_dir)
    Calibration(offset_c=0.6, fitted_at=FITTED_AT).save(path)
    assert guard_core.health()["calibration"]["fitted"] is True
    path.write_bytes(path.read_bytes()[:40])  # the card gave back the first sector only
    with caplog.at_level(logging.ERROR, logger="kiosk.calibration"):
        report = guard_core.health()["calibration"]
        guard_core.health()
    assert report["fitted"] is True  # the fit in force stays
    assert "calibration.json" in report["problem"] and "corrupt" in report["problem"]
    logged = [r for r in caplog.records if r.name == "kiosk.calibration"]
    assert len(logged) == 1 and "calibration.json" in logged[0].getMessage()
    login(guard_client)
    page = guard_client.get("/guard/health?lang=en").text
    assert "The calibration file cannot be read" in page
    assert "the site fit read last (fitted on 2026-03-01)" in page


def test_a_site_fit_unreadable_since_the_start_is_not_shown_as_never_fitted(
    guard_client, guard_core
):
    """The fit was damaged before the kiosk first read it (a power cut, a restart): the kiosk
    measures on the default model and the Devices page said only "Not fitted for this site",
    sending the guard to calibrate a site that was calibrated, the damaged file unsaid."""
    path = default_path(guard_core.data_dir)
    path.write_bytes(b"")  # a copy a power cut left empty
    report = guard_core.health()["calibration"]
    assert report["fitted"] is False and "calibration.json" in report["problem"]
    login(guard_client)
    page = guard_client.get("/guard/health?lang=en").text
    assert "The calibration file cannot be read" in page
    assert "the default model" in page
    assert "Not fitted for this site" not in page


def test_a_calibration_file_read_whole_again_clears_the_problem(guard_core):
    path = default_path(guard_core.data_dir)
    path.write_bytes(b"{")
    assert guard_core.health()["calibration"]["problem"]
    Calibration(offset_c=0.6, fitted_at=FITTED_AT).save(path)
    assert guard_core.health()["calibration"] == {
        "fitted": True,
        "fitted_at": FITTED_AT,
        "problem": None,
    }


@pytest.mark.slow
def test_a_damaged_page_of_the_log_is_a_clear_503_and_a_degraded_store_never_a_500(
    guard_core, tmp_path
):
    """A sector of kiosk.db gone bad under events already written: the gate went on deciding
    (new rows are written elsewhere), but the office's pull, the daily report and the guard's
    console answered a bare 500 ("Internal Server Error") while health still said the store
    was ok, so nobody was told the card was failing or what to do."""
    for _ in range(60):
        add_event(guard_core)
    damage_leaf(guard_core)
    _, token = guard_core.tokens.create(["logs:read"])
    app = create_app(guard_core)
    api = TestClient(app, base_url=BASE, raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {token}"}
    for path in ("/api/v1/events?after=0&limit=1000", "/api/v1/stats?day=2026-03-02"):
        answer = api.get(path, headers=auth)
        assert answer.status_code == 503, (path, answer.status_code)
        assert "SQLITE_CORRUPT" in answer.json()["detail"]
        assert "verify-log" in answer.json()["detail"]
    with (
        Puller(tmp_path / "office.db", client=api, attempts=2, sleep=lambda _s: None) as office,
        pytest.raises(PullError, match=r"giving up after 2 tries \(HTTP 503: .*SQLITE_CORRUPT"),
    ):
        office.pull(BASE, token)
    store = guard_core.health()["devices"]["store"]
    assert store["state"] == "degraded" and "SQLITE_CORRUPT" in store["detail"]
    add_event(guard_core)  # the gate's own writes go on
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as guard:
        form = guard.get("/guard/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        signed = {"name": "alice", "password": GUARD_PW, "csrf": csrf, "next": "/guard"}
        guard.post("/guard/login", data=signed, headers={"Origin": BASE})
        page = guard.get("/guard/stats?day=2026-03-02")  # a day's counts without its rows: no
    assert page.status_code == 503 and "SQLITE_CORRUPT" in page.text
    assert "Internal Server Error" not in page.text


@pytest.mark.slow
def test_a_damaged_page_in_the_alarms_look_back_leaves_the_live_page_naming_the_rows(
    guard_core,
):
    """One old row on a page the card no longer reads back, within the alarms' look-back:
    the whole live page (and its feed and stream) answered 503, so the guard lost manual
    passes, registrations and the alarms for one unreadable row. The page is drawn from
    the rows that can be read; the alarms box names the rows that cannot, and the store
    stays degraded."""
    for _ in range(60):
        add_event(guard_core)
    damage_leaf(guard_core)
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.6, temp_object_c=36.0)
    app = create_app(guard_core)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as guard:
        login(guard)
        page = guard.get("/guard?lang=en")
        feed = guard.get("/guard/api/feed?lang=en")
        calibration = guard.get("/guard/calibration?lang=en")  # its last reading is history too
        register = guard.get("/guard/register?lang=en")  # the last day's registrations
        streamed = new_events(app.state.guard, 30).events  # what the live stream sends first
    assert page.status_code == 200, page.text[:300]
    assert feed.status_code == 200, feed.text[:300]
    assert calibration.status_code == 200, calibration.text[:300]
    assert register.status_code == 200 and 'name="decision"' in register.text, register.text[:300]
    assert "The kiosk&#39;s database could not be read (SQLITE_CORRUPT)" in register.text
    cards = feed.json()["alarms"]
    unreadable = [c for c in cards if c["key"] == "device:unreadable_rows"]
    assert len(unreadable) == 1
    said = unreadable[0]["detail"]
    rows = re.search(r"Rows ([0-9, –]+) of the log cannot be read", said)
    assert rows, said
    assert "verify-log" in said
    assert any(c["key"] == "event:61" and c["kind"] == "fever" for c in cards)  # after them
    assert f"Rows {rows.group(1)} of the log cannot be read" in page.text
    shown = {row["seq"] for row in feed.json()["rows"]}
    assert 61 in shown and not shown & set(_seqs_of(rows.group(1)))
    assert streamed[-1]["seq"] == 61
    store = guard_core.health()["devices"]["store"]
    assert store["state"] == "degraded" and "SQLITE_CORRUPT" in store["detail"]


def _seqs_of(ranges: str) -> list[int]:
    """``"31–35, 40"`` as the seqs it names."""
    found: list[int] = []
    for part in ranges.split(", "):
        first, _, last = part.partition("–")
        found += range(int(first), int(last or first) + 1)
    return found


def test_a_locked_database_is_not_taken_for_a_damaged_card(store):
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorname = "SQLITE_BUSY"
    store.note_read_fault(busy)
    assert store.health().state == "ok"
    damaged = sqlite3.DatabaseError("database disk image is malformed")
    damaged.sqlite_errorname = "SQLITE_CORRUPT"
    store.note_read_fault(damaged)
    assert store.health().detail.startswith("a read failed: SQLITE_CORRUPT: ")


def _peer_rows(n: int, ts: str) -> list[PeerRow]:
    return [
        PeerRow("gate-south", i, f"P{i}", f"{i}-1", "out", "pass", ts, False)
        for i in range(1, n + 1)
    ]


def test_a_peer_poll_with_nothing_new_writes_nothing_to_the_card(tmp_path, clock):
    """Measured: each poll of another gate (every compound.poll_s, 10 s) committed a write
    even with nothing new, the cursor's unchanged row stamped again: one 4 KiB WAL frame and
    an fsync per peer every 10 s (8,640 a day each), more than a busy gate's passages write
    (7 frames each). A poll that changes nothing now writes nothing; one that moves the
    cursor, or finds rows past the horizon to drop, still does."""
    core = build_core(KioskConfig(), tmp_path / "gate", clock)
    try:
        ledger = PeerLedger(core.store, timedelta(days=3))
        now = clock.now()
        ledger.merge(
            "http://s", "gate-south", CheckedPage(_peer_rows(3, format_ts(now)), 3, 3, 0), now
        )
        wal = core.store.path.with_name(core.store.path.name + "-wal")
        written = wal.stat().st_size
        for _ in range(3):
            clock.advance(10)
            assert (
                ledger.merge("http://s", "gate-south", CheckedPage([], 3, 3, 0), clock.now()) == []
            )
        assert wal.stat().st_size == written
        assert ledger.cursor("gate-south") == 3 and ledger.held() == {"gate-south": 3}
        clock.advance(4 * 86400)  # the rows held are past the horizon: dropped at the next poll
        ledger.merge("http://s", "gate-south", CheckedPage([], 3, 3, 0), clock.now())
        assert ledger.held() == {}
        moved = CheckedPage([], 5, 5, 0)  # rows it had none of to give (not passing ones)
        ledger.merge("http://s", "gate-south", moved, clock.now())
        assert ledger.cursor("gate-south") == 5
    finally:
        core.close()


def test_an_issuing_key_the_card_damaged_is_named_not_taken_for_no_key(
    tmp_path, clock, monkeypatch
):
    """issuer.key read back cut short (a bad sector): the console said "No issuing key on
    this kiosk", as if none had been set up, so a technician went looking for a missing
    secret instead of restoring the key from the backup; only the journal said the file was
    damaged."""
    data = tmp_path / "data"
    data.mkdir()
    close_core(make_core(data, clock, monkeypatch))
    key_path = Path(os.environ["KIOSK_ISSUER_KEY_PATH"])
    key_path.write_bytes(key_path.read_bytes()[:50])
    core = build_core(KioskConfig(), data, clock)
    try:
        assert core.issuer_key is None
        with TestClient(make_app(core), base_url=BASE) as client:
            csrf = login(client)
            page = client.get("/guard/passes?lang=en").text
            assert "No issuing key on this kiosk" not in page
            assert "The issuing key cannot be read" in page and "restore" in page
            assert html.escape(str(key_path)) in page
            sent = post(client, "/guard/passes", csrf, household="7-301", holder="A", days="1")
            assert "key cannot be read" in refused_with(client, sent)
    finally:
        close_core(core)


def test_verify_log_names_the_first_row_a_damaged_page_keeps_from_being_read(guard_core, capsys):
    """The runbook sends the technician to `kiosk verify-log` to learn what can still be read
    from a card with a bad sector; it said only "the database is corrupt: database disk image
    is malformed", naming no row, and checked nothing after it (not even the audit chain)."""
    for _ in range(60):
        add_event(guard_core)
    guard_core.store.audit("alice", "guard.login")
    damage_leaf(guard_core)
    path = guard_core.store.path
    close_core(guard_core)
    code = main(["verify-log", "--db", str(path), "--json"])
    out = capsys.readouterr()
    assert code == 1, out.err
    said = json.loads(out.out)
    assert said["table"] == "events" and 1 < said["first_bad_seq"] < 60
    first = said["first_bad_seq"]
    assert said["problem"] == (
        f"events seq {first}: cannot be read from here on (SQLITE_CORRUPT: part of the file is"
        f" damaged); seq 1..{first - 1} read and verified"
    )
    assert said["audit"] == 1  # the audit chain was walked too
    assert said["integrity"] == [
        "integrity_check could not finish: database disk image is malformed"
    ]


def test_a_config_a_power_cut_left_empty_is_refused_not_run_on_emulated_devices(tmp_path, capsys):
    """kiosk.toml saved in place (nano truncates, then writes) when the power went: empty, or
    cut after the example's opening comments. It read as a config setting nothing, so the
    daemon ran on the built-in defaults, every device emulated (the real relay never
    driven, the health page all green) with a warning in the journal only; on a gate with a
    log, the defaults' kiosk_id blamed the log instead."""
    config = tmp_path / "kiosk.toml"
    data = tmp_path / "data"
    for text in ("", "# /etc/kiosk/kiosk.toml: the gate's config\n\n"):
        config.write_text(text, encoding="utf-8")
        assert main(["check-config", str(config)]) == 2
        assert "sets nothing" in capsys.readouterr().err
        assert main(["run", "--config", str(config), "--data", str(data)]) == 2
        err = capsys.readouterr().err
        assert "sets nothing" in err and "power cut" in err
        assert not (data / "kiosk.db").exists()


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh-CN", ("只读", "纸质登记簿", "重启")),
        ("en", ("read-only", "paper register", "restarts")),
    ],
)
def test_a_card_turned_read_only_is_said_in_the_guards_language_with_what_brings_it_back(
    store, monkeypatch, lang, words
):
    """ext4 turns a failing card read-only (errors=remount-ro) and keeps it so until the next
    boot: the Devices page gave the store's detail in English whatever the guard's language,
    and nobody was told to take over by hand, nor that waiting would not bring it back."""
    monkeypatch.setattr(kiosk_store, "_read_only", lambda _path: True)
    health = store.health()
    report = {"devices": {"store": {"state": health.state, "detail": health.detail}}}
    (row,) = [r for r in health_rows(report, lang, ZoneInfo("UTC")) if r["state"] == "fault"]
    assert all(word in row["detail"] for word in words), row["detail"]


def test_a_page_the_helper_cannot_read_is_logged_once_not_at_every_pull(store, caplog, monkeypatch):
    """The office's collector asks again and again for the page a bad sector keeps from being
    read (every poll, and its retries): each ask wrote "export worker failed (DatabaseError:
    database disk image is malformed)" to the journal, on the failing card itself. Said once
    now, the repeats at debug, and again once it fails otherwise or works in between."""
    malformed = b"DatabaseError: database disk image is malformed"
    answers = iter([malformed, malformed, malformed, None, malformed])

    def ask(_request):
        body = next(answers)
        return (False, body, 0, 0, 0) if body else (True, b"{}", 0, 0, 0)

    monkeypatch.setattr(HelperProcessPages, "_failed", None)  # put back after the test
    monkeypatch.setattr(HelperProcessPages, "_ask", staticmethod(ask))
    monkeypatch.setattr(InProcessPages, "build", lambda *_a: (b"{}", 0, 0, 0))
    with caplog.at_level(logging.DEBUG, logger="checkpoint.export_helper"):
        for _ in range(5):
            HelperProcessPages().build(store, 0, 5, frozenset(), False)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2  # the first failure, and the first after a page that worked
    assert "database disk image is malformed" in warned[0].getMessage()


def _unreadable_cards(guard: TestClient) -> list[dict]:
    alarms = guard.get("/guard/api/feed?lang=en").json()["alarms"]
    return [c for c in alarms if c["key"] == "device:unreadable_rows"]


def test_the_unreadable_rows_card_can_be_closed(guard_core):
    """The card naming the rows a damaged page keeps from being read had a close button that
    did nothing: the close looked for it among the devices in fault only, found no such
    alarm and said so, and the card stood on the live page until the daemon restarted."""
    for _ in range(90):
        add_event(guard_core)
    damage_leaf(guard_core, 1)
    app = create_app(guard_core)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as guard:
        csrf = login(guard)
        assert len(_unreadable_cards(guard)) == 1
        closed = post(guard, "/guard/alarms/ack", csrf, only="device:unreadable_rows@1")
        assert closed.status_code == 303 and "error" not in closed.headers["location"]
        assert _unreadable_cards(guard) == []
        assert _unreadable_cards(guard) == []  # nothing new: it stays closed
        audit = guard_core.store.audits(0, 1000)
    assert any("device:unreadable_rows" in json.dumps(row["detail"]) for row in audit)


@pytest.mark.slow
def test_the_unreadable_rows_card_comes_back_when_more_rows_fail_after_it_was_closed(
    guard_core,
):
    """A closed card kept every later failure unsaid until the daemon restarted: the card
    failing another page is a new incident. The card comes back once, naming the rows, and
    stays closed while no further row fails."""
    for _ in range(90):
        add_event(guard_core)
    damage_leaf(guard_core, 1)
    app = create_app(guard_core)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as guard:
        csrf = login(guard)
        first = _unreadable_cards(guard)
        post(guard, "/guard/alarms/ack", csrf, only="device:unreadable_rows@1")
        assert _unreadable_cards(guard) == []
        before = set(guard_core.store.unreadable_seqs())
        damage_leaf(guard_core, -2)
        guard_core.store.readable_events(0, 90)  # a later read crosses the newly bad page
        assert set(guard_core.store.unreadable_seqs()) > before
        again = _unreadable_cards(guard)
        assert len(again) == 1 and again[0]["detail"] != first[0]["detail"], again
        assert len(_unreadable_cards(guard)) == 1  # once, not a card per read
        closed = post(guard, "/guard/alarms/ack", csrf, only="device:unreadable_rows@1")
        assert closed.status_code == 303 and _unreadable_cards(guard) == []


def _page_of_the_helper(store, after: int) -> list[int]:
    """The seqs of the page the office's pull gets from the export helper (its own reader)."""
    body, *_ = export_page_at(str(store.path), after, 100, (), True)
    return [json.loads(line)["seq"] for line in body.splitlines()]


#: How a reader meets the damaged page, and what that reader then reads after a seq.
_DAMAGED_READS = {
    "live page, row by row past it": (
        lambda s: s.readable_events(0, 60),
        lambda s, after: [e["seq"] for e in s.events(after)],
    ),
    "newest first, as the alarms": (
        lambda s: s.readable_recent(60),
        lambda s, after: [e["seq"] for e in s.readable_recent(1)],
    ),
    "a page that stops at it": (
        lambda s: s.events(0, 60),
        lambda s, after: [e["seq"] for e in s.events(after)],
    ),
    "the export helper's page": (
        lambda s: _page_of_the_helper(s, 0),
        _page_of_the_helper,
    ),
}


@pytest.mark.parametrize("how", list(_DAMAGED_READS))
def test_a_reader_that_met_a_damaged_page_sees_later_passages_and_holds_up_no_wal_wipe(
    store, monkeypatch, how
):
    """A read that met a damaged page (SQLITE_CORRUPT) left its reader inside a read
    transaction: that web worker thread's pages (the guard's live page, the office's pull)
    went on showing the log as it was then, every later passage missing, and every WAL
    checkpoint, the retention's wipe of the names it nulls among them, waited on it and gave
    up, until the thread ended. The read still fails or reads past the page as before."""
    monkeypatch.setattr(kiosk_store, "WIPE_WAIT_MS", 5)  # that it gives up, not how long
    monkeypatch.setattr(export, "_EXPORT_READERS", OrderedDict())
    fail, follow = _DAMAGED_READS[how]
    for _ in range(60):
        store.append(EventDraft(direction="in", decision="pass", reasons=("ok",)))
    damage_leaf(SimpleNamespace(store=store))
    reader = store.reader()
    with contextlib.suppress(ReadFailure):
        fail(store)
    assert store.reader() is reader  # the same reader reads on
    with contextlib.suppress(ReadFailure):
        fail(store)  # and meets the page again (its rows read past, or the page refused)
    later = store.append(EventDraft(direction="out", decision="pass", reasons=("ok",)))
    assert follow(store, later.seq - 1) == [later.seq]
    assert store.wipe_wal() is True
