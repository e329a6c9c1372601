"""The roster and handover (``/guard/community/handover``): shifts per gate (the manager adds
them), who is on duty, and a handover summary acknowledged by the outgoing and the incoming
guard."""

from __future__ import annotations

import functools
from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from kiosk.accounts import NAME_RE
from kiosk.community import CommunityError
from kiosk.days import NoSuchTime, local_instant, typed_instant
from kiosk.roster import SHIFTS_LISTED, Handover
from ui.auth import Session
from ui.core_words import refusal_text
from ui.guard.community.common import (
    FRESH,
    PREFIX,
    AdminSession,
    RecordId,
    Refused,
    community_room,
    form_page,
    form_text,
    ledgers,
    on_duty,
    or_again,
    render,
    save,
    save_or_again,
)
from ui.guard.deps import ActionSession, Guard, GuardDep, note
from ui.guard.forms import FIRST_DAY, LAST_DAY

PAGE = f"{PREFIX}/handover"
router = community_room(PAGE)


def local(text: str, tz: ZoneInfo) -> datetime:
    """A local date and time as the form's ``datetime-local`` sends it, on one of the
    console's days (``forms.FIRST_DAY`` to ``forms.LAST_DAY``: the roster reaches a day
    either side, which the calendar's ends do not have), read as every typed local time is
    (``kiosk.days.local_instant``): a time the spring clock change skips is refused; one the
    autumn change repeats is its first (the earlier hour: a shift is planned ahead)."""
    try:
        when = typed_instant(text)  # held to those days, as every typed instant is
    except ValueError:
        raise CommunityError(
            f"{text[:20]!r}: expected a local date and time from {FIRST_DAY} to {LAST_DAY}"
        ) from None
    if when.tzinfo is not None:
        raise CommunityError(f"{text[:32]!r}: expected a local time without a UTC offset")
    try:
        return local_instant(when, tz)
    except NoSuchTime as exc:
        raise CommunityError(str(exc)) from None


#: The two forms' fields, drawn again as typed after a refusal (a guard's account name in
#: the page, never in its address: the refusals used to go back in ``?err=``).
SHIFT_FIELDS = ("guard", "starts", "ends")
HANDOVER_FIELDS = ("incoming",)


@form_page(router, "/handover")
def page(request: Request, g: Guard, session: Session, refused: Refused = FRESH) -> HTMLResponse:
    """The roster and the handovers; after a refused shift or handover, its form as sent."""
    roster, gate, now = ledgers(g).roster, g.cfg.site.kiosk_id, g.core.clock.now()
    shifts, bad, more = roster.listed_shifts(gate, now)
    handovers, bad_handovers = roster.read_handovers(gate, limit=10)
    views = [s.to_dict() | {"removable": not roster.shift_ended(s)} for s in shifts]
    after = views[-1]["starts_at"] if more and views else None
    lang = g.lang(request)
    shown: list[str] = []
    if session.is_admin:  # the rows skipped (edited by hand), named for who can fix them
        named = {e.row_id for e in bad} | {s.id for s in shifts}  # shown: not said again
        unshown = [*roster.timeless_shifts(gate), *roster.unshown_shifts(gate)]
        shown = [refusal_text(lang, str(e)) for e in bad + bad_handovers]
        shown += [refusal_text(lang, str(e)) for e in unshown if e.row_id not in named]
    return render(
        g,
        request,
        "community_handover.html",
        session,
        **on_duty(g),
        shifts=views,
        more_shifts=more,
        more_after=after,
        shifts_cap=SHIFTS_LISTED,
        handovers=handover_views(g, handovers, lang),
        unreadable=shown,
        **refused.context(),
    )


def handover_views(g: Guard, handovers: list[Handover], lang: str) -> list[dict[str, object]]:
    """Handovers as the page shows them, with ``window``: from ``since`` to when it was
    opened, each with its date (a night shift's report runs across two days), dated by its
    boot's clocks when stamped before NTP set the clock (``Guard.stamp_times``)."""
    stamps = [h.stamps() for h in handovers]
    flat = [st[k] for st in stamps for k in ("since", "opened_at")]
    shown = g.stamp_times(flat, lang, "%Y-%m-%d %H:%M")
    return [
        h.to_dict() | {"window": f"{shown[2 * i]} – {shown[2 * i + 1]}"}
        for i, h in enumerate(handovers)
    ]


