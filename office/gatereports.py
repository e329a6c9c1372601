"""The gates' ledger figures, fetched for the office's district report.

The event log is pulled row by row (``office.pull``); the ledgers around the gate (returnees,
home quarantine, service requests: ``kiosk.ledgers``) are not — they hold names and phone
numbers the office does not need. What the office needs is the gate's counts, and the gate
already serves them: its daily report (``GET /api/v1/stats?day=``, scope ``logs:read`` or
``stats:read``) has them in ``community``. ``collect_reports`` asks a gate for today's report
and for every day of the last ``REPORT_DAYS`` it has not reported since the day ended, and
keeps from each only the figures that come from ledgers (``LEDGER_PATHS``), as counts
(``ledger_figures`` refuses anything else), in ``fleet_gate_reports`` (``office.pg``). The
figures that come from events are computed centrally from the pulled events
(``office.district``).

Bounded: one request per day asked for, at most ``REPORT_DAYS`` per round, each body at most
``MAX_BODY_BYTES``; with the same bearer token as the pull (``logs:read``). A gate that does
not answer is not written: the district report names it as missing for that day instead of
counting it as zero.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, TypedDict, Unpack
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from kiosk import services
from kiosk.days import day_bounds
from kiosk.stats import ABRIDGED_QUOTA_CHANGES, STAFFING_CHANGED
from kiosk.typed import visible, whole_number
from office.pull import (
    PLAIN_JSON,
    REQUEST_DEADLINE_S,
    PullError,
    fetch_bounded,
    json_values,
    status_words,
)

__all__ = [
    "Collected",
    "LEDGER_PATHS",
    "LISTS_KEY",
    "MAX_BODY_BYTES",
    "POLICY_KEY",
    "REPORT_DAYS",
    "STAFFING_KEY",
    "UNREADABLE_KEY",
    "ReportTarget",
    "collect_gate_reports",
    "collect_reports",
    "fetch_report",
    "gate_staffing",
    "ledger_figures",
]

#: Where the figures that come from the gate's ledgers sit in ``report["community"]``.
LEDGER_PATHS: tuple[tuple[str, ...], ...] = (
    ("fevers", "returnee_checks"),
    ("returnees",),
    ("quarantined_households",),
    ("service_requests",),
    ("vehicles", "unknown_plates"),
)
_Shape = Any  # ``int`` (a count) or a mapping of names to shapes
#: Where the gate's quarantined households split by list (``kiosk.categories.quarantine_lists``)
#: are kept beside the ledger figures: the district counts the office's list once.
LISTS_KEY = "quarantine_lists"
_LISTS_SHAPE: _Shape = {"office": int, "local": int, "office_compound": int}
REPORT_DAYS = 7
#: Where the gate's quota policy and its compound's other gates are kept beside the ledger
#: figures (``gate_policy``): the district counts the quota per compound with its own rule.
POLICY_KEY = "policy"
#: Where the gate's day split by its staffed hours is kept (``gate_staffing``): the district
#: cannot count it, each gate's hours are its own config.
STAFFING_KEY = "staffing"
#: Where the gate's count of the day's unreadable rows (its report's ``unreadable_rows``: rows
#: a damaged field left out of its figures) is kept beside the ledger figures (None: a gate of
#: an older release): the district says the gate's figures are not its whole day.
UNREADABLE_KEY = "unreadable_rows"
_PART_SHAPE: _Shape = {"events": int, "passages": dict.fromkeys(("total", "passed", "denied"), int)}
_SPANS = re.compile(r"^([0-2]\d:[0-5]\d-[0-2]\d:[0-5]\d)(, [0-2]\d:[0-5]\d-[0-2]\d:[0-5]\d){0,7}$")
#: ``[compound]`` allows 16 peers (``kiosk.config.compound``); a kiosk id is ``site.kiosk_id``.
_MAX_PEERS = 16
_KIOSK_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: The pass roles a quota may count (``kiosk.config.policy.QuotaConfig.roles``).
_ROLES = frozenset(("resident", "staff", "delivery", "visitor"))
#: How far apart two synchronised clocks (the office's, a gate's) may be about a gate's
#: midnight: a gate answering for the day before or after the office's within this (or while
#: the exchange lasted) is on the right day, not a clock to distrust.
DAY_EDGE_TOLERANCE = timedelta(seconds=60)
MAX_BODY_BYTES = 2 << 20
#: The most JSON values an answer is parsed with (``office.pull.json_values``): a report is
#: ~260 (~2 KB); 2 MiB of ``[],[],...`` parsed into ~45 MB of lists, per concurrent pull.
MAX_REPORT_VALUES = 1 << 16
#: The answers that are about the gate, not the day asked for: its token refused (401, 403)
#: or its rate limit reached (429). On a past day they stop the gate's round (``GateRefusal``).
GATE_REFUSALS = frozenset({401, 403, 429})
#: The longest a gate's ``Retry-After`` (on a 429) holds back the collector's next ask for its
#: reports: a hostile or mistaken one (a year) is cut to this; one that is not a number of
#: seconds (negative, a date: the gate sends seconds, and a date is read on the gate's clock)
#: holds back nothing beyond the collector's own interval.
RETRY_AFTER_MAX_S = 3600
#: The refused past days a round's error names in full; the others are counted.
REFUSALS_NAMED = 3
_MAX_COUNT = 10**9
_ZONE = re.compile(r"^[A-Za-z0-9_+/-]{1,64}$")


class ReportTarget(Protocol):
    def write_gate_report(
        self, kiosk_id: str, day: date, timezone: str, ledgers: dict[str, Any], final: bool
    ) -> None: ...

    def final_report_days(self, kiosk_id: str, since: date) -> set[date]: ...


_SHAPES: dict[str, _Shape] = {
    "fevers": {"returnee_checks": int},
    "returnees": dict.fromkeys(("new", "observing", "cleared", "escalated", "transferred"), int),
    "quarantined_households": int,
    "service_requests": {
        **dict.fromkeys(("opened", "done", "open_at_end"), int),
        "by_kind": dict.fromkeys(services.KINDS, int),
    },
    "vehicles": {"unknown_plates": int},
}


def _counts(value: object, shape: _Shape, where: str) -> Any:
    """``value`` as ``shape``: a count, ``None`` (unknown), or a mapping of the shape's names
    (others are dropped); ``ValueError`` for anything else."""
    if value is None:
        return None
    if shape is int:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_COUNT:
            return value
        raise ValueError(f"{where}: expected a count")
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected counts by name")
    return {k: _counts(v, shape[k], f"{where}.{k}") for k, v in value.items() if k in shape}


def ledger_figures(community: object) -> dict[str, Any]:
    """The ledger figures of a gate's ``community`` section (``LEDGER_PATHS``), counts only.
    A figure the gate does not have is ``None``. ``ValueError`` when it is not counts."""
    if not isinstance(community, dict):
        raise ValueError("the report has no community section")
    out: dict[str, Any] = {}
    for path in LEDGER_PATHS:
        value: object = community
        shape: _Shape = _SHAPES
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
            shape = shape[key]
        holder = out
        for key in path[:-1]:
            holder = holder.setdefault(key, {})
        holder[path[-1]] = _counts(value, shape, ".".join(path))
    return out


def _bounded_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def gate_policy(report: dict[str, Any]) -> dict[str, Any]:
    """The gate's outing quota as its report counted it (``exits_per_household``: on or off,
    outings per period, the period's days; ``kiosk.config.policy.QuotaConfig``'s bounds) and
    the pass roles it counts, and the compound's other gates it counts them with
    (``compound.peers``), its ``[compound] id`` (``id``) and the compound whose office
    entries it holds (``lists_for``, ``kiosk.categories.quarantine_lists``). ``None`` for
    what the report does not say (a gate of an older release); ``ValueError`` for anything
    else."""
    exits = report.get("exits_per_household")
    quota = None
    if exits is not None:
        if not isinstance(exits, dict):
            raise ValueError("exits_per_household: expected a section")
        quota = _quota_rule(exits, "exits_per_household")
        if exits.get("quota_changes") is not None:
            quota["changes"] = _quota_changes(exits["quota_changes"], _report_day(report))
        left_out = _left_out(exits, quota.get("changes"))
        if left_out is not None:
            quota["changes_left_out"] = left_out
    compound = report.get("compound")
    peers = None
    if compound is not None:
        listed = compound.get("peers") if isinstance(compound, dict) else None
        if (
            not isinstance(listed, list)
            or len(listed) > _MAX_PEERS
            or not all(isinstance(p, str) and _KIOSK_ID.fullmatch(p) for p in listed)
        ):
            raise ValueError(f"compound.peers: expected at most {_MAX_PEERS} kiosk ids")
        peers = sorted(set(listed))
    named = {}
    for key in ("id", "lists_for"):
        value = compound.get(key) if isinstance(compound, dict) else None
        if value is not None and not (isinstance(value, str) and _KIOSK_ID.fullmatch(value)):
            raise ValueError(f"compound.{key}: expected a compound id")
        named[key] = value
    return {"quota": quota, "peers": peers, **named}


#: The most rules a day's ``quota_changes_left_out`` may say were left out: a restart a second.
MAX_LEFT_OUT = 86_400


def _left_out(exits: dict[str, Any], changes: list[dict[str, Any]] | None) -> int | None:
    """The rules a report's abridged ``quota_changes`` left out (``quota_changes_left_out``,
    None when it says none); ``ValueError`` unless it is a count (0 to ``MAX_LEFT_OUT``) said
    of a list exactly ``ABRIDGED_QUOTA_CHANGES`` long, and unless such a list says it: a list
    of any other length is the day's every rule."""
    left_out = exits.get("quota_changes_left_out")
    where = "exits_per_household.quota_changes_left_out"
    abridged = changes is not None and len(changes) == ABRIDGED_QUOTA_CHANGES
    if left_out is None:
        if abridged:
            raise ValueError(f"{where}: an abridged quota_changes without it")
        return None
    if not _bounded_int(left_out, 0, MAX_LEFT_OUT):  # 0: a day of 49 rules, all listed
        raise ValueError(f"{where}: not a count")
    if not abridged:
        raise ValueError(f"{where}: said of a quota_changes that is not abridged")
    return int(left_out)


