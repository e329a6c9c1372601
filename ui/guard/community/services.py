"""Household services (``/guard/community/services``): food, medicine, parcels and rubbish
for a quarantined or observed household, taken by a named helper and marked done."""

from __future__ import annotations

import functools

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from kiosk.compound import marks_of, statuses
from kiosk.services import KINDS
from ui.auth import Session
from ui.guard.community.common import (
    FRESH,
    PREFIX,
    RecordId,
    Refused,
    community_room,
    form_page,
    form_text,
    ledgers,
    masked,
    or_again,
    render,
    save,
    save_or_again,
)
from ui.guard.deps import ActionSession, Guard, GuardDep, known, note
from ui.guard.forms import BadInput

PAGE = f"{PREFIX}/services"
STEPS = ("take", "done", "cancel")
router = community_room(PAGE)


#: The new request's fields, put back as typed after a refusal.
TYPED_FIELDS = ("household", "kind", "note")


@form_page(router, "/services")
def page(request: Request, g: Guard, session: Session, refused: Refused = FRESH) -> HTMLResponse:
    """The requests' page; after a refused request, its form as sent."""
    requests = ledgers(g).services.requests(limit=200)
    # Opened before NTP set the clock: when it was, or what the clock said and that it was.
    opened = g.stamp_times(
        [q.stamps()["opened_at"] for q in requests], g.lang(request), "%Y-%m-%d %H:%M"
    )
    return render(
        g,
        request,
        "community_services.html",
        session,
        requests=[
            masked(g, session, q.to_dict()) | {"opened": when}
            for q, when in zip(requests, opened, strict=True)
        ],
        kinds=KINDS,
        **refused.context(),
    )


@router.post("/services", name="service_open", include_in_schema=False)
async def open_request(request: Request, session: ActionSession, g: GuardDep) -> Response:
    form = await request.form()
    household = form_text(form, "household").strip()[:64]
    marks = statuses(g.core.store.reader(), g.today(), g.core.lists.current)
    confined = bool({"quarantined", "observing"} & set(marks_of(marks, household)))
    kind, text = form_text(form, "kind"), form_text(form, "note")
    note(request, kind=known(kind, KINDS))
    desk = ledgers(g).services

    def open_one() -> object:  # one untaken of a kind (``ServiceDesk.open``): a double tap
        return desk.open(household, kind, session.name, confined=confined, note=text)

    return await save_or_again(
        request, g, session, PAGE, open_one, form=form, fields=TYPED_FIELDS, again=page
    )


@router.post("/services/{rid}/{action}", name="service_step", include_in_schema=False)
async def step(
    rid: RecordId, action: str, request: Request, session: ActionSession, g: GuardDep
) -> Response:
    if action not in STEPS:
        raise BadInput("err.bad_link")  # a link edited by hand: back to the page, in words
    note(request, request_id=rid, step=action)
    desk = ledgers(g).services
    move = {"take": desk.take, "done": desk.done, "cancel": desk.cancel}[action]
    was = form_text(await request.form(), "was")[:20] or None  # as the page showed it
    act = functools.partial(save, request, PAGE, lambda: move(rid, session.name, was))
    return await or_again(request, g, session, act, typed={}, again=page)
