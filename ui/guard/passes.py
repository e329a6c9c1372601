"""Passes at the gate (``/guard/passes``): issuing the signed pass and its printable card, the
list of passes issued here (searchable by holder, household or pass number), voiding a lost
pass from that list (after a confirmation step) and printing cards again, one or a batch.

Where issuing is recorded: the audit row ``pass_issued`` (the request's row, written before
the card is made: ``ui.guard.deps.write_row_first``; if it cannot be, no card is handed over
and the guard gets ``err.store``) carries the pass's fields — pass number, key, holder,
household, role, validity, flags. The audit ``detail`` is personal data (covered by the
row's digest, nulled by retention), like the event's ``person``. A card is printed again by
signing those same fields with the same key: Ed25519 signatures are deterministic, so the
reprint is the very pass that was issued, QR code and all. A pass signed with another key
(the key was replaced) cannot be reprinted here; a voided one is not reprinted. A reprint's
row (``pass_reprinted``) is written before its cards are handed over too.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from kiosk import privacy, queries
from kiosk.clock import known_passed
from kiosk.days import FIRST_DAY, LAST_DAY, OutsideDays, typed_instant
from kiosk.lists import same_text
from kiosk.pass_format import ROLES, VERSION
from kiosk.passes import Pass, PassStartError, encode_pass, issue_pass, key_id_of, pass_start
from kiosk.store import vouch_time
from ui import i18n
from ui.auth import Session
from ui.guard import deps
from ui.guard.community.common import Refused, or_again, typed_of
from ui.guard.deps import (
    ActionSession,
    Guard,
    GuardDep,
    PageSession,
    done,
    note,
    room,
    served_while_stopping,
)
from ui.guard.display import card_svg, local_time, shown_time
from ui.guard.forms import BadInput, bounded, choice, clean
from ui.guard.lists import confirm_first

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

router = room("/guard/passes")

#: Cards one print request takes (a sheet of cards for a household or a visiting team).
MAX_BATCH = 50


def issued_records(g: Guard) -> list[dict[str, Any]]:
    """The passes issued at this console, newest first, as their audit rows recorded them."""
    out = []
    for row in queries.issued_passes(g.core.store):
        d = row.detail
        if not all(isinstance(d.get(k), str) for k in ("holder", "household", "valid_until")):
            continue  # issued before the record held the pass, or purged by retention
        out.append({**d, "issued_at": row.ts, "stamp": row.stamp, "actor": row.actor})
    return out


def status_of(record: dict[str, Any], revoked: dict[str, str], now: datetime) -> str:
    if record["pass_id"] in revoked:
        return "revoked"
    try:
        until = datetime.fromisoformat(record["valid_until"])
    except ValueError:
        return "expired"
    return "valid" if now < until else "expired"


def pass_rows(g: Guard, session: Session, lang: str, q: str) -> list[dict[str, Any]]:
    """The list of issued passes matching ``q`` (holder, household or pass number), masked
    for the viewer's role (a pass issued by this request is on record before it is shown)."""
    clear = g.clear(session)
    revoked = queries.revoked_pass_ids(g.core.store)
    now = g.core.clock.now()
    wanted = same_text(q)  # as typed by a Chinese input method too: １-１０１ finds 1-101
    found = [
        r
        for r in issued_records(g)
        if not wanted
        or any(wanted in same_text(str(r.get(k, ""))) for k in ("holder", "household", "pass_id"))
    ]
    # Issued before NTP set the clock: at the time it was issued, or said to be the clock's.
    stamps = [r["stamp"] or queries.Stamp(r["issued_at"], "", 0, True) for r in found]
    issued_at = g.stamp_times(stamps, lang, "%Y-%m-%d %H:%M")
    rows = []
    for r, issued in zip(found, issued_at, strict=True):
        shown = privacy.mask_event({k: r.get(k) for k in ("pass_id", "household", "holder")}, clear)
        status = status_of(r, revoked, now)
        rows.append(
            {
                **shown,
                "id": r["pass_id"],
                "role": i18n.t(lang, f"pass.role.{r.get('role')}")
                if r.get("role") in ROLES
                else "",
                "valid_until": local_time(r["valid_until"], g.tz, "%Y-%m-%d %H:%M"),
                "issued_at": issued,
                "actor": r["actor"],
                "status": status,
                "status_text": i18n.t(lang, f"pass.status.{status}"),
            }
        )
    return rows