def _quota_rule(fields: dict[str, Any], where: str) -> dict[str, Any]:
    """A quota as a report says it (``kiosk.stats.quota_fields``), ``ValueError`` for
    anything else: on or off, outings per period, the period's days, the roles counted
    (None: a report frozen before it said them)."""
    enabled, count, days = (fields.get(k) for k in ("quota_enabled", "quota_exits", "period_days"))
    if not (isinstance(enabled, bool) and _bounded_int(count, 1, 100)
            and _bounded_int(days, 1, 30)):  # fmt: skip
        raise ValueError(f"{where}: not a quota policy")
    roles = fields.get("quota_roles")
    if roles is not None and not (
        isinstance(roles, list) and len(roles) <= len(_ROLES) and set(roles) <= _ROLES
    ):
        raise ValueError(f"{where}.quota_roles: not pass roles")
    quota: dict[str, Any] = {"enabled": enabled, "exits": count, "period_days": days}
    quota["roles"] = sorted(set(roles)) if roles is not None else None
    return quota


def _report_day(report: dict[str, Any]) -> tuple[datetime, datetime] | None:
    """UTC ``[start, end)`` of the report's day on its clock (``day``, ``timezone``; None
    when it lacks either: ``_fetch`` reads them first); a zone this office's tzdata does not
    know: the day on any clock (UTC-12 to UTC+14)."""
    if "day" not in report or "timezone" not in report:
        return None
    day = date.fromisoformat(report["day"])
    try:
        start, end = day_bounds(day, ZoneInfo(report["timezone"]))
        widen = timedelta(0)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: 'Asia', a folder
        (start, end), widen = day_bounds(day, "UTC"), timedelta(hours=14)
    begins, ends = _utc_time(start + "+00:00", "day"), _utc_time(end + "+00:00", "day")
    try:
        return begins - widen, ends + widen
    except OverflowError:  # the calendar's first or last day
        return begins, ends


