"""The returnee ledger: a person, 14 days of checks from the gate or a helper, alarms."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk import observation
from kiosk.clock import FakeClock
from kiosk.community import CommunityError
from kiosk.observation import ObservationLedger
from kiosk.store import EventDraft, EventLog

TZ = ZoneInfo("Asia/Shanghai")
BACK = date(2026, 2, 10)


@pytest.fixture
def clock():
    # 09:00 Shanghai on the day back.
    return FakeClock(start=datetime(2026, 2, 10, 1, 0, tzinfo=UTC))


@contextmanager
def opened_log(path, clock, boot_id=None):
    """The event log at ``path`` with the observation tables, open; closed after."""
    booted = {} if boot_id is None else {"boot_id": boot_id}
    store = EventLog(
        path, "gate-1", clock, "NORMAL", migrations=[observation.MIGRATIONS], **booted
    ).open()
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def log(tmp_path, clock):
    with opened_log(tmp_path / "k.db", clock) as store:
        yield store


@pytest.fixture
def ledger(log, clock):
    return ObservationLedger(log, clock, TZ, fever_threshold_c=37.3, check_due=time(20, 0))


def register(ledger, **kw):
    values = dict(
        name="Wang Fang", household="3-2-701", phone="13812345678", origin="Wuhan",
        date_back=BACK, actor="manager",
    )  # fmt: skip
    values.update(kw)
    return ledger.register(**values)


def gate_reading(log, temp_c, holder="Wang Fang", household="3-2-701", fever_c=37.3):
    """A reading at the gate, decided as the kiosk does at ``fever_c``: a fever is denied."""
    fever = temp_c >= fever_c
    log.append(
        EventDraft(
            direction="in",
            decision="deny" if fever else "pass",
            household=household,
            holder=holder,
            temp_c=temp_c,
            reasons=("fever",) if fever else ("ok",),
        )  # fmt: skip
    )


def test_a_returnee_is_observed_fourteen_days_counting_the_day_back(ledger, log):
    person = register(ledger)
    assert person.status == "observing"
    assert person.observation_until == date(2026, 2, 23)
    days = list(person.period(date(2026, 3, 1)))
    assert (days[0], days[-1], len(days)) == (BACK, date(2026, 2, 23), 14)
    audit = log.audits()[-1]
    assert audit["action"] == "observation.register" and audit["actor"] == "manager"
    assert "Wang" not in str(audit["detail"]) and "138" not in str(audit["detail"])


def test_fourteen_days_with_one_missed_check_and_a_fever_day(ledger, log, clock):
    """Checks by the gate on even days and by a helper on odd days; day 5 is missed, day 9
    is a fever. Exactly those two alarms, and the fever closes when the person is escalated."""
    person = register(ledger)
    for n in range(14):
        if n != 4:
            if n == 8:
                ledger.record_temperature(person.id, 37.9, actor="helper Li")
            elif n % 2:
                ledger.record_temperature(person.id, 36.5, actor="helper Li")
            else:
                gate_reading(log, 36.6)
                gate_reading(log, 36.9, holder="Someone Else")  # not this person
        clock.advance(24 * 3600)
    assert clock.now().astimezone(TZ).date() == date(2026, 2, 24)
    alarms = ledger.alarms()
    assert [(a.kind, a.day) for a in alarms] == [
        ("missed_check", date(2026, 2, 14)),
        ("fever", date(2026, 2, 18)),
    ]
    checks = ledger.checks(person.id)
    assert {c.source for c in checks} == {"gate", "helper"}
    assert len(checks) == 13 and sum(c.fever for c in checks) == 1
    assert ledger.due_for_clearing() == [ledger.person(person.id)]

    ledger.acknowledge(person.id, date(2026, 2, 14), "missed_check", actor="guard Zhao")
    assert [a.kind for a in ledger.alarms()] == ["fever"]
    ledger.set_status(person.id, "escalated", actor="manager")
    assert ledger.alarms() == []
    actions = [a["action"] for a in log.audits(limit=100)]
    assert actions.count("observation.check") == 8 and "observation.ack" in actions
    assert actions[-1] == "observation.status"


def test_todays_check_is_missing_only_once_the_due_time_has_passed(ledger, clock):
    person = register(ledger)
    assert ledger.alarms() == []
    clock.advance(11 * 3600 + 1)  # 20:00:01 Shanghai
    assert [(a.kind, a.day) for a in ledger.alarms()] == [("missed_check", BACK)]
    ledger.record_temperature(person.id, 36.4, actor="helper")
    assert ledger.alarms() == []


def test_todays_check_is_missing_at_the_due_time_itself(ledger, clock):
    register(ledger)
    due = clock.now() + timedelta(hours=11)  # 20:00:00 Shanghai
    assert [(a.kind, a.day) for a in ledger.alarms(due)] == [("missed_check", BACK)]
    assert ledger.alarms(due - timedelta(seconds=1)) == []
    clock.advance(11 * 3600)
    assert [(a.kind, a.day) for a in ledger.alarms()] == [("missed_check", BACK)]


def test_yesterdays_missed_check_is_an_alarm_this_morning_before_todays_is_due(ledger, clock):
    register(ledger)
    clock.advance(24 * 3600)  # 09:00 the next day: today's check is not due yet
    assert [(a.kind, a.day) for a in ledger.alarms()] == [("missed_check", BACK)]


def test_due_for_clearing_is_counted_on_the_day_asked(ledger, clock):
    """The manager's to-do for a day named (a report's day), not the clock's today."""
    person = register(ledger)
    assert [p.id for p in ledger.due_for_clearing(BACK + timedelta(days=14))] == [person.id]
    assert ledger.due_for_clearing(BACK + timedelta(days=13)) == []
    clock.advance(14 * 24 * 3600)
    assert [p.id for p in ledger.due_for_clearing()] == [person.id]


