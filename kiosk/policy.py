"""The rules that decide pass or deny: pure, so they are fast to test and safe to change.

``decide`` reads nothing but its arguments: no clock, no database, no devices. The engine
hands it what the devices said (``PassageInputs``), what the kiosk knows (``PolicyState``:
trust list, lists, passage history), the time, and the config.

Every rule that fails adds its reason code (docs/policy.md), so a denied resident and the guard see
*all* that is wrong ("expired and quarantined"), not just the first thing checked. The rules
and their codes are listed in docs/policy.md; in short:

==========================  ==============================  =====================================
rule                        reason                          effect
==========================  ==============================  =====================================
event log unwritable        ``store_fault``                 ``on_store_fault``: deny or manual
gate relay in fault         ``gate_fault``                  deny, guard (the gate cannot open)
reader fault                ``reader_fault``                ``on_reader_fault``: deny or manual
no code presented           ``no_pass``                     deny
pass format / key / sig     ``pass_malformed`` etc.         deny (forged: alarm)
validity window             ``pass_expired`` ...            deny
revoked                     ``pass_revoked``                deny
home quarantine             ``quarantined``                 deny in blocked directions (alarm);
                                                            coming home: pass, flag and alarm
observation (returnee)      ``under_observation``           ``observation_blocks``: flag or deny
quota                       ``quota_exceeded``              deny
anti-passback               ``passback``                    hard: deny; soft: pass + flag
closed hours                ``outside_hours``               deny (``hours.mode = "closed"``)
unstaffed hours             ``no_guard_on_duty``            what needs a guard: deny, no wait
temperature                 ``fever`` / ``temp_implausible``  deny (fever: alarm, guard)
                            / ``no_temperature``
thermometer fault           ``sensor_fault``                ``on_sensor_fault``: deny or manual
==========================  ==============================  =====================================

On a wall clock NTP has not set that reads later than the earliest the time can be
(``PassageInputs.earliest``: it may be right or days fast), the pass's rules are judged at
both times; what they disagree on is denied, flagged ``clock_not_set`` and the guard's.

A fault with ``manual`` is a *deny that needs the guard* (``needs_guard``): the gate stays shut
until a guard records ``manual_pass``/``manual_deny``. A bad reading never becomes a pass: a
temperature that is not a finite number inside the plausible range is ``temp_implausible``
whatever status it came with.

Re-measuring is the engine's job (``kiosk.engine``): it measures once more before handing a
fever or an implausible reading to ``decide``. ``should_remeasure`` states that rule for
anyone else driving ``decide`` (replay, tests).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from .config.policy import PolicySection, QuotaConfig
from .config.thermometer import ThermometryConfig
from .days import as_zone, within_spans
from .history import QUOTA_EXEMPT, role_flag
from .lists import Lists
from .passes import Pass, PassError
from .ports import History, PassVerifier

__all__ = [
    "ALARMS",
    "REASONS",
    "Decision",
    "PassageInputs",
    "PolicyState",
    "decide",
    "guard_on_duty",
    "quarantine_blocks",
    "quota_reached",
    "quota_used",
    "should_remeasure",
]

#: Every reason ``decide`` can give, in the order they are listed in a decision.
REASONS: tuple[str, ...] = (
    "store_fault",
    "gate_fault",
    "reader_fault",
    "sensor_fault",
    "no_pass",
    "pass_malformed",
    "pass_unknown_key",
    "pass_bad_signature",
    "pass_not_yet_valid",
    "pass_expired",
    "pass_revoked",
    "quarantined",
    "quarantine_unconfirmed",
    "under_observation",
    "quota_exceeded",
    "passback",
    "outside_hours",
    "no_guard_on_duty",
    "fever",
    "temp_implausible",
    "air_out_of_range",
    "no_temperature",
)
_ORDER = {code: i for i, code in enumerate(REASONS)}
#: Reasons that say the decision found a hold on the pass's household (a quarantine, one the
#: lists cannot say is over, an observed returnee, its quota of outings used): the guard's
#: manual pass over such a deny asks the hold again, and its alarm names the household.
HOLD_REASONS = frozenset(
    {"quarantined", "quarantine_unconfirmed", "under_observation", "quota_exceeded"}
)
#: Alarms and flags that say the same with no reason to deny: a quarantined household's
#: resident coming home on a lane whose direction is trusted (``quarantine_return``, flag
#: ``quarantine``) passes, and the guard's alarm must name the household.
HOLD_ALARMS = frozenset({"quarantine_breach", "quarantine_return"})
HOLD_FLAGS = frozenset({"quarantine"})

#: Alarms the guard must not miss, most urgent first (a decision carries the first that holds).
ALARMS: tuple[str, ...] = (
    "fever",
    "quarantine_breach",
    "forged_pass",
    "device_fault",
    "quarantine_return",
)

#: The bus alarm of a kiosk's deny that calls the guard and carries none of ``ALARMS``.
GUARD_NEEDED = "guard_needed"
#: The flag by which a kiosk's row records the bus alarm the engine raised for it
#: (``bus_alarm``): this, then the alarm's name (``alarm:quarantine_return``). The guard's
#: desk rebuilds that alarm's card from it after a restart (``kiosk.alarms``).
ALARM_FLAG = "alarm:"

Direction = Literal["in", "out"]


class TemperatureLike(Protocol):
    """``kiosk.thermometry.Temperature``: status ok|no_temperature|implausible|fault."""

    @property
    def status(self) -> str: ...

    @property
    def body_c(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class PassageInputs:
    direction: Direction
    code: str | None
    temperature: TemperatureLike | None
    reader_fault: bool = False
    store_fault: bool = False
    #: The relay did not answer its last command (a USB board unplugged): a pass could not
    #: open the gate, so nobody is recorded as passing through it; the guard lets them by.
    gate_fault: bool = False
    #: The direction came from hardware (a one-way kiosk, a reader per lane), not from a
    #: button anyone can press: only then may a quarantined household pass coming home.
    direction_trusted: bool = True
    #: The wall clock is synchronised (NTP): its date is the day's.
    clock_synced: bool = True
    #: While it is not: the earliest real time can be (``kiosk.clock.earliest``: the newest
    #: time known to have passed) when the clock reads later. The clock may be right or fast
    #: (a fast fake-hwclock, a hand mis-set that got saved): the pass's rules are judged at
    #: both times, and what they disagree on is the guard's (``clock_not_set``).
    earliest: datetime | None = None


class ObservingLike(Protocol):
    """``kiosk.observation.ObservationSnapshot``: who is under observation on a day."""

    def observing(self, household: str, holder: str | None, day: date) -> bool: ...


@dataclass(frozen=True, slots=True)
class PolicyState:
    trust: PassVerifier
    lists: Lists
    history: History
    observing: ObservingLike | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    decision: Literal["pass", "deny"]
    reasons: tuple[str, ...]
    pass_: Pass | None
    needs_guard: bool
    alarm: str | None
    flags: tuple[str, ...]
    #: Whether a guard was on duty when it was decided (``guard_on_duty``): the kiosk screen
    #: says this decision's referrals to the guard by it for as long as it shows it.
    on_duty: bool = True


@dataclass
class _Findings:
    """What the checks of one passage found, gathered as they run: the reasons to deny, the
    flags, whether a guard is needed and the alarms (``decide`` makes the ``Decision``)."""

    reasons: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    guard: list[bool] = field(default_factory=list)
    alarms: set[str] = field(default_factory=set)


def holds_household(decision: Decision) -> bool:
    """Whether ``decision`` found a hold on its pass's household: a reason of ``HOLD_REASONS``,
    or a quarantine alarm or flag (``HOLD_ALARMS``, ``HOLD_FLAGS``: a return home let in). Its
    event keeps the household then, even of a forgotten card (``kiosk.engine``): the alarm
    names it and a guard's manual pass over it is asked the hold."""
    return bool(
        HOLD_REASONS.intersection(decision.reasons)
        or HOLD_FLAGS.intersection(decision.flags)
        or decision.alarm in HOLD_ALARMS
    )


