"""Issuing passes at the gate (``/guard/passes``): the signed pass and its printable card."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from kiosk.passes import ROLES, issue_pass
from ui import i18n
from ui.auth import Session
from ui.guard.deps import Guard, action_session, audited_route, guard, note, page_session
from ui.guard.display import card_svg, local_time
from ui.guard.forms import BadInput, bounded, choice, clean

router = APIRouter(
    prefix="/guard", tags=["guard console"], route_class=audited_route("/guard/passes")
)


@router.get("/passes", response_class=HTMLResponse, include_in_schema=False)
def passes_page(
    request: Request, session: Session = Depends(page_session), g: Guard = Depends(guard)
) -> Response:
    return g.render(
        request,
        "guard_passes.html",
        session,
        can_issue=g.core.issuer_key is not None,
        roles=ROLES,
        issued=None,
        **g.flash(request),
    )


@router.post("/passes", name="pass_issued", response_class=HTMLResponse, include_in_schema=False)
async def issue(
    request: Request, session: Session = Depends(action_session), g: Guard = Depends(guard)
) -> Response:
    form = await request.form()
    key = g.core.issuer_key  # None: no issuer key on this kiosk (the secret is not set)
    if key is None:
        raise BadInput("err.no_key")
    household = clean(form.get("household"), "pass.household", required=True, max_len=40)
    holder = clean(form.get("holder"), "pass.holder", required=True, max_len=60)
    role = choice(form.get("role"), "pass.role", ROLES, "visitor")
    days = bounded(form.get("days"), "pass.days", 0.05, 366, required=True)
    try:
        payload, pass_ = issue_pass(
            key,
            household,
            holder,
            role=role,
            days=days or 1,
            now=g.core.clock.now(),
            flags=("gate_issued",),
        )
    except ValueError as exc:  # kiosk.passes says what cannot go on a pass
        raise BadInput(str(exc)) from None
    valid_until = pass_.valid_until.isoformat()
    note(request, pass_id=pass_.pass_id, role=role, valid_until=valid_until)
    lang = g.lang(request)
    return g.render(
        request,
        "guard_passes.html",
        session,
        can_issue=True,
        roles=ROLES,
        issued={
            "card": card_svg(payload, pass_, lang, g.cfg.site.site_name, g.tz),
            "payload": payload,
            "holder": pass_.holder,
            "household": pass_.household,
            "role": pass_.role,
            "pass_id": pass_.pass_id,
            "valid_until": local_time(valid_until, g.tz, "%Y-%m-%d %H:%M"),
        },
        flash_ok=i18n.t(lang, "pass.issued"),
        flash_err=None,
    )
