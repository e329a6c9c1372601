"""The guard console: ``/guard`` and everything under it (sign-in required).

Pages (GET, redirect to ``/guard/login`` without a session): live feed and alarms
(``/guard``), registration (``/guard/register``), passes (``/guard/passes``), lists
(``/guard/lists``), statistics (``/guard/stats``), device health (``/guard/health``),
calibration (``/guard/calibration``), CSV export (``/guard/export.csv``).
Streams and JSON (401 without a session): ``/guard/events`` (SSE), ``/guard/api/feed``.
Actions (POST; 401 without a session, 403 cross-site or without the CSRF token): manual
pass/deny, registration of a person or a vehicle, alarm acknowledgement, pass issue, list
edits, calibration points, logout.

Routes translate HTTP to core calls (``checkpoint.app.Core``): decisions go through
``core.runner.engine.manual`` (so a manual decision is an event like any other, and the rules
on it, such as refusing a registration with a fever, are the engine's), list edits through
``core.lists`` with the guard as actor, and every action is written to the audit log with
``core.store.audit_async``.
Personal data is masked with ``kiosk.privacy`` unless the guard's role allows it: admins see
everything; guards see names, units and plates (they have to recognise people) but not phone
or ID numbers. With ``web.mask_personal = false`` nothing is masked.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from kiosk import privacy
from kiosk.accounts import NAME_RE
from kiosk.engine import FeverRefused, TemperatureImplausible
from kiosk.lists import Lists, ListStore
from kiosk.passes import ROLES
from kiosk.store import decode_event_row
from ui import charts, i18n
from ui.auth import CSRF_FIELD, GuardAuth, Session, client_addr, same_origin
from ui.kiosk_screen import (
    HEARTBEAT_S,
    ScreenTracker,
    bus_messages,
    current_state,
    device_entries,
    device_label,
    faults_of,
    health_report,
    kiosk_view,
    lists_stale_hours,
    secure_headers,
    sse,
    templates,
)

if TYPE_CHECKING:
    from kiosk.core import Core

log = logging.getLogger(__name__)

FEED_ROWS = 50
ALARM_LOOKBACK_H = 12
MAX_TEXT = 200

#: Fields a plain guard sees unmasked (to recognise a person); admins see all. Free-text
#: notes are scrubbed of phone- and ID-shaped numbers for guards.
GUARD_CLEAR_FIELDS = frozenset(
    {
        "pass_id",
        "household",
        "holder",
        "person.name",
        "person.unit",
        "person.plate",
        "person.driver",
        "person.occupants",
    }
)
ALL_FIELDS = privacy.FIELD_NAMES

#: Reason codes of a denied event that raise an alarm, by alarm kind (checked in this order).
ALARM_REASONS = {
    "fever": "fever",
    "quarantined": "quarantine",
    "pass_bad_signature": "forged",
    "pass_unknown_key": "forged",
    "sensor_fault": "device",
    "reader_fault": "device",
    "store_fault": "device",
}
#: Bus alarm names (``kiosk.policy.ALARMS`` and the engine's device alarms) by alarm kind.
ALARM_KINDS = {
    "fever": "fever",
    "quarantine_breach": "quarantine",
    "quarantine_return": "quarantine",
    "quarantined": "quarantine",
    "forged_pass": "forged",
    "pass_bad_signature": "forged",
    "pass_unknown_key": "forged",
    "device_fault": "device",
    "sensor_fault": "device",
    "reader_fault": "device",
    "store_fault": "device",
    "gate_fault": "device",
    "gate_not_locked": "device",
    "guard_needed": "guard",
}


# --- alarms ---------------------------------------------------------------------------------


@dataclass
class Alarm:
    key: str
    kind: str  # fever | quarantine | forged | device | other
    ts: str
    seq: int | None = None
    detail: str = ""
    acked_by: str | None = None
    acked_at: str | None = None


@dataclass
class AlarmBoard:
    """Open and acknowledged alarms of this process: from alarm events in the log (durable),
    the bus's alarm messages and device faults in the health report. Acknowledgements are
    audited; the board keeps the latest ``keep`` alarms."""

    keep: int = 200
    alarms: dict[str, Alarm] = field(default_factory=dict)
    scanned_seq: int = -1  # -1: not scanned yet
    #: Acknowledgements read back from the audit log at start: key -> (who, when).
    acked_before: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, alarm: Alarm) -> bool:
        if alarm.key in self.alarms:
            return False
        if alarm.key in self.acked_before:
            alarm.acked_by, alarm.acked_at = self.acked_before.pop(alarm.key)
        self.alarms[alarm.key] = alarm
        if len(self.alarms) > self.keep:
            acked = [k for k, a in self.alarms.items() if a.acked_by]
            for k in (acked or list(self.alarms))[: len(self.alarms) - self.keep]:
                del self.alarms[k]
        return True

    def open(self) -> list[Alarm]:
        return sorted(
            (a for a in self.alarms.values() if not a.acked_by), key=lambda a: a.ts, reverse=True
        )

    def forget_cleared_devices(self, standing: set[str]) -> None:
        """Drop acknowledged device alarms whose fault has cleared, so a new fault alarms
        again. An unacknowledged one stays: a fault that came and went is still news."""
        for key in [
            k
            for k, a in self.alarms.items()
            if k.startswith("device:") and k not in standing and a.acked_by
        ]:
            del self.alarms[key]

    def ack(self, key: str, who: str, when: str) -> Alarm | None:
        alarm = self.alarms.get(key)
        if alarm is None or alarm.acked_by:
            return None
        alarm.acked_by, alarm.acked_at = who, when
        return alarm


def alarm_from_event(event: dict) -> Alarm | None:
    """The alarm an event raises (fever, quarantine breach, forged pass, device), if any."""
    if event.get("decision") not in ("deny", "manual_deny"):
        return None
    reasons = _json_list(event.get("reasons"))
    for code in ALARM_REASONS:
        if code in reasons:
            return Alarm(
                key=f"event:{event.get('seq')}",
                kind=ALARM_REASONS[code],
                ts=str(event.get("ts") or ""),
                seq=event.get("seq"),
                detail=code,
            )
    return None


#: Device alarms of the engine, by the device they are about.
ALARM_DEVICES = {
    "sensor_fault": "thermometer",
    "reader_fault": "reader",
    "gate_fault": "gate",
    "gate_not_locked": "gate",
    "store_fault": "store",
}


def alarm_from_message(message: dict, now: str) -> Alarm | None:
    """An alarm from a bus ``alarm`` message; None for a ``cleared`` notice (the card stays
    until a guard acknowledges it)."""
    if message.get("state") == "cleared":
        return None
    raw = str(message.get("alarm") or "other")
    kind = ALARM_KINDS.get(raw, "other")
    seq = message.get("seq")
    if seq is not None:
        return Alarm(key=f"event:{seq}", kind=kind, ts=now, seq=seq, detail=raw)
    if raw in ALARM_DEVICES:
        # Same key as the standing alarm from the health report: one card per device.
        device = ALARM_DEVICES[raw]
        return Alarm(key=f"device:{device}", kind="device", ts=now, detail=device)
    return Alarm(key=f"bus:{raw}:{message.get('mono_ns') or now}", kind=kind, ts=now, detail=raw)


def device_alarms(report: dict) -> list[Alarm]:
    """A standing alarm for each device in fault, for as long as the fault lasts."""
    return [
        Alarm(key=f"device:{device}", kind="device", ts="", detail=device)
        for device, state in faults_of(report).items()
        if state == "fault"
    ]


def _json_list(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return [str(v) for v in value or []]


# --- helpers --------------------------------------------------------------------------------


def clear_fields(session: Session, mask_personal: bool) -> frozenset[str]:
    if not mask_personal or session.is_admin:
        return ALL_FIELDS
    return GUARD_CLEAR_FIELDS


def _local(ts: str | None, tz: ZoneInfo, fmt: str = "%H:%M:%S") -> str:
    if not ts:
        return ""
    try:
        when = datetime.fromisoformat(ts)
    except ValueError:
        return ts
    return when.astimezone(tz).strftime(fmt)


def feed_row(
    event: dict,
    lang: str,
    tz: ZoneInfo,
    clear: frozenset[str],
    fever_c: float | None = None,
) -> dict:
    """One line of the live feed, masked for the viewer."""
    masked = privacy.mask_event(event, clear)
    person = masked.get("person")
    if isinstance(person, str):
        try:
            person = json.loads(person)
        except ValueError:
            person = None
    person = person if isinstance(person, dict) else {}
    who_parts = [
        str(v)
        for v in (
            masked.get("holder") or person.get("name") or person.get("driver"),
            person.get("plate"),
            person.get("phone"),
            person.get("id_number"),
        )
        if v
    ]
    reasons = _json_list(event.get("reasons"))
    decision = str(event.get("decision") or "")
    alarm = alarm_from_event(event)
    temp = event.get("temp_c")  # the kiosk's estimate, or a guard's hand-measured reading
    return {
        "seq": event.get("seq"),
        "time": _local(event.get("ts"), tz),
        "decision": decision,
        "decision_text": i18n.t(lang, f"decision.{decision}")
        if decision in ("pass", "deny", "manual_pass", "manual_deny")
        else decision,
        "ok": decision in ("pass", "manual_pass"),
        "reasons": i18n.reasons_text(lang, reasons),
        "temp": f"{float(temp):.1f}" if isinstance(temp, int | float) else "",
        "fever": "fever" in reasons
        or (isinstance(temp, int | float) and fever_c is not None and temp >= fever_c),
        "direction": i18n.t(lang, f"dir.{event['direction']}")
        if event.get("direction") in ("in", "out")
        else "",
        "who": " · ".join(who_parts),
        "kind": str(event.get("kind") or "passage"),
        "kind_text": i18n.t(lang, f"kind.{event['kind']}")
        if event.get("kind") in ("registration", "vehicle")
        else "",
        "operator": event.get("operator") or "",
        "alarm": alarm.kind if alarm else None,
    }


def recent_events(core: Core, limit: int = FEED_ROWS) -> list[dict]:
    rows = core.store.reader().query("select * from events order by seq desc limit ?", [limit])
    return [decode_event_row(r) for r in rows]


def events_after(core: Core, after: int, limit: int = FEED_ROWS) -> list[dict]:
    return list(core.store.events(after_seq=after, limit=limit))


class BadInput(ValueError):
    """A form value that cannot be used; shown to the guard in their language, nothing is
    recorded. ``key`` is an i18n key (``err.*``) or, for messages from the core, plain text;
    parameters that are i18n keys (field names) are translated too."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    def text(self, lang: str) -> str:
        if not i18n.has(self.key):
            return self.key
        params = {
            k: i18n.t(lang, v) if isinstance(v, str) and i18n.has(v) else v
            for k, v in self.params.items()
        }
        return i18n.t(lang, self.key, **params)