def bus_alarm(found: Decision | None, decision: str) -> str | None:
    """The alarm the engine raises on the bus for a passage decided ``found`` and recorded as
    ``decision``: its alarm (``ALARMS``), else ``GUARD_NEEDED`` for a deny that calls the
    guard; None for neither. The log's side of the rule is ``kiosk.alarms.alarm_from_event``:
    the card a logged passage raises after a restart is of this alarm's kind."""
    if found is None:
        return None
    if found.alarm:
        return found.alarm
    return GUARD_NEEDED if found.needs_guard and decision == "deny" else None


def alarm_flags(found: Decision | None, decision: str) -> tuple[str, ...]:
    """The flag recording ``bus_alarm`` on the row of the passage (``ALARM_FLAG``), if any."""
    raised = bus_alarm(found, decision)
    return (f"{ALARM_FLAG}{raised}",) if raised else ()


def recorded_alarm(flags: Iterable[str]) -> str | None:
    """The bus alarm a row's flags say the engine raised for it (``ALARM_FLAG``); None for a
    row that says none (one the engine raised none for, or logged before the flag)."""
    return next((f[len(ALARM_FLAG) :] for f in flags if f.startswith(ALARM_FLAG)), None)


def _fault(found: _Findings, code: str, mode: str) -> None:
    found.reasons.append(code)
    found.alarms.add("device_fault")
    if mode == "manual":
        found.guard.append(True)