def _quota_changes(changes: object, day: tuple[datetime, datetime] | None) -> list[dict[str, Any]]:
    """The quotas in force during a day whose rule changed during it (``quota_changes``:
    ``kiosk.stats.day_quotas``), each with when it came into force (``from``: UTC, within
    the report's ``day``; None for the one in force when the day began), in order;
    ``ValueError`` for anything else."""
    where = "exits_per_household.quota_changes"
    if not (isinstance(changes, list) and 1 < len(changes) <= ABRIDGED_QUOTA_CHANGES):
        raise ValueError(f"{where}: expected the rules in force during the day")
    out, last = [], None
    for i, item in enumerate(changes):
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a rule")
        since = item.get("from")
        if (since is None) != (i == 0):
            raise ValueError(f"{where}.from: only the first rule is from the day's start")
        when = _utc_time(since, f"{where}.from") if since is not None else None
        if when is not None and day is not None and not day[0] <= when < day[1]:
            raise ValueError(f"{where}.from: expected a time within the report's day")
        if when is not None and last is not None and when < last:
            raise ValueError(f"{where}.from: expected in order")
        last = when or last
        out.append({"from": when and when.isoformat()} | _quota_rule(item, where))
    return out


def _utc_time(value: object, where: str) -> datetime:
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) and len(value) < 40 else None
        utc = when.astimezone(UTC) if when is not None and when.tzinfo is not None else None
    except (ValueError, OverflowError):  # OverflowError: a time at the calendar's ends
        utc = None
    if utc is None:
        raise ValueError(f"{where}: expected a time with its offset")
    return utc


