"""A day whose outing quota changed more often than the office lists (a daemon in a crash loop
on a flapping config, restarted with another quota every few minutes): the gate sent every
rule and the office refused the report as not a daily report, the day lost at the office;
and one past day refused stopped the round, the days before it never asked. The district's
CSV said one quota for a day that had two."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, timedelta

import httpx
import pytest
from test_quota_changes_alike import _ON, _compound, _gate, _restart_with, _started
from test_report_outing_roles import DAY, DAY_START, TZ, _site

from kiosk.config.policy import QuotaConfig
from kiosk.stats import ABRIDGED_QUOTA_CHANGES, MAX_QUOTA_CHANGES, _exits_section, daily_report
from kiosk.store import EventDraft, record_site
from office.district import district_csv
from office.gatereports import collect_reports, gate_policy
from office.pull import PullError

pytest_plugins = ("pgfixture",)

_ONE = QuotaConfig(enabled=True, exits=1, period_days=1, roles=("resident",))
_TWO = QuotaConfig(enabled=True, exits=2, period_days=1, roles=("resident",))
#: A restart every 10 minutes from 01:00, its quota flapping between one and two a day.
_RESTARTS = 60


def test_the_rules_past_the_offices_bound_are_left_out_between_the_first_and_the_last():
    rules = [(None, _ONE)] + [
        (DAY_START + timedelta(minutes=10 * i), _TWO if i % 2 else _ONE)
        for i in range(1, _RESTARTS + 1)
    ]
    exits = _exits_section(_ONE, Counter({"F6": 1}), 0, rules)
    report = {"day": DAY.isoformat(), "timezone": TZ, "exits_per_household": exits}
    quota = gate_policy(report)["quota"]  # the office keeps it (it refused it)
    assert [c["from"] for c in quota["changes"]] == [None] + [
        since.isoformat() for since, _ in rules[-MAX_QUOTA_CHANGES:]
    ]
    assert quota["changes_left_out"] == exits["quota_changes_left_out"] == 12
    whole = _exits_section(_ONE, Counter(), 0, rules[:MAX_QUOTA_CHANGES])
    assert len(whole["quota_changes"]) == MAX_QUOTA_CHANGES  # all, as before
    assert "quota_changes_left_out" not in whole


@pytest.mark.slow
def test_a_day_of_more_rules_than_the_office_lists_is_abridged_and_kept(reporting_store, clock):
    clock.set_wall(DAY_START - timedelta(days=1))
    record_site(reporting_store, _site(_ONE))
    for i in range(1, _RESTARTS + 1):
        clock.set_wall(DAY_START + timedelta(hours=1, minutes=10 * i))
        record_site(reporting_store, _site(_TWO if i % 2 else _ONE))
    clock.set_wall(DAY_START + timedelta(days=1, minutes=40))
    report = daily_report(reporting_store.reader(), DAY, TZ, _ONE)
    exits = report["exits_per_household"]
    listed = exits["quota_changes"]
    assert len(listed) == ABRIDGED_QUOTA_CHANGES
    assert exits["quota_changes_left_out"] == _RESTARTS + 1 - ABRIDGED_QUOTA_CHANGES
    assert listed[0]["from"] is None and listed[0]["quota_exits"] == 1  # the day's first
    last = (DAY_START + timedelta(hours=1, minutes=10 * _RESTARTS)).isoformat()
    assert listed[-1]["from"] == last and listed[-1]["quota_exits"] == 1  # and its last
    quota = gate_policy(report)["quota"]  # the office keeps it (it refused it)
    assert len(quota["changes"]) == ABRIDGED_QUOTA_CHANGES
    assert quota["changes_left_out"] == _RESTARTS + 1 - ABRIDGED_QUOTA_CHANGES


def test_a_report_of_an_older_gate_without_the_count_left_out_is_kept_as_before():
    changes = [{"from": None} | _ON, {"from": "2026-03-02T04:00:00+00:00"} | _ON]
    report = {"day": "2026-03-02", "timezone": TZ, "exits_per_household": _ON}
    quota = gate_policy(report | {"exits_per_household": _ON | {"quota_changes": changes}})
    assert len(quota["quota"]["changes"]) == 2 and "changes_left_out" not in quota["quota"]
    bad = _ON | {"quota_changes": changes, "quota_changes_left_out": "many"}
    with pytest.raises(ValueError, match="quota_changes_left_out"):
        gate_policy(report | {"exits_per_household": bad})


class _Kept:
    def __init__(self) -> None:
        self.days: list[date] = []

    def write_gate_report(self, kiosk_id, day, timezone, ledgers, final):
        self.days.append(day)

    def final_report_days(self, kiosk_id, since):
        return set()


def test_one_past_day_refused_does_not_lose_the_days_before_it():
    """Today and the day before it fine, two days ago refused (not a daily report): the days
    before it were never asked while it stood (each round stopped at it)."""
    today = date(2026, 3, 5)
    refused = today - timedelta(days=2)

    def answer(request: httpx.Request) -> httpx.Response:
        day = date.fromisoformat(request.url.params.get("day", today.isoformat()))
        report = {"day": day.isoformat(), "timezone": TZ, "community": {}}
        if day == refused:  # one rule listed: not the rules of a day whose rule changed
            report["exits_per_household"] = _ON | {"quota_changes": [{"from": None} | _ON]}
        return httpx.Response(200, json=report)

    kept = _Kept()
    refusal = pytest.raises(PullError, match=f"day={refused.isoformat()}.*quota_changes")
    with httpx.Client(transport=httpx.MockTransport(answer)) as client, refusal:
        collect_reports(client, kept, "http://gate-north", "gate-north", "t" * 20, days=5)
    assert kept.days == [today - timedelta(days=n) for n in (0, 1, 3, 4)]


def _district(compound: dict) -> list[list[str]]:
    report = {"exits_per_household": {"compounds": [compound]}}
    return list(csv.reader(io.StringIO(district_csv(report))))


_QUOTA = {"enabled": True, "exits": 1, "period_days": 1, "roles": ["resident"], "timezone": TZ}
_RULE = {"enabled": True, "exits": 1, "period_days": 1, "roles": ["resident"]}


def test_the_district_csv_says_the_days_quota_changes():
    off = {"from": None, "enabled": False, "exits": 1, "period_days": 1, "roles": ["resident"]}
    noon = {"from": "2026-03-02T04:00:00+00:00"} | _RULE  # 12:00 in Shanghai
    compound = {"gates": ["gate-north"], "quota": _QUOTA, "quota_changes": [off, noon]}
    rows = _district(compound)
    label = "compound gate-north"
    assert [label, "quota_changes", "start off; 12:00 1 every 1 days (resident)"] in rows
    assert [label, "quota_changes", "none"] in _district(compound | {"quota_changes": None})
    abridged = compound | {"quota_changes_left_out": 13}
    shown = "start off; (13 more rules not listed); 12:00 1 every 1 days (resident)"
    assert [label, "quota_changes", shown] in _district(abridged)


@pytest.mark.slow
def test_the_district_counts_no_compound_by_rules_it_does_not_all_hold(tmp_path, pg_dsn):
    """A gate restarted 60 times in the day with its quota flapping: the office keeps its
    report, and the compound's count is unknown (its outings between the first rule and the
    last ones listed cannot be judged by the rule in force then), never one by wrong rules."""
    north = _gate(tmp_path, "gate-north", zone=TZ)
    try:
        _started(north)
        for i in range(1, _RESTARTS + 1):
            _restart_with(north, {"exits": 2 if i % 2 else 1}, 600 * i - 39600)
        north.clock.set_wall(DAY_START + timedelta(hours=20))
        for _ in range(2):
            north.store.append(
                EventDraft(
                    direction="out", decision="pass", household="F6", flags=("role:resident",)
                )
            )
        _exits, compound = _compound(pg_dsn, north)
    finally:
        north.store.close()
    assert len(compound["quota_changes"]) == ABRIDGED_QUOTA_CHANGES
    assert compound["quota_changes_left_out"] == _RESTARTS + 1 - ABRIDGED_QUOTA_CHANGES
    assert compound["over_quota_households"] is None
    assert compound["households"] is None and compound["exits"] is None  # judged by no rule
