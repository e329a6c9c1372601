"""The quota changed during a day, as the office reads it (a review of a37a8ce8): a
compound's gates restarted with one new quota seconds apart agree (each gate's outings by its
own rules); the compound entry says the day's rules; a ``quota_changes`` whose time lies at the
calendar's end or outside the report's day is a report refused, never a pull that fails."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from test_fleet_quota import _gate, _to_the_office
from test_report_outing_roles import _RESIDENT, DAY, DAY_START, TZ, _site

from kiosk.config.policy import QuotaConfig
from kiosk.stats import daily_report
from kiosk.store import EventDraft, record_site
from office.district import district_report
from office.gatereports import collect_reports, gate_policy
from office.pull import PullError

pytest_plugins = ("pgfixture",)

_ON = {"quota_enabled": True, "quota_exits": 1, "period_days": 1, "quota_roles": ["resident"]}


@contextmanager
def _pair(tmp_path, *, south_on=False):
    """North and south of one compound, each the other's peer, started the day before with the
    quota off at the north (``south_on``: on at the south); their stores closed after."""
    north = _gate(tmp_path, "gate-north", peers=["gate-south"], enabled=False, zone=TZ)
    south = _gate(tmp_path, "gate-south", peers=["gate-north"], enabled=south_on, zone=TZ)
    try:
        _started(north, south)
        yield north, south
    finally:
        north.store.close()
        south.store.close()


def _started(*gates):
    """Each gate's start the day before, its quota as configured."""
    from checkpoint.app import site_record

    for gate in gates:
        gate.clock.set_wall(DAY_START - timedelta(days=1))
        record_site(gate.store, site_record(gate.config))


def _restart_with(gate, quota_update, seconds):
    """A restart at noon plus ``seconds`` with the gate's quota updated by ``quota_update``
    (a fleet config push)."""
    from checkpoint.app import site_record

    gate.clock.set_wall(DAY_START + timedelta(hours=12, seconds=seconds))
    new = gate.config.policy.quota.model_copy(update=quota_update)
    record_site(gate.store, site_record(gate.config) | {"quota": new.model_dump(mode="json")})


def _f6_out(gate, *hours):
    for hour in hours:
        gate.clock.set_wall(DAY_START + timedelta(hours=hour))
        gate.store.append(
            EventDraft(direction="out", decision="pass", household="F6", flags=_RESIDENT)
        )


def _compound(pg_dsn, *gates):
    for g in gates:
        g.clock.set_wall(DAY_START + timedelta(days=1, hours=1))
    _to_the_office(pg_dsn, *gates)
    exits = district_report(pg_dsn, DAY, TZ)["exits_per_household"]
    (compound,) = exits["compounds"]
    return exits, compound


@pytest.mark.slow
@pytest.mark.parametrize("seconds", [7, 600])
def test_gates_restarted_with_one_new_quota_seconds_apart_count_the_compound(
    tmp_path, pg_dsn, seconds
):
    """The quota switched on at both gates of a compound at noon, the south gate restarting
    ``seconds`` after the north: the office read their ``quota_changes`` as disagreeing (their
    times differ), the compound's count null and a ``disagree`` telling staff to mend gates
    that held one rule. F6, out at 08:00 and 10:00 with the quota off, is over nothing."""
    with _pair(tmp_path) as (north, south):
        _f6_out(north, 8, 10)
        _restart_with(north, {"enabled": True}, 0)
        _restart_with(south, {"enabled": True}, seconds)
        exits, compound = _compound(pg_dsn, north, south)
    assert compound["disagree"] == []
    assert compound["over_quota_households"] == 0 and exits["over_quota_households"] == 0
    changes = compound["quota_changes"]
    assert [c["enabled"] for c in changes] == [False, True]
    assert changes[0]["from"] is None
    assert changes[1]["from"] == (DAY_START + timedelta(hours=12)).isoformat()


@pytest.mark.slow
@pytest.mark.parametrize(("gate", "over"), [("south", 0), ("north", 1)])
def test_each_gate_judges_its_outings_by_its_own_restart(tmp_path, pg_dsn, gate, over):
    """The quota switched on at 12:00 at the north gate, at 12:05 at the south: F6 out at the
    north at 08:00 and 10:00 (off), then at 12:03 at ``gate``: at the south, still off, let
    out by no quota; at the north, on since 12:00, over it. Each outing by its own gate's."""
    with _pair(tmp_path) as (north, south):
        _f6_out(north, 8, 10)
        _restart_with(north, {"enabled": True}, 0)
        _restart_with(south, {"enabled": True}, 300)
        _f6_out({"north": north, "south": south}[gate], 12 + 3 / 60)
        _, compound = _compound(pg_dsn, north, south)
    assert compound["disagree"] == [] and compound["exits"] == 3
    assert compound["over_quota_households"] == over


