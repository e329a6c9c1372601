"""The returnee ledger (一人一策, ``/guard/community/returnees``): registering a person back
from elsewhere, a temperature taken at the door, acknowledging an alarm, and (the manager
only) clearing, escalating or transferring. The ledger describes each change with the
guard's name; the route class writes it as the request's one audit row."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from kiosk.community import CommunityError
from kiosk.observation import Person
from ui.auth import Session
from ui.guard.community.common import (
    FRESH,
    PREFIX,
    AdminSession,
    RecordId,
    Refused,
    admin,
    community_room,
    form_float,
    form_int,
    form_page,
    form_text,
    ledgers,
    masked,
    open_alarms,
    or_again,
    render,
    save,
    save_or_again,
)
from ui.guard.deps import (
    ActionSession,
    Guard,
    GuardDep,
    note,
    once_per_form,
)
from ui.guard.forms import BadInput

PAGE = f"{PREFIX}/returnees"
router = community_room(PAGE)


#: The registration form's fields, put back as typed after a refusal.
TYPED_FIELDS = ("name", "household", "phone", "origin", "date_back", "days", "note")


#: The manager's correction form's fields, put back as typed after a refusal.
CORRECTED_FIELDS = ("name", "household", "date_back", "until")
#: What the correction form showed of each (``was_<field>``, hidden): a correction refused
#: because the record changed since is redrawn with only the fields the manager changed.
SHOWN_FIELDS = tuple(f"was_{f}" for f in CORRECTED_FIELDS)


@form_page(router, "/returnees")
def page(request: Request, g: Guard, session: Session, refused: Refused = FRESH) -> HTMLResponse:
    """The ledger's page; after a refused registration, its form as sent."""
    return _drawn(request, g, session, refused)


def _drawn(
    request: Request,
    g: Guard,
    session: Session,
    refused: Refused,
    correcting: int | None = None,
    merged: Merged | None = None,
) -> HTMLResponse:
    """The page; after a refused correction of person ``correcting``, that person's
    correction form as sent (and the registration form empty), or ``merged`` onto the
    record as it is now."""
    ledger = ledgers(g).observation
    # ``version``: what the manager's correction form carries (``seen``)
    people = [
        masked(g, session, p.to_dict()) | {"version": p.version()}
        for p in reversed(ledger.people())
    ]
    named = {p["id"]: f"{p['name']} · {p['household']}" for p in people}
    open_now = open_alarms(g)
    alarms = [a.to_dict() | {"who": named.get(a.person_id)} for a in open_now.returnee]
    return render(
        g,
        request,
        "community_returnees.html",
        session,
        people=people,
        open=open_now,
        alarms=alarms,
        correcting=correcting,
        merged=merged,
        **refused.context(),
    )


@dataclass(frozen=True)
class Merged:
    """A correction refused because the record changed since its page was drawn, put onto
    the record as it is now: ``fields`` the form's values, ``kept`` the fields this manager
    changed (their values kept), ``both`` those the other correction changed too (field →
    its value now: the form shows this manager's, the manager chooses)."""

    fields: dict[str, str]
    kept: tuple[str, ...]
    both: dict[str, str]


def merged_onto(now: Person, typed: dict[str, str]) -> Merged:
    """``typed`` (with what its form showed: ``was_<field>``) onto the record ``now``: a
    field the manager left as shown takes its value now, so sending the form again never
    puts back what another manager corrected meanwhile. A form without ``was_`` (drawn
    before them) counts as having changed nothing."""
    current = now.corrected_fields()
    current["until"] = current.pop("observation_until")  # as the form names it
    fields, both = dict(current), {}
    kept = []
    for key in CORRECTED_FIELDS:
        mine, was = typed.get(key, ""), typed.get(f"was_{key}") or typed.get(key, "")
        if mine == was:
            continue
        fields[key] = mine
        kept.append(key)
        if current[key] not in (was, mine):
            both[key] = current[key]
    return Merged(fields, tuple(kept), both)


