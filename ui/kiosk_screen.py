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
import functools
import hashlib
import ipaddress
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from kiosk.devices import FrameKeeper
from kiosk.secrets import MIN_SCREEN_KEY_CHARS, screen_key
from kiosk.typed import whole_number
from ui import i18n
from ui.auth import LoginLimiter, client_addr, same_origin, same_secret, set_private_cookie
from ui.views import (
    ACTIVE_PHASES,
    DENY_MIN_HOLD_S,
    LISTS_STAMP_AHEAD,
    TICK_S,
    ClosingStream,
    ScreenTracker,
    bus_messages,
    clock_ms,
    current_state,
    device_label,
    faults_of,
    health_report,
    kiosk_view,
    lists_stale_hours,
    on_duty_now,
    screen_settings,
    secure_headers,
    sse,
    templates,
)
from ui.views import PHASE_OF as _PHASE_OF
from ui.views import BusFeed as BusFeed  # re-exported: the screen's feed

if TYPE_CHECKING:
    from kiosk.bus import Subscription
    from kiosk.clock import Clock
    from kiosk.core import Core

HERE = Path(__file__).parent
STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


#: The longest static file name: a longer one is no file of ours, and the file system would
#: answer it with ENAMETOOLONG (an OSError, not "no such file").
STATIC_NAME_MAX = 128
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


def banner_view(
    report: dict[str, Any],
    lang: str,
    *,
    lists_stale_h: int | None = None,
    on_duty: bool = True,
    call: str = "",
) -> list[str]:
    """Discreet notices for the kiosk: not deciding, device faults, clock, stale lists (where
    to ``call`` instead of the guard while ``on_duty`` is false)."""
    notes: list[str] = []
    if report.get("deciding") is False:
        notes.append(i18n.t_now(lang, "banner.not_deciding", on_duty=on_duty, call=call))
    for device, state in faults_of(report).items():
        if device == "air":  # not a device failing: the winter air (see the guard)
            notes.append(i18n.t_now(lang, "banner.air", on_duty=on_duty, call=call))
        elif state in ("fault", "absent"):
            notes.append(i18n.t(lang, "banner.device_fault", device=device_label(lang, device)))
    if (report.get("clock") or {}).get("synced") is False:
        notes.append(i18n.t(lang, "banner.clock_unsynced"))
    if lists_stale_h == LISTS_STAMP_AHEAD:
        notes.append(i18n.t(lang, "banner.lists_ahead"))
    elif lists_stale_h is not None and lists_stale_h < 0:
        notes.append(i18n.t(lang, "banner.lists_never"))
    elif lists_stale_h is not None:
        notes.append(i18n.t(lang, "banner.lists_stale", hours=lists_stale_h))
    return notes


# --- preview ----------------------------------------------------------------------------------


def preview_source(core: Core) -> Callable[[], tuple[Any, int] | None] | None:
    """``latest_frame`` of the first code reader that keeps one (a camera reader:
    ``(frame, mono_ns)`` or None); None when no reader does (serial scanners only)."""
    for reader in core.devices.readers:
        if isinstance(reader, FrameKeeper):
            return reader.latest_frame
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
#: ``?held=``: the result the page held on screen when it switched language (its
#: ``result_id``), shown again in the new language for the rest of its hold.
HELD_Q = Query(None, max_length=32, description="The result_id of the result the page holds.")

SCREEN_COOKIE = "kiosk_screen"
SCREEN_HEADER = "X-Kiosk-Screen"
#: ``{"direction": "out"}`` and a little room; anything bigger is not from the screen's page.
DIRECTION_MAX_BYTES = 256
PAIR_MAX_BYTES = 1024