def gate_staffing(report: dict[str, Any]) -> dict[str, Any] | None:
    """The gate's day split by its staffed hours (``kiosk.stats.staffing_section``) as counts:
    ``hours`` (its spans, ``08:30-17:30``, or None: round the clock), and for ``staffed`` and
    ``unstaffed`` the ``events`` and ``passages`` (None: a day whose hours changed during it,
    ``STAFFING_CHANGED``); None when the report has none (a gate of an older release);
    ``ValueError`` for anything else."""
    staffing = report.get("staffing")
    if staffing is None:
        return None
    if not isinstance(staffing, dict):
        raise ValueError("staffing: expected a section")
    hours = staffing.get("hours")
    if staffing == STAFFING_CHANGED:  # a frozen day whose hours changed during it: no split
        return {"hours": hours, **dict.fromkeys(_PARTS)}
    if hours is not None and not (isinstance(hours, str) and _SPANS.fullmatch(hours)):
        raise ValueError("staffing.hours: expected spans of hours")
    parts = {p: _counts(staffing.get(p), _PART_SHAPE, f"staffing.{p}") for p in _PARTS}
    return {"hours": hours, **parts}


_PARTS = ("staffed", "unstaffed")


@dataclass(frozen=True, slots=True)
class _Report:
    day: date
    zone: str
    figures: dict[str, Any]
    #: The day's events dated only by a clock never synchronised (the report's
    #: ``clock.unsynced``): they may yet be dated to another day.
    unsynced: int
    #: The day ended before the gate's log began (the report's ``before_log``): its figures
    #: are no day the gate kept, nothing to keep.
    before_log: bool = False


def fetch_report(
    client: httpx.Client,
    base: str,
    token: str,
    day: date | None = None,
    deadline_s: float = REQUEST_DEADLINE_S,
) -> tuple[date, str, dict[str, Any]]:
    """``(day, timezone, ledger figures)`` of the gate's report for ``day`` (None: the gate's
    today), all of it within ``deadline_s``. Raises ``PullError`` for any failure (network,
    status, a malformed report, a gate trickling its answer)."""
    got = _fetch(client, base, token, day, deadline_s)
    return got.day, got.zone, got.figures


