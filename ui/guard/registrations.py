"""Registering people without a pass and vehicles (``/guard/register``): each one a manual
decision through the engine, so the rules on it (no pass with a fever) are the engine's.

* A person without a phone needs no phone number (a phone, when given, must hold digits).
* A refused registration (a fever, a value that cannot be used) shows the form again with
  everything typed still in it, and says what to do; the page offers the one button it
  names ("登记为禁止通行") when a fever was measured.
* A vehicle records its driver and each passenger with their hand-measured temperatures;
  every temperature is checked against the fever threshold, and a feverish occupant refuses
  the vehicle as a pass exactly like a person (the event's ``temp_c`` is the highest one).
  The plate is checked against the resident-vehicle list (``kiosk.vehicles``): a plate not
  on it is flagged on the page and on the record (``resident_of`` missing). While the guard
  types, the page asks ``POST /guard/community/plate`` (never a GET: a plate in a URL lands
  in browser history and access logs).
* "A resident of this dwelling" (``resident``): the person lives at ``unit`` (the field is
  otherwise the dwelling a visitor visits); the event carries it as its ``household``, so
  the outing counts against the household's quota and in the day's exits per household.
  With a compound map loaded, a resident's dwelling the map lacks is asked about first
  (``off_map``: ``3-2-710`` typed for ``3-2-701`` would charge another household's quota);
  so is one that matches no dwelling the gate knows (``dwelling_asked``, the live page's
  manual pass's question: ``D404`` for the quarantine list's ``D-404`` walked out unheld),
  offering the known ones it differs from only by separators ("Use D-404"), or kept as
  typed and flagged ``unknown_dwelling``.
* A pass out for a member (``unit``) or a car (the plate's household) of a household in home
  quarantine, in a direction quarantine blocks (``kiosk.policy.quarantine_blocks``), comes
  back with the warning until the guard confirms it with a reason (``quarantine_reason``,
  kept on the record; the audit row says ``quarantine: confirmed``); the guard may still let
  them go. So does a resident going out whose household's outing quota is used up
  (``quota``) or who is a returnee under observation that keeps people in
  (``observation``): one mechanism, ``HOLDS``. Whether a household is quarantined is the
  map's mark (``compound.quarantined``), also asked by the form as the unit is typed
  (``POST /guard/api/household``, a POST like the plate check: a dwelling and its
  quarantine are not put in a URL).
* Earlier visitors are found by name or phone-number suffix (``kiosk.queries.past_visitors``)
  and copied into the form; a field the guard's role does not see (the phone) is copied on
  the server from the earlier record (``copy_from``), never sent to the page.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any, NamedTuple

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import FormData

from kiosk import queries
from kiosk.again import AGAIN_WINDOW_S, NotAgain
from kiosk.community import CommunityError
from kiosk.compound import quarantined
from kiosk.dwellings import Dwellings, GateDwellings
from kiosk.engine import UNKNOWN_DWELLING, ManualSubject, QuotaReached
from kiosk.history import counted_outing
from kiosk.lists import same_text
from kiosk.policy import observation_blocks, quarantine_blocks, quota_reached
from kiosk.store import AlreadyRecorded, ReadFailure, StoreFault
from kiosk.vehicles import VehicleList
from ui import i18n
from ui.auth import Session
from ui.guard.community.common import Refused, drawn_again
from ui.guard.deps import (
    ActionSession,
    Guard,
    GuardDep,
    PageSession,
    decided,
    note,
    once_per_form,
    room,
    served_while_stopping,
)
from ui.guard.display import event_time, feed_row, vehicle_text, visitor_row
from ui.guard.forms import BadInput, choice, clean, direction_of, directions, needed, whole
from ui.guard.lists import confirm_first
from ui.views import unreadable_words

router = room("/guard/register")

REGISTRATION_KINDS = ("registration", "vehicle")
#: Passengers a vehicle form takes (besides the driver).
MAX_PASSENGERS = 12
#: Person fields the form of a person takes back after a refusal.
PERSON_FIELDS = (
    "name", "phone", "id_number", "unit", "resident", "reason", "temp_c", "copy_from", "off_map",
    "again", "unknown_dwelling",
)  # fmt: skip
#: What holds a registration's pass until the guard confirms it with a reason (``holds_on``),
#: in the order they are asked: each its form's ``confirm_<hold>`` and ``<hold>_reason``, its
#: warning ``reg.<hold>_confirm``, the audit row's ``<hold>: confirmed``.
HOLDS = ("quarantine", "quota", "observation")
#: Refusals after which the page offers the button "登记为禁止通行".
DENY_OFFERED = ("reg.fever_refused", "reg.vehicle_fever", *(f"reg.{h}_confirm" for h in HOLDS))


def plausible(g: Guard) -> tuple[float, float]:
    """The thermometry's plausible body-temperature range: a hand reading outside it is a
    typing error, named with the range."""
    thermo = g.cfg.thermometer.thermometry
    return float(thermo.plausible_min_c), float(thermo.plausible_max_c)


def vehicle_list(g: Guard) -> VehicleList | None:
    """The resident-vehicle list (``core.ledgers``); None while none was ever imported."""
    vehicles = g.core.ledgers.vehicles
    return vehicles if vehicles.listed() else None


def plate_status(g: Guard, plate: str) -> dict[str, Any]:
    """``{"listed": bool, "household": str | None, "known": bool}``: whether a resident-vehicle
    list exists and whose car ``plate`` is; a plate that cannot be a plate is unknown."""
    vehicles = vehicle_list(g)
    if vehicles is None:
        return {"listed": False, "known": False, "household": None}
    try:
        household = vehicles.check(plate)
    except CommunityError:
        household = None
    return {"listed": True, "known": household is not None, "household": household}


def household_quarantined(g: Guard, household: str | None) -> bool:
    """Whether ``household`` (however the guard spelled it) is marked quarantined today: the
    map's and the service desk's mark (``kiosk.compound.quarantined``), read from memory."""
    if not household:
        return False
    key = same_text(household)
    return any(same_text(h) == key for h in quarantined(g.core.lists.current, g.today()))


def holds_on(g: Guard, household: str | None, direction: str, resident: str | None) -> list[str]:
    """What holds a pass (``HOLDS``) for ``household`` in ``direction``: its home quarantine,
    where quarantine blocks the direction; and for ``resident`` (the name of a resident of it
    registered by hand, ``UNNAMED`` for one the guard names only the dwelling of): going out,
    the household's outing quota used up (the gate's own rule, ``kiosk.policy.quota_reached``,
    on its passage history); and the person's observation as a returnee (``returnee_of``), in
    a direction the gate denies them (``kiosk.policy.observation_blocks``)."""
    policy, holds = g.cfg.policy, []
    if quarantine_blocks(policy, direction) and household_quarantined(g, household):
        holds.append("quarantine")
    if resident is None or household is None:
        return holds
    now = g.core.clock.now()
    going_out = direction == "out"  # the quota counts outings only
    if going_out and quota_reached(policy.quota, g.core.history, household, "resident", now,
                                   tz=g.tz):  # fmt: skip
        holds.append("quota")
    if observation_blocks(policy, direction) and returnee_of(g, household, resident):
        holds.append("observation")
    return holds


#: ``holds_on``'s resident for a person without a pass whose dwelling alone the guard names
#: (``POST /guard/manual``): a resident of it, whose name nobody typed.
UNNAMED = ""


def returnee_of(g: Guard, household: str, resident: str) -> bool:
    """Whether ``resident`` of ``household`` is a returnee under observation today; for one
    not named (``UNNAMED``), whether any returnee of the household is: the guard tells who
    is at the gate."""
    observing = g.core.ledgers.observation.current
    if resident == UNNAMED:
        return observing.observing_anyone(household, g.today())
    return observing.observing(household, resident, g.today())


def household_observed(g: Guard, household: str) -> bool:
    """Whether a returnee of ``household`` is under observation today, by the ledger or the
    households list: a scanned pass of the household is flagged ``observation`` then
    (``kiosk.policy``), and so is a manual pass naming it."""
    today = g.today()
    return returnee_of(g, household, UNNAMED) or g.core.lists.current.under_observation(
        household, today
    )


#: The most dwellings the manual form offers to pick from (a compound's map holds a few
#: thousand); past it the form says how many it left out (``Choices.left_out``).
MAX_CHOICES = 20_000


class Choices(NamedTuple):
    """The dwellings the manual form offers (``household_choices``), and how many it leaves
    out past ``MAX_CHOICES`` (the form says so: type the dwelling); ``etag``: a digest of
    both, the validator of ``/guard/api/households`` (a reload of an unchanged list is a 304)."""

    offered: tuple[str, ...]
    left_out: int = 0
    etag: str = "none"


def choices_of(offered: list[str], left_out: int) -> Choices:
    """``Choices`` of ``offered``, its ``etag`` the digest of what it holds."""
    digest = hashlib.sha256("\n".join([str(left_out), *offered]).encode()).hexdigest()
    return Choices(tuple(offered), left_out, digest[:32])


def natural_key(household: str) -> tuple[tuple[int, str], ...]:
    """``household``'s place in a list a guard reads: its numbers by value, its text by
    letter (``2-1-101`` before ``10-1-101``, ``7-4-1904`` after ``7-4-904``)."""
    return tuple(
        (int(part), "") if part.isdigit() else (-1, part.casefold())
        for part in re.split(r"(\d+)", household)
        if part
    )


def gate_dwellings(g: Guard) -> Dwellings:
    """The dwellings the gate knows (``kiosk.dwellings.GateDwellings``: the compound map, the
    households list, the quarantine list, the returnee ledger, the passes issued here), kept
    per change of them. Blocking."""
    if g.dwellings is None:
        core = g.core
        g.dwellings = GateDwellings(
            core.store, core.lists, core.ledgers.compound, core.ledgers.observation
        )
    return g.dwellings.current()


def household_choices(g: Guard, clear: frozenset[str]) -> Choices:
    """The dwellings the manual form offers for a person without a pass: every dwelling the
    gate knows (``gate_dwellings``: the compound map's, the households list's, the quarantine
    list's, the returnees', the issued passes'), one spelling each (``same_text``), in natural
    order (``natural_key``); none for a viewer who sees households masked (``clear``: the
    fields the session sees; the map masks them for that viewer too). Built once per change
    of what the gate knows and kept: a live page's load reads two numbers. Blocking."""
    if "household" not in clear:
        return Choices(())
    known = gate_dwellings(g)
    built, kept = g.choices or (None, None)
    if built is known and isinstance(kept, Choices):
        return kept
    ordered = sorted(known.listed(), key=natural_key)
    choices = choices_of(ordered[:MAX_CHOICES], max(0, len(ordered) - MAX_CHOICES))
    g.choices = (known, choices)
    return choices


def confirm_key(hold: str, unnamed: bool = False) -> str:
    """The warning a pass ``hold`` applies to is refused with (``reg.<hold>_confirm``); a
    returnee's said of the household, not of the person, for a person not named
    (``manual.observation_confirm``)."""
    if unnamed and hold == "observation":
        return "manual.observation_confirm"
    return f"reg.{hold}_confirm"


def holds_confirmed(
    form: FormData, holds: list[str], household: str | None, decision: str, unnamed: bool = False
) -> dict[str, Any]:
    """A pass that a hold applies to (``holds_on``): refused with the hold's warning
    (``reg.<hold>_confirm``) until the guard confirms it (``confirm_<hold>``) with a reason
    (``<hold>_reason``), each in turn; returns what the record keeps of the confirmations
    (nothing when none was needed). A deny needs none: the guard may still let them go.
    ``unnamed``: the person is not named (``confirm_key``)."""
    if decision != "pass":
        return {}
    kept = {}
    for hold in holds:
        if not form.get(f"confirm_{hold}"):
            raise BadInput(confirm_key(hold, unnamed), h=household)
        reason = clean(form.get(f"{hold}_reason"), f"reg.{hold}_reason", required=True)
        kept[f"{hold}_reason"] = reason
    return kept


def subject_holds(g: Guard, subject: ManualSubject, direction: str) -> list[str]:
    """What holds a guard's manual pass about the passage ``subject`` recorded in
    ``direction``: the registration's rule (``holds_on``) for its household and holder, for the
    way the guard records it, whatever the gate denied the passage for (let out after a deny
    coming in is an exit; let in, a quarantined resident coming home is no exit). A pass the
    quota in force does not count (its role's flag against ``quota.roles``, as the history
    judges it: ``kiosk.history.counted_outing``) is no outing to hold."""
    holds = holds_on(g, subject.household, direction, subject.holder)
    exempt = not counted_outing(subject.flags, g.core.config.policy.quota.roles)
    return [h for h in holds if not (exempt and h == "quota")]


def holds_asked(form: FormData, problem: BadInput) -> list[str]:
    """The holds a refused pass's page shows (``guard_holds.html``), one confirmation at a
    time: those confirmed already (sent again with it) and the one asked for, or given
    without its reason, last: the one its button confirms."""
    asked = [h for h in HOLDS if problem.key in (confirm_key(h), confirm_key(h, unnamed=True))]
    held = [h for h in HOLDS if h in asked or form.get(f"confirm_{h}")]
    held.sort(key=lambda h: h in asked)
    return held


def confirmed_pass(
    request: Request, g: Guard, form: FormData, holds: list[str], household: str | None,
    decision: str, unnamed: bool = False,
) -> tuple[dict[str, Any], tuple[str, ...]]:  # fmt: skip
    """A guard's decision that ``holds`` may apply to (a registration's, a manual one's): what
    its record keeps of the confirmations (``holds_confirmed``, which refuses a pass not
    confirmed), said on the audit row (``<hold>: confirmed``), and its flags (``quarantine``
    for a quarantined household, as an automatic decision for it carries it; for a person
    without a pass whose dwelling alone is named, ``unnamed``, ``observation`` too for a
    household with a returnee under observation, as a scanned pass of it carries it)."""
    kept = holds_confirmed(form, holds, household, decision, unnamed)
    if decision == "pass":
        note(request, **dict.fromkeys(holds, "confirmed"))
    flags: tuple[str, ...] = ("quarantine",) if household_quarantined(g, household) else ()
    if unnamed and household and household_observed(g, household):
        flags += ("observation",)
    return kept, flags


@router.post("/api/household", include_in_schema=False)
@served_while_stopping
async def check_household(request: Request, session: ActionSession, g: GuardDep) -> Response:
    """Whether a dwelling is in home quarantine (for the form, as the unit is typed), and
    whether the gate knows it (``household_status``). A POST with the form's CSRF token, so a
    dwelling and its quarantine never appear in a URL."""
    form = await request.form()
    unit = form.get("unit")
    unit = unit.strip()[:40] if isinstance(unit, str) else ""
    clear = "household" in g.clear(session)
    status = await asyncio.to_thread(household_status, g, unit, clear) if unit else {}
    answer = {"quarantined": False} | status
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})


