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

Only the kiosk's own screen may use these routes (``ScreenAccess``): a browser on this host
(``web.screen_addresses``, loopback by default) or one holding the ``screen_key`` credential
(header ``X-Kiosk-Screen`` or the cookie ``POST /kiosk/pair`` sets). Anyone else on the LAN
gets 403: the live result, the preview (camera frames carry residents' pass codes) and the
direction buttons never leave the kiosk. ``/static`` stays public (no data in it).

Routes read the real core (``checkpoint.app.Core``): the bus's last state, ``core.health()``,
``core.lists.current.freshness``, ``core.runner.select_direction``, ``core.devices.readers``.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from kiosk.privacy import mask_name
from kiosk.secrets import get_secret
from ui import i18n
from ui.auth import same_origin

if TYPE_CHECKING:
    from kiosk.core import Core

HERE = Path(__file__).parent
STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: No inline scripts anywhere; inline ``style=""`` attributes only. Frames are refused so a
#: guard page cannot be clickjacked.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)


def secure_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


HEARTBEAT_S = 15.0
#: How often an SSE stream asks whether its client is gone (the response notices it too).
DISCONNECT_CHECK_S = 1.0
PREVIEW_MAX_FPS = 4.0
PREVIEW_JPEG_QUALITY = 70
PREVIEW_MAX_WIDTH = 480
#: A frame older than this is not shown: the camera has stopped delivering.
PREVIEW_STALE_S = 3.0

#: Phases in which the person is at the gate (the preview is on).
ACTIVE_PHASES = frozenset({"scan", "measure", "hold", "checking", "decided"})

#: Engine states (``kiosk.engine.State``) mapped to the screen's phases.
_PHASE_OF = {
    "idle": "idle",
    "awaiting_code": "scan",
    "code_read": "measure",
    "measuring": "hold",
    "deciding": "checking",
    "decided": "decided",
    "gate_open": "decided",
}


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.globals["asset_v"] = _asset_version()
    return t


def _asset_version() -> str:
    static = HERE / "static"
    stamps = [int(p.stat().st_mtime) for p in static.glob("*") if p.is_file()]
    return str(max(stamps, default=0))


def lang_of(request: Request, default: str) -> i18n.Lang:
    return i18n.pick_lang(request.query_params.get("lang"), default)


# --- reading the core ------------------------------------------------------------------------


def current_state(core: Core) -> dict:
    """The current screen state message: the bus's last ``state`` (the engine publishes one
    at every change), or the engine's snapshot before it has published any."""
    return core.bus.last("state") or core.runner.engine.snapshot()


def someone_there(core: Core) -> bool:
    """Whether a passage is under way: from the code or presence to the end of the result."""
    return _PHASE_OF.get(str(current_state(core).get("state")), "idle") in ACTIVE_PHASES


def health_report(core: Core) -> dict:
    try:
        return core.health()
    except Exception:  # noqa: BLE001 - a failing health probe is itself a fault to show
        return {
            "deciding": False,
            "devices": {"store": {"state": "fault", "detail": "health failed"}},
        }


class BusFeed:
    """One screen's subscription to ``core.bus``, made at construction (so nothing published
    before the first read is lost). Iteration ends when the bus drops a slow subscriber (the
    browser then reconnects); ``aclose()`` unsubscribes."""

    def __init__(self, core: Core) -> None:
        self._sub = core.bus.subscribe()

    def __aiter__(self) -> BusFeed:
        return self

    async def __anext__(self) -> dict:
        message = await self._sub.get()
        if message is None or message.get("type") == "dropped":
            raise StopAsyncIteration
        return message

    def ready(self) -> list[dict]:
        """The messages already queued, taken without waiting (up to the ``dropped`` one, which
        ends the feed and is not returned). Lets a stream write a burst in one go."""
        out: list[dict] = []
        while (message := self._sub.get_nowait()) is not None:
            if message.get("type") == "dropped":
                break
            out.append(message)
        return out

    async def aclose(self) -> None:
        self._sub.close()


def bus_messages(core: Core) -> BusFeed:
    return BusFeed(core)


# --- views ----------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None


class ScreenTracker:
    """Follows the bus for one screen: the state message says *where* the passage is, the
    decision message (published just before the ``decided``/``gate_open`` state) says *what*
    was decided. The decision is kept until the next passage starts."""

    def __init__(self, state: dict | None = None) -> None:
        self.state: dict = dict(state or {})
        self.decision: dict | None = None

    def feed(self, message: dict) -> bool:
        """Take one bus message; True when the screen's view changes."""
        kind = message.get("type")
        if kind == "decision":
            self.decision = message
            return True
        if kind == "state":
            self.state = message
            if message.get("state") not in ("deciding", "decided", "gate_open"):
                self.decision = None
            return True
        return False


def kiosk_view(
    state: dict,
    decision: dict | None,
    lang: str,
    *,
    fever_c: float | None = None,
    gate_open_s: float | None = None,
) -> dict:
    """What the kiosk screen shows for a screen state and the decision being shown.

    Only whitelisted, non-personal fields leave here: the holder is at most an initial."""
    raw = str(state.get("state") or "idle")
    phase = _PHASE_OF.get(raw, "idle")
    prompt_key = str(state.get("prompt") or "")
    if decision is not None and phase in ("idle", "checking"):
        phase = "decided"
    if phase == "decided" and decision is None:
        phase = "checking" if raw == "deciding" else "idle"
    if prompt_key == "out_of_order":
        phase = "out_of_order"

    view: dict[str, Any] = {
        "phase": phase,
        "lang": lang,
        "result": None,
        "temp": None,
        "temp_fever": False,
        "hello": None,
        "direction": None,
        "direction_code": None,
        "gate_closes_in_s": None,
        "sound": None,
        "speak": None,
        "preview": phase in ACTIVE_PHASES,
        "degraded": bool(state.get("degraded")),
        "result_id": None,
    }
    temp = None
    if decision is not None:
        temp = _num(decision.get("temp_c"))
    if temp is None and isinstance(state.get("temperature"), dict):
        temp = _num(state["temperature"].get("body_c"))
    if temp is not None:
        view["temp"] = f"{temp:.1f} °C"
        view["temp_fever"] = fever_c is not None and temp >= fever_c
    direction = (decision or {}).get("direction") or state.get("direction")
    if direction in ("in", "out"):
        view["direction"] = i18n.t(lang, f"kiosk.dir.{direction}")
        view["direction_code"] = direction

    verdict = (decision or {}).get("decision")
    if phase == "decided" and verdict in ("pass", "deny", "manual_pass", "manual_deny"):
        ok = verdict in ("pass", "manual_pass")
        codes = [str(c) for c in (decision or {}).get("reasons") or []]
        reasons = [i18n.reason_text(lang, c) for c in codes if c not in ("ok", "guard_override")]
        nexts = [n for c in codes if (n := i18n.reason_next(lang, c))]
        needs_guard = bool((decision or {}).get("needs_guard") or (decision or {}).get("alarm"))
        if ok:
            next_step = None
        elif nexts:
            next_step = nexts[0]
        else:
            next_step = i18n.t(lang, "prompt.see_guard" if needs_guard else "prompt.stop")
        view["result"] = {
            "kind": "pass" if ok else "deny",
            "word": i18n.t(lang, f"result.{verdict}"),
            "icon": "✔" if ok else "✖",
            "reasons": reasons,
            "next": next_step,
        }
        view["prompt"] = i18n.t(lang, "prompt.pass" if ok else "prompt.stop")
        initial = (decision or {}).get("holder_initial")
        if ok and initial:
            view["hello"] = i18n.t(lang, "kiosk.hello", initial=mask_name(str(initial)))
        view["sound"] = "pass" if ok else "deny"
        # One sound and one spoken line per decision, however many views show it.
        view["result_id"] = str((decision or {}).get("seq") or (decision or {}).get("passage"))
        spoken = [view["result"]["word"], *reasons[:1]]
        if next_step:
            spoken.append(next_step)
        view["speak"] = ("，" if lang == "zh-CN" else ". ").join(spoken)
        if ok and gate_open_s:
            view["gate_closes_in_s"] = int(round(gate_open_s))
    else:
        key = f"prompt.{prompt_key}"
        if i18n.has(key):
            view["prompt"] = i18n.t(lang, key)
        else:
            view["prompt"] = i18n.t(lang, "prompt.show_pass")
        if phase in ("scan", "measure"):
            view["speak"] = view["prompt"]
    return view


def faults_of(report: dict) -> dict[str, str]:
    """``{device: state}`` for every device not ``ok``, from the engine's health message
    (``faults``: device -> detail, all in fault) or a ``core.health()`` report (``devices``:
    key -> ``{"state", "detail"}``). The readers count as one device, ``reader``."""
    out = {str(device): "fault" for device in report.get("faults") or {}}
    for key, entry in device_entries(report):
        state = entry.get("state")
        if state in ("fault", "absent", "degraded"):
            out.setdefault("reader" if key.startswith("reader:") else key, state)
    return out


#: Devices of a health report in display order (``reader:NAME`` entries are ``reader``).
DEVICE_ORDER = ("thermometer", "reader", "gate", "store")


def device_entries(report: dict) -> list[tuple[str, dict]]:
    """``(key, {"state", "detail"})`` for every device of a ``core.health()`` report."""
    devices = report.get("devices") or {}

    def order(key: str) -> tuple[int, str]:
        base = key.split(":", 1)[0]
        return (DEVICE_ORDER.index(base) if base in DEVICE_ORDER else len(DEVICE_ORDER), key)

    return [(key, devices[key]) for key in sorted(devices, key=order)]


def device_label(lang: str, device: str) -> str:
    if device.startswith("reader:"):
        return f"{i18n.t(lang, 'device.reader')} ({device[7:]})"
    key = f"device.{device}"
    return i18n.t(lang, key) if i18n.has(key) else device


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


def lists_stale_hours(core: Core) -> int | None:
    """Hours since the lists were updated when that is past ``policy.lists_stale_after_h``
    (-1: never updated, which counts as stale); None while they are fresh."""
    fresh = core.lists.current.freshness
    now = core.clock.now()
    if not fresh.is_stale(now, core.config.policy.lists_stale_after_h):
        return None
    age = fresh.age(now)
    return -1 if age is None else int(age.total_seconds() // 3600)


def sse(event: str, data: Any) -> str:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n"


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


#: ``?lang=``: one of the screen's languages (anything else falls back to the site's).
LANG_Q = Query(None, max_length=16, description="Screen language: zh-CN or en.")

SCREEN_COOKIE = "kiosk_screen"
SCREEN_HEADER = "X-Kiosk-Screen"
#: ``{"direction": "out"}`` and a little room; anything bigger is not from the screen's page.
DIRECTION_MAX_BYTES = 256
PAIR_MAX_BYTES = 1024


class ScreenAccess:
    """Who counts as this kiosk's own screen: a client address in ``addresses`` (loopback by
    default), or a request carrying ``key`` (the ``screen_key`` credential) as the
    ``X-Kiosk-Screen`` header or the ``kiosk_screen`` cookie. Compared in constant time."""

    def __init__(self, addresses: tuple[str, ...], key: str | None) -> None:
        self.networks = [ipaddress.ip_network(a, strict=False) for a in addresses]
        self.key = key if key and len(key) >= 16 else None

    def local(self, request: Request) -> bool:
        host = request.client.host if request.client else ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def key_matches(self, presented: str | None) -> bool:
        if self.key is None or not presented:
            return False
        return hmac.compare_digest(presented.encode()[:256], self.key.encode())

    def allows(self, request: Request) -> bool:
        if self.local(request):
            return True
        presented = request.headers.get(SCREEN_HEADER) or request.cookies.get(SCREEN_COOKIE)
        return self.key_matches(presented)

    def require(self, request: Request) -> None:
        """FastAPI dependency: 403 for anyone but the kiosk's own screen."""
        if not self.allows(request):
            raise HTTPException(403, "this is the kiosk's own screen; not served to others")


def _json_body(properties: dict[str, Any]) -> dict[str, Any]:
    """The request body a route reads itself (capped), declared for its schema."""
    schema = {"type": "object", "properties": properties}
    return {"requestBody": {"content": {"application/json": {"schema": schema}}}}


async def read_small_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes, from ``Content-Length`` before
    reading or while reading a chunked body."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise HTTPException(413, "request body too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, "request body too large")
    return bytes(body)


def router(core: Core) -> APIRouter:
    r = APIRouter(tags=["kiosk screen"])
    tpl = templates()
    cfg = core.config
    access = ScreenAccess(cfg.web.screen_addresses, get_secret("screen_key"))
    screen_only = [Depends(access.require)]
    fever_c = cfg.thermometer.thermometry.fever_threshold_c
    gate_open_s = cfg.gate.pulse_ms / 1000
    # What every kiosk screen of this process shows now (a page loaded mid-result shows it).
    shared = ScreenTracker(current_state(core))
    r.tracker = shared  # type: ignore[attr-defined]  # for tests

    def view_of(tracker: ScreenTracker, lang: str) -> dict:
        return kiosk_view(
            tracker.state, tracker.decision, lang, fever_c=fever_c, gate_open_s=gate_open_s
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

    @r.get(
        "/kiosk", response_class=HTMLResponse, include_in_schema=False, dependencies=screen_only
    )
    def kiosk_page(request: Request, lang: str | None = LANG_Q) -> Response:
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

    @r.post(
        "/kiosk/direction",
        include_in_schema=False,
        dependencies=screen_only,
        openapi_extra=_json_body({"direction": {"type": "string", "enum": ["in", "out"]}}),
    )
    async def choose_direction(request: Request) -> Response:
        """A two-way kiosk's touch buttons: which way the next person goes. Only from the
        kiosk's own screen (``ScreenAccess``), from its own page, and only where the site
        takes the direction from the screen (``site.direction_from``)."""
        if not same_origin(request):
            return JSONResponse({"error": "cross-site request refused"}, status_code=403)
        if cfg.site.direction_from != "screen":
            return JSONResponse(
                {"error": "this kiosk takes the direction from its readers"}, status_code=409
            )
        raw = await read_small_body(request, DIRECTION_MAX_BYTES)
        try:
            body = json.loads(raw)
            direction = str(body.get("direction")) if isinstance(body, dict) else ""
        except ValueError:
            direction = ""
        try:
            core.runner.select_direction(direction)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"direction": direction})

    @r.post(
        "/kiosk/pair",
        include_in_schema=False,
        openapi_extra=_json_body({"key": {"type": "string", "maxLength": 256}}),
    )
    async def pair_screen(request: Request) -> Response:
        """A screen browser on another machine proves the ``screen_key`` credential once
        (``{"key": ...}``) and gets it as an HttpOnly cookie for the kiosk's routes."""
        if not same_origin(request):
            return JSONResponse({"error": "cross-site request refused"}, status_code=403)
        raw = await read_small_body(request, PAIR_MAX_BYTES)
        try:
            body = json.loads(raw)
            presented = body.get("key") if isinstance(body, dict) else None
        except ValueError:
            presented = None
        if not isinstance(presented, str) or not access.key_matches(presented):
            return JSONResponse({"error": "wrong or missing screen key"}, status_code=401)
        response = JSONResponse({"paired": True})
        response.set_cookie(
            SCREEN_COOKIE,
            presented,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/kiosk",
            max_age=400 * 86400,
        )
        return response

    @r.get("/kiosk/events", include_in_schema=False, dependencies=screen_only)
    async def kiosk_events(request: Request, lang: str | None = LANG_Q) -> StreamingResponse:
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

    @r.get("/kiosk/preview.jpg", include_in_schema=False, dependencies=screen_only)
    def preview_jpg() -> Response:
        source = preview_source(core)
        if source is None or not someone_there(core):
            return Response(status_code=204, headers={"Cache-Control": "no-store"})
        jpeg = preview_jpeg(source)
        if jpeg is None:
            return Response(status_code=204, headers={"Cache-Control": "no-store"})
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @r.get("/kiosk/preview.mjpeg", include_in_schema=False, dependencies=screen_only)
    async def preview_mjpeg(
        request: Request, fps: float = Query(2.0, ge=0.5, le=PREVIEW_MAX_FPS)
    ) -> Response:
        source = preview_source(core)
        if source is None or not someone_there(core):
            return Response(status_code=204, headers={"Cache-Control": "no-store"})

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
