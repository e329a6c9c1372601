"""The community overview (``/guard/community``: who is on duty, open alarms, returnees due
for clearing, open requests), the plate check at a vehicle registration, and the compound map
with each household's page (passages, people, requests). A household is addressed by its row
on the map, never by its code in a URL."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from kiosk.community import CommunityError
from kiosk.compound import STATUSES, statuses
from kiosk.policy import quota_used
from ui import i18n
from ui.guard.community.common import (
    PREFIX,
    community_room,
    form_text,
    ledgers,
    masked,
    on_duty,
    open_alarms,
    render,
)
from ui.guard.deps import ActionSession, Guard, GuardDep, PageSession, served_while_stopping
from ui.guard.display import event_time

router = community_room(PREFIX)


def marks(g: Guard) -> dict[str, tuple[str, ...]]:
    """Household → its statuses today (quarantined, observing, quota used, open request);
    quota used is the gate's rule on the gate's passage history, asked now."""
    used = quota_used(g.cfg.policy.quota, g.core.history, g.core.clock.now(), tz=g.tz)
    return statuses(g.core.store.reader(), g.today(), g.core.lists.current, used)


def legend(g: Guard) -> list[str]:
    """The statuses the map can show: no quota mark while the quota is off."""
    return [s for s in STATUSES if s != "quota_used" or g.cfg.policy.quota.enabled]


@router.get("", response_class=HTMLResponse, include_in_schema=False)
def overview(request: Request, session: PageSession, g: GuardDep) -> Response:
    led, open_now = ledgers(g), open_alarms(g)
    return render(
        g,
        request,
        "community_overview.html",
        session,
        **on_duty(g),
        open=open_now,
        alarms=[a.to_dict() | {"household": None} for a in open_now.returnee],
        due=len(led.observation.due_for_clearing(g.today())),
        open_requests=len(led.services.requests(open_only=True)),
    )


@router.post("/plate", include_in_schema=False)
@served_while_stopping
async def plate(request: Request, session: ActionSession, g: GuardDep) -> Response:
    """At a vehicle registration (the form's plate check): is the plate on the resident list?
    ``{"listed", "known", "household"}``, the household masked for the viewer's role; 400 for
    text that cannot be a plate. A POST, so the plate never appears in a URL or an access log."""
    form = await request.form()
    vehicles = ledgers(g).vehicles
    if not await asyncio.to_thread(vehicles.listed):  # no list: no plate can be judged
        return JSONResponse({"listed": False, "known": False, "household": None})
    try:
        household = await asyncio.to_thread(vehicles.check, form_text(form, "plate")[:20])
    except CommunityError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    if household is not None:
        household = masked(g, session, {"household": household})["household"]
    return JSONResponse(
        {"listed": True, "known": household is not None, "household": household},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/map", response_class=HTMLResponse, include_in_schema=False)
def compound_map(request: Request, session: PageSession, g: GuardDep) -> Response:
    led = ledgers(g)
    ids = led.compound.row_ids()
    grid = led.compound.grid(marks(g))
    for building in grid:
        for unit in building["units"]:
            for floor in unit["floors"]:
                for h in floor["households"]:
                    h["row"] = ids[h["household"]]
                    h["label"] = masked(g, session, {"household": h["household"]})["household"]
    return render(
        g, request, "community_map.html", session, grid=grid, day=g.today(), legend=legend(g)
    )


@router.get("/household/{row}", response_class=HTMLResponse, include_in_schema=False)
def household(row: int, request: Request, session: PageSession, g: GuardDep) -> Response:
    led = ledgers(g)
    code = led.compound.household_at(row)
    if code is None:
        return render(g, request, "community_household.html", session, found=False, status_code=404)
    return render(
        g,
        request,
        "community_household.html",
        session,
        found=True,
        row=row,
        label=masked(g, session, {"household": code})["household"],
        statuses=marks(g).get(code, ()),
        passages=passages_shown(g, led.compound.passages(code), g.lang(request)),
        people=[masked(g, session, p.to_dict()) for p in led.observation.people(household=code)],
        requests=[masked(g, session, q.to_dict()) for q in led.services.requests(household=code)],
    )


def passages_shown(g: Guard, rows: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """A household's passages with ``when``: as the feed says it (``display.event_time``:
    one stamped before NTP set the clock at the time it happened, also before the boot's
    next passage dated it; one of a boot never synchronised as stamped, saying so)."""
    stamped = [
        {
            "seq": r["seq"],
            "ts": r["stamped"],
            "boot_id": r["boot_id"],
            "mono_ns": r["mono_ns"],
            "clock_synced": bool(r["clock_synced"]),
        }
        for r in rows
    ]
    dated = g.dated(stamped)
    return [
        r
        | {
            "when": event_time(d, lang, g.tz, "%Y-%m-%d %H:%M:%S"),
            "direction_text": i18n.t(lang, f"dir.{r['direction']}")
            if r["direction"] in ("in", "out")
            else "",
            "decision_text": decision_words(lang, str(r["decision"] or "")),
        }
        for r, d in zip(rows, dated, strict=True)
    ]


def decision_words(lang: str, decision: str) -> str:
    """A decision as the live feed says it: its sign and its word in ``lang``."""
    if decision not in ("pass", "deny", "manual_pass", "manual_deny"):
        return decision
    sign = "✔" if decision in ("pass", "manual_pass") else "✖"
    return f"{sign} {i18n.t(lang, f'decision.{decision}')}"
