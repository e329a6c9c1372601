"""Recent passages, in memory, for the two rules that need the past: quota and anti-passback.

Why in memory: ``decide`` is pure and runs on the pass/deny path; it must not query SQLite.
The event log is the truth: ``load`` rebuilds this from its rows at start, and the engine
calls ``record`` after each event is *committed*, so the history never holds a passage the
log lost (a crash between the two loses at most one passage from memory, never the reverse).

What counts:

* **Quota**: exits (direction ``out``, decision ``pass`` or ``manual_pass``) per household,
  however its passes spell it (``kiosk.lists.same_text``: ``１-１０１`` is ``1-101``).
  A denied attempt is not an outing, nor the exit of a pass whose role the quota does not
  count (``roles``, the config's ``quota.roles``: a staff member or a delivery on the
  household's code), read from the event's ``role:<role>`` flag (``counted_outing``), which the
  policy records whatever the quota's setting then: an outing made while the quota was off,
  or while its role counted, is judged by the roles in force. A row from before 2026-12-07
  has none: it counts as judged then (not if flagged ``QUOTA_EXEMPT``). One history per kiosk
  database, so a kiosk with several
  gates (or a ``both`` direction kiosk) counts them all together.
* **Anti-passback**: the last *passing* passage of a pass per direction. A denied attempt is
  not a passage, so someone denied for a warm wrist and re-measured is not flagged.

Unsynchronised stamps: an event stamped before NTP stepped the clock is recorded with its
monotonic time (``record(mono_ns=...)``); the engine calls ``redate`` at its first decision
on a synchronised clock, which moves each such record to the time that clock gives it, so the
quota counts an outing made three days "ago" by a clock that was three days behind as this
morning's. ``load`` reads the log's dated times (``kiosk.dating``) for earlier boots.

Memory stays bounded: entries older than ``horizon`` (the longest quota period the config
allows plus a day) are dropped as new ones arrive, by a clock to trust only: a record of a
synchronised clock prunes by its stamp; one of a clock NTP has not set (``mono_ns``), which
may be weeks fast, prunes only this boot's records not dated yet, by the monotonic time since
them; ``load`` prunes by no stamp (it reads the look-back alone, and a row an earlier boot
stamped ahead on a clock never set would drop the real ones), only this boot's records not
dated yet, by the monotonic time since them. And it stays small (``docs/memory.md``): the
history holds an entry per distinct pass in the horizon, visitors' one-day passes included, so
times are kept as integer microseconds since the epoch (exits in one ``array`` per household,
last passages in one dict per direction keyed by the pass id), not as ``datetime`` objects in
tuple-keyed dicts: ~50 bytes an entry besides its pass id, instead of ~110.
"""

from __future__ import annotations

import bisect
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .days import days_before
from .spelling import same_text

__all__ = [
    "COUNTED_DECISIONS",
    "QUOTA_EXEMPT",
    "ROLE_FLAG",
    "PassageHistory",
    "counted_outing",
    "role_flag",
]

#: Decisions that mean someone actually went through.
COUNTED_DECISIONS = frozenset({"pass", "manual_pass"})
#: An event flag: this exit is not its household's outing (a role ``quota.roles`` leaves out).
QUOTA_EXEMPT = "quota_exempt"
#: An event flag's prefix: ``role:<role>``, the role of the pass decided on (``resident``,
#: ``staff``, ``delivery``, ``visitor``), recorded whatever the quota's setting (2026-12-07).
ROLE_FLAG = "role:"
#: The roles the quota counts when the config says none (``QuotaConfig.roles``' default).
DEFAULT_ROLES: tuple[str, ...] = ("resident",)


def role_flag(role: str) -> str:
    """The event flag that records a pass's role."""
    return f"{ROLE_FLAG}{role}"


def counted_outing(flags: Iterable[str], roles: Collection[str] | None) -> bool:
    """Whether a passing exit with these event ``flags`` is its household's outing for a quota
    counting ``roles``: its role's flag (``role_flag``) says, whatever the quota's setting when
    it was made. A row without one (before 2026-12-07; a guard's pass for a person without a
    pass) counts as judged then: unless flagged ``QUOTA_EXEMPT``. ``roles`` None: as judged
    then, every row (a reader told no config, as the office's)."""
    flags = tuple(flags)
    role = next((f[len(ROLE_FLAG) :] for f in flags if f.startswith(ROLE_FLAG)), None)
    if role is None or roles is None:
        return QUOTA_EXEMPT not in flags
    return role in roles


