"""Sign-in and sign-out (``/guard/login``, ``/guard/logout``)."""

from __future__ import annotations

import asyncio
import functools
import logging
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kiosk.accounts import NAME_RE
from kiosk.store import StoreFault
from ui import i18n
from ui.auth import (
    CSRF_FIELD,
    RESUME_TTL_S,
    Lapsed,
    Resume,
    Session,
    client_addr,
    same_origin,
    set_private_cookie,
)
from ui.guard import deps
from ui.guard.community import common as community_words
from ui.guard.deps import (
    ActionSession,
    Guard,
    GuardDep,
    note,
    remember_lang,
    room,
    served_while_stopping,
)
from ui.guard.display import shown_time
from ui.guard.forms import BadInput, safe_next
from ui.guard.live import roster_ended, whom_drawn
from ui.views import secure_headers

log = logging.getLogger(__name__)
router = room("/guard")

#: The sign-out's "You are signed out" note: a one-time cookie the sign-out sets for the
#: sign-in page (``BYE_PATH``), never a parameter of its address (a link could show it).
BYE_COOKIE = "kiosk_bye"
BYE_PATH = "/guard/login"


def login_form(
    request: Request,
    g: Guard,
    lang: str,
    error: str | None,
    status: int = 200,
    resume: str | None = None,
    ended: str | None = None,
) -> Response:
    resume = resume or request.query_params.get("resume")
    sessions = g.auth.sessions
    left_s = sessions.resume_left_s(resume)
    lapsed = None if left_s else sessions.lapsed_resume(resume)
    response = g.tpl.TemplateResponse(
        request,
        "login.html",
        {
            "lang": lang,
            "_": i18n.translator(lang),
            "site_name": g.cfg.site.site_name,
            "form_token": g.auth.sessions.login_form_token(),
            "next": safe_next(request.query_params.get("next")),
            "error": error,
            "other_lang": "en" if lang == "zh-CN" else "zh-CN",
            "logged_out": request.cookies.get(BYE_COOKIE) == "1",
            "resume": resume if left_s else "",
            "resume_min": (left_s + 59) // 60,
            "lapsed": None if lapsed is None else lapsed_problem(lapsed).text(lang),
            "shift_removed": ended,
        },
        status_code=status,
    )
    response.headers["Cache-Control"] = "no-store"
    if BYE_COOKIE in request.cookies:  # said once
        response.delete_cookie(BYE_COOKIE, path=BYE_PATH)
    remember_lang(request, response)
    return secure_headers(response)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, g: GuardDep) -> Response:
    if g.auth.current(request) is not None:
        return RedirectResponse("/guard", status_code=303)
    lang = g.lang(request)
    # No words from the URL in the error banner: a link could ask a guard for the password.
    return login_form(request, g, lang, None, ended=shift_removed(g, request, lang))


def shift_removed(g: Guard, request: Request, lang: str) -> str | None:
    """Why the sign-in of this browser ended before its time, when the roster ended it: the
    shift it was signed in on, in the site's time, removed by whom and when (or changed);
    None otherwise (blocking: a database read)."""
    gone = g.auth.ended_by_roster(request)
    return None if gone is None else roster_ended(g, gone, lang)


