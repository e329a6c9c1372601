"""A gate's day of more quota rules than a report lists in full (a review of 64ee92f3):
the office judged the abridged day's outings by the rules listed (over 0 when none was let
out, the roles flapping counted wrong); an office of before 64ee92f3 took the 48-rule list as
the day's every rule; a gate's ``quota_changes_left_out`` was taken at its word; the district
CSV said ``none`` where the rule was not known; a past day refused (or answered with an HTTP
error) left the collector's status without its report day, or stopped the round."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from test_quota_changes_bounded import _Kept as _KeptDays
from test_report_outing_roles import DAY, DAY_START, TZ

from kiosk.clock import FakeClock
from kiosk.config.fleet import CollectorConfig
from kiosk.config.policy import QuotaConfig
from kiosk.stats import ABRIDGED_QUOTA_CHANGES, MAX_QUOTA_CHANGES, _exits_section
from office.collector import Collector
from office.compounds import GatePolicy, _compound_exits, _given, _roll_up, _rule
from office.district import district_csv
from office.gatereports import (
    MAX_BODY_BYTES,
    MAX_LEFT_OUT,
    collect_gate_reports,
    collect_reports,
    gate_policy,
)
from office.pull import PullError

_ONE = QuotaConfig(enabled=True, exits=1, period_days=1, roles=("resident",))
_TWO = QuotaConfig(enabled=True, exits=2, period_days=1, roles=("resident",))
_ON = {"quota_enabled": True, "quota_exits": 1, "period_days": 1, "quota_roles": ["resident"]}


def _rules(count: int) -> list[tuple[datetime | None, QuotaConfig]]:
    """The day's first rule and ``count - 1`` more, a restart every 10 minutes, flapping."""
    return [(None, _ONE)] + [
        (DAY_START + timedelta(minutes=10 * i), _TWO if i % 2 else _ONE) for i in range(1, count)
    ]


def _report(count: int) -> dict:
    exits = _exits_section(_ONE, Counter({"F6": 1}), 0, _rules(count))
    return {"day": DAY.isoformat(), "timezone": TZ, "exits_per_household": exits}


# -- 1. an abridged day: the compound's outings unknown, whatever its rows say ------------------


def _abridged_compound(rows: list[tuple]) -> dict:
    changes = gate_policy(_report(61))["quota"]["changes"]
    rule = _given(_ONE, ZoneInfo(TZ))
    rule.changes, rule.left_out = changes, 12
    rule.roles = {"gate-north": ("resident",)}

    def count(gates, rule, households):  # the listed rules would say: nobody over
        return 0

    return _compound_exits(["gate-north"], rule, rows, count, lambda row: False)


@pytest.mark.parametrize("outings", [0, 2])
def test_an_abridged_day_leaves_the_compounds_outings_unknown(outings):
    """No outing read (the ``not exits`` shortcut said over 0), or two: the households, the
    outings, their histogram and who is over are unknown, and so are the district's sums."""
    row = (1, "gate-north", "2026-03-02T01:15:00", "out", "pass", None, None, "F6", None, None,
           '["role:resident"]')  # fmt: skip
    entry = _abridged_compound([row] * outings)
    figures = ("households", "exits", "histogram", "over_quota_households")
    assert {k: entry[k] for k in figures} == dict.fromkeys(figures)
    assert entry["quota_changes_left_out"] == 12
    district = _roll_up({}, [entry])
    assert {k: district[k] for k in (*figures, "max")} == dict.fromkeys((*figures, "max"))


# -- 2. the abridged list is one an older office refuses ---------------------------------------


def _old_office_keeps(changes: list) -> bool:
    """The bound of an office before 64ee92f3: a list of 2 to 48 rules, else refused."""
    return 1 < len(changes) <= MAX_QUOTA_CHANGES


