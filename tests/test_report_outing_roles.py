"""The daily report's outings per household and its over-quota count read one rule: the
roles in force (the config's ``quota.roles``; at the office, the roles the compound's gates
report), not a courier's exit counted as the household's outing beside an over-quota count
that does not count it (rvcfg2)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
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


def _site(quota):
    """What the daemon records of its site at each start (``checkpoint.app.site_record``)."""
    return {"timezone": TZ, "quota": quota.model_dump(mode="json")}


_ONE_DAY = QuotaConfig(enabled=True, exits=1, period_days=1)
_CARER = ("role:staff", "quota_exempt")
_RESIDENT = ("role:resident",)
_CHANGES = {  # the quota of DAY, the one the restart after midnight brings, DAY's exits
    "roles-widened": (_ONE_DAY, _ONE_DAY.model_copy(update={"roles": ("resident", "staff")}),
                      [(9, _CARER), (15, _RESIDENT)]),
    "switched-on": (_ONE_DAY.model_copy(update={"enabled": False}), _ONE_DAY,
                    [(9, _RESIDENT), (15, _RESIDENT)]),
    "exits-lowered": (_ONE_DAY.model_copy(update={"exits": 2}), _ONE_DAY,
                      [(9, _RESIDENT), (15, _RESIDENT)]),
    "period-lengthened": (_ONE_DAY, _ONE_DAY.model_copy(update={"period_days": 2}),
                          [(-15, _RESIDENT), (15, _RESIDENT)]),
}  # fmt: skip


def _day_then_restart(store, clock, change):
    """DAY's exits under its quota, its report at 23:59, and the restart at 00:05 with the
    new quota: the evening's report and the new quota."""
    from kiosk.store import record_site

    then, now, exits = _CHANGES[change]
    clock.set_wall(DAY_START - timedelta(days=1))
    record_site(store, _site(then))  # the daemon's start
    for hours, flags in exits:
        clock.set_wall(DAY_START + timedelta(hours=hours))
        store.append(EventDraft(direction="out", decision="pass", household="F6", flags=flags))
    clock.set_wall(DAY_START + timedelta(hours=23, minutes=59))
    evening = daily_report(store.reader(), DAY, TZ, then)["exits_per_household"]
    assert evening["over_quota_households"] == 0
    clock.set_wall(DAY_START + timedelta(days=1, minutes=5))
    record_site(store, _site(now))  # the restart with the new quota
    return evening, now


@pytest.mark.parametrize("change", list(_CHANGES))
def test_a_day_is_frozen_by_the_quota_in_force_on_it(reporting_store, clock, change):
    """F6 out on DAY, nobody over the quota in force; at 00:05 the admin restarts the gate
    with another quota (staff counted, the quota switched on, fewer exits, a longer period),
    and its first purge froze DAY by that one: F6 over a quota it never was under, the gate
    having let it out by the rule of that day, and the office took the frozen copy for that
    day's rule. The daemon records each change of the quota with the time it came into force
    (``kiosk.store.record_site``): a day is frozen by the one in force on it."""
    from kiosk.stats import freeze_days

    evening, now = _day_then_restart(reporting_store, clock, change)
    assert DAY in freeze_days(reporting_store, TZ, now, clock.now())  # its first purge's
    after = daily_report(reporting_store.reader(), DAY, TZ, now)["exits_per_household"]
    assert after == evening


@pytest.mark.parametrize("change", list(_CHANGES))
def test_a_past_day_not_frozen_yet_is_counted_by_the_quota_in_force_on_it(
    reporting_store, clock, change
):
    """Asked for DAY at 00:10, before the freeze, the gate counted it by the quota of the
    restart at 00:05, and the office's collector kept that report (its quota policy) as the
    day's final one; the freeze then counted it by the day's own. A day not frozen is counted
    by the quota in force on it, as the freeze will count it."""
    evening, now = _day_then_restart(reporting_store, clock, change)
    clock.set_wall(DAY_START + timedelta(days=1, minutes=10))
    live = daily_report(reporting_store.reader(), DAY, TZ, now)["exits_per_household"]
    assert live == evening


