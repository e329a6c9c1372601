"""The live page: feed, alarms and the kiosk's state (``/guard``), their JSON and SSE
(``/guard/api/feed``, ``/guard/events``), acknowledging an alarm and a manual decision."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, NamedTuple, NoReturn

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import FormData

from kiosk import privacy, queries
from kiosk.alarms import (
    ACK_ACTION,
    ALARMS_HEARD,
    PERSON_KINDS,
    RESOLUTIONS,
    Alarm,
    AlarmClosing,
    AlarmGrown,
    closed_detail,
)
from kiosk.clock import ClockReading
from kiosk.deadline import Abandoned, Busy, Stopped
from kiosk.engine import (
    NO_SUBJECT,
    ManualSubject,
    QuotaReached,
    unknown_person,
)
from kiosk.overrides import SubjectRefused
from kiosk.roster import ShiftGone
from kiosk.store import ReadFailure, StoreFault
from kiosk.subjects import subject_in_log
from kiosk.typed import typed as plain_spelling
from kiosk.typed import whole_number
from ui import i18n
from ui.auth import Session
from ui.guard import deps
from ui.guard.community import common as community_words
from ui.guard.deps import (
    ActionSession,
    ApiSession,
    DecisionHeld,
    Guard,
    GuardDep,
    PageSession,
    done,
    flush_held,
    note,
    room,
)
from ui.guard.display import event_time, feed_row, local_time, shown_time, vehicle_text
from ui.guard.forms import BadInput, choice, clean, direction_of, directions, number
from ui.guard.lists import confirm_first
from ui.guard.registrations import (
    ASKED_FROM_MANUAL,
    HOLDS,
    UNNAMED,
    confirm_key,
    confirmed_pass,
    decision_of,
    dwelling_asked,
    holds_asked,
    holds_on,
    household_choices,
    off_map,
    subject_holds,
)
from ui.views import (
    HEARTBEAT_S,
    ClosingStream,
    ScreenTracker,
    bus_messages,
    clock_ms,
    current_state,
    kiosk_view,
    on_duty_now,
    screen_settings,
    sse,
)

log = logging.getLogger(__name__)

router = room("/guard")

#: The rows a page is drawn with, and the most one read of the log takes.
FEED_ROWS = 50
#: The most rows the live page keeps (guard.js drops the oldest past it): a stream resuming
#: after a gap sends up to this many.
PAGE_ROWS = 200
#: The most alarms one request closes.
MAX_CLOSE = 200
#: The most cards' incidents a close reads (a page draws at most the board's ``keep``).
MAX_CARDS = 400
MAX_SEQ = 2**63 - 1
AFTER = Query(0, ge=0, le=MAX_SEQ, description="Only decisions with seq > after.")


def rows_of(
    g: Guard, events: list[dict[str, Any]], lang: str, clear: frozenset[str]
) -> list[dict[str, Any]]:
    """The feed's rows (the page's, its stream's and /guard/api/feed's alike): one of
    another local day than today's says its date; a guard's decision carrying the reading of
    a row the gate judged a fever is drawn as a fever, that row shown with it or not."""
    failed, fevers = g.not_let_through(events), g.fevers_decided(events)
    today = g.today()
    return [
        feed_row(
            e,
            lang,
            g.tz,
            clear,
            let_through=e.get("seq") not in failed,
            today=today,
            fevers=fevers,
        )  # fmt: skip
        for e in events
    ]


def dated(g: Guard, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``events`` with their dated times (``kiosk.queries.dated``: the rows given, never the
    log). Blocking: a database read."""
    return g.dated(events)


class Feed(NamedTuple):
    """The feed's rows after a ``seq`` (``new_events``)."""

    #: Dated, oldest first.
    events: list[dict[str, Any]]
    #: How many rows after ``after`` were left out (the page says so: reload).
    not_shown: int
    #: ``after`` is beyond the log's newest row: the log was restored from an older backup
    #: since the page drew its rows (the page says so: reload); ``events`` are its newest.
    restored: bool


def newest(g: Guard) -> list[dict[str, Any]]:
    """The newest ``FEED_ROWS`` rows, dated, oldest first. Blocking."""
    return dated(g, list(reversed(g.core.store.readable_recent(FEED_ROWS))))