def _fetch(
    client: httpx.Client, base: str, token: str, day: date | None, deadline_s: float
) -> _Report:
    url = base + "/api/v1/stats"
    params = {"day": day.isoformat()} if day is not None else {}
    asked = url if day is None else f"{url}?day={day.isoformat()}"  # every error names it
    headers = {"Authorization": f"Bearer {token}", **PLAIN_JSON}
    try:
        status, answer_headers, body = fetch_bounded(
            client, url, params, headers, cap=MAX_BODY_BYTES, deadline_s=deadline_s
        )
    except httpx.HTTPError as exc:
        raise PullError(f"{asked}: {type(exc).__name__}") from None
    except PullError as exc:  # the deadline's, an answer too large: "URL: why", by the day
        raise PullError(asked + str(exc).removeprefix(url)) from None
    values = json_values(body)
    if values > MAX_REPORT_VALUES:
        raise PullError(
            f"{asked}: HTTP {status}, an answer of up to {values:,} JSON values, more than the"
            f" {MAX_REPORT_VALUES:,} a report is parsed with (not a kiosk?)"
        )
    if status != 200:  # no report: the token or the rate limit the gate's, else that day's
        said = f"{asked}: {status_words(status, answer_headers, body)}"
        if status in GATE_REFUSALS:
            raise GateRefusal(said, _retry_after(status, answer_headers))
        raise RefusedReport(said)
    try:
        report = json.loads(body)
    except (ValueError, RecursionError):
        kind = visible(answer_headers.get("content-type", "no type")[:60])
        raise PullError(
            f"{asked}: the answer ({kind}, {len(body):,} bytes) is not JSON: a proxy's or"
            " captive portal's page, not the gate's?"
        ) from None
    try:
        got = date.fromisoformat(report["day"])
        zone = report["timezone"]
        if not isinstance(zone, str) or not _ZONE.fullmatch(zone):
            raise ValueError("timezone: not a zone name")
        if day is not None and got != day:
            raise ValueError(f"asked for {day}, got {got}")
        figures = ledger_figures(report.get("community"))
        figures[LISTS_KEY] = _counts(report.get(LISTS_KEY), _LISTS_SHAPE, LISTS_KEY)
        figures[POLICY_KEY] = gate_policy(report)
        figures[STAFFING_KEY] = gate_staffing(report)
        figures[UNREADABLE_KEY] = _counts(report.get(UNREADABLE_KEY), int, UNREADABLE_KEY)
        clock = report.get("clock")
        unsynced = _counts(clock.get("unsynced") if isinstance(clock, dict) else None, int, "clock")
        before_log = report.get("before_log", False)
        if not isinstance(before_log, bool):
            raise ValueError("before_log: expected true or false")
        return _Report(got, zone, figures, unsynced or 0, before_log)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise RefusedReport(f"{asked}: not a daily report ({exc})") from None


class RefusedReport(PullError):
    """A gate's answer that is not a daily report the office keeps (``_fetch``: an HTTP error
    status other than ``GATE_REFUSALS``, or a report refused): that day's alone, the gate's
    other days are asked all the same (``collect_reports``)."""


class GateRefusal(PullError):
    """A gate's 401, 403 or 429 (``GATE_REFUSALS``): its token refused or its rate limit
    reached, whatever day was asked for. On a past day it stops the gate's round, like a
    network failure (``Collected.failed``): the gate's other days would be refused the same,
    and a rate-limited gate asked for them is only held back longer. ``retry_after_s``: how
    long a 429 said to wait (``_retry_after``), None when it did not say."""

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _retry_after(status: int, headers: httpx.Headers) -> int | None:
    """The seconds a 429's ``Retry-After`` says to wait, at most ``RETRY_AFTER_MAX_S``: the
    longest whole number of seconds among its values (two headers, or a proxy's ``600, 600``:
    until 2026-12-08 such a list held nothing); None for another status, or a ``Retry-After``
    absent or with no whole number of seconds (a date, a negative)."""
    if status != 429:
        return None
    waits = [_seconds(v.strip()) for v in headers.get_list("retry-after", split_commas=True)]
    known = [wait for wait in waits if wait is not None]
    return min(max(known), RETRY_AFTER_MAX_S) if known else None