def household_status(g: Guard, unit: str, clear: bool) -> dict[str, Any]:
    """What the registration form says of a dwelling as it is typed: ``quarantined`` (today,
    ``household_quarantined``) and, for one the gate does not know (``gate_dwellings``),
    ``near``: the known dwellings it differs from only by separators, spaces or case
    (``D-404`` for ``D404``), each with whether it is quarantined, so the form asks "did you
    mean D-404?" before the guard registers a resident of ``D404`` unheld; absent when there
    are none, and for a viewer who sees households masked (``clear`` false). Blocking."""
    status: dict[str, Any] = {"quarantined": household_quarantined(g, unit)}
    near = gate_dwellings(g).verdict(unit).near if clear else ()
    if near:
        status["near"] = [
            {"household": n, "quarantined": household_quarantined(g, n)} for n in near
        ]
    return status


@router.get("/register", response_class=HTMLResponse, include_in_schema=False)
def register_page(request: Request, session: PageSession, g: GuardDep) -> Response:
    """The page, never a search: ``?q=`` in its address (an old bookmark, a pasted link) is
    not read, so no name or phone number is ever searched by an address the phone's history
    and a proxy's log keep (the search posts it: ``register_search``, cut to 40 characters
    in ``page``)."""
    return page(request, g, session)


