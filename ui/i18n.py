"""The screens' words in Simplified Chinese (zh-CN) and English.

Every key has both languages (a test checks). Reason codes (docs/policy.md) map to plain
language a person at the gate understands, plus what to do next. The default language comes
from ``site.language``; each screen can switch with ``?lang=``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from importlib import resources
from typing import Any, Literal

Lang = Literal["zh-CN", "en"]
LANGS: tuple[Lang, ...] = ("zh-CN", "en")


def _load(name: str) -> dict[str, Any]:
    """A message file of this package (data, not code: ``key = [zh-CN, en]``)."""
    return tomllib.loads(resources.files("ui").joinpath(name).read_text(encoding="utf-8"))


def _pairs(table: dict[str, list[str]]) -> dict[str, tuple[str, str]]:
    return {key: (zh, en) for key, (zh, en) in table.items()}


_MESSAGES = _load("messages.toml")
_S = _pairs(_MESSAGES["screens"])
_REASONS = _pairs(_MESSAGES["reasons"])
#: Where the person at the gate is addressed differently from the guard's feed.
_TO_PERSON = _pairs(_MESSAGES["to_person"])
_NEXT = _pairs(_MESSAGES["next"])
_CALL = _pairs(_MESSAGES["call"])["no_guard_on_duty"]
#: The kiosk's referrals to the guard as said while no guard is on duty, keyed as ``[screens]``
#: (``kiosk.fault_next``), ``next.<code>`` for ``[next]`` and ``reason.<code>`` for a reason
#: as the person is told it (``[to_person]``, else ``[reasons]``); ``{call_line}`` is
#: ``call_line``.
_NIGHT = _pairs(_MESSAGES["night"])


def pick_lang(requested: str | None, default: str) -> Lang:
    """The language to use: ``requested`` when supported, else the configured default."""
    if requested in LANGS:
        return requested
    if requested and requested.lower().startswith("zh"):
        return "zh-CN"
    if requested and requested.lower().startswith("en"):
        return "en"
    return default if default in LANGS else "zh-CN"


def _idx(lang: str) -> int:
    return 0 if lang == "zh-CN" else 1


def t(lang: str, key: str, **params: object) -> str:
    """The text of ``key`` in ``lang``; an unknown key raises ``KeyError`` (caught by tests)."""
    text = _S[key][_idx(lang)]
    return text.format(**params) if params else text


def reason_text(lang: str, code: str) -> str:
    """Plain words for a reason code; an unknown code is shown as itself, never hidden."""
    pair = _REASONS.get(code)
    return pair[_idx(lang)] if pair else code


def reason_for_person(lang: str, code: str, *, on_duty: bool = True) -> str:
    """A reason as the kiosk says it to the person at the gate (``[night]``'s
    ``reason.<code>`` while no guard is on duty, when it names the guard)."""
    night = referral(lang, f"reason.{code}", on_duty=on_duty)
    pair = _TO_PERSON.get(code)
    return night or (pair[_idx(lang)] if pair else reason_text(lang, code))


def call_line(lang: str, call: str = "") -> str:
    """Where to turn with no guard on duty: ``call`` (``policy.hours.call``) when the site
    configured it, else the office or later."""
    if call.strip():
        return _CALL[_idx(lang)].format(call=call.strip())
    return _NEXT["no_guard_on_duty"][_idx(lang)]


def referral(lang: str, key: str, *, on_duty: bool = True, call: str = "") -> str | None:
    """``key``'s words said while no guard is on duty (``[night]``: the guard named nowhere,
    ``call_line`` instead); None while one is (``on_duty``) or when ``key`` sends nobody to
    the guard."""
    pair = None if on_duty else _NIGHT.get(key)
    return pair[_idx(lang)].format(call_line=call_line(lang, call)) if pair else None


def t_now(lang: str, key: str, *, on_duty: bool = True, call: str = "") -> str:
    """``t``, a referral to the guard said as ``referral`` while no guard is on duty."""
    return referral(lang, key, on_duty=on_duty, call=call) or t(lang, key)


def reason_next(lang: str, code: str, call: str = "", *, on_duty: bool = True) -> str | None:
    """What the person should do after a deny for ``code`` (None: nothing to add); with no
    guard on duty (the reason, or ``on_duty`` false), where to ``call`` instead of the guard."""
    if code == "no_guard_on_duty":
        return call_line(lang, call)
    night = referral(lang, f"next.{code}", on_duty=on_duty, call=call)
    pair = _NEXT.get(code)
    return night or (pair[_idx(lang)] if pair else None)


def reasons_text(lang: str, codes: list[str] | tuple[str, ...]) -> str:
    sep = "；" if lang == "zh-CN" else "; "
    return sep.join(reason_text(lang, c) for c in codes if c != "ok") or reason_text(lang, "ok")


def keys() -> list[str]:
    return list(_S)


def has(key: str) -> bool:
    return key in _S


def reason_codes() -> list[str]:
    return list(_REASONS)


def translator(lang: str) -> Callable[..., str]:
    """A ``_(key, **params)`` function bound to ``lang``, for templates."""

    def _(key: str, **params: object) -> str:
        return t(lang, key, **params)

    return _
