"""Shifts per gate, who is on duty, and a handover acknowledged by both guards."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from kiosk import observation, roster, services, stats
from kiosk.clock import FakeClock
from kiosk.community import CommunityError
from kiosk.observation import ObservationLedger
from kiosk.roster import CLOCK_NOT_SET, Roster
from kiosk.services import ServiceDesk
from kiosk.store import EventDraft, EventLog

T0 = datetime(2026, 2, 12, 0, 0, tzinfo=UTC)  # 08:00 Shanghai
H = timedelta(hours=1)


@pytest.fixture
def clock():
    return FakeClock(start=T0)


@pytest.fixture
def log(tmp_path, clock):
    sets = [roster.MIGRATIONS, observation.MIGRATIONS, services.MIGRATIONS]
    store = EventLog(tmp_path / "k.db", "gate-1", clock, "NORMAL", migrations=sets)
    yield store.open()
    store.close()


@pytest.fixture
def ledger(log, clock):
    return ObservationLedger(log, clock, "Asia/Shanghai")


@pytest.fixture
def rota(log, clock, ledger):
    r = Roster(log, clock, open_alarms=ledger.alarms)
    r.add_shift("gate-1", "Zhao", T0, T0 + 8 * H, actor="manager")
    r.add_shift("gate-1", "Qian", T0 + 8 * H, T0 + 16 * H, actor="manager")
    return r


def event(log, **kw):
    values = {"direction": "in", "decision": "pass", **kw}
    log.append(EventDraft(**values))


def test_who_is_on_duty_follows_the_shifts(rota, clock):
    assert [s.guard for s in rota.on_duty("gate-1")] == ["Zhao"]
    assert [s.guard for s in rota.on_duty("gate-1", T0 + 8 * H)] == ["Qian"]
    assert rota.on_duty("gate-1", T0 + 16 * H) == []
    assert rota.on_duty("gate-2") == []


def test_a_handover_summarises_the_shift_and_needs_both_guards(rota, log, clock, ledger):
    event(log, household="1-101", temp_c=36.5)
    clock.advance(3600)
    event(log, decision="deny", reasons=("fever",), temp_c=38.4)
    event(log, household="5-702", flags=("quarantine",))
    event(log, decision="manual_pass", kind="registration", operator="Zhao",
          person={"name": "Old Li", "phone": "none", "unit": "2-301"})  # fmt: skip
    event(log, decision="manual_pass", kind="vehicle", operator="Zhao",
          person={"plate": "京A12345", "driver": "Sun", "occupants": 2})  # fmt: skip
    ledger.register(name="Wang", household="3-701", phone="138", origin="Wuhan",
                    date_back=date(2026, 2, 11), actor="Zhao")  # fmt: skip
    desk = ServiceDesk(log, clock, "Asia/Shanghai")
    desk.open("5-702", "food", "Zhao", confined=True)
    desk.done(desk.open("5-702", "rubbish", "Zhao", confined=True).id, "helper")
    clock.advance(7 * 3600 - 600)  # 15:50 Shanghai
    handover = rota.open_handover("gate-1", "Zhao", "Qian")
    assert handover.since == T0
    assert dict(handover.summary) == {
        "open_alarms": 1,  # yesterday's check of the returnee is missing
        "fevers": 1,
        "quarantine_returns": 1,
        "quarantine_breaches": 0,
        "overrides": 0,
        "new_returnees": 1,
        "registrations": 1,
        "vehicles": 1,
        "open_requests": 1,
    }
    assert not handover.complete
    with pytest.raises(CommunityError, match="Sun is not part of handover"):
        rota.acknowledge(handover.id, "Sun")
    rota.acknowledge(handover.id, "Qian")
    with pytest.raises(CommunityError, match="already acknowledged"):
        rota.acknowledge(handover.id, "Qian")
    assert rota.acknowledge(handover.id, "Zhao").complete
    audits = [a for a in log.audits(limit=100) if a["action"].startswith("handover.")]
    assert [(a["action"], a["actor"]) for a in audits] == [
        ("handover.open", "Zhao"), ("handover.ack", "Qian"), ("handover.ack", "Zhao"),
    ]  # fmt: skip
    assert audits[-1]["detail"]["complete"] is True
    assert "Wang" not in str([a["detail"] for a in audits])


def seq_of(log, **kw) -> int:
    values = {"direction": "in", "decision": "pass", **kw}
    return int(log.append(EventDraft(**values)).seq)


def test_a_handover_counts_the_breach_attempts_and_the_guards_overrides(rota, log, clock):
    """A quarantined resident stopped going out (an alarm the day guard acknowledged) left no
    trace in the handover for the guard taking over, nor did a guard's pass over a deny. Now
    it counts the kiosk's quarantine denies (not one where the person said "coming home" on
    the screen: that is a return the guard looks at) and the guard's decisions that changed
    the kiosk's: a deny let through, a pass stopped; not a fever deny confirmed, nor a person
    registered by hand."""
    out = dict(direction="out", household="5-702", pass_id="P1", holder="Chen")
    breach = seq_of(log, decision="deny", reasons=("quarantined",), **out)
    seq_of(log, decision="deny", reasons=("quarantined",), **out)  # tries again
    seq_of(log, decision="deny", reasons=("quarantined",), flags=("direction_unverified",),
           household="5-702")  # fmt: skip
    seq_of(log, decision="manual_pass", reasons=("guard_override",), operator="Zhao",
           flags=(f"overrides:{breach}",), **out)  # fmt: skip
    fever = seq_of(log, decision="deny", reasons=("fever",), temp_c=38.4, pass_id="P2")
    seq_of(log, decision="manual_deny", reasons=("guard_override",), operator="Zhao",
           flags=(f"overrides:{fever}",), pass_id="P2")  # fmt: skip
    passed = seq_of(log, pass_id="P3")
    seq_of(log, decision="manual_deny", reasons=("guard_override", "fever"), temp_c=38.3,
           operator="Zhao", flags=(f"overrides:{passed}",), pass_id="P3")  # fmt: skip
    seq_of(log, decision="manual_pass", reasons=("guard_override",), operator="Zhao",
           kind="registration", person={"name": "Old Li", "unit": "2-301"})  # fmt: skip
    clock.advance(3600)
    summary = rota.open_handover("gate-1", "Zhao", "Qian").summary
    assert summary["quarantine_breaches"] == 2
    assert summary["overrides"] == 2  # before: neither figure was there


def signed(rota, handover):
    """``handover`` signed by both its guards (a new one between them may then be opened)."""
    for guard in (handover.outgoing, handover.incoming):
        rota.acknowledge(handover.id, guard)
    return handover


def test_the_next_handover_counts_from_the_last_one(rota, log, clock):
    event(log, decision="deny", reasons=("fever",), temp_c=38.4)
    clock.advance(4 * 3600)
    signed(rota, rota.open_handover("gate-1", "Zhao", "Qian"))
    clock.advance(600)
    again = rota.open_handover("gate-1", "Zhao", "Qian")
    assert again.since == T0 + 4 * H and again.summary["fevers"] == 0


def test_a_handover_after_the_clock_stepped_back_counts_the_shift_and_says_so(rota, log, clock):
    """A handover opened on a clock two days ahead (a Pi with no RTC), then NTP stepped it
    back: the next handover's window began at that handover, in the future, and showed zero
    of everything. A handover stamped after now is skipped: the window is the shift's, and
    ``clock_stepped_back`` says the counts may include what that handover already covered."""
    clock.set_wall(T0 + 48 * H + 2 * H)
    rota.add_shift("gate-1", "Zhao", T0 + 48 * H, T0 + 56 * H, actor="manager")
    signed(rota, rota.open_handover("gate-1", "Zhao", "Qian"))  # stamped two days ahead
    clock.set_wall(T0 + 3 * H)  # NTP steps the clock back to the real time
    event(log, decision="deny", reasons=("fever",), temp_c=38.4)
    clock.advance(3600)
    handover = signed(rota, rota.open_handover("gate-1", "Zhao", "Qian"))
    assert handover.since == T0 and handover.since <= handover.opened_at
    assert handover.summary["fevers"] == 1
    assert handover.summary["clock_stepped_back"] == 1
    clock.advance(600)  # the next one counts from the real last handover, not the future one
    again = rota.open_handover("gate-1", "Zhao", "Qian")
    assert again.since == handover.opened_at and again.summary["fevers"] == 0
    assert "clock_stepped_back" not in again.summary  # opened after the step: nothing doubled


def test_a_summary_window_that_starts_after_it_ends_is_refused(log):
    with pytest.raises(ValueError, match="starts after it ends"):
        roster.summary_since(log.reader(), "gate-1", T0 + H, T0, 0)


def test_only_a_guard_on_duty_opens_a_handover(rota, clock):
    with pytest.raises(CommunityError, match="Qian is not on duty"):
        rota.open_handover("gate-1", "Qian", "Zhao")
    with pytest.raises(CommunityError, match="between two guards"):
        rota.open_handover("gate-1", "Zhao", "Zhao")


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (T0 + 2 * H, T0 + H, "ends after it starts"),
        (T0, T0 + 25 * H, "within 24 hours"),
        (T0 + 7 * H, T0 + 9 * H, "Zhao already has shift"),
        (datetime(2026, 2, 12, 8), datetime(2026, 2, 12, 9), "time zone"),
    ],
)
def test_bad_shifts_are_refused(rota, start, end, message):
    with pytest.raises(CommunityError, match=message):
        rota.add_shift("gate-1", "Zhao", start, end, actor="manager")


def test_removing_a_shift_is_audited(rota, log):
    shift = rota.on_duty("gate-1")[0]
    rota.remove_shift(shift.id, actor="manager")
    assert rota.on_duty("gate-1") == []
    assert log.audits()[-1]["action"] == "roster.shift_remove"


def test_the_outgoing_guard_hands_over_at_or_just_after_the_end_of_the_shift(rota, clock):
    """The handover happens at the shift change: at 16:00 sharp (or five minutes later, when
    the incoming guard is in), the outgoing guard's shift [08:00, 16:00) no longer covered
    "now", so the handover was refused ("Zhao is not on duty") and never recorded."""
    clock.set_wall(T0 + 8 * H)
    assert signed(rota, rota.open_handover("gate-1", "Zhao", "Qian")).since == T0
    clock.set_wall(T0 + 8 * H + timedelta(minutes=5))
    again = signed(rota, rota.open_handover("gate-1", "Zhao", "Qian"))
    assert again.since == T0 + 8 * H  # from the last handover
    clock.set_wall(T0 + 8 * H + roster.HANDOVER_GRACE + timedelta(seconds=1))
    with pytest.raises(CommunityError, match="Zhao is not on duty"):
        rota.open_handover("gate-1", "Zhao", "Qian")


def test_quarantine_returns_count_the_residents_who_came_home_once_each(rota, log, clock):
    """The handover's ``quarantine_returns`` counted every event flagged ``quarantine``: a
    quarantined resident turned away for a fever, a registration of the household going out or
    refused — none came home — while a resident whom the kiosk stopped on an unverified
    direction and the guard let in (the guard's pass flags only ``overrides:<seq>``) was not
    counted at all. A return is a passage in, passed, of a quarantined household: the kiosk's
    own, or the guard's pass over a passage the kiosk flagged or stopped as quarantined."""
    clock.advance(600)
    # 1. came home through the kiosk (trusted direction): one return.
    event(log, household="5-702", flags=("quarantine",))
    # 2. came home with a fever: denied, then let in by the guard to isolate: one return.
    feverish = log.append(EventDraft(direction="in", decision="deny", reasons=("fever",),
                          household="5-702", temp_c=38.4, flags=("quarantine",)))  # fmt: skip
    event(log, decision="manual_pass", reasons=("guard_override",), household="5-702",
          operator="Zhao", flags=(f"overrides:{feverish.seq}",))  # fmt: skip
    # 3. a registration of the household going out, refused, and one let out: no return.
    for decision in ("manual_deny", "manual_pass"):
        event(log, direction="out", decision=decision, kind="registration", operator="Zhao",
              person={"name": "Old Li", "unit": "5-702"}, flags=("quarantine",))  # fmt: skip
    # 4. came home by the screen's button (direction unverified): the kiosk stops them, the
    #    guard lets them in: one return.
    unverified = log.append(EventDraft(direction="in", decision="deny", reasons=("quarantined",),
                            household="5-702", flags=("direction_unverified",)))  # fmt: skip
    event(log, decision="manual_pass", reasons=("guard_override",), household="5-702",
          operator="Zhao", flags=(f"overrides:{unverified.seq}",))  # fmt: skip
    # 5. came home through the kiosk, and the guard then confirmed it by hand: one return.
    came = log.append(EventDraft(direction="in", decision="pass", household="5-702",
                      flags=("quarantine",)))  # fmt: skip
    event(log, decision="manual_pass", reasons=("guard_override",), household="5-702",
          operator="Zhao", flags=(f"overrides:{came.seq}",))  # fmt: skip
    # 6. turned away for a fever and sent off: no return.
    event(log, decision="deny", reasons=("fever",), household="5-702", temp_c=38.6,
          flags=("quarantine",))  # fmt: skip
    clock.advance(3600)
    handover = rota.open_handover("gate-1", "Zhao", "Qian")
    assert handover.summary["quarantine_returns"] == 4


def test_what_happened_between_an_early_handover_and_the_shift_change_is_handed_over_next(
    rota, log, clock
):
    """The incoming guard came five minutes early: Zhao handed over at 15:55 and a fever was
    decided at 15:57, before Qian's shift began at 16:00. Qian's handover counted from 16:00,
    Zhao's ended at 15:55: the fever was in neither. A handover opened up to HANDOVER_GRACE
    before the shift began is where the next one starts."""
    clock.set_wall(T0 + 8 * H - timedelta(minutes=5))
    rota.open_handover("gate-1", "Zhao", "Qian")
    clock.set_wall(T0 + 8 * H - timedelta(minutes=3))
    event(log, decision="deny", reasons=("fever",), temp_c=38.4)
    clock.set_wall(T0 + 16 * H - timedelta(minutes=1))
    handover = rota.open_handover("gate-1", "Qian", "Sun")
    assert handover.since == T0 + 8 * H - timedelta(minutes=5)
    assert handover.summary["fevers"] == 1


def test_a_handover_long_before_the_shift_does_not_stretch_its_window(rota, log, clock):
    """The last handover at the gate was the day before: the window is the shift's own."""
    clock.set_wall(T0 + 4 * H)
    rota.open_handover("gate-1", "Zhao", "Qian")
    rota.add_shift("gate-1", "Qian", T0 + 24 * H, T0 + 32 * H, actor="manager")
    clock.set_wall(T0 + 31 * H)
    assert rota.open_handover("gate-1", "Qian", "Sun").since == T0 + 24 * H


def test_a_handover_on_a_clock_not_set_yet_says_so_not_that_the_guard_is_off_duty(log, ledger):
    """A Pi booted without network: its clock says 1970 until NTP answers. No shift covers
    1970; the guard on duty is told the clock is not set, not that they are off duty."""
    clock = FakeClock(start=datetime(1970, 1, 1, tzinfo=UTC), is_synced=False)
    r = Roster(log, clock, open_alarms=ledger.alarms)
    r.add_shift("gate-1", "Zhao", T0, T0 + 8 * H, actor="manager")
    with pytest.raises(CommunityError) as refused:
        r.open_handover("gate-1", "Zhao", "Qian")
    assert str(refused.value) == CLOCK_NOT_SET


def test_the_console_says_the_clock_refusal_in_chinese():
    from ui import core_words

    assert core_words.refusal_text("zh-CN", CLOCK_NOT_SET).startswith("时钟尚未校准")


def test_an_early_handover_on_a_clock_not_yet_set_starts_the_next_window_when_it_happened(
    log, ledger, clock
):
    """Power came back in the afternoon, the network later still: the Pi's clock read 10:00
    (the log's last synchronised stamp, plus the time since the boot) when Zhao handed over
    to Qian, come early at 15:30. NTP set the clock at 15:45 and a fever was decided at
    15:50, before Qian's shift began at 16:00. Zhao's handover was stamped 10:00, hours
    before Qian's shift, so Qian's counted from 16:00: the fever was in neither. Dated by
    its boot's clocks, Zhao's handover was at 15:30, where Qian's starts."""
    clock.set_wall(T0 + 2 * H)  # really T0 + 7.5 H
    clock.is_synced = False
    r = Roster(log, clock, open_alarms=ledger.alarms, boot_id=log.boot_id)
    r.add_shift("gate-1", "Zhao", T0, T0 + 8 * H, actor="manager")
    r.add_shift("gate-1", "Qian", T0 + 8 * H, T0 + 16 * H, actor="manager")
    early = r.open_handover("gate-1", "Zhao", "Qian")
    assert early.opened_at == T0 + 2 * H  # what the clock said, kept as it said it
    clock.advance(900)
    clock.set_wall(T0 + 7 * H + 45 * timedelta(minutes=1))
    clock.is_synced = True
    clock.advance(300)
    log.append(EventDraft(direction="in", decision="deny", reasons=("fever",), temp_c=38.4))
    clock.set_wall(T0 + 16 * H - timedelta(minutes=1))
    handover = r.open_handover("gate-1", "Qian", "Sun")
    assert handover.since == T0 + 7 * H + 30 * timedelta(minutes=1)
    assert handover.summary["fevers"] == 1


def test_handover_stamps_on_a_clock_not_set_keep_both_clocks_to_be_dated_by(log, ledger, clock):
    """Each stamp a handover gets on an unsynchronised clock keeps its boot and monotonic
    time (``Handover.stamps``), as an event does: the console dates it once NTP answers,
    or says it is what a clock never set said."""
    clock.set_wall(T0 + H)
    clock.is_synced = False
    r = Roster(log, clock, open_alarms=ledger.alarms, boot_id=log.boot_id)
    r.add_shift("gate-1", "Zhao", T0, T0 + 8 * H, actor="manager")
    opened = r.open_handover("gate-1", "Zhao", "Qian")
    clock.advance(60)
    signed = r.acknowledge(opened.id, "Qian")
    stamps = signed.stamps()
    assert stamps["since"].synced  # the shift's start, as the manager typed it
    assert not stamps["opened_at"].synced and stamps["opened_at"].boot_id == log.boot_id
    assert stamps["incoming_ack_at"].mono_ns - stamps["opened_at"].mono_ns == 60 * 10**9
    assert "outgoing_ack_at" not in stamps


def test_the_handovers_are_listed_newest_first_in_the_order_they_were_opened(rota, clock):
    """A handover at 12:00, then a power cut: the Pi came back reading 10:00 (no network yet)
    and Zhao handed over to Sun. The list put the 12:00 one on top as the newest, and the
    console's check for one waiting to be signed reads the newest ten."""
    clock.set_wall(T0 + 4 * H)
    first = rota.open_handover("gate-1", "Zhao", "Qian")
    clock.set_wall(T0 + 2 * H)
    clock.is_synced = False
    second = rota.open_handover("gate-1", "Zhao", "Sun")
    assert [h.id for h in rota.handovers("gate-1")] == [second.id, first.id]


def test_a_night_rostered_as_two_calendar_days_is_handed_over_whole(rota, log, clock):
    """The manager rosters by the calendar: Zhao 20:00-24:00 and 00:00-08:00, one night at
    the gate. A fever at 21:00; at 08:00 Zhao's handover counted from midnight, the start
    of the shift that ended, and the fever was in no summary. Back-to-back shifts of one
    guard are one stretch on duty: the window starts where it began."""
    rota.add_shift("gate-1", "Zhao", T0 + 12 * H, T0 + 16 * H, actor="manager")
    rota.add_shift("gate-1", "Zhao", T0 + 16 * H, T0 + 24 * H, actor="manager")
    clock.set_wall(T0 + 13 * H)
    event(log, decision="deny", reasons=("fever",), temp_c=38.4)
    clock.set_wall(T0 + 24 * H)
    handover = rota.open_handover("gate-1", "Zhao", "Qian")
    assert handover.since == T0 + 12 * H
    assert handover.summary["fevers"] == 1


def _guard_counts(rota, log, clock) -> tuple[int, dict]:
    clock.advance(3600)
    handover = rota.open_handover("gate-1", "Zhao", "Qian").summary["overrides"]
    return handover, stats.compute_report(log.reader(), T0.date(), "UTC")["overrides"]


def test_a_guards_pass_after_the_gate_failed_to_open_is_an_override_in_both_reports(
    rota, log, clock
):
    """The kiosk passed P, the gate did not open (``not_opened:P``, a deny) and the guard let
    the person through over P. The day report counted an override (the passage's decision was
    the deny), the handover none (it read P's pass): both now read the passage's last decision
    before the guard's (``kiosk.links.decision_before``)."""
    passed = seq_of(log, pass_id="P1", household="1-101", holder="Chen")
    seq_of(log, decision="deny", reasons=("gate_fault",), flags=(f"not_opened:{passed}",),
           pass_id="P1", household="1-101", holder="Chen")  # fmt: skip
    seq_of(log, decision="manual_pass", reasons=("guard_override",), operator="Zhao",
           flags=(f"overrides:{passed}",), pass_id="P1")  # fmt: skip
    handover, report = _guard_counts(rota, log, clock)
    assert report["let_through_over_a_deny"] == report["overriding"] == 1
    assert handover == 1  # before: 0


def test_a_guards_decision_about_a_row_not_held_is_about_a_deny_in_both_reports(rota, log, clock):
    """A guard's decision naming a row the database does not hold (the district's copy of a
    day, a row purged) is read as about a deny, which is what the kiosk sends the guard: a
    pass over it overrides, in the day report and the handover alike."""
    seq_of(log, decision="manual_pass", reasons=("guard_override",), operator="Zhao",
           flags=("overrides:9999",), pass_id="P1")  # fmt: skip
    handover, report = _guard_counts(rota, log, clock)
    assert report["let_through_over_a_deny"] == report["overriding"] == 1
    assert report["registrations"] == 0
    assert handover == 1


def test_a_shift_not_over_yet_is_removed_one_that_has_ended_stays(rota, clock):
    """A wrong guard or day rostered is taken out before or during the shift; a shift that has
    ended is the record of who was on duty, and a removal of it is refused."""
    zhao, qian = rota.shifts("gate-1", T0, T0 + 16 * H)
    clock.advance(9 * 3600)  # Zhao's shift is over, Qian's is on
    with pytest.raises(CommunityError, match=f"shift {zhao.id} has ended"):
        rota.remove_shift(zhao.id, actor="manager")
    rota.remove_shift(qian.id, actor="manager")
    assert [s.guard for s in rota.shifts("gate-1", T0, T0 + 16 * H)] == ["Zhao"]


def test_a_shift_removed_twice_or_at_another_gate_is_named_missing(rota, log):
    shift = rota.on_duty("gate-1")[0]
    with pytest.raises(CommunityError, match=f"no shift {shift.id} at gate-2"):
        rota.remove_shift(shift.id, actor="manager", gate="gate-2")
    rota.remove_shift(shift.id, actor="manager", gate="gate-1")
    with pytest.raises(CommunityError, match=f"no shift {shift.id}"):
        rota.remove_shift(shift.id, actor="manager", gate="gate-1")
    assert [a["action"] for a in log.audits()].count("roster.shift_remove") == 1


def test_a_removal_for_the_shift_a_page_showed_is_refused_once_its_id_is_anothers(rota):
    zhao, qian = rota.shifts("gate-1", T0, T0 + 16 * H)
    stale = "is not the one your page showed"
    with pytest.raises(CommunityError, match=f"shift {qian.id} {stale}"):
        rota.remove_shift(
            qian.id, actor="manager", showed=(zhao.guard, zhao.starts_at, zhao.ends_at)
        )
    # Removed and rostered again shorter on another tablet: the id comes back, the end differs.
    rota.remove_shift(qian.id, actor="manager", showed=(qian.guard, qian.starts_at, qian.ends_at))
    shorter = rota.add_shift("gate-1", "Qian", qian.starts_at, qian.ends_at - 4 * H, "manager")
    assert shorter.id == qian.id
    with pytest.raises(CommunityError, match=stale):
        rota.remove_shift(
            qian.id, actor="manager", showed=(qian.guard, qian.starts_at, qian.ends_at)
        )
    assert rota.shifts("gate-1", T0, T0 + 16 * H) == [zhao, shorter]


def test_two_writers_opening_one_handover_at_once_make_one(tmp_path, clock):
    """The console looked for a handover between the two guards waiting to be signed, then
    opened one, under a lock of its own process: a second writer of the same log (an admin's
    ``kiosk`` beside the daemon, a second console) looked before either wrote, and both
    opened one: two summaries of one shift to sign. The look is made in the opening's own
    write transaction: the second is refused, naming the first; once both signed, the next
    handover between them opens."""
    from support import two_writers_at_once

    sets = [roster.MIGRATIONS, observation.MIGRATIONS, services.MIGRATIONS]
    logs = [
        EventLog(tmp_path / "k.db", "gate-1", clock, "NORMAL", migrations=sets).open()
        for _writer in "ab"
    ]
    try:
        rotas = {id(log): Roster(log, clock) for log in logs}
        rotas[id(logs[0])].add_shift("gate-1", "Zhao", T0, T0 + 8 * H, actor="manager")
        told = two_writers_at_once(
            logs, lambda log: rotas[id(log)].open_handover("gate-1", "Zhao", "Qian")
        )
        made = [t for t in told if not isinstance(t, Exception)]
        refused = [t for t in told if isinstance(t, Exception)]
        assert len(made) == 1 and len(refused) == 1, told
        assert isinstance(refused[0], CommunityError)
        assert str(refused[0]) == f"handover {made[0].id} is waiting to be signed"
        rota = rotas[id(logs[0])]
        assert [h.id for h in rota.handovers("gate-1")] == [made[0].id]
        signed(rota, made[0])
        assert rota.open_handover("gate-1", "Zhao", "Qian").id != made[0].id
    finally:
        for log in logs:
            log.close()


def test_the_shifts_at_a_gate_are_read_from_a_day_before_not_the_whole_roster(rota, log, clock):
    """``Roster.shifts`` (who is on duty, a sign-in's shifts, the handover's stretch) reads
    the roster by its gate and start bounded on both sides, not every shift since the gate
    was installed (never purged); a shift of the longest (``MAX_SHIFT``) under way is found."""
    sql = f"select * from roster_shifts where {roster._OVERLAPPING}"  # noqa: S608
    plan = log.reader().execute("explain query plan " + sql, ["g", "a", "b", "c"]).fetchall()
    bounded = "idx_roster_shifts_gate_starts_at (gate=? AND starts_at>? AND starts_at<?)"
    assert any(bounded in str(row[-1]) for row in plan), plan
    rota.add_shift("gate-1", "alice", T0 - 2 * roster.MAX_SHIFT, T0 - roster.MAX_SHIFT, "root")
    longest = rota.add_shift("gate-1", "bob", T0 - roster.MAX_SHIFT + H, T0 + H, "root")
    assert longest in rota.on_duty("gate-1")
    assert rota.shifts("gate-1", T0 - H, T0) == [longest]