def test_a_fever_at_the_gate_is_an_alarm(ledger, log):
    register(ledger)
    gate_reading(log, 38.2)
    assert [a.kind for a in ledger.alarms()] == ["fever"]


def test_a_reading_at_the_gate_counts_whatever_the_case_of_the_passs_household(ledger, log):
    """Before: registered as ``b-2-701`` (typed in lower case) while the pass says
    ``B-2-701``, the gate kept the person under observation (its rule matches as
    ``kiosk.lists.same_text``: case and width ignored) but the gate's readings were looked up
    by the exact and the NFKC spelling only: no check counted, a fever at the gate unseen."""
    person = register(ledger, household="b-2-701")
    gate_reading(log, 38.2, household="B-2-701")
    gate_reading(log, 36.9, household="Ｂ-２-７０１", holder="WANG FANG")
    assert [(c.source, c.temp_c) for c in ledger.checks(person.id)] == [
        ("gate", 38.2), ("gate", 36.9)
    ]  # fmt: skip
    assert [a.kind for a in ledger.alarms()] == ["fever"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"name": " "}, "name: required"),
        ({"date_back": "2026-13-01"}, "date_back: expected YYYY-MM-DD"),
        ({"date_back": date(2026, 3, 1)}, "future"),
        ({"days": 0}, "days"),
        ({"days": True}, "days"),
        ({"origin": "x" * 61}, "origin: at most 60"),
        ({"actor": ""}, "actor: required"),
        ({"household": "a\nb"}, "control characters"),
    ],
)
def test_bad_registrations_are_refused_and_nothing_is_written(ledger, log, kw, message):
    with pytest.raises(CommunityError, match=message):
        register(ledger, **kw)
    assert ledger.people() == [] and log.audits() == []


@pytest.mark.parametrize(
    "kw",
    [
        {"name": "Wang Fang\u200b"},  # a zero-width space pasted with the name from a chat
        {"household": "3-2-701\u200d"},  # a zero-width joiner
        {"household": "\u202e107-2-3"},  # a right-to-left override: shown as 3-2-701
        {"name": "Wang\u00adFang"},  # a soft hyphen
        {"note": "ok\u2028lines"},  # a line separator
        {"origin": "Wuhan\x7f"},  # DEL
        {"origin": "Wuhan\x9b31m"},  # a C1 control (CSI)
    ],
)
def test_a_name_or_household_with_an_invisible_character_is_refused(ledger, log, kw):
    """A helper's form or a sheet took a returnee whose name or household held a character
    nobody sees (anything under U+0020 was refused, nothing else): the console showed
    'Wang Fang', 3-2-701, and the gate compares what the pass carries, so her passages never
    counted as her daily check (a missed check every day) and a site keeping observed
    people in let her out. Refused as the lists refuse it, nothing written."""
    with pytest.raises(CommunityError, match="printable text on one line"):
        register(ledger, **kw)
    assert ledger.people() == [] and log.audits() == []


@pytest.mark.parametrize("temp", [33.9, 43.5, float("nan"), "36.5", True])
def test_a_hand_typed_reading_that_is_not_a_temperature_is_refused(ledger, temp):
    person = register(ledger)
    with pytest.raises(CommunityError, match="temp_c"):
        ledger.record_temperature(person.id, temp, actor="helper")
    assert ledger.checks(person.id) == []


