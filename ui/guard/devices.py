"""Device health in words (``/guard/health``, ``/guard/api/health``), and the evacuation:
the gate held open for everyone (``kiosk.evacuation``), started and ended here."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from kiosk import evacuation, queries
from kiosk.engine import NO_SUBJECT, Engine
from ui import i18n
from ui.auth import Session
from ui.guard import deps
from ui.guard.deps import ActionSession, ApiSession, GuardDep, PageSession, done, note, room
from ui.guard.display import health_rows
from ui.guard.forms import BadInput, choice, clean
from ui.guard.lists import confirm_first
from ui.views import health_report

router = room("/guard/health")

#: The evacuation times the console offers (minutes), up to ``evacuation.MAX_MIN``.
EVACUATION_MINUTES = tuple(str(m) for m in (5, 10, evacuation.DEFAULT_MIN, 30, evacuation.MAX_MIN))


@router.get("/health", response_class=HTMLResponse, include_in_schema=False)
def health_page(request: Request, session: PageSession, g: GuardDep) -> Response:
    report = dict(health_report(g.core))
    last = queries.recent_events(g.core.store, 1)
    report["last_event"] = last[0]["ts"] if last else None
    return g.render(
        request,
        "guard_health.html",
        session,
        deciding=report.get("deciding"),
        rows=health_rows(report, g.lang(request), g.tz),
        evacuation=evacuation_now(g),
        evacuation_seen=seen_of(g.core.runner.engine.evacuation),
        evacuation_causes=evacuation.CAUSES,
        evacuation_minutes=EVACUATION_MINUTES,
        evacuation_default=str(evacuation.DEFAULT_MIN),
        **g.flash(request),  # what became of an evacuation sent from here, refused or not
    )


def evacuation_now(g: deps.Guard) -> dict[str, object] | None:
    """The evacuation under way as the Devices page shows it (the screens' cause and seconds
    left, who started it and who last started it again), or None."""
    held = g.core.runner.engine.evacuation
    if held is None:
        return None
    now = g.core.clock.monotonic_ns()
    return {**held.view(now), "by": held.by, "again_by": held.again_by}


def seen_of(held: evacuation.Evacuation | None) -> str:
    """What the Devices page's evacuation forms carry as ``seen``: the ``version`` of the
    evacuation it showed under way, or ``none`` (``evacuation.version_of``). A start sent
    with another is asked again, an end refused."""
    return evacuation.version_of(held)


def _under_way_words(g: deps.Guard, held: evacuation.Evacuation) -> dict[str, Any]:
    """The evacuation under way as the console's sentences name it: its cause (an i18n key),
    who started it, the minutes left (rounded up, as the Devices page says them)."""
    left_s = cast(int, held.view(g.core.clock.monotonic_ns())["ends_in_s"])
    return {"cause": f"evac.cause.{held.cause}", "by": held.by, "minutes": (left_s + 59) // 60}


def _start_text(
    g: deps.Guard, lang: i18n.Lang, held: evacuation.Evacuation | None, cause: str
) -> str:
    """The confirmation step's words: the evacuation to start, or the one under way that a
    Yes keeps going (its cause, its guard, the minutes left), and the cause it has then
    (``cause`` chosen: the graver of the two, ``evacuation.graver``)."""
    if held is None:
        return i18n.t(lang, "evac.confirm")
    words = _under_way_words(g, held)
    then = evacuation.graver(held.cause, cause)
    becomes = i18n.t(
        lang,
        "evac.then_stays" if then == held.cause else "evac.then_becomes",
        cause=i18n.t(lang, f"evac.cause.{then}"),
    )
    return i18n.t(
        lang,
        "evac.confirm_under_way",
        **words | {"cause": i18n.t(lang, words["cause"]), "then": becomes},
    )


@router.get("/api/health", summary="Device health for the guard console")
def api_health(request: Request, session: ApiSession, g: GuardDep) -> dict[str, Any]:
    report = health_report(g.core)
    return {"deciding": report.get("deciding"), "rows": health_rows(report, g.lang(request), g.tz)}


@router.post("/evacuation", name="evacuation", include_in_schema=False)
@deps.once_per_form
async def evacuate(request: Request, session: ActionSession, g: GuardDep) -> Response:
    """The gate held open for everyone: the guard's manual pass flagged ``evacuation``, its
    row in its event's commit; the gate opens even when the storage refuses both."""
    form = await request.form()
    cause = choice(form.get("cause"), "evac.cause", evacuation.CAUSES)
    minutes = choice(form.get("minutes"), "evac.minutes", EVACUATION_MINUTES)
    # Nothing to type under a fire: the cause chosen is the record's reason.
    reason = clean(form.get("reason"), "manual.reason") or f"evacuation: {cause}"
    held = g.core.runner.engine.evacuation
    seen = seen_of(held)
    # One tap must not hold the gate open: asked first, and asked again when what is under
    # way is not what the step said (a page drawn before another tablet's start).
    if form.get("confirm") != "yes" or form.get("seen") != seen:
        return _asked_to_start(request, g, session, form, held, cause)
    note(request, action="evacuation", cause=cause, minutes=int(minutes))
    if held is not None:  # a second start: the one under way goes on (evacuation.held_open),
        note(request, under_way=held.cause)  # for the graver cause
    try:
        outcome = await g.manual(
            request,
            decision="pass",
            operator=session.name,
            reason=reason,
            direction=g.cfg.site.assumed_way(),
            subject=NO_SUBJECT,
            evacuate=(cause, int(minutes)),
            seen=seen,  # looked at again as the engine starts it
        )
    except evacuation.Moved as moved:  # another tablet's start went first: asked again
        return _asked_to_start(request, g, session, form, moved.under_way, cause)
    return deps.decided(request, "/guard/health", outcome)