@router.post("/login", name="guard_login", include_in_schema=False)
@served_while_stopping
async def login(request: Request, g: GuardDep) -> Response:
    lang = g.lang(request)
    if not same_origin(request):
        raise HTTPException(403, "cross-site request refused")
    addr = client_addr(request)
    if g.auth.limiter.retry_after_s(addr):
        return limited(request, g, lang, addr)
    form = await request.form()
    if not g.auth.sessions.check_login_form_token(str(form.get(CSRF_FIELD) or "")):
        resume = str(form.get("resume") or "")
        return login_form(request, g, lang, i18n.t(lang, "login.expired"), 403, resume)
    name = str(form.get("name") or "").strip()
    password = str(form.get("password") or "")
    request.state.actor = actor = name if NAME_RE.match(name) else "-"  # bounded, for logs
    attempt = g.auth.limiter.begin(addr, actor)  # counted before the check: a burst is too
    if attempt is None:
        refused_row(request, g, addr)
        return limited(request, g, lang, addr)
    account = await asyncio.to_thread(g.auth.accounts.authenticate, name, password)
    if account is None:
        # The audit row's actor is never purged: a name that is no account (often the
        # password, typed into the wrong field) is not written, only "-".
        if await asyncio.to_thread(g.auth.accounts.get, name) is None:
            request.state.actor = "-"
        refused_row(request, g, addr)
        resume = str(form.get("resume") or "")
        return login_form(request, g, lang, i18n.t(lang, "login.failed"), 401, resume)
    g.auth.limiter.succeeded(addr, account.name, attempt)
    request.state.actor = account.name  # as the account spells it (ａｌｉｃｅ typed: alice)
    # The roster unreadable: a sign-in keeps the gate, but a guard barred stays out.
    read = functools.partial(deps.barred, g.core, account.name)
    removed = await asyncio.to_thread(g.auth.sign_in_bar, account, read)
    if removed is not None:  # not during it without an admin: said who removed it, and when
        note(request, refused="shift_removed")
        words = roster_ended(g, removed, lang, "login.shift_removed")
        return login_form(request, g, lang, words, 403, str(form.get("resume") or ""))
    note(request, role=account.role)
    held = False
    try:  # the row first: no session is handed over that is not on record...
        await asyncio.to_thread(deps.write_row_first, request)
    except StoreFault:  # ...or held in memory: the guard takes over a gate that cannot record
        held = hold_request_row(request, g)
        if not held:
            resume = str(form.get("resume") or "")
            return login_form(request, g, lang, i18n.t(lang, "err.store"), 400, resume)
    # Blocking: how long the session lasts is read from the roster.
    cookie, session = await asyncio.to_thread(g.auth.sessions.issue, account)
    resume = str(form.get("resume") or "")
    pending = g.auth.sessions.read_resume(resume)
    lapsed = g.auth.sessions.lapsed_resume(resume, account.name)
    if pending is not None and pending.name == account.name:  # only the guard who made it
        g.auth.sessions.take_resume(resume)  # offered once
        response: Response = await resume_page(request, g, session, pending)
    elif lapsed is not None:  # too late: said, never dropped without a word
        response = deps.fail(
            request,
            safe_next(str(form.get("next") or "")),
            lapsed_problem(lapsed),
            session=session,
        )
    elif held:  # said on the console: signed in, and why the sign-in is not on disk yet
        response = deps.fail(
            request,
            safe_next(str(form.get("next") or "")),
            BadInput("login.held"),
            session=session,
        )
    else:
        response = RedirectResponse(safe_next(str(form.get("next") or "")), status_code=303)
    g.auth.set_cookie(response, request, cookie, session)
    remember_lang(request, response)
    return response


def refused_row(request: Request, g: Guard, addr: str) -> None:
    """A refused sign-in's own audit row, while the LAN's refusals this minute are within
    ``ui.auth.REFUSED_ROWS_PER_MIN``; past it the refusal is only counted (no actor: the route
    class writes no row), and one row for the minute says how many (``deps.flush_held``)."""
    if not g.auth.refused_rows.refused(addr):
        request.state.actor = None


def hold_request_row(request: Request, g: Guard) -> bool:
    """A sign-in (or sign-out) whose row the storage cannot take (a full or read-only card)
    goes ahead with the row held in memory (``Guard.held``): written, with its moment, once
    the storage works again; a restart before then loses it (logged). That outage is when the
    guard must take the gate over by hand (the kiosk denies everyone), and the password was
    checked all the same. False when no more rows can be held: the sign-in is refused."""
    actor, action, detail = deps.request_row(request)
    if not g.held.hold(actor, action, detail, g.core.clock.now(), essential=True):
        return False
    request.state.request_audit.written.append((actor, action, detail))  # no second try
    return True


def limited(request: Request, g: Guard, lang: str, addr: str) -> Response:
    """The sign-in form saying how long ``addr`` waits (429, ``Retry-After``)."""
    wait = max(1, g.auth.limiter.retry_after_s(addr))
    response = login_form(request, g, lang, i18n.t(lang, "login.limited", s=wait), 429)
    response.headers["Retry-After"] = str(wait)
    return response