def _check_temperature(
    t: TemperatureLike | None,
    cfg: PolicySection,
    thermo: ThermometryConfig,
    found: _Findings,
) -> None:
    reasons, guard, alarms = found.reasons, found.guard, found.alarms
    if t is None:
        reasons.append("no_temperature")
        return
    status = t.status
    if status == "fault":
        _fault(found, "sensor_fault", cfg.on_sensor_fault)
        return
    if status == "no_temperature":
        reasons.append("no_temperature")
        return
    if status == "implausible":
        # Air outside the calibration's trusted range: the guard checks by hand (the gate's
        # standing state; no per-person alarm). Anything else implausible: measure again.
        air = getattr(t, "reason", None) == "air_out_of_range"
        reasons.append("air_out_of_range" if air else "temp_implausible")
        return
    if status != "ok":  # an unknown status is a fault, never a pass
        _fault(found, "sensor_fault", cfg.on_sensor_fault)
        return
    body = t.body_c
    if (
        not isinstance(body, int | float)
        or isinstance(body, bool)
        or not math.isfinite(body)
        or not thermo.plausible_min_c <= body <= thermo.plausible_max_c
    ):
        reasons.append("temp_implausible")
        return
    if body >= thermo.fever_threshold_c:
        reasons.append("fever")
        alarms.add("fever")
        guard.append(True)


def _in_hours(now: datetime, cfg: PolicySection, tz: ZoneInfo) -> bool:
    """Whether ``now`` is within the hours, staffed or opening, read as the roster reads a
    guard's stretch (``kiosk.days.within_spans``)."""
    return within_spans(now, cfg.hours.windows(), tz)


