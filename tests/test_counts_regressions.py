"""Defects in the figures the guard and the office read, each found by a day whose true
counts are known by construction."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from guard_support import add_event, login
from pgfixture import Network, add_events, make_kiosk
from test_fleet_pg import pull_pg

from kiosk.clock import FakeClock
from office.district import district_report

pytest_plugins = ("pgfixture",)


def test_the_stats_pages_people_in_and_out_count_each_person_once(guard_client, guard_core):
    """On /guard/stats, "进出人次" was the events by direction: a denied attempt counted as a
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


def test_a_passage_the_guard_decided_is_one_reading_in_the_temperature_histogram(
    reporting_store, clock
):
    """The guard's decision about a passage copies the kiosk's reading onto its own event (or
    carries the guard's hand reading), and the report counted both events: a fever the guard
    confirmed was two readings in the histogram's fever bins beside "1 fever", a passage with
    no reading that the guard let through was two passages without a temperature. Each
    passage is now one reading, the guard's hand reading replacing the kiosk's."""
    from kiosk.stats import daily_report
    from kiosk.store import EventDraft

    clock.set_wall(datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    log = reporting_store

    def add(**kw):
        return log.append(EventDraft(**{"direction": "in", "decision": "pass"} | kw))

    def decide(subject, **kw):
        return add(**{"reasons": ("guard_override",), "operator": "alice",
                      "flags": (f"overrides:{subject.seq}",)} | kw)  # fmt: skip

    fever = add(decision="deny", reasons=("fever",), temp_c=38.4, temp_object_c=35.1)
    decide(fever, decision="manual_deny", temp_c=38.4, temp_object_c=35.1)  # confirmed
    unread = add(decision="deny", reasons=("no_temperature",))
    decide(unread, decision="manual_pass")  # let through without a reading
    normal = add(decision="deny", reasons=("no_pass",), temp_c=36.5, temp_object_c=34.0)
    decide(normal, decision="manual_deny", reasons=("guard_override", "fever"), temp_c=38.2)
    add(reasons=("ok",), temp_c=36.6, temp_object_c=34.1)
    report = daily_report(log.reader(), date(2026, 3, 2), "UTC")
    bins = {(b["from_c"], b["to_c"]): b["count"] for b in report["temperature_histogram"]}
    assert {k: n for k, n in bins.items() if n} == {(36.5, 37.0): 1, (38.0, 38.5): 2}
    assert report["no_temperature"] == 1
    assert report["fever_alarms"]["count"] == 2 == bins[(38.0, 38.5)]


def test_the_district_does_not_report_zero_outings_for_households_it_cannot_tell_apart(
    tmp_path, pg_dsn
):
    """The pull brings households masked (a ``logs:read`` token), so the district report
    cannot tell households apart; it said 0 households went out, 0 outings, 0 over the quota,
    on a day when residents went out all day. A figure the database cannot know is null."""
    clock = FakeClock(start=datetime(2026, 3, 2, tzinfo=UTC))
    core = make_kiosk(tmp_path / "g.db", "gate-1", clock)
    try:
        add_events(core, 12, advance_s=600)  # every other one a resident going out
        pull_pg("http://gate-1", core.token, pg_dsn, Network(core))
        report = district_report(pg_dsn, date(2026, 3, 2), "UTC")
    finally:
        core.store.close()
    assert report["household_rows"] == 0 and report["community"]["people"]["out"] == 6
    exits = report["exits_per_household"]
    # The outings are counted (as the gate counts its purged ones), whose they were is not.
    assert exits["households"] is None and exits["exits"] == 6
    assert exits["over_quota_households"] is None and exits["max"] is None
    assert exits["histogram"] is None


def test_a_handover_counts_the_alarms_open_on_the_console(guard_client, guard_core):
    """The handover's "open alarms" (待处理提醒) counted only the returnee ledger's: an
    outgoing guard with a fever at the gate still open on the console handed over "0 open
    alarms". It counts the console's open alarms as well."""
    from datetime import timedelta

    now = guard_core.clock.now()
    guard_core.ledgers.roster.add_shift(
        guard_core.config.site.kiosk_id, "alice", now - timedelta(hours=1),
        now + timedelta(hours=7), actor="root",
    )  # fmt: skip
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.6, temp_object_c=35.2,
              household="3-201", holder="Li Wei", pass_id="c0ffee000002")  # fmt: skip
    csrf = login(guard_client)
    assert 'class="alarm kind-fever' in guard_client.get("/guard").text  # open on the console
    from guard_support import post

    guard_core.clock.advance(60)
    post(guard_client, "/guard/community/handover", csrf, incoming="root")
    [handover] = guard_core.ledgers.roster.handovers(guard_core.config.site.kiosk_id)
    assert handover.summary["open_alarms"] == 1 and handover.summary["fevers"] == 1