#: The most digits a ``Retry-After`` is read from as a number (``whole_number``).
_READ_DIGITS = 18


def _seconds(text: str) -> int | None:
    """``text`` as whole seconds: more digits than ``_READ_DIGITS`` are more than
    ``RETRY_AFTER_MAX_S`` (until 2026-12-08 such a wait held nothing)."""
    if text.isascii() and text.isdigit() and len(text) > _READ_DIGITS:
        return RETRY_AFTER_MAX_S
    return whole_number(text, _READ_DIGITS)


def _refused_days(base: str, refusals: list[RefusedReport]) -> RefusedReport | None:
    """The past days refused in a round as one refusal: the first ``REFUSALS_NAMED`` named,
    the address said once and each why once for the days in a row it is the same for
    (``…?day=A, day=B: why``: a why said again for each day pushed the later days out of the
    status's ``ERROR_CHARS``), the others counted; None when none was."""
    if len(refusals) <= 1:
        return refusals[0] if refusals else None
    asked = base + "/api/v1/stats?"
    said: list[tuple[list[str], str]] = []  # the days in a row, their why
    for i, refusal in enumerate(refusals[:REFUSALS_NAMED]):
        text = str(refusal)
        day, _, why = (text if i == 0 else text.removeprefix(asked)).partition(": ")
        if said and said[-1][1] == why:
            said[-1][0].append(day)
        else:
            said.append(([day], why))
    more = len(refusals) - REFUSALS_NAMED
    tail = [f"{more} more past day{'' if more == 1 else 's'} refused"] if more > 0 else []
    named = [f"{', '.join(days)}: {why}" for days, why in said]
    return RefusedReport("; ".join([*named, *tail]))


@dataclass(frozen=True, slots=True)
class Collected:
    """What ``collect_gate_reports`` kept of a gate: its today (kept), its past days' answers
    refused as one (``RefusedReport``, ``_refused_days``: the first few named, the others
    counted), None when none was, and the failure (network, deadline, ``GateRefusal``) that
    stopped the round on a past day, None when none did."""

    today: date
    refused: RefusedReport | None = None
    failed: PullError | None = None

    @property
    def error(self) -> str | None:
        """The refusal and the failure, each naming its day; None when neither."""
        return "; ".join(str(e) for e in (self.refused, self.failed) if e is not None) or None


class _Asking(TypedDict, total=False):
    """``collect_gate_reports``'s keyword arguments."""

    days: int
    deadline_s: float
    now: datetime | None


def collect_reports(
    client: httpx.Client, target: ReportTarget, base: str, kiosk_id: str, token: str,
    **asking: Unpack[_Asking],
) -> date:  # fmt: skip
    """``collect_gate_reports``, its past day's failure or else its refusal raised once the
    rest is kept. Returns the gate's today."""
    got = collect_gate_reports(client, target, base, kiosk_id, token, **asking)
    for error in (got.failed, got.refused):
        if error is not None:
            raise error
    return got.today


