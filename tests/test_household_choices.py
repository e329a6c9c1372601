"""The manual form's dwellings to pick from were built on every live-page load (~30 ms and
132 KB for a 5,000-dwelling map) in a plain string sort cut at 5,000: on a 6,000-dwelling
map ``7-4-1904`` was the last offered and buildings 8 and 9 were missing. They are built once
per map and lists in force (``CompoundMap.version``), in natural order, and a cap, if ever
reached, is said on the form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from guard_support import console_fixtures

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
    assert '<option value="12-2-1904">' in alice.get("/guard").text
    monkeypatch.undo()
    load(core, compound_map(2))  # a new map: built again
    assert household_choices(g, ALL_FIELDS).offered[-1] == "2-2-1904"


def test_a_cap_reached_is_said_on_the_form(core, alice, monkeypatch):
    load(core, compound_map(3))
    monkeypatch.setattr(registrations, "MAX_CHOICES", 10)
    page = alice.get("/guard?lang=en").text
    listed = page.split('id="manual-households"', 1)[1].split("</datalist>", 1)[0]
    assert listed.count("<option value=") == 10 and "3-2-1904" not in listed
    assert "The list offers the first 10 dwellings only; 26 more are not listed" in page