def test_a_reading_outside_the_period_is_refused(ledger, clock):
    person = register(ledger, days=2)
    clock.advance(3 * 24 * 3600)
    with pytest.raises(CommunityError, match="outside the observation period"):
        ledger.record_temperature(person.id, 36.5, actor="helper")


def test_status_changes_are_checked_and_audited(ledger, log):
    person = register(ledger)
    with pytest.raises(CommunityError, match="already observing"):
        ledger.set_status(person.id, "observing", actor="m")
    with pytest.raises(CommunityError, match="status: one of"):
        ledger.set_status(person.id, "gone", actor="m")
    with pytest.raises(CommunityError, match="no person 99"):
        ledger.set_status(99, "cleared", actor="m")
    assert ledger.set_status(person.id, "cleared", actor="m").status == "cleared"
    assert log.audits()[-1]["detail"] == {"person_id": person.id, "from": "observing",
                                          "to": "cleared"}  # fmt: skip


def test_snapshot_says_who_is_observed_for_the_policy(ledger):
    person = register(ledger)
    snap = ledger.snapshot()
    assert snap.observing("3-2-701", " wang fang ", BACK)
    assert snap.observing("3-2-701", "Wang Fang", BACK + timedelta(days=13))  # its last day
    assert not snap.observing("3-2-701", "Wang Fang", BACK + timedelta(days=14))
    assert not snap.observing("3-2-701", "Li Lei", BACK)
    assert not snap.observing("3-2-701", None, BACK)
    assert ledger.current.observing("3-2-701", "Wang Fang", BACK)  # kept up to date
    ledger.set_status(person.id, "cleared", actor="m")
    assert not ledger.snapshot().observing("3-2-701", "Wang Fang", BACK)
    assert not ledger.current.observing("3-2-701", "Wang Fang", BACK)