#: What a client that is not the kiosk's screen is answered (a browser gets a page saying so).
NOT_HERE = "this is the kiosk's own screen; not served to others"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def in_networks(host: str, networks: Sequence[Network]) -> bool:
    """Whether the client address ``host`` is in one of ``networks`` (not an address: no)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # A dual-stack listener (web.host "::") sees 127.0.0.1 as ::ffff:127.0.0.1.
        address = address.ipv4_mapped
    return any(address in network for network in networks)


class ScreenAccess:
    """Who counts as this kiosk's own screen: a client address in ``addresses`` (loopback by
    default), or a request carrying ``key`` (the ``screen_key`` credential) as the
    ``X-Kiosk-Screen`` header or the ``kiosk_screen`` cookie. Compared in constant time;
    wrong keys count per address in ``limiter`` (as failed guard sign-ins do), and past its
    limit the address waits (429) whatever it presents."""

    def __init__(
        self, addresses: tuple[str, ...], key: str | None, limiter: LoginLimiter | None = None
    ) -> None:
        self.networks = [ipaddress.ip_network(a, strict=False) for a in addresses]
        self.key = key if key and len(key) >= MIN_SCREEN_KEY_CHARS else None
        self.limiter = limiter

    def local(self, request: Request) -> bool:
        return in_networks(request.client.host if request.client else "", self.networks)

    def key_matches(self, presented: str | None) -> bool:
        if self.key is None or not presented:
            return False
        return same_secret(presented[:256], self.key)  # any text: a JSON "\ud800" too

    def checked_key(self, request: Request, presented: str | None) -> bool:
        """Whether ``presented`` is the key, for a client that is not local: 429 while its
        address is over the guess limit; a wrong key counts against it."""
        if not presented or self.key is None:
            return False  # nothing to guess
        addr = client_addr(request)
        if self.limiter is not None:
            wait_s = self.limiter.retry_after_s(addr)
            if wait_s:
                raise HTTPException(
                    429, "too many wrong screen keys; wait", {"Retry-After": str(wait_s)}
                )
        if self.key_matches(presented):
            return True
        if self.limiter is not None:
            self.limiter.failed(addr)
        return False

    def allows(self, request: Request) -> bool:
        if self.local(request):
            return True
        presented = request.headers.get(SCREEN_HEADER) or request.cookies.get(SCREEN_COOKIE)
        return self.checked_key(request, presented)

    def require(self, request: Request) -> None:
        """FastAPI dependency: 403 for anyone but the kiosk's own screen."""
        if not self.allows(request):
            raise HTTPException(403, NOT_HERE)


def _json_body(properties: dict[str, Any]) -> dict[str, Any]:
    """The request body a route reads itself (capped), declared for its schema."""
    schema = {"type": "object", "properties": properties}
    return {"requestBody": {"content": {"application/json": {"schema": schema}}}}


async def read_small_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes, from ``Content-Length`` before
    reading or while reading a chunked body."""
    length = request.headers.get("content-length")
    if length is not None and ((declared := whole_number(length)) is None or declared > limit):
        raise HTTPException(413, "request body too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, "request body too large")
    return bytes(body)


#: The page says it runs every ``BEAT_S`` (``kiosk.js``'s ``beatMs``, from the page's
#: ``data-beat-s``, on its own timers); a screen whose stream is open but whose page has not
#: said so for ``BEAT_STALE_S`` is frozen (a loop in the page, a hung renderer):
#: ``/kiosk/watch`` reports it as no screen.
BEAT_S = 10.0
BEAT_STALE_S = 45.0
#: A screen's id: the page's own random one, in hex (``kiosk.js``).
SCREEN_ID_PATTERN = r"^[0-9a-f]{16,32}$"
SCREEN_ID_Q = Query(
    None, min_length=16, max_length=32, pattern=SCREEN_ID_PATTERN, description="The page's id."
)
#: The most streams of this host watched at once: past it the stalest gives its place up.
WATCHED_MAX = 8


@dataclass(eq=False)
class Watched:
    """One stream open to a screen of this host: its page's id and when it last said it runs."""

    screen_id: str
    beat_ns: int