_DIRECTIONS = frozenset({"in", "out"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_HOUR_US = 3_600_000_000
_DAY_US = 24 * _HOUR_US


def _us(ts: datetime) -> int:
    """An aware time as integer microseconds since the epoch (exact, any offset)."""
    return (ts - _EPOCH) // _ONE_US


def _time(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _take(counts: Counter[tuple[str | None, int]], item: tuple[str | None, int]) -> bool:
    """Whether ``item`` is still counted in ``counts``, taking one of it."""
    if counts[item] <= 0:
        return False
    counts[item] -= 1
    return True


def _aware(ts: datetime | str) -> datetime:
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if not isinstance(ts, datetime) or ts.tzinfo is None:
        raise ValueError("passage time must be a timezone-aware datetime or ISO 8601 text")
    return ts


class PassageHistory:
    """Exits per household and the last passage per (pass, direction)."""

    def __init__(
        self, horizon: timedelta = timedelta(days=31), roles: Collection[str] = DEFAULT_ROLES
    ) -> None:
        self.horizon = horizon
        #: The roles whose exits are their household's outings (``quota.roles``).
        self.roles = frozenset(roles)
        # household (``same_text``: however its passes spell it) -> sorted exit times (us)
        self._exits: dict[str, array[int]] = {}
        self._spelled: dict[str, str] = {}  # that key -> the first spelling recorded
        # direction -> pass_id -> time of its last passage that way (us)
        self._last: dict[str, dict[str, int]] = {"in": {}, "out": {}}
        # direction -> pass_id -> its other passages that way, sorted, all no later than the
        # one in ``_last``: those a peer's replaced and peers' fetched late below it, the whole
        # stack (pruned with the rest: the look-back), for what is left when gates say they
        # did not open (``forget``, in any order) or this gate's is dated (``redate``). Only
        # passes seen at several gates; a passage here starts the stack again.
        self._beneath: dict[str, dict[str, array[int]]] = {"in": {}, "out": {}}
        self._previous: int | None = None  # the time of the record before (us)
        self._pruned_at: int | None = None
        # Records stamped on an unsynchronised clock (``record(mono_ns=...)``), to be dated
        # by ``redate``: (household key or None, pass id or None, direction, us, mono_ns).
        self._undated: list[tuple[str | None, str | None, str, int, int]] = []
        self._pruning = True  # False while ``load`` reads the look-back back

    def record(
        self,
        pass_id: str | None | object,
        household: str | None = None,
        direction: str | None = None,
        decision: str | None = None,
        ts: datetime | str | None = None,
        flags: Iterable[str] = (),
        *,
        mono_ns: int | None = None,
        peer: bool = False,
    ) -> None:
        """Remember one committed event; only passing decisions count (see module doc).
        ``mono_ns``: the event was stamped on an unsynchronised clock at this monotonic time
        (this boot's); ``redate`` moves it once the clock is synchronised. ``peer``: a
        passage at another gate of the compound (``kiosk.peers``), fetched late and in no
        order with this gate's: it is a pass's last passage only if later than the one held,
        it prunes only as time goes forward and never this gate's records not dated yet (their
        stamps are of a clock not set: 1970), and it is never dated (``redate``).

        Also accepts the committed event itself (``record(event)``: any object or mapping with
        ``pass_id``, ``household``, ``direction``, ``decision``, ``ts``, ``flags``), as the
        engine does."""
        if direction is None and not isinstance(pass_id, str | None):
            event = pass_id

            def get(key: str) -> Any:
                if isinstance(event, Mapping):
                    return event.get(key)
                return getattr(event, key, None)

            pass_id, household = get("pass_id"), get("household")
            direction, decision, ts = get("direction"), get("decision"), get("ts")
            flags = get("flags") or ()
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be 'in' or 'out', not {direction!r}")
        if decision not in COUNTED_DECISIONS:
            return
        if ts is None:
            raise ValueError("passage time is required")
        us = _us(_aware(ts))
        key: str | None = None
        if household and direction == "out" and counted_outing(flags, self.roles):
            key = same_text(household)
            times = self._exits.get(key)
            if times is None:
                times = self._exits[key] = array("q")
                self._spelled[key] = household
            bisect.insort(times, us)
        passed = pass_id if isinstance(pass_id, str) and pass_id else None
        if passed is not None:
            self._set_last(direction, passed, us, peer)
        if peer:
            # Its stamp is no later than this kiosk's clock allows (``kiosk.peers``): prune as
            # time goes forward, at most hourly, never on a passage of the past caught up. Not
            # this gate's records waiting to be dated: stamped on its clock not set (1970),
            # they are no older for a peer's dated time (NTP stepped here, the next decision
            # not made yet; a restart loading the peers' rows on a clock never set).
            if self._pruned_at is None or us - self._pruned_at > _HOUR_US:
                self._pruned_at = us
                self._prune(us - self.horizon // _ONE_US, keep_undated=True)
            return
        if mono_ns is not None:
            # A clock NTP has not set may be weeks fast (a fake-hwclock restored far ahead):
            # its stamps prune nothing dated. This boot's records not dated yet go by the
            # monotonic time since them, a clock that is never wrong about time passing.
            if key is not None or passed is not None:
                self._undated.append((key, passed, direction, us, int(mono_ns)))
            self._prune_undated(int(mono_ns) - self.horizon // _ONE_US * 1000)
            return
        if not self._pruning:
            return
        previous, self._previous = self._previous, us
        # Prune only on a record that follows the one before within a day: one stamped by a
        # wall clock far ahead (a bad NTP step, a wrong RTC) must not prune every real one.
        # Pruning walks every household: at most hourly (or when time came back from ahead).
        follows = previous is not None and 0 <= us - previous <= _DAY_US
        if follows and (self._pruned_at is None or not 0 <= us - self._pruned_at <= _HOUR_US):
            self._pruned_at = us
            self._prune(us - self.horizon // _ONE_US)

    def _set_last(self, direction: str, passed: str, us: int, peer: bool) -> None:
        """The pass's last passage that way: the last recorded here, not the latest stamped
        (records come in seq order, and after the wall clock stepped back the real passage
        carries the earlier stamp), the stack beneath it dropped; a peer's goes into the
        stack (``_stack``): the last only when later than the one held."""
        if peer:
            self._stack(direction, passed, us)
        else:
            self._last[direction][passed] = us
            self._beneath[direction].pop(passed, None)

    def _stack(self, direction: str, pass_id: str, us: int) -> None:
        """Put a passage of the pass that way into its stack: on top (``_last``) when later
        than the top, the top going beneath; else beneath, in order."""
        last, beneath = self._last[direction], self._beneath[direction]
        top = last.get(pass_id)
        if top is None:
            last[pass_id] = us
            return
        below = beneath.get(pass_id)
        if below is None:
            below = beneath[pass_id] = array("q")
        if us > top:
            below.append(top)
            last[pass_id] = us
        else:
            bisect.insort(below, us)

    def _unstack(self, direction: str, pass_id: str, us: int) -> bool:
        """Take a passage of the pass that way out of its stack, wherever it is in it: the
        top taken, the latest beneath comes up. Whether it was held."""
        last, beneath = self._last[direction], self._beneath[direction]
        below = beneath.get(pass_id)
        if last.get(pass_id) == us:
            if below:
                last[pass_id] = below.pop()
            else:
                del last[pass_id]
        elif below and (at := bisect.bisect_left(below, us)) < len(below) and below[at] == us:
            del below[at]
        else:
            return False
        if below is not None and not below:
            del beneath[pass_id]
        return True

    def load(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Rebuild from event-log rows (``pass_id``, ``household``, ``direction``,
        ``decision``, ``ts``) in ``seq`` order. Returns how many rows counted.
        ``undated_mono_ns``: the row was stamped on this boot's clock before NTP set it, and
        nothing dated it yet (a restart before the step): ``redate`` will move it."""
        counted = 0
        self._pruning = False  # what it reads is the look-back already; a row stamped ahead
        try:  # by a boot's clock never set (dated by it alone) must not prune the real ones
            counted = self._load(rows)
        finally:
            self._pruning = True
        return counted

    def _load(self, rows: Iterable[Mapping[str, Any]]) -> int:
        counted = 0
        for row in rows:
            if row.get("decision") not in COUNTED_DECISIONS:
                continue
            if row.get("direction") not in _DIRECTIONS:
                continue
            self.record(
                row.get("pass_id"),
                row.get("household"),
                row["direction"],
                row["decision"],
                row["ts"],
                row.get("flags") or (),
                mono_ns=row.get("undated_mono_ns"),
            )
            counted += 1
        return counted

    def forget(
        self,
        pass_id: str | None,
        household: str | None,
        direction: str,
        ts: datetime | str,
        flags: Iterable[str] = (),
    ) -> bool:
        """Take back a peer's passage recorded (``record(..., peer=True)``) that its gate
        then said it did not open for (``kiosk.peers``: ``not_opened``): its exit, and the
        pass's passage that way out of its stack: when it was the last, the one it replaced
        comes back (as a history rebuilt from the log holds it, and one that never held the
        peer's: anti-passback measures from it), however many peers' passages were stacked
        on it and in whatever order they are taken back. Whether anything was held of it."""
        if direction not in _DIRECTIONS:
            return False
        us = _us(_aware(ts))
        found = False
        if household and direction == "out" and counted_outing(flags, self.roles):
            times = self._exits.get(same_text(household))
            at = bisect.bisect_left(times, us) if times is not None else 0
            if times is not None and at < len(times) and times[at] == us:
                del times[at]
                found = True
        if pass_id and self._unstack(direction, pass_id, us):
            found = True
        return found

    @property
    def undated(self) -> int:
        return len(self._undated)

    def redate(self, wall: datetime, mono_ns: int) -> int:
        """The clock is synchronised: ``wall`` at monotonic ``mono_ns``, on the boot whose
        unsynchronised records ``record(mono_ns=...)`` kept. Each moves to the time that
        clock gives it (``wall`` less the monotonic time since), so an outing before NTP
        stepped the clock counts in the quota's window after it; a pass's passage moves in
        its stack (``_stack``): one that went beneath peers' passages older in real time is
        the pass's last again, one later in real time stays beneath. Returns how many moved."""
        now_us = _us(_aware(wall))
        moved = self._undated
        self._undated = []
        for key, pass_id, direction, old, mono in moved:
            new = now_us - (int(mono_ns) - mono) // 1000
            times = self._exits.get(key) if key is not None else None
            if times is not None:
                at = bisect.bisect_left(times, old)
                if at < len(times) and times[at] == old:
                    del times[at]
                    bisect.insort(times, new)
            if pass_id is not None and self._unstack(direction, pass_id, old):
                self._stack(direction, pass_id, new)
        return len(moved)

    def exits_in_period(self, household: str, now: datetime, period_days: int) -> int:
        """Exits in the rolling window ``(now - period_days, now]``. Later ones, up to a period
        after ``now`` (after a wall clock step backwards), count too: erring towards the quota,
        never past it. One stamped further ahead is a clock that was wrong, not an outing to
        come: it does not block the household until real time passes it.

        The days are counted on ``now``'s own clock (aware arithmetic is wall-clock
        arithmetic): ``now`` in the site's zone gives the same local time ``period_days``
        earlier across a daylight-saving change (``kiosk.policy.quota_reached``); in UTC,
        ``period_days`` x 24 h."""
        period = timedelta(days=period_days)  # a start the spring change skipped: its end
        return self._exits_between(household, days_before(now, period_days), now + period)

    def _exits_between(self, household: str, after: datetime, upto: datetime | None) -> int:
        """Exits of ``household`` in ``(after, upto]`` (``upto`` None: no end)."""
        times = self._exits.get(same_text(household))
        if not times:
            return 0
        end = len(times) if upto is None else bisect.bisect_right(times, _us(_aware(upto)))
        return end - bisect.bisect_right(times, _us(_aware(after)))

    def households(self) -> list[str]:
        """The households with an exit the history holds (whose quota may be used), each once,
        as its first recorded pass spelled it."""
        return [self._spelled[key] for key in self._exits]

    def last_passage(self, pass_id: str, direction: str) -> datetime | None:
        """When ``pass_id`` last passed in ``direction`` (UTC), or None."""
        last = self._last.get(direction)
        us = last.get(pass_id) if last is not None else None
        return None if us is None else _time(us)

    def __len__(self) -> int:
        return sum(len(v) for v in self._exits.values()) + sum(map(len, self._last.values()))

    def _prune_undated(self, before_mono: int) -> None:
        """Drop this boot's records not dated yet taken before monotonic ``before_mono``
        (``_undated`` is in the order they were taken): their exits and passages."""
        while self._undated and self._undated[0][4] < before_mono:
            key, pass_id, direction, us, _ = self._undated.pop(0)
            times = self._exits.get(key) if key is not None else None
            if key is not None and times is not None:
                at = bisect.bisect_left(times, us)
                if at < len(times) and times[at] == us:
                    del times[at]
                if not times:
                    del self._exits[key], self._spelled[key]
            if pass_id is not None:
                self._unstack(direction, pass_id, us)

    def _prune(self, before: int, *, keep_undated: bool = False) -> None:
        """Drop what is stamped before ``before``; ``keep_undated``: but not the records
        waiting to be dated (``redate``), whose stamps say nothing of their age to a time of
        another clock."""
        exits: Counter[tuple[str | None, int]] = Counter()
        passes: set[tuple[str, str | None, int]] = set()
        if keep_undated:
            for key, pass_id, direction, us, _ in self._undated:
                exits[key, us] += 1
                passes.add((direction, pass_id, us))
        else:
            self._undated = [u for u in self._undated if u[3] >= before]
        for household in list(self._exits):
            times = self._exits[household]
            cut = bisect.bisect_left(times, before)
            if cut:
                kept = [us for us in times[:cut] if _take(exits, (household, us))]
                times[:cut] = array("q", kept)
            if not times:
                del self._exits[household], self._spelled[household]
        for direction in _DIRECTIONS:
            self._prune_last(direction, before, passes)

    def _prune_last(
        self, direction: str, before: int, passes: set[tuple[str, str | None, int]]
    ) -> None:
        """Drop the passages that way stamped before ``before`` but those in ``passes``
        (waiting to be dated), from each pass's stack too: one kept beneath a dropped top
        comes up."""
        last, beneath = self._last[direction], self._beneath[direction]
        stale = {p for p, us in last.items() if us < before and (direction, p, us) not in passes}
        emptied = []
        for pass_id, below in beneath.items():
            cut = bisect.bisect_left(below, before)
            if cut:
                kept = [us for us in below[:cut] if (direction, pass_id, us) in passes]
                below[:cut] = array("q", kept)
            if pass_id in stale and below:  # everything beneath was stale: one waiting to be dated
                last[pass_id] = below.pop()
                stale.discard(pass_id)
            if not below:
                emptied.append(pass_id)
        if len(stale) > len(last) // 2:  # rebuilt: a dict never shrinks its table
            self._last[direction] = {p: us for p, us in last.items() if p not in stale}
        else:
            for pass_id in stale:
                del last[pass_id]
        if len(emptied) > len(beneath) // 2:
            self._beneath[direction] = {p: b for p, b in beneath.items() if b}
        else:
            for pass_id in emptied:
                del beneath[pass_id]

    def drop_forgotten(self, passages: Iterable[tuple[str, datetime | str]]) -> int:
        """A resident's forget emptied these passages of this gate's log (``kiosk.people``:
        each ``(direction, time)``, their pass and household nulled there): drop each from
        memory as a history rebuilt from the log (a restart) would not hold it. Found by its
        time: an exit of any household and the last passage that way of any pass at that
        very microsecond (one gate's log commits one passage at a time), wherever it is in the
        pass's stack (``_unstack``: other gates' passages of the pass stay). Returns how many
        entries went."""
        wanted: dict[str, set[int]] = {"in": set(), "out": set()}
        for direction, ts in passages:
            if direction in wanted:
                wanted[direction].add(_us(_aware(ts)))
        dropped = 0
        for household in list(self._exits) if wanted["out"] else []:
            times = self._exits[household]
            kept = array("q", (us for us in times if us not in wanted["out"]))
            if len(kept) != len(times):
                dropped += len(times) - len(kept)
                self._exits[household] = kept
            if not kept:
                del self._exits[household], self._spelled[household]
        for direction, at in wanted.items():
            last, beneath = self._last[direction], self._beneath[direction]
            held = [(p, us) for p, us in last.items() if us in at]
            held += [(p, us) for p, below in beneath.items() for us in below if us in at]
            for pass_id, us in held:
                dropped += self._unstack(direction, pass_id, us)
        self._undated = [u for u in self._undated if u[3] not in wanted[u[2]]]
        return dropped
