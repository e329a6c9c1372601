"""The guard's desk after a restart shows what the live bus showed: for every passage the
engine raises a bus alarm about (the policy's own table of rules, and the combinations of
them below), the card its logged event raises when the desk reads the log back is the card
the desk drew on hearing the alarm live, of the bus alarm's kind."""

from __future__ import annotations

import pytest
from guard_support import add_event
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

from kiosk.alarms import ALARM_KINDS, AlarmDesk
from kiosk.lists import Lists, QuarantineEntry, Revocation
from kiosk.policy import bus_alarm

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
        flags=decided.flags,
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
        household="1-1", pass_id=GOOD_PASS.pass_id, flags=("quarantine", "role:resident"),
    )  # fmt: skip
    [card] = AlarmDesk(guard_core.store, guard_core.clock).open_alarms([])
    assert (card.kind, card.detail, card.household, card.holder) == (
        "quarantine",
        "quarantine_return",
        "1-1",
        None,
    )
