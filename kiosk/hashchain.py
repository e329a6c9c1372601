"""Canonical row hashing for the event log's hash chains (``events`` and ``audit``).

Why a separate module: the writer (``kiosk.store``), ``kiosk verify-log`` and anything that
checks a pulled copy must hash a row *byte for byte* the same way, whether the row comes from
Python values about to be inserted or from SQLite reading them back (where a bool is 0/1, an
integer temperature comes back as a REAL and a list is JSON text). Everything here therefore
normalises first, then encodes as compact, key-sorted JSON.

Two digests per row:

* ``personal_digest`` = HMAC-SHA256(key, canonical(personal fields)). Keyed so that a copy
  of the log that travelled without its keys (a pull into the office database, a CSV) cannot
  be used to confirm guesses of a pass id or a phone number by hashing candidates. The key of
  a row is ``row_key(salt of its period, row)``: a random salt per UTC day of ``ts``
  (``period_of``), kept in the file only while some row of that day still holds personal
  fields (``kiosk.store``: retention deletes it then, a crypto-shred), and mixed with the
  row's ``id`` so that two rows of one person have unrelated digests. Rows written before
  period salts existed are keyed with the database's one salt directly (the legacy rule).
* ``hash`` = SHA-256(version tag + canonical(every non-personal field + ``personal_digest`` +
  ``prev_hash``)). Personal fields enter the chain only through their digest, so retention can
  null them (and set ``purged_at``) without breaking the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from typing import Any

from kiosk import record

#: ``prev_hash`` of the first row of a chain.
GENESIS = "0" * 64

#: Bumped if the encoding ever changes; older rows then need the older rule to verify.
_EVENTS_TAG = b"kiosk.events.v1\n"
_AUDIT_TAG = b"kiosk.audit.v1\n"

#: The record's field sets, derived from its one definition (``kiosk.record``).
EVENT_COLUMNS = record.EVENT_COLUMNS
AUDIT_COLUMNS = record.AUDIT_COLUMNS
#: Personal data in an event: nulled by retention, covered by ``personal_digest`` only.
EVENT_PERSONAL_FIELDS = record.EVENT_PERSONAL_FIELDS
#: Non-personal event fields covered directly by ``hash`` (plus personal_digest, prev_hash),
#: in record order.
EVENT_HASHED_FIELDS = record.EVENT_HASHED_FIELDS
AUDIT_PERSONAL_FIELDS = record.AUDIT_PERSONAL_FIELDS
AUDIT_HASHED_FIELDS = record.AUDIT_HASHED_FIELDS


def _of_kind(*kinds: record.Kind) -> frozenset[str]:
    return frozenset(c.name for c in record.EVENT + record.AUDIT if c.kind in kinds)


_FLOAT_FIELDS = _of_kind("float")
_INT_FIELDS = _of_kind("int")
_BOOL_FIELDS = _of_kind("bool")
_LIST_FIELDS = _of_kind("list")
_JSON_FIELDS = _of_kind("json")


class CanonicalError(ValueError):
    """A value that has no single canonical encoding (NaN, infinity, a non-JSON type)."""


def _check_json(value: Any, where: str) -> None:
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CanonicalError(f"{where}: {value!r} is not a finite number")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_json(item, where)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError(f"{where}: object keys must be strings")
            _check_json(item, where)
        return
    raise CanonicalError(f"{where}: {type(value).__name__} is not JSON data")


def normalise(field: str, value: Any) -> Any:
    """One field's value as the hash sees it, whether it came from Python or from SQLite."""
    if value is None:
        return None
    if field in _FLOAT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CanonicalError(f"{field}: expected a number, got {type(value).__name__}")
        # "+ 0.0" folds -0.0 into 0.0: SQLite stores an integral REAL as an integer and
        # hands -0.0 back as 0.0, so a rounded winter ambient of -0.0 must hash as 0.0.
        value = float(value) + 0.0
        if not math.isfinite(value):
            raise CanonicalError(f"{field}: {value!r} is not a finite number")
        return value
    if field in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CanonicalError(f"{field}: expected an integer, got {type(value).__name__}")
        return value
    if field in _BOOL_FIELDS:
        return bool(value)
    if field in _LIST_FIELDS or field in _JSON_FIELDS:
        if isinstance(value, (str, bytes)):
            try:
                value = json.loads(value)
            except ValueError:
                raise CanonicalError(f"{field}: stored text is not JSON") from None
        if field in _LIST_FIELDS:
            if not isinstance(value, (list, tuple)):
                raise CanonicalError(f"{field}: expected a list")
            value = list(value)
        _check_json(value, field)
        return value
    return value


