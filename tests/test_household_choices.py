"""The manual form's dwellings to pick from were built on every live-page load (~30 ms and
132 KB for a 5,000-dwelling map) in a plain string sort cut at 5,000: on a 6,000-dwelling
map ``7-4-1904`` was the last offered and buildings 8 and 9 were missing. They are built once
per map and lists in force (``CompoundMap.version``), in natural order, and a cap, if ever
reached, is said on the form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from guard_support import BASE, console_fixtures

from ui.guard import registrations
from ui.guard.display import ALL_FIELDS
from ui.guard.registrations import household_choices, natural_key

clock, core, app, alice, admin = console_fixtures(datetime(2026, 2, 12, 1, 0, tzinfo=UTC))


def compound_map(buildings: int) -> bytes:
    rows = ["building,unit,floor,household"]
    for b in range(1, buildings + 1):
        for u in range(1, 3):
            for f in (1, 9, 19):
                rows += [f"{b},{u},{f},{b}-{u}-{f}{d:02d}" for d in (1, 4)]
    return ("\n".join(rows) + "\n").encode()


def load(core, data: bytes) -> None:
    cmap = core.ledgers.compound
    cmap.apply(cmap.plan_import(data, "map.csv"), "root")


def test_every_building_is_offered_in_natural_order_built_once_per_map(core, alice, monkeypatch):
    load(core, compound_map(12))
    g = alice.app.state.guard
    offered = household_choices(g, ALL_FIELDS).offered
    assert len(offered) == 12 * 2 * 3 * 2 and offered == tuple(sorted(offered, key=natural_key))
    assert offered[:3] == ("1-1-101", "1-1-104", "1-1-901")  # 9th floor before the 19th
    assert offered.index("2-1-101") < offered.index("10-1-101")
    assert offered[-1] == "12-2-1904"
    # Kept: the next load reads the map's version, not the map.
    monkeypatch.setattr(type(core.ledgers.compound), "dwellings", lambda self: pytest.fail("read"))
    assert household_choices(g, ALL_FIELDS).offered is offered
    assert "12-2-1904" in alice.get("/guard/api/households").json()["offered"]
    monkeypatch.undo()
    load(core, compound_map(2))  # a new map: built again
    assert household_choices(g, ALL_FIELDS).offered[-1] == "2-2-1904"


def test_a_cap_reached_is_said_on_the_form(core, alice, monkeypatch):
    load(core, compound_map(3))
    monkeypatch.setattr(registrations, "MAX_CHOICES", 10)
    page = alice.get("/guard?lang=en").text
    listed = alice.get("/guard/api/households").json()
    assert len(listed["offered"]) == 10 and "3-2-1904" not in listed["offered"]
    assert listed["left_out"] == 26
    assert "The list offers the first 10 dwellings only; 26 more are not listed" in page


def big_map(n: int) -> bytes:
    rows = ["building,unit,floor,household"]
    rows += [
        f"{i // 128 + 1},{i // 32 % 4 + 1},{i // 4 % 8 + 1},{i}-{i % 4 + 1:02d}" for i in range(n)
    ]
    return ("\n".join(rows) + "\n").encode()


def test_the_dwellings_are_fetched_once_per_list_not_sent_in_every_page(core, alice, admin):
    """The live page carried the datalist inline: 518 KB with 20,000 dwellings, sent again
    at every load (a manual decision reloads it). The page names the list's address; the
    list is a guard's resource of its own, kept by the browser alone (``private``) and asked
    again at each use (``no-cache``): a 304 by its ``ETag`` while the map and lists hold."""
    load(core, big_map(3_000))  # ~80 KB inline
    page = alice.get("/guard?lang=en")
    assert len(page.content) < 30_000 and 'data-src="/guard/api/households"' in page.text
    listed = alice.get("/guard/api/households")
    assert len(listed.json()["offered"]) == 3_000
    assert listed.headers["cache-control"] == "private, no-cache"
    etag = listed.headers["etag"]
    again = alice.get("/guard/api/households", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert admin.get("/guard/api/households", headers={"If-None-Match": etag}).status_code == 304
    load(core, big_map(10))  # a new map: a new list
    changed = alice.get("/guard/api/households", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and len(changed.json()["offered"]) == 10
    assert alice.get("/guard/api/households", headers={"If-None-Match": etag}).status_code == 200


def test_the_dwellings_are_a_guards_only(app):
    with TestClient(app, base_url=BASE) as stranger:
        assert stranger.get("/guard/api/households").status_code == 401


def test_the_consoles_answers_are_compressed_but_never_its_stream(core, alice):
    """Pages and JSON of the console over a few KB go gzip to a browser that takes it; the
    live stream (``text/event-stream``) is never compressed (buffered), nor anything under
    the size or outside ``/guard``."""
    load(core, big_map(1_000))
    gz = {"Accept-Encoding": "gzip"}
    listed = alice.get("/guard/api/households", headers=gz)
    assert listed.headers.get("content-encoding") == "gzip"
    assert len(listed.json()["offered"]) == 1_000  # the client undid it
    page = alice.get("/guard?lang=en", headers=gz)
    assert page.headers.get("content-encoding") == "gzip" and "manual-households" in page.text
    plain = alice.get("/guard?lang=en", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert "content-encoding" not in alice.get("/api/v1/health", headers=gz).headers
    with alice.stream("GET", "/guard/events", headers=gz) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in stream.headers
