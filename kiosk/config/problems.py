"""Config problems in TOML's words: one ``field.path: reason`` per mistake, saying what to
write (a table, an array, a string, an integer, a decimal number, true or false, a time of
day, one of the choices) with the bound or the choices, and what was written. The kiosk's
config, the collector's and replay's scenarios all report through ``validation_problems``."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Collection
from datetime import date, datetime, time

from pydantic import ValidationError
from pydantic_core import ErrorDetails

__all__ = ["PATTERNS", "reason", "validation_problems"]

#: Where a problem is when it is no key's: the config as a whole (a check across keys says
#: the keys itself, so it is shown without this).
WHOLE = "the whole config"

#: What a value checked by a pattern should be, in words, by pattern (the expression itself
#: means nothing to an operator). Every pattern a config checks has its words (a test walks
#: the configs' keys); one without would be said as "in the form this key takes".
PATTERNS = {
    r"^[A-Za-z0-9._-]+$": 'letters, digits, ".", "_" and "-" only (no spaces)',
    r"^[A-Z_][A-Z0-9_]{0,127}$": (
        'the name of an environment variable: capital letters, digits and "_", not starting'
        " with a digit, at most 128 characters (KIOSK_TOKEN)"
    ),
    r"^([0-9A-Fa-f]{2} ?)+$": (
        'bytes in hexadecimal, two digits each, spaces between them allowed ("16 54 0D")'
    ),
}


def _loc(loc: tuple[int | str, ...], tags: Collection[str] = ()) -> tuple[str, bool]:
    """The ``field.path`` of an error, and whether a union member's label was left out of it."""
    parts: list[str] = []
    in_union = False
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif parts and (item in _UNION_TAGS or item in tags or item.startswith(_CHECKED)):
            # A union adds the member it tried to the path ("mlx90614", "int"): keep it out.
            in_union = True
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or WHOLE, in_union


_UNION_TAGS = {
    "mlx90614",
    "fake",
    "camera",
    "picamera",
    "serial",
    "hid",
    "fake_hid",
    "fake_camera",
    "serial_relay",
    "gpio",
    "none",
    # A setting that takes either of two types (readers' `device`): each tried in turn.
    "int",
    "str",
    "constrained-int",
    "constrained-str",
}
#: A union member checked by a function of its own (``_base.FilePath``'s, no control
#: character): ``function-after[_no_control(), constrained-str]``.
_CHECKED = ("function-after[", "function-before[")


def _toml_kind(value: object) -> str:
    """What TOML type a value was written as, for "should be X (got Y)"."""
    kinds: tuple[tuple[type, str], ...] = (
        (bool, "a boolean"),  # before int: a bool is an int to Python
        (int, "an integer"),
        (float, "a decimal number"),
        (str, "a string"),
        (list, "an array"),
        (dict, "a table"),
        (datetime, "a date and time"),  # before date: a datetime is a date to Python
        (date, "a date"),
        (time, "a time of day"),
    )
    return next((name for kind, name in kinds if isinstance(value, kind)), "another kind of value")


#: What a value of the wrong type should have been, in TOML's words, by pydantic error type.
_EXPECTED = {
    "bool_type": "true or false",
    "int_type": "an integer",
    "float_type": "a decimal number",
    "string_type": "a string",
    "time_type": 'a time of day (08:30:00 or "08:30")',
    "date_type": "a date (2026-03-02)",
    "datetime_type": "a date and time with its offset (2026-03-02T09:00:00+08:00)",
    "path_type": "a path (a string)",
    **dict.fromkeys(("list_type", "tuple_type", "set_type", "frozen_set_type"), "an array"),
    **dict.fromkeys(
        ("dict_type", "model_type", "model_attributes_type", "dataclass_type"), "a table"
    ),
}
#: A quoted value that is what TOML writes without quotes: its own type, by error type.
_UNQUOTED: dict[str, tuple[type, ...]] = {
    "bool_type": (bool,),
    "int_type": (int,),
    "float_type": (int, float),
}


def _shown(value: object) -> str:
    """A value as TOML writes it, cut short (it is repeated in a message)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))  # a bound of 40.0 reads "at most 40"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 42 else text[:40] + '…"'
    return str(value)


def _got(kind: str, value: object) -> str:
    """``(got a string: write 3000 without the quotes)``: what was written, and how to write
    it where the mistake is a common one (quotes around a number, ``3000.0`` for ``3000``)."""
    got = _toml_kind(value)
    text = value.strip() if isinstance(value, str) else ""
    if text and len(text) <= 32 and "\n" not in text and kind in _UNQUOTED:
        try:
            unquoted = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            unquoted = None
        if type(unquoted) in _UNQUOTED[kind]:
            return f"(got a string: write {text} without the quotes)"
    if kind == "int_type" and isinstance(value, float) and value.is_integer():
        return f"(got a decimal number: write {int(value)})"
    return f"(got {got})"


def _choices(expected: object) -> str:
    """pydantic's ``'a', 'b' or 'c'`` as TOML strings: ``one of "a", "b", "c"``."""
    names = re.findall(r"'([^']*)'", str(expected))
    if not names:
        return str(expected)
    quoted = ", ".join(json.dumps(name) for name in names)
    return quoted if len(names) == 1 else f"one of {quoted}"