def collect_gate_reports(
    client: httpx.Client,
    target: ReportTarget,
    base: str,
    kiosk_id: str,
    token: str,
    *,
    days: int = REPORT_DAYS,
    deadline_s: float = REQUEST_DEADLINE_S,
    now: datetime | None = None,
) -> Collected:
    """Fetch and keep the gate's ledger figures: today's (again) and every day of the last
    ``days`` not yet reported after it ended. Returns the gate's today, and a past day's
    refusal (``Collected``).

    ``now``: the office's synchronised clock (None when it is not). A gate whose today is
    another day than the office's in the gate's zone has a clock not synchronised (a Pi has
    no RTC: back at 1970, or at its last shutdown): nothing is kept from it (``PullError``),
    rather than its figures under a wrong day and the days before it marked final. A past
    day whose report has events dated only by an unsynchronised clock (``clock.unsynced``)
    is kept but not final: it is asked again, as they may yet be dated elsewhere. A past
    day is final once it ended, frozen at the gate or not: the gate counts a day not frozen
    yet as its freeze will (``kiosk.stats.daily_report``: by the settings in force on it),
    and waiting for a freeze would wait for good on a gate that freezes none (docs/fleet.md).
    A past day's report refused (``RefusedReport``: an HTTP error status too) is that day's
    alone: the days before it are fetched and kept all the same, the refusal returned with
    today (until 2026-12-07 it stopped the round, and the days before it were never asked
    while it stood), every day refused named (the first few, the others counted). A network
    failure or a deadline on today raises (``PullError``); on a past day it stops the round,
    returned with today (``Collected.failed``: until 2026-12-07 it was raised, today kept but
    not said); so does a 401, 403 or 429 (``GateRefusal``: the gate's token or rate limit,
    not the day's; before this version each of the other days was asked all the same).
    A day the gate's report says ended before its log began (``before_log``: a gate installed
    since) is nothing to keep, no refusal: it is not written (no row of zeros in the
    district's sums), and the days before it, before the log too, are not asked. Today's
    report saying it (the gate's clock set back before its log began) raises (``PullError``,
    naming it: until 2026-12-08 nothing was kept and nothing said)."""
    first = _fetch(client, base, token, None, deadline_s)
    today = first.day
    if now is not None:
        _check_day(base, first, now, timedelta(seconds=deadline_s))
    if first.before_log:  # a clock set back before the log began: no day of it to keep
        raise PullError(
            f"{base}: today ({today}) is before the gate's log began: its clock is wrong,"
            " nothing kept"
        )
    target.write_gate_report(kiosk_id, today, first.zone, first.figures, False)
    held = target.final_report_days(kiosk_id, today - timedelta(days=days - 1))
    refused: list[RefusedReport] = []
    for back in range(1, days):
        day = today - timedelta(days=back)
        if day not in held:
            try:
                got = _fetch(client, base, token, day, deadline_s)
            except RefusedReport as exc:  # that day's: the days before it are kept all the same
                refused.append(exc)
                continue
            except PullError as exc:  # the gate, its token or the network: the rest next round
                return Collected(today, _refused_days(base, refused), exc)
            if got.before_log:  # and every day before it: the gate's log had not begun
                break
            target.write_gate_report(kiosk_id, day, got.zone, got.figures, got.unsynced == 0)
    return Collected(today, _refused_days(base, refused))


def _check_day(base: str, report: _Report, now: datetime, asking: timedelta) -> None:
    """``PullError`` unless the gate's today is the office's in the gate's zone at some moment
    from ``now`` (taken before asking) to the end of the exchange (``asking``, its deadline),
    give or take ``DAY_EDGE_TOLERANCE``: a gate asked at 23:59:59.9 answers for the next day.
    (The window is far shorter than a day: the days it touches are its ends'.)"""
    try:
        zone = ZoneInfo(report.zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: 'Asia', a folder
        raise PullError(f"{base}: the gate's time zone {report.zone!r} is unknown here") from None
    real = now.astimezone(zone).date()
    days = {real}
    for edge in (-DAY_EDGE_TOLERANCE, asking + DAY_EDGE_TOLERANCE):
        try:
            days.add((now + edge).astimezone(zone).date())
        except OverflowError:  # the office's clock at the calendar's ends
            continue
    if report.day not in days:
        raise PullError(
            f"{base}: the gate's clock says {report.day}, the office's {real} ({report.zone}):"
            " the gate's clock is not synchronised; nothing kept from it"
        )