def new_events(g: Guard, after: int) -> Feed:
    """The feed's rows after ``after``: every row after it, read ``FEED_ROWS`` at a time,
    up to ``PAGE_ROWS`` (the most the page keeps); a gap longer than that is the newest
    ``PAGE_ROWS`` and the count of those before them (the page says so: reload), never a
    silent hole. ``after`` 0 is no row shown yet: nothing left out (a page drawn on an empty
    log resumes from it); one beyond the log's newest row (a restore) is the newest
    ``FEED_ROWS``, ``restored``. Blocking."""
    store = g.core.store
    last = store.last_seq
    if after > last:
        return Feed(newest(g), 0, restored=True)
    since = max(after, last - PAGE_ROWS)
    events: list[dict[str, Any]] = []
    while since < last:
        page = store.readable_events(after_seq=since, limit=FEED_ROWS)
        events += page
        since = int(page[-1]["seq"]) if page else since + FEED_ROWS
    left_out = max(0, last - PAGE_ROWS - after) if after else 0
    return Feed(dated(g, events), left_out, restored=False)


def newest_passage(g: Guard, recent: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The kiosk's newest passage, dated: among the feed's ``recent`` rows, else from the
    log; none when a damaged page keeps it from being read (the alarms name those rows)."""
    found = next((e for e in recent if e.get("kind") == "passage"), None)
    if found is not None:
        return found
    try:
        last = queries.last_passage(g.core.store)
    except ReadFailure as exc:
        g.core.store.read_past(exc)
        return None
    return dated(g, [last])[0] if last else None


@router.get("", response_class=HTMLResponse, include_in_schema=False)
@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def live_page(request: Request, session: PageSession, g: GuardDep) -> Response:
    lang = g.lang(request)
    recent = dated(g, g.core.store.readable_recent(FEED_ROWS))
    rows = rows_of(g, recent, lang, g.clear(session))
    state = kiosk_mirror(g, current_state(g.core), None, lang)
    last = newest_passage(g, recent)
    return g.render(
        request,
        "guard_live.html",
        session,
        rows=rows,
        alarms=g.alarm_rows(lang, g.clear(session)),
        resolutions=RESOLUTIONS,
        state=state,
        last_seq=max((row["seq"] or 0 for row in rows), default=0),
        subject=rows_of(g, [last], lang, g.clear(session))[0] if last else None,
        directions=directions(g.cfg.site.direction),
        households=household_choices(g, g.clear(session)),
        beat_s=HEARTBEAT_S,
        today=g.today().isoformat(),
        now_ms=clock_ms(g.core),
        timezone=g.cfg.site.timezone,
        **g.flash(request),
    )


def kiosk_mirror(
    g: Guard, state: dict[str, Any], decision: dict[str, Any] | None, lang: str
) -> dict[str, Any]:
    """The kiosk's screen as it shows it now, for the console's "now" box: with no guard on
    duty, the number it gives (``policy.hours.call``) where it would name the guard."""
    return kiosk_view(state, decision, lang, **screen_settings(g.cfg), on_duty=on_duty_now(g.core))


def seq_of(text: str) -> int:
    """The log's ``seq`` a link names (ASCII digits, 1 to ``MAX_SEQ``), else 0 (none): read
    no further than the longest a ``seq`` can be."""
    number = whole_number(text, most_digits=len(str(MAX_SEQ)))
    return number if number is not None and 1 <= number <= MAX_SEQ else 0


@router.get("/passage/{seq}", response_class=HTMLResponse, include_in_schema=False)
def passage_page(request: Request, session: PageSession, g: GuardDep, seq: str) -> Response:
    """One passage, as an alarm links to it (masked for the viewer's role). One missing, or
    a link that names none, is a page in the guard's language, never a JSON error."""
    number = seq_of(seq)
    event = queries.event_by_seq(g.core.store, number) if number else None
    if event is None:
        lang = g.lang(request)
        gone = i18n.t(lang, "err.no_passage")
        return g.render(
            request, "guard_passage.html", session, row=None, flash_err=gone, status_code=404
        )
    clear, lang, event = g.clear(session), g.lang(request), dated(g, [event])[0]
    masked = privacy.mask_event(event, clear)
    return g.render(
        request,
        "guard_passage.html",
        session,
        row=rows_of(g, [event], lang, clear)[0],
        when=event_time(event, lang, g.tz, "%Y-%m-%d %H:%M:%S"),
        # What the clock said, beside the time its boot's clock dates it to.
        stamped=local_time(event.get("ts"), g.tz, "%Y-%m-%d %H:%M:%S")
        if event["dating"] == "boot"
        else None,
        household=masked.get("household"),
        vehicle=vehicle_text(event, clear),
    )


@router.get("/rows/{seq}", response_class=HTMLResponse, include_in_schema=False)
def rows_page(request: Request, session: PageSession, g: GuardDep, seq: str) -> Response:
    """The log's rows from ``seq`` on, ``FEED_ROWS`` of them, oldest first (masked for the
    viewer's role), and the link to the next ones: where the live page's notice of rows it
    did not show takes the guard (the first of them). A link that names no ``seq`` is a page
    in the guard's language (400), never a JSON error."""
    first = seq_of(seq)
    lang = g.lang(request)
    if not first:
        problem = i18n.t(lang, "err.no_seq")
        return g.render(
            request, "guard_rows.html", session, rows=[], first=None, flash_err=problem,
            status_code=400,
        )  # fmt: skip
    events = dated(g, g.core.store.readable_events(after_seq=first - 1, limit=FEED_ROWS))
    # After the last row shown (or the stretch read, every row of it unreadable).
    after = int(events[-1]["seq"]) + 1 if events else first + FEED_ROWS
    return g.render(
        request, "guard_rows.html", session, first=first,
        rows=rows_of(g, events, lang, g.clear(session)),
        next_seq=after if after <= g.core.store.last_seq else None,
    )  # fmt: skip


@router.get("/api/feed", summary="Guard feed: newest decisions, masked for the viewer's role")
def api_feed(
    request: Request, response: Response, session: ApiSession, g: GuardDep, after: int = AFTER
) -> dict[str, Any]:
    response.headers["Cache-Control"] = "no-store"  # names and dwellings, as every guard page
    lang = g.lang(request)
    feed = new_events(g, after) if after else Feed(newest(g), 0, restored=False)
    return {
        "rows": rows_of(g, list(reversed(feed.events)), lang, g.clear(session)),
        "not_shown": feed.not_shown,
        "restored": feed.restored,
        "alarms": g.alarm_rows(lang, g.clear(session)),
    }


@router.get(
    "/api/households",
    summary="The dwellings the manual form offers, for the viewer's role (the page's datalist)",
)
def api_households(request: Request, session: ApiSession, g: GuardDep) -> Response:
    """The manual form's dwellings (``household_choices``), fetched by the live page once per
    list (20,000 dwellings are ~0.5 MB: no longer inline in every load of the page).
    Personal data: the browser's own cache only (``private``), asked again at each use
    (``no-cache``) and answered 304 while its ``ETag`` (the list's digest, built once per map
    and lists in force) still holds."""
    choices = household_choices(g, g.clear(session))
    etag = f'"{choices.etag}"'
    headers = {"Cache-Control": "private, no-cache", "ETag": etag}
    asked = request.headers.get("if-none-match", "")
    if etag in (tag.strip().removeprefix("W/") for tag in asked.split(",")):
        return Response(status_code=304, headers=headers)
    body = {"offered": list(choices.offered), "left_out": choices.left_out}
    return JSONResponse(body, headers=headers)


#: The bus message a console's close of alarms publishes (``keys``): every live stream
#: draws the alarms again.
ALARMS_CLOSED = "alarms_closed"


#: What ``FeedStream.expired`` says of a session the roster lengthened at its end: the stream
#: closes without a word, and the page's browser opens it again with the longer cookie that
#: request is given (``ui.auth.GuardAuth.current``).
REOPEN = "\x00reopen"


class FeedStream:
    """One guard's live stream: new rows since ``after``, alarms, the kiosk's state."""

    def __init__(
        self, g: Guard, session: Session, lang: str, after: int, signed: Session | None = None
    ) -> None:
        self.g, self.session, self.lang, self.after = g, session, lang, after
        #: The session as it began, to the end it was signed in for (``GuardAuth.as_signed``):
        #: what the roster bars (``expired``'s words), and what is read again at a shortened
        #: end (``session`` is shortened when a removal ends it sooner).
        self.signed = session if signed is None else signed
        self.clear = g.clear(session)
        self.ends_ns: int | None = None
        #: The alarm cards this stream last drew (``alarms``).
        self.drawn: list[dict[str, Any]] | None = None
        #: The time left of the session the roster lengthened at its end (``REOPEN``).
        self.longer_left_s: int | None = None

    def shift_ends_ns(self) -> int:
        """The shift's end on the monotonic clock, taken when the stream opens: NTP stepping
        the wall clock (a Pi booted without network, its guard signed in at "1970") neither
        ends the stream nor stretches it."""
        if self.ends_ns is None:
            left_ns = self.g.session_left_s(self.session) * 1_000_000_000
            self.ends_ns = self.g.core.clock.monotonic_ns() + left_ns
        return self.ends_ns

    async def expired(self) -> str | None:
        """Why the stream sends nothing more, None while it goes on: the shift is over (or
        was removed from the roster), or the guard was signed out or their account removed or
        demoted since the stream began. The words are the login page's when the roster ended
        it (``roster_ended``), else empty (the page says its own "sign-in ended"). A later
        back-to-back shift removed ends the stream at the end of the one under way; at that
        end the sign-in is read again as its page reads it (``still_holds``: one rule), and
        the stream goes on to the later end the roster gives it back (the removal undone:
        the shift added again). ``REOPEN`` when the roster lengthened the session: the stream
        closes quietly and the page opens it again with the longer cookie."""
        if self.g.core.clock.monotonic_ns() < self.shift_ends_ns():
            held = await asyncio.to_thread(self.g.auth.still_holds, self.session)
            if held is not None and held.expires < self.session.expires:
                self.session, self.ends_ns = held, None  # ends sooner: taken again
            if held is not None and self.g.core.clock.monotonic_ns() < self.shift_ends_ns():
                return None
        elif self.session.expires < self.signed.expires:  # shortened: held longer again?
            held = await asyncio.to_thread(self.g.auth.still_holds, self.signed)
            if held is not None and held.expires > self.session.expires:
                self.session, self.ends_ns = held, None
                if self.g.core.clock.monotonic_ns() < self.shift_ends_ns():
                    return None
        gone = await asyncio.to_thread(self.g.auth.shift_gone, self.signed)
        longer = (
            None
            if gone is not None
            else await asyncio.to_thread(self.g.auth.lengthens, self.session)
        )
        if longer is not None:  # a shift added after sign-in: its longer cookie comes with the
            self.longer_left_s = self.g.session_left_s(longer)  # next request
            return REOPEN
        return "" if gone is None else roster_ended(self.g, gone, self.lang)

    def beat(self, left_s: int | None = None) -> str:
        """The stream's ``beat``: how often it comes, the site's day (rows of before it are
        dated), the server's clock (the page says it) and the session's time left
        (``session_left_s``: the page's banner counts to it; ``left_s``, the roster having
        lengthened it, else this stream's end on the monotonic clock)."""
        if left_s is None:
            left_ns = self.shift_ends_ns() - self.g.core.clock.monotonic_ns()
            left_s = max(0, left_ns // 1_000_000_000)
        today = self.g.today().isoformat()
        now_ms = clock_ms(self.g.core)
        fields = {"every_s": HEARTBEAT_S, "today": today, "now_ms": now_ms}
        return sse("beat", {**fields, "session_left_s": left_s})

    async def rows(self) -> list[str]:
        """The rows after the last this stream sent; first, when there were more of them than
        the page keeps, a ``gap`` saying how many of the oldest it leaves out and the first
        of them (``from``: ``/guard/rows/{from}`` shows them), or, when the
        log was restored from an older backup since (its newest row before the last sent), a
        ``gap`` saying so, and the restored log's newest rows, resuming from them."""
        feed = await asyncio.to_thread(new_events, self.g, self.after)
        out = []
        if feed.not_shown or feed.restored:
            # The first row left out: the page's notice links to the rows from it on.
            first = self.after + 1 if feed.not_shown else None
            gap = {"rows": feed.not_shown, "restored": feed.restored, "from": first}
            out.append(sse("gap", gap))
        if feed.restored:
            self.after = 0
        for event in feed.events:
            self.after = max(self.after, int(event["seq"]))
            out.append(sse("row", rows_of(self.g, [event], self.lang, self.clear)[0]))
        return out

    async def alarms(self) -> str:
        rows = await asyncio.to_thread(self.g.alarm_rows, self.lang, self.clear)
        self.drawn = rows
        return sse("alarms", rows)

    async def new_alarms(self) -> list[str]:
        """The alarms again if the desk's open alarms now differ from what this page shows
        (the desk heard a bus ``alarm``: ``ALARMS_HEARD``). The desk hears the bus itself
        (``AlarmDesk.follow``), every tablet asleep or not: a stream only reads it."""
        rows = await asyncio.to_thread(self.g.alarm_rows, self.lang, self.clear)
        if rows == self.drawn:
            return []
        self.drawn = rows
        return [sse("alarms", rows)]

    def state(self, tracker: ScreenTracker) -> str:
        return sse("state", kiosk_mirror(self.g, tracker.state, tracker.decision, self.lang))

    async def on_message(self, message: dict[str, Any], tracker: ScreenTracker) -> list[str]:
        kind = message.get("type")
        if kind == "decision":
            tracker.feed(message)
            return [*await self.rows(), await self.alarms()]
        if kind == ALARMS_HEARD:
            return await self.new_alarms()
        if kind in ("peers", ALARMS_CLOSED):  # a gate of the compound went unknown here, or
            return [await self.alarms()]  # answers again; alarms closed on another console
        if tracker.feed(message):
            return [self.state(tracker)]
        if kind == "health":  # the storage may work again: the rows held meanwhile first
            await flush_held(self.g, bounded=True)
            # A record the engine wrote from its backlog is told by this message, not by a
            # decision: the row saying the gate did not open for a pass, a decision held
            # through a storage fault. Read only when the log moved from this stream's rows
            # (past them, or back before them: restored from an older backup).
            new = await self.rows() if self.g.core.store.last_seq != self.after else []
            return [*new, await self.alarms()]
        return []

    async def run(self, request: Request) -> AsyncIterator[str]:
        messages = bus_messages(self.g.core)  # subscribe first: nothing slips in between
        self.shift_ends_ns()
        tracker = ScreenTracker(current_state(self.g.core))
        try:
            yield "retry: 2000\n\n"
            # Anything committed since the page was drawn, then live.
            for line in await self.rows():
                yield line
            yield await self.alarms()
            # As the kiosk is now: a page reopening its stream after a drop draws "Now at
            # the gate" again, not what it was when the link went.
            yield self.state(tracker)
            while not await request.is_disconnected():
                try:
                    message = await asyncio.wait_for(anext(messages), HEARTBEAT_S)
                except TimeoutError:
                    message = None
                except StopAsyncIteration:
                    break
                why = await self.expired()
                if why == REOPEN:  # the page opens it again, its session lengthened: its time
                    yield self.beat(self.longer_left_s)  # left first (the page's banner)
                    break
                if why is not None:  # the session ended: no more personal data
                    yield sse("expired", {"reason": why})
                    break
                if message is None:  # named: a page hears it (a comment never reaches it)
                    yield self.beat()
                    continue
                for line in await self.on_message(message, tracker):
                    yield line
        except Stopped:  # a read refused: the event log is closing (the stop): the stream
            return  # ends here, holding no read of the log between its messages
        finally:
            await messages.aclose()


@router.get("/events", summary="Guard live stream (SSE): decisions, alarms, state, health")
async def guard_events(
    request: Request, session: ApiSession, g: GuardDep, after: int = AFTER
) -> Response:
    signed = g.auth.as_signed(request, session)
    stream = FeedStream(g, session, g.lang(request), after, signed)
    return ClosingStream(
        stream.run(request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("/alarms/ack", name="alarm_ack", include_in_schema=False)
async def ack_alarm(request: Request, session: ActionSession, g: GuardDep) -> Response:
    """Close alarms with what was done: the one whose button was pressed (``only``), else
    every one ticked (``key``, repeated); each as its page drew it (``drawn_cards``)."""
    form = await request.form()
    only = form.get("only")
    picked = [only] if only else form.getlist("key")[:MAX_CLOSE]
    seen = drawn_cards([k for k in picked if isinstance(k, str) and k])
    keys = list(seen)
    if not keys:
        raise BadInput("err.no_alarm")
    resolution = choice(form.get("resolution"), "live.resolution", RESOLUTIONS, RESOLUTIONS[0])
    incidents = drawn_incidents(form.getlist("incident")[:MAX_CARDS], seen)
    standing = await asyncio.to_thread(g.standing_alarms)

    def record(closing: list[Alarm]) -> None:  # the row first: an alarm shown closed is on record
        first = closing[0]  # ``keys`` (and ``passages``): what a restart finds closed
        note(request, alarm=first.kind, key=first.key, seq=first.seq, **closed_detail(closing))
        note(request, resolution=resolution)
        deps.write_row_first(request)

    closing = partial(
        g.alarms.close,
        keys,
        session.name,
        standing,
        resolution,
        record=record,
        seen=seen,
        incidents=incidents,
    )
    late = partial(close_ended_late, g, session.name, keys)
    try:  # in the console's own workers, with a deadline: a stalled card holds none of the loop's
        closed = await g.console.run(closing, late)
    except Abandoned:  # its row still being written: closed once written, never twice
        raise DecisionHeld("err.alarm_close_pending") from None
    except Busy:  # every console worker held by a stalled write: nothing started
        raise BadInput("err.console_busy") from None
    except AlarmGrown as grown:  # more attempts since the page drew it: the page again
        raise grown_since(grown) from None
    except AlarmClosing as closing:  # another guard's close, its row being written
        raise BadInput("err.alarm_being_closed", who=closing.who) from None
    if not closed:  # another guard's tablet closed it first: say who, and as what
        by = await asyncio.to_thread(g.alarms.closed_by, keys[0], incidents.get(keys[0], ""))
        if by is not None and by[1] in RESOLUTIONS:
            raise BadInput("err.alarm_closed_by", who=by[0], resolution=f"resolution.{by[1]}")
        if await asyncio.to_thread(g.alarms.is_open, keys[0]):  # another incident of it now
            raise BadInput("err.alarm_seen")
        raise BadInput("err.no_alarm")
    # Every other open console (a second tablet) draws its alarms again now, not at the
    # next passage: the same cards, the same count, on each.
    redraw_alarms(g, closed)
    # A condition raised again since the page drew it (``kiosk.alarms.repeats``) closed too:
    # how many times.
    grew = sum(max(0, a.count - seen.get(a.key, a.count)) for a in closed)
    if grew:
        return done(request, "/guard", "ok.alarm_closed_since", n=grew)
    return done(request, "/guard")


def drawn_incidents(values: list[Any], seen: dict[str, int]) -> dict[str, str]:
    """Which incident each card a close names was on its page (``incident``: the card's key,
    ``@`` and its ``kiosk.alarms.Alarm.since``, drawn for a device's card): a card of another
    incident now (the device failed again after this one was closed) is not closed. One that
    is not such a value is refused, nothing closed (``clean``)."""
    drawn: dict[str, str] = {}
    for value in values:
        key, at, since = clean(value, "live.alarms", max_len=200).rpartition("@")
        if at and key in seen:
            drawn[key] = since
    return drawn


def drawn_cards(values: list[str]) -> dict[str, int]:
    """The cards a close names, as its page drew them: each tick's or button's value is the
    card's key, ``@`` and what the card counted (``Alarm.count``); the close is refused if
    one counts more now (``AlarmDesk.close``'s ``seen``). A value without its count (a page
    drawn before the count was sent) or with one that is no count is refused, nothing
    closed: the guard looks at the cards again."""
    seen: dict[str, int] = {}
    for value in values:
        key, at, count = clean(value, "live.alarms", max_len=140).rpartition("@")
        drawn = whole_number(count, most_digits=9) if at else None
        if not key or drawn is None:
            raise BadInput("err.alarm_seen")
        seen[key] = drawn
    return seen


def redraw_alarms(g: Guard, closed: list[Alarm]) -> None:
    """Every open console (a second tablet) draws its alarms again now, not at the next
    passage (``ALARMS_CLOSED``, naming the cards ``closed``)."""
    g.core.bus.publish({"type": ALARMS_CLOSED, "keys": [a.key for a in closed]})


def close_ended_late(g: Guard, who: str, keys: list[str], ended: object) -> None:
    """A close answered "still being written" ended (``BoundedWork.run``'s ``late``, on the
    loop). Closed: every open console draws its alarms again (``ALARMS_CLOSED``), as a close
    in time does. Refused by the storage (a full disk after the stall): the cards stay open;
    the journal says so, the attempt's row waits in memory (``alarm_ack_failed``,
    ``Guard.held``) and every console draws its alarms again (the guard's page stops saying
    "shows closed once written")."""
    if isinstance(ended, list):
        if ended:
            redraw_alarms(g, ended)
        return
    if not isinstance(ended, Exception):
        return
    why = ended.detail or ended.reason if isinstance(ended, StoreFault) else type(ended).__name__
    log.warning("guard action alarm_ack: its late record refused, alarms left open (%s)", why)
    problem = "store_fault" if isinstance(ended, StoreFault) else "internal"
    detail = {"keys": keys, "outcome": "error", "problem": problem}
    g.held.hold(who, f"{ACK_ACTION}_failed", detail, g.core.clock.now(), essential=False)
    redraw_alarms(g, [])


def grown_since(grown: AlarmGrown) -> BadInput:
    """A close refused for a card that counts more than its page drew: how many more, on
    which kind of card (never whom: the words go in the page's address): attempts of a
    person's card, times of a device's."""
    if grown.alarm.kind == "overflow":
        return BadInput("err.alarm_grown_overflow", n=grown.more)
    if grown.alarm.kind in PERSON_KINDS:
        key = "err.alarm_grown_one" if grown.more == 1 else "err.alarm_grown"
    else:
        key = "err.alarm_grown_times_one" if grown.more == 1 else "err.alarm_grown_times"
    return BadInput(key, title=f"alarm.{grown.alarm.kind}", n=grown.more)


def subject_of(
    g: Guard, value: object, decision: str | None = None
) -> ManualSubject | Literal["none"]:
    """The subject the guard chose: ``none`` (a person without a pass) or the ``seq`` of a
    recent kiosk passage, checked by the one rule for it (``kiosk.subjects.subject_in_log``).
    There is no default: the form must say. A manual ``pass`` about a passage the kiosk
    already passed has nothing to let through (it would be a second passage: a second person
    in the counts, a second outing of the household's quota), unless the gate did not open
    for that pass (a row after it says so, ``not_opened``): the guard letting them through is
    how that passage ended, its household's outing. That row and its pass are one passage: a
    decision about either is about the pass, and a decision recorded about either decides
    it. Blocking."""
    text = clean(value, "manual.subject", max_len=20)
    if text == NO_SUBJECT:
        return NO_SUBJECT
    if (seq := whole_number(text)) is None:
        raise BadInput("err.subject")
    store = g.core.store
    now = ClockReading.take(g.core.clock)
    asked = None if decision is None else f"manual_{decision}"
    try:
        return subject_in_log(store, seq, asked, now, store.boot_id)
    except SubjectRefused as exc:
        if exc.why == "decided":
            already_decided(exc.who, exc.decision)
        raise BadInput("err.subject_gone" if exc.why == "gone" else "err.subject_passed") from None


def whom_drawn(g: Guard, session: Session, lang: str, value: str, decision: str) -> str:
    """Whom a manual decision cut off by the session's end is about, drawn as the live form's
    confirmation line draws it (the passage's subject masked for ``session``'s role), for the
    page that offers it again; ``BadInput`` when that passage can no longer be decided (too
    old, decided by another guard meanwhile, passed). Blocking."""
    subject = subject_of(g, value, decision if decision in ("pass", "deny") else None)
    if not isinstance(subject, ManualSubject):
        return i18n.t(lang, "manual.subject_none")
    about = queries.event_by_seq(g.core.store, subject.seq)
    if about is None:  # removed since (a person forgotten)
        raise BadInput("err.subject_gone")
    return str(rows_of(g, dated(g, [about]), lang, g.clear(session))[0]["subject"])


def roster_ended(g: Guard, gone: ShiftGone, lang: str, key: str = "session.shift_removed") -> str:
    """What a guard whose sign-in the roster ended is told, on the login page and on the live
    page its stream ends (the same words): the shift it was signed in on, in the site's time,
    removed by whom and when (the day too when not today: a shift removed days ahead), or
    changed; ``key``: the words (a sign-in refused for it: ``login.shift_removed``, saying
    until when: ``ShiftGone.until``, the lead of the guard's next shift or the end of the
    removed one's handover hour, with its day when not today: a 24-hour shift removed)."""
    starts, ends = (datetime.fromtimestamp(t, UTC) for t in gone.mark[1:])
    shift = (
        f"{community_words.site_time(g, starts.isoformat(), seconds=False)}"
        f"–{shown_time(ends.isoformat(), g.tz, '%H:%M')}"
    )
    if gone.by is None or gone.at is None:
        return i18n.t(lang, "session.shift_changed", shift=shift)
    at, until = _time_said(g, gone.at), _time_said(g, gone.until)
    return i18n.t(lang, key, shift=shift, by=gone.by, at=at, until=until)


def _time_said(g: Guard, when: datetime) -> str:
    """``when`` in the site's time: its time of day when it is today, else its day too."""
    if when.astimezone(g.tz).date() == g.today():
        return shown_time(when.isoformat(), g.tz, "%H:%M")
    return community_words.site_time(g, when.isoformat(), False)


#: The fields a hold's confirmation page draws itself (``hold_asked``): not sent again as
#: they came (``<hold>_reason``, ``confirm_<hold>``, ``record_deny``).
HOLD_FIELDS = ("_reason", "record_deny", *(f"confirm_{h}" for h in HOLDS))


def already_decided(who: str, decision: str) -> NoReturn:
    raise BadInput("err.subject_decided", who=who, decision=f"decision.{decision}")


@router.post("/manual", name="manual", include_in_schema=False)
@deps.once_per_form
async def manual(request: Request, session: ActionSession, g: GuardDep) -> Response:
    form = await request.form()
    decision = decision_of(form, "live.decision", None)  # no default: the form must say
    note(request, action=f"manual_{decision}")
    subject = await asyncio.to_thread(subject_of, g, form.get("subject"), decision)
    note(request, subject=subject if isinstance(subject, str) else subject.seq)
    reason = clean(form.get("reason"), "manual.reason", required=True)
    # Unless the guard chose a direction, a decision about a passage goes its way: letting out
    # a resident denied going out is an exit (the household's outing), whatever the default.
    # A person without a pass has no passage to take it from: at a gate both ways the guard
    # says which (``err.direction_needed``), never the site's default, or a quarantined
    # resident "coming in" walks out unheld and uncounted.
    passage_way = subject.direction if isinstance(subject, ManualSubject) else None
    direction = direction_of(form, g.cfg.site.guard_way(passage_way))
    note(request, direction=direction)
    temp_c = number(form.get("temp_c"), "manual.hand_temp")
    household, holds = named_household(form, subject), []
    unknown: tuple[str, ...] = ()  # ``unknown_dwelling``, once the guard confirmed one
    unnamed = unknown_person(subject)  # the guard's word is all there is of their dwelling
    if isinstance(subject, ManualSubject) and not unnamed:
        household = subject.household
        holds = await asyncio.to_thread(subject_holds, g, subject, direction)
    elif household is not None:  # a person without a pass, of the dwelling the guard names
        asked, unknown = await dwelling_asked(
            request, g, session, form, household, ASKED_FROM_MANUAL
        )
        if asked is None:
            asked = await off_map(request, g, session, form, household, ASKED_FROM_MANUAL)
        if asked is not None:
            return asked
        holds = await asyncio.to_thread(holds_on, g, household, direction, UNNAMED)
    try:  # a pass over a hold the gate denied the passage for: as a registration's
        kept, flags = confirmed_pass(request, g, form, holds, household, decision, unnamed)
    except BadInput as problem:
        return hold_asked(request, g, session, form, problem, unnamed)
    flags += unknown
    try:
        outcome = await g.manual(
            request,
            decision=decision,
            operator=session.name,
            reason=reason,
            direction=direction,
            temp_c=temp_c,
            subject=subject,
            person=kept or None,
            flags=flags,
            # the event's: the outing counts against its quota (a passage's is its pass's)
            household=household if unnamed else None,
            quota_checked="quota" not in holds,  # looked at again as the engine starts it
        )
    except QuotaReached:  # another tablet's outing of the household went first: asked
        reached = BadInput(confirm_key("quota", unnamed), h=household)
        return hold_asked(request, g, session, form, reached, unnamed)
    return deps.decided(request, "/guard", outcome)


def named_household(form: FormData, subject: object) -> str | None:
    """The dwelling the guard typed or picked for a person without a pass (``household``,
    in its plain spelling, ``kiosk.typed``: ``３-４０２`` is ``3-402``), None when none was;
    about a passage that names a household it is the passage's and the field is not read
    (``unknown_person``)."""
    if not unknown_person(subject):
        return None
    return plain_spelling(clean(form.get("household"), "manual.household", max_len=40)) or None


def hold_asked(
    request: Request,
    g: Guard,
    session: Session,
    form: FormData,
    problem: BadInput,
    unnamed: bool,
) -> HTMLResponse:
    """A manual pass over a hold not confirmed (or confirmed without its reason): the hold's
    warning on the confirmation page (``confirm_first``), which sends the decision again with
    each hold's reason and its confirmation (``confirm_<hold>``), one hold at a time as a
    registration's page asks them (``holds_asked``), or as a deny."""
    note(request, held=problem.key)
    asked = [(k, v) for k, v in form.multi_items() if not k.endswith(HOLD_FIELDS)]
    held = holds_asked(form, problem)
    typed = {f"{h}_reason": str(form.get(f"{h}_reason") or "")[:200] for h in held}
    text = problem.text(g.lang(request))
    return confirm_first(
        request, g, session, "/guard/manual", FormData(asked), text, holds=tuple(held),
        typed=typed, back="/guard", unnamed=unnamed,
    )  # fmt: skip
