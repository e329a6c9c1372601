"""The quarantine, revocation and household lists (``/guard/lists``): edits go through
``core.lists`` with the guard as actor (the list store audits each change itself).

Destructive edits (ending a quarantine, voiding a pass or restoring one, removing a
household), and a quarantine for a household the compound map (when one is loaded) does not
hold, take a confirmation step first: the request without ``confirm=yes`` changes
nothing and answers a page that says what will happen, with the same fields and a confirm
button (``confirm_first``, used by the passes list too). That step is audited as
``confirm_asked``; the edit itself is audited when confirmed."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from kiosk import privacy, queries
from kiosk.firsts import firsts
from kiosk.lists import FORGET_SOURCE, NEW_ENTRY, entry_version
from kiosk.peers import held_quarantine, held_revocations
from ui import i18n
from ui.auth import Session
from ui.guard import deps
from ui.guard.community.common import FRESH, Refused, form_page, or_again, typed_of
from ui.guard.deps import ActionSession, Guard, GuardDep, done, note, room
from ui.guard.display import clock_time, lists_view, source_text
from ui.guard.forms import BadInput, list_edit, whole
from ui.views import lists_stale_hours

router = room("/guard/lists")


@form_page(router, "/lists")
def page(request: Request, g: Guard, session: Session, refused: Refused = FRESH) -> HTMLResponse:
    """The lists page; after a refused entry, its add form as sent (``list``: which of
    the forms)."""
    lang = g.lang(request)
    fresh = g.core.lists.current.freshness
    freshness = None
    if fresh.updated_at is not None:
        freshness = i18n.t(
            lang,
            "lists.freshness",
            when=clock_time(fresh.updated_at.isoformat(), lang, g.tz),
            source=source_text(lang, fresh.source),
        )
    rows = queries.list_rows(g.core.store)
    # A card voided here and at another gate too (both before either knew): one entry, this
    # gate's (its restore says the other gate's holds: ``ListStore.unrevoke``); two other
    # gates both voiding one: one entry, the first gate's.
    shown = {str(r["pass_id"]) for r in rows["revocations"]}
    return g.render(
        request,
        "guard_lists.html",
        session,
        lists=lists_view(rows, g.tz, lang, g.clear(session)),
        peer_revoked=[
            {"gate": r.kiosk_id, "pass_id": r.pass_id, "actor": r.actor or "—"}
            | {"when": clock_time(r.revoked_at, lang, g.tz) or "—"}
            for r in firsts(held_revocations(g.core.store.reader()), lambda v: v.pass_id, shown)
        ],
        # In force here too; lifted only at the gate that added it (kiosk.peers).
        peer_quarantine=held_quarantine(g.core.store.reader()),
        freshness=freshness,
        stale=lists_stale_hours(g.core),
        shared_keys=g.core.lists.current.households_sharing_a_key(),
        # A clock never set (1970) cannot say today: no date offered (the form's own rule).
        today="" if g.today().year < 2000 else g.today().isoformat(),
        here="/guard/lists",  # drawn for a refused form too: its links lead here
        **(g.flash(request) | refused.context()),
    )


#: Each list's add form's fields, drawn again as typed when the entry is refused.
ADD_FIELDS = {
    "quarantine": ("household", "holder", "from", "until", "note"),
    "revocations": ("pass_id", "note"),
    "households": ("household", "residents", "observation_until", "note"),
}

#: The list edits that take a confirmation step.
DESTRUCTIVE = {
    ("quarantine", "remove"),
    ("revocations", "add"),
    ("revocations", "remove"),
    ("households", "remove"),
}


def confirm_first(
    request: Request,
    g: Guard,
    session: Session,
    action: str,
    form: FormData,
    text: str,
    *,
    reason: bool = False,
    seen: str | None = None,
    back: str | None = None,
    holds: tuple[str, ...] = (),
    typed: dict[str, str] | None = None,
    unnamed: bool = False,
    offered: tuple[tuple[str, str, str], ...] = (),
    yes: str | None = None,
) -> HTMLResponse:
    """The confirmation step of a destructive action: nothing changed yet; the page repeats
    the form's fields to ``action`` with ``confirm=yes`` (and a reason field if asked;
    ``seen``: the version of the entry the page shows, ``kiosk.lists.entry_version``;
    ``back``: the page "no" leads to, by default the one ``action``'s path starts with).
    ``holds``: a pass that holds apply to (``ui.guard.registrations.HOLDS``): instead each
    one's reason (as ``typed`` before) and its confirmation (``confirm_<hold>``), or the deny
    (``record_deny``); ``unnamed``: for a person the guard names only the dwelling of.
    ``offered``: buttons ``(name, value, words)`` beside "yes", each sending the form with
    its value in the field it names (a dwelling the guard may have meant); ``yes``: the
    words of "yes" (default ``confirm.yes``)."""
    note(request, action="confirm_asked", about=action)
    deps.form_not_acted(request)  # the confirmation's form acts, with its own token
    skip = ("csrf", "confirm", "once") + (("seen",) if seen is not None else ())
    fields = [(k, str(v)[:200]) for k, v in form.multi_items() if k not in skip][:60]
    fields += [("seen", seen)] if seen is not None else []
    return g.render(
        request,
        "guard_confirm.html",
        session,
        action=action,
        fields=fields,
        text=text,
        reason=reason,
        holds=list(holds),
        typed=typed or {},
        unnamed=unnamed,
        offered=list(offered),
        yes=yes,
        back=back or "/".join(action.split("/")[:3]),  # the page the form is on
        here=back or "/".join(action.split("/")[:3]),  # its language and sign-in links too
    )


def confirm_text(which: str, op: str, form: FormData, g: Guard, session: Session, lang: str) -> str:
    """What a destructive list edit will do, in words, naming the entry (masked per role)."""
    clear = g.clear(session)
    if which == "quarantine":
        entry = whole(form.get("id"), "lists.quarantine", 1, 2**62, None)
        row = next(
            (r for r in queries.list_rows(g.core.store)["quarantine"] if r["id"] == entry), None
        )
        if row is None:
            raise BadInput("lists.no_entry")
        shown = privacy.mask_event({"household": row["household"], "holder": row["holder"]}, clear)
        who = shown.get("holder") or i18n.t(lang, "lists.kind.household")
        return i18n.t(lang, "confirm.quarantine_remove", household=shown["household"], who=who)
    if which == "households":
        shown = privacy.mask_event({"household": str(form.get("household") or "")[:64]}, clear)
        return i18n.t(lang, "confirm.household_remove", household=shown["household"])
    pass_id = str(form.get("pass_id") or "")[:64]
    held = g.core.lists.current.revocations.get(pass_id) if op == "remove" else None
    if held is not None and held.source == FORGET_SOURCE:
        # Lifting a forget's revocation undoes that part of a resident's forget: say so.
        return i18n.t(lang, "confirm.unrevoke_forget", id=pass_id)
    return i18n.t(lang, f"confirm.{'unrevoke' if op == 'remove' else 'revoke_id'}", id=pass_id)


def replace_text(entry: dict[str, Any], lang: str) -> str:
    """What the households' add form will replace: the entry as it is, and who set it."""
    until = entry.get("observation_until") or "—"
    residents = entry.get("residents")
    return i18n.t(
        lang,
        "confirm.household_replace",
        household=entry["household"],
        residents="—" if residents is None else residents,
        until=until,
        actor=entry.get("actor") or entry.get("source") or "—",
    )