def test_the_engine_applies_the_ledger_to_that_persons_pass(ledger, clock):
    """As the daemon is to wire it: the engine's ``PolicyState`` carries ``ledger.current``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.config.policy import PolicySection
    from kiosk.config.thermometer import ThermometryConfig
    from kiosk.history import PassageHistory
    from kiosk.lists import Lists
    from kiosk.passes import TrustList, issue_pass
    from kiosk.policy import PassageInputs, PolicyState, decide
    from kiosk.thermometry import Temperature

    key = Ed25519PrivateKey.generate()
    trust = TrustList([("office", key.public_key())])
    code, _ = issue_pass(key, "3-2-701", "Wang Fang", "resident", 30, now=clock.now())
    other, _ = issue_pass(key, "3-2-701", "Li Lei", "resident", 30, now=clock.now())
    register(ledger)
    cfg = PolicySection(observation_blocks="out")
    clock.advance(3600)

    def at_gate(text, direction):
        state = PolicyState(trust, Lists(), PassageHistory(), ledger.current)
        t = Temperature("ok", 36.5, 34.5, 22.0, None)
        inputs = PassageInputs(direction, text, t)
        return decide(inputs, state, clock.now(), cfg, ThermometryConfig(), TZ)

    assert at_gate(code, "out").reasons == ("under_observation",)
    assert at_gate(code, "in").decision == "pass"
    assert at_gate(other, "out").decision == "pass"  # the rest of the household goes out


def test_counts_for_a_day_follow_the_status_history(ledger, clock):
    a = register(ledger)
    register(ledger, name="Li Lei")
    clock.advance(2 * 24 * 3600)
    ledger.set_status(a.id, "cleared", actor="m")
    assert ledger.counts(BACK) == {"new": 2, "observing": 2, "cleared": 0, "escalated": 0,
                                   "transferred": 0, "fever_checks": 0}  # fmt: skip
    later = ledger.counts(BACK + timedelta(days=2))
    assert (later["new"], later["observing"], later["cleared"]) == (0, 1, 1)


def test_purge_forgets_people_whose_observation_ended(ledger, log, clock):
    a = register(ledger)
    b = register(ledger, name="Li Lei")
    ledger.record_temperature(a.id, 36.5, actor="helper")
    ledger.set_status(a.id, "cleared", actor="m")
    now = clock.now()
    purged = log.submit(lambda db: observation.purge(db, date(2026, 3, 1), now))
    assert purged == 1
    gone, kept = ledger.person(a.id), ledger.person(b.id)
    assert (gone.name, gone.phone, gone.origin, gone.status) == ("", "", "", "cleared")
    assert kept.name == "Li Lei" and ledger.checks(a.id) == []
    assert "Wang" not in repr(gone) + repr(kept)


def test_a_returnee_registered_on_a_clock_not_set_is_told_so_not_that_the_day_back_is_ahead(
    tmp_path,
):
    """A Pi booted without network reads 1970: the returnee back today was refused with
    "date_back: lies in the future", which sent the guard to check a date that was right."""
    clock = FakeClock(start=datetime(1970, 1, 1, 0, 5, tzinfo=UTC), is_synced=False)
    with opened_log(tmp_path / "k.db", clock) as store:
        ledger = ObservationLedger(store, clock, TZ)
        with pytest.raises(CommunityError) as refused:
            register(ledger)
        assert "clock is not set" in str(refused.value)
        assert "future" not in str(refused.value)
        from ui import core_words

        assert core_words.refusal_text("zh-CN", str(refused.value)).startswith("时钟尚未校准")
        assert ledger.people() == []
        clock.set_wall(datetime(2026, 2, 10, 1, 0, tzinfo=UTC))
        clock.is_synced = True
        assert register(ledger).date_back == BACK


def test_a_returnee_registered_before_the_ntp_step_counts_as_new_on_the_day_registered(tmp_path):
    """A Pi back from a power cut reads the last shutdown's time (23:00 on 1 March) until NTP
    answers: a returnee registered at 09:10 on 2 March counted as new on 1 March in the daily
    report, and 2 March had nobody new."""
    clock = FakeClock(start=datetime(2026, 3, 1, 15, 0, tzinfo=UTC), is_synced=False)
    with opened_log(tmp_path / "k.db", clock) as log:
        ledger = ObservationLedger(log, clock, TZ)
        register(ledger, date_back=date(2026, 3, 1))
        clock.advance(1200)
        clock.set_wall(datetime(2026, 3, 2, 1, 30, tzinfo=UTC))  # NTP: 09:30 in Shanghai
        clock.is_synced = True
        log.append(EventDraft(direction="in", decision="pass"))  # dates the boot
        register(ledger, name="Li Lei", date_back=date(2026, 3, 2))
        assert ledger.counts(date(2026, 3, 2))["new"] == 2
        assert ledger.counts(date(2026, 3, 1))["new"] == 0
        from kiosk.roster import summary_since

        night = datetime(2026, 3, 1, 14, 0, tzinfo=UTC), datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
        assert summary_since(log.reader(), "gate-1", *night, 0)["new_returnees"] == 0
        morning = datetime(2026, 3, 2, 0, 0, tzinfo=UTC), datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
        assert summary_since(log.reader(), "gate-1", *morning, 0)["new_returnees"] == 2


def test_a_returnee_registered_on_a_clock_ntp_never_set_counts_on_the_day_it_reads(tmp_path):
    """No NTP since (its boot cannot be dated): the registration counts by its stamp."""
    clock = FakeClock(start=datetime(2026, 3, 1, 2, 0, tzinfo=UTC), is_synced=False)
    with opened_log(tmp_path / "k.db", clock) as log:
        ledger = ObservationLedger(log, clock, TZ)
        register(ledger, date_back=date(2026, 3, 1))
        assert ledger.counts(date(2026, 3, 1))["new"] == 1


def test_a_gate_reading_stamped_before_the_ntp_step_counts_whatever_the_case_spelled(tmp_path):
    """The reading at 09:10 on 2 March, stamped 1 March before NTP answered, by a pass that
    spells the household in capitals: found among the readings stamped on a clock not set
    (the period's ``ts`` range would miss it) and dated to 2 March."""
    clock = FakeClock(start=datetime(2026, 3, 1, 15, 0, tzinfo=UTC), is_synced=False)
    with opened_log(tmp_path / "k.db", clock) as log:
        ledger = ObservationLedger(log, clock, TZ)
        clock.advance(1200)
        gate_reading(log, 36.6, household="C-3-301")
        clock.advance(60)
        clock.set_wall(datetime(2026, 3, 2, 1, 30, tzinfo=UTC))  # NTP: 09:30 in Shanghai
        clock.is_synced = True
        log.append(EventDraft(direction="in", decision="pass"))  # dates the boot
        person = register(ledger, household="c-3-301", date_back=date(2026, 3, 2))
        assert [(c.source, c.day) for c in ledger.checks(person.id)] == [("gate", date(2026, 3, 2))]


def test_a_clearing_stamped_1970_before_the_ntp_step_counts_on_the_day_it_was_done(tmp_path):
    """A returnee registered on 1 March; the Pi reboots without network on 3 March and reads
    1970 when the manager clears her at 09:00: the clearing was missed on 3 March's report
    and, ordered before her registration, she still counted as under observation."""
    db = tmp_path / "k.db"
    clock = FakeClock(start=datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
    with opened_log(db, clock, boot_id="boot-1") as log:
        person = register(ObservationLedger(log, clock, TZ), date_back=date(2026, 3, 1))
    clock = FakeClock(start=datetime(1970, 1, 1, 0, 0, 30, tzinfo=UTC), is_synced=False)
    with opened_log(db, clock, boot_id="boot-2") as log:
        ledger = ObservationLedger(log, clock, TZ)
        ledger.set_status(person.id, "cleared", "manager")
        clock.advance(60)
        clock.set_wall(datetime(2026, 3, 3, 1, 1, tzinfo=UTC))  # NTP: 09:01 in Shanghai
        clock.is_synced = True
        log.append(EventDraft(direction="in", decision="pass"))  # dates the boot
        day = ledger.counts(date(2026, 3, 3))
        assert (day["cleared"], day["observing"]) == (1, 0)
        before = ledger.counts(date(2026, 3, 2))
        assert (before["cleared"], before["observing"]) == (0, 1)


#: 00:00 on 3 March in Shanghai.
MIDNIGHT = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


@contextmanager
def _done_on_a_clock_not_set(tmp_path, late_ms: int, act):
    """A returnee registered (on a set clock) on 1 March; after a power cut, on a boot whose
    clock reads the last shutdown's time (23:00 on 1 March) until NTP answers,
    ``act(ledger, log, person)``; NTP then dates that boot so that ``act`` happened exactly
    ``late_ms`` milliseconds after 00:00 on 3 March (negative: before it). Yields the
    ledger, its log open."""
    db = tmp_path / "k.db"
    clock = FakeClock(start=datetime(2026, 3, 1, 2, 0, tzinfo=UTC))
    with opened_log(db, clock, boot_id="boot-1") as log:
        person = register(ObservationLedger(log, clock, TZ), date_back=date(2026, 3, 1))
    clock = FakeClock(start=datetime(2026, 3, 1, 15, 0, tzinfo=UTC), is_synced=False)
    with opened_log(db, clock, boot_id="boot-2") as log:
        ledger = ObservationLedger(log, clock, TZ)
        act(ledger, log, person)
        clock.advance(60)
        clock.set_wall(MIDNIGHT + timedelta(seconds=60, milliseconds=late_ms))  # NTP
        clock.is_synced = True
        log.append(EventDraft(direction="in", decision="pass"))  # dates the boot
        yield ledger


@pytest.mark.parametrize(("late_ms", "day"), [(0, date(2026, 3, 3)), (-1, date(2026, 3, 2))])
def test_a_clearing_on_a_clock_not_set_dated_exactly_at_midnight_counts_on_the_day_it_begins(
    tmp_path, late_ms, day
):
    """Dated by its boot's clocks, a clearing at exactly 00:00 is the new day's (the day's
    ``[start, end)``): cleared that day, and under observation to the end of the day before;
    a millisecond earlier it is the day before's."""

    def clear(ledger, log, person):
        ledger.set_status(person.id, "cleared", "manager")

    with _done_on_a_clock_not_set(tmp_path, late_ms, clear) as ledger:
        for when in (date(2026, 3, 2), date(2026, 3, 3)):
            counts = ledger.counts(when)
            assert (counts["cleared"], counts["observing"]) == (when == day, when < day)


@pytest.mark.parametrize(("late_ms", "day"), [(0, date(2026, 3, 3)), (-1, date(2026, 3, 2))])
def test_a_registration_on_a_clock_not_set_dated_exactly_at_midnight_is_new_on_the_day_it_begins(
    tmp_path, late_ms, day
):
    """Registered on a clock not set, dated by its boot's clocks: new on the day of
    ``[start, end)`` its time falls in."""

    def again(ledger, log, person):
        register(ledger, name="Li Lei", date_back=date(2026, 3, 1))

    with _done_on_a_clock_not_set(tmp_path, late_ms, again) as ledger:
        for when in (date(2026, 3, 2), date(2026, 3, 3)):
            assert ledger.counts(when)["new"] == (when == day)


def test_a_returnee_cleared_put_back_and_cleared_again_on_a_clock_not_set_is_one_clearing(
    tmp_path,
):
    """Cleared, put back by mistake and cleared again (all on a clock not set, dated to 3
    March): one clearing, and nobody under observation at the end of the day; the return
    to ``observing`` between is no change the day's report counts."""

    def cleared_back_and_cleared(ledger, log, person):
        ledger.set_status(person.id, "cleared", "manager")
        ledger.set_status(person.id, "observing", "manager")
        ledger.set_status(person.id, "cleared", "manager")

    with _done_on_a_clock_not_set(tmp_path, 9 * 3600 * 1000, cleared_back_and_cleared) as ledger:
        counts = ledger.counts(date(2026, 3, 3))
        assert (counts["cleared"], counts["observing"]) == (1, 0)


def test_clocks_kept_that_cannot_be_read_leave_the_record_counted_by_its_stamp(tmp_path):
    """A registration and a clearing on a clock not set whose kept clocks cannot be read (a
    copy edited by hand, a torn write): each counts on the day its stamp reads (23:00 on 1
    March), and the day's report is still made."""

    def unreadable(ledger, log, person):
        register(ledger, name="Li Lei", date_back=date(2026, 3, 1))
        ledger.set_status(person.id, "cleared", "manager")
        log.submit(
            lambda db: [
                db.execute(f"update {t} set clocks = 'not json' where clocks is not null")  # noqa: S608
                for t in ("obs_people", "obs_status")
            ]
        )

    with _done_on_a_clock_not_set(tmp_path, 0, unreadable) as ledger:
        counts = ledger.counts(date(2026, 3, 1))
        assert (counts["new"], counts["cleared"]) == (2, 1)
        assert ledger.counts(date(2026, 3, 3))["new"] == 0


def test_a_helpers_reading_on_a_clock_not_set_is_refused_not_put_on_the_day_the_clock_reads(
    ledger, clock
):
    """After a power cut the Pi reads the last shutdown's time (the day before) until NTP
    answers: a reading typed in on 12 February filled the missing check of 11 February (and
    hid it), and today's was still missing."""
    person = register(ledger)
    clock.advance(86400)  # 11 February, nothing taken
    clock.is_synced = False  # the clock reads 11 February on the morning of the 12th
    with pytest.raises(CommunityError) as refused:
        ledger.record_temperature(person.id, 36.5, "helper-li")
    assert str(refused.value) == observation.CHECK_CLOCK_NOT_SET
    from ui.core_words import refusal_text

    assert refusal_text("zh-CN", str(refused.value)).startswith("时钟尚未校准")
    assert ledger.checks(person.id) == []
    clock.is_synced = True
    assert ledger.record_temperature(person.id, 36.5, "helper-li").day == date(2026, 2, 11)


def test_a_mistyped_registration_is_corrected_and_counted_once(ledger, log, clock):
    """A returnee registered with a typo (household 3-2-710 for 3-2-701) could not be
    corrected: the real person was not matched at the gate, the wrong record raised a missed
    check every day, and clearing it and registering again made the report count two new and
    one cleared. Now the manager corrects the record: the gate and the report use the new
    values, the ledger keeps what was there, and the day counts one new, none cleared."""
    person = register(ledger, household="3-2-710", name="Wang Fnag")
    clock.advance(3600)
    fixed = ledger.correct(
        person.id, name="Wang Fang", household="3-2-701", date_back=BACK,
        until=date(2026, 2, 20), actor="manager",
    )  # fmt: skip
    assert (fixed.id, fixed.name, fixed.household) == (person.id, "Wang Fang", "3-2-701")
    assert (fixed.date_back, fixed.observation_until, fixed.status) == (
        BACK, date(2026, 2, 20), "observing"
    )  # fmt: skip
    assert ledger.current.observing("3-2-701", "Wang Fang", BACK)
    assert not ledger.current.observing("3-2-710", "Wang Fnag", BACK)
    gate_reading(log, 36.6)
    assert [c.source for c in ledger.checks(person.id)] == ["gate"]
    [kept] = ledger.corrections(person.id)
    assert (kept.name, kept.household, kept.actor) == ("Wang Fnag", "3-2-710", "manager")
    assert (kept.date_back, kept.observation_until) == (BACK, date(2026, 2, 23))
    audit = log.audits()[-1]
    assert audit["action"] == "observation.correct"
    assert audit["detail"]["fields"] == ["name", "household", "until"]
    assert "Wang" not in str(audit) and "3-2-7" not in str(audit)
    counts = ledger.counts(BACK)
    assert (counts["new"], counts["cleared"], counts["observing"]) == (1, 0, 1)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"date_back": date(2026, 1, 10)}, "date_back: more than 30 days ago"),
        ({"date_back": date(1, 1, 1)}, "date_back: more than 30 days ago"),
        ({"date_back": date(2026, 2, 11)}, "date_back: lies in the future"),
        ({"until": date(2026, 2, 9)}, "until: before the day back"),
        ({"until": date(2026, 4, 30)}, "until: at most 60 days"),
        ({"name": " "}, "name: required"),
        ({}, "nothing to correct"),
    ],
)
def test_a_correction_that_cannot_be_is_refused_and_changes_nothing(ledger, log, kw, message):
    person = register(ledger)
    values = dict(
        name=person.name, household=person.household, date_back=person.date_back,
        until=person.observation_until, actor="manager",
    )  # fmt: skip
    with pytest.raises(CommunityError, match=message):
        ledger.correct(person.id, **(values | kw))
    assert ledger.person(person.id) == person and ledger.corrections(person.id) == []
    assert [a["action"] for a in log.audits()] == ["observation.register"]


