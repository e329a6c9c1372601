"""One event row whose stored ``reasons``, ``flags`` or ``person`` text is not JSON (an SD
card's bit rot, a hand edit; ``kiosk verify-log``'s "unreadable value"). Before, reading it
back raised JSONDecodeError: ``/api/v1/events`` and ``events.csv`` were 500s (the office's
pull, paging by seq, could never get past it) and so were the guard console's live page, feed,
passage, rows, health and community pages. Now the API passes the text on unchanged and names
the field in ``unreadable``; the office's pull stops at the row naming its seq; the console
reads the field as nothing and draws its pages."""

from __future__ import annotations

import csv
import io
import logging
import sqlite3
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from guard_support import BASE, login, make_app
from support import kiosk_api, reporting_log
from test_damaged_rows import DAMAGE, damage, fever_let_through
from test_pull import Network, target_rows

from kiosk.clock import FakeClock
from kiosk.store import decode_audit_row, decode_event_row
from office.pull import ChainError, pull
from ui import i18n

#: The damaged JSON fields, as ``test_damaged_rows.DAMAGE`` edits them.
JSON_DAMAGE = ("reasons", "flags", "person")
#: Their stored text, as the edit leaves it.
TEXT = {"reasons": "{not json", "flags": '["overrides:', "person": '{"name": '}
CONSOLE = (
    "/guard/",
    "/guard/api/feed",
    "/guard/passage/2",
    "/guard/rows/2",
    "/guard/health",
    "/guard/community",
    "/guard/community/returnees",
)


@pytest.fixture
def clock():
    return FakeClock(start=datetime(2026, 10, 25, 9, 0, tzinfo=UTC))


def test_the_damage_is_what_the_text_says():
    assert {f: DAMAGE[f].strip("'") for f in JSON_DAMAGE} == TEXT


@pytest.fixture
def api(tmp_path, clock):
    core = kiosk_api(tmp_path / "k.db", "gate-1", clock)
    fever_let_through(core.store, clock, holder="Zhangsan Secret", household="A-101")
    yield core
    core.store.close()


def events_page(core) -> list[dict]:
    answer = core.test_client.get(
        "/api/v1/events", headers={"Authorization": f"Bearer {core.token}"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["events"]


@pytest.mark.parametrize("field", ["reasons", "flags"])
def test_the_events_page_passes_the_damaged_text_on_and_names_it(field, api):
    damage(api.store.path, field)
    events = events_page(api)
    assert [e["seq"] for e in events] == [1, 2]
    assert events[1][field] == TEXT[field] and events[1]["unreadable"] == [field]
    assert "unreadable" not in events[0] and events[0]["reasons"] == ["fever"]


def test_a_damaged_person_is_masked_as_any_person(api):
    """Without ``logs:personal`` the damaged text is scrubbed: no name goes out in the clear."""
    damage(api.store.path, "person")
    db = sqlite3.connect(api.store.path)
    db.execute('UPDATE events SET person = \'{"name": "Zhangsan Secret\' WHERE seq = 2')
    db.commit()
    db.close()
    event = events_page(api)[1]
    assert event["unreadable"] == ["person"] and "Zhangsan" not in str(event["person"])


@pytest.mark.parametrize("field", ["reasons", "flags"])
def test_the_csv_export_keeps_the_damaged_row(field, api):
    damage(api.store.path, field)
    answer = api.test_client.get(
        "/api/v1/events.csv", headers={"Authorization": f"Bearer {api.token}"}
    )
    assert answer.status_code == 200, answer.text
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["seq"] for r in rows] == ["1", "2"]
    assert rows[1][field] == TEXT[field]


@pytest.mark.parametrize("field", ["reasons", "flags"])
def test_the_offices_pull_stops_at_the_damaged_row_naming_its_seq(field, api, tmp_path):
    """Its hash no longer verifies: the pull says which row, writes none of that page, and
    says the same again next time (it does not loop, nor skip the row)."""
    damage(api.store.path, field)
    target = tmp_path / "central.db"
    for _ in range(2):
        with pytest.raises(ChainError, match=f"^seq 2: {field}: stored text is not JSON"):
            pull("http://gate-1", api.token, target, client=Network(api).client())
    assert target_rows(target) == []


def test_the_offices_pull_keeps_a_row_whose_person_is_damaged(api, tmp_path):
    """The hash covers the person's digest, not its text: the row verifies and is kept,
    its person masked as the token's scopes say (the damaged text is no name)."""
    damage(api.store.path, "person")
    target = tmp_path / "central.db"
    result = pull("http://gate-1", api.token, target, client=Network(api).client())
    assert (result.inserted, [row[1] for row in target_rows(target)]) == (2, [1, 2])
    db = sqlite3.connect(target)
    stored = db.execute("SELECT person FROM pulled_events WHERE seq = 2").fetchone()
    db.close()
    assert stored == ('"*"',)


def test_a_sound_page_before_the_damaged_row_is_kept(api, tmp_path):
    damage(api.store.path, "reasons")
    target = tmp_path / "central.db"
    with pytest.raises(ChainError, match="^seq 2"):
        pull("http://gate-1", api.token, target, client=Network(api).client(), page_size=1)
    assert [row[1] for row in target_rows(target)] == [1]


@pytest.mark.parametrize("field", JSON_DAMAGE)
def test_the_log_reads_a_damaged_field_as_nothing_and_names_it(field, tmp_path, clock):
    store = reporting_log(tmp_path / "k.db", clock)
    try:
        fever_let_through(store, clock)
        damage(store.path, field)
        first, second = store.events()
    finally:
        store.close()
    assert "unreadable" not in first and first["flags"] == []
    assert second["unreadable"] == [field]
    assert second[field] == ([] if field != "person" else None)


def test_an_audit_rows_damaged_detail_reads_as_nothing():
    row = decode_audit_row({"seq": 4, "detail": "{x", "clock_synced": 1})
    assert row == {"seq": 4, "detail": {}, "clock_synced": True, "unreadable": ["detail"]}
    row["detail"]["added"] = 1  # a reader adding to what it read changes no other row's
    assert decode_audit_row({"seq": 6, "detail": "{x"})["detail"] == {}
    sound = decode_event_row({"seq": 5, "reasons": '["ok"]', "flags": "[]", "person": None})
    assert sound == {"seq": 5, "reasons": ["ok"], "flags": [], "person": None}


@pytest.mark.parametrize("field", JSON_DAMAGE)
def test_the_consoles_pages_draw_a_damaged_row(field, guard_core, clock, caplog):
    """Before: each of ``CONSOLE`` was a 500 (reasons, flags; person: the passage page)."""
    fever_let_through(guard_core.store, clock, holder="Zhangsan Secret")
    damage(guard_core.store.path, field)
    clock.advance(60)
    with (
        caplog.at_level(logging.DEBUG),
        TestClient(make_app(guard_core), base_url=BASE, raise_server_exceptions=False) as c,
    ):
        login(c)
        status = {p: c.get(p).status_code for p in CONSOLE}
        rows = {row["seq"]: row["reasons"] for row in c.get("/guard/api/feed").json()["rows"]}
    assert status == dict.fromkeys(CONSOLE, 200)
    # Shown as damaged, naming the field (never "ok" for the reasons it lost).
    assert rows[2] == i18n.t("zh-CN", "row.unreadable", fields=field), rows
    assert rows[1] == i18n.reasons_text("zh-CN", ["fever"])
    assert not any("Zhangsan" in r.getMessage() for r in caplog.records)