@router.post("/lists/{which}/{op}", name="list_edit", include_in_schema=False)
@deps.once_per_form  # an add form: one entry (a removal is its own repeat: refused)
async def edit_list(
    which: str, op: str, request: Request, session: ActionSession, g: GuardDep
) -> Response:
    form = await request.form()
    # A removal has nothing typed to keep; its refusal is said on the page all the same,
    # never in its address: the list's words name the dwelling or the pass.
    typed = {}
    if op == "add" and which in ADD_FIELDS:
        typed = typed_of(form, ADD_FIELDS[which]) | {"list": which}
    act = functools.partial(edit, request, g, session, which, op, form)
    return await or_again(request, g, session, act, typed=typed, again=page)


async def edit(
    request: Request, g: Guard, session: Session, which: str, op: str, form: FormData
) -> Response:
    """One list edit from its form: a destructive one asks first (``confirm_first``)."""
    method, kwargs = list_edit(which[:20], op[:10], form, g.today())
    note(request, list=which, op=op)
    if (which, op) in DESTRUCTIVE and form.get("confirm") != "yes":
        text = confirm_text(which, op, form, g, session, g.lang(request))
        return confirm_first(request, g, session, f"/guard/lists/{which}/{op}", form, text)
    if (which, op) == ("quarantine", "add") and form.get("confirm") != "yes":
        # A household the compound map lacks is likely a typo: the real one walks out.
        household = kwargs["household"]
        if await asyncio.to_thread(g.core.ledgers.compound.lacking, [household]):
            text = i18n.t(g.lang(request), "confirm.quarantine_off_map", household=household)
            return confirm_first(request, g, session, f"/guard/lists/{which}/{op}", form, text)
    if (which, op) == ("households", "add") and form.get("confirm") != "yes":
        # Over an entry the page did not show (another guard's): shown, replaced if confirmed.
        try:  # refused when several entries spell it: merged first (ListStore)
            entry = await asyncio.to_thread(g.core.lists.household_entry, kwargs["household"])
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        if entry is not None:
            text = replace_text(entry, g.lang(request))
            seen = entry_version("households", entry)
            path = f"/guard/lists/{which}/{op}"
            return confirm_first(request, g, session, path, form, text, seen=seen)
        kwargs["seen"] = NEW_ENTRY  # none, as the page showed: refused if one came since
    try:
        # ListStore writes through the event log's writer and audits with the actor.
        await asyncio.to_thread(method, g.core.lists, actor=session.name, **kwargs)
    except ValueError as exc:  # ListError: the store's own validation, in its words
        raise BadInput(str(exc)) from None
    return done(request, "/guard/lists")