def decide(
    inputs: PassageInputs,
    state: PolicyState,
    now: datetime,
    cfg: PolicySection,
    thermo: ThermometryConfig,
    tz: ZoneInfo,
) -> Decision:
    """Decide one passage. Pure: same arguments, same decision."""
    found = _Findings()
    reasons, flags, guard, alarms = found.reasons, found.flags, found.guard, found.alarms
    pass_: Pass | None = None
    direction = inputs.direction
    wants_pass = cfg.mode in ("full", "pass_only")
    wants_temp = cfg.mode in ("full", "temperature_only")

    if inputs.store_fault:
        _fault(found, "store_fault", cfg.on_store_fault)
    if inputs.gate_fault:
        _fault(found, "gate_fault", "manual")

    if wants_pass:
        if inputs.reader_fault and inputs.code is None:
            _fault(found, "reader_fault", cfg.on_reader_fault)
        elif inputs.code is None:
            reasons.append("no_pass")
        else:
            try:
                pass_ = state.trust.verify(inputs.code)
            except PassError as exc:
                reasons.append(exc.reason)
                if exc.reason == "pass_bad_signature":
                    alarms.add("forged_pass")
                    guard.append(True)
        if pass_ is not None:
            _check_pass_at_both(pass_, inputs, state, now, cfg, tz, found)

    floor = _floor_time(inputs, now)
    off_hours, hours_disputed = _off_hours(now, floor, cfg, tz)
    hours_apply = cfg.hours.applies_to == "both" or direction == "out"
    if off_hours and cfg.hours.mode == "closed" and hours_apply:
        reasons.append("outside_hours")
        if hours_disputed:  # open by one time: the guard looks
            _disputed(flags, "outside_hours")
            guard.append(True)

    if wants_temp:
        _check_temperature(inputs.temperature, cfg, thermo, found)

    on_duty = guard_on_duty(now, cfg, tz, earliest=floor)
    if guard and not on_duty:
        # Nobody on duty to come: deny now (the screen says where to call), keep the alarm.
        reasons.append("no_guard_on_duty")
        guard.clear()
    elif guard and cfg.hours.mode == "staffed" and hours_disputed:
        _disputed(flags, "outside_hours")  # on duty by one time: the call stands, the clock is said

    reasons = sorted(set(reasons), key=_ORDER.__getitem__)
    alarm = next((a for a in ALARMS if a in alarms), None)
    return Decision(
        decision="deny" if reasons else "pass",
        reasons=tuple(reasons) or ("ok",),
        pass_=pass_,
        needs_guard=bool(guard),
        alarm=alarm,
        flags=tuple(dict.fromkeys(flags)),
        on_duty=on_duty,
    )


def _check_pass_at_both(
    pass_: Pass,
    inputs: PassageInputs,
    state: PolicyState,
    now: datetime,
    cfg: PolicySection,
    tz: ZoneInfo,
    found: _Findings,
) -> None:
    """The pass's rules at the clock's time and, on an unsynchronised clock reading later than
    the earliest real time can be (``_floor_time``), at that time too (``_judged_at_both``)."""
    by_clock = _Findings()
    _check_pass(pass_, inputs, state, now, cfg, tz, by_clock)
    floor = _floor_time(inputs, now)
    if floor is None:
        _merge(found, by_clock, by_clock.alarms)
        return
    by_floor = _Findings()
    _check_pass(pass_, inputs, state, floor, cfg, tz, by_floor)
    _judged_at_both(found, by_clock, by_floor)


def guard_on_duty(
    now: datetime, cfg: PolicySection, tz: ZoneInfo, *, earliest: datetime | None = None
) -> bool:
    """Whether a guard is on duty at ``now`` by the staffed hours (``hours.mode = "staffed"``,
    the default): not when ``now`` is outside them and so is ``earliest``, the earliest real
    time can be on an unsynchronised clock that reads later (on duty by one of the two times,
    the guard is taken to be there and the clock is said). Hours off (a gate staffed round the
    clock) or closed hours (``mode = "closed"``, which say nothing of a guard): on duty.

    The one rule: ``decide`` denies what needs a guard with ``no_guard_on_duty`` by it, and
    the kiosk screen says its referrals to the guard by it (``ui.kiosk_screen``)."""
    if cfg.hours.mode != "staffed":
        return True
    floor = earliest if earliest is not None and earliest < now else None
    off, disputed = _off_hours(now, floor, cfg, tz)
    return disputed or not off