def account(g: Guard, field: str, name: str) -> str:
    """``name`` when it is a guard account (who can sign in to be on duty and to sign a
    handover): a typo would make a shift or a handover for nobody."""
    name = name.strip()
    if not NAME_RE.match(name) or g.auth.accounts.get(name) is None:
        raise CommunityError(f"{field}: {name[:64]!r} is not a guard account")
    return name


@router.post("/shifts", name="shift_add", include_in_schema=False)
async def add_shift(request: Request, session: AdminSession, g: GuardDep) -> Response:
    form = await request.form()
    roster, gate = ledgers(g).roster, g.cfg.site.kiosk_id

    def add() -> object:
        start, end = local(form_text(form, "starts"), g.tz), local(form_text(form, "ends"), g.tz)
        guard = account(g, "guard", form_text(form, "guard"))
        shift = roster.add_shift(gate, guard, start, end, session.name)
        g.auth.shift_added(shift)  # a kept bar it undoes goes (a fault next lets her in)
        return shift

    return await save_or_again(
        request, g, session, PAGE, add, form=form, fields=SHIFT_FIELDS, again=page
    )


@router.post("/shifts/{sid}/remove", name="shift_remove", include_in_schema=False)
async def remove_shift(
    sid: RecordId, request: Request, session: AdminSession, g: GuardDep
) -> Response:
    """A shift not over yet taken out of the roster (a wrong guard or day, a swap); one that
    has ended stays (``Roster.remove_shift``), as does another gate's."""
    note(request, shift_id=sid)
    form = await request.form()
    roster, gate = ledgers(g).roster, g.cfg.site.kiosk_id

    def remove() -> None:
        shift = roster.remove_shift(sid, session.name, gate=gate, showed=shown_shift(form))
        g.auth.shift_removed(shift, session.name)  # kept: a fault next keeps her out

    act = functools.partial(save, request, PAGE, remove)
    return await or_again(request, g, session, act, typed={}, again=page)


def shown_shift(form: FormData) -> tuple[str, datetime, datetime]:
    """The guard, start and end a remove button's page showed for its shift (its hidden
    fields)."""
    try:
        starts, ends = (typed_instant(form_text(form, k)) for k in ("starts_at", "ends_at"))
    except ValueError:
        raise CommunityError("the page is out of date: draw it again") from None
    if starts.tzinfo is None or ends.tzinfo is None:
        raise CommunityError("the page is out of date: draw it again")
    return form_text(form, "guard"), starts, ends


@router.post("/handover", name="handover_open", include_in_schema=False)
async def open_handover(request: Request, session: ActionSession, g: GuardDep) -> Response:
    """The outgoing guard opens a handover; one between the same two guards waiting to be
    signed (looked at in the opening's own write transaction, ``Roster.open_handover``: a
    double tap, two consoles) is refused, naming it."""
    form = await request.form()
    roster, gate = ledgers(g).roster, g.cfg.site.kiosk_id

    def open_one() -> object:
        incoming = account(g, "incoming", form_text(form, "incoming"))
        # What the incoming guard must pick up: the console's open alarms too (as the
        # community pages count them: ``common.OpenAlarms``).
        gate_alarms = len(g.open_alarms())
        return roster.open_handover(gate, session.name, incoming, gate_alarms=gate_alarms)

    return await save_or_again(
        request, g, session, PAGE, open_one, form=form, fields=HANDOVER_FIELDS, again=page
    )


@router.post("/handover/{hid}/ack", name="handover_ack", include_in_schema=False)
async def ack_handover(
    hid: RecordId, request: Request, session: ActionSession, g: GuardDep
) -> Response:
    note(request, handover=hid)
    roster = ledgers(g).roster
    act = functools.partial(save, request, PAGE, lambda: roster.acknowledge(hid, session.name))
    return await or_again(request, g, session, act, typed={}, again=page)