@pytest.mark.parametrize("back", [date(2026, 1, 10), date(1, 1, 1)])
def test_a_day_back_more_than_30_days_ago_is_refused(ledger, log, back):
    """0001-01-01 was taken as a day back: a record observed 14 days in year 1."""
    with pytest.raises(CommunityError, match="date_back: more than 30 days ago"):
        register(ledger, date_back=back)
    assert ledger.people() == []
    assert register(ledger, date_back=date(2026, 1, 11)).date_back == date(2026, 1, 11)


def test_a_forgotten_returnee_cannot_be_corrected_nor_keeps_a_correction(ledger, log, clock):
    person = register(ledger, household="3-2-710")
    ledger.correct(person.id, name=person.name, household="3-2-701", date_back=BACK,
                   until=person.observation_until, actor="m")  # fmt: skip
    ledger.set_status(person.id, "cleared", actor="m")
    now = clock.now()
    assert log.submit(lambda db: observation.purge(db, date(2026, 3, 31), now)) == 1
    assert ledger.corrections(person.id) == []
    with pytest.raises(CommunityError, match=f"person {person.id} was forgotten"):
        ledger.correct(person.id, name="x", household="y", date_back=BACK, until=BACK,
                       actor="m")  # fmt: skip


def test_a_long_observation_is_corrected_after_its_30th_day(ledger, log, clock):
    """The 30-day limit on the day back was applied to a day back left as it was: a 60-day
    observation could not be corrected (its household, its last day) after day 30. It
    applies when the day back changes only."""
    person = register(ledger, household="3-2-710", days=60)
    clock.advance(40 * 86400)  # day 41 of 60
    fixed = ledger.correct(
        person.id, name=person.name, household="3-2-701", date_back=BACK,
        until=person.observation_until, actor="manager",
    )  # fmt: skip
    assert (fixed.household, fixed.date_back) == ("3-2-701", BACK)
    with pytest.raises(CommunityError, match="date_back: more than 30 days ago"):
        ledger.correct(
            person.id, name=person.name, household="3-2-701", date_back=date(2026, 2, 11),
            until=person.observation_until, actor="manager",
        )  # fmt: skip