def test_a_log_that_kept_the_hours_alone_takes_its_quota_as_in_force_from_its_start(
    reporting_store, clock
):
    """A log whose daemon kept the staffed hours' history alone (``site.hours``, the release
    before): the quota it recorded last is taken as in force from the start, up to the
    restart that changes it; the history is kept under its new key from then on."""
    import json

    from kiosk.stats import freeze_days
    from kiosk.store import SITE_HISTORY_KEY, record_site

    hours = {"enabled": False, "spans": ["08:30-17:30"]}
    old = _site(ON) | {"hours": hours}

    def old_release(db):
        for key, value in (("site", old), ("site.hours", [{"since": None, "hours": hours}])):
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", [key, json.dumps(value)])

    reporting_store.submit(old_release)
    _outings(reporting_store, clock)  # a courier, then a resident of F6
    clock.set_wall(DAY_START + timedelta(days=1, minutes=5))
    record_site(reporting_store, _site(WIDE) | {"hours": hours})  # couriers counted
    assert freeze_days(reporting_store, TZ, WIDE, clock.now()) == [DAY]
    exits = daily_report(reporting_store.reader(), DAY, TZ, WIDE)["exits_per_household"]
    assert (exits["quota_roles"], exits["exits"], exits["over_quota_households"]) == (
        ["resident"],
        1,
        0,
    )
    kept = dict(reporting_store.reader().execute("SELECT key, value FROM meta").fetchall())
    assert json.loads(kept["site.hours"]) == [{"since": None, "hours": hours}]  # as it was
    assert [e["quota"]["roles"] for e in json.loads(kept[SITE_HISTORY_KEY])] == [
        ["resident"],
        ["delivery", "resident"],
    ]


_HOURS = {"enabled": True, "spans": ["08:30-17:30"]}
_LONGER = {"enabled": True, "spans": ["07:00-19:00"]}
_STAFF = _ONE_DAY.model_copy(update={"roles": ("resident", "staff")})


def _older_release_start(store, settings):
    """A start of the release before the quota joined the history (34a6eea1's
    ``record_site``): it reads and writes ``site`` and the hours' history alone, ``site.hours``,
    on its own clock; it never heard of ``site.history``."""
    import json

    from kiosk.store import format_ts

    def write(db):
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        before = json.loads(meta["site"]) if "site" in meta else None
        if before == settings:
            return
        history = json.loads(meta.get("site.hours", "[]"))
        if not history and before is not None:
            history = [{"since": None, "hours": before["hours"]}]
        if not history or history[-1]["hours"] != settings["hours"]:
            since = None if before is None and not history else format_ts(store.clock.now())
            history.append({"since": since, "hours": settings["hours"]})
        for key, value in (("site", settings), ("site.hours", history)):
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, json.dumps(value)],
            )

    store.submit(write)


