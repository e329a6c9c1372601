"""What a review of the question about a dwelling the gate does not know found.

* A dwelling typed as a guard says it (``D-0404``, ``D栋404``, ``D-404室``, ``D-404出``) got
  no "Use D-404": only separators, spaces and case were set aside to offer a listed one.
  Leading zeros and the words a dwelling is said with (栋, 单元, 室, a direction) are now
  set aside too, to offer, never to match.
* A dwelling kept as typed was flagged ``unknown_dwelling``, as the question promised ("the
  record will say the dwelling was not checked"), but no page said so: the live feed's row
  (and a passage's page) now carries a badge, and the daily report counts such passes
  (``community.unknown_dwellings``).
* The dwelling of a pass issued at the console more than 2,000 passes ago was unknown (the
  newest 2,000 issue rows were read): every issued pass's household is read now.
"""

from __future__ import annotations

import json
import sqlite3
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from guard_support import BASE, add_event, decided, login, make_app
from test_guard_holds import as_a_browser_sends
from test_shift_found import QUARANTINED, core, nobody  # noqa: F401 (a fixture)

from kiosk import stats
from kiosk.dwellings import Dwellings, GateDwellings, issued_households
from ui.guard.display import report_summary

TZ = ZoneInfo("Asia/Shanghai")


# --- the spellings offered ------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["D-0404", "D栋404", "D幢404", "D-404室", "D-404号", "D-404出", "D-404 out", "d404进"]
)
def test_a_dwelling_said_with_its_words_or_zeros_is_offered_the_listed_one(typed):
    known = Dwellings.of([QUARANTINED, "E-505"])
    assert not known.knows(typed)  # offered, never matched
    assert known.near(typed) == (QUARANTINED,)


def test_a_dwelling_with_its_building_unit_and_room_words_is_offered_the_listed_one():
    known = Dwellings.of(["3-2-101", "3-2-1010"])
    assert known.near("3号楼2单元101室") == ("3-2-101",)
    assert known.near("3栋02单元0101") == ("3-2-101",)


def test_the_words_are_set_aside_only_as_words():
    """``in`` inside a dwelling's code is no direction: ``Lin-3`` is not ``L-3``."""
    known = Dwellings.of(["L-3", "D-44"])
    assert known.near("Lin-3") == () and known.near("D-404") == ()


def test_a_zero_padded_dwelling_is_offered_on_the_live_page(core):  # noqa: F811
    with TestClient(make_app(core), base_url=BASE) as client:
        asked = nobody(client, login(client), "D-0404")
        assert asked.status_code == 200 and core.store.last_seq == 0  # nothing recorded
        assert 'name="household" value="D-404" id="confirm-offered-1">改为 D-404' in asked.text


# --- the flag shown -------------------------------------------------------------------------

BADGE = '<span class="badge unchecked">户号未核对</span>'


def test_a_dwelling_kept_as_typed_shows_on_the_feed_and_its_passage(core):  # noqa: F811
    core.lists.set_household("E-505", "root")
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        asked = nobody(client, csrf, "D-0404")
        with decided(client, core):
            as_a_browser_sends(client, asked.text)  # "Keep D-0404 as typed"
        with decided(client, core):  # a dwelling the gate knows: no badge
            nobody(client, csrf, "E-505", direction="in")
        assert core.store.events()[0]["flags"] == ["unknown_dwelling"]
        feed = client.get("/guard/api/feed").json()["rows"]
        live = client.get("/guard").text
        passage = client.get("/guard/passage/1").text
        known = client.get("/guard/passage/2").text
    assert [r["unknown_dwelling"] for r in feed] == [False, True]
    row = live.split('<tr data-seq="1"', 1)[1].split("</tr>", 1)[0]
    assert BADGE in row
    assert BADGE not in live.split('<tr data-seq="2"', 1)[1].split("</tr>", 1)[0]
    assert 'data-unknown-dwelling="户号未核对"' in live  # the stream's rows, drawn by guard.js
    assert BADGE in passage and BADGE not in known


def test_the_daily_report_counts_the_passes_under_a_dwelling_not_checked(core):  # noqa: F811
    add_event(core, decision="manual_pass", household="D-0404", operator="alice",
              flags=("unknown_dwelling",), direction="out")  # fmt: skip
    add_event(core, decision="manual_pass", household="Z-9", operator="alice",
              flags=("unknown_dwelling",), direction="in")  # fmt: skip
    add_event(core, decision="manual_deny", household="Z-8", operator="alice",
              flags=("unknown_dwelling",))  # fmt: skip
    add_event(core, decision="manual_pass", household="E-505", operator="alice")
    day = core.clock.now().astimezone(TZ).date()
    report = stats.compute_report(core.store.reader(), day, TZ)
    assert report["community"]["unknown_dwellings"] == 2  # passes only, not the deny
    assert ("Manual passes, dwelling not checked", 2) in report_summary(report, "en")  # export
    with TestClient(make_app(core), base_url=BASE) as client:
        login(client)
        page = client.get("/guard/community/report").text
        csv_text = client.get("/guard/community/report.csv").text
    assert "人工放行户号未核对（按所填户号记录）" in page
    assert "unknown_dwellings,,2" in csv_text.replace("\r", "")


# --- the passes issued at the console -------------------------------------------------------


class AuditOnly:
    """An audit table of issue rows alone, as the log keeps them (seq, action, detail)."""

    def __init__(self, details: list[str | None]) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.execute("create table audit (seq integer primary key, action text, detail text)")
        self.db.executemany(
            "insert into audit (action, detail) values ('pass_issued', ?)", [(d,) for d in details]
        )

    def reader(self) -> sqlite3.Connection:
        return self.db


def issued(pass_id: str, household: object) -> str:
    return json.dumps({"pass_id": pass_id, "household": household})


def test_the_dwelling_of_a_pass_issued_more_than_2000_passes_ago_is_known():
    rows = [issued("c0ffee000000", "H-001")]
    rows += [issued(f"c0ffee{i + 1:06d}", f"K-{i}") for i in range(2000)]
    rows += [issued("c0ffee999999", "K-7")]
    households = issued_households(AuditOnly(rows))
    assert households[-1] == "H-001"  # the first pass issued here: 2,001 issued since
    assert len(households) == 2001 and households[:2] == ["K-7", "K-1999"]  # each once


def test_an_issue_row_naming_no_household_is_skipped():
    """A row retention purged (no detail), one whose detail is not JSON (a hand edit), one
    naming no household or not as text: none is a dwelling, and none fails the read."""
    rows = [None, "{not json", issued("c0ffee000001", None), issued("c0ffee000002", 7)]
    rows += [issued("c0ffee000003", " "), issued("c0ffee000004", "H-002")]
    assert issued_households(AuditOnly(rows)) == ["H-002"]


def test_a_pass_issued_at_the_console_is_a_dwelling_the_gate_knows(core):  # noqa: F811
    core.store.audit("alice", "pass_issued", {"pass_id": "c0ffee000000", "household": "H-001"})
    known = GateDwellings(core.store, core.lists, core.ledgers.compound, core.ledgers.observation)
    assert known.current().knows("H-001") and not known.current().knows("H-002")