@router.post("/returnees", name="returnee_register", include_in_schema=False)
async def register(request: Request, session: ActionSession, g: GuardDep) -> Response:
    """A returnee registered; one observed already (this name and dwelling, however spelled,
    looked at in the registration's own write transaction: a double tap, two consoles, an
    admin's ``kiosk`` at the same moment) is refused, naming the record."""
    form = await request.form()
    ledger = ledgers(g).observation

    def register_one() -> object:
        return ledger.register(
            name=form_text(form, "name"),
            household=form_text(form, "household"),
            phone=form_text(form, "phone"),
            origin=form_text(form, "origin"),
            date_back=form_text(form, "date_back"),
            days=form_int(form, "days"),
            note=form_text(form, "note"),
            actor=session.name,
        )

    return await save_or_again(
        request, g, session, PAGE, register_one, form=form, fields=TYPED_FIELDS, again=page
    )


@router.post("/returnees/{pid}/correct", name="returnee_correct", include_in_schema=False)
async def correct(pid: RecordId, request: Request, session: AdminSession, g: GuardDep) -> Response:
    """The manager puts a mistyped registration right (``ObservationLedger.correct``), as
    the page showed it (``seen``): one corrected since comes back as typed, with what the
    record is now in the problem and in its row, and the form carrying its version now."""
    form = await request.form()
    ledger = ledgers(g).observation
    note(request, person=pid, change="correct")

    def correct_one() -> object:
        return ledger.correct(
            pid,
            name=form_text(form, "name"),
            household=form_text(form, "household"),
            date_back=form_text(form, "date_back"),
            until=form_text(form, "until"),
            actor=session.name,
            seen=form_text(form, "seen")[:32] or None,  # the record as the page showed it
        )

    def again(request: Request, g: Guard, session: Session, refused: Refused) -> HTMLResponse:
        try:
            now = ledger.person(pid)
        except CommunityError:  # gone meanwhile (forgotten): the form as typed
            return _drawn(request, g, session, refused, correcting=pid)
        seen = form_text(form, "seen")[:32]
        if seen in ("", now.version()):  # refused for what it says, not as stale
            return _drawn(request, g, session, refused, correcting=pid)
        merged = merged_onto(now, refused.typed)
        redrawn = Refused(merged.fields, refused.error)
        return _drawn(request, g, session, redrawn, correcting=pid, merged=merged)

    fields = CORRECTED_FIELDS + SHOWN_FIELDS
    return await save_or_again(
        request, g, session, PAGE, correct_one, form=form, fields=fields, again=again
    )


@router.post("/returnees/{pid}/{what}", name="returnee_change", include_in_schema=False)
@once_per_form  # a reading (its form has the token): one; an ack or a status repeats the same
async def change_returnee(
    pid: RecordId, what: str, request: Request, session: ActionSession, g: GuardDep
) -> Response:
    form = await request.form()
    ledger, who = ledgers(g).observation, session.name
    changes: dict[str, Callable[[], object]] = {
        "temperature": lambda: ledger.record_temperature(pid, form_float(form, "temp_c"), who),
        "ack": lambda: ledger.acknowledge(
            pid, form_text(form, "day"), form_text(form, "kind"), who
        ),
        "status": lambda: ledger.set_status(  # as the page showed it: ``was``
            pid, form_text(form, "status"), who, was=form_text(form, "was")[:20] or None
        ),
    }
    if what not in changes:
        raise BadInput("err.bad_link")  # a link edited by hand: back to the page, in words
    note(request, person=pid, change=what)
    if what == "status":
        admin(g, session)  # clearing, escalating: the manager's decision
    act = functools.partial(save, request, PAGE, changes[what])
    # Refused: said on the page, never in its address (the refusal names the person).
    return await or_again(request, g, session, act, typed={}, again=page)