def test_going_back_a_release_and_forward_again_keeps_the_history(reporting_store, clock):
    """rv30e: the release before (residents counted, staffed 08:30-17:30); this one with staff
    counted; back to the release before (``install --back``, or the install's switch back),
    which found no ``site.hours`` and then recorded residents and 07:00-19:00 in ``site`` and
    its hours' history alone; forward again with that config, nothing changed since ``site``:
    DAY was counted by [resident, staff] and split by 08:30-17:30, F6 over a quota the gate
    never held it to, a carer's 07:30 exit unstaffed."""
    from kiosk.config.policy import HoursConfig
    from kiosk.stats import freeze_days
    from kiosk.store import format_ts, record_site, recorded_history

    starts = [  # the release, the quota, the hours, days before DAY's start
        (_older_release_start, _ONE_DAY, _HOURS, 4),
        (record_site, _STAFF, _HOURS, 3),
        (_older_release_start, _STAFF, _HOURS, 2),
        (_older_release_start, _ONE_DAY, _LONGER, 1),
        (record_site, _ONE_DAY, _LONGER, 0),
    ]
    for start, quota, hours, days in starts:
        clock.set_wall(DAY_START - timedelta(days=days) + timedelta(hours=2))
        start(reporting_store, _site(quota) | {"hours": hours})
    back = format_ts(DAY_START - timedelta(days=1) + timedelta(hours=2))
    db = reporting_store.reader()
    assert recorded_history(db, "hours")[-1] == (back, _LONGER)
    assert recorded_history(db, "quota")[-1] == (back, _ONE_DAY.model_dump(mode="json"))
    for hours, flags in ((7.5, _CARER), (15, _RESIDENT)):
        clock.set_wall(DAY_START + timedelta(hours=hours))
        reporting_store.append(
            EventDraft(direction="out", decision="pass", household="F6", flags=flags)
        )
    clock.set_wall(DAY_START + timedelta(days=1, minutes=40))  # the nightly purge
    assert freeze_days(reporting_store, TZ, _ONE_DAY, clock.now()) == [DAY]
    config_hours = HoursConfig.model_validate(_LONGER)
    report = daily_report(db, DAY, TZ, _ONE_DAY, hours=config_hours)
    exits = report["exits_per_household"]
    assert (exits["quota_roles"], exits["over_quota_households"]) == (["resident"], 0)
    assert report["staffing"]["hours"] == "07:00-19:00"


def test_the_release_before_reads_the_hours_this_one_recorded(reporting_store, clock):
    """Gone back a release, that one reads the hours' history from ``site.hours`` alone: this
    release deleted it, and a day of the hours it recorded was split by the config's."""
    import json

    from kiosk.store import format_ts, record_site

    clock.set_wall(DAY_START - timedelta(days=2))
    _older_release_start(reporting_store, _site(ON) | {"hours": _HOURS})
    clock.set_wall(DAY_START + timedelta(hours=4))
    record_site(reporting_store, _site(ON) | {"hours": _LONGER})
    row = reporting_store.reader().execute("SELECT value FROM meta WHERE key = 'site.hours'")
    assert json.loads(row.fetchone()[0]) == [
        {"since": None, "hours": _HOURS},
        {"since": format_ts(DAY_START + timedelta(hours=4)), "hours": _LONGER},
    ]


def test_an_update_with_no_change_keeps_the_quota_in_the_history(reporting_store, clock):
    """rv30e: the release before recorded ``site`` (its quota) and the hours alone; this one's
    first start with the same config changed nothing, so the history held no quota, and the
    nightly ``kiosk purge --config`` (no start of its own) froze DAY by the config file's, which
    the admin had edited to count staff and not restarted on yet."""
    from kiosk.stats import freeze_days
    from kiosk.store import record_site, recorded_history

    clock.set_wall(DAY_START - timedelta(days=2))
    _older_release_start(reporting_store, _site(_ONE_DAY) | {"hours": _HOURS})
    clock.set_wall(DAY_START - timedelta(days=1))
    record_site(reporting_store, _site(_ONE_DAY) | {"hours": _HOURS})  # the update's start
    db = reporting_store.reader()
    assert recorded_history(db, "quota") == [(None, _ONE_DAY.model_dump(mode="json"))]
    for hours, flags in ((9, _CARER), (15, _RESIDENT)):
        clock.set_wall(DAY_START + timedelta(hours=hours))
        reporting_store.append(
            EventDraft(direction="out", decision="pass", household="F6", flags=flags)
        )
    clock.set_wall(DAY_START + timedelta(days=1, minutes=30))
    assert freeze_days(reporting_store, TZ, _STAFF, clock.now()) == [DAY]  # the edited file's
    exits = daily_report(db, DAY, TZ, _STAFF)["exits_per_household"]
    assert (exits["quota_roles"], exits["over_quota_households"]) == (["resident"], 0)


