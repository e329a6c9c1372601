"""The office API: ``/api/v1/events`` (JSON, NDJSON, CSV), ``/api/v1/stats``, ``/metrics``.

Every data route needs a bearer token (``kiosk.tokens``) with the route's scope: 401 without
a valid token, 403 when the scope is missing. A request with a valid token is rate limited
per token, any other per sender (``sender_key``: an IPv6 one's /64, as at the guard's sign-in),
so guessing tokens is slow too (429 + ``Retry-After``);
oversized requests get 413/414. Personal fields leave masked (``kiosk.privacy``) unless the
token has ``logs:personal`` and asks for them with ``?fields=``. Every export is one audit row
(actor ``token:<id>``, range, format, fields), never one per event.

Routes are sync functions: FastAPI runs them in its thread pool, so the asyncio loop never
waits on SQLite. Event pages are built (read, masked, encoded) in one helper process
(``checkpoint.export_helper.HelperProcessPages``, ``web.api_worker_process``), because doing
it in the daemon's process stalls the loop that runs the gate (GIL and garbage collection:
``kiosk bench`` pull section, p99 lag 64 ms in-process vs 5 ms with the helper). Responses
are pre-encoded bytes, not re-validated by pydantic; the declared response models keep
``/openapi.json`` exact and schemathesis checks that what is sent matches them.
"""

import asyncio
import contextlib
import itertools
import json
import logging
import re
import shutil
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from ipaddress import ip_network
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Receive, Scope, Send

from kiosk import days, queries
from kiosk.auditing import HeldRows
from kiosk.clock import ClockReading
from kiosk.config.compound import KIOSK_ID_PATTERN
from kiosk.core import Core
from kiosk.export import COLUMNS, read_events
from kiosk.logs import OncePerInterval
from kiosk.peers import (
    MAX_PAGE_ROWS,
    NONCE_PATTERN,
    PEER_SCOPE,
    SIGNATURE_HEADER,
    PeerForged,
    PeerPageError,
    guard_quarantine,
    history_horizon,
    peer_page,
    revocations_page,
    sign_page,
)
from kiosk.ports import Peers
from kiosk.privacy import FIELD_NAMES, mask_event, normalise_fields
from kiosk.ratelimit import RateLimiter, RepeatTally, Verdict, client_key
from kiosk.sheets import formula_safe, write_csv
from kiosk.store import EventLog, LogClosing, ReadFailure, StoreFault, error_name, format_ts
from kiosk.tokens import TokenInfo
from kiosk.typed import whole_number
from kiosk.unreadable import UNREADABLE, damaged_fields
from ui import i18n
from ui.kiosk_screen import in_networks
from ui.views import gate_report

log = logging.getLogger(__name__)


NDJSON = "application/x-ndjson"
MAX_SEQ = 2**63 - 1
#: ``EventLog.events()`` reads at most this many at once: no page is larger.
EVENTS_MAX = 10000
#: Largest CSV export in one request; the office resumes with ``after=`` beyond that.
CSV_MAX_ROWS = 1_000_000

_FIELD_ALT = "|".join(re.escape(name) for name in sorted(FIELD_NAMES))
#: ``?fields=``: comma-separated personal field names, e.g. ``holder,person.phone``.
FIELDS_PATTERN = f"^(?:{_FIELD_ALT})(?:,(?:{_FIELD_ALT}))*$"

#: The event record's order (docs/event-log.md), then the columns the log adds (the pull's
#: wire format).
EVENT_FIELDS = COLUMNS
#: ``/api/v1/events.csv``'s columns: ``EVENT_FIELDS``, then ``unreadable`` (a damaged row's).
CSV_FIELDS = (*EVENT_FIELDS, UNREADABLE)


# --- response models (OpenAPI) ----------------------------------------------------------------


class EventOut(BaseModel):
    """One event row; personal fields masked unless the token's scope and ``fields`` allow."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(description="Per-kiosk sequence number, strictly increasing.")
    id: str
    kiosk_id: str
    ts: str = Field(description="UTC ISO 8601.")
    boot_id: str
    mono_ns: int
    clock_synced: bool
    direction: str
    pass_id: str | None
    household: str | None
    decision: str
    reasons: list[str]
    temp_c: float | None
    temp_object_c: float | None
    temp_ambient_c: float | None
    latency_ms: float | None
    operator: str | None
    prev_hash: str
    hash: str
    kind: str
    flags: list[str]
    holder: str | None
    person: dict[str, Any] | None
    personal_digest: str
    purged_at: str | None


class EventsPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventOut]
    next: int = Field(description="Pass as `after` to resume exactly after this page.")
    last: int = Field(description="The kiosk's highest seq when this page was read.")


class ErrorOut(BaseModel):
    detail: str


class Passages(BaseModel):
    """The day's passages by how they ended: a guard's decision about a passage is its end,
    a resident's next try after a measure-again deny its next attempt, not another passage
    (``by_decision`` counts the events; ``kiosk.links``)."""

    total: int
    passed: int
    denied: int
    by_hour: list[int] = Field(
        min_length=24, max_length=24, description="Passages by the local hour they came."
    )


class GuardDecisions(BaseModel):
    """The day's guard decisions by what they did to the kiosk's (``kiosk.links``); together
    ``by_reason.guard_override``."""

    registrations: int = Field(
        description="About no passage: a person or a vehicle registered by hand, a person"
        " without a pass let through or refused on the guard's word."
    )
    confirmed_denies: int = Field(description="A kiosk's deny kept (a fever confirmed).")
    let_through_over_a_deny: int = Field(description="A kiosk's deny overridden: let through.")
    stopped_over_a_pass: int = Field(
        description="A kiosk's pass overridden: stopped (a fever found by hand)."
    )
    confirmed_passes: int = Field(description="A kiosk's pass kept.")
    overriding: int = Field(
        description="The decisions that overrode the kiosk's: let through over a deny and"
        " stopped over a pass."
    )


class FeverAlarms(BaseModel):
    count: int = Field(
        description="The refusals for a fever, one per event (a car's one): not the alarm"
        " board's cards, which count a person refused again within 10 minutes on one card."
    )
    people: int | None = Field(
        None,
        description="The feverish people the alarms are about, each once however often"
        " refused (by pass id, else name and dwelling: holder and household, or a hand"
        " registration's name with unit or phone; else one per alarm); a car's feverish"
        " occupants each, by plate and name (null in a report frozen before it was counted).",
    )
    times: list[str] = Field(description="Local times (HH:MM:SS) of the refusals.")
    at: list[str] | None = Field(
        None,
        description="The same as local ISO 8601 with the UTC offset, which tells the two"
        " 02:30 of the autumn change apart (null in a report frozen before it).",
    )


class ReportHour(BaseModel):
    """One real hour of the local day (``hours``)."""

    hour: int = Field(ge=0, le=23, description="The local clock hour.")
    start: str = Field(
        description="Its first instant in the day, local ISO 8601 with the UTC offset"
        " (2026-10-25T02:00:00+02:00, then 2026-10-25T02:00:00+01:00 the day the autumn"
        " change repeats the hour)."
    )
    events: int
    passages: int = Field(description="Passages that came to the gate in the hour.")


class TempBin(BaseModel):
    from_c: float | None
    to_c: float | None
    count: int


class HouseholdExits(BaseModel):
    quota_enabled: bool
    quota_exits: int
    period_days: int
    quota_roles: list[str] | None = Field(
        None,
        description="The pass roles the quota counts (`policy.quota.roles`); null in a report"
        " frozen before they were reported.",
    )
    households: int | None = Field(
        description="Households that went out this day; null (unknown) when an outing's"
        " household was purged before the day's report was kept."
    )
    exits: int | None
    histogram: dict[str, int] | None = Field(description="Exits per household → households.")
    max: int | None
    over_quota_households: int | None = Field(description="Households over quota in the period.")
    quota_changes: list[dict[str, Any]] | None = Field(
        None,
        description="Present only for a day whose quota changed during it (a restart with a"
        " new `policy.quota`): every rule in force during it, in order, each `from` (the UTC"
        " time it came into force; null: the one in force when the day began) with"
        " `quota_enabled`, `quota_exits`, `period_days`, `quota_roles`; each outing is judged"
        " by the rule in force when it was made. Added 2026-12-07.",
    )
    quota_changes_left_out: int | None = Field(
        None,
        description="Present only when `quota_changes` is abridged (more than 48 rules in the"
        " day: a daemon restarted again and again with a changed quota): how many rules"
        " between the first and the last 48 are not listed (the list is then 49 long, one"
        " past what a complete list holds; 0 for a day of exactly 49 rules). The day is"
        " counted by all of them."
        " Added 2026-12-07.",
    )


class CommunityReport(BaseModel):
    """The office's categories (``kiosk.categories``); null where the log cannot know."""

    people: dict[str, int] = Field(description="Passed in / out (people, not vehicles).")
    fevers: dict[str, int | None] = Field(description="At the gate; in returnees' checks.")
    returnees: dict[str, int] | None = Field(
        description="new, observing (at the end of the day), cleared, escalated, transferred."
    )
    quarantined_households: int | None
    registrations: int = Field(description="People registered by hand (no phone/health code).")
    vehicles: dict[str, int | None] = Field(description="registrations, occupants, unknown_plates")
    service_requests: dict[str, Any] | None = Field(
        description="opened, done, open_at_end, by_kind."
    )
    unknown_dwellings: int | None = Field(
        None,
        description="Guards' passes of a person without a pass under a dwelling the gate did"
        " not know, kept as typed (flag `unknown_dwelling`: never checked); null in a day"
        " frozen before it was counted. Added 2026-12-08.",
    )