def unreadable_field(row: Mapping[str, Any]) -> str | None:
    """The first of a stored row's fields whose value cannot be read as the record types it
    (``normalise``: a list's or a JSON field's text that is not JSON, a number's value that
    is not one: what ``kiosk verify-log`` calls an "unreadable value"), or None when each can.
    Fields the record does not type (a column renamed by a query) are not looked at."""
    for name, value in row.items():
        try:
            normalise(name, value)
        except CanonicalError:
            return name
    return None


def canonical(fields: Mapping[str, Any]) -> bytes:
    """Compact, key-sorted UTF-8 JSON: one byte string per logical value."""
    text = json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: SQLite could not store it either
        raise CanonicalError("text is not valid Unicode") from None


def _pick(row: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: normalise(name, row.get(name)) for name in names}


def personal_digest(salt: bytes, row: Mapping[str, Any], personal: tuple[str, ...]) -> str:
    """Keyed digest of a row's personal fields (HMAC-SHA256 with the database's salt)."""
    return hmac.new(salt, canonical(_pick(row, personal)), hashlib.sha256).hexdigest()


#: The key a digest is attested with when its period's salt is deleted while its row still
#: carries a value under the digest (only a purge's own audit row, whose detail is not
#: personal): public, so the row stays checkable without any secret.
ATTEST_KEY = b"kiosk.attested.v1"
_ROW_KEY_TAG = b"kiosk.row-key.v1\n"


def period_of(ts: object) -> str:
    """The digest-salt period of a row: the UTC day of its ``ts`` (``2026-03-02``)."""
    return str(ts)[:10]


def row_key(period_salt: bytes, row: Mapping[str, Any]) -> bytes:
    """A row's own digest key: HMAC-SHA256(its period's salt, its ``id``). Two rows of one
    person in one period get different digests; with the salt gone, neither can be tested."""
    message = _ROW_KEY_TAG + str(row.get("id")).encode("utf-8", "surrogatepass")
    return hmac.new(period_salt, message, hashlib.sha256).digest()


def _row_hash(tag: bytes, row: Mapping[str, Any], names: tuple[str, ...]) -> str:
    body = _pick(row, names)
    body["personal_digest"] = row.get("personal_digest")
    body["prev_hash"] = row.get("prev_hash")
    return hashlib.sha256(tag + canonical(body)).hexdigest()


def event_hash(row: Mapping[str, Any]) -> str:
    """The chain hash of an events row (needs ``prev_hash`` and ``personal_digest`` set)."""
    return _row_hash(_EVENTS_TAG, row, EVENT_HASHED_FIELDS)


def audit_hash(row: Mapping[str, Any]) -> str:
    """The chain hash of an audit row (needs ``prev_hash`` and ``personal_digest`` set)."""
    return _row_hash(_AUDIT_TAG, row, AUDIT_HASHED_FIELDS)


def event_personal_digest(salt: bytes, row: Mapping[str, Any]) -> str:
    return personal_digest(salt, row, EVENT_PERSONAL_FIELDS)


def audit_personal_digest(salt: bytes, row: Mapping[str, Any]) -> str:
    return personal_digest(salt, row, AUDIT_PERSONAL_FIELDS)
