"""The unattended kiosk screen: ``/kiosk``, its SSE stream and the camera preview.

The page is server-rendered once; after that ``kiosk.js`` listens to ``/kiosk/events`` (SSE)
and swaps in a *view* per message. Views are built here, in the chosen language, from the
runner's screen state and the bus's decisions, and carry only what the person at the gate may
see: the prompt, the result word and icon, the reasons in plain language, the temperature,
the gate countdown and at most the holder's initial. No names, households or pass ids ever
reach this page (a test checks the stream).

The preview (``/kiosk/preview.jpg`` polled by the page, or ``/kiosk/preview.mjpeg``) shows the
latest frame of the first camera reader (a serial scanner has none). It is served only while
someone is at the gate, that is while the engine is in a passage; when it is idle the preview
answers 204 and the page shows a standby panel, so the camera image is not broadcast to an
empty street.

Routes read the real core (``checkpoint.app.Core``): the bus's last state, ``core.health()``,
``core.lists.current.freshness``, ``core.runner.select_direction``, ``core.devices.readers``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from ui import i18n
from ui.auth import same_origin
from ui.views import (
    ACTIVE_PHASES,
    HEARTBEAT_S,
    ScreenTracker,
    bus_messages,
    current_state,
    device_label,
    faults_of,
    health_report,
    kiosk_view,
    lists_stale_hours,
    secure_headers,
    sse,
    templates,
)
from ui.views import PHASE_OF as _PHASE_OF
from ui.views import BusFeed as BusFeed  # re-exported: the screen's feed
from ui.views import as_number as _num

if TYPE_CHECKING:
    from kiosk.core import Core

HERE = Path(__file__).parent
STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: How often an SSE stream asks whether its client is gone (the response notices it too).
DISCONNECT_CHECK_S = 1.0
PREVIEW_MAX_FPS = 4.0
PREVIEW_JPEG_QUALITY = 70
PREVIEW_MAX_WIDTH = 480
#: A frame older than this is not shown: the camera has stopped delivering.
PREVIEW_STALE_S = 3.0


def lang_of(request: Request, default: str) -> i18n.Lang:
    return i18n.pick_lang(request.query_params.get("lang"), default)


# --- reading the core ------------------------------------------------------------------------


def someone_there(core: Core) -> bool:
    """Whether a passage is under way: from the code or presence to the end of the result."""
    return _PHASE_OF.get(str(current_state(core).get("state")), "idle") in ACTIVE_PHASES


# --- views ----------------------------------------------------------------------------------


def banner_view(report: dict, lang: str, *, lists_stale_h: int | None = None) -> list[str]:
    """Discreet notices for the kiosk: not deciding, device faults, clock, stale lists."""
    notes: list[str] = []
    if report.get("deciding") is False:
        notes.append(i18n.t(lang, "banner.not_deciding"))
    for device, state in faults_of(report).items():
        if state in ("fault", "absent"):
            notes.append(i18n.t(lang, "banner.device_fault", device=device_label(lang, device)))
    if (report.get("clock") or {}).get("synced") is False:
        notes.append(i18n.t(lang, "banner.clock_unsynced"))
    if lists_stale_h is not None and lists_stale_h < 0:
        notes.append(i18n.t(lang, "banner.lists_never"))
    elif lists_stale_h is not None:
        notes.append(i18n.t(lang, "banner.lists_stale", hours=lists_stale_h))
    return notes


# --- preview ----------------------------------------------------------------------------------


def preview_source(core: Core) -> Callable[[], tuple[Any, int] | None] | None:
    """``latest_frame`` of the first code reader that keeps one (a camera reader:
    ``(frame, mono_ns)`` or None); None when no reader does (serial scanners only)."""
    for reader in core.devices.readers:
        latest = getattr(reader, "latest_frame", None)  # not part of the CodeReader protocol
        if latest is not None:
            return latest
    return None


def fresh_frame(latest: tuple[Any, int] | None, now_ns: int) -> Any:
    """The frame of a ``latest_frame()`` answer, or None when there is none or it is older
    than ``PREVIEW_STALE_S`` (the camera has stopped delivering)."""
    if latest is None:
        return None
    frame, mono_ns = latest
    return frame if (now_ns - mono_ns) / 1e9 <= PREVIEW_STALE_S else None


def encode_preview(frame: Any) -> bytes | None:
    """JPEG bytes of a BGR or grey frame (an ndarray), scaled down; None for no frame."""
    if frame is None:
        return None
    import cv2

    height, width = frame.shape[:2]
    if width > PREVIEW_MAX_WIDTH:
        scale = PREVIEW_MAX_WIDTH / width
        frame = cv2.resize(frame, (PREVIEW_MAX_WIDTH, int(height * scale)), interpolation=3)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_JPEG_QUALITY])
    return buf.tobytes() if ok else None


def router(core: Core) -> APIRouter:
    r = APIRouter(tags=["kiosk screen"])
    tpl = templates()
    cfg = core.config
    fever_c = cfg.thermometer.thermometry.fever_threshold_c
    gate_open_s = cfg.gate.pulse_ms / 1000
    call = cfg.policy.hours.call
    # What every kiosk screen of this process shows now (a page loaded mid-result shows it).
    shared = ScreenTracker(current_state(core))
    r.tracker = shared  # type: ignore[attr-defined]  # for tests

    def view_of(tracker: ScreenTracker, lang: str) -> dict:
        return kiosk_view(
            tracker.state,
            tracker.decision,
            lang,
            fever_c=fever_c,
            gate_open_s=gate_open_s,
            call=call,
        )

    # Every screen of this process sees the same bus messages, so a view or banner is built
    # and encoded once per message and language, not once per connected screen (the daemon's
    # loop runs the gate too). Keys hold the messages themselves, so an id is never reused.
    encoded: dict[tuple[str, int, int, str], tuple[Any, Any, str]] = {}

    def cached(kind: str, key_objs: tuple[Any, Any], lang: str, build: Callable[[], str]) -> str:
        first, second = key_objs
        key = (kind, id(first), id(second), lang)
        hit = encoded.get(key)
        if hit is not None and hit[0] is first and hit[1] is second:
            return hit[2]
        text = build()
        if len(encoded) >= 64:
            encoded.clear()
        encoded[key] = (first, second, text)
        return text

    def view_sse(tracker: ScreenTracker, lang: str) -> str:
        pair = (tracker.state, tracker.decision)
        return cached("view", pair, lang, lambda: sse("view", view_of(tracker, lang)))

    def banner_sse(lang: str, message: dict) -> str:
        return cached(
            "banner", (message, None), lang, lambda: sse("banner", banner_in(lang, message))
        )

    def banner_in(lang: str, message: dict | None = None) -> list[str]:
        report = dict(health_report(core))
        if message:
            report["faults"] = message.get("faults") or {}
            report["deciding"] = message.get("deciding", report.get("deciding"))
        return banner_view(report, lang, lists_stale_h=lists_stale_hours(core))

    def preview_jpeg(source: Callable[[], tuple[Any, int] | None]) -> bytes | None:
        return encode_preview(fresh_frame(source(), core.clock.monotonic_ns()))

    @r.get("/kiosk", response_class=HTMLResponse, include_in_schema=False)
    def kiosk_page(request: Request) -> Response:
        lang = lang_of(request, cfg.site.language)
        response = tpl.TemplateResponse(
            request,
            "kiosk.html",
            {
                "lang": lang,
                "_": i18n.translator(lang),
                "site_name": cfg.site.site_name,
                "timezone": cfg.site.timezone,
                "two_way": cfg.site.direction == "both",
                "direction": core.runner.engine.direction,
                "view": view_of(shared, lang),
                "banner": banner_in(lang),
                "hold_s": cfg.engine.result_hold_s,
                "has_preview": preview_source(core) is not None,
                "other_lang": "en" if lang == "zh-CN" else "zh-CN",
            },
        )
        response.headers["Cache-Control"] = "no-store"
        return secure_headers(response)

    @r.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        """The screens' own CSS and JS (no build step, nothing vendored)."""
        path = HERE / "static" / name
        if (
            "/" in name
            or "\\" in name
            or name.startswith(".")
            or path.suffix not in STATIC_TYPES
            or not path.is_file()
        ):
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(
            path.read_bytes(),
            media_type=STATIC_TYPES[path.suffix],
            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
        )

    @r.post("/kiosk/direction", include_in_schema=False)
    async def choose_direction(request: Request) -> Response:
        """A two-way kiosk's touch buttons: which way the next person goes. No login (the
        screen is public), but only from this host's own page."""
        if not same_origin(request):
            return JSONResponse({"error": "cross-site request refused"}, status_code=403)
        try:
            body = await request.json()
            direction = str(body.get("direction")) if isinstance(body, dict) else ""
        except ValueError:
            direction = ""
        try:
            core.runner.select_direction(direction)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"direction": direction})

    @r.get("/kiosk/events", include_in_schema=False)
    async def kiosk_events(request: Request) -> StreamingResponse:
        lang = lang_of(request, cfg.site.language)

        async def stream() -> AsyncIterator[str]:
            messages = bus_messages(core)  # subscribe first: nothing slips in between
            mine = ScreenTracker(shared.state)
            mine.decision = shared.decision
            try:
                yield "retry: 2000\n\n"
                yield sse("view", view_of(mine, lang))
                yield sse("banner", banner_in(lang))
                checked = time.monotonic()
                while True:
                    # The response also ends the stream on a disconnect by itself; this check
                    # costs a cancelled receive, so it runs at most once a second.
                    now = time.monotonic()
                    if now - checked >= DISCONNECT_CHECK_S:
                        checked = now
                        if await request.is_disconnected():
                            break
                    try:
                        message = await asyncio.wait_for(anext(messages), HEARTBEAT_S)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    except StopAsyncIteration:
                        break
                    # A burst (state, decision, state) goes out as one write.
                    out = []
                    for item in (message, *messages.ready()):
                        if mine.feed(item):
                            shared.feed(item)
                            out.append(view_sse(mine, lang))
                        elif item.get("type") == "health":
                            out.append(banner_sse(lang, item))
                    if out:
                        yield "".join(out)
            finally:
                await messages.aclose()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @r.get("/kiosk/preview.jpg", include_in_schema=False)
    def preview_jpg() -> Response:
        source = preview_source(core)
        if source is None or not someone_there(core):
            return Response(status_code=204, headers={"Cache-Control": "no-store"})
        jpeg = preview_jpeg(source)
        if jpeg is None:
            return Response(status_code=204, headers={"Cache-Control": "no-store"})
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @r.get("/kiosk/preview.mjpeg", include_in_schema=False)
    async def preview_mjpeg(request: Request) -> Response:
        source = preview_source(core)
        if source is None or not someone_there(core):
            return Response(status_code=204, headers={"Cache-Control": "no-store"})
        fps = min(PREVIEW_MAX_FPS, max(0.5, _num(request.query_params.get("fps")) or 2.0))

        async def frames() -> AsyncIterator[bytes]:
            # Ends by itself when the person leaves: nobody there, no picture.
            while someone_there(core) and not await request.is_disconnected():
                started = time.monotonic()
                jpeg = await asyncio.to_thread(preview_jpeg, source)
                if jpeg:
                    yield (
                        b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                        + str(len(jpeg)).encode()
                        + b"\r\n\r\n"
                        + jpeg
                        + b"\r\n"
                    )
                await asyncio.sleep(max(0.0, 1 / fps - (time.monotonic() - started)))

        return StreamingResponse(
            frames(),
            media_type="multipart/x-mixed-replace; boundary=frame",
            headers={"Cache-Control": "no-store"},
        )

    return r
