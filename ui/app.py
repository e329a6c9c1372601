"""The FastAPI app factory. Routes translate HTTP to core calls; no business rule lives here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.requests import ClientDisconnect

import kiosk
from kiosk.store import LogClosing, ReadFailure, RefusedForNow, error_name, is_damaged_read
from ui import api, i18n
from ui.views import unreadable_words

if TYPE_CHECKING:
    from kiosk.core import Core

#: ``/api/v1/health``'s answers besides its 200 (deciding), for the schema: the same report.
HEALTH_RESPONSES: dict[int | str, dict[str, object]] = {
    503: {
        "description": "The kiosk is not deciding (starting, standing by, stopping, or a"
        " device it cannot decide without is faulty): the same report, `deciding` false",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


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

    @app.exception_handler(ReadFailure)
    async def storage_unreadable(request: Request, exc: ReadFailure) -> Response:
        """A read the card failed (a damaged page of kiosk.db: ``SQLITE_CORRUPT``, an I/O
        error) is a 503 saying so and what to do, never a bare 500; the store's health turns
        degraded naming it. Any other error the database refused a read with (locked past the
        busy timeout, a lock protocol error, out of memory: not the card's) is a 503 with
        ``Retry-After`` too, said in the journal once a minute (``api.read_refused``), the
        store's health left as it is: before, a 500 with a traceback per request. Any other
        ``DatabaseError`` (a constraint, wrong bindings: a bug, not the database refusing for
        now) is the server's error, logged whole, as ever."""
        if not is_damaged_read(exc) and not isinstance(exc, RefusedForNow):
            raise exc
        if not is_damaged_read(exc):
            why = f"{error_name(exc)}: {str(exc)[:200]}"
            return api.read_refused(request, "read refused by the database", why)
        core.store.note_read_fault(exc)
        file = core.store.path.name
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": unreadable_words("en", exc, file)}, status_code=503)
        both = "\n".join(unreadable_words(lang, exc, file) for lang in i18n.LANGS)
        return PlainTextResponse(both + "\n", status_code=503)

    @app.exception_handler(LogClosing)
    async def log_closing(request: Request, exc: LogClosing) -> Response:
        """A read refused because the event log is closing (the daemon's stop; a request the
        web server had not ended): 503 with ``Retry-After``, the console's "the checkpoint is
        stopping" (a page or JSON), the API's JSON; never a 500 with a traceback."""
        from ui.guard.deps import STOPPING_RETRY_AFTER_S, stopping

        if request.url.path.startswith("/guard"):
            return stopping(request)
        headers = {"Retry-After": str(STOPPING_RETRY_AFTER_S)}
        return JSONResponse({"detail": "the checkpoint is stopping"}, 503, headers=headers)

    from ui import guard, kiosk_screen

    @app.get("/api/v1/health", tags=["health"], responses=HEALTH_RESPONSES)
    def health(whole: bool = Depends(api.health_detail)) -> JSONResponse:
        """Status of every device, the store and the clock; 200 while deciding, 503 when not.
        The compound's other gates, the office and the tokens are this host's and the
        office token's alone (``api.PUBLIC_HEALTH``)."""
        report = core.health()
        status = 200 if report["deciding"] else 503
        return JSONResponse(api.health_view(report, whole), status_code=status)

    # A monitor's or a load balancer's HEAD: GET's status and headers, no body (the server
    # sends none to a HEAD); not in the schema (the GET is).
    app.add_api_route("/api/v1/health", health, methods=["HEAD"], include_in_schema=False)

    kiosk_screen.install(app, core)
    guard.install(app, core)
    api.install(app, core, held=app.state.guard.held)  # one memory of rows, said at stop
    return app