def test_a_correction_over_another_made_meanwhile_changes_nothing(ledger, log, monkeypatch):
    """Two managers correcting the same record: the second, checked against what its page
    read, is refused on the writer and the first stands."""
    person = register(ledger, household="3-2-710")
    read = ledger.person
    # the second manager's correction read the record before the first one's was written
    monkeypatch.setattr(ledger, "person", lambda pid: person)
    ledger.correct(person.id, name=person.name, household="3-2-701", date_back=BACK,
                   until=person.observation_until, actor="m1")  # fmt: skip
    with pytest.raises(CommunityError, match="changed meanwhile"):
        ledger.correct(person.id, name=person.name, household="3-2-702", date_back=BACK,
                       until=person.observation_until, actor="m2")  # fmt: skip
    monkeypatch.setattr(ledger, "person", read)
    assert ledger.person(person.id).household == "3-2-701"
    assert len(ledger.corrections(person.id)) == 1


def test_a_correction_of_what_a_page_showed_before_another_is_refused(ledger, log):
    """``seen``: the version of the record the correcting page showed (``Person.version``).
    A correction made since changes it: the next one from the older page is refused, saying
    what the record is now, and nothing is written; one without it (a script) is not
    checked."""
    person = register(ledger, household="3-2-710")
    same = dict(name=person.name, date_back=BACK, until=person.observation_until, actor="m")
    assert person.version() == ledger.person(person.id).version()
    ledger.correct(person.id, household="3-2-701", seen=person.version(), **same)
    now = ledger.person(person.id)
    assert now.version() != person.version()
    with pytest.raises(CommunityError, match=f"person {person.id} changed since the page was "
                       "drawn: it is now name Wang Fang, household 3-2-701, back 2026-02-10, "
                       "until 2026-02-23; not changed"):  # fmt: skip
        ledger.correct(person.id, household="3-2-702", seen=person.version(), **same)
    assert ledger.person(person.id) == now and len(ledger.corrections(person.id)) == 1
    assert [a["action"] for a in log.audits()][-1] == "observation.correct"
    assert len(log.audits()) == 2
    ledger.correct(person.id, household="3-2-702", seen=now.version(), **same)
    ledger.correct(person.id, household="3-2-703", **same)
    assert ledger.person(person.id).household == "3-2-703"


