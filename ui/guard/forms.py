"""Reading the guard's forms: every value bounded and checked before use. A value that cannot
be used raises ``BadInput`` (shown to the guard in their language; nothing is recorded)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Any

from starlette.datastructures import FormData
from starlette.responses import Response

# The days a guard may type (re-exported: the console's pages bound their days by them).
from kiosk.days import FIRST_DAY as FIRST_DAY
from kiosk.days import LAST_DAY as LAST_DAY
from kiosk.days import OutsideDays, typed_day
from kiosk.lists import Lists, ListStore
from ui import core_words, i18n

MAX_TEXT = 200


class BadInput(ValueError):
    """A form value that cannot be used; shown to the guard in their language, nothing is
    recorded. ``key`` is an i18n key (``err.*``) or, for messages from the core, its text (said
    in the guard's language by ``ui.core_words``);
    parameters that are i18n keys (field names) are translated too."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params
        #: The page that says the problem itself (its text given), for a problem that quotes
        #: what was sent (a clerk's sheet's plates and dwellings): never put in a URL.
        self.shown: Callable[[str], Response] | None = None

    def text(self, lang: str) -> str:
        if not i18n.has(self.key):  # the core's own sentence: said in the guard's language
            return core_words.refusal_text(lang, self.key)
        # A field whose label says it is required ("Reason (required)") has words of its own
        # for the problem (``err.required.manual.reason``): not "(required) is required".
        own = f"{self.key}.{self.params.get('field')}"
        if i18n.has(own):
            return i18n.t(lang, own)
        params = {
            k: i18n.t(lang, v) if isinstance(v, str) and i18n.has(v) else v
            for k, v in self.params.items()
        }
        return i18n.t(lang, self.key, **params)

    @property
    def code(self) -> str:
        """What the audit log keeps of the problem: the message key, never the typed text."""
        return self.key if i18n.has(self.key) else "refused_by_core"


class Repeated(BadInput):
    """A form as drawn sent again after it acted (``err.sent_twice``: a double tap, a resend):
    nothing more is done, and it is no refusal either, since the first one was recorded: the
    answer does not mark the form refused, so the last person's fields are not put back into
    the form for the next one (``ui.guard.deps.fail``'s ``refused``)."""


def clean(value: object, field: str, *, required: bool = False, max_len: int = MAX_TEXT) -> str:
    """A one-line text field, stripped; ``field`` is the field's i18n key. A space of another
    width (the full-width one a Chinese input method types) is a space; an invisible or
    control character (a zero-width space pasted from a chat message, a line break) is
    refused here, in the guard's words, before the core refuses it in its own."""
    text = "".join(" " if unicodedata.category(ch) == "Zs" else ch for ch in str(value or ""))
    text = text.strip()
    if required and not text:
        raise BadInput("err.required", field=field)
    if len(text) > max_len:
        raise BadInput("err.too_long", field=field, n=max_len)
    if any(unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in text):
        raise BadInput("err.control", field=field)
    return text


def typed_number(value: object) -> str:
    """A number's text as typed, in its plain form: what a Chinese input method types too
    (full-width ３６．８ by NFKC, 。 for the point), a comma as the decimal point."""
    text = unicodedata.normalize("NFKC", str(value or "")[:1000]).replace("。", ".")
    return text.replace(",", ".").strip()


def number(value: object, field: str, *, required: bool = False) -> float | None:
    """A decimal number as typed (``typed_number``); None when left empty."""
    text = typed_number(value)
    if not text:
        if required:
            raise BadInput("err.required", field=field)
        return None
    if len(text) > 32:
        raise BadInput("err.number", field=field)
    try:
        out = float(text)
    except ValueError:
        raise BadInput("err.number", field=field) from None
    if out != out or out in (float("inf"), float("-inf")):
        raise BadInput("err.number", field=field)
    return out


def bounded(
    value: object, field: str, lo: float, hi: float, *, required: bool = False
) -> float | None:
    out = number(value, field, required=required)
    if out is None:
        return None
    if not lo <= out <= hi:
        raise BadInput("err.range", field=field, lo=f"{lo:g}", hi=f"{hi:g}")
    return out


def needed(value: object, field: str, lo: float, hi: float) -> float:
    """A required number within ``[lo, hi]``."""
    out = bounded(value, field, lo, hi, required=True)
    if out is None:  # bounded() raises for a missing required value; this satisfies types
        raise BadInput("err.required", field=field)
    return out


def whole(value: object, field: str, lo: int, hi: int, default: int | None) -> int | None:
    text = str(value or "").strip()
    if not text:
        return default
    try:
        out = int(text[:32])
    except ValueError:
        raise BadInput("err.whole", field=field) from None
    if not lo <= out <= hi:
        raise BadInput("err.range", field=field, lo=lo, hi=hi)
    return out


def choice(value: object, field: str, options: tuple[str, ...], default: str | None = None) -> str:
    text = str(value or "").strip() or (default or "")
    if text not in options:
        raise BadInput("err.choice", field=field, options=", ".join(options))
    return text


def day(text: str | None, default: date) -> date:
    """A ``YYYY-MM-DD`` day between ``FIRST_DAY`` and ``LAST_DAY``; ``default`` when empty."""
    if not text:
        return default
    try:
        return typed_day(text)  # as kiosk report --day and the API's ?day= take it
    except OutsideDays:
        raise BadInput("err.range", field="stats.day", lo=FIRST_DAY, hi=LAST_DAY) from None
    except ValueError:
        raise BadInput("err.date", field="stats.day") from None


def within_days(value: date, field: str) -> date:
    """``value`` when it is one of the days a guard may type (``FIRST_DAY``..``LAST_DAY``)."""
    if not FIRST_DAY <= value <= LAST_DAY:
        raise BadInput("err.range", field=field, lo=FIRST_DAY, hi=LAST_DAY)
    return value


def date_field(value: object, field: str) -> date | None:
    """A typed ``YYYY-MM-DD`` day, None when empty; one of the days a guard may type
    (``within_days``): every list form's days (a household's observation took ``0206-03-16``,
    a year typed wrong, while the quarantine form beside it refused it)."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        typed = date.fromisoformat(text[:32])
    except ValueError:
        raise BadInput("err.date", field=field) from None
    return within_days(typed, field)


def safe_next(target: str | None) -> str:
    """Only local guard paths: never an open redirect."""
    if (
        target
        and len(target) <= 512
        and target.startswith("/guard")
        and not target.startswith("//")
        and "\\" not in target
    ):
        return target
    return "/guard"


def directions(site_direction: str) -> tuple[str, ...]:
    return ("in", "out") if site_direction == "both" else (site_direction,)


def direction_of(form: FormData, default: str | None) -> str:
    """The form's ``direction`` (in/out), ``default`` when not given; not given and no
    ``default`` (a way nobody knows: a person without a pass at a gate both ways), refused
    (``err.direction_needed``), never guessed."""
    if default is None and not str(form.get("direction") or "").strip():
        raise BadInput("err.direction_needed")
    return choice(form.get("direction"), "manual.direction", ("in", "out"), default)


ListEdit = Callable[..., Lists]


def _quarantine(op: str, form: FormData, today: date) -> tuple[ListEdit, dict[str, Any]]:
    if op == "add":
        household = clean(form.get("household"), "pass.household", required=True, max_len=64)
        holder = clean(form.get("holder"), "pass.holder", max_len=64) or None
        # today on a clock never set (1970) too: refused, not a quarantine from 1970
        start = within_days(date_field(form.get("from"), "lists.from") or today, "lists.from")
        until = date_field(form.get("until"), "lists.until")  # the store refuses it too
        if until is None:
            raise BadInput("err.required", field="lists.until")
        if until < start:  # the list store refuses it too, in English
            raise BadInput("err.until_before_from", start=str(start), until=str(until))
        note = clean(form.get("note"), "lists.note")
        return ListStore.add_quarantine, {
            "household": household,
            "holder": holder,
            "from_date": start,
            "until_date": until,
            "note": note,
        }
    entry = whole(form.get("id"), "lists.quarantine", 1, 2**62, None)
    if entry is None:
        raise BadInput("err.required", field="lists.quarantine")
    return ListStore.remove_quarantine, {"entry_id": entry, "seen": seen(form)}


def seen(form: FormData) -> str | None:
    """The version of the entry a removal form's page showed (``kiosk.lists.entry_version``),
    None from a form without it (a script): the store refuses the removal of an entry that
    changed since."""
    return clean(form.get("seen"), "lists.title", max_len=32) or None


def _revocations(op: str, form: FormData) -> tuple[ListEdit, dict[str, Any]]:
    pass_id = clean(form.get("pass_id"), "lists.pass_id", required=True, max_len=64)
    if op == "remove":
        return ListStore.unrevoke, {"pass_id": pass_id, "seen": seen(form)}
    return ListStore.revoke, {"pass_id": pass_id, "reason": clean(form.get("note"), "lists.note")}


def _households(op: str, form: FormData) -> tuple[ListEdit, dict[str, Any]]:
    household = clean(form.get("household"), "pass.household", required=True, max_len=64)
    if op == "remove":
        return ListStore.remove_household, {"household": household, "seen": seen(form)}
    residents = whole(form.get("residents"), "lists.residents", 0, 100, None)
    until = date_field(form.get("observation_until"), "lists.observation")
    entry = {"household": household, "residents": residents, "observation_until": until}
    entry |= {"note": clean(form.get("note"), "lists.note"), "seen": seen(form)}
    return ListStore.set_household, entry


def list_edit(which: str, op: str, form: FormData, today: date) -> tuple[ListEdit, dict[str, Any]]:
    """The ``ListStore`` method (unbound) and its arguments (besides the store and ``actor``)
    for a list form."""
    if op in ("add", "remove"):
        if which == "quarantine":
            return _quarantine(op, form, today)
        if which == "revocations":
            return _revocations(op, form)
        if which == "households":
            return _households(op, form)
    raise BadInput("err.choice", field="lists.title", options="quarantine, revocations, households")