def _off_hours(
    now: datetime, floor: datetime | None, cfg: PolicySection, tz: ZoneInfo
) -> tuple[bool, bool]:
    """Outside opening hours at the clock's time ``now`` or, on an unsynchronised clock reading
    later than the earliest real time can be (``floor``), at that time (either counts: a fast
    clock opened a closed gate); and whether the two times disagree (the guard's,
    ``clock_not_set``)."""
    if not cfg.hours.enabled:
        return False, False
    outside = {not _in_hours(at, cfg, tz) for at in (now, floor or now)}
    return True in outside, len(outside) > 1


def _floor_time(inputs: PassageInputs, now: datetime) -> datetime | None:
    """The earliest real time can be, when the clock is not synchronised and reads later."""
    earliest = inputs.earliest
    if inputs.clock_synced or earliest is None or earliest >= now:
        return None
    return earliest


def _merge(found: _Findings, each: _Findings, alarms: set[str]) -> None:
    found.reasons.extend(each.reasons)
    found.flags.extend(each.flags)
    found.guard.extend(each.guard)
    found.alarms |= alarms


def _judged_at_both(found: _Findings, one: _Findings, other: _Findings) -> None:
    """What two judgements of one pass (the clock's time, the floor's) come to. The clock may
    be right or days fast. Agreeing, as either. A reason both find (revoked, expired at both,
    a quarantine at both) denies by itself, as on a set clock: the disputed ones are dropped,
    no guard is called for them. Disagreeing on everything else, the guard decides (flag
    ``clock_not_set``) on every reason either found: a quarantine or an observation the clock
    has ended, a pass it has expired, an outing it has moved out of the quota's period are
    not the machine's to wave through or to refuse alone. An alarm (a quarantine breach) only
    when both times raise it."""
    alarms = one.alarms & other.alarms
    mine, theirs = set(one.reasons), set(other.reasons)
    if mine == theirs:
        _merge(found, one, alarms)
        _merge(found, other, alarms)
        return
    agreed = mine & theirs
    if agreed:
        found.reasons.extend(sorted(agreed, key=_ORDER.__getitem__))
        both_flags = set(one.flags) & set(other.flags)
        found.flags.extend(
            f
            for f in (*one.flags, *other.flags)
            if not f.startswith("clock_not_set") or f in both_flags
        )
        found.guard.extend([True] if any(one.guard) and any(other.guard) else [])
        found.alarms |= alarms
        return
    _merge(found, one, alarms)
    _merge(found, other, alarms)
    for reason in sorted(mine | theirs, key=_ORDER.__getitem__):
        _disputed(found.flags, reason)
    found.guard.append(True)


def _disputed(flags: list[str], reason: str) -> None:
    """``reason`` turns on a time the gate's clock cannot vouch for: the guard decides. Flag
    ``clock_not_set`` (the event's, as ever) and ``clock_not_set:<reason>``, which says it
    is this reason that is disputed (``kiosk.alarms.alarm_from_event`` downgrades only
    those: a quarantine both times found stays a breach when the hours are disputed)."""
    flags.extend(("clock_not_set", f"clock_not_set:{reason}"))