def _clean(value: Any, field: str, *, required: bool = False, max_len: int = MAX_TEXT) -> str:
    """A one-line text field, stripped; ``field`` is the field's i18n key."""
    text = str(value or "").strip()
    if required and not text:
        raise BadInput("err.required", field=field)
    if len(text) > max_len:
        raise BadInput("err.too_long", field=field, n=max_len)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise BadInput("err.control", field=field)
    return text


def _number(value: Any, field: str, *, required: bool = False) -> float | None:
    """A decimal number as typed (a comma is a decimal point too); None when left empty."""
    text = str(value or "").strip()
    if not text:
        if required:
            raise BadInput("err.required", field=field)
        return None
    try:
        return float(text.replace(",", "."))
    except ValueError:
        raise BadInput("err.number", field=field) from None


def _float(value: Any, field: str, lo: float, hi: float, *, required: bool = False) -> float | None:
    number = _number(value, field, required=required)
    if number is None:
        return None
    if not lo <= number <= hi:
        raise BadInput("err.range", field=field, lo=f"{lo:g}", hi=f"{hi:g}")
    return number


def _int(value: Any, field: str, lo: int, hi: int, default: int | None) -> int | None:
    text = str(value or "").strip()
    if not text:
        return default
    try:
        number = int(text)
    except ValueError:
        raise BadInput("err.whole", field=field) from None
    if not lo <= number <= hi:
        raise BadInput("err.range", field=field, lo=lo, hi=hi)
    return number