def test_an_abridged_list_is_one_past_a_complete_one_so_an_older_office_refuses_it():
    rules = _rules(61)
    exits = _report(61)["exits_per_household"]
    listed = exits["quota_changes"]
    assert len(listed) == ABRIDGED_QUOTA_CHANGES == MAX_QUOTA_CHANGES + 1
    assert not _old_office_keeps(listed)
    assert [c["from"] for c in listed[1:]] == [s.isoformat() for s, _ in rules[-MAX_QUOTA_CHANGES:]]
    assert exits["quota_changes_left_out"] == 61 - ABRIDGED_QUOTA_CHANGES
    whole = _report(MAX_QUOTA_CHANGES)["exits_per_household"]
    assert len(whole["quota_changes"]) == MAX_QUOTA_CHANGES and _old_office_keeps(
        whole["quota_changes"]
    )
    assert "quota_changes_left_out" not in whole


def test_a_day_of_exactly_one_rule_more_than_a_complete_list_is_listed_whole_and_kept():
    """49 rules: all listed, the list abridged by none (an older office refuses it, as it did)."""
    report = _report(ABRIDGED_QUOTA_CHANGES)
    exits = report["exits_per_household"]
    assert len(exits["quota_changes"]) == ABRIDGED_QUOTA_CHANGES
    assert exits["quota_changes_left_out"] == 0
    quota = gate_policy(report)["quota"]
    assert len(quota["changes"]) == ABRIDGED_QUOTA_CHANGES and quota["changes_left_out"] == 0


# -- 3. quota_changes_left_out never taken at the gate's word ----------------------------------


def _with(exits: dict) -> dict:
    return {"day": DAY.isoformat(), "timezone": TZ, "exits_per_household": exits}


@pytest.mark.parametrize(
    ("rules", "left_out"),
    [
        (2, 1),  # a complete list that says rules were left out
        (MAX_QUOTA_CHANGES, 1),
        (ABRIDGED_QUOTA_CHANGES + 1, 1),  # longer than an abridged one
        (ABRIDGED_QUOTA_CHANGES, MAX_LEFT_OUT + 1),  # more than a restart a second
        (ABRIDGED_QUOTA_CHANGES, 10**9),
        (ABRIDGED_QUOTA_CHANGES, -1),
        (ABRIDGED_QUOTA_CHANGES, True),
        (ABRIDGED_QUOTA_CHANGES, 1.5),
        (ABRIDGED_QUOTA_CHANGES, None),  # an abridged list that does not say it
        (None, 5),  # left out of no list
    ],
)
def test_a_count_left_out_that_does_not_fit_its_list_is_refused(rules, left_out):
    listed = _report(ABRIDGED_QUOTA_CHANGES + 20)["exits_per_household"]["quota_changes"]
    extra = [{"from": (DAY_START + timedelta(hours=23)).isoformat()} | _ON]
    exits = dict(_ON)
    if rules is not None:
        exits["quota_changes"] = (listed + extra)[:rules]
    if left_out is not None:
        exits["quota_changes_left_out"] = left_out
    with pytest.raises(ValueError, match="quota_changes"):
        gate_policy(_with(exits))


def test_an_abridged_list_with_its_count_is_kept():
    listed = _report(61)["exits_per_household"]["quota_changes"]
    for left_out in (0, 1, MAX_LEFT_OUT):
        exits = _ON | {"quota_changes": listed, "quota_changes_left_out": left_out}
        quota = gate_policy(_with(exits))["quota"]
        assert len(quota["changes"]) == ABRIDGED_QUOTA_CHANGES
        assert quota["changes_left_out"] == left_out


# -- 4. the district CSV says unknown where the rule is not known ------------------------------

_QUOTA = {"enabled": True, "exits": 1, "period_days": 1, "roles": ["resident"], "timezone": TZ}
_OFF = {"from": None, "enabled": False, "exits": 1, "period_days": 1, "roles": ["resident"]}
_NOON = {"from": "2026-03-02T04:00:00+00:00"} | {k: _QUOTA[k] for k in _OFF if k != "from"}


def _said(compound: dict) -> str:
    report = {"exits_per_household": {"compounds": [compound | {"gates": ["gate-north"]}]}}
    rows = list(csv.reader(io.StringIO(district_csv(report))))
    (row,) = [r for r in rows if r[:2] == ["compound gate-north", "quota_changes"]]
    return row[2]