@pytest.mark.parametrize(
    "boot_clock",
    [
        datetime(1970, 1, 1, 0, 0, 30, tzinfo=UTC),  # no RTC, no saved clock
        DAY_START + timedelta(hours=23),  # fake-hwclock's hourly save, 23:00 on DAY
        "floored",  # 1970, raised to the log's newest synced stamp (15:00 on DAY)
    ],
    ids=["1970", "fake-hwclock", "floored"],
)
def test_a_change_at_a_start_on_a_clock_not_set_is_dated_once_it_is(
    data_dir, monkeypatch, boot_clock
):
    """rv30e: a carer out for F6 at 09:00 and a resident at 15:00 on DAY, the quota counting
    residents; a power cut, the admin widens quota.roles to count staff, the gate boots at
    00:05 without network time. The change was dated by that clock: 1970 (every day not
    frozen back to the log's start under the new rule), 23:00 on DAY (fake-hwclock), 15:00
    (the floor): DAY frozen by the next day's quota at 00:40, F6 over it. Dated once the
    clock is set, by the boot's monotonic clock: 00:05."""
    from guard_support import close_core, make_core

    import kiosk.store
    from kiosk.clock import FakeClock, FlooredClock
    from kiosk.config import KioskConfig
    from kiosk.retention import purge
    from kiosk.store import format_ts, recorded_history

    def config(quota):
        return KioskConfig.model_validate(
            {"site": {"timezone": TZ}, "policy": {"quota": quota.model_dump(mode="json")}}
        )

    monkeypatch.setattr(kiosk.store, "read_boot_id", lambda path=None: "boot-1")
    core = make_core(data_dir, FakeClock(start=DAY_START - timedelta(days=1)), monkeypatch,
                     config(_ONE_DAY))  # fmt: skip
    for hours, flags in ((9, _CARER), (15, _RESIDENT)):
        core.clock.set_wall(DAY_START + timedelta(hours=hours))
        core.store.append(EventDraft(direction="out", decision="pass", household="F6", flags=flags))
    close_core(core)

    monkeypatch.setattr(kiosk.store, "read_boot_id", lambda path=None: "boot-2")
    floored = boot_clock == "floored"
    fake = FakeClock(start=datetime(1970, 1, 1, tzinfo=UTC) if floored else boot_clock,
                     mono_ns=7_000_000_000, is_synced=False)  # fmt: skip
    clock = FlooredClock(fake)
    if floored:
        clock.raise_floor(DAY_START + timedelta(hours=15))
    core = make_core(data_dir, clock, monkeypatch, config(_STAFF))  # 00:05 on DAY + 1
    try:
        db = core.store.reader()
        exits = daily_report(db, DAY, TZ, _STAFF)["exits_per_household"]
        assert exits["over_quota_households"] == 0  # asked before NTP answered
        fake.advance(5 * 60)
        fake.set_wall(DAY_START + timedelta(days=1, minutes=10))  # NTP steps the clock
        fake.is_synced = True
        fake.advance(30 * 60)  # the purge at 00:40
        assert DAY in purge(core.store, 30, fake.now(), tz=TZ, quota_cfg=_STAFF).days_frozen
        exits = daily_report(db, DAY, TZ, _STAFF)["exits_per_household"]
        assert (exits["quota_roles"], exits["over_quota_households"]) == (["resident"], 0)
        boot = format_ts(DAY_START + timedelta(days=1, minutes=5))
        assert recorded_history(db, "quota")[-1] == (boot, _STAFF.model_dump(mode="json"))
    finally:
        close_core(core)