def _check_pass(
    pass_: Pass,
    inputs: PassageInputs,
    state: PolicyState,
    now: datetime,
    cfg: PolicySection,
    tz: ZoneInfo,
    found: _Findings,
) -> None:
    reasons, flags, guard = found.reasons, found.flags, found.guard
    direction = inputs.direction
    if now < pass_.valid_from:
        reasons.append("pass_not_yet_valid")
        if not inputs.clock_synced:
            # A clock NTP has not set is behind (a lower bound at best): the pass may well be
            # valid. Not the machine's call: the guard looks at it.
            _disputed(flags, "pass_not_yet_valid")
            guard.append(True)
    elif now >= pass_.valid_until:
        reasons.append("pass_expired")
    lists = state.lists
    if lists.is_revoked(pass_.pass_id):
        reasons.append("pass_revoked")
    today = now.astimezone(tz).date()
    _check_quarantine(pass_, inputs, lists, now, today, cfg, tz, found)
    observed = state.observing is not None and state.observing.observing(
        pass_.household, pass_.holder, today
    )
    if observed or "observation" in pass_.flags or lists.under_observation(pass_.household, today):
        flags.append("observation")
    if observed and observation_blocks(cfg, direction):
        reasons.append("under_observation")
    elif observed and cfg.observation_blocks != "none" and not inputs.direction_trusted:
        # As with quarantine: "coming home" said by a screen button, not by the lane, could be
        # an observed returnee walking out: the guard looks.
        reasons.append("under_observation")
        flags.append("direction_unverified")
        guard.append(True)
    if "escort" in pass_.flags:
        flags.append("escort")
    # The pass's role, whatever the quota's setting now: a quota switched on or narrowed
    # later judges this exit by its roles then (``kiosk.history.counted_outing``).
    flags.append(role_flag(pass_.role))
    quota = cfg.quota
    going_out = direction == "out"
    if going_out and quota_reached(quota, state.history, pass_.household, pass_.role, now, tz=tz):
        reasons.append("quota_exceeded")
    elif quota.enabled and pass_.role not in quota.roles:
        # A staff member's or a delivery's exit on the household's code is not the
        # household's outing: the history does not count it (``QUOTA_EXEMPT``). Their way in
        # is flagged too (what the pass is, which the record keeps no other way): a guard's
        # decision keeps the flag, so one let out after a deny coming in is no outing either,
        # nor held for the household's used-up quota (``ui.guard.registrations.subject_holds``).
        flags.append(QUOTA_EXEMPT)
    pb = cfg.passback
    if pb.enabled and pb.window_min > 0:
        last = state.history.last_passage(pass_.pass_id, direction)
        window = timedelta(minutes=pb.window_min)
        # Either way round: after a wall-clock step backwards "last" may lie in the future.
        if last is not None and abs(now - last) < window:
            if pb.mode == "hard":
                # A copied pass: denied, and the guard may override (manual_pass).
                reasons.append("passback")
                guard.append(True)
            else:
                flags.append("passback")


def _check_quarantine(
    pass_: Pass,
    inputs: PassageInputs,
    lists: Lists,
    now: datetime,
    today: date,
    cfg: PolicySection,
    tz: ZoneInfo,
    found: _Findings,
) -> None:
    reasons, flags, guard, alarms = found.reasons, found.flags, found.guard, found.alarms
    direction = inputs.direction
    if lists.quarantine_for(pass_.household, pass_.holder, today) is not None:
        if quarantine_blocks(cfg, direction):
            reasons.append("quarantined")
            alarms.add("quarantine_breach")
            guard.append(True)
        elif not inputs.direction_trusted:
            # "Coming home" said by a screen button, not by the lane: the guard looks.
            reasons.append("quarantined")
            flags.append("direction_unverified")
            alarms.add("quarantine_return")
            guard.append(True)
        else:
            flags.append("quarantine")
            alarms.add("quarantine_return")
        return
    stale_after_h = cfg.lists_stale_after_h
    why = _quarantine_unconfirmed(pass_, inputs.clock_synced, lists, now, today, stale_after_h, tz)
    if why is not None and (quarantine_blocks(cfg, direction) or not inputs.direction_trusted):
        # The lists cannot say whether the quarantine is over: the guard decides, not the
        # machine alone (the office may have extended it in a list this gate never got).
        reasons.append("quarantine_unconfirmed")
        if why == "clock_not_set":
            _disputed(flags, "quarantine_unconfirmed")
        else:
            flags.append(why)
        guard.append(True)