def test_the_csv_says_unknown_where_the_compounds_rule_is_not_known():
    disagree = [
        {"kiosk_id": "gate-north", "quota": _QUOTA, "quota_changes": [_OFF, _NOON]},
        {"kiosk_id": "gate-south", "quota": _QUOTA, "quota_changes": None},
    ]
    assert _said({"quota": None, "quota_changes": None, "disagree": disagree}) == "unknown"
    assert _said({"quota": None, "quota_changes": None, "unknown": ["gate-north"]}) == "unknown"
    left_out = {"quota": _QUOTA, "quota_changes": None, "quota_changes_left_out": 13}
    assert _said(left_out) == "unknown"
    assert _said({"quota": _QUOTA, "quota_changes": None}) == "none"  # known, unchanged


def test_the_csv_says_one_rule_left_out_in_the_singular():
    one = {"quota": _QUOTA, "quota_changes": [_OFF, _NOON], "quota_changes_left_out": 1}
    assert _said(one) == "start off; (1 more rule not listed); 12:00 1 every 1 days (resident)"


# -- 5 and 6. a past day refused or failing is that day's alone --------------------------------

_TODAY = date(2026, 3, 5)


class _Kept(_KeptDays):
    """The days kept, and what the collector asks besides."""

    def record_gates(self, gates):
        pass

    def reported_compound(self, kiosk_id, day):
        return "eats"  # a compound the published lists do not declare

    def close(self):
        pass


def _gate(asked: list[date], *, refused=(), failing=None, status=500, down=None, past=None):
    """A gate answering today and its past days (``asked``: each day asked, in order);
    ``refused``: a day (or days) answered with a report refused; ``past``: a status every
    past day is answered with."""
    refusing = {refused} if isinstance(refused, date) else set(refused)

    def answer(request: httpx.Request) -> httpx.Response:
        day = date.fromisoformat(request.url.params.get("day", _TODAY.isoformat()))
        asked.append(day)
        if day == down:
            raise httpx.ConnectError("network down", request=request)
        if day == failing:  # the gate fails on that day's data alone
            return httpx.Response(status, json={"detail": "Internal Server Error"})
        if past is not None and day != _TODAY:
            return httpx.Response(past, json={"detail": "refused"}, headers={"Retry-After": "60"})
        report = {"day": day.isoformat(), "timezone": TZ, "community": {}}
        if day in refusing:  # one rule listed: refused
            report["exits_per_household"] = _ON | {"quota_changes": [{"from": None} | _ON]}
        return httpx.Response(200, json=report)

    return httpx.Client(transport=httpx.MockTransport(answer))


def _status_after(monkeypatch, **gate) -> tuple:
    """The collector's status after one round of reports from a gate (``_gate``'s options)."""
    clock = FakeClock(start=datetime(2026, 3, 5, 4, 0, tzinfo=UTC))
    monkeypatch.setenv("GATE_TOKEN", "t" * 20)
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-1.lan:8000", "token_env": "GATE_TOKEN"}]}
    )
    kept, asked = _Kept(), []
    collector = Collector(
        config, "postgresql://office/unused", clock=clock, client=_gate(asked, **gate),
        target_factory=lambda dsn: kept, monotonic=lambda: clock.monotonic_ns() / 1e9,
    )  # fmt: skip
    try:
        collector._declared = {"other"}
        collector._reports(config.kiosks[0], "t" * 20, "http://gate-1.lan:8000", "gate-1")
        return collector.statuses()[0], kept, asked
    finally:
        collector.client.close()


def test_the_collectors_status_says_the_day_kept_and_the_past_day_refused(monkeypatch):
    """Today kept, two days ago refused: the status said no report day and the undeclared
    compound was never noticed while the refusal stood; now both, and the refusal too."""
    status, kept, _ = _status_after(monkeypatch, refused=_TODAY - timedelta(days=2))
    assert status.report_day == _TODAY.isoformat() and status.last_report_at is not None
    assert "day=2026-03-03" in (status.report_error or "")
    assert status.compound_error == "undeclared compound eats from gate gate-1"
    assert kept.days == [_TODAY - timedelta(days=n) for n in (0, 1, 3, 4, 5, 6)]


