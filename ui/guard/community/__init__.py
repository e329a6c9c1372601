"""The guard console's community pages, under ``/guard/community``: the compound map and its
households (``overview``), returnees (``returnees``), household services (``services``),
roster and handover (``handover``), the daily report in the office's categories (``report``),
list imports (``imports``) and a resident's request to see or forget their data (``people``,
the admin's only).

Like every room of the console, each is a module-level router whose routes get the console's
state (``ui.guard.deps.Guard``; the ledgers are ``core.ledgers``) and the signed-in guard
through FastAPI dependencies, and whose route class (``deps.audited_route``) audits every
state change. Routes only translate HTTP to the ledgers (``kiosk.ledgers``) and back; the
ledgers check every change before writing and describe it for the audit (who, what, from
what to what), and the route class writes that as the request's one row (``kiosk.auditing``).

Personal data is masked by role (``kiosk.community.mask_record``: admins see all, guards see
names, households and plates but no phone numbers; with ``web.mask_personal = false``
nothing is masked) and never put in a URL: a household page is addressed by its row on the
map, a returnee by the ledger id. The imports are the admins' (a guard's page says so); the
report (counts only) can be printed (print stylesheet) and exported as .xlsx and CSV.
"""

from __future__ import annotations

from fastapi import APIRouter

from ui.guard.community import (
    handover,
    imports,
    overview,
    people,
    report,
    returnees,
    services,
)
from ui.guard.community.common import TEXT, Pending

__all__ = ["ROUTERS", "TEXT", "Pending"]

ROUTERS: tuple[APIRouter, ...] = tuple(
    room.router for room in (overview, returnees, services, handover, report, imports, people)
)
