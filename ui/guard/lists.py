"""The quarantine, revocation and household lists (``/guard/lists``): edits go through
``core.lists`` with the guard as actor (the list store audits each change itself)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from kiosk import queries
from ui import i18n
from ui.auth import Session
from ui.guard.deps import Guard, action_session, audited_route, done, guard, note, page_session
from ui.guard.display import lists_view, local_time
from ui.guard.forms import BadInput, list_edit
from ui.views import lists_stale_hours

router = APIRouter(
    prefix="/guard", tags=["guard console"], route_class=audited_route("/guard/lists")
)


@router.get("/lists", response_class=HTMLResponse, include_in_schema=False)
def lists_page(
    request: Request, session: Session = Depends(page_session), g: Guard = Depends(guard)
) -> Response:
    lang = g.lang(request)
    fresh = g.core.lists.current.freshness
    freshness = None
    if fresh.updated_at is not None:
        freshness = i18n.t(
            lang,
            "lists.freshness",
            when=local_time(fresh.updated_at.isoformat(), g.tz, "%Y-%m-%d %H:%M"),
            source=fresh.source,
        )
    return g.render(
        request,
        "guard_lists.html",
        session,
        lists=lists_view(queries.list_rows(g.core.store), g.tz),
        freshness=freshness,
        stale=lists_stale_hours(g.core),
        today=g.today().isoformat(),
        **g.flash(request),
    )


@router.post("/lists/{which}/{op}", name="list_edit", include_in_schema=False)
async def edit_list(
    which: str,
    op: str,
    request: Request,
    session: Session = Depends(action_session),
    g: Guard = Depends(guard),
) -> Response:
    form = await request.form()
    method, kwargs = list_edit(which[:20], op[:10], form, g.today())
    note(request, list=which, op=op)
    try:
        # ListStore writes through the event log's writer and audits with the actor.
        await asyncio.to_thread(method, g.core.lists, actor=session.name, **kwargs)
    except ValueError as exc:  # ListError: the store's own validation, in its words
        raise BadInput(str(exc)[:300]) from None
    return done(request, "/guard/lists")