@pytest.mark.parametrize("status", [500, 404, 400])
def test_a_gates_error_status_on_a_past_day_is_that_days_alone(status):
    asked: list[date] = []
    kept = _Kept()
    failing = _TODAY - timedelta(days=1)
    refusal = pytest.raises(PullError, match=f"day={failing.isoformat()}.*{status}")
    with _gate(asked, failing=failing, status=status) as client, refusal:
        collect_reports(client, kept, "http://gate-1", "gate-1", "t" * 20, days=4)
    assert kept.days == [_TODAY - timedelta(days=n) for n in (0, 2, 3)]


def test_a_network_failure_on_a_past_day_still_stops_the_round():
    asked: list[date] = []
    kept = _Kept()
    down = _TODAY - timedelta(days=1)
    with _gate(asked, down=down) as client, pytest.raises(PullError, match="ConnectError"):
        collect_reports(client, kept, "http://gate-1", "gate-1", "t" * 20, days=4)
    assert asked == [_TODAY, down] and kept.days == [_TODAY]


def test_a_network_failure_on_a_past_day_keeps_todays_status_and_names_the_day(monkeypatch):
    """Today kept, then the network failed on a past day: the status had no report day, the
    undeclared compound went unnoticed and the error named no day (a review of b295bc11)."""
    down = _TODAY - timedelta(days=2)
    status, kept, asked = _status_after(monkeypatch, down=down)
    assert kept.days == [_TODAY, _TODAY - timedelta(days=1)] and asked[-1] == down
    assert status.report_day == _TODAY.isoformat() and status.last_report_at is not None
    assert status.compound_error == "undeclared compound eats from gate gate-1"
    assert status.report_error == f"http://gate-1.lan:8000/api/v1/stats?day={down}: ConnectError"


def test_a_refused_day_and_a_network_failure_after_it_are_both_said(monkeypatch):
    refused, down = _TODAY - timedelta(days=1), _TODAY - timedelta(days=3)
    status, kept, _ = _status_after(monkeypatch, refused=refused, down=down)
    assert kept.days == [_TODAY, _TODAY - timedelta(days=2)]
    assert status.report_day == _TODAY.isoformat()
    error = status.report_error or ""
    assert f"day={refused}: not a daily report" in error and f"day={down}: ConnectError" in error


@pytest.mark.parametrize("answer", ["timeout", "too large"])
def test_a_past_days_failure_names_the_day(answer):
    """A past day's timeout or oversized answer stops the round, today kept, its message
    naming the day asked for (it named the bare url)."""

    def reply(request: httpx.Request) -> httpx.Response:
        day = request.url.params.get("day")
        if day is None:
            today = {"day": _TODAY.isoformat(), "timezone": TZ, "community": {}}
            return httpx.Response(200, json=today)
        if answer == "timeout":
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, content=b" " * (MAX_BODY_BYTES + 1))

    kept = _Kept()
    with httpx.Client(transport=httpx.MockTransport(reply)) as client:
        got = collect_gate_reports(client, kept, "http://gate-1", "gate-1", "t" * 20, days=3)
    assert kept.days == [_TODAY] and got.today == _TODAY and got.refused is None
    assert str(got.failed).startswith(f"http://gate-1/api/v1/stats?day={_TODAY - timedelta(1)}:")


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Asia"])
def test_an_abridged_gate_of_a_zone_unknown_here_still_says_its_rules_left_out(zone):
    """A gate whose zone this office's tzdata lacks was left out of ``left_out``: its abridged
    day was counted as complete (a review of b295bc11)."""
    abridged = gate_policy(_report(61))["quota"]
    older = {k: v for k, v in abridged.items() if k not in ("changes", "changes_left_out")}
    window = (DAY_START - timedelta(days=1), DAY_START + timedelta(days=1))
    for held in (
        {"gate-north": GatePolicy(zone, abridged, None)},
        {"gate-north": GatePolicy(zone, abridged, None), "gate-south": GatePolicy(TZ, older, None)},
    ):
        rule = _rule(sorted(held), held, window)
        assert rule.left_out == abridged["changes_left_out"] > 0
        assert "gate-north" in (rule.unknown or [])


