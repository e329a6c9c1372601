"""A daily report of a day that has not begun: ``kiosk report --day`` refused it (a year typed
wrong is not a day of zeros sent up) while the console's report exported it as a file of
zeros. One check (``kiosk.days.refuse_unbegun``) for the CLI, the district report and the
console's report page and files."""

from __future__ import annotations

import html
import re
from datetime import date

import pytest
from guard_support import add_event, login

from kiosk.days import DayNotBegun, refuse_unbegun

AHEAD = "2027-03-02"  # the guard's clock reads 2026-03-02 (tests/conftest.py)


def _flash(page: str) -> str:
    found = re.search(r'class="flash err"[^>]*>(.*?)</', page, re.S)
    return html.unescape(found.group(1)) if found else ""


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_consoles_report_file_of_a_day_not_begun_is_refused_not_zeros(
    guard_client, guard_core, fmt
):
    add_event(guard_core, household="1-101", temp_c=36.5)
    login(guard_client)
    refused = guard_client.get(f"/guard/community/report.{fmt}?day={AHEAD}&lang=en")
    assert refused.status_code == 400
    assert "that day has not begun (today is 2026-03-02 in" in refused.json()["detail"]
    assert guard_client.get(f"/guard/community/report.{fmt}?day=2026-03-02").status_code == 200


@pytest.mark.parametrize(
    ("lang", "words"), [("en", "that day has not begun"), ("zh-CN", "这一天还没有开始")]
)
def test_the_consoles_report_page_of_a_day_not_begun_says_why_and_keeps_the_day(
    guard_client, guard_core, lang, words
):
    login(guard_client)
    page = guard_client.get(f"/guard/community/report?day={AHEAD}&lang={lang}")
    assert page.status_code == 400
    assert words in _flash(page.text) and "2026-03-02" in _flash(page.text)
    assert f'name="day" type="date" value="{AHEAD}"' in page.text  # to correct, not retype
    assert 'data-category="people"' not in page.text  # no table of zeros


def test_a_day_ahead_that_holds_events_still_reports():
    """Events stamped ahead (a clock set wrong, then corrected) are a report to see."""
    refuse_unbegun(date(2027, 3, 2), date(2026, 3, 2), "UTC", 3)
    refuse_unbegun(date(2026, 3, 2), date(2026, 3, 2), "UTC", 0)  # today, nothing yet: zeros
    with pytest.raises(DayNotBegun, match=r"today is 2026-03-02 in Asia/Shanghai"):
        refuse_unbegun(date(2026, 3, 3), date(2026, 3, 2), "Asia/Shanghai", 0)


@pytest.mark.parametrize(
    ("lang", "words"), [("en", "that day has not begun"), ("zh-CN", "这一天还没有开始")]
)
def test_the_consoles_stats_page_of_a_day_not_begun_says_why_and_keeps_the_day(
    guard_client, guard_core, lang, words
):
    add_event(guard_core, household="1-101", temp_c=36.5)
    login(guard_client)
    page = guard_client.get(f"/guard/stats?day={AHEAD}&lang={lang}")
    assert page.status_code == 400
    assert words in _flash(page.text) and "2026-03-02" in _flash(page.text)
    assert f'name="day" value="{AHEAD}"' in page.text  # to correct, not retype
    assert guard_client.get("/guard/stats?day=2026-03-02").status_code == 200


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_consoles_day_export_of_a_day_not_begun_is_refused_not_zeros(
    guard_client, guard_core, fmt
):
    add_event(guard_core, household="1-101", temp_c=36.5)
    login(guard_client)
    refused = guard_client.get(f"/guard/export.{fmt}?day={AHEAD}&lang=en")
    assert refused.status_code == 400
    assert "content-disposition" not in refused.headers  # a page saying why, not a file
    assert "that day has not begun (today is 2026-03-02 in" in _flash(refused.text)
    assert f'name="day" value="{AHEAD}"' in refused.text
    assert guard_client.get(f"/guard/export.{fmt}?day=2026-03-02").status_code == 200