@pytest.mark.slow
def test_gates_whose_changes_lie_hours_apart_still_disagree_and_say_each_ones(tmp_path, pg_dsn):
    with _pair(tmp_path) as (north, south):
        _f6_out(north, 8, 10)
        _restart_with(north, {"enabled": True}, 0)
        _restart_with(south, {"enabled": True}, 3 * 3600)
        _, compound = _compound(pg_dsn, north, south)
    assert compound["over_quota_households"] is None
    said = {d["kiosk_id"]: d["quota_changes"] for d in compound["disagree"]}
    assert [c["from"] for c in said["gate-south"]] == [
        None, (DAY_START + timedelta(hours=15)).isoformat()
    ]  # fmt: skip
    assert [c["from"] for c in said["gate-north"]] == [
        None, (DAY_START + timedelta(hours=12)).isoformat()
    ]  # fmt: skip


@pytest.mark.slow
def test_the_compound_entry_says_the_rules_of_a_day_they_changed(tmp_path, pg_dsn):
    """Quota on until noon, F6 out at 08:00 and (a guard's override) 10:00, switched off at
    noon: the district said quota off with one household over, nothing in it to tell why."""
    from checkpoint.app import site_record

    gate = _gate(tmp_path, "gate-north", enabled=True, zone=TZ)
    try:
        gate.clock.set_wall(DAY_START - timedelta(days=1))
        record_site(gate.store, site_record(gate.config))
        for hours, decision in ((8, "pass"), (10, "manual_pass")):
            gate.clock.set_wall(DAY_START + timedelta(hours=hours))
            gate.store.append(
                EventDraft(direction="out", decision=decision, household="F6", flags=_RESIDENT)
            )
        gate.clock.set_wall(DAY_START + timedelta(hours=12))
        off = gate.config.policy.quota.model_copy(update={"enabled": False})
        record_site(gate.store, site_record(gate.config) | {"quota": off.model_dump(mode="json")})
        exits, compound = _compound(pg_dsn, gate)
    finally:
        gate.store.close()
    assert compound["quota"]["enabled"] is False and compound["over_quota_households"] == 1
    assert [(c["from"], c["enabled"]) for c in compound["quota_changes"]] == [
        (None, True), ((DAY_START + timedelta(hours=12)).isoformat(), False)
    ]  # fmt: skip
    assert json.loads(json.dumps(exits))["compounds"][0]["quota_changes"][0]["roles"]


@pytest.mark.parametrize(
    "since",
    [
        "0001-01-01T00:00:00+14:00",  # before the calendar's start in UTC
        "9999-12-31T23:59:59-14:00",  # after its end
        "2026-03-03T12:00:00+08:00",  # the next day
        "2026-03-01T23:59:59+08:00",  # the day before
    ],
)
def test_a_quota_change_outside_the_reports_day_is_a_report_refused(since):
    """``from`` at the calendar's ends raised OverflowError (no ValueError): the collector
    marked the whole pull failed. Any ``from`` outside the report's day is refused."""
    changes = [{"from": None} | _ON, {"from": since} | _ON]
    report = {"day": DAY.isoformat(), "timezone": TZ, "exits_per_household": _ON}
    with pytest.raises(ValueError, match="quota_changes"):
        gate_policy(report | {"exits_per_household": _ON | {"quota_changes": changes}})
    inside = [{"from": None} | _ON, {"from": "2026-03-02T00:00:00+08:00"} | _ON]
    kept = gate_policy(report | {"exits_per_household": _ON | {"quota_changes": inside}})
    assert kept["quota"]["changes"][1]["from"] == "2026-03-01T16:00:00+00:00"


def test_a_report_with_a_change_at_the_calendars_end_is_a_pull_error(tmp_path):
    from pgfixture import Network

    gate = _gate(tmp_path, "gate-north", zone=TZ)
    try:
        gate.clock.set_wall(DAY_START + timedelta(hours=9))
        with Network(gate).client() as c:
            report = c.get(
                "http://gate-north/api/v1/stats", headers={"Authorization": f"Bearer {gate.token}"}
            ).json()
    finally:
        gate.store.close()
    report["exits_per_household"]["quota_changes"] = [
        {"from": None} | _ON, {"from": "0001-01-01T00:00:00+14:00"} | _ON
    ]  # fmt: skip
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=report))
    with httpx.Client(transport=transport) as client, pytest.raises(PullError, match="quota"):
        collect_reports(client, None, "http://gate-north", "gate-north", "t")


_STAFF_TOO = QuotaConfig(enabled=True, exits=1, period_days=1, roles=("resident", "staff"))
_RESIDENTS = QuotaConfig(enabled=True, exits=1, period_days=1, roles=("resident",))