@pytest.mark.parametrize("now_c", [37.5, 37.0])
def test_a_reading_is_judged_by_the_threshold_it_was_taken_under(log, clock, now_c):
    """Threshold 37.3: a helper's 37.4 is a fever, the gate denied a 37.4 and let a 37.2
    through. The office moved the threshold and restarted: raised to 37.5, the recorded
    fevers were read as normal again and their open alarm vanished, never closed; lowered to
    37.0, the 37.2 let through became a fever and raised an alarm for an old reading."""
    then = ObservationLedger(log, clock, TZ, fever_threshold_c=37.3, check_due=time(20, 0))
    person = register(then)
    then.record_temperature(person.id, 37.4, "helper")
    gate_reading(log, 37.4)
    clock.advance(86400)
    gate_reading(log, 37.2)
    now = ObservationLedger(log, clock, TZ, fever_threshold_c=now_c, check_due=time(20, 0))
    checks = [(c.source, c.temp_c, c.fever) for c in now.checks(person.id)]
    assert checks == [("helper", 37.4, True), ("gate", 37.4, True), ("gate", 37.2, False)]
    assert [(a.kind, a.day) for a in now.alarms()] == [("fever", BACK)]


def test_a_guard_letting_a_fever_through_keeps_the_reading_a_fever(ledger, log, clock):
    """A guard's pass over the kiosk's fever deny carries the kiosk's reading: still the
    fever it was judged, not a normal check of the same person."""
    person = register(ledger)
    first = log.append(
        EventDraft(
            direction="in", decision="deny", reasons=("fever",), household="3-2-701",
            holder="Wang Fang", temp_c=37.6, temp_object_c=35.1,
        )
    )  # fmt: skip
    log.append(
        EventDraft(
            direction="in", decision="manual_pass", reasons=("guard_override",),
            household="3-2-701", holder="Wang Fang", temp_c=37.6, temp_object_c=35.1,
            operator="guard", flags=(f"overrides:{first.seq}",),
        )
    )  # fmt: skip
    assert [c.fever for c in ledger.checks(person.id)] == [True, True]