def _entries(count: object) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


#: A bound a number broke: pydantic's error type -> (its context key, the words).
_BOUNDS = {
    "greater_than": ("gt", "more than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def reason(err: ErrorDetails) -> str:
    """One error in TOML's words: what to write, with the bound or the choices (a list
    import says a cell's type and absence its own way: ``kiosk.lists.value_problem``)."""
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    if kind in _EXPECTED:
        return f"should be {_EXPECTED[kind]} {_got(kind, value)}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"should be {words} {_shown(ctx.get(key))} (got {_shown(value)})"
    if kind in ("literal_error", "enum"):
        got = _shown(value) if isinstance(value, str) else _toml_kind(value)
        return f"should be {_choices(ctx.get('expected'))} (got {got})"
    worded: dict[str, Callable[[], str]] = {
        "missing": lambda: "missing (this key is required)",
        "extra_forbidden": lambda: "unknown key (check its spelling and the table it is in)",
        "string_too_short": lambda: (
            "should not be empty"
            if ctx.get("min_length") == 1
            else f"should be at least {ctx.get('min_length')} characters long"
        ),
        "string_too_long": lambda: (
            f"should be at most {ctx.get('max_length')} characters long"
            f" (got {len(value) if isinstance(value, str) else '?'})"
        ),
        "too_short": lambda: f"should have at least {_entries(ctx.get('min_length'))}",
        "too_long": lambda: (
            f"should have at most {_entries(ctx.get('max_length'))}"
            f" (got {ctx.get('actual_length')})"
        ),
        "string_pattern_mismatch": lambda: (
            f"should be {PATTERNS.get(str(ctx.get('pattern')), 'in the form this key takes')}"
            f" (got {_shown(value)})"
        ),
        "union_tag_invalid": lambda: (
            f"should be {_choices(ctx.get('expected_tags'))} (got {_shown(ctx.get('tag'))})"
        ),
        "union_tag_not_found": lambda: "missing (it names the kind of this table: see the docs)",
        "value_error": lambda: str(ctx.get("error", err["msg"])),
        "assertion_error": lambda: str(ctx.get("error", err["msg"])),
    }
    return worded[kind]() if kind in worded else err["msg"].removeprefix("Input ")


def _where(err: ErrorDetails, tags: Collection[str]) -> tuple[str, bool]:
    where, in_union = _loc(err["loc"], tags)
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        # The mistake is in the key that picks the kind (`type`), not the whole table.
        key = str(err.get("ctx", {}).get("discriminator", "type")).strip("'")
        where = f"{where}.{key}" if where != WHOLE else key
    return where, in_union


def _refused(err: ErrorDetails, in_union: bool) -> bool:
    """A union member's "not my type" (one of several tried)."""
    return in_union and err["type"] in _EXPECTED


def validation_problems(exc: ValidationError, union_tags: Collection[str] = ()) -> list[str]:
    """One ``field.path: reason`` per mistake, in TOML's words: what to write (a table, an
    array, a string, an integer, a decimal number, true or false, a time of day, one of the
    choices) with the bound or the choices, and what was written (``pulse_ms = "3000"``:
    ``gate.pulse_ms: should be an integer (got a string: write 3000 without the quotes)``).
    A setting that takes either of two types is one line (``should be an integer or a
    string``); ``union_tags``: more labels a union adds to the path, left out of it."""
    errors = [(err, *_where(err, union_tags)) for err in exc.errors(include_url=False)]
    # A union member refusing the type where another member took it: the other's mistake
    # (a bound, a key of its table) is the one to show.
    taken = [where for err, where, in_union in errors if not _refused(err, in_union)]
    expected: dict[str, list[str]] = {}
    got: dict[str, str] = {}
    problems: dict[str, None] = {}  # in order, once each
    for err, where, in_union in errors:
        kind = err["type"]
        if not _refused(err, in_union):
            across = where == WHOLE and kind in ("value_error", "assertion_error")
            problems[reason(err) if across else f"{where}: {reason(err)}"] = None
        elif not any(w == where or w.startswith((f"{where}.", f"{where}[")) for w in taken):
            # Every member refused the type: one line ("an integer or a string").
            expected.setdefault(where, []).append(_EXPECTED[kind])
            got.setdefault(where, _got(kind, err.get("input")))
            problems[where] = None
    return [
        f"{p}: should be {' or '.join(dict.fromkeys(expected[p]))} {got[p]}" if p in expected else p
        for p in problems
    ]