def test_a_change_of_a_boot_that_never_set_its_clock_is_dated_at_the_next_set_start(
    reporting_store, clock
):
    """A boot that changed the quota and ended before NTP answered (its change pending): the
    next boot's start, its clock set, dates it no earlier than it can have happened (here, no
    row of that boot to bound it: that start), never into DAY, frozen by the quota before."""
    import json

    from kiosk.stats import freeze_days
    from kiosk.store import format_ts, record_site, recorded_history

    clock.set_wall(DAY_START - timedelta(days=1))
    record_site(reporting_store, _site(_ONE_DAY))
    for hours, flags in ((9, _CARER), (15, _RESIDENT)):
        clock.set_wall(DAY_START + timedelta(hours=hours))
        reporting_store.append(
            EventDraft(direction="out", decision="pass", household="F6", flags=flags)
        )
    clock.set_wall(DAY_START + timedelta(days=1, minutes=40))
    assert freeze_days(reporting_store, TZ, _ONE_DAY, clock.now()) == [DAY]
    reporting_store.boot_id, clock.is_synced = "boot-2", False
    clock.set_wall(datetime(1970, 1, 1, tzinfo=UTC))
    record_site(reporting_store, _site(_STAFF))  # staff counted; no NTP, then off again
    db = reporting_store.reader()
    day_after = format_ts(DAY_START + timedelta(days=1))  # never DAY, frozen by residents
    assert recorded_history(db, "quota")[-1][0] == day_after
    reporting_store.boot_id, clock.is_synced = "boot-3", True
    clock.set_wall(DAY_START + timedelta(days=2, hours=1))
    record_site(reporting_store, _site(_STAFF))
    assert recorded_history(db, "quota")[-1] == (
        format_ts(DAY_START + timedelta(days=2, hours=1)),
        _STAFF.model_dump(mode="json"),
    )
    kept = db.execute("SELECT value FROM meta WHERE key = 'site.history'").fetchone()[0]
    assert all("pending" not in e for e in json.loads(kept))


def test_starts_on_a_clock_not_set_with_the_same_config_write_nothing_after_the_first(
    reporting_store, clock
):
    """rv30h: a Pi with no RTC whose staffed hours were changed on a set clock, then again
    before boots without network: each boot on 1970 took every entry after 1970 for a change
    the release before made (``site.hours``) and added it again, then the pending change:
    site.history 2 -> 3 -> 5 -> 7 -> 9 over four boots, the hours as many."""
    from kiosk.store import record_site, recorded_history

    def kept():
        rows = reporting_store.reader().execute(
            "SELECT key, value FROM meta WHERE key IN ('site.history', 'site.hours')"
        )
        return dict(rows.fetchall())

    widest = {"enabled": True, "spans": ["06:00-20:00"]}
    clock.set_wall(DAY_START - timedelta(days=20))
    record_site(reporting_store, _site(ON) | {"hours": _HOURS})
    clock.set_wall(DAY_START - timedelta(days=2))
    record_site(reporting_store, _site(ON) | {"hours": _LONGER})
    clock.is_synced = False
    for boot in range(1, 5):
        reporting_store.boot_id = f"boot-{boot}"
        clock.set_wall(datetime(1970, 1, 1, 0, 0, 30, tzinfo=UTC))
        record_site(reporting_store, _site(ON) | {"hours": widest})
        if boot == 1:
            first = kept()
    assert kept() == first
    assert [h for _, h in recorded_history(reporting_store.reader(), "hours")] == [
        _HOURS,
        _LONGER,
        widest,
    ]


_D1_START = DAY_START + timedelta(days=1)  # 00:00 on the day of the boots


def _boot(store, boot, minutes):
    """A boot at ``minutes`` past midnight on a Pi with no RTC and no network: 1970, its
    monotonic clock at 5 s."""
    from kiosk.clock import FakeClock

    store.boot_id = boot
    store.clock = FakeClock(
        start=datetime(1970, 1, 1, tzinfo=UTC), mono_ns=5_000_000_000, is_synced=False
    )
    return _D1_START + timedelta(minutes=minutes) - timedelta(seconds=5)  # its mono 0


def _ntp(clock, mono_zero, minutes):
    """NTP sets the boot's clock at ``minutes`` past midnight (its monotonic zero at
    ``mono_zero``)."""
    at = _D1_START + timedelta(minutes=minutes)
    clock.advance((at - mono_zero).total_seconds() - clock.monotonic_ns() / 1e9)
    clock.set_wall(at)
    clock.is_synced = True