def _asked_to_start(
    request: Request, g: deps.Guard, session: Session, form: FormData,
    held: evacuation.Evacuation | None, cause: str,
) -> HTMLResponse:  # fmt: skip
    """The start's confirmation step, naming what is under way (``held``), its form carrying
    that as ``seen``: nothing is started until the guard says Yes to what it shows."""
    text = _start_text(g, g.lang(request), held, cause)
    return confirm_first(
        request, g, session, "/guard/evacuation", form, text, seen=seen_of(held),
        back="/guard/health",
    )  # fmt: skip


@router.post("/evacuation/end", name="evacuation_end", include_in_schema=False)
@deps.once_per_form
async def end_evacuation(request: Request, session: ActionSession, g: GuardDep) -> Response:
    """The evacuation over by the guard's word: its row first, then the gate locks. Only the
    one the guard's page showed (``seen``, its ``version``): a page drawn before another one
    started ends nothing; one drawn before this one was started again (held open longer,
    made graver) asks again, saying so. Ended once: the end is claimed as its row is
    written, and another guard's end of it meanwhile or after is told who ended it
    (``evac.ending``, ``evac.ended``) and writes no end."""
    form = await request.form()
    seen = form.get("seen")
    note(request, action="evacuation_end")
    held = _still_shown(g, seen)
    if seen != held.version:  # the same one, started again since: said, and asked again
        text = _moved(g, held, "evac.end_it").text(g.lang(request))
        return confirm_first(
            request,
            g,
            session,
            "/guard/evacuation/end",
            form,
            text,
            seen=held.version,
            back="/guard/health",
        )
    note(request, cause=held.cause)
    engine = g.core.runner.engine
    claim = _claimed(engine, held.version, session.name)
    try:
        await asyncio.to_thread(deps.write_row_first, request)
        now = _still_shown(g, seen, claim)
        if now.version != seen:  # started again while the row was written: nothing ends
            raise _moved(g, now, "evac.nothing_ended")
        engine.end_evacuation(now.version, claim)
    finally:
        engine.release_end(claim)  # nothing ended by it: given up (an end stands)
    return done(request, "/guard/health")


def _claimed(engine: Engine, seen: str, by: str) -> evacuation.Ending:
    """The guard's end of the evacuation ``seen``, claimed before its row is written."""
    try:
        return engine.claim_end(seen, by)
    except evacuation.AlreadyEnded as ended:
        raise _ended(ended.ending) from None


def _ended(ending: evacuation.Ending) -> BadInput:
    """Another guard's end of it (``ending``): under way, its row being written, or done."""
    return BadInput("evac.ending" if ending.at_ns is None else "evac.ended", by=ending.by)


def _still_shown(
    g: deps.Guard, seen: object, mine: evacuation.Ending | None = None
) -> evacuation.Evacuation:
    """The evacuation under way if it is the one the page showed (``seen``: the same one,
    perhaps started again since), else ``BadInput`` saying none is, or which one is
    (``evac.changed``), or who ended it (an end of it other than ``mine``: ``_ended``)."""
    engine = g.core.runner.engine
    held, taken = engine.evacuation, engine.end_taken(seen, mine)
    if taken is not None:
        raise _ended(taken)
    if held is None:
        raise BadInput("evac.none")
    if not held.same_as(seen):
        raise BadInput("evac.changed", **_under_way_words(g, held), then="evac.nothing_ended")
    return held


def _moved(g: deps.Guard, held: evacuation.Evacuation, then: str) -> BadInput:
    """The evacuation under way started again since the guard's page was drawn (by whom, its
    cause, the minutes left), and ``then`` (an i18n key): whether to end it now, or that
    nothing was ended."""
    return BadInput("evac.moved", **_under_way_words(g, held), again=held.again_by, then=then)
