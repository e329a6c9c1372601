"""A resident's request, at the console (the admin's, ``/guard/community/people``): the
console's way to ``kiosk person show`` and ``kiosk person forget`` (``kiosk.people``;
docs/privacy.md, "A resident's request").

The keys are the CLI's (pass ids, a household, a name, phone numbers, plates, returnee
numbers), bounded and checked by ``kiosk.people.Person.of``; they travel only in POST bodies,
never in an address. *Show* is ``kiosk.people.show``: the same call as the CLI's, so each show
(the page, the JSON download: the resident's copy) writes the CLI's one ``person_shown`` row
(kinds of key and counts, never the data), and the route class writes no second one. *Forget*
first answers a preview (``kiosk.people.would_forget``, the CLI's dry run and what the forget
itself finds, nothing changed; audited as ``confirm_asked``, counts only) whose form carries
the version of what it listed (``version_of``); confirmed, the rows are found again and a
change since refuses (``people.err.changed``), checked again inside the forget's transaction
(its ``seen``), as a list's removal refuses with its ``seen``; what is still in force is
refused unless the admin ticks *force*. ``kiosk.people.forget`` writes its
``person_forgotten`` row, the request's; the result names the ``kiosk fleet forget`` line the
office runs, as the CLI prints it. A pass id given alone that no row here holds is the CLI's
too: the preview and the result say that the pass is voided though no row names its holder
(``Found.pass_only``); other keys beside it that find no one are refused, told to give the
pass id alone. Keys without a pass id find the passes only through this gate's rows: the
preview and the result say that a card of theirs no row holds still opens the gate, and that
the office must give its pass id (``Found.passes_may_remain``). A guard's session gets 403 and
no link.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from kiosk.people import (
    FORGET_ACTION,
    SHOW_ACTION,
    Forgotten,
    Found,
    Person,
    PersonActive,
    PersonChanged,
    PersonError,
    forget,
    show,
    would_forget,
)
from ui import i18n
from ui.auth import Session
from ui.guard.community.common import (
    PREFIX,
    AdminSession,
    Refused,
    admin,
    community_room,
    or_again,
    render,
    typed_of,
)
from ui.guard.deps import Guard, GuardDep, PageSession, form_not_acted, note, served_while_stopping
from ui.guard.forms import BadInput, clean

PAGE = f"{PREFIX}/people"
router = community_room(PAGE)
#: The CLI's keys, in its order; those it takes several of.
KEYS = ("pass_id", "household", "name", "phone", "plate", "returnee")
SEVERAL = frozenset({"pass_id", "phone", "plate", "returnee"})
#: At most this many values of a key that takes several, and this long a field.
MAX_EACH = 8
MAX_FIELD = 600
_SPLIT = re.compile(r"[,，;；、]")
_NUMBER = re.compile(r"[0-9]{1,18}")


def person_of(form: FormData) -> Person:
    """The person the form's keys name; ``BadInput`` (in the admin's words) for none or a
    malformed one."""
    values: dict[str, list[str]] = {}
    for key in KEYS:
        field = f"people.key.{key}"
        text = clean(form.get(key), field, max_len=MAX_FIELD if key in SEVERAL else 64)
        parts = [p.strip() for p in _SPLIT.split(text)] if key in SEVERAL else [text]
        if key == "pass_id":  # spaces between ids too: an id has none
            parts = [q for p in parts for q in p.split()]
        values[key] = [p for p in parts if p]
        if len(values[key]) > MAX_EACH:
            raise BadInput("people.err.too_many", field=field, n=MAX_EACH)
    # ASCII digits only: "²" or "①" is a digit to ``isdigit`` and none to ``int``.
    if not all(_NUMBER.fullmatch(r) for r in values["returnee"]):
        raise BadInput("people.err.returnee")
    try:
        return Person.of(
            pass_ids=values["pass_id"],
            household=next(iter(values["household"]), None),
            name=next(iter(values["name"]), None),
            phones=values["phone"],
            plates=values["plate"],
            returnees=[int(r) for r in values["returnee"]],
        )
    except PersonError as exc:
        raise problem(exc) from None


def problem(exc: PersonError) -> BadInput:
    """``kiosk.people``'s refusal in the admin's words, by its code."""
    kind = str(exc.params.get("kind", ""))
    if exc.code == "text" and kind in ("household", "name"):
        return BadInput("people.err.text", field=f"people.key.{kind}")
    if exc.code == "text":  # a pass id or phone too long or not printable: that key's words
        return BadInput(f"people.err.{kind}")
    if exc.code == "unmatched":  # one key of several finds no one: its kind, never its value
        return BadInput("people.err.unmatched", field=f"people.key.{kind}")
    if exc.code == "namesakes":
        return BadInput("people.err.namesakes", n=exc.params["n"])
    if exc.code == "nobody" and exc.params.get("alone"):  # the forget's: give the pass alone
        return BadInput("people.err.nobody_alone")
    if exc.code in ("pass_id", "phone", "plate", "returnee", "nobody"):
        return BadInput(f"people.err.{exc.code}")
    return BadInput("people.err.no_key")


def version_of(found: Found) -> str:
    """What the preview listed, as a short digest (``Found.version``): a row added, changed
    or gone since changes it."""
    return found.version()


def active_text(lang: str, active: dict[str, int]) -> str:
    """What is still in force, in words: "1 in Quarantine list, ..."."""
    return ", ".join(
        f"{i18n.t(lang, 'people.rows', n=n)} · {i18n.t(lang, f'people.st.{t}')}"
        for t, n in sorted(active.items())
    )


def _rows_view(found: Found) -> list[dict[str, Any]]:
    """The resident's copy by store, for the page: each row's fields as text (JSON for a
    value that is not one), empty ones left out."""
    stores = found.as_dict()["stores"]
    out = []
    for table, rows in stores.items():
        shown = [[(k, _text(v)) for k, v in r.items() if v not in (None, "")] for r in rows]
        out.append({"table": table, "rows": shown})
    return out


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def page(request: Request, g: Guard, session: Session, refused: Refused | None = None, **ctx: Any
         ) -> HTMLResponse:  # fmt: skip
    """The room: the search form (as typed after a refusal), and what a step drew under it."""
    refused = refused or Refused(ctx.pop("typed", {}))
    return render(
        g, request, "community_people.html", session, keys=KEYS, several=SEVERAL,
        **refused.context(), **ctx,
    )  # fmt: skip


def keys_typed(form: FormData) -> dict[str, str]:
    """The keys as typed, whole up to the longest a field takes (``MAX_FIELD``): the
    download and the confirmation send them on."""
    return typed_of(form, KEYS, MAX_FIELD)


@router.get("/people", response_class=HTMLResponse, include_in_schema=False)
def people_page(request: Request, session: PageSession, g: GuardDep) -> Response:
    admin(g, session)  # a guard: 403
    return page(request, g, session)


@router.post("/people/show", name="person_show", include_in_schema=False)
@served_while_stopping
async def person_show(request: Request, session: AdminSession, g: GuardDep) -> Response:
    """``kiosk person show``: the page, or (``as=json``) the CLI's JSON as a download."""
    form = await request.form()

    async def act() -> Response:
        person = person_of(form)
        try:
            found = await asyncio.to_thread(show, g.core.store, person, g.today(), session.name)
        except PersonError as exc:
            raise problem(exc) from None
        # ``show`` wrote the CLI's row: it is the request's (the route class writes no other).
        row = {"keys": person.kinds(), "rows": found.counts()}
        request.state.request_audit.written.append((session.name, SHOW_ACTION, row))
        if form.get("as") == "json":
            return download(found, g)
        return page(
            request, g, session, typed=keys_typed(form), found=found, stores=_rows_view(found),
            in_force=active_text(g.lang(request), dict(found.active)),
        )  # fmt: skip

    return await or_again(request, g, session, act, typed=keys_typed(form), again=page)