# -- 7. a gate's refusal (its token, its rate limit) stops its round; every refused day said --


@pytest.mark.parametrize("status", [401, 403, 429])
def test_a_gates_token_refused_or_rate_limit_on_a_past_day_stops_its_round(status):
    """A 401, 403 or 429 on a past day was read as that day's alone: each of the gate's other
    days was asked all the same, six requests a round to a gate that had refused the token,
    a rate-limited gate asked again at once. Now the round stops at the first, today kept."""
    asked: list[date] = []
    kept = _Kept()
    with _gate(asked, past=status) as client:
        got = collect_gate_reports(client, kept, "http://gate-1", "gate-1", "t" * 20, days=7)
    yesterday = _TODAY - timedelta(days=1)
    assert asked == [_TODAY, yesterday] and kept.days == [_TODAY] and got.refused is None
    assert str(got.failed).startswith(f"http://gate-1/api/v1/stats?day={yesterday}: HTTP {status}")


def test_a_gates_rate_limit_after_a_refused_day_keeps_the_days_between(monkeypatch):
    """A day refused, the day before it kept, then the gate's 429: both said in the status,
    today and the day kept stay kept, nothing asked after the 429."""
    refused, limited = _TODAY - timedelta(days=1), _TODAY - timedelta(days=3)
    status, kept, asked = _status_after(monkeypatch, refused=refused, failing=limited, status=429)
    assert asked == [_TODAY, refused, _TODAY - timedelta(days=2), limited]
    assert kept.days == [_TODAY, _TODAY - timedelta(days=2)]
    assert status.report_day == _TODAY.isoformat()
    error = status.report_error or ""
    assert f"day={refused}: not a daily report" in error and f"day={limited}: HTTP 429" in error


def test_every_refused_past_day_is_named_the_first_few_then_counted(monkeypatch):
    """Five past days refused: only the newest was named in ``report_error``, the other four
    not said at all. Now the first three are named, each with why, and the other two counted."""
    days = [_TODAY - timedelta(days=n) for n in (1, 2, 4, 5, 6)]
    status, kept, _ = _status_after(monkeypatch, refused=days)
    assert kept.days == [_TODAY, _TODAY - timedelta(days=3)]
    error = status.report_error or ""
    named = ", ".join(f"day={d}" for d in days[:3])
    assert error.startswith(f"http://gate-1.lan:8000/api/v1/stats?{named}: not a daily report")
    assert error.count("not a daily report") == 1  # the same why said once for the three
    assert [f"day={d}" in error for d in days] == [True] * 3 + [False] * 2
    assert error.endswith("; 2 more past days refused")


def test_the_days_named_stay_in_the_status_after_a_rate_limit(monkeypatch):
    """Five past days refused, then the gate's 429: the why said again for each named day
    made the error longer than a status keeps (``ERROR_CHARS``), and its clipped middle lost
    a named day. Each why is now said once for the days it is the same for: every day named
    and the 429 stay in the status whole."""
    days = [_TODAY - timedelta(days=n) for n in (1, 2, 3, 4, 5)]
    limited = _TODAY - timedelta(days=6)
    status, _, _ = _status_after(monkeypatch, refused=days, failing=limited, status=429)
    error = status.report_error or ""
    assert "…" not in error  # nothing clipped
    assert [f"day={d}" in error for d in days] == [True] * 3 + [False] * 2
    assert "2 more past days refused" in error and f"day={limited}: HTTP 429" in error


def test_two_refused_past_days_are_both_named(monkeypatch):
    days = [_TODAY - timedelta(days=n) for n in (2, 5)]
    status, _, _ = _status_after(monkeypatch, refused=days)
    error = status.report_error or ""
    assert error.count("http://gate-1.lan:8000/") == 1  # the address said once
    named = f"day={days[0]}, day={days[1]}: not a daily report"  # the same why said once
    assert named in error and "more" not in error
