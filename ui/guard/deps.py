"""What every guard route shares: the console's state on the app (``app.state.guard``), the
FastAPI dependencies that hand it and the signed-in guard to a route, page rendering, and the
one auditing mechanism of guard actions.

Auditing: every router of the console uses ``audited_route(back)`` as its route class. Every
POST/PUT/PATCH/DELETE (and any GET marked ``@audited``) writes one audit row once the guard
is known: actor, action (the route's name, or what the route set with ``note()``), and
``outcome`` (``ok``; else the action gets ``_failed`` and the detail names the problem by
its message key, never the text typed). A route that raises ``BadInput`` is answered for it
(back to the router's form with the problem in the guard's language) and audited as refused.
A request refused before anyone signed in (no session, cross-site, wrong CSRF token) did
nothing and names nobody: it is not written, so strangers cannot fill the audit log.
A request that changes a ledger is run inside ``kiosk.auditing.auditing_request``: the
ledger writes the change and its row (who, what, from what to what, with the request's
detail and ``outcome: ok``) in one transaction, and that row is the request's — never a
second one. If the storage fails there (``StoreFault``: disk full, I/O) nothing of the
change was kept; the guard is sent back to the form with ``err.store``, never a 5xx.
A guard's decision (``Guard.manual``) hands the request's row (``request_row``) to the engine:
it is written in the decision's event commit, and the route class writes no second row. The
guard is answered once that commit is over: "done", or ``err.store`` when it failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import secrets
import threading
from collections.abc import Callable, Collection, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from kiosk import queries
from kiosk.alarms import (
    DESK_QUEUE,
    Alarm,
    AlarmDesk,
    FaultsNow,
    device_alarms,
    peer_alarms,
    power_alarms,
    retention_alarms,
)
from kiosk.auditing import Change, HeldRows, audited_write, auditing_request
from kiosk.bus import Subscription
from kiosk.clock import ClockReading, earliest
from kiosk.config.engine import EngineSection
from kiosk.config.gate import stop_releases
from kiosk.crossing import Outcome
from kiosk.deadline import Abandoned, BoundedWork, Stopped, in_daemon_thread
from kiosk.devices import GateHeldShut
from kiosk.dwellings import GateDwellings
from kiosk.engine import (
    FeverRefused,
    ManualAnswer,
    ManualDecision,
    QuotaReached,
    Stopping,
    TemperatureImplausible,
)
from kiosk.evacuation import Moved
from kiosk.overrides import SubjectRefused
from kiosk.roster import ShiftGone, ShiftMark, session_end, staffed_stretches
from kiosk.store import ReadFailure, StoreFault
from kiosk.typed import whole_number
from ui import i18n
from ui.auth import (
    RESUME_TTL_S,
    SHIFTS_KEPT,
    GuardAuth,
    Session,
    SessionEnd,
    WrongToken,
    session_key,
)
from ui.guard.display import ALL_FIELDS, GUARD_CLEAR_FIELDS, alarm_view, event_time
from ui.guard.forms import BadInput, Repeated
from ui.views import faults_of, health_report, secure_headers, templates

if TYPE_CHECKING:
    from kiosk.config import KioskConfig
    from kiosk.core import Core

log = logging.getLogger(__name__)

#: Methods that change state: always audited.
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Done messages that say a count when given one (``done``'s ``n``): their words for a count
#: of one, and for more; the key's own words say none.
COUNTED_MESSAGES = {
    "ok.alarm_closed_since": ("ok.alarm_closed_since_one", "ok.alarm_closed_since_n")
}
#: ``msg=`` values a page shows as a success note.
OK_MESSAGES = (
    "ok.done",
    "ok.alarm_closed_since",
    "cal.saved",
    "pass.issued",
    "pass.voided",
    "pass.clock_vouched",
)
#: How far back a restarted console derives its open alarms: 12 hours, plus the longest time
#: nobody may be on duty under any staffed hours (under a day: a quarantine return at 08:05
#: at a gate staffed 20:00-08:00 waits twelve hours for the night guard, who must still see
#: it after a restart at 20:10), plus the hour a daylight-saving night adds. Not from the
#: hours in force: a card still open was raised under the hours of its day, and a restart
#: after the hours changed (the day shift extended to round the clock) lost last night's.
ALARM_LOOKBACK_H = 12 + 24 + 1


#: The console warns this long before the session (the shift) ends.
SESSION_WARN_S = 600

F = TypeVar("F", bound=Callable[..., Any])
MANUAL_DECISIONS: dict[str, ManualDecision] = {"pass": "manual_pass", "deny": "manual_deny"}


class DecisionHeld(Exception):
    """A guard's decision the engine took but the storage did not (``Guard.manual``): its
    record waits in the backlog, written once the storage works again (a restart loses it).
    ``key`` tells the guard whether the gate opened on it (``err.held_opened``), did not
    (``err.held_locked``), or the engine has not answered yet (``err.decision_pending``);
    never "done", and never "try again": the same form sent again would decide it twice."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


#: Decision forms remembered as sent (``Guard.sent_once``): this many, this long at most.
SENT_KEPT = 2000
SENT_KEPT_S = 3600


def session_ends(core: Core, name: str, now: datetime) -> SessionEnd:
    """When the session of guard ``name`` signing in at ``now`` ends: with the guard's shift
    at this gate on the roster, else with the staffed hours (``policy.hours``, staffed), and
    the handover's grace after (``kiosk.roster.session_end``), else ``web.session_hours``
    after; sooner where a shift of the guard removed bars it (``barred``). The roster is no
    list of who may sign in: a guard with no shift (a volunteer) signs in as ever. A guard's
    session carries every shift of the guard at this gate within its lifetime (at most
    ``SHIFTS_KEPT``: it ends as one more would begin): one of them changed in place on the
    roster bars it as a removal does (``roster_bars``). An admin's carries none: an admin is
    never held to the roster."""
    hours = core.config.policy.hours
    tz = ZoneInfo(core.config.site.timezone)
    # Hours that only open and close the gate (``mode = "closed"``) say nothing of a guard.
    on = hours.enabled and hours.mode == "staffed"
    staffed = staffed_stretches(hours.windows(), tz, now) if on else []
    gate, roster = core.config.site.kiosk_id, core.ledgers.roster
    shifts = roster.stretch(gate, name, now)
    end = session_end([(s.starts_at, s.ends_at) for s in shifts], staffed, now) or (
        now + timedelta(hours=core.config.web.session_hours)
    )
    if is_admin(core, name):
        return SessionEnd(end)
    removed = barred(core, name, now, end)
    if removed is not None:
        end = min(end, removed.ends)
    tied = roster.shifts(gate, now, end, name)
    if len(tied) > SHIFTS_KEPT:
        end = tied[SHIFTS_KEPT].starts_at
    return SessionEnd(end, tuple(s.mark for s in tied[:SHIFTS_KEPT]))


