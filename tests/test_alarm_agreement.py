"""The guard's desk after a restart shows what the live bus showed: for every passage the
engine raises a bus alarm about (the policy's own table of rules, and the combinations of
them below), the card its logged event raises when the desk reads the log back is the card
the desk drew on hearing the alarm live, of the bus alarm's kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from guard_support import add_event
from test_engine import Rig
from test_policy import (
    ENDED_OFFLINE,
    EXPIRED,
    GOOD_PASS,
    ONE_DAY,
    QUARANTINED_1_1,
    RECENT_OUT,
    TABLE,
    Case,
    temp,
)
from test_policy import run as decide_case

from kiosk.alarms import ACK_ACTION, ALARM_KINDS, AlarmDesk, closed_detail
from kiosk.clock import FakeClock, FlooredClock
from kiosk.lists import Lists, QuarantineEntry, Revocation
from kiosk.policy import alarm_flags, bus_alarm

HARD_PASSBACK = {"passback": {"mode": "hard", "window_min": 2}}
RECENT_IN = (*RECENT_OUT[:2], "in", *RECENT_OUT[3:])


def _revoked_in_quarantine() -> Lists:
    """1-1 quarantined and Wang L's pass revoked (lost): a return home on a revoked pass."""
    return Lists.build(
        quarantine=[QuarantineEntry("1-1", None, *ONE_DAY)],
        revocations=[Revocation(GOOD_PASS.pass_id, "lost")],
    )


#: Combinations the table does not hold, each raising a bus alarm.
COMBINED = [
    (
        "a quarantined resident comes home on a revoked pass: denied, flagged, quarantine_return",
        Case(lists=_revoked_in_quarantine(), direction="in"),
    ),
    (
        "a quarantined resident comes home on an expired pass",
        Case(code=EXPIRED, lists=QUARANTINED_1_1, direction="in"),
    ),
    (
        "a quarantined resident comes home on a copied pass: the return outranks the referral",
        Case(lists=QUARANTINED_1_1, direction="in", history=[RECENT_IN], cfg=HARD_PASSBACK),
    ),
    (
        "a sensor fault and lists that cannot say the quarantine is over: the device's alarm",
        Case(lists=ENDED_OFFLINE, temperature=temp(None, "fault")),
    ),
    (
        "a sensor fault and a copied pass: the device's alarm",
        Case(history=[RECENT_OUT], cfg=HARD_PASSBACK, temperature=temp(None, "fault")),
    ),
    (
        "a store fault and a quarantined resident coming home",
        Case(store_fault=True, lists=QUARANTINED_1_1, direction="in"),
    ),
    (
        "a store fault and a quarantined resident coming home by a screen button",
        Case(store_fault=True, lists=QUARANTINED_1_1, direction="in", direction_trusted=False),
    ),
    (
        "a sensor fault and a quarantined resident going out: the breach outranks the device",
        Case(lists=QUARANTINED_1_1, temperature=temp(None, "fault")),
    ),
]


def _raising() -> list[object]:
    cases = [(row[0], row[1]) for row in TABLE] + COMBINED
    return [
        pytest.param(case, id=name)
        for name, case in cases
        if bus_alarm(decided := decide_case(case), decided.decision) is not None
    ]


@pytest.mark.parametrize("case", _raising())
def test_a_restarted_desk_shows_the_card_the_live_bus_alarm_drew(guard_core, case):
    decided = decide_case(case)
    raised = bus_alarm(decided, decided.decision)
    pass_ = decided.pass_
    seq = add_event(
        guard_core,
        direction=case.direction,
        decision=decided.decision,
        reasons=decided.reasons,
        flags=(*decided.flags, *alarm_flags(decided, decided.decision)),  # as the engine's row
        household=pass_.household if pass_ else None,
        holder=pass_.holder if pass_ else None,
        pass_id=pass_.pass_id if pass_ else None,
    ).seq
    live = AlarmDesk(guard_core.store, guard_core.clock)
    message = {"type": "alarm", "alarm": raised, "state": "raised", "passage": 1, "seq": seq}
    live.note_message(message)
    heard = [(a.key, a.kind, a.detail) for a in live.open_alarms([])]
    assert [(key, kind) for key, kind, _ in heard] == [(f"event:{seq}", ALARM_KINDS[raised])]
    restarted = AlarmDesk(guard_core.store, guard_core.clock)
    assert [(a.key, a.kind, a.detail) for a in restarted.open_alarms([])] == heard


def test_a_forgotten_card_coming_home_in_quarantine_is_a_card_naming_the_household_only(
    guard_core,
):
    """A forgotten resident's card (the office voided it: revoked) shown coming home to a
    quarantined household: the row keeps the household, never the holder's name
    (docs/privacy.md). After a restart its ``quarantine_return`` card names the household
    and nobody else."""
    add_event(
        guard_core, direction="in", decision="deny", reasons=("pass_revoked",),
        household="1-1", pass_id=GOOD_PASS.pass_id,
        flags=("quarantine", "role:resident", "alarm:quarantine_return"),
    )  # fmt: skip
    [card] = AlarmDesk(guard_core.store, guard_core.clock).open_alarms([])
    assert (card.kind, card.detail, card.household, card.holder) == (
        "quarantine",
        "quarantine_return",
        "1-1",
        None,
    )