def key_problem(g: Guard) -> str | None:
    """Why this console cannot issue passes (an i18n key), or None: no issuing key here (the
    secret is not set), one the secret names that cannot be read (damaged on the card:
    restored from the backup), or one whose ``.pub`` is not in
    the trust folder (a rotation removed it): every pass it signed would be refused at this
    very gate as ``pass_unknown_key``."""
    key = g.core.issuer_key
    if key is None:
        return "pass.key_unreadable" if g.core.issuer_key_problem else "pass.no_key"
    if not g.core.trust.trusts(key.public_key()):
        return "pass.key_untrusted"
    return None


#: What ``kiosk.passes.pass_start`` refused, said to the guard (``PassStartError.code``).
START_REFUSED = {
    "unsynced": "err.pass_clock_unsynced",
    "before_floor": "err.pass_start_early",
    "not_now": "err.pass_start_not_now",
    "far": "err.pass_start_far",
    "expired": "err.pass_start_expired",
    "skipped": "err.pass_start_skipped",
}


def clock_reading(g: Guard) -> str | None:
    """The gate's time as its clock reads it (site time, to the minute) while the clock is
    not synchronised, shown beside the pass form's start; None when it is."""
    clock = g.core.clock
    if clock.synced():
        return None
    return shown_time(clock.now().isoformat(), g.tz, "%Y-%m-%d %H:%M")


def clock_vouch(g: Guard) -> dict[str, str] | None:
    """What the guard may vouch for (``kiosk.store.vouch_time``): the gate's clock not
    synchronised, reading later than the newest time it knows has passed (a right RTC after
    a night's power cut, or a fast clock: the guard looks at a phone). Its reading, that
    time and the site's zone, to the minute; None when there is nothing to vouch for."""
    clock = g.core.clock
    floor = known_passed(clock)
    now = clock.now()
    if floor is None or now - floor < timedelta(minutes=1):
        return None
    said = {"reading": now, "floor": floor}
    shown = {k: shown_time(v.isoformat(), g.tz, "%Y-%m-%d %H:%M") for k, v in said.items()}
    # The reading shown and when (monotonic), sent back with the tap (``vouched_reading``).
    drawn = {"shown": now.isoformat(), "drawn": str(clock.monotonic_ns())}
    return shown | {"zone": str(g.tz)} | drawn


#: How far the clock may have moved from the reading the guard saw (plus the time since the
#: page was drawn) for a tap on "The clock is right" to vouch for it.
VOUCH_DRIFT = timedelta(minutes=1)