def test_two_writers_registering_one_returnee_at_once_make_one_record(tmp_path, clock):
    """The console looked for the returnee already observed, then wrote, under a lock of its
    own process: a second writer of the same log (an admin's ``kiosk`` beside the daemon, a
    second console) looked before either wrote, and both registered Wang Fang: two records
    for one person, two lines on the day's report, two sets of alarms. The look is made in
    the registration's own write transaction: the second is refused, naming the first."""
    from support import two_writers_at_once

    with opened_log(tmp_path / "k.db", clock) as a, opened_log(tmp_path / "k.db", clock) as b:
        ledgers = {id(log): ObservationLedger(log, clock, TZ) for log in (a, b)}
        told = two_writers_at_once(
            [a, b], lambda log: register(ledgers[id(log)], household="３-2-701")
        )
        made = [t for t in told if not isinstance(t, Exception)]
        refused = [t for t in told if isinstance(t, Exception)]
        assert len(made) == 1 and len(refused) == 1, told
        assert isinstance(refused[0], CommunityError)
        assert str(refused[0]) == f"already observed as #{made[0].id}"
        assert [p.id for p in ledgers[id(a)].people()] == [made[0].id]
        rows = [r for r in a.audits(0, 100) if r["action"] == "observation.register"]
        assert len(rows) == 1


def test_a_returnee_observed_already_is_refused_by_the_ledger_however_spelled(ledger, log):
    """Whoever writes (the console, a script): one record per person observed, name and
    dwelling compared as the gate compares them; a correction onto another person's name and
    dwelling is refused too; once cleared, the person may be registered again."""
    first = register(ledger)
    with pytest.raises(CommunityError, match=f"already observed as #{first.id}"):
        register(ledger, name="Ｗａｎｇ　Ｆａｎｇ", household="３-2-701")
    other = register(ledger, name="Li Lei")
    with pytest.raises(CommunityError, match=f"already observed as #{first.id}"):
        ledger.correct(
            other.id, name="wang fang", household="3-2-701", date_back=BACK,
            until=BACK + timedelta(days=13), actor="manager",
        )  # fmt: skip
    ledger.set_status(first.id, "cleared", "manager")
    assert register(ledger).id not in (first.id, other.id)
