"""List imports (the manager's, ``/guard/community/imports``): the compound map, the
resident vehicles, and the sub-district's lists, from CSV or .xlsx. A preview shows what would
change and writes nothing; applying it (within ``PENDING_S``, by the same guard) does."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from kiosk.community import CommunityError
from kiosk.compound import ImportPlan
from kiosk.ledgers import Ledgers
from kiosk.listimport import apply_list_import, plan_list_import
from kiosk.lists import ListStore
from kiosk.vehicles import VehiclePlan
from ui.guard.community.common import (
    PREFIX,
    AdminSession,
    Pending,
    Plan,
    change,
    community_room,
    form_text,
    ledgers,
    render,
    save,
)
from ui.guard.deps import GuardDep, PageSession, known, note
from ui.guard.forms import BadInput

PAGE = f"{PREFIX}/imports"
MAX_UPLOAD = 5 * 1024 * 1024
#: The routes whose request body may pass ``web.max_body_bytes``, and by how much at most
#: (``checkpoint.server.BodyLimit``): the preview's file and the few form fields around it.
LARGE_BODIES = {f"{PAGE}/preview": MAX_UPLOAD + 64 * 1024}
LIST_KINDS = ("revocations", "quarantine", "households", "lists")
#: Every kind of import the room plans (``plan_for``).
IMPORT_KINDS = ("compound", "vehicles", *LIST_KINDS)
router = community_room(PAGE)


def pending(request: Request) -> Pending:
    """The previews not applied yet, on the app (``ui.guard.install`` puts them there)."""
    found: Pending = request.app.state.community_imports
    return found


Waiting = Annotated[Pending, Depends(pending)]


def plan_for(led: Ledgers, lists: ListStore, kind: str, data: bytes, filename: str) -> Plan:
    if kind == "compound":
        return led.compound.plan_import(data, filename)
    if kind == "vehicles":
        return led.vehicles.plan_import(data, filename)
    if kind in LIST_KINDS:
        return plan_list_import(data, filename, lists.current, None if kind == "lists" else kind)
    raise CommunityError("list: compound, vehicles, lists or one of the lists")


@router.get("/imports", response_class=HTMLResponse, include_in_schema=False)
def imports(request: Request, session: PageSession, g: GuardDep) -> Response:
    return render(g, request, "community_imports.html", session, plan=None, token=None)


@router.post("/imports/preview", name="import_preview", include_in_schema=False)
async def preview(
    request: Request, session: AdminSession, g: GuardDep, waiting: Waiting
) -> Response:
    form = await request.form()
    upload, kind = form.get("file"), form_text(form, "kind")[:20]
    note(request, kind=known(kind, IMPORT_KINDS))
    if upload is None or isinstance(upload, str):
        data, name = b"", ""
    else:
        data, name = await upload.read(MAX_UPLOAD + 1), (upload.filename or "")[:200]
    if len(data) > MAX_UPLOAD:
        raise BadInput("file is larger than 5 MB")
    try:
        plan = await change(lambda: plan_for(ledgers(g), g.core.lists, kind, data, name))
    except BadInput as refused:  # it quotes the sheet (plates, dwellings): said on the page
        refused.shown = lambda text: render(
            g, request, "community_imports.html", session, plan=None, token=None,
            flash_err=text, status_code=400,
        )  # fmt: skip
        raise
    token = waiting.put(session.name, kind, plan, g.core.clock.monotonic_ns() / 1e9)
    counts = plan.diff.counts()
    return render(
        g, request, "community_imports.html", session, plan=counts, token=token, layout=plan.layout
    )


@router.post("/imports/apply", name="import_apply", include_in_schema=False)
async def apply(
    request: Request, session: AdminSession, g: GuardDep, waiting: Waiting, token: str = Form("")
) -> Response:
    led, lists = ledgers(g), g.core.lists

    def apply_plan() -> None:
        kind, plan = waiting.take(token[:64], session.name, g.core.clock.monotonic_ns() / 1e9)
        note(request, kind=kind)
        if isinstance(plan, ImportPlan):
            led.compound.apply(plan, session.name)
        elif isinstance(plan, VehiclePlan):
            led.vehicles.apply(plan, session.name)
        else:
            apply_list_import(plan, lists, session.name)

    return await save(request, PAGE, apply_plan)
