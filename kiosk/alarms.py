"""The guard's alarms: which events and bus messages raise one, and which are still open.

An alarm is *derived*, never stored on its own: a denied event with an alarming reason (fever,
quarantine, a forged pass, a device fault) raises one keyed by its ``seq``, of the kind of the
bus alarm the engine raised for it (``bus_alarm_shown``; a guard's deny of a fever found by
hand carries ``fever`` too: the same card as the gate's); a bus ``alarm``
message raises one (a device's is keyed by the device, so a fault and its standing health entry
make one card); a device in fault in the health report stands as an alarm while the fault
lasts. Acknowledgements are audit rows (``alarm_ack``), so after a restart the desk reads the
last ``lookback_h`` hours of events and acknowledgements back and shows the same open alarms.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from kiosk import queries
from kiosk.bus import EventBus, Subscription
from kiosk.clock import Clock, ClockReading
from kiosk.config.policy import QuotaConfig
from kiosk.engine import HELD_DROPPED, LATE_COMMIT
from kiosk.links import not_opened
from kiosk.lists import REVOKED_PASSED, same_text
from kiosk.peers import LATE_BATCH, Breach, held_rows, late_breaches
from kiosk.pihealth import CONDITIONS as PI_CONDITIONS
from kiosk.policy import GUARD_NEEDED, recorded_alarm
from kiosk.record import DECISIONS
from kiosk.store import FORGET_ACTION, MAX_SKIPPED, format_ts
from kiosk.unreadable import UNREADABLE

log = logging.getLogger(__name__)

#: The bus message the alarm desk publishes once a bus ``alarm`` it heard changed its open
#: alarms (``AlarmDesk.follow``): every live stream draws them again if they differ from
#: what it drew.
ALARMS_HEARD = "alarms_heard"
#: The most bus messages the desk's subscription holds while it reads the log for one.
DESK_QUEUE = 1024

#: The reason codes that say why the engine raised a bus alarm (``kiosk.policy.bus_alarm``,
#: recorded on a kiosk's row: flag ``alarm:<name>``), by that alarm's name: the first of them
#: the row holds is its card's detail (else the alarm's name; a ``guard_needed`` with none of
#: them, its first reason).
RAISED_BY: dict[str, tuple[str, ...]] = {
    "fever": ("fever",),
    "quarantine_breach": ("quarantined",),
    "quarantine_return": ("quarantined",),
    "forged_pass": ("pass_bad_signature",),
    "device_fault": ("sensor_fault", "reader_fault", "store_fault", "gate_fault"),
}
#: The kiosk's flag on a quarantined resident it let home.
RETURN_FLAG = "quarantine"
#: The kiosk's own decisions (a guard's carry a passage's flags on: no alarm of theirs).
KIOSK_DECISIONS = ("pass", "deny")
#: A row that records no bus alarm (logged before the flag ``alarm:<name>``, a guard's, or
#: one the engine raised none for) is read as it always was: the reason codes of a denied
#: event that raise an alarm, by alarm kind (checked in this order).
ALARM_REASONS = {
    "fever": "fever",
    "quarantined": "quarantine",
    # The lists cannot say the quarantine is over (stale lists, an unset clock): a referral.
    "quarantine_unconfirmed": "guard",
    # Referrals too (kiosk.policy sends the person to the guard): a copied pass, an observed
    # returnee walking out; an early pass only on a clock NTP has not set (CLOCK_REFERRALS).
    "passback": "guard",
    "under_observation": "guard",
    "pass_bad_signature": "forged",
    "pass_unknown_key": "foreign",  # another compound's pass: not a forgery
    "sensor_fault": "device",
    "reader_fault": "device",
    "store_fault": "device",
}
#: Reasons that refer the person to the guard (a ``guard`` card) only on a clock NTP has not
#: set (the event's flag ``clock_not_set``): the pass may well be valid, the outing may be
#: outside the quota's period (a clock behind, or one ahead of the newest time known to have
#: passed: ``kiosk.policy``). After ALARM_REASONS.
#: A quarantine the two times disagree on is such a referral too, never a breach alarm (a
#: clock that is right but not synchronised has ended it: ``kiosk.policy._judged_at_both``).
CLOCK_REFERRALS = (
    "quarantined",
    "under_observation",
    "pass_not_yet_valid",
    "pass_expired",
    "quota_exceeded",
    "outside_hours",
)
#: Bus alarm names (``kiosk.policy.ALARMS`` and the engine's device alarms) by alarm kind.
ALARM_KINDS = {
    "fever": "fever",
    "quarantine_breach": "quarantine",
    "quarantine_return": "quarantine",
    "quarantined": "quarantine",
    "forged_pass": "forged",
    "pass_bad_signature": "forged",
    "pass_unknown_key": "foreign",
    "device_fault": "device",
    "sensor_fault": "device",
    "reader_fault": "device",
    "store_fault": "device",
    "gate_fault": "device",
    "gate_not_locked": "device",
    # The air outside the thermometer's trusted range: one standing card, every visitor by hand.
    "air_out_of_range": "device",
    "guard_needed": "guard",
    # A record written or left out after its decision was told (``RECORD_ALARMS``).
    HELD_DROPPED: "record",
    LATE_COMMIT: "record",
}
#: The engine's alarms about a record written or left out after its decision was told: a
#: guard's pass held for the log that was not written (``kiosk.engine.HELD_DROPPED``), a
#: commit that landed past its deadline (``LATE_COMMIT``); each with its audit row, which
#: rebuilds the card after a restart (``AlarmDesk._scan_records``). A card of their own each
#: (``record_key``), never folded into another card on the record they name; their words
#: are ``alarm.<name>`` and ``alarm.todo.<name>`` (ui/messages.toml).
RECORD_ALARMS = (HELD_DROPPED, LATE_COMMIT)
#: Device alarms of the engine, by the device they are about.
ALARM_DEVICES = {
    "sensor_fault": "thermometer",
    "reader_fault": "reader",
    "gate_fault": "gate",
    "gate_not_locked": "gate",
    "store_fault": "store",
    "air_out_of_range": "air",
}
#: The audit action of an acknowledgement (read back at start).
ACK_ACTION = "alarm_ack"
#: A guard's card about a passage on a pass the office revoked before this gate heard of it
#: (``kiosk.lists.REVOKED_PASSED`` in a ``lists.bundle`` audit row): this, then its ``seq``.
REVOKED_KEY = "revoked:"
#: Its ``detail``.
REVOKED_DETAIL = "revoked_pass_passed"
#: The audit action naming those passages.
BUNDLE_ACTION = "lists.bundle"
#: A guard's card about an outing over the quota that peers' passages showed late (this,
#: then ``kiosk.peers.Breach.key``): the gate could not know when it let the household out.
QUOTA_KEY = "quota:"
#: Its ``detail``.
QUOTA_DETAIL = "quota_breach_late"
#: The keys' beginnings of the records' cards (``record_key``).
RECORD_PREFIXES = tuple(f"{name}:" for name in RECORD_ALARMS)
#: Events scanned per read while catching up.
SCAN_BATCH = 500
#: How a guard closes an alarm (what was done), the first is the default.
RESOLUTIONS = ("handled", "sent_home", "false_alarm", "escalated")
#: Kinds about a person: repeated denials of the same person (household and holder, or the
#: pass) for the same kind within this many seconds of the last one are one incident, one
#: alarm, while it is open.
PERSON_KINDS = frozenset({"fever", "quarantine", "forged", "foreign", "guard"})
INCIDENT_WINDOW_S = 600
#: The passages an incident lists (its first and its latest): a pass left before the reader
#: all night is one card, and its count (``Alarm.more``) says the rest.
SEQS_KEPT = 10
#: The stamps of logged passages a card keeps (``Alarm.logged``): its first and its latest,
#: as ``SEQS_KEPT``; ``Alarm.logged_folded`` counts those between no longer kept (a pass
#: left before the reader over a nine-hour shift: a bounded card, not a stamp a passage).
LOGGED_KEPT = SEQS_KEPT
#: The key of a bus alarm's card of no device: then the alarm's name, and ``:`` and the
#: passage's id (``passage``) for a passage's alarm the log did not take (``seq`` None).
BUS_KEY = "bus:"
#: How far apart two starts said of one standing fault may be dated and still be one start
#: (``AlarmBoard.take_start``): a compound gate's stale spell, dated again from the monotonic
#: clock at each health report, microseconds apart; a raise heard on the bus a moment after
#: the engine's raise that the report dates it by.
RESTATED_S = 0.5
#: How many raises the health report told first a device card keeps the stamps of, until
#: the bus's messages of them are heard (``Alarm.taken_ns``).
TAKEN_KEPT = 8
#: The key of the card counting open alarms that no longer fit on a full board (then ``:``
#: and the key of the first of them, so a stale page cannot close a newer card).
OVERFLOW_KEY = "board:overflow"


class AlarmGrown(ValueError):
    """A close refused: ``alarm`` counts ``more`` passages (the overflow card: alarms) than
    the page that sent it drew (``AlarmDesk.close``'s ``seen``); nothing was closed."""

    def __init__(self, alarm: Alarm, more: int) -> None:
        super().__init__(f"{alarm.key}: {more} more since the page drew it")
        self.alarm, self.more = alarm, more


class AlarmClosing(ValueError):
    """A close refused at once: another guard's close (``who``) holds the alarm, its row
    being written (``AlarmDesk.close``); nothing was closed."""

    def __init__(self, who: str) -> None:
        super().__init__("another close of it is being written")
        self.who = who


@dataclass
class Alarm:
    key: str
    kind: str  # fever | quarantine | forged | foreign | device | guard | other | overflow
    ts: str
    seq: int | None = None
    detail: str = ""
    acked_by: str | None = None
    acked_at: str | None = None
    # Whom and what it is about (from the event): shown masked for the viewer's role.
    household: str | None = None
    holder: str | None = None
    pass_id: str | None = None
    #: A vehicle's plate (a registered car's alarm): the guard looks for the car.
    plate: str | None = None
    temp_c: float | None = None
    direction: str | None = None
    #: The passages of this incident, oldest first (``seq`` is the first): the first and the
    #: latest ``SEQS_KEPT`` less one; ``more`` counts those between them no longer listed,
    #: and on a card of no passage (a device's) the times it happened again (``join``).
    seqs: list[int] = field(default_factory=list)
    more: int = 0
    resolution: str | None = None
    note: str = ""
    #: On the overflow card: the open alarms that left the full board.
    dropped: int = 0
    #: Why a compound gate's standing alarm stands (``peer_alarms``): ``stale``, ``forged``,
    #: ``unsigned`` or ``held``; the Pi's power card's (``power_cause``): ``under_voltage``,
    #: ``supply``, ``heat`` or ``unknown``; a late commit's (``RECORD_ALARMS``): ``denied``
    #: when the log says pass for a passage the screen denied.
    cause: str = ""
    #: Whose decision a record's card is about (``RECORD_ALARMS``: the guard whose pass held
    #: for the log was not written).
    operator: str | None = None
    #: False when ``ts`` (its latest passage's) was stamped by a clock not synchronised (a
    #: Pi booted without network: 1970); ``dated_ts`` is then when it happened once
    #: something dates it (``AlarmDesk.open_alarms``: ``kiosk.queries.dated_times``).
    clock_synced: bool = True
    dated_ts: str | None = None
    #: An alarm raised by a bus message while the clock was not synchronised (a device's
    #: fault, no passage to date it by): this boot's monotonic clock when it was raised,
    #: which dates it once NTP steps the clock (``AlarmDesk._date_open``).
    mono_ns: int | None = None
    #: The boot and monotonic time of the passage it is about (of its latest, once it counts
    #: several): two of one boot are that far apart, whatever NTP did to the clock between.
    at_boot: tuple[str, int] | None = None
    #: An outing over the quota found late (``QUOTA_DETAIL``): the gate and time of the
    #: outing before it, then of the outing itself.
    passages: list[tuple[str, str]] = field(default_factory=list)
    #: The passages it was built from besides ``seqs``, ``(gate, seq)``: this gate's events
    #: and the peers' passages held here (a breach's two outings); once retention purged one,
    #: the card names nobody (``AlarmDesk._forget_purged``).
    sources: list[tuple[str, int]] = field(default_factory=list)
    #: How each of ``passages`` is dated (``kiosk.queries.dated``'s ``dating``: ``clock``,
    #: ``boot`` once this gate's outing stamped before NTP stepped the clock is dated, or
    #: ``unsynced``: what a clock not set said); empty until the desk dated them.
    passages_dating: list[str] = field(default_factory=list)
    #: A referral on a clock not synchronised (``CLOCK_REFERRALS``): every reason the event
    #: was denied for, ``detail`` first among them; the card says each.
    reasons: list[str] = field(default_factory=list)
    #: A card raised by bus messages of no passage: the engine's stamp (``mono_ns``) of the
    #: newest one taken (another console's stream hearing it again is not news), and
    #: whether its fault was heard cleared
    #: since (the next raise is the fault happening again). On a standing alarm of the
    #: health report (``device_alarms``): the engine's stamp of its fault's raise, if known.
    heard_ns: int | None = None
    cleared: bool = False
    #: The engine's stamps of the raises the health report told first and this card counted
    #: (``AlarmBoard.take_start``), each until the bus's message of it is heard (``hear``
    #: drops that raise, and only it: the returns before it the bus tells still count);
    #: the newest ``TAKEN_KEPT``.
    taken_ns: list[int] = field(default_factory=list)
    #: The stamps ``(boot_id, mono_ns)`` of the passages it counts that the log holds
    #: (``seqs``), each one's: a bus message about any of them heard after their rows were
    #: read is no passage more (``AlarmBoard.add``), whichever came first.
    logged: list[tuple[str, int]] = field(default_factory=list)
    #: How many stamps of ``logged`` were folded (``LOGGED_KEPT``: its first and latest
    #: kept), and, of each boot, the lowest and highest of them (``folded_span``): a bus
    #: message heard late about a passage of this card's person between them is one the
    #: card counts already (``counts_logged``), never a passage more.
    logged_folded: int = 0
    folded_span: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: The passages it counts that the log had not taken when their alarm was heard (a
    #: fever while the storage failed: ``BUS_KEY``, the name and the passage), each by the
    #: stamp its row will carry, ``(boot_id, mono_ns)``: the row the engine's backlog writes
    #: later is taken into this card (``take_row``), open or closed, never a second card.
    unlogged: list[tuple[str, int]] = field(default_factory=list)
    #: A device's card: when its incident began (the fault's, the power spell's, the peer's
    #: stale spell's start; a bus raise's time), its identity: a fault begun after its card
    #: was closed is a new card (``AlarmBoard.take_standing``), a close from a page that drew
    #: another incident of the same device closes nothing (``AlarmDesk.close``'s
    #: ``incidents``), and a close read back at start closes it again only if it had begun
    #: by then (``AlarmBoard._close_if_acked_before``). Empty: not known.
    since: str = ""
    #: A device's open card: the latest start of its fault said since it opened (by the
    #: health report, or its raise heard again on the bus); a later one said by the report
    #: is the fault gone and back meanwhile, though each look saw it standing
    #: (``AlarmBoard.take_start``). Empty: none said yet.
    began_seen: str = ""

    @property
    def times(self) -> int:
        """How many times this incident happened: its passages (listed in ``seqs`` or not),
        or, a card of no passage, once and ``more`` times again."""
        return max(len(self.seqs) + len(self.unlogged), 1) + self.more

    @property
    def count(self) -> int:
        """What its card counts, which only grows while it is open: the incident's passages
        (``times``), the overflow card's alarms that left the board (``dropped``). A page's
        form sends it back as drawn: a close from a page that drew fewer is refused
        (``AlarmDesk.close``'s ``seen``), never closing what the guard did not see."""
        return self.dropped if self.kind == "overflow" else self.times

    def take_seqs(self, seqs: list[int]) -> bool:
        """Count the passages ``seqs`` of a repeat in this incident: those after its latest
        (one it counted already, listed or not, is not counted twice), the list bounded to
        its first and latest ``SEQS_KEPT``; whether one was new."""
        latest = self.seqs[-1] if self.seqs else None
        new = [s for s in seqs if latest is None or s > latest]
        self.seqs.extend(new)
        excess = len(self.seqs) - SEQS_KEPT
        if excess > 0:
            del self.seqs[1 : 1 + excess]
            self.more += excess
        return bool(new)

    def take_logged(self, stamps: list[tuple[str, int]]) -> None:
        """Keep the stamps ``stamps`` of logged passages this card counts (those it keeps
        already once), bounded to its first and latest ``LOGGED_KEPT``: the ones between are
        folded, counted in ``logged_folded``."""
        self.logged.extend(s for s in dict.fromkeys(stamps) if s not in self.logged)
        excess = len(self.logged) - LOGGED_KEPT
        if excess > 0:
            for boot, mono in self.logged[1 : 1 + excess]:
                low, high = self.folded_span.get(boot, (mono, mono))
                self.folded_span[boot] = (min(low, mono), max(high, mono))
            del self.logged[1 : 1 + excess]
            self.logged_folded += excess

    def counts_logged(self, other: Alarm) -> bool:
        """Whether the passage of ``other``, a bus message's the log had not taken when it
        was heard (``unlogged``), is one this card counts from the log: its stamp kept
        (``logged``), or, of the same incidents (``alike``), between the stamps folded of
        its boot (``folded_span``)."""
        if set(self.logged).intersection(other.unlogged):
            return True
        return self.alike(other) and any(
            span[0] <= mono <= span[1]
            for boot, mono in other.unlogged
            if (span := self.folded_span.get(boot)) is not None
        )

    def join(self, other: Alarm) -> bool:
        """Count ``other``, the same incident happening again on this card: its passages not
        counted yet (``take_seqs``), or, of no passage (a bus alarm: a device failing again),
        one more time; the card then says when the latest happened. Whether it counted."""
        if other.seqs:
            if not self.take_seqs(other.seqs):
                return False
            self.take_logged(other.logged)
        elif other.unlogged:  # a passage the log has not taken yet: its row comes later
            new = [s for s in other.unlogged if s not in self.unlogged and s not in self.logged]
            if not new or self.counts_logged(other):
                return False  # counted already (its row read, or its message heard)
            self.unlogged.extend(new)
        else:
            self.more += 1
        if not _before(other, self):  # an older passage heard late: the card keeps its latest
            self.ts, self.temp_c = other.ts, other.temp_c or self.temp_c
            self.clock_synced, self.dated_ts = other.clock_synced, other.dated_ts
            self.at_boot, self.mono_ns = other.at_boot, other.mono_ns
        return True

    def takes_row(self, other: Alarm) -> bool:
        """Whether ``other``, an alarm the log's row raises, is that of a passage this card
        counts as not taken by the log (``unlogged``): the row the engine's backlog wrote
        once the storage worked again, the same passage, whether this card is open or
        closed."""
        return bool(other.seqs) and other.at_boot is not None and other.at_boot in self.unlogged

    def take_row(self, other: Alarm) -> None:
        """Take ``other``'s row (``takes_row``) into this card: its passage now on record,
        counted once, and whom and what it says where the bus message did not."""
        assert other.at_boot is not None
        self.unlogged.remove(other.at_boot)
        self.take_seqs(other.seqs)
        self.take_logged([other.at_boot])
        self.seq = self.seq if self.seq is not None else other.seq
        for name in ("household", "holder", "pass_id", "plate", "temp_c", "direction"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(other, name))

    @property
    def subject(self) -> str | None:
        """Whom the alarm is about, for grouping an incident: the person (household and
        holder, however spelled: ``kiosk.lists.same_text``), else the pass, else the
        household. Two people of one household are two alarms: a card names one person and
        shows that person's reading."""
        if self.household and self.holder:  # as the gate's rules match them (same_text)
            return f"{same_text(self.household)}\0{same_text(self.holder)}"
        return self.pass_id or (same_text(self.household) if self.household else None)

    def absorbs(self, other: Alarm) -> bool:
        """Whether ``other`` is the same incident: same kind and person (``alike``), still
        open, close in time."""
        return (
            not self.acked_by and self.alike(other) and _apart_s(self, other) <= INCIDENT_WINDOW_S
        )

    def alike(self, other: Alarm) -> bool:
        """Whether ``other`` is of the incidents this card counts: same kind and person, the
        same sort of referral (a quota breach, a pass found revoked late are their own)."""
        return (
            self.kind == other.kind
            and self.kind in PERSON_KINDS
            and QUOTA_DETAIL not in (self.detail, other.detail)  # each breach is its own card
            # a pass found revoked late is its own card, never "one more time" of a referral
            and (self.detail == REVOKED_DETAIL) == (other.detail == REVOKED_DETAIL)
            and self.subject is not None
            and self.subject == other.subject
        )


def _happened(alarm: Alarm) -> tuple[bool, str]:
    """Where a card sorts by when it happened (``AlarmBoard.open``, newest last): its dated
    time, or its stamp; one stamped on a clock not set and not dated yet after all (its
    stamp is that clock's guess, 1970 or hours behind: the raw stamp put it below
    yesterday's cards), among such by their stamps."""
    undated = not alarm.clock_synced and alarm.dated_ts is None
    return undated, alarm.dated_ts or alarm.ts


def _before(a: Alarm, b: Alarm) -> bool:
    """Whether ``a``'s passage happened before ``b``'s: by the monotonic clock when of one
    boot, else by their times."""
    if a.at_boot is not None and b.at_boot is not None and a.at_boot[0] == b.at_boot[0]:
        return a.at_boot[1] < b.at_boot[1]
    return (a.dated_ts or a.ts) < (b.dated_ts or b.ts)


def _apart_s(a: Alarm, b: Alarm) -> float:
    """How far apart two alarms' passages were: by the monotonic clock when of one boot (a
    stamp of 1970 and one after NTP set the clock are minutes apart, not 56 years); of two
    boots, by their times when both are known (synchronised or dated), else too far (two
    boots that both read 1970 are not one incident)."""
    if a.at_boot is not None and b.at_boot is not None:
        if a.at_boot[0] == b.at_boot[0]:
            return abs(a.at_boot[1] - b.at_boot[1]) / 1e9
        if not all(x.clock_synced or x.dated_ts for x in (a, b)):
            return math.inf
    return _seconds_between(a.dated_ts or a.ts, b.dated_ts or b.ts)


def _later(a: str, b: str) -> bool:
    """Whether time ``a`` is after time ``b`` (ISO 8601 both); False when either is no time."""
    return _order(a, b) == 1


def _apart_by(later: str, earlier: str) -> float:
    """How many seconds time ``later`` is after ``earlier`` (ISO 8601 both); 0 when it is
    not after, or either is no time."""
    try:
        gap = (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()
    except (ValueError, TypeError):
        return 0.0
    return max(gap, 0.0)


def _begun_by(since: str, when: str) -> bool:
    """Whether an incident that began at ``since`` had begun by ``when`` (a close's time);
    False when either is no time."""
    return _order(since, when) in (-1, 0)


def _order(a: str, b: str) -> int | None:
    """-1, 0 or 1 as time ``a`` is before, at or after ``b``; None when either is no time."""
    try:
        x, y = datetime.fromisoformat(a), datetime.fromisoformat(b)
        return (x > y) - (x < y)
    except (ValueError, TypeError):  # TypeError: one naive, one with its zone
        return None


def same_incident(drawn: str, since: str, closes: Iterable[str] = ()) -> bool:
    """Whether a device's open card, its incident begun at ``since``, is the one a page drew
    (``drawn``, the ``since`` it drew): by times, not their text (a peer's stale spell, a
    fault dated by the health report then raised on the bus, are one incident however each
    dated its start), the same unless a card of the device was closed (``closes``: when)
    since the drawn one began (that was an older incident, closed). Either not known (empty)
    is taken as the same; a drawn one that is no time comparable with ``since``, as another."""
    if not drawn or not since or drawn == since:
        return True
    if _order(drawn, since) is None:
        return False
    return not any(_begun_by(drawn, closed) for closed in closes)


def _closed(drawn: str, closed_at: str | None) -> bool:
    """Whether a close at ``closed_at`` closed the incident a page drew (``drawn``: when it
    began; empty, not known: taken as that one): it had begun by then."""
    return not drawn or _begun_by(drawn, closed_at or "")


def _seconds_between(a: str, b: str) -> float:
    try:
        return abs((datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds())
    except ValueError:
        return float("inf")


@dataclass
class AlarmBoard:
    """Open and acknowledged alarms, keyed; keeps the latest ``keep`` (acknowledged ones are
    dropped first). When all ``keep`` are open, the oldest open one leaves the board and is
    counted on ``overflow``, a card (kind ``overflow``) shown after the others until a guard
    closes it. ``acked_before`` holds acknowledgements read back from the audit log:
    key -> (who, when, resolution, note)."""

    keep: int = 200
    alarms: dict[str, Alarm] = field(default_factory=dict)
    scanned_seq: int = -1  # -1: not scanned yet
    acked_before: dict[str, tuple[str, str, str | None, str]] = field(default_factory=dict)
    overflow: Alarm | None = None
    #: The last ``lists.bundle`` audit row read (its ``seq``).
    bundles_scanned: int = 0
    #: The audit seq of the last row read of each of ``RECORD_ALARMS``
    #: (``AlarmDesk._scan_records``).
    records_scanned: dict[str, int] = field(default_factory=dict)
    #: The last peers' passage read for outings over the quota (its rowid).
    peers_scanned: int = 0
    #: Device cards closed and gone from the board (their fault cleared, or a new incident
    #: took their place): key -> (who, resolution, the incident's ``since``), so a second
    #: guard's close of the card their page drew is told who closed it (``AlarmDesk.closed_by``).
    #: A fourth: when it was closed.
    closed_before: dict[str, tuple[str, str | None, str, str]] = field(default_factory=dict)

    def add(self, alarm: Alarm) -> bool:
        """Take a new alarm; False when it is known already or joins an open incident."""
        if alarm.key in self.alarms:
            return False
        for known in self.alarms.values():  # a row of a passage a card counts already
            if known.kind == alarm.kind and known.takes_row(alarm):
                known.take_row(alarm)
                return False
            if known.kind == alarm.kind and known.counts_logged(alarm):
                return False  # its row was read first: the card of the row stands
        for known in list(self.alarms.values()):
            self._close_if_acked_before(known, alarm.ts)
            if known.absorbs(alarm):
                known.join(alarm)
                return False
        self.alarms[alarm.key] = alarm
        if alarm.key.startswith("device:"):  # closed before a restart: its incident stands
            self._close_if_acked_before(alarm)
        self._trim()
        return True

    def hear(
        self, alarm: Alarm, stamp: int | None, *, cleared: bool = False, worse: bool = False
    ) -> bool:
        """Take a bus message of no seq about card ``alarm.key`` (a device's fault raised,
        or ``cleared``; another alarm raised, ``BUS_KEY``: of a passage the log did not take,
        or of none), stamped ``stamp`` by the engine; whether the open cards changed. A raise
        after its fault was heard cleared is the fault happening again: one more time on the
        open card (``Alarm.join``), a new card if a guard closed it; so is every raise of an
        alarm of no passage and no device (``repeats``: each one happened, a record
        dropped). The same fault said again (a lock retried every second) or a message heard
        already (every console's stream hands the desk each message) is not; except one
        ``worse`` (the last reader failing too: none left) after its card was closed: a new
        card."""
        known = self.alarms.get(alarm.key)
        if known is not None:
            if stamp is not None and stamp in known.taken_ns and not cleared:
                known.cleared = False  # the raise the report told: counted, standing
                return False
            if stamp is not None and known.heard_ns is not None and stamp <= known.heard_ns:
                return False
            known.heard_ns = known.heard_ns if stamp is None else stamp
            known.taken_ns = [t for t in known.taken_ns if stamp is None or t > stamp]
            happened = repeats(alarm.key)
            if cleared or not (known.cleared or happened or (worse and known.acked_by)):
                known.cleared = known.cleared or cleared
                return False
            if not known.acked_by:
                known.cleared = False
                known.began_seen = alarm.since or alarm.ts  # this start counted: not again
                return known.join(alarm)
            self._forget(alarm.key)
        if cleared:
            return False
        alarm.heard_ns = stamp
        alarm.since = alarm.since or alarm.ts
        return self.add(alarm)

    def _forget(self, key: str) -> None:
        """Card ``key`` off the board; if a guard closed it, who and as what kept
        (``closed_before``)."""
        gone = self.alarms.pop(key)
        if gone.acked_by:
            self.closed_before[key] = (
                gone.acked_by,
                gone.resolution,
                gone.since,
                gone.acked_at or "",
            )

    def closes(self, key: str) -> list[str]:
        """When device card ``key`` was last closed: its card gone from the board
        (``closed_before``), its close read back from the log not applied (``acked_before``)."""
        gone, before = self.closed_before.get(key), self.acked_before.get(key)
        return [*(gone[3:] if gone else ()), *(before[1:2] if before else ())]

    def _trim(self) -> None:
        """Down to ``keep``: closed alarms leave first, oldest first (one closed in the audit
        log read back counts as closed); an open one only when every alarm left is open, and
        then it is counted on the overflow card, never dropped unsaid."""
        excess = len(self.alarms) - self.keep
        if excess <= 0:
            return
        # A device's close read back closes only its incident (``_close_if_acked_before``).
        later = {k for k in self.acked_before if not k.startswith("device:")}
        closed = [k for k, a in self.alarms.items() if a.acked_by or k in later]
        still_open = [k for k in self.alarms if k not in closed]
        for key in (closed + still_open)[:excess]:
            gone = self.alarms.pop(key)
            if not (key in later and self.acked_before.pop(key)) and not gone.acked_by:
                self._overflowed(gone)

    def _overflowed(self, gone: Alarm) -> None:
        """Count an open alarm that left the full board on the open overflow card (a new card
        once a guard closed the last one)."""
        card = self.overflow
        if card is None or card.acked_by:
            card = self.overflow = Alarm(
                key=f"{OVERFLOW_KEY}:{gone.key}", kind="overflow", ts=gone.ts, detail="overflow"
            )
        card.dropped += 1
        card.ts = max(card.ts, gone.ts)

    def _close_if_acked_before(self, alarm: Alarm, now: str | None = None) -> None:
        """Apply an acknowledgement read back from the audit log once its time has come
        (``now``: the time of the event being added; None: apply it whatever the time)."""
        found = self.acked_before.get(alarm.key)
        if found is None or alarm.acked_by:
            return
        if alarm.key.startswith("device:"):  # its incident, whenever it is read: begun by then
            if not _begun_by(alarm.since, found[1]):
                return
        elif now is not None and found[1] > now:
            return
        del self.acked_before[alarm.key]
        alarm.acked_by, alarm.acked_at, alarm.resolution, alarm.note = found

    def settle(self) -> None:
        """Apply every acknowledgement read back (after the first scan)."""
        for alarm in list(self.alarms.values()):
            self._close_if_acked_before(alarm)

    def open(self) -> list[Alarm]:
        """The open alarms, newest first, each by when it happened (``dated_ts`` once a card
        stamped on a clock not set is dated); one not dated yet (when cannot be told: 1970,
        or the last shutdown's time) first; the overflow card (older than all) last."""
        shown = sorted(
            (a for a in self.alarms.values() if not a.acked_by), key=_happened, reverse=True
        )
        if self.overflow is not None and not self.overflow.acked_by:
            shown.append(self.overflow)
        return shown

    def forget_cleared_devices(self, standing: set[str]) -> None:
        """Drop acknowledged device alarms whose fault has cleared, so a new fault alarms
        again. An unacknowledged one stays: a fault that came and went is still news."""
        for key in [
            k
            for k, a in self.alarms.items()
            if k.startswith("device:") and k not in standing and a.acked_by
        ]:
            self._forget(key)

    def take_standing(self, standing: list[Alarm]) -> None:
        """The device cards as the faults standing now say them: a closed card whose fault
        is gone leaves (``forget_cleared_devices``); one whose fault now began after it was
        closed (another ``since``, later than the close) leaves too, the fault a new card;
        a standing fault closed before a restart that stood since before that close is
        closed again (``acked_before``)."""
        self.forget_cleared_devices({a.key for a in standing})
        for alarm in standing:
            known = self.alarms.get(alarm.key)
            if known is not None and not known.acked_by:
                self.take_start(known, alarm)
            elif known is not None and known.acked_by and alarm.since not in ("", known.since):
                if _later(alarm.since, known.acked_at or ""):
                    self._forget(alarm.key)
            elif known is None and alarm.key.startswith("device:"):
                found = self.acked_before.get(alarm.key)
                if found is not None and _begun_by(alarm.since, found[1]):
                    self.add(alarm)

    def take_start(self, known: Alarm, standing: Alarm) -> bool:
        """The start the health report says (``standing.since``) of open card ``known``'s
        fault; whether the card changed. A start later than the last one said
        (``began_seen``, by more than ``RESTATED_S``) is the fault gone and back between two
        looks that each saw it standing: one more time on the card, unless the engine's
        raise the report dates it by (``standing.heard_ns``) was heard on the bus already.
        Counted here, the card keeps that raise's stamp (``taken_ns``): the bus's message
        of it heard later is not counted a second time, while the returns before it the bus
        tells late still are (``hear``). One earlier than the card's own, of a card raised on
        the bus after a restart (dated when heard), that a close read back from the log had
        begun by: the
        fault stood since before that close, and the card is closed again
        (``_close_if_acked_before``)."""
        since, seen, stamp = standing.since, known.began_seen, standing.heard_ns
        if not since or known.acked_by:
            return False
        known.began_seen = since
        heard = stamp is not None and known.heard_ns is not None and stamp <= known.heard_ns
        if seen and not heard and _apart_by(since, seen) > RESTATED_S:
            again = Alarm(key=known.key, kind=known.kind, ts=since, detail=known.detail)
            known.cleared = False  # its raise, heard later on the bus, is this one
            if stamp is not None:
                known.taken_ns = [*known.taken_ns, stamp][-TAKEN_KEPT:]
            return known.join(again)
        found = self.acked_before.get(known.key)
        if found is not None and _later(known.since, since) and _begun_by(since, found[1]):
            known.since = since
            self._close_if_acked_before(known)
        return known.acked_by is not None

    def open_one(self, key: str) -> Alarm | None:
        """The open alarm ``key`` (the overflow card too); None if there is none."""
        alarm = self.alarms.get(key)
        if alarm is None and self.overflow is not None and self.overflow.key == key:
            alarm = self.overflow
        return None if alarm is None or alarm.acked_by else alarm

    def ack(
        self, key: str, who: str, when: str, resolution: str | None = None, note: str = ""
    ) -> Alarm | None:
        alarm = self.open_one(key)
        if alarm is None:
            return None
        alarm.acked_by, alarm.acked_at, alarm.resolution, alarm.note = who, when, resolution, note
        return alarm


def reason_codes(value: Any) -> list[str]:
    """An event's ``reasons`` as a list of codes, whether decoded or stored as JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return [str(v) for v in value or []]


def alarm_of(event: Mapping[str, Any], kind: str, code: str) -> Alarm:
    """An alarm of ``kind`` about ``event`` (its person, reading, direction and time)."""
    seq = event.get("seq")
    temp = event.get("temp_c")
    return Alarm(
        key=f"event:{seq}",
        kind=kind,
        ts=str(event.get("ts") or ""),
        seq=int(seq) if seq is not None else None,
        detail=code,
        household=_text(event.get("household")),
        holder=_text(event.get("holder")),
        pass_id=_text(event.get("pass_id")),
        temp_c=float(temp) if isinstance(temp, int | float) else None,
        direction=_text(event.get("direction")),
        seqs=[int(seq)] if seq is not None else [],
        clock_synced=event.get("clock_synced") is not False,
        at_boot=(stamp := _at_boot(event)),
        logged=[stamp] if stamp is not None and seq is not None else [],
    )


def _at_boot(event: Mapping[str, Any]) -> tuple[str, int] | None:
    boot, mono = event.get("boot_id"), event.get("mono_ns")
    if isinstance(boot, str) and isinstance(mono, int) and not isinstance(mono, bool):
        return boot, mono
    return None


def _text(value: Any) -> str | None:
    return str(value) if value else None


def disputed_reasons(flags: Any) -> frozenset[str]:
    """The reasons of an event the gate's two times disagreed on (``kiosk.policy``): those
    its flags name (``clock_not_set:<reason>``); an event logged before they were named,
    flagged ``clock_not_set`` alone, has every reason a time decides disputed
    (``CLOCK_REFERRALS``). Empty on a clock that was set."""
    codes = reason_codes(flags)
    named = frozenset(c.split(":", 1)[1] for c in codes if c.startswith("clock_not_set:"))
    if named:
        return named
    return frozenset(CLOCK_REFERRALS) if "clock_not_set" in codes else frozenset()


def alarm_from_event(event: Mapping[str, Any]) -> Alarm | None:
    """The alarm an event raises (fever, quarantine, forged or foreign pass, device, a
    referral to the guard), if any, so the desk read back after a restart shows the card it
    drew live. A kiosk's row records the bus alarm the engine raised for it (flag
    ``alarm:<name>``, ``kiosk.policy.ALARM_FLAG``): the card is of that alarm's kind
    (``_raised_card``). The row saying the gate did not open for a pass, the relay at fault
    (``not_opened:<seq>``, ``gate_fault``), raises the card of the pass ``seq``, the key of
    the engine's ``gate_fault`` alarm. Any other row is read by its reasons
    (``_logged_card``). Derived from the log, a card is still open after a restart, for an
    alarm raised while no guard was on duty."""
    decision = event.get("decision")
    if decision not in ("pass", "deny", "manual_deny"):
        return None
    flags = reason_codes(event.get("flags"))
    passed = not_opened(flags)
    if passed is not None and "gate_fault" in reason_codes(event.get("reasons")):
        return _about_person(alarm_of({**event, "seq": passed}, "device", "gate_fault"), event)
    raised = recorded_alarm(flags) if decision in KIOSK_DECISIONS else None
    return _logged_card(event) if raised is None else _raised_card(event, raised)


def _raised_card(event: Mapping[str, Any], name: str) -> Alarm:
    """The card of the bus alarm ``name`` a kiosk's row records: the card its reasons raise
    (``_logged_card``) when of that alarm's kind, else one of that kind whose detail is the
    reason it was raised for (``RAISED_BY``); a ``guard_needed`` lists every reason."""
    kind = ALARM_KINDS.get(name, "other")
    logged = _logged_card(event)
    if logged is not None and logged.kind == kind:
        return logged
    reasons = [code for code in reason_codes(event.get("reasons")) if code != "ok"]
    if name == GUARD_NEEDED:
        referrals = (*ALARM_REASONS, *CLOCK_REFERRALS)
        code = next((c for c in reasons if c in referrals), reasons[0] if reasons else name)
    else:
        code = next((c for c in reasons if c in RAISED_BY.get(name, ())), name)
    alarm = _about_person(alarm_of(event, kind, code), event)
    if name == GUARD_NEEDED:
        alarm.reasons = [code, *(c for c in reasons if c != code)]
    return alarm


def _logged_card(event: Mapping[str, Any]) -> Alarm | None:
    """The card a row that records no bus alarm raises, by its reasons (``ALARM_REASONS``)
    and a pass's flag ``quarantine`` (a quarantined resident let home) on a set clock
    (``_return_raised``). A guard's deny of a fever found by hand carries ``fever`` as the
    kiosk's does (the engine marks it); its card names the person registered when no pass
    named anyone."""
    flags = event.get("flags")
    if event.get("decision") == "pass":
        if RETURN_FLAG not in reason_codes(flags) or not _return_raised(event):
            return None
        return _about_person(alarm_of(event, "quarantine", "quarantine_return"), event)
    reasons = reason_codes(event.get("reasons"))
    disputed = disputed_reasons(flags)
    for code, kind in ALARM_REASONS.items():
        if code in reasons and code not in disputed:
            return _about_person(alarm_of(event, kind, code), event)
    early = next((code for code in CLOCK_REFERRALS if code in reasons and code in disputed), None)
    if early:
        alarm = alarm_of(event, "guard", early)
        alarm.reasons = [early, *(code for code in reasons if code != early)]
        return _about_person(alarm, event)
    return None


def _return_raised(event: Mapping[str, Any]) -> bool:
    """Whether the engine raised ``quarantine_return`` for a pass flagged ``quarantine`` whose
    row records no bus alarm: on a set clock always (a row logged before the flag
    ``alarm:<name>``). On a clock NTP had not set (``clock_synced`` false) it raised it only
    when the clock's time and the earliest real time both found the quarantine
    (``kiosk.policy``), and then its row records it (``_raised_card``): a pass that records
    none raised none, whichever time alone kept the flag."""
    return event.get("clock_synced") not in (False, 0)


def _about_person(alarm: Alarm, event: Mapping[str, Any]) -> Alarm:
    """``alarm`` about the passage's person when a pass named one, else the person the guard
    registered (a vehicle's hottest occupant) and their dwelling; a vehicle's with its plate."""
    person = person_of(event)
    alarm.plate = _text(person.get("plate"))
    if alarm.holder is None:
        alarm.holder = _text(person.get("name")) or hottest_occupant(person, alarm.temp_c)
    if alarm.household is None:
        alarm.household = _text(person.get("unit")) or _text(person.get("resident_of"))
    return alarm


def person_of(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """An event's ``person`` (decoded, or the JSON text a stored row holds); {} without one."""
    person = event.get("person")
    if isinstance(person, str):
        try:
            person = json.loads(person)
        except ValueError:
            return {}
    return person if isinstance(person, Mapping) else {}


def hottest_occupant(person: Mapping[str, Any], temp_c: float | None) -> str | None:
    """The name of a vehicle's occupant whose reading is the event's (its highest)."""
    passengers = person.get("passengers")
    occupants = [(person.get("driver"), person.get("driver_temp_c"))] + [
        (p.get("name"), p.get("temp_c"))
        for p in (passengers if isinstance(passengers, list) else [])
        if isinstance(p, Mapping)
    ]
    return next((_text(name) for name, t in occupants if t == temp_c and name), None)


def _names_someone(alarm: Alarm) -> bool:
    return any((alarm.household, alarm.holder, alarm.pass_id, alarm.plate, alarm.note))


def _unname(alarm: Alarm) -> None:
    """Empty whom ``alarm`` names (the card stays, saying what and when)."""
    alarm.household = alarm.holder = alarm.pass_id = alarm.plate = None
    alarm.note = ""


def alarm_from_message(message: Mapping[str, Any], now: str) -> Alarm | None:
    """An alarm from a bus ``alarm`` message; None for a ``cleared`` notice (the card stays
    until a guard acknowledges it)."""
    return None if message.get("state") == "cleared" else message_alarm(message, now)


def message_alarm(message: Mapping[str, Any], now: str, boot_id: str | None = None) -> Alarm:
    """The alarm a bus ``alarm`` message is about, raised or cleared (``boot_id``: the boot
    the log stamps its rows with, for a passage's the log did not take: ``unlogged``)."""
    raw = str(message.get("alarm") or "other")
    kind = ALARM_KINDS.get(raw, "other")
    seq = message.get("seq")
    if seq is not None and raw in RECORD_ALARMS:
        return Alarm(
            key=record_key(raw, int(seq)),
            kind=kind,
            ts=now,
            seq=int(seq),
            detail=raw,
            cause=str(message.get("cause") or ""),
            operator=_text(message.get("operator")),
            direction=_text(message.get("direction")),
        )
    if seq is not None:
        return Alarm(key=f"event:{seq}", kind=kind, ts=now, seq=int(seq), detail=raw)
    if raw in ALARM_DEVICES:
        # Same key as the standing alarm from the health report: one card per device.
        device = ALARM_DEVICES[raw]
        return Alarm(key=f"device:{device}", kind="device", ts=now, detail=device)
    passage = message.get("passage")
    if type(passage) is int:
        # A passage's alarm the log did not take (the storage refused its row: ``seq`` None):
        # a card of that passage, as one committed has (two people's fevers are two cards).
        # Whom it is about as the message says it (the log cannot say it yet), and the
        # stamp its row will carry, by which that row is taken into this card later.
        at = message.get("at_ns")
        stamp = (boot_id, at) if boot_id and type(at) is int else None
        return Alarm(
            key=f"{BUS_KEY}{raw}:{passage}",
            kind=kind,
            ts=now,
            detail=raw,
            direction=_text(message.get("direction")),
            household=_text(message.get("household")),
            holder=_text(message.get("holder")),
            pass_id=_text(message.get("pass_id")),
            temp_c=temp if isinstance(temp := message.get("temp_c"), int | float) else None,
            at_boot=stamp,
            unlogged=[stamp] if stamp is not None else [],
        )
    # Of no passage, no device (``store_backlog_full``: a held record dropped over the
    # backlog's bound, the one such alarm the engine raises): one card per alarm while open,
    # each raise one more time of the same condition on it (``AlarmBoard.hear``, ``repeats``).
    return Alarm(key=f"{BUS_KEY}{raw}", kind=kind, ts=now, detail=raw)


def repeats(key: str) -> bool:
    """Whether card ``key`` is a bus alarm's of no passage and no device (``BUS_KEY`` and its
    name alone: ``store_backlog_full``): every raise is the same condition once more, counted
    on its open card, and a close takes the raises come since its page drew it (nobody new
    to see: ``AlarmDesk.close``)."""
    return key.startswith(BUS_KEY) and ":" not in key[len(BUS_KEY) :]


def record_key(name: str, seq: int) -> str:
    """The key of a record's card (``RECORD_ALARMS``): its alarm's name and the record's seq."""
    return f"{name}:{seq}"


def _record_card(alarm: Alarm, event: Mapping[str, Any]) -> Alarm:
    """A record's card (``RECORD_ALARMS``) about ``event``, the record it names: whom and
    when from it, what and whose from ``alarm``."""
    card = _about_person(alarm_of(event, alarm.kind, alarm.detail), event)
    card.key, card.cause, card.operator = alarm.key, alarm.cause, alarm.operator
    card.direction = alarm.direction or card.direction
    return card


def _stamp(message: Mapping[str, Any]) -> int | None:
    """The engine's monotonic stamp on a bus message (``mono_ns``), if it has one."""
    stamp = message.get("mono_ns")
    return stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None


#: The key of a compound gate's standing alarm, then its kiosk id: a device's key, so an
#: acknowledged one goes when the gate answers again and a later outage alarms again.
PEER_ALARM = "device:peer:"


def peer_alarms(peers: list[Mapping[str, Any]]) -> list[Alarm]:
    """A standing alarm for each other gate of the compound whose outings are unknown here
    (a health report's ``peers``, ``state`` ``stale``, or ``forged``: an answer at its address
    not signed by its key was refused, or ``unsigned``: one with no signature at all, or
    ``held``: its passages are left with it while this gate's clock is not set), while that
    lasts: dated when they became unknown, ``detail`` the gate's kiosk id."""
    return [
        Alarm(
            key=f"{PEER_ALARM}{peer.get('kiosk_id')}",
            kind="device",
            ts=str(peer.get("stale_since") or ""),
            detail=str(peer.get("kiosk_id")),
            cause=str(peer.get("state")),
            since=str(peer.get("stale_since") or ""),
        )
        for peer in peers
        if peer.get("state") in ("stale", "forged", "unsigned", "held")
    ]


#: The key of the live page's standing card for the Pi's power and heat: a device's, so an
#: acknowledged card goes when the spell is over and the next spell raises it again.
PI_POWER_ALARM = "device:pi_power"


def power_alarms(status: Mapping[str, Any] | None) -> list[Alarm]:
    """The standing card while health's ``pi_power`` says under-voltage (first: it is also
    why the Pi throttles) or throttled now: ``cause`` why (``power_cause``), dated when it
    began, the SoC's temperature with it. None otherwise."""
    if not status:
        return []
    for condition in PI_CONDITIONS:
        if status.get(condition):
            return [
                Alarm(
                    key=PI_POWER_ALARM,
                    kind="device",
                    ts=str(status.get(f"{condition}_since") or ""),
                    detail="pi_power",
                    since=str(status.get(f"{condition}_since") or ""),
                    cause=power_cause(status, condition),
                    temp_c=status.get("soc_temp_c"),
                )
            ]
    return []


def power_cause(status: Mapping[str, Any], condition: str) -> str:
    """What health's ``pi_power`` says of ``condition``, the one name the card and the
    devices page's row are worded by: ``under_voltage`` (the supply too low now); a
    throttle's ``throttled_cause``: ``heat``, ``unknown``, or ``supply`` (the firmware's
    throttle for the supply: with the under-voltage, or left by its dip, the voltage back)."""
    if condition == "under_voltage":
        return "under_voltage"
    cause = status.get("throttled_cause")
    return "supply" if cause == "under_voltage" else str(cause or "unknown")


#: The standing card while the retention purge is overdue: personal data past retention kept.
RETENTION_ALARM = "device:retention"


def retention_alarms(retention: Mapping[str, Any] | None) -> list[Alarm]:
    """The standing card while health's ``retention.overdue`` says the purge is overdue
    (``kiosk.retention.overdue``): ``cause`` why, dated by the last purge (``ts`` empty:
    none), ``detail`` how many events wait for the clock (``waiting_for_clock``), else for
    how many days the purges have been refused or not run. None otherwise."""
    late = (retention or {}).get("overdue")
    if not late:
        return []
    cause = str(late.get("cause") or "not_run")
    count = late.get("waiting") if cause == "waiting_for_clock" else late.get("days")
    return [
        Alarm(
            key=RETENTION_ALARM,
            kind="device",
            ts=str(late.get("last_run") or ""),
            detail=str(count or 0),
            cause=cause,
        )
    ]


#: The standing card for the rows of the log a damaged page keeps from being read.
UNREADABLE_ALARM = "device:unreadable_rows"


def unreadable_alarms(seqs: list[int]) -> list[Alarm]:
    """A standing card naming the events a read had to leave out (``EventLog.unreadable_seqs``:
    a page the card no longer reads back) and those whose card cannot be told
    (``card_unknown``), ``detail`` their seqs as ranges; none without."""
    if not seqs:
        return []
    return [Alarm(key=UNREADABLE_ALARM, kind="device", ts="", detail=seq_ranges(seqs))]


#: The fields of an event a card is read from (``alarm_from_event``).
_CARD_FIELDS = ("reasons", "flags")


def card_unknown(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` raised no card only because its ``reasons`` or ``flags`` cannot be
    read (``kiosk.unreadable``: a damaged field reads as none): a fever deny found by hand
    read back after a restart, a quarantined resident let home. Which card it raised is
    unknown, never taken as none: the row is named on the card of the rows that cannot be
    read (``unreadable_alarms``). Only a row a card is read from (a pass or a deny), or one
    whose ``decision`` cannot be read (none the log records, ``DECISIONS``: a guard's fever
    ``manual_deny`` one bit off), which may have been one."""
    damaged = event.get(UNREADABLE) or ()
    decision = event.get("decision")
    if decision not in DECISIONS or "decision" in damaged:
        return True
    if decision not in ("pass", "deny", "manual_deny"):
        return False
    return any(name in damaged for name in _CARD_FIELDS)


def seq_ranges(seqs: list[int]) -> str:
    """Sorted ``seqs`` as runs: ``31–35, 40``."""
    runs: list[list[int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][1] + 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)


def device_alarms(
    faults: Mapping[str, str],
    since: Mapping[str, Any] | None = None,
    raised: Mapping[str, Any] | None = None,
) -> list[Alarm]:
    """A standing alarm for each device in fault (``{device: state}``), while it lasts;
    ``since``: when each one's fault began (the health report's ``fault_since``); ``raised``:
    the engine's stamp of each one's raise (its ``fault_raised_ns``)."""
    return [
        Alarm(
            key=f"device:{device}",
            kind="device",
            ts="",
            detail=device,
            since=str((since or {}).get(device) or ""),
            heard_ns=_raised_ns(raised, device),
        )
        for device, state in faults.items()
        if state == "fault"
    ]


@dataclass(frozen=True)
class FaultsNow:
    """The devices in fault in a health report: when each one's fault began (its
    ``fault_since``; empty when not known) and the engine's stamp of the raise of each it
    holds (its ``fault_raised_ns``), as ``AlarmDesk.heard_standing`` takes them."""

    since: Mapping[str, str]
    raised: Mapping[str, Any] = field(default_factory=dict)


def _raised_ns(raised: Mapping[str, Any] | None, device: str) -> int | None:
    """The engine's stamp of ``device``'s raise in ``raised`` (a health report's
    ``fault_raised_ns``); None when it has none, or no such stamp (not an integer)."""
    return _stamp({"mono_ns": (raised or {}).get(device)})


def breach_alarm(breach: Breach) -> Alarm:
    """A guard's card about an outing over the quota found late: the household, the two
    gates and times; dated when the outing over it happened."""
    seqs = [breach.seq] if breach.here else []
    return Alarm(
        key=f"{QUOTA_KEY}{breach.key}",
        kind="guard",
        ts=breach.second[1],
        seq=seqs[0] if seqs else None,
        detail=QUOTA_DETAIL,
        household=breach.household,
        direction="out",
        seqs=seqs,
        passages=[breach.first, breach.second],
        sources=breach.rows,
    )


class AlarmSource(queries.Readable, Protocol):
    """The event log as the desk reads it."""

    @property
    def last_seq(self) -> int: ...

    #: The boot the log stamps its rows with (``mono_ns`` is this boot's monotonic clock).
    boot_id: str
    #: The gate whose log it is (a breach's passages are this gate's or a peer's).
    kiosk_id: str

    def readable_events(self, after_seq: int = 0, limit: int = 100) -> list[dict[str, Any]]: ...

    def unreadable_seqs(self) -> list[int]: ...


def closed_keys(detail: Mapping[str, Any]) -> list[str]:
    """The alarm keys an ``alarm_ack`` audit row closed (``keys``, or one ``key``)."""
    keys = detail.get("keys")
    if not isinstance(keys, list):
        keys = [detail.get("key")]
    return [k for k in keys if isinstance(k, str)]


def closed_detail(closing: list[Alarm]) -> dict[str, Any]:
    """What a close's row (``ACK_ACTION``) names: ``keys``, each card's key; of a card of
    passages the log had not taken when their alarm was heard (``BUS_KEY``: a fever while
    the storage refused its row), also ``event:SEQ`` of each passage it counts the log took
    since, and ``passages``, the stamps ``(boot_id, mono_ns)`` its rows will carry of those
    still not taken. After a restart the cards those rows raise are closed by them
    (``AlarmDesk._first_scan``): the fever the guard closed did not come back open."""
    keys = [a.key for a in closing]
    keys += [f"event:{s}" for a in closing if a.key.startswith(BUS_KEY) for s in a.seqs]
    detail: dict[str, Any] = {"keys": list(dict.fromkeys(keys))}
    passages = [[boot, ns] for a in closing for boot, ns in a.unlogged]
    if passages:
        detail["passages"] = passages
    return detail


def closed_passages(detail: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The stamps of the passages not taken by the log an ``alarm_ack`` row closed
    (``closed_detail``'s ``passages``); any other shape is none."""
    found = detail.get("passages")
    return [
        (p[0], p[1])
        for p in (found if isinstance(found, list) else [])
        if isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and type(p[1]) is int
    ]


#: The audit rows saying the log forgot someone: a forget (``kiosk person forget``), a batch
#: of retention's purge. A card naming a person from a bus message alone, its passage never
#: taken by the log, is emptied of the name at each (``AlarmDesk._forget_unlogged``).
FORGETTING = (FORGET_ACTION, "retention_purge_batch")
#: The engine's alarm of a held record dropped over its backlog's bound.
BACKLOG_FULL = "store_backlog_full"


class AlarmDesk:
    """The alarms of one console process over the event log, safe to share between the
    loop and the threads pages and streams run in. Open alarms survive a restart: they are
    derived again from the last ``lookback_h`` hours of events, and closed ones from the
    ``alarm_ack`` audit rows of the same hours, in time order."""

    def __init__(
        self,
        log: AlarmSource,
        clock: Clock,
        *,
        lookback_h: float = 12,
        keep: int = 200,
        quota: QuotaConfig | None = None,
        tz: ZoneInfo | str = "UTC",
    ) -> None:
        self._log = log
        #: The outing quota and the site's zone, for a breach peers' passages show late (no
        #: quota: no such card).
        self._quota = quota if quota is not None and quota.enabled else None
        self._tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        self._kiosk_id = log.kiosk_id
        self._clock = clock
        self._lookback = timedelta(hours=lookback_h)
        self._lock = threading.Lock()
        self.board = AlarmBoard(keep=keep)
        #: Alarms being closed: their row is being written (still shown open meanwhile), by
        #: the thread closing them, for the guard closing them (``AlarmClosing``).
        self._closing: dict[str, tuple[int, str]] = {}
        #: The look-back's start at the first scan, where ``_scan_revoked`` starts after it.
        self._since: queries.Since | None = None
        #: The passages not taken by the log that a close before the start closed, by the
        #: stamp their row carries (``closed_passages``): the close of the card they raise.
        self._acked_stamps: dict[tuple[str, int], tuple[str, str, str | None, str]] = {}
        #: The latest of each of ``FORGETTING``'s rows seen (``_forget_unlogged``).
        self._forgets_seen: dict[str, int] | None = None
        #: The rows read whose card cannot be told (``card_unknown``): named on the card of
        #: the rows that cannot be read (``unreadable_alarms``), with a damaged page's.
        self._card_unknown: set[int] = set()

    def _now(self) -> str:
        return self._clock.now().isoformat()

    def _first_scan(self) -> None:
        """Where to start, and which alarms were closed, after a start."""
        board = self.board
        # What happened in the look-back, whatever the clock said then: a fever stamped 1970
        # before NTP stepped the clock minutes ago is as open as one stamped now.
        now = ClockReading.take(self._clock)
        since = queries.Since.ago(now, self._lookback.total_seconds(), self._log.boot_id)
        first = queries.first_seq_happened_since(self._log, since)
        board.scanned_seq = (first - 1) if first is not None else self._log.last_seq
        self._since = since
        for row in queries.audits_since(self._log, ACK_ACTION, since, limit=5000):
            resolution = row.detail.get("resolution")
            note = str(row.detail.get("note") or "")
            for key in closed_keys(row.detail):
                # A device's: closed again only if its fault stood since before the close
                # (``AlarmBoard._close_if_acked_before``).
                if key.startswith(("event:", "device:", REVOKED_KEY, QUOTA_KEY, *RECORD_PREFIXES)):
                    board.acked_before[key] = (
                        row.actor,
                        row.ts,
                        str(resolution) if resolution else None,
                        note,
                    )
            for stamp in closed_passages(row.detail):
                said = str(resolution) if resolution else None
                self._acked_stamps[stamp] = (row.actor, row.ts, said, note)

    def _scan(self) -> None:
        board = self.board
        starting = board.scanned_seq < 0
        if starting:
            self._first_scan()
        while True:
            last = self._log.last_seq
            # Read past a damaged page: the rows it holds are named on a card of their own
            # (``unreadable_alarms``) and not read again at every scan.
            batch = self._log.readable_events(after_seq=board.scanned_seq, limit=SCAN_BATCH)
            covered = min(board.scanned_seq + SCAN_BATCH, last)
            for event in batch:
                board.scanned_seq = max(board.scanned_seq, int(event["seq"]))
                alarm = alarm_from_event(event)
                if alarm is not None:
                    self._acked_passage(alarm)
                    board.add(alarm)
                elif card_unknown(event) and len(self._card_unknown) < MAX_SKIPPED:
                    self._card_unknown.add(int(event["seq"]))
            board.scanned_seq = max(board.scanned_seq, covered)
            if len(batch) < SCAN_BATCH and board.scanned_seq >= last:
                break
        self._scan_revoked(self._since if starting else None)
        self._scan_records(self._since if starting else None)
        self._scan_breaches(self._since if starting and self._since is not None else "")
        if starting:
            board.settle()
        self._forget_purged()

    def _acked_passage(self, alarm: Alarm) -> None:
        """``alarm``, raised by a row of a passage a close before the start closed while the
        log had not taken it (``_acked_stamps``): closed as that close said."""
        found = self._acked_stamps.pop(alarm.at_boot, None) if alarm.at_boot else None
        if found is not None:
            self.board.acked_before.setdefault(alarm.key, found)

    def _scan_revoked(self, since: queries.Since | None) -> None:
        """A guard's card for each passage a bundle named as passed on a pass it revokes anew
        (``kiosk.lists.REVOKED_PASSED``): the office may have revoked the card (lost, stolen)
        before this gate heard of it. ``since``: at start, only bundles of the look-back (one
        stamped before NTP stepped the clock by when it was taken: ``_happened_since``)."""
        board = self.board
        while True:
            rows = queries.audits_after(self._log, BUNDLE_ACTION, board.bundles_scanned, 100)
            for audit_seq, note in rows:
                board.bundles_scanned = audit_seq
                seqs = note.detail.get(REVOKED_PASSED)
                if (since and not self._happened_since(note, since)) or not isinstance(seqs, list):
                    continue
                for seq in seqs:
                    event = queries.event_by_seq(self._log, seq) if type(seq) is int else None
                    if event is not None:
                        alarm = _about_person(alarm_of(event, "guard", REVOKED_DETAIL), event)
                        alarm.key = f"{REVOKED_KEY}{seq}"
                        board.add(alarm)
            if len(rows) < 100:
                return

    def _scan_records(self, since: queries.Since | None) -> None:
        """A card for each record written or left out after its decision was told
        (``RECORD_ALARMS``' audit rows: a guard's pass held for the log not written, a commit
        landed past its deadline; the console restarted since their bus message, or never
        heard it). ``since``: at start, only the look-back's rows."""
        for name in RECORD_ALARMS:
            self._scan_record_rows(name, since)

    def _scan_record_rows(self, name: str, since: queries.Since | None) -> None:
        board = self.board
        while True:
            after = board.records_scanned.get(name, 0)
            rows = queries.audits_after(self._log, name, after, 100)
            for audit_seq, note in rows:
                board.records_scanned[name] = audit_seq
                seq = note.detail.get("seq")
                if (since and not self._happened_since(note, since)) or type(seq) is not int:
                    continue
                said = {**note.detail, "alarm": name, "seq": seq}
                if record_key(name, seq) not in board.alarms:
                    board.add(self._about_event(message_alarm(said, note.ts), seq))
            if len(rows) < 100:
                return

    def _happened_since(self, note: queries.AuditNote, since: queries.Since) -> bool:
        """Whether an audit row was written at or after ``since``: stamped since, or stamped
        before NTP stepped the clock and written since (this boot's monotonic clock, an
        earlier boot's dating), as the acknowledgements are read back."""
        stamp = note.stamp
        if note.ts >= since.ts or stamp is None or stamp.synced:
            return note.ts >= since.ts
        if stamp.boot_id == since.boot_id:
            return stamp.mono_ns >= since.mono_ns
        when, dating = queries.dated_stamps(self._log, [stamp])[0]
        return dating == "boot" and when >= since.ts

    def _scan_breaches(self, since: queries.Since | str) -> None:
        """A guard's card for each outing over the quota that peers' passages kept since the
        last scan show (``kiosk.peers.late_breaches``); at start, those fetched in the
        look-back (``since``: one fetched on a clock not set, by when it was fetched)."""
        if self._quota is None:
            return
        board = self.board
        while True:
            after = board.peers_scanned
            found, board.peers_scanned = late_breaches(
                self._log.reader(),
                after,
                self._kiosk_id,
                self._quota,
                self._tz,
                since,
                self._log.boot_id,
                ClockReading.take(self._clock),
            )
            for breach in found:
                board.add(self._dated_breach(breach_alarm(breach)))
            if board.peers_scanned - after < LATE_BATCH:
                return

    def _dated_breach(self, alarm: Alarm, now: ClockReading | None = None) -> Alarm:
        """A quota card's passages as the feed dates them (``kiosk.queries.dated``): this
        gate's outing stamped before NTP stepped the clock at the time its boot dates it, or
        said as not set; a peer's (dated at its gate) as not set when stamped before 2000.
        The card's own time is its latest passage's."""
        local = [s for g, s in alarm.sources if g == self._kiosk_id]
        events = [e for s in local if (e := queries.event_by_seq(self._log, s)) is not None]
        dated = {
            int(e["seq"]): e
            for e in queries.dated(
                self._log, events, now or ClockReading.take(self._clock), self._log.boot_id
            )
        }
        passages, dating = [], []
        for (gate, ts), (_, seq) in zip(alarm.passages, alarm.sources, strict=False):
            event = dated.get(seq) if gate == self._kiosk_id else None
            if event is not None:
                passages.append((gate, str(event["dated_ts"] or ts)))
                dating.append(str(event["dating"]))
            else:
                passages.append((gate, ts))
                dating.append("clock" if ts[:4] >= "2000" else "unsynced")
        alarm.passages[: len(passages)], alarm.passages_dating = passages, dating
        last = dating[-1] if dating else "clock"
        alarm.clock_synced = last == "clock"
        alarm.dated_ts = passages[-1][1] if last == "boot" else None
        return alarm

    def _forget_purged(self) -> None:
        """Empty whom an alarm names once retention purged a row it was built from (its
        passages, this gate's or a peer's): the board lives as long as the daemon, and would
        name the person on the console after the log forgot them (an open card stays, saying
        what and when)."""
        self._forget_unlogged()
        named = [a for a in self.board.alarms.values() if _names_someone(a)]
        here = {a.key: [*a.seqs, *(s for g, s in a.sources if g == self._kiosk_id)] for a in named}
        there = {a.key: [(g, s) for g, s in a.sources if g != self._kiosk_id] for a in named}
        named = [a for a in named if here[a.key] or there[a.key]]
        if not named:
            return
        purged = queries.purged_seqs(self._log, {s for a in named for s in here[a.key]})
        wanted = [row for a in named for row in there[a.key]]
        held = held_rows(self._log.reader(), wanted) if wanted else set()
        for alarm in named:
            if purged.intersection(here[alarm.key]) or not held.issuperset(there[alarm.key]):
                _unname(alarm)

    def _forget_unlogged(self) -> None:
        """Empty whom a card names from a bus message alone (no passage of it in the log: a
        fever while the storage refused its row) once the log forgot someone since the last
        look (``FORGETTING``: a forget, a retention purge): its row may never come (the
        backlog dropped it), and nothing else would empty it for the daemon's life."""
        latest = {a: queries.last_audit_seq(self._log, a) for a in FORGETTING}
        seen, self._forgets_seen = self._forgets_seen, latest
        if seen is not None and seen != latest:
            self._unname_unlogged()

    def _forgets_baseline(self) -> None:
        """The forgets seen so far, taken before the first card naming someone from a bus
        message alone (``_forget_unlogged``): a forget before the desk's first scan empties
        its name too. Unread (a storage fault, when such cards come): taken at the next look."""
        try:
            self._forget_unlogged()
        except Exception:  # noqa: BLE001 - the card is drawn whatever the log answers
            self._forgets_seen = None

    def _unname_unlogged(self) -> None:
        """Empty whom each card of no passage the log holds names (``_forget_unlogged``;
        the engine dropped a held record: ``store_backlog_full``)."""
        for alarm in self.board.alarms.values():
            if alarm.unlogged and not alarm.seqs and not alarm.sources:
                _unname(alarm)

    def _date_open(self) -> None:
        """Date the open cards stamped before NTP stepped the clock once something can (their
        boot's first synchronised event, or this boot's clock synchronised now): the rows of
        those cards alone, by their keys."""
        for alarm in self.board.open():
            if alarm.detail == QUOTA_DETAIL and any(  # this gate's, dated once NTP answered
                d == "unsynced" and g == self._kiosk_id
                for (g, _), d in zip(alarm.passages, alarm.passages_dating, strict=False)
            ):
                self._dated_breach(alarm)
        open_now = [a for a in self.board.open() if not a.clock_synced and a.dated_ts is None]
        undated = [a for a in open_now if a.seqs]
        raised = [a for a in open_now if not a.seqs and a.mono_ns is not None]
        if not (undated or raised):
            return
        now = ClockReading.take(self._clock)
        if now.synced:  # raised in this process: this boot's clocks, now set
            for alarm in raised:
                alarm.dated_ts = format_ts(now.wall_at(alarm.mono_ns or 0))
        if not undated:
            return
        latest = [a.seqs[-1] for a in undated]
        times = queries.dated_times(self._log, latest, now, self._log.boot_id)
        for alarm in undated:
            alarm.dated_ts = times.get(alarm.seqs[-1])

    def open_alarms(self, standing: list[Alarm]) -> list[Alarm]:
        """Standing device alarms not on the board yet, then the board's open ones."""
        with self._lock:
            self._scan()
            self._date_open()
            standing = self._with_unreadable(standing)
            self.board.take_standing(standing)
            return [*(a for a in standing if a.key not in self.board.alarms), *self.board.open()]

    def _with_unreadable(self, standing: list[Alarm]) -> list[Alarm]:
        """``standing`` and the card of the rows a read had to leave out (found by the scan):
        one the guard can close like any device's (call with ``_lock`` held). A closed card
        naming fewer rows leaves the board: more rows failing since is a new incident, and
        the card comes back once (the rows only grow until the daemon restarts)."""
        keys = {a.key for a in standing}
        seqs = sorted({*self._log.unreadable_seqs(), *self._card_unknown})
        unreadable = [a for a in unreadable_alarms(seqs) if a.key not in keys]
        for alarm in unreadable:
            known = self.board.alarms.get(alarm.key)
            if known is not None and known.acked_by and known.detail != alarm.detail:
                del self.board.alarms[alarm.key]
        return [*standing, *unreadable]

    def note_message(self, message: Mapping[str, Any]) -> bool:
        """Take a bus ``alarm`` message; True when the open alarms changed. One of no passage
        (a device's fault) counts each time it happens again (``AlarmBoard.hear``). One about a
        committed passage is read from the log (whom, what, reading): the same alarm, with
        the same key, that the event raises."""
        now = ClockReading.take(self._clock)
        alarm = message_alarm(message, now.wall.isoformat(), self._log.boot_id)
        cleared = message.get("state") == "cleared"
        if cleared and alarm.seq is not None:
            return False
        if not now.synced:  # dated as the feed's rows are: 1970 said as not set, then dated
            alarm.clock_synced, alarm.mono_ns = False, now.mono_ns
        with self._lock:
            if alarm.detail == BACKLOG_FULL and not cleared:  # a held record dropped: its
                self._unname_unlogged()  # row never comes to be forgotten with the person
            if alarm.seq is None:  # a device's (counted each time it fails again), a bus card
                if self._forgets_seen is None and (alarm.holder or alarm.household):
                    self._forgets_baseline()  # a forget from now on empties its name
                worse = message.get("all_down") is True  # no reader left: news even if closed
                return self.board.hear(alarm, _stamp(message), cleared=cleared, worse=worse)
            before = len(self.board.open())
            self._scan()
            if alarm.key in self.board.alarms or (
                alarm.kind != "record"  # a record's card is its own, beside any other on it
                and any(
                    alarm.seq in a.seqs for a in self.board.alarms.values() if a.kind != "record"
                )
            ):
                return len(self.board.open()) != before
            return self.board.add(self._about_event(alarm, alarm.seq))

    def _about_event(self, alarm: Alarm, seq: int) -> Alarm:
        """``alarm`` about the passage ``seq`` (whom, what, reading), read from the log; as
        it is when the log no longer holds it."""
        event = queries.event_by_seq(self._log, seq)
        if event is None:
            return alarm
        if alarm.kind == "record":
            return _record_card(alarm, event)
        return _about_person(alarm_of(event, alarm.kind, alarm.detail), event)

    async def follow(
        self,
        bus: EventBus,
        subscription: Subscription | None = None,
        faults: Callable[[], Iterable[str] | FaultsNow] | None = None,
    ) -> None:
        """The desk's own ear on the bus, run as a task (``Guard.hear``) until it is
        cancelled or the bus closes (``subscription``: one taken as the task was made, so
        nothing published before it first runs is missed):
        every ``alarm`` message is noted (``note_message``), whether any console streams or
        every tablet sleeps, and a change is told (``ALARMS_HEARD``). Dropped as slow, it
        subscribes again. At each (re)subscription the device cards are rebuilt from the
        faults standing now (``faults``: the devices in fault in the health report;
        ``heard_standing``), as a reconnecting stream re-reads its rows: what the bus said
        while the desk was not listening is not lost."""
        while True:
            heard = subscription or bus.subscribe(maxsize=DESK_QUEUE, name="alarm-desk")
            subscription = None
            try:
                if faults is not None and await self._heard(faults):
                    bus.publish({"type": ALARMS_HEARD})
                async for message in heard:
                    if message.get("type") == "alarm" and await self._heard(message):
                        bus.publish({"type": ALARMS_HEARD})
            finally:
                heard.close()
            if not heard.dropped:
                return  # the bus closed: the console is stopping
            log.warning("alarms: the desk fell behind the bus; it listens again")

    def heard_standing(self, faults: Iterable[str] | FaultsNow) -> bool:
        """The device cards as the faults standing now say them (``faults``: the devices in
        fault), taken as the bus would have told them: a device in fault with no open card
        gets one, one whose fault was heard cleared counts once more (``AlarmBoard.hear``),
        and a card whose device is no longer in fault is heard cleared (its next fault is
        one more time). ``faults`` may map each device to when its fault began (the health
        report's ``fault_since``): the card's ``since``; or say that with the engine's stamp
        of each raise (``FaultsNow``), by which the bus's messages of a raise taken here,
        heard after, are not counted again. Whether the open cards changed."""
        now = ClockReading.take(self._clock)
        devices = set(ALARM_DEVICES.values())
        if isinstance(faults, FaultsNow):
            began, raised = faults.since, faults.raised
        else:
            began, raised = (faults if isinstance(faults, Mapping) else {}), {}
        standing = devices.intersection(began if isinstance(faults, FaultsNow) else faults)
        changed = False
        with self._lock:
            for device in sorted(standing):
                alarm = Alarm(
                    key=f"device:{device}", kind="device", ts=now.wall.isoformat(), detail=device
                )
                alarm.since = str(began.get(device) or "")
                alarm.heard_ns = _raised_ns(raised, device)
                if not now.synced:
                    alarm.clock_synced, alarm.mono_ns = False, now.mono_ns
                known = self.board.alarms.get(alarm.key)
                told = known is not None and alarm.heard_ns in known.taken_ns
                if known is not None and not known.acked_by and (told or not known.cleared):
                    changed = self.board.take_start(known, alarm) or changed
                else:
                    changed = self.board.hear(alarm, alarm.heard_ns) or changed
            for device in devices - standing:
                known = self.board.alarms.get(f"device:{device}")
                if known is not None:
                    known.cleared = True
        return changed

    async def _heard(
        self, message: Mapping[str, Any] | Callable[[], Iterable[str] | FaultsNow]
    ) -> bool:
        """``note_message`` (or, given the faults' reader, ``heard_standing``) off the loop
        (it may read the log); a failure is logged and the message left (the alarm's passage,
        if any, is read from the log at the next scan)."""
        try:
            if callable(message):
                return await asyncio.to_thread(lambda: self.heard_standing(message()))
            return await asyncio.to_thread(self.note_message, message)
        except Exception as exc:  # noqa: BLE001 - the ear goes on; never a message's data
            log.warning("alarms: a bus alarm not noted: %s", type(exc).__name__)
            return False

    def close(
        self,
        keys: list[str],
        who: str,
        standing: list[Alarm],
        resolution: str = RESOLUTIONS[0],
        note: str = "",
        record: Callable[[list[Alarm]], None] | None = None,
        seen: Mapping[str, int] | None = None,
        incidents: Mapping[str, str] | None = None,
    ) -> list[Alarm]:
        """Close the open alarms ``keys`` with what was done; the ones closed (none: there
        was no such open alarm). The acknowledgement's record is its audit row (``alarm_ack``
        with ``keys`` and ``resolution``, read back at start): ``record(alarms)`` writes it
        before they are shown closed. If it raises (the storage failed), they stay open and
        the error is the caller's. It is written outside the desk's lock (the feed takes the
        lock on the loop); meanwhile the alarms are held for this close, and a second guard's
        close of any of them is refused at once, ``AlarmClosing`` saying who is closing them,
        nothing written: never waiting on a row the card may take as long as it stalls (a
        worker of the loop's executor held, which the desk's ear and every page share). Once
        the first's row is written ``closed_by`` says who closed them; refused, they stay
        open for any guard to close. ``seen``: each
        card's ``count`` as the guard's page drew it; one that counts more now (a breach
        tried twice more while the tablet slept) refuses the whole close, ``AlarmGrown``,
        nothing written; except a card whose raises are one condition (``repeats``: the
        backlog dropping a record each second, which no page could keep up with), closed
        with the raises come since. ``incidents``: a device card's ``since`` as the page drew
        it; a card of another incident now (the one drawn was closed, the device failed
        again) is not closed."""
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution: one of {', '.join(RESOLUTIONS)}")
        me = threading.get_ident()
        with self._lock:
            # Another guard's close of them, its row being written: who (one of this thread's
            # own, a close within its row's writing, has nothing more to close).
            held = [self._closing[k] for k in keys if self._closing.get(k, (me,))[0] != me]
            if held:
                raise AlarmClosing(held[0][1])
            self._scan()
            standing = self._with_unreadable(standing)
            self.board.take_standing(standing)
            for alarm in standing:
                if alarm.key in keys and alarm.key not in self.board.alarms:
                    self.board.add(alarm)
            closing = [
                a
                for k in dict.fromkeys(keys)
                if k not in self._closing
                and (a := self.board.open_one(k)) is not None
                and same_incident((incidents or {}).get(k, ""), a.since, self.board.closes(k))
            ]
            for alarm in closing:  # a condition raised again is no one new to see: closed
                drawn = (seen or {}).get(alarm.key)
                if drawn is not None and alarm.count > drawn and not repeats(alarm.key):
                    raise AlarmGrown(alarm, alarm.count - drawn)
            self._closing.update((a.key, (me, who)) for a in closing)
        try:
            if closing and record is not None:
                record(closing)
        except BaseException:
            with self._lock:
                self._close_ended(closing)
            raise
        with self._lock:
            now = self._now()
            closed = [self.board.ack(a.key, who, now, resolution, note) for a in closing]
            self._close_ended(closing)
            return [a for a in closed if a is not None]

    def _close_ended(self, closing: list[Alarm]) -> None:
        """``closing`` no longer held by a close (shown closed, or left open: its row was
        refused), in the same hold of ``_lock`` as their acknowledgement."""
        for alarm in closing:
            del self._closing[alarm.key]

    def closed_by(self, key: str, incident: str = "") -> tuple[str, str] | None:
        """Who closed alarm ``key`` and with what outcome (a ``RESOLUTIONS`` word), when it
        is closed (in this process, or before a restart); None when it is not. A second
        guard's close of the same card is told this, not only that it is not open; a
        device's card closed and gone since (its fault cleared, or a new incident on the
        board: ``incident``, the ``since`` the page drew, names which) too; a close read
        back from the log names a device's incident only if it had begun by then (one begun
        after it nobody closed: None)."""
        with self._lock:
            alarm = self.board.alarms.get(key)
            if alarm is not None and alarm.acked_by and _closed(incident, alarm.acked_at):
                return alarm.acked_by, alarm.resolution or RESOLUTIONS[0]
            gone = self.board.closed_before.get(key)
            if gone is not None and _closed(incident, gone[3]):
                return gone[0], gone[1] or RESOLUTIONS[0]
            before = self.board.acked_before.get(key)
            if before is None or (key.startswith("device:") and not _closed(incident, before[1])):
                return None  # not closed; a device's incident begun after that close, not it
            return before[0], before[2] or RESOLUTIONS[0]

    def is_open(self, key: str) -> bool:
        """Whether alarm ``key`` is on the board and open (a close of it from a page that
        drew another incident of it closed nothing: the page is out of date)."""
        with self._lock:
            return self.board.open_one(key) is not None

    def ack(self, key: str, who: str, standing: list[Alarm]) -> Alarm | None:
        """Close one alarm as ``handled``; None when there is no such open alarm."""
        closed = self.close([key], who, standing)
        return closed[0] if closed else None