class Beats:
    """Whether this host's screen runs, per stream open to it (named by the page's own id):
    opening one counts as a beat, and beats are kept only for a page with a stream open, so
    a stranger's beats make no entry. At most ``WATCHED_MAX`` streams are watched; past that
    the stalest gives its place up (a stream left behind never keeps a new page out)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.streams: list[Watched] = []

    def opened(self, screen_id: str) -> Watched:
        """A stream of ``screen_id`` opened: its entry, to give ``closed`` when it ends."""
        if len(self.streams) >= WATCHED_MAX:
            self.streams.remove(min(self.streams, key=lambda w: w.beat_ns))
        watched = Watched(screen_id, self.clock.monotonic_ns())
        self.streams.append(watched)
        return watched

    def closed(self, watched: Watched) -> None:
        if watched in self.streams:
            self.streams.remove(watched)

    def beat(self, screen_id: str) -> bool:
        """The page of ``screen_id`` runs: False when no stream of it is watched."""
        now = self.clock.monotonic_ns()
        found = False
        for watched in self.streams:
            if watched.screen_id == screen_id:
                watched.beat_ns, found = now, True
        return found

    def silent_s(self) -> float | None:
        """Seconds since the freshest watched page last said it runs; None when no screen of
        this host has a stream open."""
        if not self.streams:
            return None
        last = max(w.beat_ns for w in self.streams)
        return (self.clock.monotonic_ns() - last) / 1e9


#: What the kiosk page is built from besides the config, relative to ``ui/``: a release
#: updated or gone back to changes one.
PAGE_SOURCES = ("templates/kiosk.html", "templates/page_base.html", "messages.toml")


def page_constants(core: Core) -> dict[str, Any]:
    """What the kiosk page is loaded with that only a restart of the daemon changes (its
    config, its devices); the rest comes in its stream."""
    cfg = core.config
    return {
        "site_name": cfg.site.site_name,
        "timezone": cfg.site.timezone,
        "two_way": cfg.site.direction == "both",
        "hold_s": cfg.engine.result_hold_s,
        "has_preview": preview_source(core) is not None,
        "site_lang": i18n.pick_lang(cfg.site.language, "zh-CN"),
        "deny_hold_s": DENY_MIN_HOLD_S,
        "pulse_s": cfg.gate.pulse_ms / 1000,
    }


def page_edition(constants: dict[str, Any]) -> str:
    """A digest of what a kiosk page is built from: ``constants``, its template and words,
    and the static files it loads. A page whose daemon was restarted with another config or
    release hears another edition on its stream and loads itself again (``kiosk.js``): it
    never reloads by itself, and showed what it was loaded with for weeks."""
    digest = hashlib.sha256(json.dumps(constants, sort_keys=True, default=str).encode())
    digest.update(_sources_digest(_page_sources()))
    return digest.hexdigest()[:16]


def _page_sources() -> tuple[tuple[str, int, int, int], ...]:
    """The files a kiosk page is built from, each with what a change to it changes (inode,
    size, modification time): its template and words, the static files."""
    with os.scandir(HERE / "static") as entries:
        static = sorted(e.path for e in entries if e.is_file())
    found = []
    for path in (*(str(HERE / name) for name in PAGE_SOURCES), *static):
        st = os.stat(path)
        found.append((path, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(found)


@functools.lru_cache(maxsize=4)
def _sources_digest(sources: tuple[tuple[str, int, int, int], ...]) -> bytes:
    """The digest of the files ``sources`` names, read once while none of them changed:
    every app a process builds (the tests build ~2,000) would read and hash them again."""
    digest = hashlib.sha256()
    for path, *_ in sources:
        digest.update(os.path.basename(path).encode() + b"\0" + Path(path).read_bytes())
    return digest.digest()


@dataclass(frozen=True)
class LastResult:
    """The newest decision a screen of this process was shown, and when it came (the core's
    monotonic clock): what a page that switches language holds on screen (``held_view``)."""

    decision: dict[str, Any]
    seen_ns: int


@dataclass
class Screen:
    """The kiosk screen's state for one app (``app.state.screen``): the core, who may see the
    screen, what every screen of this process shows now, and the encoded views."""

    core: Core
    tpl: Jinja2Templates
    access: ScreenAccess
    fever_c: float
    gate_open_s: float
    hours: str | None
    #: where to call when no guard is on duty (``policy.hours.call``)
    call: str
    #: only a code starts a passage (``engine.order``): measuring again starts with the pass
    code_first: bool
    #: The kiosk's stop leaves its gate released (``kiosk.config.gate.stop_releases``).
    stop_releases: bool
    #: What every kiosk screen of this process shows now (a page loaded mid-result shows it).
    tracker: ScreenTracker
    #: The screens of this host (``web.screen_addresses``) with a stream open, and their
    #: pages' beats: what ``/kiosk/watch`` tells the screen unit's watcher.
    beats: Beats
    #: What the page is loaded with that only a restart changes (``page_constants``), and
    #: its digest (``page_edition``), which every stream names.
    constants: dict[str, Any]
    edition: str
    #: Every screen of this process sees the same bus messages, so a view or banner is built
    #: and encoded once per message and language, not once per connected screen (the daemon's
    #: loop runs the gate too). Keys hold the messages themselves, so an id is never reused.
    encoded: dict[tuple[str, int, int, str], tuple[object, object, str]] = field(
        default_factory=dict
    )
    #: The newest decision shown (``follow``), for a page switching language during its hold.
    last_result: LastResult | None = None

    @classmethod
    def build(cls, core: Core) -> Screen:
        cfg = core.config
        constants = page_constants(core)
        return cls(
            core=core,
            tpl=templates(),
            access=ScreenAccess(
                cfg.web.screen_addresses,
                screen_key(),
                LoginLimiter(core.clock, cfg.web.login_attempts_per_min),
            ),
            **screen_settings(cfg),
            tracker=ScreenTracker(current_state(core)),
            beats=Beats(core.clock),
            constants=constants,
            edition=page_edition(constants),
        )

    def current(self) -> ScreenTracker:
        """``tracker`` caught up with the engine's last state. Connected streams feed it; with
        none connected (the screen's browser restarting, its link down, a reload) it hears
        nothing, and a screen coming back would show the previous person's result again."""
        state = current_state(self.core)
        if state is not self.tracker.state:
            self.tracker.feed(state)
        return self.tracker

    def follow(self, message: dict[str, Any]) -> None:
        """``tracker`` fed one bus message a stream showed; a decision is kept with when it
        came (``held_view``; every stream feeds the same message, kept once)."""
        self.tracker.feed(message)
        last = self.last_result
        if message.get("type") == "decision" and (last is None or last.decision is not message):
            self.last_result = LastResult(message, self.core.clock.monotonic_ns())

    def held_view(
        self, held: str | None, lang: str, on_duty: bool | None = None
    ) -> dict[str, Any] | None:
        """The result a page held on screen when it switched language (``held``: its
        ``result_id``), shown in ``lang`` for the rest of the page's hold (``hold_s``): a
        deny stays ``DENY_MIN_HOLD_S``, whatever the engine's hold, and the resident taps
        the other language to read it. None when that result is not the newest, its hold is
        over or the next passage began; the sound is not played again."""
        last = self.last_result
        if not held or last is None:
            return None
        left_s = DENY_MIN_HOLD_S - (self.core.clock.monotonic_ns() - last.seen_ns) / 1e9
        state = self.current().state
        passage = state.get("passage")
        if left_s <= 0 or passage not in (None, last.decision.get("passage")):
            return None
        shown = ScreenTracker(state)
        shown.decision = last.decision
        view = self.view_of(shown, lang, on_duty)
        result = view.get("result")
        if view["result_id"] != held or result is None or result["kind"] == "pass":
            return None
        return view | {"sound": None, "hold_s": round(left_s, 2)}

    def on_duty(self) -> bool:
        """Whether a guard is on duty now (``ui.views.on_duty_now``)."""
        return on_duty_now(self.core)

    def view_of(
        self, tracker: ScreenTracker, lang: str, on_duty: bool | None = None
    ) -> dict[str, Any]:
        view = kiosk_view(
            tracker.state,
            tracker.decision,
            lang,
            fever_c=self.fever_c,
            gate_open_s=self.gate_left_s(tracker.state),
            hours=self.hours,
            call=self.call,
            code_first=self.code_first,
            stop_releases=self.stop_releases,
            on_duty=self.on_duty() if on_duty is None else on_duty,
        )
        if self.quiet_now():
            view["sound"] = view["speak"] = None  # site.quiet_at_night: shown, not heard
        return view

    def gate_left_s(self, state: dict[str, Any]) -> float:
        """Seconds until the gate locks again, from the engine's deadline in ``state``
        (``gate_closes_at_ns``): a page loaded or reconnected mid-pulse counts down what is
        left of it, not the whole pulse. The pulse when the state names no deadline."""
        at = state.get("gate_closes_at_ns")
        if not isinstance(at, int):
            return self.gate_open_s
        return max(0.0, (at - self.core.clock.monotonic_ns()) / 1e9)

    def quiet_now(self) -> bool:
        site = self.core.config.site
        if not site.quiet_at_night:
            return False
        return site.quiet_at(self.core.clock.now().astimezone(ZoneInfo(site.timezone)).time())

    def cached(
        self, kind: str, key_objs: tuple[object, object], lang: str, build: Callable[[], str]
    ) -> str:
        first, second = key_objs
        key = (kind, id(first), id(second), lang)
        hit = self.encoded.get(key)
        if hit is not None and hit[0] is first and hit[1] is second:
            return hit[2]
        text = build()
        if len(self.encoded) >= 64:
            self.encoded.clear()
        self.encoded[key] = (first, second, text)
        return text

    def view_sse(self, tracker: ScreenTracker, lang: str, on_duty: bool) -> str:
        pair = (tracker.state, tracker.decision)
        return self.cached(
            f"view:{on_duty}",
            pair,
            lang,
            lambda: sse("view", self.view_of(tracker, lang, on_duty)),
        )

    def banner_sse(self, lang: str, message: dict[str, Any], on_duty: bool) -> str:
        return self.cached(
            f"banner:{on_duty}",
            (message, None),
            lang,
            lambda: sse("banner", self.banner_in(lang, message, on_duty)),
        )

    def banner_in(
        self, lang: str, message: dict[str, Any] | None = None, on_duty: bool | None = None
    ) -> list[str]:
        report = dict(health_report(self.core))
        if message:
            report["faults"] = message.get("faults") or {}
            report["deciding"] = message.get("deciding", report.get("deciding"))
        return banner_view(
            report,
            lang,
            lists_stale_h=lists_stale_hours(self.core),
            on_duty=self.on_duty() if on_duty is None else on_duty,
            call=self.call,
        )

    def duty_turned(self, tracker: ScreenTracker, lang: str, was: bool) -> tuple[bool, str]:
        """Whether a guard is on duty now and, when that changed since ``was`` (the shift
        began or ended with nothing else to show), the view and banner again: the screen's
        referrals to the guard, or where to call instead ("" while it holds)."""
        now = self.on_duty()
        if now == was:
            return now, ""
        return now, self.view_sse(tracker, lang, now) + sse(
            "banner", self.banner_in(lang, None, now)
        )

    def preview_jpeg(self, source: Callable[[], tuple[Any, int] | None]) -> bytes | None:
        return encode_preview(fresh_frame(source(), self.core.clock.monotonic_ns()))


def install(app: FastAPI, core: Core) -> Screen:
    """Mount the kiosk screen on ``app`` with its state for ``core``; returns that state."""
    state = Screen.build(core)
    app.state.screen = state
    app.include_router(router)
    return state


# --- dependencies ---------------------------------------------------------------------------


def screen(request: Request) -> Screen:
    """The screen's state, put on the app by ``install``."""
    found: Screen = request.app.state.screen
    return found


def screen_only(request: Request, s: Screen = Depends(screen)) -> None:
    """403 for anyone but the kiosk's own screen (``ScreenAccess``)."""
    s.access.require(request)


# --- routes ---------------------------------------------------------------------------------

router = APIRouter(tags=["kiosk screen"])
SCREEN_ONLY = [Depends(screen_only)]
NO_STORE = {"Cache-Control": "no-store"}


def elsewhere(request: Request, s: Screen, lang: str) -> Response:
    """The kiosk screen refused to a browser elsewhere (a guard's phone): 403, why, in the
    site's language, and the way to the guard console."""
    response = s.tpl.TemplateResponse(
        request,
        "kiosk_elsewhere.html",
        {"lang": lang, "_": i18n.translator(lang), "site_name": s.core.config.site.site_name},
        status_code=403,
    )
    response.headers["Cache-Control"] = "no-store"
    return secure_headers(response)


@router.get("/kiosk", response_class=HTMLResponse, include_in_schema=False)
def kiosk_page(
    request: Request,
    s: Screen = Depends(screen),
    lang: str | None = LANG_Q,
    held: str | None = HELD_Q,
) -> Response:
    cfg, core = s.core.config, s.core
    lang = lang_of(request, cfg.site.language)
    if not s.access.allows(request):  # (429 while guessing keys, as every route)
        if request.headers.get("accept", "").startswith("text/html"):
            return elsewhere(request, s, lang)
        raise HTTPException(403, NOT_HERE)
    response = s.tpl.TemplateResponse(
        request,
        "kiosk.html",
        {
            **s.constants,
            "edition": s.edition,
            "lang": lang,
            "_": i18n.translator(lang),
            "direction": core.runner.engine.direction,
            "view": s.held_view(held, lang) or s.view_of(s.current(), lang),
            "banner": s.banner_in(lang),
            "other_lang": "en" if lang == "zh-CN" else "zh-CN",
            "now_ms": clock_ms(core),
            "beat_s": BEAT_S,
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return secure_headers(response)


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    """The screens' own CSS and JS (no build step, nothing vendored)."""
    path = HERE / "static" / name
    if (
        "/" in name
        or "\\" in name
        or name.startswith(".")
        or len(name) > STATIC_NAME_MAX
        or path.suffix not in STATIC_TYPES
        or not path.is_file()
    ):
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(
        path.read_bytes(),
        media_type=STATIC_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


async def json_object(request: Request, limit: int) -> dict[str, Any] | None:
    """A small JSON object body (413 past ``limit`` bytes); None when it is not one."""
    raw = await read_small_body(request, limit)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." within the cap
        return None
    return body if isinstance(body, dict) else None


@router.post(
    "/kiosk/direction",
    include_in_schema=False,
    dependencies=SCREEN_ONLY,
    openapi_extra=_json_body({"direction": {"type": "string", "enum": ["in", "out"]}}),
)
async def choose_direction(request: Request, s: Screen = Depends(screen)) -> Response:
    """A two-way kiosk's touch buttons: which way the next person goes. Only from the
    kiosk's own screen (``ScreenAccess``), from its own page, and only where the site
    takes the direction from the screen (``site.direction_from``)."""
    if not same_origin(request):
        return JSONResponse({"error": "cross-site request refused"}, status_code=403)
    if s.core.config.site.direction_from != "screen":
        return JSONResponse(
            {"error": "this kiosk takes the direction from its readers"}, status_code=409
        )
    body = await json_object(request, DIRECTION_MAX_BYTES)
    direction = "" if body is None else str(body.get("direction"))
    try:
        s.core.runner.select_direction(direction)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"direction": direction})


@router.post(
    "/kiosk/pair",
    include_in_schema=False,
    openapi_extra=_json_body({"key": {"type": "string", "maxLength": 256}}),
)
async def pair_screen(request: Request, s: Screen = Depends(screen)) -> Response:
    """A screen browser on another machine proves the ``screen_key`` credential once
    (``{"key": ...}``) and gets it as an HttpOnly cookie for the kiosk's routes."""
    if not same_origin(request):
        return JSONResponse({"error": "cross-site request refused"}, status_code=403)
    body = await json_object(request, PAIR_MAX_BYTES)
    presented = None if body is None else body.get("key")
    if not isinstance(presented, str) or not s.access.checked_key(request, presented):
        return JSONResponse({"error": "wrong or missing screen key"}, status_code=401)
    response = JSONResponse({"paired": True})
    set_private_cookie(
        response, request, SCREEN_COOKIE, presented, path="/kiosk", max_age=400 * 86400
    )
    return response


@router.get("/kiosk/events", include_in_schema=False, dependencies=SCREEN_ONLY)
async def kiosk_events(
    request: Request,
    s: Screen = Depends(screen),
    lang: str | None = LANG_Q,
    screen: str | None = SCREEN_ID_Q,  # (the query's name; the dependency is bound above)
    held: str | None = HELD_Q,
) -> StreamingResponse:
    chosen = lang_of(request, s.core.config.site.language)
    return ClosingStream(
        screen_stream(request, s, chosen, screen, held),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def screen_stream(
    request: Request, s: Screen, lang: str, screen_id: str | None = None, held: str | None = None
) -> AsyncIterator[str]:
    """One screen's SSE stream: its view and banner, then a view per bus message that changes
    it, a banner per health message, both again when a guard's duty begins or ends (what the
    screen's referrals to the guard say: ``Screen.duty_turned``), and a tick when nothing was
    written for ``TICK_S``. A stream of this host's screen that names its page
    (``screen_id``) is watched. A page that switched language while it held a result
    (``held``) is given that result first, for the rest of its hold (``Screen.held_view``)."""
    core = s.core
    messages = bus_messages(core)  # subscribe first: nothing slips in between
    shared = s.current()
    mine = ScreenTracker(shared.state)
    mine.decision = shared.decision
    watched = s.beats.opened(screen_id) if screen_id and s.access.local(request) else None
    duty = s.on_duty()
    try:
        yield "retry: 2000\n\n"
        if (kept := s.held_view(held, lang, duty)) is not None:
            yield sse("view", kept)  # the page holds it; the view below waits for the hold
        yield sse("view", s.view_of(mine, lang, duty))
        yield sse("banner", s.banner_in(lang, None, duty))
        yield sse("edition", {"edition": s.edition})
        checked = sent = time.monotonic()
        while True:
            # The response also ends the stream on a disconnect by itself; this check
            # costs a cancelled receive, so it runs at most once a second.
            now = time.monotonic()
            if now - checked >= DISCONNECT_CHECK_S:
                checked = now
                if await request.is_disconnected():
                    break
            try:
                # A tick when nothing was written for TICK_S, whatever else the bus
                # carries: the page's offline watchdog counts on it.
                wait_s = max(0.05, TICK_S - (time.monotonic() - sent))
                message = await asyncio.wait_for(anext(messages), wait_s)
            except TimeoutError:
                duty, again = s.duty_turned(mine, lang, duty)
                yield again + sse("tick", {"now_ms": clock_ms(core)})
                sent = time.monotonic()
                continue
            except StopAsyncIteration:
                break
            # A burst (state, decision, state) goes out as one write.
            duty, again = s.duty_turned(mine, lang, duty)
            out = [again] if again else []
            for item in (message, *messages.ready()):
                if mine.feed(item):
                    s.follow(item)
                    out.append(s.view_sse(mine, lang, duty))
                elif item.get("type") == "health":
                    out.append(s.banner_sse(lang, item, duty))
            if out:
                yield "".join(out)
                sent = time.monotonic()
    finally:
        if watched is not None:
            s.beats.closed(watched)
        await messages.aclose()


@router.get("/kiosk/watch", include_in_schema=False, dependencies=SCREEN_ONLY)
def watch(s: Screen = Depends(screen)) -> Response:
    """Whether a screen of this host runs now: its stream open and its page beating, 200;
    else 503. The screen unit's watcher restarts Chromium after two minutes of 503s: its page
    crashed, sits on an error page, or is frozen (a loop, a hung renderer) with its stream
    still open, and Chromium itself still runs (so ``Restart=always`` never fires)."""
    silent = s.beats.silent_s()
    if silent is not None and silent <= BEAT_STALE_S:
        return Response("listening\n", media_type="text/plain", headers=NO_STORE)
    if silent is None:
        text = "no screen of this host listens\n"
    else:
        text = (
            "the screen of this host is frozen: its stream is open,"
            f" its page silent for {silent:.0f} s\n"
        )
    return Response(text, status_code=503, media_type="text/plain", headers=NO_STORE)


@router.post("/kiosk/beat", include_in_schema=False, dependencies=SCREEN_ONLY)
async def page_beat(
    request: Request,
    s: Screen = Depends(screen),
    screen: str = Query(
        min_length=16, max_length=32, pattern=SCREEN_ID_PATTERN, description="The page's id."
    ),
) -> Response:
    """The screen's page says it runs (``kiosk.js``, every ``BEAT_S`` from its own timers):
    204; 404 when no stream of that page is open (nothing is kept for it). No body."""
    if not same_origin(request):
        return JSONResponse({"error": "cross-site request refused"}, status_code=403)
    await read_small_body(request, 0)
    if not s.beats.beat(screen):
        return Response("no stream of this screen is open\n", status_code=404, headers=NO_STORE)
    return Response(status_code=204, headers=NO_STORE)


@router.get("/kiosk/preview.jpg", include_in_schema=False, dependencies=SCREEN_ONLY)
def preview_jpg(s: Screen = Depends(screen)) -> Response:
    source = preview_source(s.core)
    if source is None or not someone_there(s.core):
        return Response(status_code=204, headers=NO_STORE)
    jpeg = s.preview_jpeg(source)
    if jpeg is None:
        return Response(status_code=204, headers=NO_STORE)
    return Response(jpeg, media_type="image/jpeg", headers=NO_STORE)


@router.get("/kiosk/preview.mjpeg", include_in_schema=False, dependencies=SCREEN_ONLY)
async def preview_mjpeg(
    request: Request,
    s: Screen = Depends(screen),
    fps: float = Query(2.0, ge=0.5, le=PREVIEW_MAX_FPS),
) -> Response:
    source = preview_source(s.core)
    if source is None or not someone_there(s.core):
        return Response(status_code=204, headers=NO_STORE)
    return ClosingStream(  # its bus subscription let go however the response ends
        mjpeg_frames(request, s, source, fps),
        media_type="multipart/x-mixed-replace; boundary=frame",
        headers=NO_STORE,
    )


async def mjpeg_frames(
    request: Request, s: Screen, source: Callable[[], tuple[Any, int] | None], fps: float
) -> AsyncIterator[bytes]:
    """The MJPEG parts; ends by itself when the person leaves (nobody there, no picture) and
    at the daemon's stop (``EventBus.end_streams``, as every live stream: it holds a stream
    subscription of the bus, whose close also ends its pause between frames)."""
    stream = s.core.bus.subscribe(stream=True, name="preview")
    try:
        while not stream.closed and someone_there(s.core) and not await request.is_disconnected():
            started = time.monotonic()
            jpeg = await asyncio.to_thread(s.preview_jpeg, source)
            if jpeg:
                yield (
                    b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                    + str(len(jpeg)).encode()
                    + b"\r\n\r\n"
                    + jpeg
                    + b"\r\n"
                )
            await pause_or_end(stream, 1 / fps - (time.monotonic() - started))
    finally:
        stream.close()


async def pause_or_end(stream: Subscription, seconds: float) -> None:
    """Waits ``seconds``, or less when ``stream`` closes; its messages are not needed (taken
    as they come, so the bus never finds it slow)."""
    deadline = time.monotonic() + seconds
    while not stream.closed and (left := deadline - time.monotonic()) > 0:
        try:
            await asyncio.wait_for(stream.get(), left)
        except TimeoutError:
            return