class ReportClock(BaseModel):
    """How the day's events were dated (docs/event-log.md, *Dating events stamped before the
    clock synchronised*)."""

    redated: int = Field(
        description="Events stamped before NTP stepped the clock, dated by their boot's"
        " synchronised clock."
    )
    unsynced: int = Field(description="Events dated only by a clock that never synchronised.")


class ReportCompound(BaseModel):
    id: str | None = Field(
        None,
        description="This gate's `[compound] id` as configured; null: none (the office"
        " groups the gate by its peers: docs/fleet.md, District report).",
    )
    peers: list[str] = Field(
        description="The `site.kiosk_id` of each other gate of this compound whose passages"
        " this gate's quota counts (`[[compound.peers]]`); empty: a gate on its own."
    )
    lists_for: str | None = Field(
        None,
        description="The compound whose entries of the office's lists this gate holds (its"
        " `[compound] id`, casefolded); null: every entry (docs/fleet.md, Lists out).",
    )


class StaffingPart(BaseModel):
    events: int
    by_decision: dict[str, int]
    passages: dict[str, int] = Field(description="`total`, `passed`, `denied`.")


class ReportStaffing(BaseModel):
    """The day split by the staffed hours (``policy.hours``): what the kiosk decided alone."""

    hours: str | None = Field(
        description="The staffed hours as configured now (`08:30-17:30`); null: hours off,"
        " a gate staffed round the clock (every event staffed)."
    )
    staffed: StaffingPart
    unstaffed: StaffingPart


class ReportRestart(BaseModel):
    from_: str = Field(alias="from", description="The last event before (local, with offset).")
    booted: str | None = Field(description="When the new boot began; null: cannot tell.")
    to: str = Field(description="The first event of the new boot.")
    minutes: float = Field(description="From `from` to `to`: the longest the gate was down.")
    kind: Literal["boot", "daemon_stopped", "daemon_died"] = Field(
        description="A new boot of the Pi; or the daemon restarted within one boot, after a"
        " clean stop (`from`: the stop) or not (`from`: its last sign of life)."
    )


class ReportFaultSpell(BaseModel):
    reason: str
    from_: str = Field(alias="from")
    to: str
    events: int


class ReportPowerSpell(BaseModel):
    condition: Literal["under_voltage", "throttled"]
    from_: str | None = Field(
        alias="from",
        description="When it began (local, with offset); null: its time unknown (`dating`"
        " `unsynced`).",
    )
    to: str | None = Field(
        description="null: not over, or its time unknown (`dating` `unsynced`); a spell the Pi"
        " died in ends at its last sign of life."
    )
    minutes: float | None = Field(
        description="Its length; null: not over. Of a spell whose time is unknown, by its"
        " boot's monotonic clock."
    )
    flaps: int = Field(description="How often it came back within the spell.")
    dating: Literal["clock", "boot", "unsynced"] = Field(
        "clock",
        description="How it was dated (added 2026-12-06; a report frozen before: `clock`):"
        " `clock`, by its rows' stamps; `boot`, begun before NTP set the clock, by its boot's"
        " set clock; `unsynced`, its boot never had a set clock: `from` and `to` null, its"
        " time unknown, `minutes` all that is known.",
    )


class ReportDowntime(BaseModel):
    """When the gate was down or out of order, from what the log holds (docs/community.md)."""

    boots: int
    restarts: list[ReportRestart] = Field(max_length=24)
    restarts_total: int
    restart_minutes: float
    faults: list[ReportFaultSpell] = Field(max_length=24)
    faults_total: int
    power: list[ReportPowerSpell] = Field(
        default_factory=list,
        max_length=24,
        description="The Pi's own spells of under-voltage and throttling (added 2026-12).",
    )
    power_total: int = 0