def _passage_cards(desk: AlarmDesk) -> list[tuple[object, ...]]:
    """The desk's open cards about a passage (a device's standing card comes from the health
    report, not the log), with what they say."""
    return sorted(
        (a.key, a.kind, a.detail, a.household, a.holder)
        for a in desk.open_alarms([])
        if a.seq is not None
    )


def _live_desk(rig: Rig, clock: object) -> AlarmDesk:
    """A desk that heard the engine's bus alarms."""
    live = AlarmDesk(rig.log, clock, lookback_h=37)
    for message in rig.messages:
        if message["type"] == "alarm":
            live.note_message(message)
    return live


def _live_and_restarted(rig: Rig, clock: object) -> tuple[list[object], list[object]]:
    """The passage cards of a desk that heard the engine's bus alarms, and of one started
    afterwards on the log alone."""
    restarted = AlarmDesk(rig.log, clock, lookback_h=37)
    return _passage_cards(_live_desk(rig, clock)), _passage_cards(restarted)


def test_a_pass_the_relay_did_not_open_for_is_one_card_live_and_after_a_restart(clock, tmp_path):
    """The relay does not answer a pass's open: the engine raises ``gate_fault`` about the
    pass, and the log follows the pass with a deny flagged ``not_opened:<seq>``. Before, the
    live desk showed that alarm's card and the deny's own, and a restarted desk the deny's
    alone: a guard's close of the first came back open as the second."""
    rig = Rig(clock, tmp_path, policy={"mode": "pass_only"})
    try:
        rig.gate.unplug()
        rig.show(rig.pass_text(household="A-101"), "out")
        rig.run(1)
        rig.run(1)
        passed, denied = rig.events()
        assert denied["flags"] == [f"not_opened:{passed['seq']}"]
        live, restarted = _live_and_restarted(rig, clock)
        card = (f"event:{passed['seq']}", "device", "gate_fault", "A-101", "Li Wei")
        assert live == restarted == [card]

        def record(closing: object) -> None:
            rig.log.audit("alice", ACK_ACTION, {**closed_detail(closing), "resolution": "ok"})

        _live_desk(rig, clock).close([card[0]], "alice", [], record=record)
        assert _passage_cards(AlarmDesk(rig.log, clock, lookback_h=37)) == []
    finally:
        rig.close()


class _FastUnsetClock(FlooredClock):
    """A clock NTP has not set reading four days fast; the log's last set time is ``real``.
    Moves only when told to (``advance``), as the rig's clock does."""

    def __init__(self, real: datetime) -> None:
        self.fake = FakeClock(start=real + timedelta(days=4), is_synced=False)
        super().__init__(self.fake)
        self.raise_floor(real)

    def advance(self, seconds: float) -> None:
        self.fake.advance(seconds)


@pytest.mark.parametrize(
    ("direction", "alarm"),
    [
        # Quarantined by the real time, over by the clock's: no alarm raised, none shown
        # (before, the row's flag quarantine drew a quarantine_return card after a restart).
        ("in", None),
        # Revoked either way, a copied pass by one time only: the guard is called
        # (guard_needed), and before, the row kept no trace of it: no card after a restart.
        ("out", "guard_needed"),
    ],
)
def test_on_a_clock_ntp_has_not_set_the_card_is_the_alarm_the_engine_raised(
    tmp_path, direction, alarm
):
    real = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    clock = _FastUnsetClock(real)
    one_way = {"direction": direction}  # the lane's direction, not a button's
    rig = Rig(clock, tmp_path, policy={"mode": "pass_only", **HARD_PASSBACK}, site=one_way)
    try:
        text = rig.pass_text(household="1-1", holder="Wang L", start_days=-10)
        pass_id = rig.trust.verify(text).pass_id
        today = real.date()
        rig.lists.add_quarantine("1-1", None, today, today + timedelta(days=1), actor="guard")
        rig.lists.revoke(pass_id, "lost", actor="guard")
        if alarm:  # the pass went out a minute ago by the clock
            rig.history.record(pass_id, "1-1", "out", "pass", clock.now() - timedelta(minutes=1))
        rig.show(text, None)
        rig.run(1)
        raised = [m["alarm"] for m in rig.messages if m["type"] == "alarm" and "seq" in m]
        [row] = rig.events()
        live, restarted = _live_and_restarted(rig, clock)
    finally:
        rig.close()
    assert row["decision"] == "deny" and raised == ([alarm] if alarm else [])
    kinds = [(key, kind) for key, kind, *_ in restarted]
    assert kinds == ([(f"event:{row['seq']}", ALARM_KINDS[alarm])] if alarm else [])
    assert live == restarted
