"""The guard console: ``/guard`` and everything under it (sign-in required).

One module-level ``APIRouter`` per concern; each route is a small function that gets the
console's state (``deps.Guard`` on ``app.state.guard``) and the signed-in guard through
FastAPI dependencies:

* ``session``        sign-in and sign-out (``/guard/login``, ``/guard/logout``)
* ``live``           live feed, alarms and the kiosk's state (``/guard``, ``/guard/api/feed``,
  ``/guard/events`` SSE), acknowledging alarms, manual pass/deny
* ``registrations``  people without a pass and vehicles (``/guard/register``)
* ``passes``         issuing passes and their printable cards (``/guard/passes``)
* ``lists``          quarantine, revocations, households (``/guard/lists``)
* ``stats``          the daily statistics and CSV export (``/guard/stats``, ``/guard/export.csv``)
* ``calibration``    clinical reference readings (``/guard/calibration``)
* ``devices``        device health (``/guard/health``, ``/guard/api/health``)
* ``community``      the pages around the gate (``/guard/community``: map, returnees,
  household services, roster and handover, the daily report, imports, and a resident's
  request to see or forget their data, the admin's), one router each

Shared: ``deps`` (state, dependencies, rendering, the audit route class), ``forms`` (bounded
form parsing, ``BadInput``), ``display`` (feed rows, alarm cards, charts, CSV, cards). The
alarm model is the core's (``kiosk.alarms``), and so is every query (``kiosk.queries``).

Pages redirect to ``/guard/login`` without a session; JSON and streams answer 401; actions
(POST) answer 401 without a session and 403 cross-site or without the CSRF token, and every
one of them is audited by the routers' route class (``deps.audited_route``).
Personal data is masked with ``kiosk.privacy`` unless the guard's role allows it: admins see
everything; guards see names, units and plates (they have to recognise people) but not phone
or ID numbers. With ``web.mask_personal = false`` nothing is masked.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from ui.auth import GuardAuth
from ui.guard import (
    calibration,
    community,
    devices,
    lists,
    live,
    passes,
    registrations,
    session,
    stats,
)
from ui.guard.deps import Guard

if TYPE_CHECKING:
    from kiosk.core import Core

#: The smallest console answer sent compressed (``GuardGzip``): a page or JSON under it goes
#: as it is (not worth the Pi's CPU).
GZIP_MIN_BYTES = 4096
#: zlib's level for it: most of level 9's gain for a fraction of its CPU on a Pi.
GZIP_LEVEL = 5

#: Every router of the console, in the order they are mounted.
ROUTERS: tuple[APIRouter, ...] = (
    session.router,
    live.router,
    registrations.router,
    passes.router,
    lists.router,
    stats.router,
    calibration.router,
    devices.router,
    *community.ROUTERS,
)


def install(app: FastAPI, core: Core, auth: GuardAuth | None = None) -> Guard:
    """Mount the console on ``app`` with its state for ``core`` (and ``auth``, else sign-in
    against ``core.accounts``); returns that state."""
    state = Guard.build(core, auth)
    app.state.guard = state
    # The alarm desk hears the bus wherever the console is built and served (``Guard.hear``):
    # built on a running loop (the daemon, a bench), at once; else at the first call into the
    # app, its lifespan or a request, whoever serves it and however (lifespan off, replaced).
    app.add_middleware(DeskHears, guard=state)
    app.add_middleware(GuardGzip)
    app.router.on_shutdown.append(state.stop_hearing)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # built off a loop: its first call starts it
        pass
    else:
        state.hear()
    app.state.community_imports = community.Pending()
    for router in ROUTERS:
        app.include_router(router)
    return state


class DeskHears:
    """Every call into the app (its lifespan, each request) makes sure the alarm desk hears
    the bus on the loop serving it (``Guard.hear``: nothing once it does)."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app, self.guard = app, guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.guard.hear(starting=scope["type"] == "lifespan")
        await self.app(scope, receive, send)


class GuardGzip:
    """The console's answers (``/guard``) over ``GZIP_MIN_BYTES`` compressed for a browser
    that accepts gzip (starlette's ``GZipMiddleware``): a live page is mostly repeated markup.
    Never a stream: the live stream (``text/event-stream``) and anything a stream or an image
    already is are sent as they are, unbuffered. The kiosk screen and the office API as
    before."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(
            app,
            minimum_size=GZIP_MIN_BYTES,
            compresslevel=GZIP_LEVEL,
            exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, "multipart/x-mixed-replace"),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        guard = scope["type"] == "http" and str(scope.get("path", "")).startswith("/guard")
        await (self.gzip if guard else self.app)(scope, receive, send)