@pytest.mark.slow
def test_the_district_counts_the_offices_quarantine_list_once_not_once_per_gate(
    tmp_path, pg_dsn, monkeypatch
):
    """Every gate holds the office's one list bundle, so every gate counts the same
    quarantined households, and the district report summed them: 3 households under home
    quarantine at two gates made 6 (20 gates: 60). The office's list counts once (the most
    any gate holds), the entries a gate added itself are summed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from support import kiosk_api

    from kiosk.config.fleet import CollectorConfig
    from kiosk.lists import sign_bundle
    from kiosk.passes import TrustList
    from office.collector import Collector

    day = date(2026, 3, 2)
    office = Ed25519PrivateKey.from_private_bytes(b"\x11" * 32)
    bundle = sign_bundle(office, {
        "format": "kiosk-lists/1", "version": 1, "issued_at": "2026-03-01T20:00:00+00:00",
        "quarantine": [{"household": h, "from": "2026-02-25", "until": "2026-03-10"}
                       for h in ("3-201", "5-702", "6-101")],
    })  # fmt: skip
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    scopes = ("logs:read", "stats:read")
    cores = [kiosk_api(tmp_path / f"{n}.db", n, FakeClock(start=start), ledgers=True,
                       scopes=scopes) for n in ("gate-east", "gate-west")]  # fmt: skip
    try:
        for i, core in enumerate(cores):
            core.list_store.import_bundle(bundle, TrustList([("office", office.public_key())]),
                                          actor="office-sync")  # fmt: skip
            monkeypatch.setenv(f"TOKEN_{i}", core.token)
            add_events(core, 2)
            core.clock.advance(86400)  # the next morning: the day is over
        cores[0].list_store.add_quarantine("7-101", None, day, day, "manager")  # the gate's own
        config = CollectorConfig.model_validate({"kiosks": [
            {"url": f"http://{c.config.site.kiosk_id}", "token_env": f"TOKEN_{i}"}
            for i, c in enumerate(cores)]})  # fmt: skip
        office_clock = FakeClock(start=start + timedelta(days=1))  # the office's, synchronised
        collector = Collector(config, pg_dsn, client=Network(*cores).client(), report_interval_s=0,
                              clock=office_clock)  # fmt: skip
        try:
            collector.run_once()
        finally:
            collector.stop()
        report = district_report(pg_dsn, day, "Asia/Shanghai")
    finally:
        for core in cores:
            core.store.close()
    per_gate = {g["kiosk_id"]: g["community"]["quarantined_households"] for g in report["by_gate"]}
    assert per_gate == {"gate-east": 4, "gate-west": 3}  # each gate's own count, as before
    assert report["community"]["quarantined_households"] == 4


def test_the_reports_vehicle_occupants_say_the_driver_is_not_among_them(guard_client, guard_core):
    """A car is registered with its driver and its passengers, and ``occupants`` counts the
    passengers (the form's 随车人数（不含司机）), but the report called them 随车人员 /
    Occupants: the office read 1 person in a car that carried 2. The label says which."""
    add_event(guard_core, decision="manual_pass", reasons=("guard_override",), operator="alice",
              kind="vehicle", temp_c=36.6, person={"plate": "京A12345", "driver": "赵刚",
              "driver_temp_c": 36.5, "passengers": [{"name": "赵敏", "temp_c": 36.6}],
              "occupants": 1})  # fmt: skip
    login(guard_client)
    for lang, words in (("zh-CN", "不含司机"), ("en", "not the driver")):
        page = guard_client.get(f"/guard/community/report?day=2026-03-02&lang={lang}").text
        row = page.split('data-category="vehicles" data-item="occupants">')[1].split("</tr>")[0]
        assert words in row and row.endswith("<td>1</td>"), (lang, row)


def test_a_passage_stamped_on_a_frozen_day_is_in_that_days_report(reporting_store, clock):
    """Complete days are frozen (``daily_aggregates``) and answered from there ever after. A
    passage recorded later but stamped on a frozen day — a Pi booted with its clock set back
    (the saved clock of a power cut), before NTP answered — was in no report at all: not
    that day's (frozen without it) and not today's (it is not stamped today). A frozen day
    that got events after it was frozen is counted again while its events are intact, and
    frozen again by the next freeze."""
    from kiosk.stats import daily_report, freeze_days
    from kiosk.store import EventDraft

    log, day = reporting_store, date(2026, 3, 2)

    def passage(direction):
        log.append(EventDraft(direction=direction, decision="pass", reasons=("ok",),
                              temp_c=36.5, temp_object_c=34.0))  # fmt: skip

    clock.set_wall(datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    passage("in")
    clock.set_wall(datetime(2026, 3, 3, 2, 0, tzinfo=UTC))
    assert freeze_days(log, "UTC", None, clock.now()) == [day]
    clock.set_wall(datetime(2026, 3, 2, 5, 0, tzinfo=UTC))  # the clock set back a day
    passage("out")
    report = daily_report(log.reader(), day, "UTC")
    assert report["events"] == 2 and report["community"]["people"] == {"in": 1, "out": 1}
    clock.set_wall(datetime(2026, 3, 3, 3, 0, tzinfo=UTC))  # synchronised again
    assert freeze_days(log, "UTC", None, clock.now()) == [day]  # frozen again, with it
    assert freeze_days(log, "UTC", None, clock.now()) == []
    assert daily_report(log.reader(), day, "UTC")["events"] == 2
    # Once the day's personal fields are purged a count would lose its households: the
    # frozen report stands.
    log.submit(lambda db: db.execute("update events set purged_at = ? where seq = 1",
                                     ["2026-04-02T00:00:00.000000Z"]))  # fmt: skip
    clock.set_wall(datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    passage("in")
    assert daily_report(log.reader(), day, "UTC")["events"] == 2


def test_a_manual_pass_about_a_passage_that_already_passed_is_refused(guard_client, guard_core):
    """The manual form offers the last kiosk passage as its subject whatever its decision. A
    guard's 人工放行 about a resident the kiosk had already let out was recorded as a second
    passage: 2 people out, 2 outings of the household in the report (and in the quota the
    gate counts), for one person through the gate once. There is nothing to let through:
    the console refuses it (a deny about it — a fever found by hand — stays possible)."""
    from datetime import date

    from kiosk import stats

    add_event(guard_core, direction="out", household="3-201", holder="Li Wei",
              pass_id="c0ffee000003", temp_c=36.5, temp_object_c=34.0)  # fmt: skip
    csrf = login(guard_client)
    from guard_support import post

    form = {"subject": "1", "reason": "补记", "direction": "out", "decision": "pass"}
    refused = post(guard_client, "/guard/manual?lang=en", csrf, **form)
    assert "err=" in refused.headers["location"]
    assert "already passed" in guard_client.get(refused.headers["location"]).text
    assert guard_core.store.last_seq == 1
    assert guard_core.store.audits()[-1]["detail"]["problem"] == "err.subject_passed"
    report = stats.compute_report(guard_core.store.reader(), date(2026, 3, 2), "UTC")
    assert report["community"]["people"]["out"] == 1
    assert report["exits_per_household"]["exits"] == 1


def test_a_winter_days_hand_checks_are_counted_apart_from_the_kiosks_readings(
    reporting_store, clock
):
    """A day whose air stayed outside the thermometer's range: the kiosk denied everyone
    ``air_out_of_range`` and the guard measured each by hand and decided. The report put the
    hand readings into the temperature histogram as if the kiosk had taken them, and nothing
    said how many people were checked by hand. ``hand_readings`` counts the passages whose
    reading is a guard's hand reading (a copied kiosk reading is not one)."""
    from kiosk.stats import daily_report
    from kiosk.store import EventDraft

    clock.set_wall(datetime(2026, 1, 12, 1, 0, tzinfo=UTC))
    log = reporting_store

    def add(**kw):
        return log.append(EventDraft(**{"direction": "in", "decision": "pass"} | kw))

    def decide(subject, **kw):
        return add(**{"reasons": ("guard_override",), "operator": "alice",
                      "flags": (f"overrides:{subject.seq}",)} | kw)  # fmt: skip

    for temp_c in (36.4, 36.9):  # checked by hand, let through
        cold = add(decision="deny", reasons=("air_out_of_range",))
        decide(cold, decision="manual_pass", temp_c=temp_c)
    cold = add(decision="deny", reasons=("air_out_of_range",))
    decide(cold, decision="manual_deny", temp_c=38.6)  # a fever found by hand
    fever = add(decision="deny", reasons=("fever",), temp_c=38.4, temp_object_c=35.1)
    decide(fever, decision="manual_deny", temp_c=38.4, temp_object_c=35.1)  # copied: no hand
    add(reasons=("ok",), temp_c=36.6, temp_object_c=34.1)
    add(decision="manual_pass", reasons=("guard_override",), operator="alice", temp_c=36.5)
    report = daily_report(log.reader(), date(2026, 1, 12), "UTC")
    assert report["by_reason"]["air_out_of_range"] == 3
    assert report["hand_readings"] == 4
    assert report["passages"]["total"] == 6
