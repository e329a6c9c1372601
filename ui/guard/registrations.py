"""Registering people without a pass and vehicles (``/guard/register``): each one a manual
decision through the engine, so the rules on it (no pass with a fever) are the engine's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from kiosk import queries
from ui.auth import Session
from ui.guard.deps import Guard, action_session, audited_route, done, guard, note, page_session
from ui.guard.display import feed_row
from ui.guard.forms import BadInput, choice, clean, direction_of, directions, number, whole

router = APIRouter(
    prefix="/guard", tags=["guard console"], route_class=audited_route("/guard/register")
)

REGISTRATION_KINDS = ("registration", "vehicle")


@router.get("/register", response_class=HTMLResponse, include_in_schema=False)
def register_page(
    request: Request, session: Session = Depends(page_session), g: Guard = Depends(guard)
) -> Response:
    lang = g.lang(request)
    clear = g.clear(session)
    since = (g.core.clock.now() - timedelta(hours=24)).isoformat()[:19]
    events = queries.events_of_kinds_since(g.core.store, REGISTRATION_KINDS, since, 50)
    return g.render(
        request,
        "guard_register.html",
        session,
        rows=[feed_row(e, lang, g.tz, clear, g.fever_c) for e in events],
        fever_c=g.fever_c,
        directions=directions(g.cfg.site.direction),
        default_direction=g.cfg.site.default_direction,
        **g.flash(request),
    )


def register(
    request: Request,
    g: Guard,
    session: Session,
    form: Any,
    kind: str,
    person: dict[str, Any],
    temp_c: float | None = None,
) -> Response:
    """Enter a registration through the engine, which checks the reading (plausible, and no
    pass with a fever) and commits it like any other decision."""
    direction = direction_of(form, g.cfg.site.default_direction)
    decision = choice(form.get("decision"), "reg.decision", ("pass", "deny"), "pass")
    note(request, direction=direction, decision=decision)
    g.manual(
        decision=decision,
        operator=session.name,
        reason=person["note"],
        direction=direction,
        person={k: v for k, v in person.items() if v is not None},
        kind=kind,
        temp_c=temp_c,
    )
    return done(request, "/guard/register")


@router.post("/register/person", name="register_person", include_in_schema=False)
async def register_person(
    request: Request, session: Session = Depends(action_session), g: Guard = Depends(guard)
) -> Response:
    form = await request.form()
    person = {
        "name": clean(form.get("name"), "reg.name", required=True, max_len=60),
        "phone": clean(form.get("phone"), "reg.phone", required=True, max_len=20),
        "id_number": clean(form.get("id_number"), "reg.id_number", max_len=32) or None,
        "unit": clean(form.get("unit"), "reg.unit", required=True, max_len=40),
        "note": clean(form.get("reason"), "reg.reason", required=True),
    }
    if not any(ch.isdigit() for ch in str(person["phone"])):
        raise BadInput("err.phone")
    temp_c = number(form.get("temp_c"), "reg.temp", required=True)
    return register(request, g, session, form, "registration", person, temp_c)


@router.post("/register/vehicle", name="register_vehicle", include_in_schema=False)
async def register_vehicle(
    request: Request, session: Session = Depends(action_session), g: Guard = Depends(guard)
) -> Response:
    form = await request.form()
    person = {
        "plate": clean(form.get("plate"), "reg.plate", required=True, max_len=16).upper(),
        "driver": clean(form.get("driver"), "reg.driver", required=True, max_len=60),
        "occupants": whole(form.get("occupants"), "reg.occupants", 0, 60, 0),
        "note": clean(form.get("reason"), "reg.reason", required=True),
    }
    return register(request, g, session, form, "vehicle", person)