def _staff_and_resident_out(store, minutes):
    for flags in (("role:staff",), _RESIDENT):
        store.clock.advance(minutes * 60)
        store.append(EventDraft(direction="out", decision="pass", household="F6", flags=flags))


@pytest.mark.parametrize("dated_in_the_log", [True, False], ids=["daemon", "reader"])
def test_a_change_pending_from_a_boot_before_is_dated_once_the_clock_is_set(
    reporting_store, clock, dated_in_the_log
):
    """rv30h: boot 1 at 00:05 (no network, no RTC) with quota.roles widened to count staff,
    one passage on that clock; a reboot at 00:12, still none; NTP at 00:20; F6 out as staff at
    00:30, as a resident at 00:35. Boot 1 never recorded on a set clock: the report took the
    change from the next day until the hourly purge dated it, F6 not over today's quota. The
    first row on a set clock dates it in the log; a reader of a log not dated so (the release
    before wrote it) dates it by the next boot's offset, no earlier than it happened."""
    from kiosk.store import record_site, recorded_history

    clock.set_wall(_D1_START - timedelta(days=2))
    record_site(reporting_store, _site(_ONE_DAY))
    clock.set_wall(_D1_START - timedelta(hours=2))
    reporting_store.append(EventDraft(direction="in", decision="pass", household="F1"))
    _boot(reporting_store, "boot-1", 5)
    record_site(reporting_store, _site(_STAFF))
    reporting_store.clock.advance(60)
    reporting_store.append(EventDraft(direction="in", decision="pass", household="F2"))
    zero = _boot(reporting_store, "boot-2", 12)
    record_site(reporting_store, _site(_STAFF))
    reporting_store.site_undated = dated_in_the_log
    _ntp(reporting_store.clock, zero, 20)
    _staff_and_resident_out(reporting_store, 5)
    kept = reporting_store.reader().execute("SELECT value FROM meta WHERE key = 'site.history'")
    assert ('"pending"' in kept.fetchone()[0]) is not dated_in_the_log
    db = reporting_store.reader()
    since = recorded_history(db, "quota")[-1][0]
    assert _D1_START + timedelta(minutes=5) <= datetime.fromisoformat(since)
    assert datetime.fromisoformat(since) <= _D1_START + timedelta(minutes=12)
    exits = daily_report(db, DAY + timedelta(days=1), TZ, _STAFF)["exits_per_household"]
    assert (exits["quota_roles"], exits["over_quota_households"]) == (["resident", "staff"], 1)


def test_a_change_pending_is_dated_by_the_first_row_on_a_set_clock(reporting_store, clock):
    """rv30h: one boot at 00:05 before NTP changed the quota; NTP at 00:20, then only an
    audit row (a guard's sign-in): audit rows date no boot (``boot_clock``), so the report
    took the change from the next day until the hourly purge. The first row on a set clock
    dates it by this boot's monotonic clock: 00:05."""
    from kiosk.store import format_ts, record_site, recorded_history

    clock.set_wall(_D1_START - timedelta(days=2))
    record_site(reporting_store, _site(_ONE_DAY))
    zero = _boot(reporting_store, "boot-1", 5)
    record_site(reporting_store, _site(_STAFF))
    _ntp(reporting_store.clock, zero, 20)
    reporting_store.audit("guard", "console.sign_in")
    assert recorded_history(reporting_store.reader(), "quota")[-1] == (
        format_ts(_D1_START + timedelta(minutes=5)),
        _STAFF.model_dump(mode="json"),
    )