def vouched_reading(g: Guard, form: FormData) -> datetime:
    """The clock's reading now, if it is still the reading the guard saw (``shown``, drawn
    at ``drawn`` monotonic: that plus the time since, within ``VOUCH_DRIFT``); else
    ``BadInput`` saying the clock changed (stepped, set, or a page from before a restart):
    the page drawn again shows what it reads now, and nothing is vouched for."""
    clock = g.core.clock
    now, mono = clock.now(), clock.monotonic_ns()
    # Both held before any arithmetic (a reading at the calendar's ends, a `drawn` in the
    # monotonic clock's far past or future was an OverflowError, a 500): a typed instant on
    # the days a person may type, a `drawn` no later than now.
    drawn = str(form.get("drawn") or "")
    try:
        shown = typed_instant(str(form.get("shown") or ""))
    except ValueError:
        raise BadInput("err.clock_vouch_changed") from None
    if not (drawn.isascii() and drawn.isdigit() and len(drawn) <= 20) or int(drawn) > mono:
        raise BadInput("err.clock_vouch_changed")
    since = timedelta(microseconds=(mono - int(drawn)) // 1000)
    if shown.tzinfo is None or abs(now - (shown + since)) > VOUCH_DRIFT:
        raise BadInput("err.clock_vouch_changed")
    return now


def start_of(g: Guard, value: object, days: float) -> datetime:
    """The start of the pass the form asks for (``kiosk.passes.pass_start``): the clock's
    time when synchronised; else the time the guard typed (``start``, a site time as the
    form's ``datetime-local`` sends it, read by ``pass_start``: one the autumn change repeats
    is the occurrence the clock allows), required; either on one of the days a person may
    type (``kiosk.days.typed_instant``). Refused in the guard's words, the times with their
    UTC offsets in the hour the autumn change repeats (``shown_time``)."""
    text = str(value or "").strip()
    typed_start = None
    if text:
        try:
            typed_start = typed_instant(text)
        except OutsideDays:  # the calendar's ends were a 500 (OverflowError in a zone)
            raise BadInput("err.range", field="pass.start", lo=FIRST_DAY, hi=LAST_DAY) from None
        except ValueError:
            raise BadInput("err.pass_start_format") from None
    try:
        # A fresh card's clock (1970) and an empty log: nothing to hold the start against.
        unknown = known_passed(g.core.clock) is None
        return pass_start(g.core.clock, typed_start, g.tz, days=days, anyway=unknown)
    except PassStartError as exc:
        said = {"reading": exc.reading, "earliest": exc.earliest, "start": exc.start or exc.reading}
        shown = {k: shown_time(v.isoformat(), g.tz, "%Y-%m-%d %H:%M") for k, v in said.items()}
        raise BadInput(START_REFUSED[exc.code], **shown) from None


def issuing_key(g: Guard) -> Ed25519PrivateKey:
    """The console's issuing key, when a pass it signs opens this gate; else ``BadInput``."""
    problem = key_problem(g)
    if problem is not None or g.core.issuer_key is None:
        words = {"pass.no_key": "err.no_key", "pass.key_unreadable": "err.key_unreadable"}
        raise BadInput(words.get(str(problem), "err.key_untrusted"))
    return g.core.issuer_key


def render(request: Request, g: Guard, session: Session, **ctx: Any) -> HTMLResponse:
    lang = g.lang(request)
    q = str(ctx.pop("q", "") or "")[:60]
    base = {"issued": None, "cards": None, "typed": {}, **g.flash(request)}
    return g.render(
        request,
        "guard_passes.html",
        session,
        here="/guard/passes",  # drawn for a form too (an issue, a search): its links lead here
        key_problem=key_problem(g),
        key_unreadable=g.core.issuer_key_problem or "",
        clock_reading=clock_reading(g),
        clock_vouch=clock_vouch(g),
        roles=ROLES,
        q=q,
        passes=pass_rows(g, session, lang, q),
        **(base | ctx),
    )


@router.get("/passes", response_class=HTMLResponse, include_in_schema=False)
def passes_page(request: Request, session: PageSession, g: GuardDep) -> Response:
    """The page and the whole list, never a search: ``?q=`` in its address is not read, so
    a holder's name or a household is never searched by an address (the search posts it:
    ``passes_search``, cut to 60 characters in ``render``)."""
    return render(request, g, session)


@router.post("/passes/search", response_class=HTMLResponse, include_in_schema=False)
@served_while_stopping
async def passes_search(request: Request, session: ActionSession, g: GuardDep) -> Response:
    """The pass search, posted with the form's CSRF token: a holder's name or a household
    typed is never in a URL (the shared phone's history kept it past every purge)."""
    q = (await request.form()).get("q")
    return await asyncio.to_thread(render, request, g, session, q=q if isinstance(q, str) else "")


#: The pass form's fields, drawn again as typed when the pass is refused.
PASS_FIELDS = ("household", "holder", "role", "days", "start")


def refused_page(request: Request, g: Guard, session: Session, refused: Refused) -> HTMLResponse:
    """The passes page with the refused pass form as typed and the problem."""
    return render(request, g, session, **refused.context())


@router.post("/passes", name="pass_issued", response_class=HTMLResponse, include_in_schema=False)
@deps.once_per_form  # a double tap, a resend: one pass
async def issue(request: Request, session: ActionSession, g: GuardDep) -> Response:
    form = await request.form()
    typed = typed_of(form, PASS_FIELDS)
    act = functools.partial(issue_one, request, session, g, form)
    return await or_again(request, g, session, act, typed=typed, again=refused_page)


async def issue_one(request: Request, session: Session, g: Guard, form: FormData) -> Response:
    """Sign the pass the form asks for; its card is the answer."""
    key = issuing_key(g)
    # Not the reading of a clock NTP has not set: a floored one reads the last shutdown's
    # time after a power cut (a six-hour pass expired when printed), a fast one days ahead.
    days = bounded(form.get("days"), "pass.days", 0.05, 366, required=True)
    start = start_of(g, form.get("start"), days or 1)
    household = clean(form.get("household"), "pass.household", required=True, max_len=40)
    holder = clean(form.get("holder"), "pass.holder", required=True, max_len=60)
    role = choice(form.get("role"), "pass.role", ROLES, "visitor")
    try:
        payload, pass_ = issue_pass(
            key,
            household,
            holder,
            role=role,
            days=days or 1,
            now=start,
            flags=("gate_issued",),
            tz=g.tz,  # whole days end at the clock time the card says (kiosk.passes)
        )
    except ValueError as exc:  # kiosk.passes says what cannot go on a pass
        raise BadInput(str(exc)) from None
    # The issue record: everything a reprint signs again (personal, like the audit detail is).
    record: dict[str, Any] = {
        "pass_id": pass_.pass_id,
        "key_id": pass_.key_id,
        "holder": pass_.holder,
        "household": pass_.household,
        "role": role,
        "valid_from": pass_.valid_from.isoformat(),
        "valid_until": pass_.valid_until.isoformat(),
        "flags": list(pass_.flags),
    }
    note(request, **record)
    # The row is the pass's only record: no card for a pass that is not on it (err.store).
    await asyncio.to_thread(deps.write_row_first, request)
    if not g.core.clock.synced():  # the time the guard typed has passed: the floor rises
        await asyncio.to_thread(
            vouch_time, g.core.store, g.core.clock, start, session.name, "pass_start"
        )
    lang = g.lang(request)
    return render(
        request,
        g,
        session,
        issued=card_view(payload, pass_, g, lang),
        flash_ok=i18n.t(lang, "pass.issued"),
        flash_err=None,
    )


def card_view(payload: str, pass_: Pass, g: Guard, lang: str) -> dict[str, Any]:
    return {
        "card": card_svg(payload, pass_, lang, g.cfg.site.site_name, g.tz),
        "payload": payload,
        "holder": pass_.holder,
        "household": pass_.household,
        "role": pass_.role,
        "pass_id": pass_.pass_id,
        "valid_until": local_time(pass_.valid_until.isoformat(), g.tz, "%Y-%m-%d %H:%M"),
    }


def pass_of(record: dict[str, Any]) -> Pass:
    """The pass an issue record describes (to be signed again)."""
    try:
        return Pass(
            version=VERSION,
            key_id=str(record["key_id"]),
            pass_id=str(record["pass_id"]),
            household=str(record["household"]),
            holder=str(record["holder"]),
            role=record["role"],
            valid_from=datetime.fromisoformat(str(record["valid_from"])),
            valid_until=datetime.fromisoformat(str(record["valid_until"])),
            flags=tuple(str(f) for f in record.get("flags") or ()),
        )
    except (KeyError, TypeError, ValueError):
        raise BadInput("pass.cannot_reprint") from None


def picked_ids(form: FormData) -> list[str]:
    ids = [clean(v, "lists.pass_id", max_len=64) for v in form.getlist("pass_id")[: MAX_BATCH + 1]]
    ids = list(dict.fromkeys(i for i in ids if i))
    if not ids:
        raise BadInput("pass.none_selected")
    if len(ids) > MAX_BATCH:
        raise BadInput("pass.batch_too_big", n=MAX_BATCH)
    return ids


@router.post("/passes/print", name="pass_reprinted", response_class=HTMLResponse,
             include_in_schema=False)  # fmt: skip
async def reprint(request: Request, session: ActionSession, g: GuardDep) -> Response:
    """Print cards again (one, or a batch): the same signed passes, re-signed identically."""
    form = await request.form()
    key = issuing_key(g)
    ids = picked_ids(form)
    records = {r["pass_id"]: r for r in issued_records(g)}
    revoked = queries.revoked_pass_ids(g.core.store)
    lang = g.lang(request)
    cards = []
    for pass_id in ids:
        record = records.get(pass_id)
        if record is None:
            raise BadInput("pass.not_found")
        if pass_id in revoked:
            raise BadInput("pass.revoked_no_print")
        if record.get("key_id") != key_id_of(key.public_key()):
            raise BadInput("pass.other_key")
        pass_ = pass_of(record)
        cards.append(card_view(encode_pass(key, pass_), pass_, g, lang))
    note(request, pass_ids=ids)
    await asyncio.to_thread(deps.write_row_first, request)  # a card printed is on record
    return render(request, g, session, cards=cards)


@router.post("/passes/revoke", name="pass_revoked", include_in_schema=False)
@deps.once_per_form  # the confirmation tapped twice: one revocation, its time and reason kept
async def revoke(request: Request, session: ActionSession, g: GuardDep) -> Response:
    """Void a lost pass picked from the list: a confirmation step first, then the
    revocation list (``core.lists``, audited by the list store with the guard's name)."""
    form = await request.form()
    pass_id = clean(form.get("pass_id"), "lists.pass_id", required=True, max_len=64)
    record = next((r for r in issued_records(g) if r["pass_id"] == pass_id), None)
    if record is None:
        raise BadInput("pass.not_found")
    note(request, pass_id=pass_id)
    if form.get("confirm") != "yes":
        shown = privacy.mask_event(
            {k: record.get(k) for k in ("household", "holder")}, g.clear(session)
        )
        return confirm_first(
            request, g, session, "/guard/passes/revoke", form,
            i18n.t(g.lang(request), "confirm.revoke", id=pass_id, **shown),
            reason=True,
        )  # fmt: skip
    reason = clean(form.get("note"), "lists.reason") or i18n.t(g.lang(request), "pass.lost")
    try:
        await asyncio.to_thread(g.core.lists.revoke, pass_id, reason, actor=session.name)
    except ValueError as exc:  # ListError, in the store's words
        raise BadInput(str(exc)) from None
    return done(request, "/guard/passes", "pass.voided")  # here, and at the peers once poked


@router.post("/passes/clock", name="clock_vouched", include_in_schema=False)
async def vouch_clock(request: Request, session: ActionSession, g: GuardDep) -> Response:
    """The guard's word that the gate's clock, not synchronised, reads right (``clock_vouch``
    shows what it reads): its reading is taken as passed (``kiosk.store.vouch_time``,
    audited with the guard's name), so the floor no longer lags it all day: the reading it
    showed, not one the clock has stepped to since (``vouched_reading``)."""
    at = vouched_reading(g, await request.form())
    note(request, at=at.isoformat())
    if not await asyncio.to_thread(
        vouch_time, g.core.store, g.core.clock, at, session.name, "clock"
    ):  # sent twice, network time since, a reading taken as passed already: none taken
        raise BadInput("err.nothing_to_vouch")
    return done(request, "/guard/passes", "pass.clock_vouched")