def barred(
    core: Core, name: str, now: datetime | None = None, until: datetime | None = None
) -> ShiftGone | None:
    """The shift of guard ``name`` at this gate an admin removed whose span and the
    handover's hour after it bars a sign-in made ``now`` (the clock's) and lasting to
    ``until`` (a moment after ``now``), the guard's shifts on the roster holding none of it
    (``kiosk.roster.Roster.barred``): a sign-in whose ``ends`` is ``now`` is refused, told
    who removed it and when, and that an admin rostering a shift lets the guard in. None for
    an admin (never held to the roster). On a clock not synchronised the core's clock never
    reads before the newest time known to have passed (``kiosk.clock.FlooredClock``), as a
    shift's removal judges it (``kiosk.roster.Roster.shift_ended``): a gate hours without
    network keeps its bars; one that reads ahead of that time (a fast clock, a hand mis-set
    saved) is judged at that time (``kiosk.clock.earliest``): it neither lifts a bar early
    nor brings a later one on. A removal recorded before the account was added (after the
    name was last removed) was another account's and bars none (the roster's read:
    ``kiosk.accounts.ACCOUNT_SINCE``).
    Blocking: a read or two."""
    if is_admin(core, name):
        return None
    now = earliest(core.clock, now)
    until = now + timedelta(microseconds=1) if until is None else until
    return core.ledgers.roster.barred(core.config.site.kiosk_id, name, now, until)


def roster_bars(
    core: Core, name: str, marks: tuple[ShiftMark, ...], until: datetime
) -> ShiftGone | None:
    """The shift of guard ``name`` at this gate taken off the roster that bars the guard's
    session (signed in on the shifts ``marks``) from now to ``until``, as the roster stands
    (``kiosk.roster.Roster.barred``): its ``ends`` at now, the session is over. None once
    ``until`` is past. On a clock not synchronised, judged at the earliest time it can be
    (``barred``). The caller exempts an admin (``ui.auth.GuardAuth.shift_gone``). Blocking:
    one read."""
    now = earliest(core.clock)
    if until <= now:
        return None
    return core.ledgers.roster.barred(core.config.site.kiosk_id, name, now, until, marks)


def is_admin(core: Core, name: str) -> bool:
    """Whether ``name`` is an admin's account (a guard's sign-in is held to the roster, an
    admin's is not: ``barred``). Blocking."""
    account = core.accounts.get(name)
    return account is not None and account.role == "admin"


#: The most store calls of the console under way at once (``Guard.console``): past them a
#: guard's action is refused at once (``err.console_busy``), nothing done; a Pi's default
#: executor has 8 workers, for the whole daemon.
CONSOLE_WORKERS = 4


def console_work(engine: EngineSection | None) -> BoundedWork:
    """The console's store work (``Guard.console``): ``CONSOLE_WORKERS`` at once, each
    awaited one store deadline (``engine.store_deadline_ms``) and a second at most (its
    reads and the writes queued before its row); past that the guard is told its record is
    still being written."""
    deadline_ms = (engine or EngineSection()).store_deadline_ms
    return BoundedWork("console-store", CONSOLE_WORKERS, deadline_ms / 1000 + 1)