def _quarantine_unconfirmed(
    pass_: Pass,
    clock_synced: bool,
    lists: Lists,
    now: datetime,
    today: date,
    stale_after_h: float,
    tz: ZoneInfo,
) -> str | None:
    """Why the gate cannot tell that this person is not quarantined: ``clock_not_set`` when
    a quarantine of theirs starts after the date of a clock NTP has not set (a lower bound at
    best: the days the Pi was off are not in it); ``lists_stale`` when one, over by the gate's
    lists, ended after the gate's last confirmed sync with the office and none came within
    ``lists_stale_after_h``. None when the gate is sure."""
    if not clock_synced and lists.quarantine_after(pass_.household, pass_.holder, today):
        return "clock_not_set"
    fresh = lists.freshness
    if fresh.bundle_version == 0 or not fresh.is_stale(now, stale_after_h):
        # Lists the office never sent (the guard's, CSV imports) have no list this gate
        # missed, and only an edit would make them fresh: nothing to refer, for ever.
        return None
    synced = fresh.synced_at()
    since = synced.astimezone(tz).date() if synced is not None and synced <= now else None
    if lists.quarantine_unconfirmed(pass_.household, pass_.holder, today, since) is not None:
        return "lists_stale"
    return None


def quarantine_blocks(cfg: PolicySection, direction: str) -> bool:
    """Whether home quarantine stops a passage in ``direction``: going out always, coming home
    too with ``quarantine_blocks = "both"`` (the gate's rule; the console asks it as well)."""
    return direction == "out" or cfg.quarantine_blocks == "both"


def observation_blocks(cfg: PolicySection, direction: str) -> bool:
    """Whether a returnee's observation stops a passage in ``direction``
    (``observation_blocks``: ``out`` going out, ``both`` either way, ``none`` never): the
    gate's rule; the console asks it as well."""
    return cfg.observation_blocks in (direction, "both")


def quota_reached(
    quota: QuotaConfig,
    history: History,
    household: str,
    role: str,
    now: datetime,
    *,
    tz: ZoneInfo | str,
) -> bool:
    """Whether a pass of ``role`` on ``household``'s code going out at ``now`` is
    ``quota_exceeded``: the quota is on, counts ``role``, and the household's counted exits in
    the rolling period reached it. The one statement of the rule (``decide``, the map).

    The period is ``period_days`` days on the site's clock (``tz``): out on Saturday at 10:00,
    out again from Monday at 10:00, also across a daylight-saving change (47 or 49 hours
    then), as a compound's office counts "one outing every two days" (docs/policy.md)."""
    if not quota.enabled or role not in quota.roles:
        return False
    local = now.astimezone(as_zone(tz))  # the history cuts the period on now's own clock
    return history.exits_in_period(household, local, quota.period_days) >= quota.exits


def quota_used(
    quota: QuotaConfig, history: History, now: datetime, *, tz: ZoneInfo | str
) -> frozenset[str]:
    """The households a resident of which going out at ``now`` would be ``quota_exceeded``
    (none while the quota is off): the compound map's ``quota_used`` mark."""
    return frozenset(
        h for h in history.households() if quota_reached(quota, history, h, "resident", now, tz=tz)
    )


def should_remeasure(
    decision: Decision, thermo: ThermometryConfig, remeasured: frozenset[str] | set[str]
) -> str | None:
    """What to measure again before committing ``decision``, if anything.

    One automatic re-measure before a fever deny (``remeasure_on_fever``: a wrist just out of
    a warm pocket reads high) and one on an implausible reading (hair, a hat, a glove); never
    twice for the same cause. Returns ``"fever"``/``"implausible"`` or None. ``remeasured``
    holds the causes already re-measured in this passage."""
    if "temp_implausible" in decision.reasons and "implausible" not in remeasured:
        return "implausible"
    if "fever" in decision.reasons and thermo.remeasure_on_fever and "fever" not in remeasured:
        return "fever"
    return None


def describe(decision: Decision) -> dict[str, Any]:
    """JSON-ready summary without personal data (for log lines and the kiosk screen)."""
    return {
        "decision": decision.decision,
        "reasons": list(decision.reasons),
        "needs_guard": decision.needs_guard,
        "alarm": decision.alarm,
        "flags": list(decision.flags),
        "role": decision.pass_.role if decision.pass_ else None,
    }