def _choice(value: Any, field: str, options: tuple[str, ...], default: str | None = None) -> str:
    text = str(value or "").strip() or (default or "")
    if text not in options:
        raise BadInput("err.choice", field=field, options=", ".join(options))
    return text


# --- router ---------------------------------------------------------------------------------


def build_auth(core: Core) -> GuardAuth:
    """Sign-in against ``core.accounts``; cookies signed with the ``session_key`` secret."""
    return GuardAuth(
        core.accounts,
        core.clock,
        session_hours=core.config.web.session_hours,
        login_attempts_per_min=core.config.web.login_attempts_per_min,
    )


def router(core: Core, auth: GuardAuth | None = None) -> APIRouter:
    r = APIRouter(prefix="/guard", tags=["guard console"])
    tpl = templates()
    cfg = core.config

    def direction_of(form: Any) -> str:
        """The form's ``direction`` (in/out), the site's default when not given."""
        return _choice(
            form.get("direction"), "manual.direction", ("in", "out"), cfg.site.default_direction
        )

    tz = ZoneInfo(cfg.site.timezone)
    auth = auth or build_auth(core)
    board = AlarmBoard()
    board_lock = threading.Lock()
    fever_c = cfg.thermometer.thermometry.fever_threshold_c
    r.auth = auth  # type: ignore[attr-defined]  # for tests and the app
    r.board = board  # type: ignore[attr-defined]

    def lang_for(request: Request) -> i18n.Lang:
        chosen = request.query_params.get("lang") or request.cookies.get("kiosk_lang")
        return i18n.pick_lang(chosen, cfg.site.language)

    def now_iso() -> str:
        return core.clock.now().isoformat()

    async def audit_as(actor: str, action: str, detail: dict) -> None:
        await core.store.audit_async(actor, action, detail)

    async def audit(session: Session, action: str, detail: dict) -> None:
        await audit_as(session.name, action, detail)

    def scan_alarms() -> None:
        if board.scanned_seq < 0:
            # First look after start: alarms of the last hours, not the whole history.
            since = (core.clock.now() - timedelta(hours=ALARM_LOOKBACK_H)).isoformat()[:19]
            db = core.store.reader()
            rows = list(db.query("select min(seq) as s from events where ts >= ?", [since]))
            first = rows[0]["s"]
            board.scanned_seq = (first - 1) if first is not None else core.store.last_seq
            # Acknowledgements survive a restart: they are in the audit log.
            for row in db.query(
                "select actor, ts, detail from audit where action = 'alarm_ack' and ts >= ?",
                [since],
            ):
                key = (json.loads(row["detail"] or "{}") or {}).get("key")
                if key and key.startswith("event:"):
                    board.acked_before[key] = (row["actor"], row["ts"])
        while True:
            batch = events_after(core, board.scanned_seq, limit=500)
            for event in batch:
                board.scanned_seq = max(board.scanned_seq, int(event["seq"]))
                alarm = alarm_from_event(event)
                if alarm is not None:
                    board.add(alarm)
            if len(batch) < 500:
                break

    def alarm_rows(lang: str) -> list[dict]:
        standing = device_alarms(health_report(core))
        with board_lock:  # pages, streams (threads) and acknowledgements share the board
            scan_alarms()
            board.forget_cleared_devices({a.key for a in standing})
            rows = [*(a for a in standing if a.key not in board.alarms), *board.open()]
        return [alarm_view(a, lang) for a in rows]

    def alarm_view(a: Alarm, lang: str) -> dict:
        if a.detail in i18n.reason_codes():
            detail = i18n.reason_text(lang, a.detail)
        elif i18n.has(f"device.{a.detail}"):
            detail = device_label(lang, a.detail)
        elif i18n.has(f"alarm.{a.detail}"):
            detail = i18n.t(lang, f"alarm.{a.detail}")
        else:
            detail = a.detail
        return {
            "key": a.key,
            "kind": a.kind,
            "title": i18n.t(lang, f"alarm.{a.kind}"),
            "time": _local(a.ts, tz) if a.ts else "",
            "detail": detail,
            "seq": a.seq,
        }

    def render(request: Request, name: str, session: Session, **ctx: Any) -> HTMLResponse:
        lang = lang_for(request)
        response = tpl.TemplateResponse(
            request,
            name,
            {
                "lang": lang,
                "_": i18n.translator(lang),
                "session": session,
                "csrf": auth.sessions.csrf_token(session),
                "site_name": cfg.site.site_name,
                "kiosk_id": cfg.site.kiosk_id,
                "page": name.removesuffix(".html"),
                "other_lang": "en" if lang == "zh-CN" else "zh-CN",
                "role_text": i18n.t(lang, f"role.{session.role}"),
                **ctx,
            },
            status_code=ctx.pop("status_code", 200) if "status_code" in ctx else 200,
        )
        response.headers["Cache-Control"] = "no-store"
        secure_headers(response)
        if request.query_params.get("lang") in i18n.LANGS:
            response.set_cookie("kiosk_lang", lang, samesite="strict", path="/", httponly=True)
        return response

    def done(request: Request, target: str, message: str = "ok.done") -> Response:
        if request.headers.get("accept", "").startswith("application/json"):
            return JSONResponse({"ok": True})
        sep = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{sep}msg={message}", status_code=303)

    def fail(request: Request, target: str, problem: BadInput | str) -> Response:
        """Back to the form with the problem in the guard's language; nothing was recorded."""
        text = problem.text(lang_for(request)) if isinstance(problem, BadInput) else str(problem)
        if request.headers.get("accept", "").startswith("application/json"):
            return JSONResponse({"ok": False, "error": text}, status_code=400)
        from urllib.parse import quote

        sep = "&" if "?" in target else "?"
        text = text[:300]
        return RedirectResponse(
            f"{target}{sep}err={quote(text)}&sig={flash_sig(text)}", status_code=303
        )

    # ``?err=`` is shown only when this process wrote it (signed): a link from anyone else
    # cannot put words in the console's error banner.
    flash_key = secrets.token_bytes(32)

    def flash_sig(text: str) -> str:
        return hmac.new(flash_key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def flash(request: Request) -> dict:
        lang = lang_for(request)
        msg = request.query_params.get("msg")
        err = (request.query_params.get("err") or "")[:300]
        sig = request.query_params.get("sig") or ""
        signed = bool(err) and hmac.compare_digest(sig.encode(), flash_sig(err).encode())
        return {
            "flash_ok": i18n.t(lang, msg)
            if msg in ("ok.done", "cal.saved", "pass.issued")
            else None,
            "flash_err": err if signed else None,
        }

    def engine_manual(decision: str, **kwargs: Any) -> None:
        """``core.runner.engine.manual`` (on the loop: routes that call it are ``async``): the
        decision is committed like any other event. The engine's refusals become messages
        in the guard's language."""
        try:
            core.runner.engine.manual(decision=f"manual_{decision}", **kwargs)
        except FeverRefused as exc:
            raise BadInput("reg.fever_refused", t=f"{exc.temp_c:.1f}") from None
        except TemperatureImplausible as exc:
            raise BadInput(
                "err.range", field="reg.temp", lo=f"{exc.low_c:g}", hi=f"{exc.high_c:g}"
            ) from None
        except ValueError as exc:
            raise BadInput(str(exc)) from None

    # --- sign-in -------------------------------------------------------------------------

    @r.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request) -> Response:
        lang = lang_for(request)
        if auth.current(request) is not None:
            return RedirectResponse("/guard", status_code=303)
        error = request.query_params.get("error")
        return login_form(request, lang, error)

    def login_form(request: Request, lang: str, error: str | None, status: int = 200) -> Response:
        response = tpl.TemplateResponse(
            request,
            "login.html",
            {
                "lang": lang,
                "_": i18n.translator(lang),
                "site_name": cfg.site.site_name,
                "form_token": auth.sessions.login_form_token(),
                "next": _safe_next(request.query_params.get("next")),
                "error": error,
                "other_lang": "en" if lang == "zh-CN" else "zh-CN",
                "logged_out": request.query_params.get("bye") == "1",
            },
            status_code=status,
        )
        response.headers["Cache-Control"] = "no-store"
        return secure_headers(response)

    @r.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        lang = lang_for(request)
        if not same_origin(request):
            raise HTTPException(403, "cross-site request refused")
        addr = client_addr(request)
        wait = auth.limiter.retry_after_s(addr)
        if wait:
            response = login_form(request, lang, i18n.t(lang, "login.limited", s=wait), 429)
            response.headers["Retry-After"] = str(wait)
            return response
        form = await request.form()
        if not auth.sessions.check_login_form_token(str(form.get(CSRF_FIELD) or "")):
            return login_form(request, lang, i18n.t(lang, "login.expired"), 403)
        name = str(form.get("name") or "").strip()
        password = str(form.get("password") or "")
        account = await asyncio.to_thread(auth.accounts.authenticate, name, password)
        if account is None:
            auth.limiter.failed(addr)
            await audit_as(name if NAME_RE.match(name) else "-", "guard_login_failed", {})
            return login_form(request, lang, i18n.t(lang, "login.failed"), 401)
        auth.limiter.succeeded(addr)
        cookie, session = auth.sessions.issue(account)
        await audit_as(account.name, "guard_login", {"role": account.role})
        response = RedirectResponse(_safe_next(str(form.get("next") or "")), status_code=303)
        auth.set_cookie(response, request, cookie)
        return response

    @r.post("/logout", include_in_schema=False)
    async def logout(request: Request, session: Session = Depends(auth.action)) -> Response:
        auth.sessions.revoke(session)
        await audit(session, "guard_logout", {})
        response = RedirectResponse("/guard/login?bye=1", status_code=303)
        auth.clear_cookie(response)
        return response

    # --- live ------------------------------------------------------------------------------

    @r.get("", response_class=HTMLResponse, include_in_schema=False)
    @r.get("/", response_class=HTMLResponse, include_in_schema=False)
    def live_page(request: Request, session: Session = Depends(auth.page)) -> Response:
        lang = lang_for(request)
        clear = clear_fields(session, cfg.web.mask_personal)
        rows = [feed_row(e, lang, tz, clear, fever_c) for e in recent_events(core)]
        state = kiosk_view(current_state(core), None, lang, fever_c=fever_c)
        return render(
            request,
            "guard_live.html",
            session,
            rows=rows,
            alarms=alarm_rows(lang),
            state=state,
            last_seq=max((row["seq"] or 0 for row in rows), default=0),
            directions=_directions(cfg),
            default_direction=cfg.site.default_direction,
            **flash(request),
        )

    @r.get("/api/feed", summary="Guard feed: newest decisions, masked for the viewer's role")
    def api_feed(request: Request, after: int = 0, session: Session = Depends(auth.api)) -> dict:
        lang = lang_for(request)
        clear = clear_fields(session, cfg.web.mask_personal)
        events = events_after(core, after) if after else list(reversed(recent_events(core)))
        return {
            "rows": [feed_row(e, lang, tz, clear, fever_c) for e in reversed(events)],
            "alarms": alarm_rows(lang),
        }

    @r.get("/events", summary="Guard live stream (SSE): decisions, alarms, state, health")
    async def guard_events(request: Request, session: Session = Depends(auth.api)) -> Response:
        lang = lang_for(request)
        clear = clear_fields(session, cfg.web.mask_personal)
        after = int(request.query_params.get("after") or 0)

        async def stream() -> AsyncIterator[str]:
            nonlocal after
            messages = bus_messages(core)  # subscribe first: nothing slips in between
            tracker = ScreenTracker(current_state(core))
            try:
                yield "retry: 2000\n\n"
                # Anything committed since the page was drawn, then live.
                for event in await asyncio.to_thread(events_after, core, after):
                    after = max(after, int(event["seq"]))
                    yield sse("row", feed_row(event, lang, tz, clear, fever_c))
                yield sse("alarms", await asyncio.to_thread(alarm_rows, lang))
                while not await request.is_disconnected():
                    try:
                        message = await asyncio.wait_for(anext(messages), HEARTBEAT_S)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    except StopAsyncIteration:
                        break
                    kind = message.get("type")
                    if kind == "decision":
                        tracker.feed(message)
                        for event in await asyncio.to_thread(events_after, core, after):
                            after = max(after, int(event["seq"]))
                            yield sse("row", feed_row(event, lang, tz, clear, fever_c))
                        yield sse("alarms", await asyncio.to_thread(alarm_rows, lang))
                    elif kind == "alarm":
                        alarm = alarm_from_message(message, now_iso())
                        with board_lock:
                            added = alarm is not None and board.add(alarm)
                        if added:
                            yield sse("alarms", await asyncio.to_thread(alarm_rows, lang))
                    elif tracker.feed(message):
                        yield sse(
                            "state",
                            kiosk_view(tracker.state, tracker.decision, lang, fever_c=fever_c),
                        )
                    elif kind == "health":
                        yield sse("alarms", await asyncio.to_thread(alarm_rows, lang))
            finally:
                await messages.aclose()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @r.post("/alarms/ack", include_in_schema=False)
    async def ack_alarm(request: Request, session: Session = Depends(auth.action)) -> Response:
        form = await request.form()
        key = str(form.get("key") or "")
        standing = device_alarms(health_report(core))
        with board_lock:
            scan_alarms()
            if key.startswith("device:") and key not in board.alarms:
                for alarm in standing:
                    board.add(alarm)
            alarm = board.ack(key, session.name, now_iso())
        if alarm is None:
            return fail(request, "/guard", BadInput("err.no_alarm"))
        await audit(session, "alarm_ack", {"alarm": alarm.kind, "key": alarm.key, "seq": alarm.seq})
        return done(request, "/guard")

    @r.post("/manual", include_in_schema=False)
    async def manual(request: Request, session: Session = Depends(auth.action)) -> Response:
        form = await request.form()
        try:
            decision = _choice(form.get("decision"), "live.decision", ("pass", "deny"))
            reason = _clean(form.get("reason"), "manual.reason", required=True)
            direction = direction_of(form)
            engine_manual(
                decision=decision,
                operator=session.name,
                reason=reason,
                direction=direction,
            )
        except BadInput as exc:
            return fail(request, "/guard", exc)
        await audit(session, f"manual_{decision}", {"direction": direction})
        return done(request, "/guard")

    # --- registration ----------------------------------------------------------------------

    @r.get("/register", response_class=HTMLResponse, include_in_schema=False)
    def register_page(request: Request, session: Session = Depends(auth.page)) -> Response:
        lang = lang_for(request)
        clear = clear_fields(session, cfg.web.mask_personal)
        start = core.clock.now() - timedelta(hours=24)
        rows = [
            feed_row(decode_event_row(e), lang, tz, clear, fever_c)
            for e in core.store.reader().query(
                "select * from events where kind in ('registration', 'vehicle') "
                "and ts >= ? order by seq desc limit 50",
                [start.isoformat()[:19]],
            )
        ]
        return render(
            request,
            "guard_register.html",
            session,
            rows=rows,
            fever_c=fever_c,
            directions=_directions(cfg),
            default_direction=cfg.site.default_direction,
            **flash(request),
        )

    @r.post("/register/person", include_in_schema=False)
    async def register_person(
        request: Request, session: Session = Depends(auth.action)
    ) -> Response:
        form = await request.form()
        try:
            person = {
                "name": _clean(form.get("name"), "reg.name", required=True, max_len=60),
                "phone": _clean(form.get("phone"), "reg.phone", required=True, max_len=20),
                "id_number": _clean(form.get("id_number"), "reg.id_number", max_len=32) or None,
                "unit": _clean(form.get("unit"), "reg.unit", required=True, max_len=40),
                "note": _clean(form.get("reason"), "reg.reason", required=True),
            }
            if not any(ch.isdigit() for ch in person["phone"]):
                raise BadInput("err.phone")
            temp_c = _number(form.get("temp_c"), "reg.temp", required=True)
            direction = direction_of(form)
            decision = _choice(form.get("decision"), "reg.decision", ("pass", "deny"), "pass")
            # The engine checks the reading (plausible, and no pass with a fever).
            engine_manual(
                decision=decision,
                operator=session.name,
                reason=person["note"],
                direction=direction,
                person={k: v for k, v in person.items() if v is not None},
                kind="registration",
                temp_c=temp_c,
            )
        except BadInput as exc:
            return fail(request, "/guard/register", exc)
        await audit(session, "register_person", {"direction": direction, "decision": decision})
        return done(request, "/guard/register")

    @r.post("/register/vehicle", include_in_schema=False)
    async def register_vehicle(
        request: Request, session: Session = Depends(auth.action)
    ) -> Response:
        form = await request.form()
        try:
            plate = _clean(form.get("plate"), "reg.plate", required=True, max_len=16).upper()
            person = {
                "plate": plate,
                "driver": _clean(form.get("driver"), "reg.driver", required=True, max_len=60),
                "occupants": _int(form.get("occupants"), "reg.occupants", 0, 60, 0),
                "note": _clean(form.get("reason"), "reg.reason", required=True),
            }
            direction = direction_of(form)
            decision = _choice(form.get("decision"), "reg.decision", ("pass", "deny"), "pass")
            engine_manual(
                decision=decision,
                operator=session.name,
                reason=person["note"],
                direction=direction,
                person=person,
                kind="vehicle",
            )
        except BadInput as exc:
            return fail(request, "/guard/register", exc)
        await audit(session, "register_vehicle", {"direction": direction, "decision": decision})
        return done(request, "/guard/register")

    # --- passes ----------------------------------------------------------------------------

    @r.get("/passes", response_class=HTMLResponse, include_in_schema=False)
    def passes_page(request: Request, session: Session = Depends(auth.page)) -> Response:
        return render(
            request,
            "guard_passes.html",
            session,
            can_issue=core.issuer_key is not None,
            roles=ROLES,
            issued=None,
            **flash(request),
        )

    @r.post("/passes", response_class=HTMLResponse, include_in_schema=False)
    async def issue(request: Request, session: Session = Depends(auth.action)) -> Response:
        form = await request.form()
        key = core.issuer_key  # None: no issuer key on this kiosk (the secret is not set)
        if key is None:
            return fail(request, "/guard/passes", BadInput("err.no_key"))
        try:
            household = _clean(form.get("household"), "pass.household", required=True, max_len=40)
            holder = _clean(form.get("holder"), "pass.holder", required=True, max_len=60)
            role = _choice(form.get("role"), "pass.role", ROLES, "visitor")
            days = _float(form.get("days"), "pass.days", 0.05, 366, required=True)
        except BadInput as exc:
            return fail(request, "/guard/passes", exc)
        from kiosk.passes import issue_pass

        try:
            payload, pass_ = issue_pass(
                key,
                household,
                holder,
                role=role,
                days=days or 1,
                now=core.clock.now(),
                flags=("gate_issued",),
            )
        except ValueError as exc:  # kiosk.passes says what cannot go on a pass
            return fail(request, "/guard/passes", str(exc))
        await audit(
            session,
            "pass_issued",
            {"pass_id": pass_.pass_id, "role": role, "valid_until": pass_.valid_until.isoformat()},
        )
        lang = lang_for(request)
        return render(
            request,
            "guard_passes.html",
            session,
            can_issue=True,
            roles=ROLES,
            issued={
                "card": card_svg(payload, pass_, lang, cfg.site.site_name, tz),
                "payload": payload,
                "holder": pass_.holder,
                "household": pass_.household,
                "role": pass_.role,
                "pass_id": pass_.pass_id,
                "valid_until": _local(pass_.valid_until.isoformat(), tz, "%Y-%m-%d %H:%M"),
            },
            flash_ok=i18n.t(lang, "pass.issued"),
            flash_err=None,
        )

    # --- lists -----------------------------------------------------------------------------

    @r.get("/lists", response_class=HTMLResponse, include_in_schema=False)
    def lists_page(request: Request, session: Session = Depends(auth.page)) -> Response:
        lang = lang_for(request)
        fresh = core.lists.current.freshness
        freshness = None
        if fresh.updated_at is not None:
            freshness = i18n.t(
                lang,
                "lists.freshness",
                when=_local(fresh.updated_at.isoformat(), tz, "%Y-%m-%d %H:%M"),
                source=fresh.source,
            )
        return render(
            request,
            "guard_lists.html",
            session,
            lists=lists_view(core.store.reader(), tz),
            freshness=freshness,
            stale=lists_stale_hours(core),
            today=core.clock.now().astimezone(tz).date().isoformat(),
            **flash(request),
        )

    @r.post("/lists/{which}/{op}", include_in_schema=False)
    async def edit_list(
        which: str, op: str, request: Request, session: Session = Depends(auth.action)
    ) -> Response:
        form = await request.form()
        today = core.clock.now().astimezone(tz).date()
        try:
            method, kwargs = list_edit(which, op, form, today)
        except BadInput as exc:
            return fail(request, "/guard/lists", exc)
        try:
            # ListStore writes through the event log's writer and audits with the actor.
            await asyncio.to_thread(method, core.lists, actor=session.name, **kwargs)
        except ValueError as exc:  # ListError: the store's own validation, in its words
            return fail(request, "/guard/lists", str(exc)[:300])
        return done(request, "/guard/lists")

    # --- statistics and export ----------------------------------------------------------------

    @r.get("/stats", response_class=HTMLResponse, include_in_schema=False)
    def stats_page(request: Request, session: Session = Depends(auth.page)) -> Response:
        lang = lang_for(request)
        try:
            day = _day(request.query_params.get("day"), core.clock.now().astimezone(tz).date())
        except BadInput as exc:
            raise HTTPException(400, str(exc)) from None
        report = daily(day)
        return render(
            request,
            "guard_stats.html",
            session,
            day=day.isoformat(),
            report=report,
            cards=stats_cards(report),
            fever_times=report.get("fever_alarms", {}).get("times", []),
            directions={
                i18n.t(lang, f"dir.{d}"): n
                for d, n in report.get("by_direction", {}).items()
                if d in ("in", "out")
            },
            charts=stats_charts(report, lang, fever_c),
        )

    @r.get("/export.csv", include_in_schema=False)
    def export_csv(request: Request, session: Session = Depends(auth.page)) -> Response:
        try:
            day = _day(request.query_params.get("day"), core.clock.now().astimezone(tz).date())
        except BadInput as exc:
            raise HTTPException(400, str(exc)) from None
        from kiosk.stats import day_bounds

        start, end = day_bounds(day, tz)
        rows = list(
            core.store.reader().query(
                "select * from events where ts >= ? and ts < ? order by seq", [start, end]
            )
        )
        clear = clear_fields(session, cfg.web.mask_personal)
        core.store.audit(session.name, "export_csv", {"day": day.isoformat(), "rows": len(rows)})
        return Response(
            events_csv(rows, clear),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{cfg.site.kiosk_id}-{day}.csv"',
                "Cache-Control": "no-store",
            },
        )

    def daily(day: date) -> dict:
        from kiosk.stats import daily_report

        return daily_report(
            core.store.reader(), day, tz, cfg.policy.quota, core.lists.current.freshness
        )

    # --- health and calibration ---------------------------------------------------------------

    @r.get("/health", response_class=HTMLResponse, include_in_schema=False)
    def health_page(request: Request, session: Session = Depends(auth.page)) -> Response:
        lang = lang_for(request)
        report = dict(health_report(core))
        last = recent_events(core, 1)
        report["last_event"] = last[0]["ts"] if last else None
        return render(
            request,
            "guard_health.html",
            session,
            deciding=report.get("deciding"),
            rows=health_rows(report, lang, tz),
        )

    @r.get("/api/health", summary="Device health for the guard console")
    def api_health(request: Request, session: Session = Depends(auth.api)) -> dict:
        report = health_report(core)
        return {
            "deciding": report.get("deciding"),
            "rows": health_rows(report, lang_for(request), tz),
        }

    @r.get("/calibration", response_class=HTMLResponse, include_in_schema=False)
    def calibration_page(request: Request, session: Session = Depends(auth.page)) -> Response:
        from kiosk.calibration import Calibration, CalibrationError, default_path

        try:
            cal = Calibration.load(default_path(core.data_dir))
            problem = None
        except CalibrationError as exc:
            cal, problem = Calibration(), str(exc)
        residuals = cal.residuals()
        points = [
            {
                "n": i + 1,
                "when": _local(p.recorded_at, tz, "%Y-%m-%d %H:%M"),
                "clinical": f"{p.clinical_c:.1f}",
                "object": f"{p.object_c:.1f}",
                "ambient": f"{p.ambient_c:.1f}",
                "residual": f"{residuals[i]:+.2f}",
                "source": p.source,
            }
            for i, p in enumerate(cal.points)
        ][-20:]
        return render(
            request,
            "guard_calibration.html",
            session,
            points=list(reversed(points)),
            model=cal,
            problem=problem,
            last=last_measured(core),
            **flash(request),
        )

    @r.post("/calibration", include_in_schema=False)
    async def calibration_add(
        request: Request, session: Session = Depends(auth.action)
    ) -> Response:
        from kiosk.calibration import CalibrationError, default_path, record_clinical_pair

        form = await request.form()
        try:
            clinical = _float(form.get("clinical_c"), "cal.reference", 34.0, 43.0, required=True)
            obj = _float(form.get("object_c"), "cal.object", 25.0, 43.0, required=True)
            ambient = _float(form.get("ambient_c"), "cal.ambient", -20.0, 50.0, required=True)
        except BadInput as exc:
            return fail(request, "/guard/calibration", exc)
        try:
            await asyncio.to_thread(
                record_clinical_pair,
                default_path(core.data_dir),
                clinical,
                obj,
                ambient,
                now=core.clock.now(),
                source="guard",
            )
        except CalibrationError as exc:
            return fail(request, "/guard/calibration", str(exc)[:300])
        await audit(
            session,
            "calibration_point",
            {"clinical_c": clinical, "object_c": obj, "ambient_c": ambient},
        )
        return done(request, "/guard/calibration", "cal.saved")

    return r


