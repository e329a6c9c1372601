"""Device health in words (``/guard/health``, ``/guard/api/health``)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from kiosk import queries
from ui.guard.deps import ApiSession, GuardDep, PageSession, room
from ui.guard.display import health_rows
from ui.views import health_report

router = room("/guard/health")


@router.get("/health", response_class=HTMLResponse, include_in_schema=False)
def health_page(request: Request, session: PageSession, g: GuardDep) -> Response:
    report = dict(health_report(g.core))
    last = queries.recent_events(g.core.store, 1)
    report["last_event"] = last[0]["ts"] if last else None
    return g.render(
        request,
        "guard_health.html",
        session,
        deciding=report.get("deciding"),
        rows=health_rows(report, g.lang(request), g.tz),
    )


@router.get("/api/health", summary="Device health for the guard console")
def api_health(request: Request, session: ApiSession, g: GuardDep) -> dict[str, Any]:
    report = health_report(g.core)
    return {"deciding": report.get("deciding"), "rows": health_rows(report, g.lang(request), g.tz)}
