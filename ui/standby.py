"""The faces of a kiosk standing by (``kiosk.standby``): its event log cannot be opened, or it
opened and the start met the card's fault after it (``Standby.opened``), each said as such.

No engine, no devices, no database: the kiosk screen says "see the guard" and reloads itself
(the real page comes back with the daemon), the guard console says why and what to do, in
both languages, health answers 503, and every other route 503. ``/kiosk/watch`` answers 200
while the screen keeps reloading, so kiosk-screen.service does not restart a browser that
shows the right page; only a load from the screen's addresses counts, as when the kiosk runs
(another tab's does not stand in for a dead screen).

Who sees what: no guard account, session or API token can be checked (they are in the log
that cannot be opened), so no sign-in is offered; what still tells callers apart is their
address. This host and the kiosk's screen (``web.screen_addresses``, whose callers get the
whole health report of a running kiosk too) read the reason as the journal has it, for the
technician at the Pi. Anyone else on the LAN, the guard's tablet as a passer-by, gets what
public health says of a running kiosk: it stands by, the kind of fault and its documented
fix, since when, and what a guard does meanwhile; never the data dir's paths, its owners'
uids or SQLite's words.
"""

from __future__ import annotations

import base64
import hashlib
import html
import time
from collections.abc import Callable, Sequence
from ipaddress import ip_network

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

import kiosk
from kiosk.standby import Standby
from ui import i18n
from ui.kiosk_screen import in_networks

#: How often the standby screen reloads itself (s): the real page within this of the start.
RELOAD_S = 10
#: A screen that has not reloaded for this long (s) is not watching (``/kiosk/watch``).
WATCHED_S = 60
_STYLE = (
    "body{font-family:sans-serif;margin:2rem;background:#222;color:#fff}"
    "h1{color:#fc6}p{font-size:1.2rem;max-width:60rem}"
)
#: Nothing of the page's own is loaded: no script, no request but the reload; its one style
#: element allowed by its hash (no ``'unsafe-inline'``, as on the console's pages).
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
#: On every answer while standing by: a console page left open (its stream cut when the daemon
#: restarted) asks its feed, sees this and reloads into the standby page (``guard.js``).
STANDBY_HEADER = ("X-Kiosk-State", "standby")
#: A ``plain_page``'s headers: nothing cached, nothing loaded but its own style.
PLAIN_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_HEADERS = {STANDBY_HEADER[0]: STANDBY_HEADER[1], **PLAIN_HEADERS}
#: What the fixes name as typed at the Pi (commands, files, the manual's sections, which are
#: in English): the same in both languages, so kept out of the translated words.
FIX_TERMS = {
    "data": "/var/lib/kiosk",
    "db": "kiosk.db",
    "log_files": "kiosk.db, kiosk.db-wal",
    "user": "kiosk",
    "reboot": "sudo reboot",
    "verify": "sudo kiosk-admin verify-log",
    "vacuum": "sudo journalctl --vacuum-size=50M",
    "apt_clean": "sudo apt-get clean",
    "chown": "sudo chown -R kiosk:kiosk /var/lib/kiosk",
    "card_section": "The SD card is failing",
    "open_section": "The daemon will not start: cannot open kiosk.db",
    "journal": "journalctl -u kiosk",
}


def plain_page(
    title: str, paragraphs: list[str], *, reload_s: int | None = None, lang: str = "zh-CN"
) -> str:
    """A page of its own, for an answer that cannot be a face's page (the standby's, the
    console's refusal at a stop): ``title`` and ``paragraphs``, escaped; ``PLAIN_HEADERS``."""
    refresh = f'<meta http-equiv="refresh" content="{reload_s}">' if reload_s else ""
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        f'<!doctype html><html lang="{html.escape(lang)}"><head><meta charset="utf-8">{refresh}'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


#: What the gate does while standing by, and the words the console's title says it in:
#: locked, released (a wiring a stop releases), or unknown (the relay did not obey the
#: command that leaves it so).
GATE_WORDS = {
    "locked": "standby.gate.locked",
    "released": "standby.gate.released",
    "unknown": "standby.gate.unknown",
}
GATE_STATES = tuple(GATE_WORDS)