def download(found: Found, g: Guard) -> Response:
    """The CLI's JSON (``kiosk person show``), as a file the office hands the resident."""
    body = json.dumps(found.as_dict(), ensure_ascii=False, default=str) + "\n"
    name = f"person-{g.cfg.site.kiosk_id}-{g.today().isoformat()}.json"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return Response(
        body.encode(),
        media_type="application/json; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/people/forget", name="person_forget", include_in_schema=False)
async def person_forget(request: Request, session: AdminSession, g: GuardDep) -> Response:
    """``kiosk person forget``: a preview first (nothing done), then, confirmed with the
    preview's version, the forget."""
    form = await request.form()
    typed = keys_typed(form)

    async def act() -> Response:
        person = person_of(form)
        found = await previewed(g, person)
        if form.get("confirm") != "yes":
            note(request, action="confirm_asked", about=FORGET_ACTION, keys=person.kinds())
            note(request, rows=found.counts(), active=dict(found.active))
            return dry_run(request, g, session, typed, found)
        try:
            return await confirmed(request, g, session, form, person, found)
        except BadInput as exc:
            if exc.key not in ("people.err.changed", "people.err.active"):
                raise
            # Refused: the preview again, of what is there now, with the problem above it.
            if exc.key == "people.err.changed":  # maybe since the check: found again
                found = await previewed(g, person)
            note(request, refused=exc.code)
            return dry_run(request, g, session, typed, found, exc.text(g.lang(request)))

    return await or_again(request, g, session, act, typed=typed, again=page)


