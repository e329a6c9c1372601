"""Defects found working a shift at the gate with the console in a browser, each pinned."""

from __future__ import annotations

from datetime import UTC, datetime

from guard_support import console_fixtures

#: The console at 09:00 Shanghai.
clock, core, app, alice, admin = console_fixtures(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))


def test_lists_never_updated_say_so_instead_of_minus_one_hours(alice):
    # A kiosk whose lists were never updated: the Lists page said "名单已 -1 小时未更新".
    for lang, never in (("zh-CN", "名单从未更新"), ("en", "Lists have never been updated")):
        page = alice.get(f"/guard/lists?lang={lang}")
        assert page.status_code == 200
        assert never in page.text
        assert "-1 " not in page.text and "-1 h" not in page.text