def test_a_damaged_pending_change_never_fails_the_row_that_would_date_it(reporting_store, clock):
    """A pending change whose monotonic time cannot be a date (a damaged ``site.history``):
    the passage on the set clock is recorded all the same, and the change left pending."""
    import json

    from kiosk.store import record_site

    clock.set_wall(_D1_START - timedelta(days=2))
    record_site(reporting_store, _site(_ONE_DAY))
    zero = _boot(reporting_store, "boot-1", 5)
    record_site(reporting_store, _site(_STAFF))

    def damage(db):
        row = db.execute("SELECT value FROM meta WHERE key = 'site.history'").fetchone()
        history = json.loads(row[0])
        history[-1]["pending"]["mono_ns"] = 10**30
        db.execute("UPDATE meta SET value = ? WHERE key = 'site.history'", [json.dumps(history)])

    reporting_store.submit(damage)
    _ntp(reporting_store.clock, zero, 20)
    event = reporting_store.append(EventDraft(direction="in", decision="pass", household="F2"))
    last = reporting_store.reader().execute("SELECT max(seq) FROM events").fetchone()[0]
    assert last == event.seq
    assert reporting_store.site_undated is False  # not tried again at every row


_MIDDAY = {  # DAY's morning quota, the one a restart at 12:00 brings, F6's exits (hours)
    "switched-on": (_ONE_DAY.model_copy(update={"enabled": False}), _ONE_DAY, [8, 10]),
    "exits-lowered": (_ONE_DAY.model_copy(update={"exits": 2}), _ONE_DAY, [8, 10]),
    "period-lengthened": (_ONE_DAY, _ONE_DAY.model_copy(update={"period_days": 2}), [-14, 10]),
    # F6 let out at 10:00 over the morning's quota_exceeded by a guard (an override)
    "switched-off": (_ONE_DAY, _ONE_DAY.model_copy(update={"enabled": False}), [8, 10]),
}  # fmt: skip


def _midday_restart(store, clock, change):
    """F6 out on DAY by the morning's quota (the outing at 10:00 of "switched-off" a guard's
    manual pass), a restart at 12:00 with another, the day over: the new quota."""
    from kiosk.store import record_site

    then, now, hours = _MIDDAY[change]
    clock.set_wall(DAY_START - timedelta(days=2))
    record_site(store, _site(then))
    for hour in hours:
        clock.set_wall(DAY_START + timedelta(hours=hour))
        decision = "manual_pass" if change == "switched-off" and hour == 10 else "pass"
        store.append(
            EventDraft(direction="out", decision=decision, household="F6", flags=_RESIDENT)
        )
    clock.set_wall(DAY_START + timedelta(hours=12))
    record_site(store, _site(now))  # the restart with the new quota
    clock.set_wall(DAY_START + timedelta(days=1, minutes=40))
    return now


@pytest.mark.parametrize("change", list(_MIDDAY))
def test_each_outing_is_judged_by_the_quota_in_force_when_it_was_made(
    reporting_store, clock, change
):
    """A restart at 12:00 with another quota (switched on, fewer exits, a longer period,
    switched off): the day was counted, live and frozen, by the quota in force when it ended
    for every outing of it: F6, let out at 08:00 and 10:00 by the morning's rule, over a
    quota it never was under; a guard's override at 10:00 gone with the quota switched off at
    12:00. Each outing is judged by the quota in force when it was made, and the report says
    the rule changed during the day (``quota_changes``)."""
    from kiosk.stats import freeze_days

    then, now, _ = _MIDDAY[change]
    _midday_restart(reporting_store, clock, change)
    live = daily_report(reporting_store.reader(), DAY, TZ, now)["exits_per_household"]
    assert DAY in freeze_days(reporting_store, TZ, now, clock.now())
    frozen = daily_report(reporting_store.reader(), DAY, TZ, now)["exits_per_household"]
    assert frozen == live
    assert frozen["over_quota_households"] == (1 if change == "switched-off" else 0)
    assert (frozen["quota_enabled"], frozen["period_days"]) == (now.enabled, now.period_days)
    changes = frozen["quota_changes"]
    assert [c["from"] for c in changes] == [None, (DAY_START + timedelta(hours=12)).isoformat()]
    assert [(c["quota_enabled"], c["quota_exits"], c["period_days"]) for c in changes] == [
        (q.enabled, q.exits, q.period_days) for q in (then, now)
    ]