# --- pieces used by the routes (plain functions, tested directly) -----------------------------


def _safe_next(target: str | None) -> str:
    """Only local guard paths: never an open redirect."""
    if (
        target
        and target.startswith("/guard")
        and not target.startswith("//")
        and "\\" not in target
    ):
        return target
    return "/guard"


def _directions(cfg: Any) -> tuple[str, ...]:
    return ("in", "out") if cfg.site.direction == "both" else (cfg.site.direction,)


def _day(text: str | None, default: date) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadInput("err.date", field="stats.day") from None


ListEdit = Callable[..., Lists]


def list_edit(which: str, op: str, form: Any, today: date) -> tuple[ListEdit, dict]:
    """The ``ListStore`` method (unbound) and its arguments (besides the store and ``actor``)
    for a list form."""
    if which == "quarantine" and op == "add":
        household = _clean(form.get("household"), "pass.household", required=True, max_len=64)
        holder = _clean(form.get("holder"), "pass.holder", max_len=64) or None
        start = _date_field(form.get("from"), "lists.from") or today
        until = _date_field(form.get("until"), "lists.until")
        if until is None:
            raise BadInput("err.required", field="lists.until")
        note = _clean(form.get("note"), "lists.note")
        return ListStore.add_quarantine, {
            "household": household,
            "holder": holder,
            "from_date": start,
            "until_date": until,
            "note": note,
        }
    if which == "quarantine" and op == "remove":
        entry = _int(form.get("id"), "lists.quarantine", 1, 2**62, None)
        if entry is None:
            raise BadInput("err.required", field="lists.quarantine")
        return ListStore.remove_quarantine, {"entry_id": entry}
    if which == "revocations" and op == "add":
        pass_id = _clean(form.get("pass_id"), "lists.pass_id", required=True, max_len=64)
        return ListStore.revoke, {
            "pass_id": pass_id,
            "reason": _clean(form.get("note"), "lists.note"),
        }
    if which == "revocations" and op == "remove":
        pass_id = _clean(form.get("pass_id"), "lists.pass_id", required=True, max_len=64)
        return ListStore.unrevoke, {"pass_id": pass_id}
    if which == "households" and op == "add":
        household = _clean(form.get("household"), "pass.household", required=True, max_len=64)
        return ListStore.set_household, {
            "household": household,
            "residents": _int(form.get("residents"), "lists.residents", 0, 100, None),
            "observation_until": _date_field(form.get("observation_until"), "lists.observation"),
            "note": _clean(form.get("note"), "lists.note"),
        }
    if which == "households" and op == "remove":
        household = _clean(form.get("household"), "pass.household", required=True, max_len=64)
        return ListStore.remove_household, {"household": household}
    raise BadInput("err.choice", field="lists.title", options="quarantine, revocations, households")