async def previewed(g: Guard, person: Person) -> Found:
    """``preview`` in a worker; nobody found, in the admin's words."""
    try:
        return await asyncio.to_thread(preview, g, person)
    except PersonError as exc:
        raise problem(exc) from None


def preview(g: Guard, person: Person) -> Found:
    """``would_forget`` (the CLI's dry run) on the reader of the thread running it (a
    worker's): the event loop's is another's, which a second preview's worker may be querying
    at the same moment."""
    return would_forget(g.core.store.reader(), person, g.today())


def dry_run(
    request: Request, g: Guard, session: Session, typed: dict[str, str], found: Found,
    error: str | None = None,
) -> HTMLResponse:  # fmt: skip
    """The preview: what would go, by store, and what happens to it; nothing changed. Its
    confirm form carries the version of what it lists (``version_of``)."""
    form_not_acted(request)
    counts = found.counts()
    return page(
        request, g, session, Refused(typed, error), dry=counts, version=version_of(found),
        in_force=active_text(g.lang(request), dict(found.active)), passes=len(found.passes),
        pass_only=found.pass_only, unheld=found.unheld, may_remain=found.passes_may_remain,
    )  # fmt: skip


async def confirmed(
    request: Request, g: Guard, session: Session, form: FormData, person: Person, found: Found
) -> Response:
    """The forget, if what is there is what the preview listed (``seen``) and nothing in
    force stands in its way unless ``force``."""
    lang = g.lang(request)
    seen = str(form.get("seen") or "")[:64]
    if seen != version_of(found):
        raise BadInput("people.err.changed")
    force = form.get("force") == "yes"
    if found.active and not force:
        raise BadInput("people.err.active", what=active_text(lang, dict(found.active)))
    cfg = g.cfg

    def run() -> Forgotten:
        done = forget(
            g.core.store, person, g.core.clock.now(), actor=session.name,
            tz=cfg.site.timezone, quota_cfg=cfg.policy.quota, force=force, seen=seen,
        )  # fmt: skip
        # The passes revoked, the entries gone: in force at this gate at once (another
        # process, the CLI, waits for the daemon's lists check).
        g.core.lists.reload_if_changed()
        g.core.runner.drop_forgotten()  # their passages leave the history at once too
        return done

    try:
        done = await asyncio.to_thread(run)
    except PersonError as exc:
        raise problem(exc) from None
    except PersonChanged:  # a row added, changed or gone since the check above
        raise BadInput("people.err.changed") from None
    except PersonActive as exc:  # came into force since the check above
        raise BadInput("people.err.active", what=active_text(lang, exc.active)) from None
    row = {"keys": person.kinds(), "rows": dict(done.rows), "forced": bool(found.active)}
    request.state.request_audit.written.append((session.name, FORGET_ACTION, row))
    fleet = None
    if done.events_seqs:  # as the CLI prints it
        fleet = f"kiosk fleet forget --kiosk {g.core.store.kiosk_id} --seqs {done.events_seqs}"
    return page(request, g, session, done=done, fleet=fleet)
