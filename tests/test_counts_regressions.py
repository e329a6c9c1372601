"""Defects in the figures the guard and the office read, each found by a day whose true
counts are known by construction."""

from __future__ import annotations

import re

from guard_support import add_event, login


def test_the_stats_pages_people_in_and_out_count_each_person_once(guard_client, guard_core):
    """"进出人次" on /guard/stats was the events by direction: a denied attempt counted as a
    person in, and a person the kiosk denied and the guard then let in counted twice (the
    deny and the guard's pass); a car counted as a person. It now shows the office's
    ``people`` (passed passages and manual passes of people, vehicles apart)."""
    add_event(guard_core, household="1-101")  # in
    add_event(guard_core, household="1-102")  # in
    denied = add_event(guard_core, decision="deny", reasons=("pass_expired",))
    add_event(guard_core, decision="manual_pass", reasons=("guard_override",), operator="alice",
              flags=(f"overrides:{denied.seq}",))  # in, the same person  # fmt: skip
    add_event(guard_core, decision="deny", reasons=("quota_exceeded",), direction="out")
    add_event(guard_core, decision="manual_pass", reasons=("guard_override",), operator="alice",
              kind="vehicle", person={"plate": "京A12345", "occupants": 0})  # fmt: skip
    add_event(guard_core, direction="out", household="1-101")  # out
    login(guard_client)
    page = guard_client.get("/guard/stats?day=2026-03-02").text
    table = page.split("进出人次")[1].split("</table>")[0]
    rows = dict(re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">(\d+)</td></tr>", table))
    assert rows == {"进入": "3", "外出": "1"}