def _date_field(value: Any, field: str) -> date | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadInput("err.date", field=field) from None


def lists_view(db: Any, tz: ZoneInfo) -> dict:
    """The three lists as stored, newest first, with who changed each row and when.

    Guards see households and names here: they must know whom they are editing. There are
    no phone or ID numbers in the lists."""

    def rows(table: str, order: str) -> list[dict]:
        out = []
        for row in db[table].rows_where(order_by=order, limit=500):
            for key in ("created_at", "revoked_at", "updated_at"):
                if row.get(key):
                    row[key] = _local(row[key], tz, "%Y-%m-%d %H:%M")
            out.append(row)
        return out

    return {
        "quarantine": rows("list_quarantine", "id desc"),
        "revocations": rows("list_revocations", "revoked_at desc"),
        "households": rows("list_households", "household"),
    }


def stats_cards(report: dict) -> dict:
    by = report.get("by_decision", {})
    return {
        "total": report.get("events", 0),
        "passes": by.get("pass", 0) + by.get("manual_pass", 0),
        "denies": by.get("deny", 0) + by.get("manual_deny", 0),
        "manual": by.get("manual_pass", 0) + by.get("manual_deny", 0),
        "fevers": report.get("fever_alarms", {}).get("count", 0),
    }


def stats_charts(report: dict, lang: str, fever_c: float) -> dict:
    """The statistics page's SVG charts, drawn from the daily report."""
    _ = i18n.translator(lang)
    hours = report.get("by_hour") or [0] * 24
    per_hour = charts.bar_chart(
        [charts.Bar(f"{h:02d}", n, "pass") for h, n in enumerate(hours)],
        title=_("stats.per_hour"),
        empty_text=_("stats.no_data"),
        label_every=3,
    )
    # Denies only: "ok" and a guard's override are not reasons anybody was stopped.
    reasons = [
        (code, n)
        for code, n in report.get("by_reason", {}).items()
        if code not in ("ok", "guard_override") and n
    ]
    reasons.sort(key=lambda kv: -kv[1])
    by_reason = charts.bar_chart(
        [charts.Bar(i18n.reason_text(lang, c), n, "deny") for c, n in reasons[:8]],
        title=_("stats.by_reason"),
        empty_text=_("stats.no_data"),
        height=260,
    )
    bins = report.get("temperature_histogram") or []
    hist_bars = []
    for b in bins:
        lo, hi = b.get("from_c"), b.get("to_c")
        label = f"<{hi:.1f}" if lo is None else (f"≥{lo:.1f}" if hi is None else f"{lo:.1f}")
        tone = (
            "fever"
            if lo is not None and lo + 1e-9 >= fever_c - 0.5 and (hi is None or hi > fever_c)
            else "neutral"
        )
        hist_bars.append(charts.Bar(label, b.get("count", 0), tone))
    temp_hist = charts.bar_chart(
        hist_bars,
        title=_("stats.temp_hist"),
        empty_text=_("stats.no_data"),
        label_every=2 if len(hist_bars) > 10 else 1,
    )
    exits = report.get("exits_per_household") or {}
    histogram = exits.get("histogram") or {}
    quota = exits.get("quota_exits") if exits.get("quota_enabled") else None
    top = max([int(k) for k in histogram] + [quota or 0, 1])
    exit_bars = [
        charts.Bar(
            str(k), histogram.get(str(k), 0), "deny" if quota is not None and k > quota else "pass"
        )
        for k in range(1, top + 1)
    ]
    exits_chart = charts.bar_chart(
        exit_bars,
        title=_("stats.exits"),
        empty_text=_("stats.no_data"),
        height=220,
    )
    return {
        "per_hour": per_hour,
        "by_reason": by_reason,
        "temp_hist": temp_hist,
        "exits": exits_chart,
        "quota": quota,
        "over_quota": exits.get("over_quota_households", 0),
        "households": exits.get("households", 0),
    }


