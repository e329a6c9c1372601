"""The daily report's outings per household and its over-quota count read one rule: the
roles in force (the config's ``quota.roles``; at the office, the roles the compound's gates
report), not a courier's exit counted as the household's outing beside an over-quota count
that does not count it (rvcfg2)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from test_fleet_quota import _gate, _to_the_office

from kiosk.config.policy import QuotaConfig
from kiosk.stats import daily_report
from kiosk.store import EventDraft
from office.district import district_report
from office.gatereports import collect_reports
from office.pg import PgTarget

pytest_plugins = ("pgfixture",)

TZ = "Asia/Shanghai"
DAY = date(2026, 3, 2)
DAY_START = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
ON = QuotaConfig(enabled=True, exits=1, period_days=2)  # residents


def _outings(store, clock):
    """F6's courier (recorded while the quota was off: no quota_exempt), then a resident."""
    for hours, role in ((2, "delivery"), (5, "resident")):
        clock.set_wall(DAY_START + timedelta(hours=hours))
        flags = (f"role:{role}",)
        store.append(EventDraft(direction="out", decision="pass", household="F6", flags=flags))


def test_the_gates_report_counts_the_outings_the_quota_counts(reporting_store, clock):
    _outings(reporting_store, clock)
    exits = daily_report(reporting_store.reader(), DAY, TZ, ON)["exits_per_household"]
    assert (exits["households"], exits["exits"], exits["max"]) == (1, 1, 1)
    assert exits["over_quota_households"] == 0


def test_the_staff_counted_when_the_roles_say_so(reporting_store, clock):
    _outings(reporting_store, clock)
    every = ON.model_copy(update={"roles": ("resident", "delivery")})
    exits = daily_report(reporting_store.reader(), DAY, TZ, every)["exits_per_household"]
    assert (exits["exits"], exits["max"], exits["over_quota_households"]) == (2, 2, 1)


def test_the_district_counts_by_the_roles_its_gates_report(tmp_path, pg_dsn):
    gate = _gate(tmp_path, "gate-north")
    try:
        _outings(gate.store, gate.clock)
        gate.clock.set_wall(DAY_START + timedelta(days=1, hours=1))  # the day is over
        _to_the_office(pg_dsn, gate)
    finally:
        gate.store.close()
    exits = district_report(pg_dsn, DAY, TZ)["exits_per_household"]
    (compound,) = exits["compounds"]
    assert compound["quota"]["roles"] == ["resident"]
    assert (compound["exits"], compound["over_quota_households"]) == (1, 0)
    assert (exits["exits"], exits["max"], exits["over_quota_households"]) == (1, 1, 0)


WIDE = ON.model_copy(update={"roles": ("delivery", "resident")})
KEYS = ("households", "exits", "histogram", "max", "over_quota_households")


def _couriers_district(gate, pg_dsn, pull_with):
    """The gate's report of DAY and the district's, once ``pull_with(gate)`` brought its
    events to the office (and the collector its reports)."""
    gate.clock.set_wall(DAY_START + timedelta(days=1, hours=1))
    at_gate = daily_report(gate.store.reader(), DAY, TZ, WIDE)["exits_per_household"]
    pull_with(gate)
    office = district_report(pg_dsn, DAY, TZ)["exits_per_household"]
    return {k: at_gate[k] for k in KEYS}, {k: office[k] for k in KEYS}


def test_the_district_never_counts_a_masked_household_the_roles_count(tmp_path, pg_dsn):
    """Two couriers out for 1-101 and 2-101, their exits flagged quota_exempt (made while the
    quota counted residents), a resident of 1-101 the evening before; the roles now count
    couriers. Pulled masked (``logs:read``), the district judged the masked rows by their
    quota_exempt flag, took them for no one's outing and so counted ``***01`` as a known
    household: 1 household out twice, 2 outings by one, none over. A masked outing is no
    one's whatever its role; the roles in force judge it after: 2 outings, households
    unknown."""
    from pgfixture import Network
    from test_fleet_pg import pull_pg

    gate = _gate(tmp_path, "gate-north", roles=["resident", "delivery"])
    try:
        gate.clock.set_wall(DAY_START - timedelta(hours=4))
        gate.store.append(
            EventDraft(
                direction="out", decision="pass", household="1-101", flags=("role:resident",)
            )
        )
        for hours, household in ((2, "1-101"), (3, "2-101")):
            gate.clock.set_wall(DAY_START + timedelta(hours=hours))
            flags = ("role:delivery", "quota_exempt")
            gate.store.append(
                EventDraft(direction="out", decision="pass", household=household, flags=flags)
            )

        def masked(core):
            pull_pg("http://gate-north", core.token, pg_dsn, Network(core))
            with PgTarget(pg_dsn) as target, Network(core).client() as client:
                collect_reports(client, target, "http://gate-north", "gate-north", core.token)

        at_gate, office = _couriers_district(gate, pg_dsn, masked)
    finally:
        gate.store.close()
    assert at_gate == {"households": 2, "exits": 2, "histogram": {"1": 2}, "max": 1,
                       "over_quota_households": 1}  # fmt: skip
    assert office == dict.fromkeys(KEYS) | {"exits": 2}


def test_the_district_counts_a_forgotten_couriers_exit_as_the_gate_does(tmp_path, pg_dsn):
    """A courier out for 1-101 while the quota counted residents (quota_exempt), forgotten
    the same day (its household emptied), then the roles widened to count couriers: the gate
    counts it an outing whose household is unknown; the district judged it by its
    quota_exempt flag: no outing at all, 0 households known."""
    from kiosk.people import Person, forget

    gate = _gate(tmp_path, "gate-north", roles=["resident", "delivery"])
    try:
        gate.clock.set_wall(DAY_START + timedelta(hours=10))
        flags = ("role:delivery", "quota_exempt")
        gate.store.append(
            EventDraft(direction="out", decision="pass", household="1-101", holder="Courier Wang",
                       flags=flags)
        )  # fmt: skip
        gate.clock.set_wall(DAY_START + timedelta(hours=11))
        forget(gate.store, Person.of(name="Courier Wang"), gate.clock.now(), actor="t", tz=TZ)
        at_gate, office = _couriers_district(
            gate, pg_dsn, lambda core: _to_the_office(pg_dsn, core)
        )
    finally:
        gate.store.close()
    assert at_gate == dict.fromkeys(KEYS) | {"exits": 1}
    assert office == at_gate