@dataclass
class Guard:
    """The console's state for one app: the core, sign-in, the alarm desk, templates."""

    core: Core
    auth: GuardAuth
    alarms: AlarmDesk
    tpl: Jinja2Templates
    tz: ZoneInfo
    #: The console's store work (an alarm closed and its row), in an executor of its own
    #: with a deadline (``console_work``): a stalled card holds none of the loop's workers.
    console: BoundedWork = field(default_factory=lambda: console_work(None))
    #: Decision forms already sent (their ``once`` token -> monotonic ns): ``sent_once``.
    sent: dict[str, int] = field(default_factory=dict)
    #: Audit rows the storage could not take (a sign-in let in during a storage outage, a
    #: refusal): written, oldest first, before the next row once the storage works again.
    held: HeldRows = field(default_factory=HeldRows)
    #: Taken by the console's flush of the held rows under way (``write_due_once``).
    rows_flush: threading.Lock = field(default_factory=threading.Lock)
    #: The alarm desk's ear on the bus (``AlarmDesk.follow``), run by ``hear``, and its
    #: subscription.
    hearing: asyncio.Task[None] | None = None
    ear: Subscription | None = None
    stopped: bool = False
    #: The manual form's dwellings, with the gate's dwellings they were built from
    #: (``kiosk.dwellings.Dwellings``): ``ui.guard.registrations.household_choices``.
    choices: tuple[Any, Any] | None = None
    #: The dwellings the gate knows, kept per change of their sources
    #: (``ui.guard.registrations.gate_dwellings``).
    dwellings: GateDwellings | None = None

    @classmethod
    def build(cls, core: Core, auth: GuardAuth | None = None) -> Guard:
        """Sign-in against ``core.accounts`` (cookies signed with the ``session_key`` secret,
        else the key kept in the data dir) unless ``auth`` is given."""
        auth = auth or GuardAuth(
            core.accounts,
            core.clock,
            key=session_key(kept_in=core.data_dir),
            session_hours=core.config.web.session_hours,
            login_attempts_per_min=core.config.web.login_attempts_per_min,
            boot_id=core.store.boot_id,
            ends=functools.partial(session_ends, core),
            roster_bars=functools.partial(roster_bars, core),
            roster_changes=lambda: core.ledgers.roster.changes,
        )
        desk = AlarmDesk(
            core.store,
            core.clock,
            lookback_h=ALARM_LOOKBACK_H,
            quota=core.config.policy.quota,
            tz=core.config.site.timezone,
        )
        tz = ZoneInfo(core.config.site.timezone)
        return cls(core, auth, desk, templates(), tz, console_work(core.config.engine))

    def hear(self, *, starting: bool = False) -> asyncio.Task[None] | None:
        """The alarm desk hears the bus on the running loop (``AlarmDesk.follow``): a device's
        faults are counted and their cards drawn whether a tablet streams or every one
        sleeps. The one way it starts, wherever the console is built and served: when it is
        built on a running loop (the daemon's start, a bench's server) and at every call into
        the app (``DeskHears``: its lifespan, a request, whatever replaced the lifespan or
        turned it off). Idempotent; started again once its task ended (a test client closed,
        a loop gone), never deaf after a restart; after ``stop_hearing`` only by a start
        (``starting``: the app's lifespan begins again), not by a request the stop still
        serves. None while stopped."""
        if starting:
            self.stopped = False
        task = self.hearing
        if self.stopped:
            return None
        if task is None or task.done() or task.get_loop().is_closed():
            if self.ear is not None and not self.ear.closed:  # a task cancelled before it ran
                self.ear.close()
            # Taken now: nothing published before the task first runs is missed.
            self.ear = self.core.bus.subscribe(maxsize=DESK_QUEUE, name="alarm-desk")
            follow = self.alarms.follow(self.core.bus, self.ear, self.faults_now)
            task = self.hearing = asyncio.get_running_loop().create_task(follow, name="alarm-desk")
        return task

    def faults_now(self) -> FaultsNow:
        """The devices in fault in the health report now, each with when its fault began
        (its ``fault_since``, empty if not known) and the engine's stamp of its raise (its
        ``fault_raised_ns``; blocking)."""
        report = health_report(self.core)
        began = report.get("fault_since") or {}
        faults = faults_of(report).items()
        since = {d: str(began.get(d) or "") for d, state in faults if state == "fault"}
        return FaultsNow(since, report.get("fault_raised_ns") or {})

    def stop_hearing(self) -> asyncio.Task[None] | None:
        """The desk's task cancelled (if it runs): what a stop waits for. A request served
        after does not start it again; the app's next start does (``hear``)."""
        self.stopped = True
        if self.hearing is not None:
            self.hearing.cancel()
        return self.hearing

    @property
    def cfg(self) -> KioskConfig:
        return self.core.config

    @property
    def fever_c(self) -> float:
        return float(self.cfg.thermometer.thermometry.fever_threshold_c)

    @property
    def stop_releases(self) -> bool:
        """The kiosk's stop leaves its gate released (``kiosk.config.gate.stop_releases``)."""
        return stop_releases(self.cfg.gate)

    def lang(self, request: Request) -> i18n.Lang:
        chosen = request.query_params.get("lang") or request.cookies.get("kiosk_lang")
        return i18n.pick_lang(chosen, self.cfg.site.language)

    def clear(self, session: Session) -> frozenset[str]:
        """The personal fields ``session`` sees unmasked."""
        if not self.cfg.web.mask_personal or session.is_admin:
            return ALL_FIELDS
        return GUARD_CLEAR_FIELDS

    def today(self) -> date:
        return self.core.clock.now().astimezone(self.tz).date()

    def dated(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``events`` with the times they happened (``kiosk.queries.dated``: a row stamped
        before NTP stepped the clock dated by its boot, or by the clock now synchronised).
        Blocking: a database read of those rows alone."""
        now = ClockReading.take(self.core.clock)
        return queries.dated(self.core.store, events, now, self.core.store.boot_id)

    def not_let_through(self, events: list[dict[str, Any]]) -> set[int]:
        """The passes among ``events`` the gate did not open for (``kiosk.queries``), drawn
        as not let through; none when a damaged page keeps the log from being read (the
        alarms name those rows). Blocking: a database read."""
        try:
            return queries.not_let_through(self.core.store, events)
        except ReadFailure as exc:
            self.core.store.read_past(exc)
            return set()

    def fevers_decided(self, events: list[dict[str, Any]]) -> set[int]:
        """The rows guards' decisions among ``events`` are about that the gate judged a fever
        (``kiosk.queries.fevers_decided``): a decision carrying such a row's reading is drawn
        as a fever. None when a damaged page keeps the log from being read (the alarms name
        those rows). Blocking: a database read."""
        try:
            return queries.fevers_decided(self.core.store, events)
        except ReadFailure as exc:
            self.core.store.read_past(exc)
            return set()

    def stamp_times(self, stamps: list[queries.Stamp], lang: str, fmt: str) -> list[str]:
        """Records' stamps (an audit row's, a handover's) as a guard reads them: the time
        ``kiosk.queries.dated_stamps`` dates each to (one written before NTP stepped the clock
        at the time it was written), one a clock never set stamped with what it said, and
        saying so (``display.event_time``). Blocking: one read of their boots' offsets."""
        now = ClockReading.take(self.core.clock)
        dated = queries.dated_stamps(self.core.store, stamps, now, self.core.store.boot_id)
        return [
            event_time({"ts": s.ts, "dated_ts": when, "dating": how}, lang, self.tz, fmt)
            for s, (when, how) in zip(stamps, dated, strict=True)
        ]

    def since(self, hours: float) -> queries.Since:
        """``hours`` ago, on both clocks (``kiosk.queries.Since``)."""
        now = ClockReading.take(self.core.clock)
        return queries.Since.ago(now, hours * 3600, self.core.store.boot_id)

    def standing_alarms(self) -> list[Alarm]:
        """Devices in fault, the compound's gates whose outings are unknown here, the Pi
        under-voltage or slowed down now, and the retention purge overdue."""
        report = health_report(self.core)
        return [
            *device_alarms(
                faults_of(report), report.get("fault_since"), report.get("fault_raised_ns")
            ),
            *peer_alarms(report.get("peers") or []),
            *power_alarms(report.get("pi_power")),
            *retention_alarms(report.get("retention")),
        ]

    def open_alarms(self) -> list[Alarm]:
        """The alarms open on the live console now (fevers, quarantine, passes, devices):
        its cards, the handover's and the community pages' count (blocking)."""
        return self.alarms.open_alarms(self.standing_alarms())

    def alarm_rows(self, lang: str, clear: frozenset[str]) -> list[dict[str, Any]]:
        """The open alarms as cards, masked with ``clear`` (blocking: run it in a thread
        from the loop)."""
        return [alarm_view(a, lang, self.tz, clear) for a in self.open_alarms()]

    def render(self, request: Request, name: str, session: Session, **ctx: Any) -> HTMLResponse:
        lang = self.lang(request)
        status = ctx.pop("status_code", 200)
        nonce = secrets.token_urlsafe(16)  # the page's <style> (a chart's ratio): views.csp
        response = self.tpl.TemplateResponse(
            request,
            name,
            {
                "lang": lang,
                "_": i18n.translator(lang),
                "session": session,
                "csrf": self.auth.sessions.csrf_token(session),
                "once": secrets.token_urlsafe(12),
                "site_name": self.cfg.site.site_name,
                "kiosk_id": self.cfg.site.kiosk_id,
                "page": name.removesuffix(".html"),
                "other_lang": "en" if lang == "zh-CN" else "zh-CN",
                "role_text": i18n.t(lang, f"role.{session.role}"),
                "session_left_s": self.session_left_s(session),
                "session_warn_s": SESSION_WARN_S,
                "resume_min": RESUME_TTL_S // 60,  # a cut-off action is kept this long
                "csp_nonce": nonce,
                **ctx,
            },
            status_code=status,
        )
        response.headers["Cache-Control"] = "no-store"
        secure_headers(response, style_nonce=nonce)
        remember_lang(request, response)
        return response

    async def sent_before(self, token: str | None) -> bool:
        """Whether a decision made from the form ``token`` is on record: sent before a
        restart, the memory of ``sent_once`` no longer has it, the log does (the token is in
        the decision's audit row, ``form_once``). A log that cannot be read says no: the
        guard's decision is not held up by it (this process's memory still answers)."""
        if token is None:
            return False
        try:
            acted = await asyncio.to_thread(queries.form_acted, self.core.store, token)
        except StoreFault as exc:
            log.warning("guard form: earlier decisions unreadable (%s)", exc.detail or exc)
            return False
        return acted is not None

    @contextlib.contextmanager
    def sent_once(self, token: str | None) -> Iterator[None]:
        """Around a decision form's action (on the loop: no await between the check and the
        claim): the form as drawn (its ``once`` token, ``form_token``) acts once. The same
        form sent again (a double tap, a resend after a slow answer) is refused with
        ``err.sent_twice``, nothing recorded twice; an action that raises (refused, storage
        failed) frees its form to be sent again. A form without the token (a script) is not
        checked. Across a restart, ``sent_before`` answers."""
        if token is None:
            yield
            return
        now = self.core.clock.monotonic_ns()
        self.sent = {k: at for k, at in self.sent.items() if now - at < SENT_KEPT_S * 10**9}
        if token in self.sent:
            raise Repeated("err.sent_twice")
        self.sent[token] = now
        while len(self.sent) > SENT_KEPT:
            del self.sent[next(iter(self.sent))]
        try:
            yield
        except DecisionHeld:
            raise  # taken, only not on disk yet: sent again, it would be decided twice
        except BaseException:
            self.sent.pop(token, None)
            raise

    def session_left_s(self, session: Session) -> int:
        """Seconds until ``session`` ends (the shift is ``web.session_hours``)."""
        return max(0, int((session.expires - self.core.clock.now()).total_seconds()))

    def flash(self, request: Request) -> dict[str, Any]:
        """The banner ``request``'s address carries (``signed_flash``: only one this process
        wrote, never a link's): a done note (``msg``, ``n``) or a problem (``err``)."""
        lang = self.lang(request)
        shown = signed_flash(request)
        err = shown.get("err") or None
        return {
            "flash_ok": ok_text(lang, shown.get("msg"), shown.get("n")),
            "flash_err": err,
            # Nothing was done (``fail(refused=True)``): the form may be put back as typed.
            "flash_refused": err is not None and shown.get("refused") == "1",
        }

    async def manual(self, request: Request, decision: str, **kwargs: Any) -> Outcome:
        """``core.runner.engine.manual`` (on the loop), returning once the decision's event is
        committed like any other event, and ``request``'s row (``request_row``) with it, in
        the event's own commit; the route class writes no second one. The engine's refusals
        become messages in the guard's language; ``Stopping`` (the stop began before the
        engine took it, however late: ``_audit`` answers 503) passes through. An event the
        storage did not take (or not within its deadline) raises ``DecisionHeld``, never
        "done": its record waits in the engine's backlog (the feed shows it unrecorded) and
        the gate opened or not, so the guard is told which, and not to decide it again. One
        whose condition (``unless``) found its record in the log raises that
        ``kiosk.store.AlreadyRecorded``: nothing decided, nothing audited with it; an
        evacuation's start another went first (``seen``), ``kiosk.evacuation.Moved``; a pass
        out whose household's quota another outing reached meanwhile (``quota_checked``),
        ``kiosk.engine.QuotaReached``.
        Returns the committed outcome (``decided``: whether the gate opened on it)."""
        row = request_row(request)  # with the form's ``form_once`` (``once_per_form``)
        recorded: asyncio.Future[ManualAnswer | None] = asyncio.get_running_loop().create_future()

        def on_recorded(outcome: ManualAnswer) -> None:
            if not recorded.done():
                recorded.set_result(outcome)

        try:
            self.core.runner.engine.manual(
                decision=MANUAL_DECISIONS[decision], audit=row, on_recorded=on_recorded, **kwargs
            )
        except SubjectRefused as exc:  # another decision about it is on its way to the log
            raise BadInput(
                "err.subject_decided", who=exc.who, decision=f"decision.{exc.decision}"
            ) from None
        except FeverRefused as exc:  # said as the desk it came from
            key = "manual" if kwargs.get("kind", "manual") == "manual" else "reg"
            raise BadInput(f"{key}.fever_refused", t=f"{exc.temp_c:.1f}") from None
        except TemperatureImplausible as exc:
            raise BadInput(
                "err.range", field="reg.temp", lo=f"{exc.low_c:g}", hi=f"{exc.high_c:g}"
            ) from None
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        try:
            outcome = await asyncio.wait_for(recorded, self.decision_wait_s())
        except TimeoutError:
            outcome = None
        if outcome is None:  # the engine has not taken it up yet: it may still act on it
            raise DecisionHeld("err.decision_pending")
        if isinstance(outcome, Stopping | Moved | QuotaReached):  # queued, then refused: the
            raise outcome  # stop began, or another tablet's start or outing went first
        if outcome.refused is not None:  # its condition found its record: nothing decided
            raise outcome.refused
        if not outcome.committed:
            raise DecisionHeld("err.held_opened" if outcome.gate_opened else "err.held_locked")
        request.state.request_audit.written.append(row)
        return outcome

    def decision_wait_s(self) -> float:
        """The longest a guard's decision may wait for its commit's outcome: one kiosk passage
        being committed before it (and its gate), then its own commit and gate; past that the
        engine is stuck and the guard is told so."""
        eng = self.cfg.engine
        return 2 * (eng.store_deadline_ms + eng.device_deadline_ms) / 1000 + 1


# --- dependencies ---------------------------------------------------------------------------


def guard(request: Request) -> Guard:
    """The console's state, put on the app by ``ui.guard.install``."""
    found: Guard = request.app.state.guard
    return found


def page_session(request: Request, g: Guard = Depends(guard)) -> Session:
    """For HTML pages: the session, or a redirect to the login page."""
    session = g.auth.page(request)
    request.state.actor = session.name  # for a page that is audited (an export)
    return session


def api_session(request: Request, g: Guard = Depends(guard)) -> Session:
    """For JSON and stream endpoints: the session, or 401."""
    return g.auth.api(request)


async def action_session(request: Request, g: Guard = Depends(guard)) -> Session:
    """For state changes: same origin, CSRF token and a session; the guard becomes the
    actor of the request's audit row. A browser's form from a page of an earlier sign-in is
    refused back on its page, in the guard's language (a script's stays a 403)."""
    try:
        session = await g.auth.action(request)
    except WrongToken:
        if request.headers.get("accept", "").startswith("text/html"):
            raise BadInput("err.stale_form") from None
        raise
    request.state.actor = session.name
    return session


# A route names what it needs by these (FastAPI's ``Annotated`` dependencies).
GuardDep = Annotated[Guard, Depends(guard)]
PageSession = Annotated[Session, Depends(page_session)]
ApiSession = Annotated[Session, Depends(api_session)]
ActionSession = Annotated[Session, Depends(action_session)]


# --- results of an action -------------------------------------------------------------------


def wants_json(request: Request) -> bool:
    """A caller that asked for JSON (a script, the console's own fetches), not a page."""
    return request.headers.get("accept", "").startswith("application/json")


def done(
    request: Request, target: str, message: str = "ok.done", *, n: int | None = None
) -> Response:
    """Back to ``target`` saying ``message`` (one of ``OK_MESSAGES``); ``n``: the count a
    ``COUNTED_MESSAGES`` one says (sent in the address, a JSON answer's ``n``)."""
    if wants_json(request):
        return JSONResponse({"ok": True} if n is None else {"ok": True, "n": n})
    shown = {"msg": message} if n is None else {"msg": message, "n": str(n)}
    return flash_to(request, target, shown)


def ok_text(lang: str, msg: str | None, n: str | None) -> str | None:
    """A done page's words (``msg``, one of ``OK_MESSAGES``, else none); one that says a
    count (``COUNTED_MESSAGES``) with its ``n``, without a count that is one in its words
    that say none."""
    if msg not in OK_MESSAGES:
        return None
    counted = COUNTED_MESSAGES.get(msg)
    count = whole_number(n or "", most_digits=9) if counted else None
    if not counted or not count:
        return i18n.t(lang, msg)
    return i18n.t(lang, counted[0] if count == 1 else counted[1], n=count)


def decided(request: Request, target: str, outcome: Outcome) -> Response:
    """A guard's decision, committed: "done" — unless its gate was commanded open and did not
    open: the relay does not answer (``err.gate_not_opened``), or the checkpoint's stop keeps
    it locked (``GateHeldShut``: ``err.gate_stopping``, no technician needed; for a wiring the
    stop releases, ``err.gate_stopping_released``: it opens no more). Then it is on
    record all the same, and the guard is told to open the gate by hand, never "done" at a
    locked gate."""
    if outcome.gate_opened or not outcome.gate_commanded:
        return done(request, target)
    stopped = isinstance(outcome.gate_fault, GateHeldShut)
    key = "err.gate_stopping" if stopped else "err.gate_not_opened"
    if stopped and guard(request).stop_releases:
        key = "err.gate_stopping_released"
    if wants_json(request):
        text = i18n.t(guard(request).lang(request), key)
        return JSONResponse({"ok": True, "gate_opened": False, "warning": text})
    return fail(request, target, BadInput(key))


def fail(
    request: Request,
    target: str,
    problem: BadInput,
    *,
    refused: bool = False,
    session: Session | None = None,
) -> Response:
    """Back to the form with the problem in the guard's language. ``refused``: nothing was
    done (the page may put back what was typed, ``flash_refused``); else the action was
    taken, the problem is about how it ended (a gate that did not open, a record held).
    ``session``: the one the banner is for when it is not the request's (just signed in)."""
    text = problem.text(guard(request).lang(request))
    if wants_json(request):
        return JSONResponse({"ok": False, "error": text}, status_code=400)
    if problem.shown is not None:
        return problem.shown(text)
    text = text[:300]
    shown = {"err": text, "refused": "1"} if refused else {"err": text}
    return flash_to(request, target, shown, session)


#: A banner's parameters in a page's address (``flash_to``): a done note (``msg``, with the
#: count it says, ``n``) or a problem (``err``, ``refused=1`` when nothing was done). A page
#: shows them only with the ``sig`` this process signed all of them with, together with the
#: session they were written for, the page they were sent to and when: a link from anyone
#: else cannot put words in the console's banners, nor say something was done, and an
#: address seen once (a shared tablet's history, a photo) says nothing to another session,
#: on another page, or after ``FLASH_LIFETIME_S``.
FLASH_FIELDS = ("msg", "n", "err", "refused")
#: Seconds a banner's address shows it after the action (a page opened later shows none).
FLASH_LIFETIME_S = 300
_FLASH_KEY = secrets.token_bytes(32)


def flash_to(
    request: Request, target: str, shown: dict[str, str], session: Session | None = None
) -> RedirectResponse:
    """Back to ``target`` (303) with the banner ``shown`` (of ``FLASH_FIELDS``) and its
    signature, for the session ``request`` acts under (``session``: one just signed in);
    the one way a page's address is given a banner. No session: no banner."""
    sid = session.sid if session is not None else getattr(request.state, "session_sid", None)
    if not sid:
        return RedirectResponse(target, status_code=303)
    issued = _flash_clock(request)
    sig = flash_sig(sid, urlsplit(target).path, issued, shown)
    sep = "&" if "?" in target else "?"
    fields = "&".join(f"{name}={quote(value, safe='')}" for name, value in shown.items())
    return RedirectResponse(f"{target}{sep}{fields}&sig={sig}.{issued}", status_code=303)


def _flash_clock(request: Request) -> int:
    """Seconds on this process's monotonic clock (a banner's issue time: the key is this
    process's too)."""
    return guard(request).core.clock.monotonic_ns() // 10**9


def flash_sig(sid: str, path: str, issued: int, shown: dict[str, str]) -> str:
    """The signature of a banner's parameters, all of them at once (a count or a refusal
    cannot be added to, or taken from, another's), for session ``sid``, page ``path``,
    issued at ``issued``."""
    signed = json.dumps([sid, path, issued, sorted(shown.items())])
    return hmac.new(_FLASH_KEY, signed.encode(), hashlib.sha256).hexdigest()[:32]


def signed_flash(request: Request) -> dict[str, str]:
    """The banner's parameters (``FLASH_FIELDS``) of ``request``'s address when this process
    signed them (``flash_to``) for this request's session and page, at most
    ``FLASH_LIFETIME_S`` ago; none at all otherwise (no ``sig``, another one, a parameter
    added or changed: a link's, an edited address, another session's or page's, one too
    old, a page of before a restart, no session)."""
    params = request.query_params
    shown = {name: params[name] for name in FLASH_FIELDS if name in params}
    sid = getattr(request.state, "session_sid", None)
    mac, _, issued = (params.get("sig") or "").partition(".")
    if not shown or not sid or not (issued.isascii() and issued.isdigit() and len(issued) < 16):
        return {}
    if not 0 <= _flash_clock(request) - int(issued) <= FLASH_LIFETIME_S:
        return {}
    expected = flash_sig(sid, request.url.path, int(issued), shown)
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        return {}
    return shown


# --- auditing -------------------------------------------------------------------------------


def audited(action: str) -> Callable[[F], F]:
    """Name a route's audit action (default: the route's name); on a GET, audit it too."""

    def mark(fn: F) -> F:
        fn.audit_action = action  # type: ignore[attr-defined]
        return fn

    return mark


def served_while_stopping(route: F) -> F:
    """A route answered once the stop has begun (``_audit`` refuses every other audited one
    503): it decides nothing and leaves the gate alone, it only reads (a search, a check as a
    form is typed, an export) or signs a guard in or out (a sign-out refused would leave the
    session valid for the next start). The one mark for them; its audit row is written as
    at any time."""
    route.served_while_stopping = True  # type: ignore[attr-defined]
    return route


def once_per_form(route: F) -> F:
    """A route whose form, as drawn, acts once (``Guard.sent_once``): a double tap on the
    manual pass or a registration records one decision, opens the gate once; a pass form
    issues one pass, a calibration form adds one pair, a list's add form one entry. The
    one mechanism for every guard form whose repeat would act twice: the token goes into the
    request's detail (``note``), so whichever row records the action (the request's own, a
    ledger's, a decision's event commit) keeps it as ``form_once``, found after a restart
    (``Guard.sent_before``). A refusal's row does not keep it (``record``)."""

    @functools.wraps(route)
    async def run(**kwargs: Any) -> Any:
        request: Request = kwargs["request"]
        g, token = guard(request), form_token(await request.form(), request.url.path)
        if await g.sent_before(token):
            raise Repeated("err.sent_twice")
        request.state.form_once = token
        if token is not None:
            note(request, form_once=token)
        with g.sent_once(token):
            return await route(**kwargs)

    return run  # type: ignore[return-value]


def form_not_acted(request: Request) -> None:
    """The route answered without acting (a confirmation step asked first): its form's token
    is not kept as sent, nor written in the request's row; the page drawn for the next step
    carries its own."""
    token = getattr(request.state, "form_once", None)
    if token is not None:
        guard(request).sent.pop(token, None)
        request.state.form_once = None
        getattr(request.state, "audit_detail", {}).pop("form_once", None)


def form_token(form: FormData, path: str) -> str | None:
    """A form's one-time ``once`` token as drawn (``Guard.render``), of the form sent to
    ``path``: a page draws one token, and each of its forms (one returnee's reading, the
    next one's) is its own. None without one (a script) or with one no page of the console
    drew."""
    token = form.get("once")
    if not (isinstance(token, str) and 0 < len(token) <= 32):
        return None
    return hashlib.sha256(f"{path}\n{token}".encode()).hexdigest()[:32]


def note(request: Request, *, action: str | None = None, **detail: Any) -> None:
    """What the request's audit row should say besides actor and outcome (optional: the row
    is written either way)."""
    if action:
        request.state.audit_action = action
    request.state.audit_detail = {**getattr(request.state, "audit_detail", {}), **detail}


#: What a request's audit row says of a posted choice that is none of those there are.
UNKNOWN_CHOICE = "(unknown)"


def known(value: str, choices: Collection[str]) -> str:
    """A posted choice (a request's kind, an import's) as its audit row may say it: itself
    when it is one of ``choices``, else ``UNKNOWN_CHOICE``. The text posted may be anything,
    a resident's name or phone, and the audit chain outlives every ledger."""
    return value if value in choices else UNKNOWN_CHOICE


def request_detail(request: Request) -> dict[str, Any]:
    """What the request's routes said of it (``note``) so far."""
    return dict(getattr(request.state, "audit_detail", {}))


def request_row(request: Request) -> Change:
    """The request's own row as the route class writes it when the request is done: the
    guard, the action, what the route noted so far, ``outcome: ok``. For a change that writes
    it in its own transaction (a guard's decision: the event's commit)."""
    action = getattr(request.state, "audit_action", None) or request.state.route_action
    return request.state.actor, action, {**request_detail(request), "outcome": "ok"}


def write_row_first(request: Request) -> None:
    """Write the request's row now, before what it records takes effect: an action whose
    only record is its row (an alarm closed, a pass handed over). A ``StoreFault`` here
    means nothing is on record: the caller does nothing more and the guard gets
    ``err.store``. Blocking: call it in a thread (``asyncio.to_thread`` keeps the request's
    audit context)."""
    actor, action, _ = request_row(request)
    audited_write(guard(request).core.store, lambda _db: None, actor, action, lambda _: {})


async def flush_held(g: Guard, *, stopping: bool = False, bounded: bool = False) -> None:
    """The rows held during a storage outage, written now if the storage takes them (before
    the request's own row, so the log keeps their order); then the count of each minute over
    whose refused sign-ins were not written each (``ui.auth.RefusedRows``), held in turn if
    the storage fails or rows are still held (behind them). By the daemon every few seconds
    and at its clean stop (``stopping``: the minute in progress counted too). ``write_due``
    in a thread: cancelled, the rows taken are written or held there, each once (one taken
    after a cancel is not taken at all).

    ``bounded``: before a console action or a live page's redraw, waited the console's
    deadline at most (``Guard.console``): a write stalled on the card (a held row, a minute's
    count of refused sign-ins, which anyone on the LAN can cause) never holds the guard's
    action for the whole stall. Past it the action goes on; the rows already queued in the
    log's writer are written first, in their order, the others stay held for the next
    flush. One such flush at a time (``write_due_once``): with one stalled, the next has
    nothing to start."""
    if not bounded:
        await asyncio.to_thread(write_due, g, stopping=stopping)
        return
    try:
        await in_daemon_thread("console-rows", lambda: write_due_once(g), g.console.deadline_s)
    except Abandoned:
        log.warning("audit rows held in memory: still being written (the storage is slow)")
    except RuntimeError as exc:  # no thread could start (a Pi short of memory): next time
        log.warning("audit rows held in memory: not written now (%s)", exc)


def write_due_once(g: Guard) -> None:
    """``write_due``, unless one of these is under way (stalled on the card): then nothing."""
    if not g.rows_flush.acquire(blocking=False):
        return
    try:
        write_due(g)
    finally:
        g.rows_flush.release()


def write_due(g: Guard, *, stopping: bool = False) -> None:
    """``flush_held``'s work, blocking: the rows are taken from ``due()`` in the thread that
    writes or holds them (``HeldRows.write``), so none is lost and none written twice."""
    due = g.auth.refused_rows.due(stopping=stopping)
    if due or len(g.held) or g.held.dropped:
        g.held.write(g.core.store, due, g.core.clock.now())


async def record(
    request: Request, action: str, outcome: str, problem: str | None, written: list[Change]
) -> None:
    """The request's row, unless the row of each change it made says it already: a request
    that made no change, or one refused or failed after its change was kept (``written``:
    that change's row stands, this one says what became of the request). A refusal's row the
    storage cannot take is given up (logged): the refusal changed nothing, and the guard is
    told what was wrong all the same: the row waits in memory (``Guard.held``, within the
    share refusals may take). A refusal's row not written within the console's deadline
    (``Guard.console``: a write stalled on the card before it) stays queued in the log's
    writer, written once the card answers (or held, if it then fails), and the guard is told
    at once: it is waited ``refusal_wait_s`` at most. An ``ok`` row that cannot be written
    raises ``StoreFault`` (the route class then withholds the answer: ``err.store``)."""
    actor = getattr(request.state, "actor", None)
    if actor is None or (written and outcome == "ok"):
        return  # refused before anyone signed in (nobody to name), or said with its change
    action = getattr(request.state, "audit_action", None) or action
    detail = request_detail(request)
    detail["outcome"] = outcome
    if outcome != "ok":  # the form did not act: sent again (corrected), it may
        detail.pop("form_once", None)
    if problem:
        detail["problem"] = problem
    name = action if outcome == "ok" else f"{action}_failed"
    g = guard(request)
    if outcome == "ok":
        await g.core.store.audit_async(actor, name, detail)
        return
    row = asyncio.ensure_future(g.core.store.audit_async(actor, name, detail))
    row.add_done_callback(functools.partial(_refusal_ended, g, (actor, name, detail)))
    done, _ = await asyncio.wait({row}, timeout=refusal_wait_s(g))
    if not done:
        log.warning("guard action %s: its refusal's row is still being written", action)
    elif not isinstance(exc := row.exception(), StoreFault | None):
        raise exc


#: How long a refusal waits for its own row at most, when no console call is under way.
REFUSAL_WAIT_S = 0.5


def refusal_wait_s(g: Guard) -> float:
    """How long a refusal's answer waits for its row: not at all while a console call is
    under way (``Guard.console``: a close's row may be stalled on the card, and this row is
    queued behind it: the refusals said at once, ``err.console_busy`` and
    ``err.alarm_being_closed``, took the whole console deadline); else ``REFUSAL_WAIT_S``,
    within the console's deadline."""
    return 0.0 if g.console.running else min(REFUSAL_WAIT_S, g.console.deadline_s)


def _refusal_ended(g: Guard, row: Change, written: asyncio.Future[None]) -> None:
    """A refusal's row the storage failed to take (a ``StoreFault``, late or not): held in
    memory (``Guard.held``); any other end is the caller's (or, past its wait, logged)."""
    exc = None if written.cancelled() else written.exception()
    if isinstance(exc, StoreFault):
        log.warning("guard action %s: its refusal not on record (%s)", row[1], exc.detail)
        g.held.hold(*row, g.core.clock.now(), essential=False)
    elif exc is not None:
        log.warning("guard action %s: its refusal not on record (%s)", row[1], type(exc).__name__)


def audited_route(back: str) -> type[APIRoute]:
    """The route class of a guard router whose forms live on the page ``back``."""

    class AuditedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = _renewing(super().get_route_handler())
            action = getattr(self.endpoint, "audit_action", None)
            if action is None and not ((self.methods or set()) & STATE_CHANGING):
                return handler
            at_stop = getattr(self.endpoint, "served_while_stopping", False)
            return _audit(handler, action or self.name, back, served_while_stopping=at_stop)

    return AuditedRoute


def _renewing(
    handler: Callable[[Request], Coroutine[Any, Any, Response]],
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """``handler`` whose response carries the session cookie the roster lengthened while it
    ran (``ui.auth.GuardAuth.renew_cookie``): a shift added after sign-in is worked through."""

    async def run(request: Request) -> Response:
        response = await handler(request)
        guard(request).auth.renew_cookie(request, response)
        return response

    return run


def remember_lang(request: Request, response: Response) -> None:
    """The language a page was asked in (``?lang=``) stays for the pages after it (a cookie):
    chosen on the sign-in page, it is the console's after signing in. Secure over HTTPS,
    as the session cookie is."""
    chosen = request.query_params.get("lang")
    if chosen in i18n.LANGS:
        secure = request.url.scheme == "https"
        response.set_cookie(
            "kiosk_lang", chosen, samesite="strict", path="/", httponly=True, secure=secure
        )


def room(page: str, *, prefix: str = "/guard", tag: str = "guard console") -> APIRouter:
    """The router of one room of the console: under ``prefix``, every state change audited
    (``audited_route``) with its forms on ``page``."""
    return APIRouter(prefix=prefix, tags=[tag], route_class=audited_route(page))


#: ``Retry-After`` of an action refused because the kiosk is stopping: a restart's start.
STOPPING_RETRY_AFTER_S = 30


def stopping(request: Request) -> Response:
    """503 for a guard's action sent once the kiosk's stop has begun (the gate locked for it:
    ``EngineRunner.stopping``), at once and in the form the route answers in (JSON for a
    script or the console's fetches, else a page): nothing done, nothing written (the stop's
    own writes are under way; a decision would never open the gate, and the storage may be
    the stalled card the stop is giving up on), the same form good to send again once the
    kiosk is back."""
    lang = guard(request).lang(request)
    text = i18n.t(lang, "err.stopping")
    headers = {"Retry-After": str(STOPPING_RETRY_AFTER_S)}
    if wants_json(request):
        return JSONResponse({"ok": False, "error": text}, status_code=503, headers=headers)
    from ui.standby import PLAIN_HEADERS, plain_page

    page = plain_page(i18n.t(lang, "err.stopping_title"), [text], lang=lang)
    return HTMLResponse(page, status_code=503, headers={**PLAIN_HEADERS, **headers})


def refused_stopping(request: Request, action: str) -> Response:
    """``stopping``'s 503, and a journal line naming the action (nothing else: no personal
    data), the one trace of it: nothing is written to the log during the stop."""
    log.warning("guard action %s refused: the checkpoint is stopping", action)
    return stopping(request)


async def _handled(
    request: Request, handler: Callable[[Request], Coroutine[Any, Any, Response]]
) -> Response:
    """The route's answer, as a use of the event log (``Core.web_uses``) for as long as its
    request is under way: the daemon's stop does not close the log under it (its record is
    written); ``Stopping`` once the stop closed them, or once the log's close refused one of
    its reads (``LogClosing``). Its reads are the log's own uses besides, in the thread that
    reads (``EventLog.reader``): a read outlasting a request the web server cancelled at its
    end keeps the log open until it ends."""
    with contextlib.ExitStack() as use:
        try:
            use.enter_context(guard(request).core.web_uses.using())
        except Stopped:
            raise Stopping from None
        try:
            return await handler(request)
        except Stopped:  # a read refused: the event log is closing
            raise Stopping from None


def _audit(
    handler: Callable[[Request], Coroutine[Any, Any, Response]],
    action: str,
    back: str,
    *,
    served_while_stopping: bool = False,
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def run(request: Request) -> Response:
        if not guard(request).core.runner.stopping:
            # At a stop, the stop's own writes hold them.
            await flush_held(guard(request), bounded=True)
        elif not served_while_stopping:  # before any write: the stop is writing
            return refused_stopping(request, action)
        with auditing_request(lambda: request_detail(request)) as audit:
            request.state.route_action, request.state.request_audit = action, audit
            try:
                response = await _handled(request, handler)
            except BadInput as exc:
                await record(request, action, "refused", exc.code, audit.written)
                return fail(request, back, exc, refused=not isinstance(exc, Repeated))
            except Stopping:  # the stop began after the check above: the engine refused it
                return refused_stopping(request, action)
            except DecisionHeld as exc:  # taken, its record (and row) waiting in memory
                log.warning("guard action %s taken, not on disk yet: %s", action, exc.key)
                return fail(request, back, BadInput(exc.key))
            except StoreFault as exc:  # the change and its row were one transaction: neither
                why = exc.detail or exc.reason  # an SQLite error name, never the guard's input
                log.warning("guard action %s not saved: storage failed (%s)", action, why)
                with contextlib.suppress(StoreFault):  # the storage is likely still failing
                    await record(request, action, "error", "store_fault", audit.written)
                return fail(request, back, BadInput("err.store"), refused=True)
            except HTTPException as exc:
                await record(request, action, "refused", f"http_{exc.status_code}", audit.written)
                raise
            except RequestValidationError:  # a parameter out of its bounds (a link edited)
                await record(request, action, "refused", "http_422", audit.written)
                if wants_json(request):
                    raise  # answered 422
                return fail(request, back, BadInput("err.bad_link"), refused=True)
            except Exception:
                await record(request, action, "error", "internal", audit.written)
                raise
            ok = response.status_code < 400
            result = "ok" if ok else "refused"
            try:
                await record(request, action, result, None if ok else "refused", audit.written)
            except StoreFault as exc:  # its only record: the answer is withheld, not a 5xx
                log.warning("guard action %s not on record: storage failed (%s)", action, exc)
                return fail(request, back, BadInput("err.store"))
            return response

    return run