def guard_words(standby: Standby, whole: bool = True, gate: str = "locked") -> list[str]:
    """What the guard console says, each language in turn: what happened (the log not opening,
    or the start failing after it opened: ``Standby.opened``) and what the ``gate`` does (one
    of ``GATE_STATES``), what the guard does meanwhile, what fixes it, and the reason as the
    journal has it (``whole``: this host's caller), else where it is said in full."""
    said = []
    for lang in i18n.LANGS:
        title = "standby.title.opened" if standby.opened else "standby.title"
        said += [
            i18n.t(lang, title, gate=i18n.t(lang, GATE_WORDS[gate])),
            i18n.t(lang, "standby.todo.released" if gate == "released" else "standby.todo"),
            i18n.t(lang, f"standby.fix.{standby.kind}", **FIX_TERMS),
            i18n.t(lang, "standby.since", since=standby.since, tries=standby.tries),
        ]
        if not whole:
            said.append(i18n.t(lang, "standby.reason_here", **FIX_TERMS))
    return [*said, standby.reason] if whole else said


def screen_words(*, on_duty: bool = True, call: str = "") -> list[str]:
    """What the kiosk's screen says while standing by, each language in turn: not deciding,
    see the guard, or where to ``call`` while no guard is on duty (``on_duty`` false)."""
    return [i18n.t_now(lang, "standby.kiosk", on_duty=on_duty, call=call) for lang in i18n.LANGS]


def create_standby_app(
    standby: Standby,
    kiosk_id: str,
    monotonic: Callable[[], float] = time.monotonic,
    *,
    local: Sequence[str] = ("127.0.0.1", "::1"),
    on_duty: Callable[[], bool] = lambda: True,
    call: str = "",
    gate: Callable[[], str] = lambda: "locked",
) -> FastAPI:
    """The app served while ``standby`` lasts; ``local``: the addresses that read the reason
    whole (this host and the screen: ``web.screen_addresses``); ``on_duty``: whether a guard
    is on duty now (``kiosk.policy.guard_on_duty``), else the screen says where to ``call``
    (``policy.hours.call``); ``gate``: what the gate does now (one of ``GATE_STATES``), as
    the console says it."""
    app = FastAPI(
        title="Checkpoint kiosk (standing by)", docs_url=None, redoc_url=None, openapi_url=None
    )
    seen: list[float] = []  # when the screen last loaded its page
    networks = [ip_network(a, strict=False) for a in local]

    def whole(request: Request) -> bool:
        return in_networks(request.client.host if request.client else "", networks)

    @app.get("/api/v1/health")
    def health(request: Request) -> JSONResponse:
        report = standby.health(kiosk_id, kiosk.__version__, whole=whole(request))
        return JSONResponse(report, status_code=503, headers=dict([STANDBY_HEADER]))

    @app.get("/kiosk")
    def screen(request: Request) -> Response:
        if whole(request):  # the screen's own browser: a stranger's tab stands in for none
            seen[:] = [monotonic()]
        words = screen_words(on_duty=on_duty(), call=call)
        page = plain_page(words[0], words[1:], reload_s=RELOAD_S)
        return HTMLResponse(page, status_code=503, headers=_HEADERS)

    @app.get("/kiosk/watch")
    def watch() -> Response:
        watched = bool(seen) and monotonic() - seen[0] < WATCHED_S
        return Response(status_code=200 if watched else 503, headers=_HEADERS)

    @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
    def anything(request: Request, path: str) -> Response:
        if path == "guard" or path.startswith("guard/"):
            words = guard_words(standby, whole(request), gate())
            page = plain_page(words[0], words[1:], reload_s=RELOAD_S * 3)
            return HTMLResponse(page, status_code=503, headers=_HEADERS)
        detail = f"the kiosk is standing by, not deciding: {standby.detail(whole(request))}"
        if path.startswith("api/"):
            return JSONResponse({"detail": detail}, status_code=503, headers=_HEADERS)
        return PlainTextResponse(detail, status_code=503, headers=_HEADERS)

    return app