def test_a_day_whose_quota_did_not_change_says_no_change(reporting_store, clock):
    from kiosk.store import record_site

    clock.set_wall(DAY_START - timedelta(days=1))
    record_site(reporting_store, _site(_ONE_DAY))
    for hour in (8, 10):
        clock.set_wall(DAY_START + timedelta(hours=hour))
        reporting_store.append(
            EventDraft(direction="out", decision="pass", household="F6", flags=_RESIDENT)
        )
    clock.set_wall(DAY_START + timedelta(hours=12))
    record_site(reporting_store, _site(_ONE_DAY))  # a restart, the quota as it was
    exits = daily_report(reporting_store.reader(), DAY, TZ, _ONE_DAY)["exits_per_household"]
    assert "quota_changes" not in exits and exits["over_quota_households"] == 1


def test_the_district_judges_each_outing_by_the_quota_in_force_when_it_was_made(tmp_path, pg_dsn):
    """The office counted a gate's day by the quota its report showed (the one in force when
    the day ended): F6 out at 08:00 and 10:00 with the quota off, switched on at 12:00, over
    it in the district report. It reads the gate's ``quota_changes``: each outing by its own."""
    from checkpoint.app import site_record
    from kiosk.store import record_site

    gate = _gate(tmp_path, "gate-north", enabled=False, zone=TZ)
    try:
        record_site(gate.store, site_record(gate.config))  # the daemon's start
        for hours in (8, 10):
            gate.clock.set_wall(DAY_START + timedelta(hours=hours))
            gate.store.append(
                EventDraft(direction="out", decision="pass", household="F6", flags=_RESIDENT)
            )
        gate.clock.set_wall(DAY_START + timedelta(hours=12))
        on = gate.config.policy.quota.model_copy(update={"enabled": True})
        record_site(gate.store, site_record(gate.config) | {"quota": on.model_dump(mode="json")})
        gate.clock.set_wall(DAY_START + timedelta(days=1, hours=1))
        _to_the_office(pg_dsn, gate)
    finally:
        gate.store.close()
    exits = district_report(pg_dsn, DAY, TZ)["exits_per_household"]
    (compound,) = exits["compounds"]
    assert compound["quota"]["enabled"] is True and compound["exits"] == 2
    assert compound["over_quota_households"] == 0
    assert exits["over_quota_households"] == 0


_ON = {"quota_enabled": True, "quota_exits": 1, "period_days": 1, "quota_roles": ["resident"]}


@pytest.mark.parametrize(
    "changes",
    [
        "changed",  # not a list
        [{"from": None} | _ON],  # one rule: no change
        [{"from": "2026-03-02T04:00:00+00:00"} | _ON, {"from": None} | _ON],  # first not first
        [{"from": None} | _ON, {"from": "noon"} | _ON],  # no time
        [{"from": None} | _ON, {"from": "2026-03-02T04:00:00"} | _ON],  # no offset
        [{"from": None} | _ON, {"from": "2026-03-02T04:00:00+00:00"} | _ON | {"quota_exits": 0}],
        [
            {"from": None} | _ON,
            {"from": "2026-03-02T05:00:00+00:00"} | _ON,
            {"from": "2026-03-02T04:00:00+00:00"} | _ON,  # out of order
        ],
    ],
)
def test_the_office_refuses_quota_changes_not_of_their_shape(changes):
    """A gate's ``quota_changes`` the office cannot read as the rules of the day in order is a
    report refused with its reason (``ValueError``), never a rule guessed."""
    from office.gatereports import gate_policy

    exits = _ON | {"quota_changes": changes}
    with pytest.raises(ValueError, match="quota_changes"):
        gate_policy({"exits_per_household": exits})
    good = [{"from": None} | _ON, {"from": "2026-03-02T12:00:00+08:00"} | _ON]
    kept = gate_policy({"exits_per_household": _ON | {"quota_changes": good}})["quota"]
    assert [c["from"] for c in kept["changes"]] == [None, "2026-03-02T04:00:00+00:00"]