CSV_COLUMNS = (
    "seq",
    "id",
    "kiosk_id",
    "ts",
    "direction",
    "kind",
    "decision",
    "reasons",
    "temp_c",
    "temp_object_c",
    "temp_ambient_c",
    "latency_ms",
    "operator",
    "pass_id",
    "household",
    "holder",
    "person",
    "clock_synced",
    "hash",
)


def events_csv(rows: list[dict], clear: frozenset[str]) -> str:
    """A day's events as CSV, personal fields masked as the viewer's role requires."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        masked = privacy.mask_event(row, clear)
        person = masked.get("person")
        if isinstance(person, dict):
            person = json.dumps(person, ensure_ascii=False, sort_keys=True)
        values = []
        for col in CSV_COLUMNS:
            value = person if col == "person" else masked.get(col)
            text = "" if value is None else str(value)
            # A cell starting with = + - @ would run as a formula in a spreadsheet.
            if text[:1] in ("=", "+", "-", "@") and col not in (
                "temp_c",
                "temp_object_c",
                "temp_ambient_c",
                "latency_ms",
            ):
                text = "'" + text
            values.append(text)
        writer.writerow(values)
    return "\ufeff" + out.getvalue()  # BOM: Excel on a Chinese Windows opens UTF-8 correctly


def health_rows(report: dict, lang: str, tz: ZoneInfo) -> list[dict]:
    """Thermometer, readers, gate, store, clock, last event and disk space, in words, from a
    ``core.health()`` report plus ``last_event`` (the newest event's timestamp, or None)."""
    rows = []

    def add(label: str, state: str, detail: str = "") -> None:
        known = state in ("ok", "degraded", "fault", "absent")
        rows.append(
            {
                "device": label,
                "state": state if known else "unknown",
                "state_text": i18n.t(lang, f"health.{state if known else 'unknown'}"),
                "detail": detail,
            }
        )

    entries = device_entries(report)
    present = {key for key, _entry in entries}
    for key in ("thermometer", "gate", "store"):
        if key not in present:
            add(device_label(lang, key), "unknown")
    for key, entry in entries:
        add(device_label(lang, key), str(entry.get("state")), str(entry.get("detail") or ""))
    synced = (report.get("clock") or {}).get("synced")
    if synced is not None:
        add(
            device_label(lang, "clock"),
            "ok" if synced else "degraded",
            "" if synced else i18n.t(lang, "banner.clock_unsynced"),
        )
    last = report.get("last_event")
    add(
        device_label(lang, "last_event"),
        "ok" if last else "unknown",
        _local(str(last), tz, "%Y-%m-%d %H:%M:%S") if last else "",
    )
    free = report.get("disk_free_mb")
    if free is not None:
        add(device_label(lang, "disk"), "ok", i18n.t(lang, "health.free_mb", mb=int(free)))
    return rows


def last_measured(core: Core) -> dict | None:
    """The latest event with a kiosk reading: the pair the guard's clinical reading goes with."""
    rows = list(
        core.store.reader().query(
            "select seq, ts, temp_c, temp_object_c, temp_ambient_c from events "
            "where temp_object_c is not null and temp_ambient_c is not null "
            "order by seq desc limit 1"
        )
    )
    return rows[0] if rows else None


def card_svg(payload: str, pass_: Any, lang: str, site_name: str, tz: ZoneInfo) -> str:
    """The printable card (``kiosk.cards.render_card``, both languages) as inline SVG."""
    from kiosk.cards import render_card

    svg = render_card(pass_, payload, "svg", "both", site_name=site_name, tz=tz).decode("utf-8")
    return svg[svg.index("<svg") :]