def lapsed_problem(lapsed: Lapsed) -> BadInput:
    """What the guard is told of their cut-off action no longer kept: which one, that it was
    not completed, why, and to enter it again."""
    action = f"session.act.{lapsed.action}"
    key = "session.resume_expired" if lapsed.expired else "session.resume_lost"
    return BadInput(
        key, action=action if i18n.has(action) else "session.act.other", m=RESUME_TTL_S // 60
    )


#: Actions on the gate: after signing in again they wait for the guard's click, saying what
#: to check first (the person may have gone; the emergency may be over, or still on); every
#: other cut-off action completes by itself. A decision to deny opens nothing: it completes.
WAIT_FOR_CLICK = {
    "/guard/manual": "session.resume_click",
    "/guard/register/person": "session.resume_click",
    "/guard/register/vehicle": "session.resume_click",
    "/guard/evacuation": "session.resume_click_evacuation",
    "/guard/evacuation/end": "session.resume_click_evacuation_end",
}


#: What the page offering a cut-off action again calls each field its form posted: the
#: form's own label (an i18n key, or ``c:`` and a word of the community pages,
#: ``ui.guard.community.common.TEXT``) and, for a field whose value is a code, the prefix of
#: its value's words (the value as typed otherwise). The console's forms by default; where a
#: route's field means another thing, by the route's name. ``tests/test_guard_session.py``
#: walks every form of the console for a field without them.
Said = tuple[str, str | None]
#: A ``Said``'s words for a value that is a stored time: said as its page showed it, in the
#: site's time (``community.common.site_time``).
SITE_TIME = "site_time"
FIELD_WORDS: dict[str, Said] = {
    "household": ("pass.household", None), "holder": ("pass.holder", None),
    "from": ("lists.from", None), "until": ("lists.until", None), "note": ("lists.note", None),
    "pass_id": ("lists.pass_id", None), "residents": ("lists.residents", None),
    "observation_until": ("lists.observation", None), "role": ("pass.role", "pass.role."),
    "days": ("pass.days", None), "start": ("pass.start", None), "name": ("reg.name", None),
    "phone": ("reg.phone", None), "id_number": ("reg.id_number", None),
    "unit": ("reg.unit", None), "reason": ("lists.reason", None), "temp_c": ("reg.temp", None),
    "direction": ("manual.direction", "dir."), "decision": ("reg.decision", "manual."),
    "plate": ("reg.plate", None), "driver": ("reg.driver", None),
    "driver_temp": ("reg.driver_temp", None), "resident": ("reg.resident", "session.box."),
    "quarantine_reason": ("reg.quarantine_reason", None),
    "quota_reason": ("reg.quota_reason", None),
    "observation_reason": ("reg.observation_reason", None),
    "clinical_c": ("cal.reference", None), "object_c": ("cal.object", None),
    "ambient_c": ("cal.ambient", None), "resolution": ("live.resolution", "resolution."),
    "cause": ("evac.cause", "evac.cause."), "minutes": ("evac.minutes", None),
}  # fmt: skip
_COMMUNITY: dict[str, Said] = {
    k: (f"c:{k}", None)
    for k in ("name", "household", "phone", "origin", "date_back", "until", "days", "note",
              "guard", "starts", "ends", "incoming", "day")
}  # fmt: skip
_PERSON: dict[str, Said] = {
    k: (f"people.key.{k}", None)
    for k in ("pass_id", "household", "name", "phone", "plate", "returnee")
}
ROUTE_WORDS: dict[str, dict[str, Said]] = {
    "register_person": {"reason": ("reg.reason", None)},
    "register_vehicle": {"reason": ("reg.reason", None)},
    "register_search": {"q": ("reg.find_hint", None)},
    "passes_search": {"q": ("pass.search_hint", None)},
    **dict.fromkeys(
        ("returnee_register", "returnee_correct", "shift_add", "handover_open"), _COMMUNITY
    ),
    "returnee_change": {**_COMMUNITY, "status": ("c:status", "c:s."), "kind": ("c:kind", "c:"),
                        "temp_c": ("c:temperature", None)},
    "service_open": {**_COMMUNITY, "kind": ("c:kind", "c:k.")},
    "person_show": _PERSON,
    "person_forget": {**_PERSON, "force": ("people.force", "session.box.")},
    "shift_remove": {"guard": ("c:guard", None), "starts_at": ("c:starts", SITE_TIME),
                     "ends_at": ("c:ends", SITE_TIME)},
}  # fmt: skip
#: The forms' own machinery, never said: their one-time and version tokens, a confirmation
#: given (``again``: which earlier record the guard said to record again), what a row was when
#: drawn, which alarm or row a button names, a file.
NOT_SAID = ("once", "confirm", "form", "copy_from", "off_map", "again", "record_deny", "seen",
            "was", "drawn", "shown", "token", "key", "only", "subject", "as", "id",
            "file")  # fmt: skip


