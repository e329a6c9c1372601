"""Masking of personal data for everything that leaves the event log.

Personal fields of an event (architecture.md): ``pass_id``, ``household``, ``holder`` and the
``person`` object (name, phone, id_number, unit, plate, driver, occupants, note). The API, the
CSV export and the guard screen all call :func:`mask_event`; only the fields a caller is
explicitly allowed to see (``allowed_fields``) leave unmasked. See docs/privacy.md.

Masking rules (chosen so a guard or an office clerk can still tell two records apart by eye
without learning who the person is):

* phone numbers keep the first 3 and the last 4 digits: ``138****5678``;
* Chinese resident ID numbers (18 characters, the last may be ``X``; old 15-digit ones too)
  keep the first 3 and the last 2: ``110*************1X``; other ID numbers (passport, HK/
  Macau permits) keep the last 2 characters only;
* names become their initial: ``Zhang Wei`` → ``Z.``, ``张伟`` → ``张*``;
* pass ids, households, units, plates and a registered car's household (``resident_of``)
  keep their last 2 characters;
* free text (``note``, ``reasons``, ``flags``, ``operator``, any other string in ``person``)
  has every phone- or ID-shaped number masked, however it is written: with spaces, dots,
  dashes or slashes between digit groups (``1390 013 9000``, ``139.0013.9000``,
  ``ID 110105 19491231 003X``), after a prefix (``tel13900139000``, ``+86``), in full-width
  or other Unicode digits (``１３９００１３９０００``). A number is found by its digits, not its
  layout: the digit groups of a run are joined and any consecutive groups that make a mobile number
  (11 digits from 1, or 86 + 11), a landline (10-12 digits from 0) or a resident ID (15, or 17
  + a check digit or X) are masked; a string in ``person`` (a note) also has any of the
  event's own masked values (a name, the pass id, household, unit, plate, the phone and the
  ID number, these two however they are laid out: ``mask_repeated``) it repeats masked.
  Only the mainland's shapes are known by their digits: a Hong Kong phone or a passport
  number in a note is masked when it is the person's own.
  Free text stays clear only for a caller allowed the ``person.note`` (or whole ``person``)
  field.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .spelling import same_text, same_text_spans

#: Top-level personal fields of an event.
PERSONAL_FIELDS: tuple[str, ...] = ("pass_id", "household", "holder", "person")

#: Every name ``?fields=`` accepts: the top-level personal fields and ``person.<key>``.
PERSON_KEYS: tuple[str, ...] = (
    "name",
    "phone",
    "id_number",
    "unit",
    "plate",
    "driver",
    "occupants",
    "note",
)
FIELD_NAMES: frozenset[str] = frozenset(PERSONAL_FIELDS) | {f"person.{k}" for k in PERSON_KEYS}
#: Keys of ``person`` masked as codes (last 2 characters): a dwelling, a plate, and the
#: household a registered car's plate is listed for (``resident_of``).
CODE_KEYS: tuple[str, ...] = ("unit", "plate", "resident_of")
#: Free-text fields of an event outside ``person``: numbers typed into them are masked too.
FREE_TEXT_FIELDS: tuple[str, ...] = ("operator", "reasons", "flags")
#: Keys of ``person`` holding a number found in a note by its letters and digits alone.
NUMBER_KEYS: tuple[str, ...] = ("phone", "id_number")
#: Keys of ``person`` masked as a whole (their masked form is not searched again).
_MASKED_KEYS: frozenset[str] = frozenset({"name", "driver", *NUMBER_KEYS, *CODE_KEYS})
#: Allowed fields that also leave the free text clear (the caller may read notes).
FREE_TEXT_CLEAR: frozenset[str] = frozenset({"person", "person.note"})

# A run of digit groups: digits (any script: normalised first), single separators between
# them. No digit may touch the run on either side; letters may (``tel138...``, ``ID110...``).
_SEPARATORS = "[ ._/\\-\u00b7\u3000\u2010-\u2015]"
_RUN_RE = re.compile(
    r"(?<!\d)\+?\d+(?:" + _SEPARATORS + r"{1,3}\d+)*(?:" + _SEPARATORS + r"{0,3}[Xx])?"
    r"(?![\dA-WYZa-wyz])"
)
_WIDE_CHECK_X = re.compile(r"(\d" + _SEPARATORS + r"{0,3})[Ｘｘ]")
_GROUP_RE = re.compile(r"\d+[Xx]?|[Xx]")
_CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def _keep(text: str, head: int, tail: int) -> str:
    """Keep ``head`` leading and ``tail`` trailing characters, star the rest (at least one)."""
    if len(text) <= head + tail:
        # Too short to show anything safely: show only the last character, if any.
        return "*" * max(len(text) - 1, 1) + text[-1:] if len(text) > 1 else "*"
    return text[:head] + "*" * (len(text) - head - tail) + text[len(text) - tail :]


def mask_phone(phone: str) -> str:
    """``13800138000`` → ``138****8000``; any other form keeps only its last 4 digits."""
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) == 11 and digits.startswith("1"):
        return _keep(digits, 3, 4)
    return _keep(digits, 0, 4) if digits else "*"


def is_resident_id(value: str) -> bool:
    """Shape check only (no checksum): 18 characters (last may be X) or 15 digits."""
    return bool(re.fullmatch(r"\d{17}[\dXx]|\d{15}", value.strip()))


def mask_id_number(value: str) -> str:
    """Chinese resident IDs keep 3 + 2 characters; any other document keeps its last 2."""
    text = value.strip()
    if is_resident_id(text):
        return _keep(text, 3, 2)
    return _keep(text, 0, 2)


def mask_name(name: str) -> str:
    """A name becomes its initial: ``Zhang Wei`` → ``Z.``, ``张伟`` → ``张*``."""
    text = name.strip()
    if not text:
        return ""
    first = text[0]
    if _CJK_RE.match(first):
        return first + "*"
    return first.upper() + "."


def mask_code(value: str) -> str:
    """Pass ids, households, units, plates: keep the last 2 characters."""
    text = str(value)
    return _keep(text, 0, 2)


def _ascii_digits(text: str) -> str:
    """Full-width and other Unicode decimal digits as ASCII (``１３９`` → ``139``); a
    full-width ``Ｘ`` right after digits (an ID's check character) as ``X``. Everything else
    is left as it is."""
    if text.isascii():
        return text
    out = "".join(
        str(unicodedata.decimal(char)) if char.isdecimal() and not char.isascii() else char
        for char in text
    )
    return _WIDE_CHECK_X.sub(r"\1X", out)


#: The most digits a number ``_number_kind`` recognises has (a resident ID).
_MAX_NUMBER = 18


def _number_kind(digits: str) -> str | None:
    """``phone``/``id`` when a digit string (an ID may end in X) is shaped like one."""
    if digits[-1:] in "Xx":
        return "id" if len(digits) == 18 and digits[:-1].isdigit() else None
    if len(digits) in (15, 18):
        return "id"
    if len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789":
        return "phone"
    if len(digits) == 13 and digits.startswith("86") and digits[2] == "1":
        return "phone"
    if 10 <= len(digits) <= 12 and digits[0] == "0":
        return "phone"
    return None


def _mask_number(digits: str, kind: str) -> str:
    return mask_id_number(digits) if kind == "id" else mask_phone(digits)


def _scrub_run(run: str) -> str:
    """Mask the phone/ID numbers in one run of digit groups: the longest consecutive groups
    that make one, left to right; other groups (a room number beside a phone) stay."""
    groups = list(_GROUP_RE.finditer(run))
    out: list[str] = []
    pos = 0
    i = 0
    while i < len(groups):
        # No number is longer than _MAX_NUMBER digits: only spans up to that are candidates
        # (trying every span made a long run of short groups cost cubic time).
        spans = [groups[i].group(0)]
        while i + len(spans) < len(groups) and len(spans[-1]) < _MAX_NUMBER:
            spans.append(spans[-1] + groups[i + len(spans)].group(0))
        for j in range(i + len(spans) - 1, i - 1, -1):
            digits = spans[j - i]
            kind = _number_kind(digits)
            if kind is not None:
                out.append(run[pos : groups[i].start()])
                out.append(_mask_number(digits, kind))
                pos = groups[j].end()
                i = j + 1
                break
        else:
            i += 1
    out.append(run[pos:])
    return "".join(out)


def scrub_text(text: str) -> str:
    """Mask every phone- or ID-shaped number inside free text; the rest stays readable."""
    if not text:
        return text
    text = _ascii_digits(text)
    return _RUN_RE.sub(lambda m: _scrub_run(m.group(0)), text)


def scrub_value(value: Any) -> Any:
    """``scrub_text`` over a string or the strings of a list (``reasons``, ``flags``)."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, list | tuple):
        return [scrub_text(v) if isinstance(v, str) else v for v in value]
    return value


def _mask_person_value(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in ("name", "driver"):
        return mask_name(str(value))
    if key == "phone":
        return mask_phone(str(value))
    if key == "id_number":
        return mask_id_number(str(value))
    if key in CODE_KEYS:
        return mask_code(str(value))
    if key == "feverish":  # a vehicle's feverish occupants: a count, not personal
        return value if type(value) is int else None
    if key == "occupants":
        # A count is not personal; a list of names is: keep its length only.
        if isinstance(value, list):
            return [mask_name(str(v)) if isinstance(v, str) else None for v in value]
        return value if isinstance(value, int | float) else scrub_text(str(value))
    if isinstance(value, str):
        return scrub_text(value)
    return None


def mask_person(person: Mapping[str, Any] | None, allowed: Iterable[str] = ()) -> Any:
    """Mask a ``person`` object key by key; keys in ``allowed`` (``name``, ...) stay clear."""
    if person is None:
        return None
    if isinstance(person, str):
        # Stored as JSON text in SQLite: decode, so a name inside is masked too.
        try:
            person = json.loads(person)
        except ValueError:  # damaged text: a name in it cannot be told apart, so none shows
            return "*"
    if not isinstance(person, Mapping):
        return scrub_text(json.dumps(person, ensure_ascii=False))
    clear = set(allowed)
    return {
        key: (value if key in clear else _mask_person_value(key, value))
        for key, value in person.items()
    }


def normalise_fields(fields: Iterable[str]) -> frozenset[str]:
    """Validate ``?fields=`` names. Raises ``ValueError`` naming the first unknown one."""
    out: set[str] = set()
    for raw in fields:
        name = raw.strip()
        if not name:
            continue
        if name not in FIELD_NAMES:
            raise ValueError(f"unknown field {name!r}; known: {', '.join(sorted(FIELD_NAMES))}")
        out.add(name)
    return frozenset(out)


def mask_event(event: Mapping[str, Any], allowed_fields: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of ``event`` with its personal fields masked except those in ``allowed_fields``.

    ``allowed_fields`` holds top-level names (``pass_id``, ``household``, ``holder``,
    ``person`` = the whole object) and/or ``person.<key>`` names. Non-personal fields are
    copied unchanged. The input is never modified.
    """
    allowed = allowed_fields if isinstance(allowed_fields, frozenset) else frozenset(allowed_fields)
    out = dict(event)
    for key in ("pass_id", "household"):
        value = out.get(key)
        if value is not None and key not in allowed:
            out[key] = mask_code(value)
    holder = out.get("holder")
    if holder is not None and "holder" not in allowed:
        out["holder"] = mask_name(str(holder))
    if not allowed & FREE_TEXT_CLEAR:
        for key in FREE_TEXT_FIELDS:
            if out.get(key) is not None:
                out[key] = scrub_value(out[key])
    person = out.get("person")
    if person is not None and "person" not in allowed:
        clear = [f[7:] for f in allowed if f.startswith("person.")]
        out["person"] = mask_person(person, clear)
    if not allowed & FREE_TEXT_CLEAR:
        _redact_person_text(event, out, allowed)
    return out


def _hidden_values(event: Mapping[str, Any], allowed: frozenset[str]) -> Iterator[tuple[str, str]]:
    """The event's own personal values the caller may not read, each with the ``person`` key
    whose masking it takes: a guard's note that repeats the holder's name, a car's driver or
    passenger (``person.passengers[*].name``), the plate (``Li Wei's card lost``), the phone
    or the passport's number (``passport E12345678``) must not give away what the masked
    field hides."""
    for key, kind in (("pass_id", "unit"), ("household", "unit"), ("holder", "name")):
        value = event.get(key)
        if isinstance(value, str) and key not in allowed:
            yield value, kind
    person = event.get("person")
    if isinstance(person, str):
        try:
            person = json.loads(person)
        except ValueError:
            return
    if not isinstance(person, Mapping) or "person" in allowed:
        return
    for key in ("name", "driver", *NUMBER_KEYS, *CODE_KEYS):
        value = person.get(key)
        if isinstance(value, str) and f"person.{key}" not in allowed:
            yield value, key
    if "person.passengers" not in allowed:  # a car's: [{"name": ..., "temp_c": ...}]
        for passenger in _listed(person.get("passengers")):
            name = passenger.get("name") if isinstance(passenger, Mapping) else None
            if isinstance(name, str):
                yield name, "name"
    if "person.occupants" not in allowed:  # a list of names in records from elsewhere
        yield from ((v, "name") for v in _listed(person.get("occupants")) if isinstance(v, str))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _redact_person_text(
    event: Mapping[str, Any], out: dict[str, Any], allowed: frozenset[str]
) -> None:
    """Mask, in the free text of the masked copy's ``person`` (a note), every value of
    ``event`` the caller may not read (``_hidden_values``), longest first, found as the gate
    compares names (``same_text``: ``欧阳 娜娜`` and ``Ｗａｎｇ Ｆａｎｇ`` too). The codes in
    ``reasons`` and ``flags`` are left alone: ``overrides:101`` must stay what it says."""
    person = out.get("person")
    if not isinstance(person, dict):
        return
    texts = [k for k, v in person.items() if isinstance(v, str) and k not in _MASKED_KEYS]
    if not texts:
        return
    hidden = {value.strip(): kind for value, kind in _hidden_values(event, allowed)}
    for key in texts:
        person[key] = mask_repeated(person[key], hidden)


def mask_repeated(text: str, hidden: Mapping[str, str]) -> str:
    """``text`` (a note) with each value of ``hidden`` (value → the ``person`` key whose
    masking it takes) it repeats masked as that key masks it: a name or a code found as the
    gate compares names (``same_text``), a phone or a document's number (``NUMBER_KEYS``) by
    its letters and digits alone, however it is laid out (``E1234567(8)``, ``852-9876 5432``),
    a phone written with its country code also without it (``+852 9876 5432`` is in ``tel
    98765432``). A name or code that folds to 1 character, a number of 1 letter or digit, is
    not searched for."""
    numbers: dict[str, str] = {}  # each form searched for → the value it is a form of
    for value, kind in hidden.items():
        if kind in NUMBER_KEYS:
            numbers.update(dict.fromkeys(_number_forms(value, kind), value))
    numbers = {form: value for form, value in numbers.items() if _alnum_count(form) >= 2}
    names = [v for v, k in hidden.items() if k not in NUMBER_KEYS and len(same_text(v)) >= 2]
    parts: list[str] = []
    done = 0
    for start, end, found in same_text_spans(text, names, numbers):
        value = numbers.get(found, found)
        parts += [text[done:start], str(_mask_person_value(hidden[value], value))]
        done = end
    return "".join(parts) + text[done:]


#: The international prefix a phone written with its country code begins with.
_INTERNATIONAL = re.compile(r"\+|00")


def _number_forms(value: str, kind: str) -> list[str]:
    """A phone or document number as a note may repeat it: as it is, and a phone written
    with its international prefix also without its country code (1 to 3 digits, each taken:
    ``+852 9876 5432`` is in ``tel 98765432``), when 6 digits or more are left; a phone of
    10 digits or more stored with its country code but no ``+`` or ``00`` (``852-9876-5432``)
    the same, when 8 digits or more are left (a shorter tail is too likely another number)."""
    if kind != "phone":
        return [value]
    prefix = _INTERNATIONAL.match(value)
    digits = re.sub(r"\D", "", value[prefix.end() :] if prefix else value)
    least = 6 if prefix else 8
    if prefix is None and len(digits) < 10:
        return [value]
    return [value, *(digits[cut:] for cut in (1, 2, 3) if len(digits) - cut >= least)]


def _alnum_count(text: str) -> int:
    return sum(char.isalnum() for char in text)


def greeting_name(name: str) -> str:
    """How the unattended kiosk greets a holder: enough to recognise oneself, too little to
    learn who passed. ``王秀英`` → ``王*英``, ``王芳`` → ``王*``, ``欧阳娜娜`` → ``欧**娜``,
    ``Li Wei`` → ``L. W.``, ``Madonna`` → ``M.``. Idempotent on its own output."""
    text = " ".join(name.split())
    if not text:
        return ""
    if _CJK_RE.match(text[0]):
        chars = text.replace(" ", "")
        if len(chars) <= 2:
            return chars[0] + "*"
        return chars[0] + "*" * (len(chars) - 2) + chars[-1]
    words = text.split(" ")
    initials = [words[0][0].upper() + "."]
    if len(words) > 1:
        initials.append(words[-1][0].upper() + ".")
    return " ".join(initials)
