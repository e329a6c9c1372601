"""The FastAPI app factory. Routes translate HTTP to core calls; no business rule lives here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

import kiosk

if TYPE_CHECKING:
    from kiosk.core import Core


def create_app(core: Core) -> FastAPI:
    docs = core.config.web.docs_enabled
    app = FastAPI(
        title="Checkpoint kiosk",
        version=kiosk.__version__,
        # No Swagger UI: FastAPI's page loads its scripts from a public CDN. The schema is
        # /openapi.json (web.docs_enabled); read it with any OpenAPI viewer off the kiosk.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        """A client that hung up before its request body was in (anyone can, on any POST)
        is no server error: nothing done, nothing logged, and this answer goes nowhere."""
        return Response("request body incomplete", status_code=400, media_type="text/plain")

    @app.get("/api/v1/health", tags=["health"])
    def health() -> JSONResponse:
        """Status of every device, the store and the clock; 200 while deciding, 503 when not."""
        report = core.health()
        return JSONResponse(report, status_code=200 if report["deciding"] else 503)

    from ui import api, guard, kiosk_screen

    kiosk_screen.install(app, core)
    guard.install(app, core)
    api.install(app, core)
    return app