def said(lang: str, key: str) -> str | None:
    """The words of ``key`` (an i18n key, or ``c:`` and a community page's word), if any."""
    if key.startswith("c:"):
        pair = community_words.TEXT.get(key[2:])
        return None if pair is None else pair[0 if lang == "zh-CN" else 1]
    return i18n.t(lang, key) if i18n.has(key) else None


def resume_facts(
    lang: str, action: str, fields: list[tuple[str, str]], tz: ZoneInfo
) -> list[tuple[str, str]]:
    """What a cut-off action's form held, field by field in the console's language: each by
    its form's label, a code by its words (``FIELD_WORDS``), a stored time in ``tz`` as its
    page showed it (``SITE_TIME``); the form's machinery is not said. A field without words
    is said by its name (a test fails on it)."""
    words = FIELD_WORDS | ROUTE_WORDS.get(action, {})
    facts = []
    for k, v in fields:
        if not v or k in NOT_SAID or k.startswith(("confirm_", "was_")):
            continue
        passenger = k[:1] == "p" and k[1:].split("_")[0].isdigit()
        label, values = words.get(k) or (
            ("reg.passenger_temp" if k.endswith("_temp") else "reg.passenger", None)
            if passenger else (k, None)
        )  # fmt: skip
        if values == SITE_TIME:
            value: str | None = shown_time(v, tz, community_words.SITE_MINUTES)
        else:
            value = said(lang, values + v) if values else None
        facts.append((said(lang, label) or k, value or v))
    return facts


async def resume_page(request: Request, g: Guard, session: Session, cut_off: Resume) -> Response:
    """The action cut off by the expired session, ready to complete under the new one. A
    manual decision says whom it is about as the live form did, and one about a passage
    that can no longer be decided is refused here, before the guard is asked to click."""
    path, fields = cut_off.path, cut_off.fields
    click = WAIT_FOR_CLICK.get(path)
    if ("decision", "deny") in fields and click == "session.resume_click":
        click = None
    lang, whom = g.lang(request), None
    if path == "/guard/manual":
        typed = dict(fields)
        value, decision = typed.get("subject", ""), typed.get("decision", "")
        try:
            whom = await asyncio.to_thread(whom_drawn, g, session, lang, value, decision)
        except BadInput as problem:
            return deps.fail(request, "/guard", problem, session=session)
    return g.render(
        request,
        "guard_resume.html",
        session,
        action=path,
        fields=fields,
        facts=resume_facts(lang, cut_off.action, fields, g.tz),
        click=click,
        whom=whom,
    )


@router.post("/logout", name="guard_logout", include_in_schema=False)
@served_while_stopping
async def logout(request: Request, session: ActionSession, g: GuardDep) -> Response:
    try:
        await asyncio.to_thread(g.auth.sessions.revoke, session)
    except StoreFault as exc:  # signed out here all the same; only a restart forgets it
        log.warning("sign-out not on record: storage failed (%s)", exc.detail or exc.reason)
    try:  # its row now, so the answer is never withheld: the tablet must show the sign-in
        await asyncio.to_thread(deps.write_row_first, request)
        request.state.request_audit.written.append(deps.request_row(request))
    except StoreFault:
        if not hold_request_row(request, g):  # signed out all the same
            log.warning("sign-out not on record: storage failed and no room to hold its row")
    response = RedirectResponse(BYE_PATH, status_code=303)
    g.auth.clear_cookie(response)
    set_private_cookie(
        response, request, BYE_COOKIE, "1", path=BYE_PATH, max_age=deps.FLASH_LIFETIME_S
    )
    return response
