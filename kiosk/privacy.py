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
* pass ids, households, units and plates keep their last 2 characters;
* free text (``note``) has any phone- or ID-shaped digit run masked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

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

# Mainland mobile numbers (11 digits from 1[3-9]), landlines with area code and 7-8 digits,
# and resident ID numbers (18 with a check character, or the old 15-digit form). The
# surrounding look-arounds refuse letters and digits so hashes and UUIDs are left alone.
_EDGE_L = r"(?<![0-9A-Za-z])"
_EDGE_R = r"(?![0-9A-Za-z])"
_ID_RE = re.compile(_EDGE_L + r"(?:\d{17}[\dXx]|\d{15})" + _EDGE_R)
_PHONE_RE = re.compile(
    _EDGE_L + r"(?:\+?86[- ]?)?(?:1[3-9]\d[- ]?\d{4}[- ]?\d{4}|0\d{2,3}-?\d{7,8})" + _EDGE_R
)
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


def scrub_text(text: str) -> str:
    """Mask every phone- or ID-shaped number inside free text; the rest stays readable."""
    text = _ID_RE.sub(lambda m: mask_id_number(m.group(0)), text)
    return _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)


def _mask_person_value(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in ("name", "driver"):
        return mask_name(str(value))
    if key == "phone":
        return mask_phone(str(value))
    if key == "id_number":
        return mask_id_number(str(value))
    if key in ("unit", "plate"):
        return mask_code(str(value))
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
        except ValueError:
            return scrub_text(person)
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
    person = out.get("person")
    if person is not None and "person" not in allowed:
        clear = [f[7:] for f in allowed if f.startswith("person.")]
        out["person"] = mask_person(person, clear)
    return out


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