class DailyReport(BaseModel):
    day: str
    timezone: str = Field(
        description="The site's zone; another when the day was purged after being frozen in"
        " the zone the site had then (a zone corrected): its figures are that zone's day."
    )
    frozen_timezone: str | None = Field(
        None,
        description="The zone a purged day's figures were frozen under when this system's"
        " zone data lacks it (`PRC` on Trixie without tzdata-legacy) and their clock cannot"
        " be checked against the site's: they are served as kept, under `timezone` (the"
        " site's zone); absent otherwise.",
    )
    kiosks: list[str]
    events: int
    by_decision: dict[str, int]
    passages: Passages | None = Field(
        None, description="Passages by how they ended; null in a report frozen before them."
    )
    by_reason: dict[str, int]
    by_direction: dict[str, int]
    by_hour: list[int] = Field(min_length=24, max_length=24)
    hours: list[ReportHour] | None = Field(
        None,
        description="The day's real hours in order: 24, 25 the day the autumn change repeats"
        " an hour, 23 the day the spring change skips one; null in a report frozen before.",
    )
    fever_alarms: FeverAlarms
    temperature_histogram: list[TempBin]
    no_temperature: int
    hand_readings: int | None = Field(
        None,
        description="Passages whose reading is a guard's hand reading (a manual decision with"
        " a temperature and no sensor reading: a winter day's hand checks); null in a report"
        " frozen before it.",
    )
    overrides: GuardDecisions | None = Field(
        None,
        description="The guards' decisions by what they did (added 2026-12-06); null in a"
        " report frozen before it.",
    )
    exits_per_household: HouseholdExits
    lists_freshness: dict[str, Any] | None
    community: CommunityReport | None = Field(
        None, description="The office's categories; null in a report frozen before them."
    )
    quarantine_lists: dict[str, int] | None = Field(
        None,
        description="Quarantined households by list: office (the office's bundle, alike at"
        " every gate of a compound) and local (this gate's own entries); office_compound, those"
        " of office whose entry names this gate's compound (`compound.lists_for`); null before"
        " the lists or the split.",
    )
    clock: ReportClock | None = Field(
        None, description="How the events were dated; null in a report frozen before it."
    )
    unreadable_rows: int = Field(
        0,
        description="The day's events whose stored fields cannot be read (a damaged card, a"
        " hand edit), left out of every figure; `kiosk verify-log` names them (added"
        " 2026-12-07).",
    )
    before_log: bool = Field(
        False,
        description="The day ended before this gate's log began (its first event or audit row:"
        " a gate installed since): nothing was kept of it, and its zeros are no count (added"
        " 2026-12-08).",
    )
    staffing: ReportStaffing | None = Field(
        None, description="The day split by the staffed hours (docs/community.md)."
    )
    downtime: ReportDowntime | None = Field(
        None, description="The restarts and device-fault spells of the day (docs/community.md)."
    )
    as_of: str | None = Field(
        None,
        description="When the report was made, UTC ISO 8601 (added 2026-12-07); null in a"
        " report frozen before it.",
    )
    day_ended: bool | None = Field(
        None,
        description="Whether its local day was over when it was made: false, the day's figures"
        " so far, never to be read or added up as its total (added 2026-12-07).",
    )
    compound: ReportCompound | None = Field(
        None,
        description="This gate's compound as configured now (``[compound]``); the office"
        " counts the quota across a compound's gates.",
    )


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No valid bearer token."},
    403: {"model": ErrorOut, "description": "The token's scope does not allow this."},
    413: {"model": ErrorOut, "description": "Request too large."},
    414: {"model": ErrorOut, "description": "URL too long."},
    429: {"model": ErrorOut, "description": "Rate limited; see Retry-After."},
    503: {"model": ErrorOut, "description": "The event log is unavailable."},
}

#: The event exports' errors: the API's and an unknown ``fields`` name.
_EXPORT_ERRORS = {**_ERRORS, 400: {"model": ErrorOut, "description": "Unknown field name."}}


# --- loop lag ---------------------------------------------------------------------------------


class LoopLagMonitor:
    """Scheduling lag of the asyncio loop: how late a 10 ms timer fires. Samples are kept in a
    bounded ring and summarised for ``/metrics`` (and the pull bench)."""

    BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)

    def __init__(self, interval_s: float = 0.01, keep: int = 6000) -> None:
        self.interval_s = interval_s
        self.samples: deque[float] = deque(maxlen=keep)
        self.bucket_counts = [0] * (len(self.BUCKETS_S) + 1)
        self.total = 0
        self.sum_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def ensure_started(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval_s)
            self.record(max(0.0, loop.time() - before - self.interval_s))

    def record(self, lag_s: float) -> None:
        self.samples.append(lag_s)
        self.total += 1
        self.sum_s += lag_s
        for i, bound in enumerate(self.BUCKETS_S):
            if lag_s <= bound:
                self.bucket_counts[i] += 1
                break
        else:
            self.bucket_counts[-1] += 1

    def quantile(self, q: float) -> float | None:
        data = sorted(self.samples)
        if not data:
            return None
        return data[min(len(data) - 1, int(q * len(data)))]


# --- event pages ------------------------------------------------------------------------------


#: Every export of passages (names, dwellings, pass ids: clear for ``logs:personal``) is
#: kept by no cache on the way, a caching proxy or a browser, as the guard pages are not.
NO_STORE = {"Cache-Control": "no-store"}