@pytest.mark.parametrize(("then", "now"), [(_STAFF_TOO, _RESIDENTS), (_RESIDENTS, _STAFF_TOO)])
def test_the_roles_of_each_rule_of_the_day_pick_its_outings(reporting_store, clock, then, now):
    """Staff S1 out at 08:00 and (a guard's override) 10:00 under a quota counting staff
    until noon, a restart at noon counting residents only: the report picked the day's
    households by the noon rule's roles alone, S1 no outing, 0 over a rule S1 went beyond.
    Each exit is an outing by the roles of the rule in force when it was made; the other way
    round (staff counted from noon), the morning's exits are no outings."""
    clock.set_wall(DAY_START - timedelta(days=2))
    record_site(reporting_store, _site(then))
    for hour, decision in ((8, "pass"), (10, "manual_pass")):
        clock.set_wall(DAY_START + timedelta(hours=hour))
        reporting_store.append(
            EventDraft(direction="out", decision=decision, household="S1", flags=("role:staff",))
        )
    clock.set_wall(DAY_START + timedelta(hours=12))
    record_site(reporting_store, _site(now))
    clock.set_wall(DAY_START + timedelta(days=1, minutes=40))
    exits = daily_report(reporting_store.reader(), DAY, TZ, now)["exits_per_household"]
    counted = "staff" in then.roles
    assert (exits["households"], exits["exits"]) == ((1, 2) if counted else (0, 0))
    assert exits["over_quota_households"] == (1 if counted else 0)


@pytest.mark.slow
def test_the_district_picks_a_compounds_outings_by_the_roles_of_each_rule(tmp_path, pg_dsn):
    north = _gate(tmp_path, "gate-north", zone=TZ, roles=["resident", "staff"])
    try:
        _started(north)
        for hour, decision in ((8, "pass"), (10, "manual_pass")):
            north.clock.set_wall(DAY_START + timedelta(hours=hour))
            north.store.append(
                EventDraft(
                    direction="out", decision=decision, household="S1", flags=("role:staff",)
                )
            )
        _restart_with(north, {"roles": ("resident",)}, 0)
        exits, compound = _compound(pg_dsn, north)
    finally:
        north.store.close()
    assert (compound["households"], compound["exits"]) == (1, 2)
    assert compound["over_quota_households"] == 1 and exits["over_quota_households"] == 1


@pytest.mark.slow
def test_a_gate_that_says_no_change_beside_one_that_changed_is_named_not_a_disagreement(
    tmp_path, pg_dsn
):
    """The north gate's quota switched on at noon (it says so, ``quota_changes``); the south
    gate, of a release before them, says its last rule only (on): the compound was null with
    a ``disagree``. It agrees with the north's last rule, is named ``unknown`` (its rule before
    is not held), and the north's changes judge the day: F6's morning outings were over none."""
    with _pair(tmp_path, south_on=True) as (north, south):
        _f6_out(north, 8, 10)
        _restart_with(north, {"enabled": True}, 0)
        _, compound = _compound(pg_dsn, north, south)
    assert compound["disagree"] == [] and compound["unknown"] == ["gate-south"]
    assert compound["over_quota_households"] == 0
    assert [c["enabled"] for c in compound["quota_changes"]] == [False, True]


def test_a_zone_the_office_does_not_know_checks_the_day_on_any_clock():
    """A gate's zone this office's tzdata lacks: its changes are checked against the day on
    any clock, never a report refused for the office's old tzdata."""
    report = {"day": DAY.isoformat(), "timezone": "Mars/Olympus_Mons"}
    near = [{"from": None} | _ON, {"from": "2026-03-02T23:00:00-11:00"} | _ON]
    kept = gate_policy(report | {"exits_per_household": _ON | {"quota_changes": near}})
    assert kept["quota"]["changes"][1]["from"] == "2026-03-03T10:00:00+00:00"
    far = [{"from": None} | _ON, {"from": "2026-03-04T12:00:00+00:00"} | _ON]
    with pytest.raises(ValueError, match="within the report's day"):
        gate_policy(report | {"exits_per_household": _ON | {"quota_changes": far}})


def test_a_site_history_entry_of_a_damaged_time_is_passed_over_not_raised():
    """A quota change whose recorded time is no time (a bad sector, a hand edit) raised
    ValueError out of the day's report and the nightly freeze: it is passed over."""
    from datetime import date
    from zoneinfo import ZoneInfo

    from kiosk.stats import day_quotas

    on = {"enabled": True, "exits": 1, "period_days": 2}
    off = {"enabled": False, "exits": 1, "period_days": 2}
    history = [(None, on), ("2026-03-02T05:00:00 damaged", off)]
    last, rules = day_quotas(history, date(2026, 3, 2), ZoneInfo("UTC"), None)
    assert last is not None and last.enabled is False
    assert rules is None  # the damaged change is no change the day can be judged by


def test_a_gate_report_naming_its_day_without_its_zone_has_no_day():
    """A report with its day but no zone raised KeyError, not the None its contract says."""
    from office.gatereports import _report_day

    assert _report_day({"day": "2026-03-02"}) is None
    assert _report_day({"timezone": "UTC"}) is None