@router.post("/register/search", response_class=HTMLResponse, include_in_schema=False)
@served_while_stopping
async def register_search(request: Request, session: ActionSession, g: GuardDep) -> Response:
    """The visitor search, posted with the form's CSRF token: a name or a phone number typed
    is never in a URL (the shared phone's history kept it past every purge)."""
    q = (await request.form()).get("q")
    return await asyncio.to_thread(page, request, g, session, q=q if isinstance(q, str) else None)


def page(
    request: Request,
    g: Guard,
    session: Session,
    *,
    q: str | None = None,
    typed: dict[str, Any] | None = None,
    error: str | None = None,
    fever: bool = False,
    held: list[str] | None = None,
) -> HTMLResponse:
    """The registration page; after a refusal ``typed`` holds the form as it was sent."""
    lang = g.lang(request)
    clear = g.clear(session)
    query = (q or "").strip()[:40]
    events, found, unreadable = history(g, lang, searched(query, clear) if query else "")
    flash = g.flash(request)
    return g.render(
        request,
        "guard_register.html",
        session,
        rows=[
            {**feed_row(e, lang, g.tz, clear), "vehicle": vehicle_text(e, clear)} for e in events
        ],
        here="/guard/register",  # drawn for a refused form too: its links lead here
        fever_c=g.fever_c,
        directions=directions(g.cfg.site.direction),
        default_direction=g.cfg.site.default_direction,
        q=query,
        found=[visitor_row(e, clear, g.tz) for e in found],
        typed=typed or {},
        fever_refused=fever,
        held=held or [],
        max_passengers=MAX_PASSENGERS,
        flash_ok=flash["flash_ok"],
        flash_err=error or flash["flash_err"] or unreadable,
        status_code=400 if error else 200,
    )