class PageResponse(Response):
    """A pre-encoded page (``Content-Length`` as usual) written in 256 KiB pieces.

    One ``send`` of a whole page (a few MB for 5,000 events) is one long copy into the socket
    buffer on the event loop, which the gate's passage then waits behind; in pieces, uvicorn's
    write flow control lets the loop run between them."""

    CHUNK = 262144

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self.body
        if scope.get("method") == "HEAD" or len(body) <= self.CHUNK:
            await super().__call__(scope, receive, send)
            return
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        view = memoryview(body)
        for start in range(0, len(view), self.CHUNK):
            await send(
                {
                    "type": "http.response.body",
                    "body": bytes(view[start : start + self.CHUNK]),
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if self.background is not None:
            await self.background()


# --- metrics ----------------------------------------------------------------------------------


class DecisionCounter:
    """Decisions by reason, as the log tallies them with each commit: each scrape reads a
    few rows, the first after a restart as any other."""

    def __init__(self) -> None:
        self.after_seq = 0
        self.by_reason: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def update(self, log: queries.Readable) -> None:
        with self._lock:
            head, counts = queries.decision_counts(log)
            self.by_reason = Counter({(decision, reason): n for decision, reason, n in counts})
            self.after_seq = head


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _device_states(report: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(device, state)`` for every entry of a health report that has a ``state``."""
    if not isinstance(report, dict):
        return
    for key, value in report.items():
        if isinstance(value, dict):
            if "state" in value and isinstance(value["state"], str):
                yield prefix + str(key), value["state"]
            else:
                yield from _device_states(value, f"{prefix}{key}.")
        elif hasattr(value, "state") and isinstance(value.state, str):
            yield prefix + str(key), value.state


def _runner_metrics(core: Core) -> dict[str, Any]:
    try:
        value = core.runner.metrics()
    except Exception:  # noqa: BLE001 - a failing probe must not take /metrics down
        log.warning("runner metrics failed", exc_info=True)
        return {}
    return value if isinstance(value, dict) else {}


# --- helpers ----------------------------------------------------------------------------------


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, str):
        return formula_safe(value)
    if value is None:
        return ""
    return value


#: Days the daily report answers for (``kiosk.days``): the log has nothing before 2000, and
#: a day near the ends of ``date`` overflows when its local bounds are turned into UTC.
FIRST_DAY, LAST_DAY = days.FIRST_DAY, days.LAST_DAY


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` within ``FIRST_DAY``..``LAST_DAY`` (``kiosk.days.typed_day``, as the
    console and ``kiosk report --day`` take it), else 422 like every parameter the route's
    checks refuse (never a 500, and never a number taken as a Unix time: ``day=0`` is not
    1970-01-01)."""
    try:
        return days.typed_day(text)
    except days.OutsideDays:
        raise HTTPException(422, f"day: {text} is outside {FIRST_DAY}..{LAST_DAY}") from None
    except ValueError:
        raise HTTPException(422, f"day: {text[:12]!r} is not a date (YYYY-MM-DD)") from None


#: How often a token's reads of the same day's report are each written to the audit.
STATS_AUDIT_EVERY_S = 3600.0


def _client_addr(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def sender_key(request: Request) -> str:
    """Whom a request without a valid token counts as (``Api.addr_limiter``): its address, an
    IPv6 one as its /64 (``client_key``: a host there has 2**64 addresses to take a fresh
    allowance from), the same sender as at the guard's sign-in."""
    return "addr:" + client_key(_client_addr(request))


#: ``request.state``'s token not looked up yet.
_UNSEEN = object()


def presented_token(request: Request, state: "Api") -> TokenInfo | None:
    """The active token the request presents (``Authorization: Bearer``), looked up once per
    request; None when it presents none or one that is not a token."""
    found = getattr(request.state, "api_token", _UNSEEN)
    if found is None or isinstance(found, TokenInfo):
        return found
    scheme, presented = get_authorization_scheme_param(request.headers.get("authorization"))
    token = None
    if scheme.lower() == "bearer" and presented:
        token = state.core.tokens.authenticate(presented)
    request.state.api_token = token
    return token


def charge_sender(request: Request, state: "Api") -> None:
    """A request without a valid token takes from its sender's allowance: 429 past it. One
    with a valid token counts against that token alone (``authenticated``): one /64 is often
    the whole LAN, and a stranger on it spending the /64's allowance must not shut the
    office's pull or the compound's other gates out."""
    if presented_token(request, state) is not None:
        return
    verdict = state.addr_limiter.take(sender_key(request))
    if not verdict.allowed:
        raise _too_many(verdict, "address")


#: ``Retry-After`` of a read refused because the storage failed (a full or read-only card, a
#: log that cannot be opened): the office's pull and the other gates come back then.
STORAGE_RETRY_AFTER_S = 30


def storage_unavailable() -> HTTPException:
    """503: the event log cannot be read or take the request's row now; ask again later."""
    return HTTPException(
        503, "the event log is unavailable", {"Retry-After": str(STORAGE_RETRY_AFTER_S)}
    )


#: A read refused because the log cannot be opened, or because the database refused it for a
#: reason other than a damaged card (``ui.app``), is said at most this often, per kind.
STORAGE_LOG_EVERY_S = 60.0


async def storage_failed(request: Request, exc: Exception) -> Response:
    """A read whose event log cannot be opened (``StoreFault``: the data volume gone, the
    card's mount lost, no descriptor left) is 503 with ``Retry-After``, said in the journal at
    most once a minute, never a 500 with a traceback per request: on the API as on the guard
    console (``read_refused``). A write that reached no handler of its own lands here too:
    the console says the log cannot be opened, not that it is busy."""
    return read_refused(request, "request refused: the event log", str(exc), "err.log_unavailable")


def read_refused(
    request: Request, what: str, why: str, words: str = "err.database_busy"
) -> Response:
    """503 with ``Retry-After`` for a read the storage refused now (``what``: the journal's
    words, ``why``: the error, no row's content), logged at most once a minute per kind and
    without a traceback: ``{"detail": ...}`` on ``/api/...`` and ``/metrics``, the console's
    ``words`` in both languages elsewhere."""
    state = api_state(request)
    untold = state.storage_said.due(state.core.clock.monotonic_ns() / 1e9, what)
    if untold is not None:
        log.warning("%s: %s (%d more since the last report)", what, why, untold)
    refused = storage_unavailable()
    path = request.url.path
    if path.startswith("/api/") or path == "/metrics":
        return JSONResponse({"detail": refused.detail}, 503, headers=refused.headers)
    both = "\n".join(i18n.t(lang, words) for lang in i18n.LANGS)
    return PlainTextResponse(both + "\n", 503, headers=refused.headers)


def _too_many(verdict: Verdict, what: str) -> HTTPException:
    return HTTPException(
        429, f"rate limited ({what}); retry later", {"Retry-After": verdict.retry_after_header}
    )


@dataclass
class Api:
    """The API's state for one app (``app.state.api``): the core, the rate limiters, the loop
    lag monitor, the decision counter and the page bounds of ``web``."""

    core: Core
    addr_limiter: RateLimiter
    token_limiter: RateLimiter
    lag: LoopLagMonitor
    decisions: DecisionCounter
    tz: ZoneInfo
    max_page: int
    default_page: int
    #: A token's reads of one day's report, audited once an hour (``STATS_AUDIT_EVERY_S``).
    stats_reads: RepeatTally
    #: Rows the storage could not take, waiting to be written (the guard console's, shared).
    held: HeldRows
    #: Reads refused because the log cannot be opened, said once a minute (``storage_failed``).
    storage_said: OncePerInterval = field(
        default_factory=lambda: OncePerInterval(STORAGE_LOG_EVERY_S)
    )

    @classmethod
    def build(cls, core: Core, held: HeldRows | None = None) -> "Api":
        web = core.config.web
        max_page = min(web.max_page, EVENTS_MAX)
        return cls(
            core=core,
            held=held if held is not None else HeldRows(),
            addr_limiter=RateLimiter.per_minute(web.api_rate_per_min, core.clock),
            token_limiter=RateLimiter.per_minute(web.api_rate_per_min, core.clock),
            lag=LoopLagMonitor(),
            decisions=DecisionCounter(),
            tz=ZoneInfo(core.config.site.timezone),
            max_page=max_page,
            default_page=min(web.api_default_page, max_page),
            stats_reads=RepeatTally(STATS_AUDIT_EVERY_S, core.clock),
        )

    def audit(
        self, token: TokenInfo, action: str, detail: dict[str, Any], *, may_wait: bool = False
    ) -> None:
        """The request's audit row; no export without it. One that ``may_wait`` (a masked
        export: no personal field in clear; the daily report's counts; the compound's other
        gates' page; a refused poke) the storage cannot take a row for (a full or read-only
        card) goes ahead with its row held in memory (``held``, written in order once the
        storage works): the office must be able to pull the log off a dying card, and the
        other gates to keep this gate's passages, voids and quarantines in force. Else 503
        with ``Retry-After``."""
        store, actor = self.core.store, f"token:{token.id}"
        if len(self.held) or self.held.dropped:
            self.held.flush(store)  # the rows held before come first
        try:
            store.audit(actor, action, detail)
        except StoreFault as exc:
            if may_wait and self.held.hold(
                actor, action, detail, self.core.clock.now(), essential=True
            ):
                return
            log.warning("export refused: audit failed (%s)", type(exc).__name__)
            raise storage_unavailable() from None
        except Exception as exc:
            log.warning("export refused: audit failed (%s)", type(exc).__name__)
            raise storage_unavailable() from None

    def page_limit(self, limit: int | None) -> int:
        """``limit`` of an event page: ``web.api_default_page`` when not given; past
        ``web.max_page`` it is refused like any out-of-range parameter (422)."""
        if limit is None:
            return self.default_page
        if limit > self.max_page:
            raise RequestValidationError(
                [
                    {
                        "type": "less_than_equal",
                        "loc": ("query", "limit"),
                        "msg": f"Input should be less than or equal to {self.max_page}",
                        "input": str(limit),
                        "ctx": {"le": self.max_page},
                    }
                ]
            )
        return limit


def install(app: FastAPI, core: Core, held: HeldRows | None = None) -> Api:
    """Mount the API on ``app`` with its state for ``core``; returns that state. ``held``: the
    audit rows held in memory during a storage outage (the guard console's, so one stop
    writes or says them all)."""
    state = Api.build(core, held)
    app.state.api = state
    app.add_exception_handler(StoreFault, storage_failed)
    app.include_router(router)
    app.include_router(public_metrics if core.config.web.metrics_public else token_metrics)
    return state


# --- dependencies -----------------------------------------------------------------------------


def api_state(request: Request) -> Api:
    """The API's state, put on the app by ``install``."""
    found: Api = request.app.state.api
    return found


async def start_monitor(state: Annotated[Api, Depends(api_state)]) -> None:
    state.lag.ensure_started()


def limit_size(request: Request, state: Annotated[Api, Depends(api_state)]) -> None:
    max_bytes = state.core.config.web.max_request_bytes
    url_len = len(request.url.path) + len(request.url.query)
    if url_len > max_bytes:
        raise HTTPException(414, "URL too long")
    length = request.headers.get("content-length")
    if length is not None:
        if (declared := whole_number(length)) is None or declared > max_bytes:
            raise HTTPException(413, "request too large")
    elif "chunked" in request.headers.get("transfer-encoding", "").lower():
        raise HTTPException(413, "request bodies of unknown length are refused")
    charge_sender(request, state)


#: Media ranges of ``Accept`` that JSON satisfies.
_JSON_RANGES = ("application/json", "application/*", "*/*")


def _quality(params: str) -> float:
    """The ``q`` of one ``Accept`` entry's parameters (1 when absent; 0 when unreadable)."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0  # NaN fails both comparisons
    return 1.0


def prefers_ndjson(accept: str) -> bool:
    """Whether ``Accept`` asks for NDJSON at least as much as for JSON: named with a ``q``
    above 0 and not below JSON's (a script listing both, JSON first, still gets JSON)."""
    ndjson = json_q = 0.0
    for entry in accept[:1024].split(",")[:32]:
        media, _, params = entry.partition(";")
        media = media.strip().lower()
        if media == NDJSON:
            ndjson = max(ndjson, _quality(params))
        elif media in _JSON_RANGES:
            json_q = max(json_q, _quality(params))
    return ndjson > 0.0 and ndjson >= json_q


bearer = HTTPBearer(auto_error=False, description="`kiosk token new --scope ...`")


def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    state: Annotated[Api, Depends(api_state)],
) -> TokenInfo:
    """The request's token (``credentials`` declares the scheme in the schema): 401 without a
    valid one, 429 past the token's rate."""
    token = presented_token(request, state) if credentials else None
    if token is None:
        raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})
    verdict = state.token_limiter.take("token:" + token.id)
    if not verdict.allowed:
        raise _too_many(verdict, "token")
    return token


def scoped(*scopes: str) -> Callable[[TokenInfo], TokenInfo]:
    """A dependency: the request's token, 403 unless it has one of ``scopes``."""

    def check(token: Annotated[TokenInfo, Depends(authenticated)]) -> TokenInfo:
        if not any(token.allows(scope) for scope in scopes):
            raise HTTPException(403, f"this token lacks the {' or '.join(map(repr, scopes))} scope")
        return token

    return check


logs_reader = scoped("logs:read")
stats_reader = scoped("stats:read")
#: The daily report: the pull's token (``logs:read``, which reads every event anyway) or a
#: token for the report alone (``stats:read``).
report_reader = scoped("logs:read", "stats:read")


#: What ``/api/v1/health`` tells anyone on the LAN: whether the kiosk decides and why not
#: (devices, store, clock, lists, calibration, disk, version). The rest of the report (the
#: engine's monotonic stamps of its faults' raises, ``fault_raised_ns``: the Pi's uptime; the
#: compound's other gates by id, URL and last error, the office's URL, the peer tokens that may
#: silence an alarm, the trust folder's and the data volume's paths) goes to the kiosk's own
#: host (``web.screen_addresses``) and to a ``stats:read`` or ``logs:read`` token alone.
PUBLIC_HEALTH = frozenset(
    {
        "devices",
        "faults",
        "fault_since",
        "degraded",
        "deciding",
        "state",
        "backlog",
        "loop_ok",
        "disk_free_mb",
        "clock",
        "calibration",
        "lists",
        "last_seq",
        "kiosk_id",
        "version",
        "tls_certificate",
        "pi_power",
    }
)


def health_detail(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> bool:
    """Whether the caller of ``/api/v1/health`` gets the whole report: this host's own
    address, or an office token (``stats:read``/``logs:read``). A token is checked as on the
    office API: one that is not a token takes from the sender's rate (429 past it, else 401),
    a valid one from its own (429); 403 without either scope."""
    state = api_state(request)
    if credentials is None:
        return this_host(request)
    try:
        charge_sender(request, state)
        report_reader(authenticated(request, credentials, state))
    except StoreFault:  # no token can be checked (the log cannot be opened): the report as
        return this_host(request)  # without one, which says why
    return True


def this_host(request: Request) -> bool:
    """Whether the caller is the kiosk's own host (``web.screen_addresses``)."""
    networks = [
        ip_network(a, strict=False) for a in api_state(request).core.config.web.screen_addresses
    ]
    return in_networks(_client_addr(request), networks)


def health_view(report: dict[str, Any], whole: bool) -> dict[str, Any]:
    """``report`` as the caller may see it; what is left out is named in ``withheld``."""
    if whole:
        return report
    shown = {key: value for key, value in report.items() if key in PUBLIC_HEALTH}
    shown["withheld"] = sorted(key for key in report if key not in PUBLIC_HEALTH)
    return shown


def allowed_fields(token: TokenInfo, fields: str | None) -> frozenset[str]:
    if not fields:
        return frozenset()
    try:
        names = normalise_fields(fields.split(","))
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    if names and not token.allows("logs:personal"):
        raise HTTPException(403, "unmasked fields need the 'logs:personal' scope")
    return names


# --- routes -----------------------------------------------------------------------------------

_SHARED = [Depends(start_monitor), Depends(limit_size)]
router = APIRouter(dependencies=_SHARED)
AFTER_Q = Query(0, ge=0, le=MAX_SEQ, description="Return events with seq > after.")
FIELDS_Q = Query(
    None,
    max_length=512,
    pattern=FIELDS_PATTERN,
    description="Comma-separated personal fields to leave unmasked (needs logs:personal).",
)
LIMIT_Q = Query(
    None,
    ge=1,
    le=EVENTS_MAX,
    description="At most this many events (default `web.api_default_page`, at most"
    " `web.max_page`).",
)


@router.get(
    "/api/v1/events",
    tags=["api"],
    response_model=EventsPage,
    responses={**_EXPORT_ERRORS, 200: {"content": {NDJSON: {"schema": {"type": "string"}}}}},
)
def events(
    request: Request,
    token: Annotated[TokenInfo, Depends(logs_reader)],
    state: Annotated[Api, Depends(api_state)],
    after: int = AFTER_Q,
    limit: int | None = LIMIT_Q,
    fields: str | None = FIELDS_Q,
) -> Response:
    """Events after ``after`` in ``seq`` order (keyset pagination). ``next`` resumes
    exactly. ``Accept: application/x-ndjson`` streams one event per line instead."""
    count_max = state.page_limit(limit)
    allowed = allowed_fields(token, fields)
    ndjson = prefers_ndjson(request.headers.get("accept", ""))
    core = state.core
    body, count, next_seq, _ = core.pages.build(core.store, after, count_max, allowed, ndjson)
    if count:  # a poll with nothing new exports nothing: no audit row (a write, fsynced)
        state.audit(
            token,
            "export_events",
            {
                "format": "ndjson" if ndjson else "json",
                "after": after,
                "through": next_seq,
                "count": count,
                "fields": sorted(allowed),
            },
            may_wait=not allowed,
        )
    if ndjson:

        def chunks() -> Iterator[bytes]:
            view = memoryview(body)
            for start in range(0, len(view), 65536):
                yield bytes(view[start : start + 65536])

        headers = {"X-Next": str(next_seq), **NO_STORE}
        return StreamingResponse(chunks(), media_type=NDJSON, headers=headers)
    return PageResponse(body, media_type="application/json", headers=NO_STORE)


@router.get(
    "/api/v1/events.csv",
    tags=["api"],
    response_class=StreamingResponse,
    responses={**_EXPORT_ERRORS, 200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def events_csv(
    token: Annotated[TokenInfo, Depends(logs_reader)],
    state: Annotated[Api, Depends(api_state)],
    after: int = AFTER_Q,
    limit: int = Query(CSV_MAX_ROWS, ge=1, le=CSV_MAX_ROWS),
    fields: str | None = FIELDS_Q,
) -> StreamingResponse:
    """CSV export of events after ``after`` (at most ``limit``), masked like the JSON."""
    allowed = allowed_fields(token, fields)
    store = state.core.store
    through = queries.head_seq(store)
    rows = csv_rows(store, after, limit, allowed, state.max_page, through)
    # The first page is read before the answer starts: one the card fails is a 503 with its
    # words (the app's ReadFailure handler), not a 200 and a transfer cut before its first row.
    first = next(rows)
    state.audit(
        token,
        "export_csv",
        {"format": "csv", "after": after, "limit": limit, "head": through,
         "fields": sorted(allowed)},
        may_wait=not allowed,
    )  # fmt: skip
    kiosk_id = state.core.config.site.kiosk_id
    return CuttableStream(
        itertools.chain([first], rows),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{kiosk_id}-events.csv"',
            **NO_STORE,
        },
    )


def csv_rows(
    store: EventLog,
    after: int,
    limit: int,
    allowed: frozenset[str],
    page: int,
    through: int = MAX_SEQ,
) -> Iterator[str]:
    """The CSV export: a header, then at most ``limit`` masked events after ``after`` and up
    to ``through`` (the head its audit row names: events decided while it streams are the
    next export's), read ``page`` at a time."""
    header = write_csv([CSV_FIELDS])  # sent with the first page, or alone when none
    cursor, sent = after, 0
    while sent < limit and cursor < through:
        try:
            batch = read_events(store.reader(), cursor, min(page, limit - sent))
        except (ReadFailure, LogClosing) as exc:
            if header:  # nothing sent yet: the caller answers it
                raise
            raise _cut(store, cursor, exc) from exc
        batch = [row for row in batch if row["seq"] <= through]
        if not batch:
            break
        yield header + write_csv(_csv_event(row, allowed) for row in batch)
        header = ""
        cursor, sent = batch[-1]["seq"], sent + len(batch)
    if header:
        yield header


def _csv_event(row: dict[str, Any], allowed: frozenset[str]) -> list[Any]:
    """One event's CSV cells, masked: ``EVENT_FIELDS``, then its fields that cannot be read
    (``kiosk.unreadable.damaged_fields``, as a JSON list; empty when every one can)."""
    masked = mask_event(row, allowed)
    damaged = damaged_fields(row)
    return [*(_csv_cell(masked[name]) for name in EVENT_FIELDS), _csv_cell(damaged or None)]


class ExportCut(Exception):
    """A streamed export could not be read on after its first bytes (``CuttableStream``)."""


def _cut(store: EventLog, cursor: int, exc: ReadFailure | LogClosing) -> ExportCut:
    """The export's page after ``cursor`` failed: the store's health names a damaged card
    (``note_read_fault``), or the log is closing (the daemon's stop: the read refused, each
    page read being a use of it, none held between pages); the journal has one line, and the
    transfer is left unfinished."""
    if isinstance(exc, LogClosing):
        why = "the checkpoint is stopping"
    else:
        store.note_read_fault(exc)
        why = f"the log could not be read on ({error_name(exc)})"
    log.warning(
        "CSV export cut after seq %d: %s; the client sees an unfinished transfer", cursor, why
    )
    return ExportCut(why)


class CuttableStream(StreamingResponse):
    """A stream whose source may fail after its first bytes (``ExportCut``): the transfer is
    then left unfinished, never ended as a whole one would be. No last chunk is sent and the
    server closes the connection, which every client reports: curl as error 18, a browser as
    a failed download, httpx as ``RemoteProtocolError``. A row saying so would read as one
    more row in a spreadsheet, and a streamed export's length is not known before its end."""

    async def stream_response(self, send: Send) -> None:
        with contextlib.suppress(ExportCut):
            await super().stream_response(send)


@router.get(
    "/api/v1/stats",
    tags=["api"],
    response_model=DailyReport,
    responses={
        **_ERRORS,
        400: {"model": ErrorOut, "description": "A day not begun that holds nothing."},
    },
)
def stats(
    token: Annotated[TokenInfo, Depends(report_reader)],
    state: Annotated[Api, Depends(api_state)],
    day: str | None = Query(
        None,
        pattern=r"^(2\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))?$",
        description=f"Local day YYYY-MM-DD (site timezone), {FIRST_DAY} to {LAST_DAY};"
        " default (or empty, as the console takes it) today.",
    ),
) -> Response:
    """The daily report (日报) for one local day."""
    core = state.core
    today = core.clock.now().astimezone(state.tz).date()
    when = parse_day(day) if day else today
    report = gate_report(core, when)  # stamped: a day not over says so (day_ended false)
    try:  # a year typed wrong is not a day of zeros: as kiosk report and the console refuse it
        days.refuse_unbegun(when, today, state.tz.key, report["events"])
    except days.DayNotBegun as exc:
        raise HTTPException(400, f"day {when}: {exc}") from None
    # Which gates count the quota together: the office's district report counts it so too.
    report["compound"] = {
        # Which compound it is: the office's district report groups the gates by it.
        "id": core.config.compound.id,
        "peers": sorted(p.kiosk_id for p in core.config.compound.peers),
        # Whose office entries this gate holds: the district counts each compound's once.
        "lists_for": core.lists.current.freshness.bundle_compound,
    }
    _audit_stats_read(state, token, when)
    return Response(json.dumps(report, ensure_ascii=False), media_type="application/json")


def _audit_stats_read(state: Api, token: TokenInfo, day: date) -> None:
    """``export_stats``: one row per token and day asked for within ``STATS_AUDIT_EVERY_S``,
    with how many reads of it since the previous row went unwritten (``repeats``): an office
    dashboard polling every 10 s is 24 rows a day, not 8,640 kept for ever."""
    key = f"{token.id} {day.isoformat()}"
    repeats = state.stats_reads.due(key)
    if repeats is None:
        return
    detail = {"day": day.isoformat(), "repeats": repeats}
    state.audit(token, "export_stats", detail, may_wait=True)  # counts only
    state.stats_reads.written(key)


peer_reader = scoped(PEER_SCOPE)


class PeerPassage(BaseModel):
    kiosk_id: str
    seq: int
    pass_id: str | None
    household: str | None
    direction: str
    decision: str = Field(description="`pass` or `manual_pass`: passages only.")
    ts: str = Field(description="UTC; a passage stamped before the clock synchronised, dated.")
    flags: list[str] = Field(
        description="`quota_exempt` and the pass's role (`role:delivery`), or nothing."
    )


class PeerRevocationOut(BaseModel):
    pass_id: str = Field(description="The voided pass's id (12 hex digits).")
    revoked_at: str | None = Field(description="When the guard voided it (UTC).")
    actor: str | None = Field(description="The guard who voided it (their account's name).")


class PeerQuarantineOut(BaseModel):
    id: int = Field(description="The entry's number at this gate.")
    household: str
    holder: str | None = Field(description="The person quarantined (null: the household).")
    from_: str = Field(alias="from", description="Its first day (local date, inclusive).")
    until: str = Field(description="Its last day (local date, inclusive).")
    actor: str | None = Field(description="The guard who added it (their account's name).")


class PeerPage(BaseModel):
    kiosk_id: str
    passages: list[PeerPassage]
    next: int = Field(description="Ask with after=next for the passages after these.")
    last: int = Field(description="The newest seq in this kiosk's log.")
    now: str = Field(
        description="This kiosk's clock as it answered (UTC): the asking gate compares it"
        " with its own (a peer's clock far off is shown in its health)."
    )
    compound: str | None = Field(
        None,
        description="This kiosk's `[compound] id` (null: none): an asking gate of another"
        " compound keeps nothing of the answer.",
    )
    origin: str | None = Field(
        None,
        description="Which log this is: its first event's id (null while it is empty). An"
        " asking gate holding another log's passages fetches this one from its start.",
    )
    unsynced_from: int | None = Field(
        None,
        description="The first seq stamped on this kiosk's clock while it was not set (a clock"
        " behind, not dated yet): passages from it on are at this clock's time (`now`), which"
        " an asking gate with its clock set dates by the skew (null: none).",
    )
    revocations: list[PeerRevocationOut] = Field(
        default_factory=list,
        description="Every pass this gate's guards voided and did not restore (its newest"
        " 500; never the reason, never the office's revocations): the asking gate refuses them"
        " as `pass_revoked` and drops those no longer said (restored here).",
    )
    quarantine: list[PeerQuarantineOut] = Field(
        default_factory=list,
        description="Every quarantine entry this gate's guards added and did not lift (those"
        " ending last, at most 200; never the note, never the office's entries): in force at"
        " the asking gate as its own, those no longer said dropped (lifted here).",
    )
    not_opened: list[int] = Field(
        default_factory=list,
        description="The seqs of this gate's passes it did not open for (a later `deny` row"
        " flagged `not_opened:<seq>`, written after `after`; the first 500): never among"
        " `passages`; the asking gate drops those it holds, nobody went through.",
    )


@router.get(
    "/api/v1/passages",
    tags=["api"],
    response_model=PeerPage,
    responses=_ERRORS,
)
def passages(
    token: Annotated[TokenInfo, Depends(peer_reader)],
    state: Annotated[Api, Depends(api_state)],
    after: int = AFTER_Q,
    limit: int = Query(500, ge=1, le=MAX_PAGE_ROWS, description="At most this many passages."),
    nonce: str = Query(
        "",
        pattern=NONCE_PATTERN + "|^$",
        description="The asking gate's fresh random value (22 to 64 Base64url characters):"
        f" the {SIGNATURE_HEADER} header signs the answer to it, so a replayed page fails.",
    ),
) -> Response:
    """This gate's recent passing passages, for another gate of the compound (its shared
    quota and anti-passback): ``seq``, pass id, household, direction, decision, time, and
    the ``quota_exempt`` flag and the pass's role, within the quota's look-back; nothing else
    of an event. With an issuer key, the answer is signed for this request
    (``kiosk.peers.sign_page``)."""
    core = state.core
    since = core.clock.now() - history_horizon(core.config.policy.quota.period_days)
    try:
        page = peer_page(
            core.store.reader(),
            core.config.site.kiosk_id,
            after,
            limit,
            since,
            core.store.boot_id,
            ClockReading.take(core.clock),
        )
        # A card voided here is refused at the other gates too (docs/passes.md), and one a
        # resident's forget voided is denied there naming nobody, as here (``forgotten``).
        page |= revocations_page(core.store.reader())
        # So is a household (or person) its guards quarantined (docs/operations.md).
        page["quarantine"] = guard_quarantine(core.store.reader())
    except StoreFault:
        raise storage_unavailable() from None
    page["now"] = format_ts(core.clock.now())
    # The asking gate refuses the passages of another compound's gate (its own codes).
    page["compound"] = core.config.compound.id
    if page["passages"]:
        # No name, person or temperature: on a card that takes no write its row waits in
        # memory, so the other gates keep this one's passages, voids and quarantines.
        state.audit(
            token,
            "export_passages",
            {"after": after, "through": page["next"], "count": len(page["passages"])},
            may_wait=True,
        )
    body = json.dumps(page, ensure_ascii=False).encode("utf-8")
    headers = dict(NO_STORE)
    if core.issuer_key is not None:
        kiosk_id = core.config.site.kiosk_id
        headers[SIGNATURE_HEADER] = sign_page(core.issuer_key, kiosk_id, nonce, after, limit, body)
    return Response(body, media_type="application/json", headers=headers)


class PokeOut(BaseModel):
    fetching: bool = Field(description="This gate asks the poking gate for its passages now.")
    closed: bool = Field(
        False, description="The poking gate said it is closing: it is shown closed, no alarm."
    )


@router.post(
    "/api/v1/passages/poke",
    tags=["api"],
    status_code=202,
    response_model=PokeOut,
    responses={
        **_ERRORS,
        404: {"model": ErrorOut, "description": "No compound peer of that kiosk id here."},
    },
)
def passages_poke(
    token: Annotated[TokenInfo, Depends(peer_reader)],
    state: Annotated[Api, Depends(api_state)],
    kiosk_id: str = Query(
        min_length=1,
        max_length=64,
        pattern=KIOSK_ID_PATTERN,
        description="The poking gate's site.kiosk_id (one of this gate's compound.peers).",
    ),
    closing: str | None = Query(
        None,
        min_length=1,
        max_length=40,
        description="The poking gate is stopping cleanly, at this time (UTC, its clock): it is"
        f" shown closed, no alarm, until it answers again; signed in {SIGNATURE_HEADER} when"
        " its key is pinned here.",
    ),
    signature: str | None = Header(None, alias=SIGNATURE_HEADER, max_length=200),
) -> Response:
    """Another gate of the compound has new passages: this gate asks it now (its
    ``/api/v1/passages``, judged as always) rather than at its next poll. Nothing else is
    taken from the poke; many come to one ask a second at most. With ``closing``, it is
    stopping: shown closed (not an outage) until it answers again. A token issued for one
    gate (``kiosk token new --for``) speaks for that gate alone: 403, audited, for another."""
    if not token.speaks_for(kiosk_id):
        # A refusal's row (no personal field) waits in memory on a card that takes no
        # write: the refusal stands (403), never turned into a 503 to retry.
        state.audit(token, "peer_refused", {"kiosk_id": kiosk_id, "for": token.peer}, may_wait=True)
        raise HTTPException(403, f"this token speaks for {token.peer} alone")
    peers = state.core.peers
    if closing is not None and peers is not None:
        return _closing(peers, kiosk_id, closing, signature)
    if peers is None or not peers.poke(kiosk_id):
        raise HTTPException(404, f"no compound.peers entry with kiosk_id {kiosk_id} here")
    return Response(json.dumps({"fetching": True}), 202, media_type="application/json")


def _closing(peers: Peers, kiosk_id: str, at: str, signature: str | None) -> Response:
    """A peer's closing notice (``checkpoint.peers.PeerSync.closing``): 202, 404 (no such
    peer), 422 (not a time), 403 (not signed by its pinned key, or played back)."""
    try:
        peers.closing(kiosk_id, at, signature)
    except KeyError:
        raise HTTPException(404, f"no compound.peers entry with kiosk_id {kiosk_id} here") from None
    except PeerForged as exc:
        raise HTTPException(403, f"closing notice refused: {exc}") from None
    except PeerPageError as exc:
        raise HTTPException(422, f"closing: {exc}") from None
    body = json.dumps({"fetching": False, "closed": True})
    return Response(body, 202, media_type="application/json")


def metrics(request: Request, state: Annotated[Api, Depends(api_state)]) -> PlainTextResponse:
    """Prometheus text format: decisions by reason, loop lag, devices, queue, disk. The
    devices of the health report as the caller's ``/api/v1/health`` shows it
    (``health_view``): public, the whole to the kiosk's own host; behind a ``stats:read``
    token (``web.metrics_public = false``), the whole, as that token's health."""
    whole = not state.core.config.web.metrics_public or this_host(request)
    return PlainTextResponse(
        render_metrics(state.core, state.decisions, state.lag, whole=whole),
        media_type="text/plain; version=0.0.4",
    )


def metrics_guard(token: Annotated[TokenInfo, Depends(stats_reader)]) -> None:
    """``/metrics`` behind a ``stats:read`` token (``web.metrics_public = false``)."""


def _metrics_router(*, public: bool) -> APIRouter:
    """``/metrics`` as served with ``web.metrics_public`` = ``public``. Public, it declares no
    security (and no 401/403) so the schema stays exact."""
    hidden: tuple[int, ...] = (401, 403) if public else ()
    errors = {k: v for k, v in _ERRORS.items() if k not in hidden}
    found = APIRouter(dependencies=_SHARED if public else [*_SHARED, Depends(metrics_guard)])
    found.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        tags=["metrics"],
        response_class=PlainTextResponse,
        responses={**errors, 200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    # A monitor's HEAD: GET's status and headers, no body; not in the schema (the GET is).
    found.add_api_route(
        "/metrics",
        metrics,
        methods=["HEAD"],
        response_class=PlainTextResponse,
        include_in_schema=False,
    )
    return found


public_metrics = _metrics_router(public=True)
token_metrics = _metrics_router(public=False)


def _pi_power_metrics(pi: dict[str, Any]) -> list[str]:
    """The Pi's power and heat (health's ``pi_power``, a Pi's only): under-voltage and
    throttled now, the firmware's throttle word as read, the SoC's temperature."""
    word, temp = pi.get("throttled_word"), pi.get("soc_temp_c")
    gauges = [
        ("kiosk_pi_under_voltage", "1 while the Pi's supply is too low.", pi.get("under_voltage")),
        ("kiosk_pi_throttled", "1 while the Pi runs capped or throttled.", pi.get("throttled")),
    ]
    if isinstance(word, str):
        gauges.append(
            ("kiosk_pi_throttled_word", "The firmware's get_throttled bits.", int(word, 16))
        )
    if isinstance(temp, int | float):
        gauges.append(("kiosk_pi_soc_temperature_celsius", "The SoC's temperature.", temp))
    lines: list[str] = []
    for name, help_text, value in gauges:
        shown = int(bool(value)) if isinstance(value, bool | None) else value
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {shown}"]
    return lines


def render_metrics(
    core: Core, decisions: DecisionCounter, lag: LoopLagMonitor, *, whole: bool
) -> str:
    """The metrics; the health report's part as ``health_view(report, whole)`` shows it: a
    caller never reads in ``kiosk_device_up`` a state its health withholds (the office's list
    sync's, to a stranger on the LAN)."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    store = core.store
    try:
        decisions.update(store)
        store_up = 1
    except Exception:  # noqa: BLE001 - report the store as down rather than fail the scrape
        store_up = 0
    metric("kiosk_decisions_total", "counter", "Decisions by decision and reason code.")
    for (decision, reason), n in sorted(decisions.by_reason.items()):
        lines.append(
            f'kiosk_decisions_total{{decision="{_label(decision)}",reason="{_label(reason)}"}} {n}'
        )
    metric("kiosk_events_last_seq", "gauge", "Highest committed event seq.")
    lines.append(f"kiosk_events_last_seq {decisions.after_seq}")
    metric("kiosk_store_up", "gauge", "1 when the event log can be read.")
    lines.append(f"kiosk_store_up {store_up}")

    metric("kiosk_loop_lag_seconds", "histogram", "Asyncio loop scheduling lag (10 ms timer).")
    cumulative = 0
    for bound, n in zip(lag.BUCKETS_S, lag.bucket_counts, strict=False):
        cumulative += n
        lines.append(f'kiosk_loop_lag_seconds_bucket{{le="{bound}"}} {cumulative}')
    lines.append(f'kiosk_loop_lag_seconds_bucket{{le="+Inf"}} {lag.total}')
    lines.append(f"kiosk_loop_lag_seconds_sum {lag.sum_s:.6f}")
    lines.append(f"kiosk_loop_lag_seconds_count {lag.total}")

    runner = _runner_metrics(core)
    numeric = {k: v for k, v in runner.items() if isinstance(v, int | float)}
    if numeric:
        metric("kiosk_runner", "gauge", "Engine runner figures (runner.metrics()).")
        for key, value in sorted(numeric.items()):
            lines.append(f'kiosk_runner{{name="{_label(key)}"}} {float(value)}')
    queue_depth = runner.get("queue_depth")
    if isinstance(queue_depth, int | float):
        metric("kiosk_queue_depth", "gauge", "Work waiting in the engine runner's queue.")
        lines.append(f"kiosk_queue_depth {queue_depth}")

    report: dict[str, Any]
    try:
        report = health_view(core.health(), whole)
    except Exception:  # noqa: BLE001 - a failing probe must not take /metrics down
        report = {}
    states = list(_device_states(report))
    metric("kiosk_device_up", "gauge", "1 when a device (or the store, clock) reports ok.")
    for name, state in states:
        up = 1 if state == "ok" else 0
        lines.append(f'kiosk_device_up{{device="{_label(name)}",state="{_label(state)}"}} {up}')
    if isinstance(report, dict) and "deciding" in report:
        metric("kiosk_deciding", "gauge", "1 while the kiosk can decide passages.")
        lines.append(f"kiosk_deciding {1 if report['deciding'] else 0}")
    pi = report.get("pi_power") if isinstance(report, dict) else None
    if isinstance(pi, dict) and pi.get("available"):
        lines += _pi_power_metrics(pi)

    try:
        free: int | None = shutil.disk_usage(store.path.parent).free
    except OSError:
        free = None
    if free is not None:
        metric("kiosk_disk_free_bytes", "gauge", "Free space where the event log lives.")
        lines.append(f"kiosk_disk_free_bytes {free}")
    return "\n".join(lines) + "\n"