def history(
    g: Guard, lang: str, search: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """The last day's registrations, the earlier visitors ``search`` finds (none without),
    dated; past a damaged page of the log neither, and why, so the form still registers."""
    try:
        # The last 24 hours, whatever the clock said: a visitor registered before NTP stepped
        # it (stamped 1970) is listed, at the time they were registered.
        events = queries.events_of_kinds_since(g.core.store, REGISTRATION_KINDS, g.since(24), 50)
        # Within retention (older rows hold no person); one registered before NTP stepped
        # the clock by when it happened.
        kept = g.since(24 * g.cfg.store.retention_days)
        found = queries.past_visitors(g.core.store, search, since=kept) if search else []
        return g.dated(events), g.dated(found), None
    except ReadFailure as exc:
        g.core.store.read_past(exc)
        return [], [], unreadable_words(lang, exc, g.core.store.path.name)


#: The digits of a phone number a viewer without phone numbers sees (``138****8000``).
SHOWN_DIGITS = 4


def searched(query: str, clear: frozenset[str]) -> str:
    """What the visitor search looks for: for a viewer who sees phone numbers masked, a
    number is looked up by its last ``SHOWN_DIGITS`` digits only (the full number typed finds
    the visitor among those), so longer suffixes cannot read the hidden digits back out.
    Decided on the text as the search reads it (``queries.search_text``): ``⑬8000`` is
    ``138000``, cut as typed in plain digits."""
    folded = queries.search_text(query)
    if "person.phone" in clear or not folded.isdigit() or len(folded) <= SHOWN_DIGITS:
        return query
    return folded[-SHOWN_DIGITS:]


async def register(
    request: Request,
    g: Guard,
    session: Session,
    form: FormData,
    kind: str,
    person: dict[str, Any],
    temp_c: float | None = None,
    unknown: tuple[str, ...] = (),
) -> Response:
    """Enter a registration through the engine, which checks the reading (plausible, and no
    pass with a fever) and commits it like any other decision, a pass on the condition that
    the same one was not let through a moment before (``not_again``, looked at in the
    commit's own transaction); "done" once it is committed, asked first (``asked_again``)
    when the commit found such a record, else the form again with what was typed and
    ``err.store``. ``unknown``: ``unknown_dwelling`` for a resident's dwelling the gate does
    not know, kept as typed (``dwelling_asked``)."""
    direction = direction_of(form, g.cfg.site.assumed_way())
    decision = decision_of(form)
    household = person.get("unit") if kind == "registration" else person.get("resident_of")
    resident = person["name"] if person.get("resident") else None
    holds = holds_on(g, household, direction, resident)
    kept, flags = confirmed_pass(request, g, form, holds, household, decision)
    note(request, direction=direction, decision=decision)
    again = not_again(g, form, kind, person)
    person = person | kept
    try:
        outcome = await g.manual(
            request,
            decision=decision,
            operator=session.name,
            reason=person["note"],
            direction=direction,
            person={k: v for k, v in person.items() if v is not None},
            kind=kind,
            temp_c=temp_c,
            flags=flags + unknown,
            # A resident's outing is the household's, as their pass's would be (the quota).
            household=household if resident is not None else None,
            unless=again,
            quota_checked="quota" not in holds,  # looked at again as the engine starts it
        )
    except QuotaReached:  # another tablet's outing of the household went first: asked
        raise BadInput(confirm_key("quota"), h=household) from None
    except AlreadyRecorded as exc:  # another tablet's landed between the look and the commit
        earlier = await asyncio.to_thread(g.dated, [dict(exc.event)])
        return asked_again(request, g, session, form, kind, person, earlier[0])
    except StoreFault:
        raise BadInput("err.store") from None  # the form stays as typed
    return decided(request, "/guard/register", outcome)


def decision_of(form: FormData, field: str = "reg.decision", default: str | None = "pass") -> str:
    """``pass`` or ``deny``; the button "登记为禁止通行" (``record_deny``) is a deny."""
    if form.get("record_deny"):
        return "deny"
    return choice(form.get("decision"), field, ("pass", "deny"), default)


async def refused(
    request: Request, g: Guard, session: Session, form: FormData, problem: BadInput
) -> HTMLResponse:
    """The form again with what was typed and the problem (``drawn_again``, the console's one
    way: the audit row says refused, the form's token is free to send it corrected)."""
    typed = {k: str(v)[:200] for k, v in form.items() if k not in ("csrf", "record_deny")}
    fever = problem.key in DENY_OFFERED
    held = holds_asked(form, problem)
    typed["form"] = "vehicle" if "plate" in form else "person"

    def again(request: Request, g: Guard, session: Session, refused: Refused) -> HTMLResponse:
        typed, error = refused.typed, refused.error
        return page(request, g, session, typed=typed, error=error, fever=fever, held=held)

    return await drawn_again(request, g, session, problem, typed, again)


def earlier_fields(g: Guard, form: FormData) -> dict[str, Any]:
    """Phone and ID number of the earlier registration the guard copied (``copy_from``)."""
    seq = whole(form.get("copy_from"), "reg.copy_from", 1, 2**62, None)
    if seq is None:
        return {}
    event = queries.event_by_seq(g.core.store, seq) or {}
    person = event.get("person")
    if event.get("kind") != "registration" or not isinstance(person, dict):
        raise BadInput("err.no_visitor")
    return {k: person.get(k) for k in ("phone", "id_number")}


@router.post("/register/person", name="register_person", include_in_schema=False)
@once_per_form
async def register_person(request: Request, session: ActionSession, g: GuardDep) -> Response:
    form = await request.form()
    try:
        earlier = earlier_fields(g, form)
        person = {
            "name": clean(form.get("name"), "reg.name", required=True, max_len=60),
            "phone": clean(form.get("phone"), "reg.phone", max_len=20) or earlier.get("phone"),
            "id_number": clean(form.get("id_number"), "reg.id_number", max_len=32)
            or earlier.get("id_number"),
            "unit": clean(form.get("unit"), "reg.unit", required=True, max_len=40),
            "note": clean(form.get("reason"), "reg.reason", required=True),
            # "a resident of this dwelling": the unit is their home, not a host's
            **({"resident": True} if form.get("resident") else {}),
        }
        if person["phone"] and not any(ch.isdigit() for ch in str(person["phone"])):
            raise BadInput("err.phone")
        temp_c = needed(form.get("temp_c"), "reg.temp", *plausible(g))
        resident = str(person["unit"]) if person.get("resident") else None
        asked, unknown = await dwelling_asked(request, g, session, form, resident)
        if asked is None:
            asked = await off_map(request, g, session, form, resident)
        if asked is None:
            asked = await registered_again(request, g, session, form, "registration", person)
        if asked is not None:
            return asked
        return await register(request, g, session, form, "registration", person, temp_c, unknown)
    except BadInput as exc:
        return await refused(request, g, session, form, exc)


class AskedFrom(NamedTuple):
    """Where a resident's dwelling is asked about (``off_map``, ``dwelling_asked``)."""

    #: The form's path.
    action: str
    #: The question for a dwelling the compound map lacks.
    words: str
    #: The page "no" leads to (None: the form's own).
    back: str | None
    #: The question for a dwelling that matches none the gate knows.
    unknown_words: str
    #: The form's field that names the dwelling (the one a "Use D-404" button sends).
    field: str


ASKED_FROM_REGISTRATION = AskedFrom(
    "/guard/register/person", "confirm.resident_off_map", None,
    "confirm.resident_unknown_dwelling", "unit",
)  # fmt: skip
ASKED_FROM_MANUAL = AskedFrom(
    "/guard/manual", "confirm.manual_off_map", "/guard", "confirm.manual_unknown_dwelling",
    "household",
)  # fmt: skip


async def off_map(
    request: Request, g: Guard, session: Session, form: FormData, unit: str | None,
    asked_from: AskedFrom = ASKED_FROM_REGISTRATION,
) -> Response | None:  # fmt: skip
    """A resident's dwelling (``unit``: a registered resident's, or a person without a pass's
    at the manual desk, ``asked_from``) the compound map (when one is loaded) lacks is likely a
    typo (``3-2-710`` for ``3-2-701``: the outing would be charged to 3-2-710's quota, and the
    real household's quarantine, quota and observation go unasked): asked first
    (``confirm_first``), unless the form says it was confirmed for this dwelling (``off_map``,
    sent by the confirmation and kept as the form is drawn again after a fever or a hold).
    None: nothing to ask (no resident's dwelling, ``unit`` None); one off the map confirmed
    is said on the request's audit row (``off_map: confirmed``), as a hold confirmed is."""
    if unit is None or not await asyncio.to_thread(g.core.ledgers.compound.lacking, [unit]):
        return None
    if same_text(str(form.get("off_map") or "")) == same_text(unit):
        note(request, off_map="confirmed")
        return None
    action, words, back = asked_from[:3]
    text = i18n.t(g.lang(request), words, household=unit)
    sent = [(k, v) for k, v in form.multi_items() if k != "off_map"]
    asked = FormData([*sent, ("off_map", unit)])
    return confirm_first(request, g, session, action, asked, text, back=back)


async def dwelling_asked(
    request: Request, g: Guard, session: Session, form: FormData, household: str | None,
    asked_from: AskedFrom = ASKED_FROM_REGISTRATION,
) -> tuple[Response | None, tuple[str, ...]]:  # fmt: skip
    """A resident's dwelling (a registered resident's ``unit``, or a person without a pass's
    at the manual desk, ``asked_from``) that matches none the gate knows (``kiosk.dwellings``:
    ``D404`` for the quarantine list's ``D-404`` held nobody and charged the outing to a
    household nobody has) is asked about first: the page offers each known dwelling it differs
    from only by separators, spaces or case ("did you mean D-404?", a button sending it in the
    form's ``asked_from.field``, never taken in its place: ``1-101`` and ``11-01`` may be two
    homes), and to record it as typed (``unknown_dwelling``, kept as the form is drawn again
    for a hold). In the off-map question's words when a compound map is loaded that lacks it
    (which it then answers too: ``off_map``; and a form that says it was confirmed off the
    map, ``off_map``, is not asked again). Returns the question, or None and the flags the
    record carries: ``unknown_dwelling`` once confirmed (said on the audit row). None, () for
    no dwelling (``household`` None). Blocking reads in a thread."""
    if household is None:
        return None, ()
    known = await asyncio.to_thread(gate_dwellings, g)
    verdict = known.verdict(household, form.get("unknown_dwelling"))
    if verdict.known:
        return None, ()
    lacking = await asyncio.to_thread(g.core.ledgers.compound.lacking, [household])
    said_off_map = same_text(str(form.get("off_map") or "")) == same_text(household)
    if verdict.confirmed or (lacking and said_off_map):  # the one question asked, answered
        note(request, unknown_dwelling="confirmed")
        return None, (UNKNOWN_DWELLING,)
    lang = g.lang(request)
    words = asked_from.words if lacking else asked_from.unknown_words
    text = i18n.t(lang, words, household=household)
    near = verdict.near if "household" in g.clear(session) else ()
    if near:
        text += " " + i18n.t(lang, "confirm.did_you_mean", near=" / ".join(near))
    sent = [(k, v) for k, v in form.multi_items() if k not in ("unknown_dwelling", "off_map")]
    asked = FormData([*sent, ("unknown_dwelling", household), ("off_map", household)])
    offered = tuple(
        (asked_from.field, n, i18n.t(lang, "manual.use_dwelling", household=n)) for n in near
    )
    yes = i18n.t(lang, "manual.as_typed", household=household)
    action, back = asked_from.action, asked_from.back
    page = confirm_first(
        request, g, session, action, asked, text, back=back, offered=offered, yes=yes
    )
    return page, ()


def not_again(g: Guard, form: FormData, kind: str, person: dict[str, Any]) -> NotAgain | None:
    """The condition a registration pass for a person (``kind`` ``registration``) or a vehicle
    (``vehicle``) is recorded on (``kiosk.again``): none of the same one let through in the
    same direction in the last ``AGAIN_WINDOW_S``, save the record the guard said to record
    it again over (``again``, its ``seq``). None for a deny: no passage, recorded as often as
    it is made."""
    if decision_of(form) != "pass":
        return None
    seen = str(form.get("again") or "")
    direction = direction_of(form, g.cfg.site.assumed_way())
    since = g.since(AGAIN_WINDOW_S / 3600)
    return NotAgain(kind, person, direction, since, int(seen) if seen.isdecimal() else None)


def registered_before(g: Guard, again: NotAgain) -> dict[str, Any] | None:
    """The record ``again`` is not written over (``NotAgain.record_in``), dated; None when
    there is none. Blocking."""
    event = again.record_in(g.core.store)
    return None if event is None else g.dated([event])[0]


async def registered_again(
    request: Request, g: Guard, session: Session, form: FormData, kind: str, person: dict[str, Any]
) -> Response | None:
    """A pass for a person or a vehicle let through a moment ago in the same direction (by
    another guard's tablet, at the same gate) is asked about first (``asked_again``), before
    its holds are. The commit looks again (``register``): one sent at the very same moment as
    the other is asked then. None: nothing to ask."""
    again = not_again(g, form, kind, person)
    if again is None:
        return None
    try:
        earlier = await asyncio.to_thread(registered_before, g, again)
    except ReadFailure as exc:  # a damaged page: the commit looks on the writer's connection
        g.core.store.read_past(exc)
        return None
    if earlier is None:
        return None
    return asked_again(request, g, session, form, kind, person, earlier)


def asked_again(
    request: Request, g: Guard, session: Session, form: FormData, kind: str,
    person: dict[str, Any], earlier: dict[str, Any],
) -> Response:  # fmt: skip
    """The registration asked about first (``confirm_first``), naming the record ``earlier``
    of the same one: a second record is a second passage, a resident's second outing for the
    quota. Recorded again only when the guard says so (twins, or the same person out twice),
    the confirmation carrying which record it was shown (``again``, its ``seq``: a newer one
    since asks again)."""
    lang = g.lang(request)
    direction = direction_of(form, g.cfg.site.assumed_way())
    vehicle = kind == "vehicle"  # a car said by its plate and driver
    said = ("plate", "driver") if vehicle else ("name", "unit")
    name, unit = (person[k] for k in said)
    text = i18n.t(
        lang, "confirm.registered_again", name=name, unit=unit,
        direction=i18n.t(lang, f"dir.{direction}"), who=earlier.get("operator") or "?",
        time=event_time(earlier, lang, g.tz), seq=earlier["seq"],
        decision=i18n.t(lang, f"decision.{earlier.get('decision')}"),
    )  # fmt: skip
    sent = [(k, v) for k, v in form.multi_items() if k != "again"]
    asked = FormData([*sent, ("again", str(earlier["seq"]))])
    path = "/guard/register/vehicle" if vehicle else "/guard/register/person"
    return confirm_first(request, g, session, path, asked, text)


def occupants_of(form: FormData, g: Guard) -> tuple[dict[str, Any], list[tuple[str, float]]]:
    """The driver and passengers as typed: each with a plausible hand-measured temperature;
    a passenger row left entirely empty is no passenger."""
    driver = clean(form.get("driver"), "reg.driver", required=True, max_len=60)
    driver_t = needed(form.get("driver_temp"), "reg.driver_temp", *plausible(g))
    temps = [(driver, driver_t)]
    passengers = []
    for i in range(1, MAX_PASSENGERS + 1):
        name = clean(form.get(f"p{i}_name"), "reg.passenger", max_len=60)
        raw = str(form.get(f"p{i}_temp") or "").strip()
        if not name and not raw:
            continue
        t = needed(raw, "reg.passenger_temp", *plausible(g))
        passengers.append({"name": name, "temp_c": t})
        temps.append((name or f"#{len(passengers)}", t))
    person = {"driver": driver, "driver_temp_c": driver_t, "passengers": passengers}
    return person, temps


def plate_word(status: dict[str, Any]) -> str:
    """What the record keeps of the plate check: ``resident``, ``unknown`` or ``no_list``."""
    if status["known"]:
        return "resident"
    return "unknown" if status["listed"] else "no_list"


@router.post("/register/vehicle", name="register_vehicle", include_in_schema=False)
@once_per_form
async def register_vehicle(request: Request, session: ActionSession, g: GuardDep) -> Response:
    form = await request.form()
    try:
        plate = clean(form.get("plate"), "reg.plate", required=True, max_len=16).upper()
        occupants, temps = occupants_of(form, g)
        status = plate_status(g, plate)
        person = {
            "plate": plate,
            **occupants,
            "occupants": len(occupants["passengers"]),
            # How many of them have a fever (the reports count each; kiosk.vehicles).
            "feverish": sum(t >= g.fever_c for _who, t in temps),
            "resident_of": status["household"],
            "plate_check": plate_word(status),
            "note": clean(form.get("reason"), "reg.reason", required=True),
        }
        feverish = [(who, t) for who, t in temps if t >= g.fever_c]
        if feverish and decision_of(form) == "pass":
            who = "、".join(f"{w} {t:.1f} °C" for w, t in feverish)
            raise BadInput("reg.vehicle_fever", who=who)
        note(request, plate_known=status["known"])
        asked = await registered_again(request, g, session, form, "vehicle", person)
        if asked is not None:
            return asked
        return await register(
            request, g, session, form, "vehicle", person, max(t for _w, t in temps)
        )
    except BadInput as exc:
        return await refused(request, g, session, form, exc)
